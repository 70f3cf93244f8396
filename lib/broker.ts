/**
 * The RabbitMQ link: connects (and reconnects with backoff and jitter through
 * amqplib's own recovery), declares the CLU exchange and the gateway's
 * exclusive replies queue, consumes replies, and publishes with publisher
 * confirms so that every publish ends in exactly one {@linkcode PublishOutcome}.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  connect,
  type ConsumeMessage,
  type Options,
  type RecoveringChannelModel,
} from "amqplib";
import { type BrokerConfig, brokerDisplayUrl } from "./config.ts";
import { settleWithin } from "./deadline.ts";
import { logger } from "./log.ts";

const log = logger("broker");

/** The state of the broker link, as `/healthz` and the log report it. */
export type LinkState = "connecting" | "up" | "down" | "closed";

/** How one publish ended: confirmed (and maybe returned as unroutable), or not sent. */
export type PublishOutcome =
  | { ok: true; returned: boolean }
  | { ok: false; reason: string };

/** Properties of one publish. */
export interface PublishProperties {
  /** AMQP headers. */
  headers: Record<string, unknown>;
  /** The message id; also how a returned message is matched to its publish. */
  messageId: string;
  /** The correlation id (CLU: the command_id). */
  correlationId?: string;
  /** The queue replies should go to. */
  replyTo?: string;
  /** Ask the broker to return the message if no queue is bound. */
  mandatory?: boolean;
}

/** Options for {@linkcode BrokerLink}. */
export interface BrokerLinkOptions {
  /** How to reach RabbitMQ. */
  broker: BrokerConfig;
  /** The CLU topic exchange. */
  exchange: string;
  /** The gateway's client name; its queue is `<name>_replies`. */
  name: string;
  /** Called for every message on the replies queue. */
  onReply: (message: ConsumeMessage) => void;
  /** Called on every link state change. */
  onStateChange?: (state: LinkState) => void;
  /** How long to wait for a publish confirm before failing it (ms). */
  confirmTimeoutMs?: number;
  /** First reconnect delay (ms); doubles up to `maxDelayMs`. */
  initialDelayMs?: number;
  /** Longest reconnect delay (ms). */
  maxDelayMs?: number;
}

/** Why a command was not sent when the link is down. */
export const UNREACHABLE = "RabbitMQ is unreachable; the command was not sent";

interface Pending {
  /** Set when the broker returned the message as unroutable (before its confirm). */
  returned: boolean;
  /** Ends the publish with this outcome (once). */
  finish: (outcome: PublishOutcome) => void;
  /** The outcome. */
  outcome: Promise<PublishOutcome>;
}

interface LiveChannels {
  model: ChannelModel;
  consume: Channel;
  confirm: ConfirmChannel;
}

/** The gateway's one connection to RabbitMQ. */
export class BrokerLink {
  readonly #options: BrokerLinkOptions;
  readonly #display: string;
  #recovering: RecoveringChannelModel | undefined;
  #live: LiveChannels | undefined;
  #state: LinkState = "connecting";
  #blocked: string | undefined;
  /** Publishes awaiting their confirm, by message id. */
  readonly #pending = new Map<string, Pending>();
  #reconnects = 0;

  /** Prepares the link; nothing happens until {@linkcode BrokerLink.start}. */
  constructor(options: BrokerLinkOptions) {
    this.#options = options;
    this.#display = brokerDisplayUrl(options.broker);
  }

  /** The link's state now. */
  get state(): LinkState {
    return this.#state;
  }

  /** Why the broker blocks publishes (a resource alarm), or undefined. */
  get blockedReason(): string | undefined {
    return this.#blocked;
  }

  /** How many times the link came back after a loss. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** The replies queue name. */
  get queue(): string {
    return `${this.#options.name}_replies`;
  }

  /**
   * Starts connecting in the background and returns at once: the gateway
   * serves clients whether or not RabbitMQ is there yet.
   */
  async start(): Promise<void> {
    const { broker, name } = this.#options;
    log.info("connecting to RabbitMQ at {url}", { url: this.#display });
    const connectOptions: Options.Connect = {
      protocol: broker.protocol,
      hostname: broker.hostname,
      port: broker.port,
      username: broker.username,
      password: broker.password,
      vhost: broker.vhost,
      heartbeat: broker.heartbeat,
    };
    this.#recovering = await connect(connectOptions, {
      timeout: 5000,
      clientProperties: { connection_name: name, product: "clu-ws" },
      recovery: {
        initialDelay: this.#options.initialDelayMs ?? 500,
        maxDelay: this.#options.maxDelayMs ?? 30_000,
        factor: 2,
        jitter: 0.3,
        waitForConnect: false,
        setup: (model: ChannelModel) => this.#setup(model),
      },
    });
    this.#watch(this.#recovering);
  }

  #watch(recovering: RecoveringChannelModel): void {
    let everUp = false;
    recovering.on("connect", () => {
      if (everUp) this.#reconnects++;
      everUp = true;
      this.#setState("up");
      log.info("RabbitMQ link up at {url}: exchange {exchange}, queue {queue} bound to reply.#", {
        url: this.#display,
        exchange: this.#options.exchange,
        queue: this.queue,
      });
    });
    recovering.on("disconnect", (err: Error) => {
      this.#live = undefined;
      this.#blocked = undefined;
      this.#setState("down");
      log.warn("RabbitMQ link lost ({error}); reconnecting", { error: describe(err) });
    });
    recovering.on("reconnect-scheduled", (info: { attempt: number; delay: number; error: Error }) => {
      if (this.#state === "connecting" || this.#state === "up") this.#setState("down");
      log.warn(
        "cannot reach RabbitMQ at {url} ({error}); retrying in {delay} s (attempt {attempt}); is it running? `rabbitmq-server -detached` starts it",
        {
          url: this.#display,
          error: describe(info.error),
          delay: (info.delay / 1000).toFixed(1),
          attempt: info.attempt,
        },
      );
    });
    recovering.on("blocked", (reason: string) => {
      this.#blocked = reason || "resource alarm";
      log.warn("RabbitMQ blocks publishes ({reason}); commands fail until it unblocks", {
        reason: this.#blocked,
      });
      // What is in flight is held by the broker: say so now rather than at the confirm timeout.
      for (const pending of this.#pending.values()) {
        pending.finish({
          ok: false,
          reason:
            `RabbitMQ is blocking publishes: ${this.#blocked}; it holds the command and may still deliver it when it unblocks`,
        });
      }
    });
    recovering.on("unblocked", () => {
      this.#blocked = undefined;
      log.info("RabbitMQ unblocked publishes");
    });
    recovering.on("error", (err: Error) => {
      log.warn("RabbitMQ connection error: {error}", { error: describe(err) });
    });
    recovering.on("reconnect-failed", (err: Error) => {
      log.error("RabbitMQ recovery gave up: {error}", { error: describe(err) });
    });
  }

  async #setup(model: ChannelModel): Promise<void> {
    const { exchange, onReply } = this.#options;
    const consume = await model.createChannel();
    const confirm = await model.createConfirmChannel();
    const live: LiveChannels = { model, consume, confirm };
    for (const channel of [consume, confirm]) {
      channel.on("error", (err: Error) => {
        log.warn("RabbitMQ channel error: {error}", { error: describe(err) });
      });
      // A channel can die alone (e.g. a 406 from the broker); reconnecting the
      // whole link is the one recovery path, so it re-declares everything.
      channel.on("close", () => {
        if (this.#live === live && this.#state !== "closed") {
          this.#live = undefined;
          model.close().catch(() => {});
        }
      });
    }
    confirm.on("return", (message: ConsumeMessage) => {
      const pending = this.#pending.get(String(message.properties.messageId));
      if (pending) pending.returned = true;
    });
    // Exactly CLU's arguments: any other declaration makes RabbitMQ close the channel (406).
    await consume.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    await consume.assertQueue(this.queue, { exclusive: true, autoDelete: true, durable: false });
    await consume.bindQueue(this.queue, exchange, "reply.#");
    // No per-message ack: the queue is exclusive and auto-deleted, so acks buy
    // nothing and would cap throughput at a few thousand messages per second.
    await consume.consume(this.queue, (message: ConsumeMessage | null) => {
      if (message === null) {
        log.warn("RabbitMQ cancelled the replies consumer; reconnecting");
        if (this.#live === live) model.close().catch(() => {});
        return;
      }
      onReply(message);
    }, { noAck: true, exclusive: true });
    this.#live = live;
  }

  #setState(state: LinkState): void {
    if (this.#state === state || this.#state === "closed") return;
    this.#state = state;
    this.#options.onStateChange?.(state);
  }

  /**
   * Publishes to the exchange and resolves once the broker confirms it (with
   * `returned` when it was mandatory and unroutable) or once it is certain it
   * will not: link down, publishes blocked, nacked, link lost before the
   * confirm, or no confirm in time. Never rejects.
   */
  publish(routingKey: string, body: string, properties: PublishProperties): Promise<PublishOutcome> {
    const live = this.#live;
    if (!live || this.#state !== "up") return Promise.resolve({ ok: false, reason: UNREACHABLE });
    if (this.#blocked !== undefined) {
      return Promise.resolve({
        ok: false,
        reason: `RabbitMQ is blocking publishes: ${this.#blocked}; the command was not sent`,
      });
    }
    const timeoutMs = this.#options.confirmTimeoutMs ?? 10_000;
    const { messageId } = properties;
    const { promise, resolve } = Promise.withResolvers<PublishOutcome>();
    const pending: Pending = {
      returned: false,
      outcome: promise,
      finish: (result) => {
        if (this.#pending.get(messageId) !== pending) return;
        this.#pending.delete(messageId);
        clearTimeout(timer);
        resolve(result);
      },
    };
    this.#pending.set(messageId, pending);
    const timer = setTimeout(() => {
      pending.finish({
        ok: false,
        reason: `RabbitMQ did not confirm the command within ${
          timeoutMs / 1000
        } s; it may or may not reach the actor`,
      });
    }, timeoutMs);
    try {
      live.confirm.publish(this.#options.exchange, routingKey, Buffer.from(body), {
        headers: properties.headers,
        messageId,
        correlationId: properties.correlationId,
        replyTo: properties.replyTo,
        contentType: "text/json",
        mandatory: properties.mandatory ?? false,
      }, (err: unknown) => {
        if (!err) {
          pending.finish({ ok: true, returned: pending.returned });
        } else if (err instanceof Error && /nack/i.test(err.message)) {
          pending.finish({ ok: false, reason: "RabbitMQ refused the command (nack); it was not delivered" });
        } else {
          pending.finish({
            ok: false,
            reason:
              "the RabbitMQ link was lost before the broker confirmed the command; it may not have been sent",
          });
        }
      });
    } catch (err) {
      log.error("publish to {routingKey} failed: {error}", { routingKey, error: describe(err) });
      pending.finish({ ok: false, reason: `the command could not be published: ${describe(err)}` });
    }
    return promise;
  }

  /**
   * Waits (at most `graceMs`) for publishes in flight to be confirmed, then
   * closes channels and connection; the link stays closed.
   */
  async close({ graceMs = 1000 }: { graceMs?: number } = {}): Promise<void> {
    if (this.#pending.size > 0) {
      await settleWithin(Promise.allSettled([...this.#pending.values()].map((p) => p.outcome)), graceMs);
    }
    this.#setState("closed");
    this.#live = undefined;
    await this.#recovering?.close().catch((err: unknown) => {
      log.debug("closing the RabbitMQ connection: {error}", { error: describe(err) });
    });
    log.info("RabbitMQ link closed");
  }
}

/** A short, password-free description of an error. */
function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string | number }).code;
    return code && !err.message.includes(String(code)) ? `${err.message} [${code}]` : err.message;
  }
  return String(err);
}
