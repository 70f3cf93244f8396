/**
 * The RabbitMQ link: connects to the first broker that answers (and, after a
 * loss, to the next of a cluster's nodes) with backoff and jitter, declares the CLU exchange and the gateway's
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
} from "amqplib";
import { type BrokerConfig, brokerDisplayUrl } from "../config/config.ts";
import type { AmqpMessageLike } from "../protocol/clu.ts";
import { settleWithin } from "./deadline.ts";
import { logger } from "../log.ts";

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
  /** How to reach RabbitMQ: one broker, or the nodes of a cluster to try in turn. */
  brokers: BrokerConfig[];
  /** The CLU topic exchange. */
  exchange: string;
  /** The gateway's client name; its queue is `<name>_replies`. */
  name: string;
  /** Called for every message on the replies queue (an amqplib `ConsumeMessage`). */
  onReply: (message: AmqpMessageLike) => void;
  /** Called on every link state change. */
  onStateChange?: (state: LinkState) => void;
  /** How long to wait for a publish confirm before failing it (ms). */
  confirmTimeoutMs?: number;
  /** First reconnect delay (ms); doubles up to `maxDelayMs`. */
  initialDelayMs?: number;
  /** Longest reconnect delay (ms). */
  maxDelayMs?: number;
}

/** While waiting out a reconnect delay, how often the broker's TCP port is probed (ms). */
export const PROBE_INTERVAL_MS = 500;
/** Right after the broker's port opens, how soon a failed attempt is retried (ms)… */
export const QUICK_RETRY_MS = 250;
/** …and how many times, before the backoff applies again. */
export const QUICK_RETRIES = 12;

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
  readonly #displays: string[];
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #node: string | undefined;
  #live: LiveChannels | undefined;
  #state: LinkState = "connecting";
  #blocked: string | undefined;
  /** Publishes awaiting their confirm, by message id. */
  readonly #pending = new Map<string, Pending>();
  #reconnects = 0;

  /** Prepares the link; nothing happens until {@linkcode BrokerLink.start}. */
  constructor(options: BrokerLinkOptions) {
    this.#options = options;
    this.#displays = options.brokers.map(brokerDisplayUrl);
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

  /** The broker node the link is on (`host:port`), or undefined when down. */
  get node(): string | undefined {
    return this.#node;
  }

  /**
   * Starts connecting in the background and returns at once: the gateway
   * serves clients whether or not RabbitMQ is there yet.
   */
  start(): Promise<void> {
    log.info("connecting to RabbitMQ at {url}", { url: this.#displays.join(", ") });
    this.#running = this.#run().catch((err) => {
      log.error("the RabbitMQ link loop stopped: {error} (please report it)", { error: describe(err) });
    });
    return Promise.resolve();
  }

  /**
   * Connects to the first broker that answers and stays there until the link
   * is lost; then moves to the next (the same one when there is only one),
   * waiting between attempts with exponential backoff and jitter.
   */
  async #run(): Promise<void> {
    const brokers = this.#options.brokers;
    let index = 0;
    let attempt = 0;
    let quickRetries = 0;
    let everUp = false;
    while (!this.#closed()) {
      const display = this.#displays[index];
      let model: ChannelModel | undefined;
      let failure: unknown;
      try {
        model = await connect(connectOptions(brokers[index]), {
          timeout: 5000,
          clientProperties: { connection_name: this.#options.name, product: "clu-ws" },
        });
        if (this.#closed()) {
          await model.close().catch(() => {});
          return;
        }
        const closed = new Promise<Error | undefined>((resolve) => model!.once("close", resolve));
        this.#watch(model);
        await this.#setup(model);
        attempt = 0;
        quickRetries = 0;
        if (everUp) this.#reconnects++;
        everUp = true;
        this.#node = `${brokers[index].hostname}:${brokers[index].port}`;
        this.#setState("up");
        log.info("RabbitMQ link up at {url}: exchange {exchange}, queue {queue} bound to reply.#", {
          url: display,
          exchange: this.#options.exchange,
          queue: this.queue,
        });
        const reason = await closed;
        this.#live = undefined;
        this.#blocked = undefined;
        this.#node = undefined;
        if (this.#closed()) return;
        this.#setState("down");
        log.warn("RabbitMQ link lost at {url} ({error}); reconnecting", {
          url: display,
          error: reason ? describe(reason) : "connection closed",
        });
      } catch (err) {
        failure = err;
        this.#live = undefined;
        if (model) await model.close().catch(() => {});
        if (this.#closed()) return;
        this.#setState("down");
      }
      const failedIndex = index;
      let delay: number;
      if (failure !== undefined && quickRetries > 0) {
        // The port opened a moment ago: a starting broker accepts TCP before its AMQP side logs anyone
        // in, which follows within seconds. Going back to a backoff grown during the outage would cost
        // that many seconds of silence for nothing; so the same broker again, soon.
        quickRetries--;
        delay = QUICK_RETRY_MS;
      } else {
        quickRetries = 0;
        index = (index + 1) % brokers.length;
        attempt++;
        delay = this.#backoff(attempt);
      }
      if (failure !== undefined) {
        log.warn(
          "cannot reach RabbitMQ at {url} ({error}); retrying {next} in {delay} s (attempt {attempt}); is it running? `rabbitmq-server -detached` starts it",
          {
            url: display,
            next: this.#displays[index],
            error: describe(failure),
            delay: (delay / 1000).toFixed(1),
            attempt,
          },
        );
      }
      // A refused connection to the broker probed next counts as a closed port seen: it may open
      // before the first probe.
      const refused = failure !== undefined && index === failedIndex && isRefusal(failure);
      if (await this.#waitForBroker(delay, brokers[index], refused)) {
        log.info("RabbitMQ at {url} accepts connections again; connecting now", {
          url: this.#displays[index],
        });
        quickRetries = QUICK_RETRIES;
      }
    }
  }

  /**
   * Waits `ms` before the next connection attempt, or less: while it waits it
   * probes the broker's TCP port (connect, close) every
   * {@linkcode PROBE_INTERVAL_MS}, and resolves `true` as soon as the port goes
   * from refusing to accepting. Why: the backoff grows while a broker is down
   * (to 16 s after 20 s), so a broker back after a short outage would wait out
   * the rest of a long delay; a TCP probe costs the broker next to nothing,
   * unlike an AMQP login, so the backoff (its ceiling, its jitter) still paces
   * the full attempts against a broker that stays down. A port that accepts
   * from the first probe on (a broker that refuses the login) does not cut the
   * wait: only the change does. `refusedBefore` says the attempt just made
   * was refused at the TCP level.
   */
  async #waitForBroker(ms: number, broker: BrokerConfig, refusedBefore: boolean): Promise<boolean> {
    const deadline = Date.now() + ms;
    if (ms <= PROBE_INTERVAL_MS) {
      await this.#pause(ms);
      return false;
    }
    let refused = refusedBefore;
    while (!this.#closed()) {
      const accepting = await probePort(broker.hostname, broker.port, PROBE_INTERVAL_MS);
      if (this.#closed()) return false;
      if (accepting && refused) return true;
      if (!accepting && !refused) {
        refused = true;
        log.debug("RabbitMQ's port at {host}:{port} refuses connections; connecting as soon as it accepts", {
          host: broker.hostname,
          port: broker.port,
        });
      }
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.#pause(Math.min(PROBE_INTERVAL_MS, left));
    }
    return false;
  }

  /** Whether close() was called (a method, so TypeScript does not narrow it away across awaits). */
  #closed(): boolean {
    return this.#state === "closed";
  }

  #backoff(attempt: number): number {
    const initial = this.#options.initialDelayMs ?? 500;
    const max = this.#options.maxDelayMs ?? 30_000;
    const base = Math.min(max / 1.3, initial * 2 ** (attempt - 1));
    return Math.round(base * (0.7 + Math.random() * 0.6));
  }

  /** Waits `ms`, or less if the link is closed meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #watch(model: ChannelModel): void {
    model.on("blocked", (reason: string) => {
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
    model.on("unblocked", () => {
      this.#blocked = undefined;
      log.info("RabbitMQ unblocked publishes");
    });
    model.on("error", (err: Error) => {
      log.warn("RabbitMQ connection error: {error}", { error: describe(err) });
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
    const live = this.#live;
    this.#setState("closed");
    this.#live = undefined;
    this.#wake?.();
    await live?.model.close().catch((err: unknown) => {
      log.debug("closing the RabbitMQ connection: {error}", { error: describe(err) });
    });
    await this.#running;
    log.info("RabbitMQ link closed");
  }
}

/**
 * Whether `hostname:port` accepts a TCP connection within `timeoutMs`; the
 * connection is closed at once (a late one too).
 */
export async function probePort(hostname: string, port: number, timeoutMs: number): Promise<boolean> {
  const connecting = Deno.connect({ hostname, port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<undefined>((resolve) =>
    timer = setTimeout(() => resolve(undefined), timeoutMs)
  );
  try {
    const conn = await Promise.race([connecting, timedOut]);
    if (conn === undefined) {
      connecting.then((late) => late.close(), () => {});
      return false;
    }
    conn.close();
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a connection attempt failed because nothing listens on the port (ECONNREFUSED). */
function isRefusal(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  // Not any "refused": RabbitMQ says ACCESS_REFUSED to a bad login, on a port that accepts.
  return code === "ECONNREFUSED" || (err instanceof Error && /\bECONNREFUSED\b/.test(err.message));
}

function connectOptions(broker: BrokerConfig): Options.Connect {
  return {
    protocol: broker.protocol,
    hostname: broker.hostname,
    port: broker.port,
    username: broker.username,
    password: broker.password,
    vhost: broker.vhost,
    heartbeat: broker.heartbeat,
  };
}

/** A short, password-free description of an error. */
function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string | number }).code;
    return code && !err.message.includes(String(code)) ? `${err.message} [${code}]` : err.message;
  }
  return String(err);
}
