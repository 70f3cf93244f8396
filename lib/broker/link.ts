/**
 * The RabbitMQ link: connects to the first broker that answers (and, after a
 * loss, to the next of a cluster's nodes; when and which: `reconnect.ts`),
 * declares the CLU exchange and the gateway's exclusive replies queue,
 * consumes replies, and publishes with publisher confirms so that every
 * publish ends in exactly one {@linkcode PublishOutcome} (`publish.ts`).
 *
 * @module
 */

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
import { coalesceFrameWrites } from "./coalesce.ts";
import { Confirms, type PublishOutcome, type PublishProperties, UNREACHABLE } from "./publish.ts";
import { describeError as describe, isRefusal } from "./errors.ts";
import { logger } from "../log.ts";
import { ReconnectSchedule, waitForBroker } from "./reconnect.ts";
import { declareStream, StreamSetupError } from "./stream.ts";
import {
  appendMarker,
  consumeLiveStream,
  openStreamReader,
  type StreamLiveOptions,
  type StreamReader,
  type StreamReaderEvents,
} from "./stream_read.ts";

export type { StreamLiveOptions, StreamReader, StreamReaderEvents } from "./stream_read.ts";

export type { PublishOutcome, PublishProperties } from "./publish.ts";
export { UNREACHABLE } from "./publish.ts";

const log = logger("broker");

/** The state of the broker link, as `/healthz` and the log report it. */
export type LinkState = "connecting" | "up" | "down" | "closed";

/** Options for {@linkcode BrokerLink}. */
export interface BrokerLinkOptions {
  /** How to reach RabbitMQ: one broker, or the nodes of a cluster to try in turn. */
  brokers: BrokerConfig[];
  /** The CLU topic exchange. */
  exchange: string;
  /** The gateway's client name; its queue is `<name>_replies`. */
  name: string;
  /**
   * Called for every message on the replies queue (an amqplib `ConsumeMessage`);
   * with a history stream, for every reply read from it, with its offset.
   */
  onReply: (message: AmqpMessageLike, offset?: number) => void;
  /**
   * With `--history stream`: replies are read from this stream (declared and
   * bound to `reply.#` here) instead of an own queue.
   */
  stream?: StreamLiveOptions;
  /** Called once if the link cannot work as configured (the stream's retention differs, no streams); it closes. */
  onFatal?: (error: Error) => void;
  /** Called on every link state change. */
  onStateChange?: (state: LinkState) => void;
  /** How long to wait for a publish confirm before failing it (ms). */
  confirmTimeoutMs?: number;
  /** First reconnect delay (ms); doubles up to `maxDelayMs`. */
  initialDelayMs?: number;
  /** Longest reconnect delay (ms). */
  maxDelayMs?: number;
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
  /** Aborted by close(): ends a reconnect wait at once. */
  readonly #closing = new AbortController();
  #node: string | undefined;
  #live: LiveChannels | undefined;
  #state: LinkState = "connecting";
  #blocked: string | undefined;
  readonly #confirms: Confirms;
  #reconnects = 0;

  /** Prepares the link; nothing happens until {@linkcode BrokerLink.start}. */
  constructor(options: BrokerLinkOptions) {
    this.#options = options;
    this.#displays = options.brokers.map(brokerDisplayUrl);
    this.#confirms = new Confirms({ timeoutMs: options.confirmTimeoutMs ?? 10_000 });
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
    const schedule = new ReconnectSchedule(brokers.length, this.#options);
    let everUp = false;
    while (!this.#closed()) {
      const index = schedule.index;
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
        schedule.up();
        if (everUp) this.#reconnects++;
        everUp = true;
        this.#node = `${brokers[index].hostname}:${brokers[index].port}`;
        this.#setState("up");
        log.info("RabbitMQ link up at {url}: exchange {exchange}, queue {queue} bound to reply.#", {
          url: display,
          exchange: this.#options.exchange,
          queue: this.#options.stream ? `${this.#options.stream.config.name} (history stream)` : this.queue,
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
        if (err instanceof StreamSetupError) {
          log.error("{error}", { error: err.message });
          this.#setState("closed");
          this.#options.onFatal?.(err);
          return;
        }
        this.#setState("down");
      }
      const delay = schedule.next(failure !== undefined);
      const next = schedule.index;
      if (failure !== undefined) {
        log.warn(
          "cannot reach RabbitMQ at {url} ({error}); retrying {next} in {delay} s (attempt {attempt}); is it running? `rabbitmq-server -detached` starts it",
          {
            url: display,
            next: this.#displays[next],
            error: describe(failure),
            delay: (delay / 1000).toFixed(1),
            attempt: schedule.attempt,
          },
        );
      }
      // A refused connection to the broker probed next counts as a closed port seen: it may open
      // before the first probe.
      const refusedBefore = failure !== undefined && next === index && isRefusal(failure);
      if (await waitForBroker(delay, brokers[next], { refusedBefore, signal: this.#closing.signal })) {
        log.info("RabbitMQ at {url} accepts connections again; connecting now", {
          url: this.#displays[next],
        });
        schedule.portOpened();
      }
    }
  }

  /** Whether close() was called (a method, so TypeScript does not narrow it away across awaits). */
  #closed(): boolean {
    return this.#state === "closed";
  }

  #watch(model: ChannelModel): void {
    if (!coalesceFrameWrites(model)) {
      log.debug("amqplib's frame writes are not coalesced (its internals moved); each frame is one write");
    }
    model.on("blocked", (reason: string) => {
      this.#blocked = reason || "resource alarm";
      log.warn("RabbitMQ blocks publishes ({reason}); commands fail until it unblocks", {
        reason: this.#blocked,
      });
      // What is in flight is held by the broker: say so now rather than at the confirm timeout.
      this.#confirms.failAll(
        `RabbitMQ is blocking publishes: ${this.#blocked}; it holds the command and may still deliver it when it unblocks`,
      );
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
      this.#confirms.returned(String(message.properties.messageId));
    });
    // Exactly CLU's arguments: any other declaration makes RabbitMQ close the channel (406).
    await consume.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    if (this.#options.stream) {
      await this.#consumeStream(model, consume, live, this.#options.stream);
      this.#live = live;
      return;
    }
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

  /**
   * Declares and binds the history stream and reads replies from it, from
   * where the last link left off or its end (`stream_read.ts`).
   */
  async #consumeStream(model: ChannelModel, consume: Channel, live: LiveChannels, stream: StreamLiveOptions) {
    await declareStream(model, stream.config);
    await consume.bindQueue(stream.config.name, this.#options.exchange, "reply.#");
    await consumeLiveStream(consume, {
      stream,
      gateway: this.#options.name,
      onReply: this.#options.onReply,
      current: () => this.#live === live,
      lost: () => {
        if (this.#live === live) model.close().catch(() => {});
      },
      openChannel: () => model.createChannel(),
    });
  }

  /** Appends a marker to the history stream (every reader skips it), if the link is up. */
  appendMarker(): void {
    const live = this.#live;
    const stream = this.#options.stream;
    if (live && stream) appendMarker(live.consume, stream.config.name, this.#options.name);
  }

  /**
   * Reads the history stream from `offset` (or from the first chunk written
   * since a time) on a channel of its own (`stream_read.ts`).
   *
   * @throws when the link is down or the channel cannot be opened.
   */
  async readStream(
    offset: number | Date,
    prefetch: number,
    events: StreamReaderEvents,
  ): Promise<StreamReader> {
    const live = this.#live;
    const stream = this.#options.stream;
    if (!live || !stream || this.#state !== "up") throw new Error("the RabbitMQ link is down");
    return await openStreamReader(
      await live.model.createChannel(),
      stream.config.name,
      offset,
      prefetch,
      events,
    );
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
    return this.#confirms.publish(live.confirm, {
      exchange: this.#options.exchange,
      routingKey,
      body,
      properties,
    });
  }

  /**
   * Waits (at most `graceMs`) for publishes in flight to be confirmed, then
   * closes channels and connection; the link stays closed.
   */
  async close({ graceMs = 1000 }: { graceMs?: number } = {}): Promise<void> {
    await this.#confirms.settle(graceMs);
    const live = this.#live;
    this.#setState("closed");
    this.#live = undefined;
    this.#closing.abort();
    await live?.model.close().catch((err: unknown) => {
      log.debug("closing the RabbitMQ connection: {error}", { error: describe(err) });
    });
    await this.#running;
    log.info("RabbitMQ link closed");
  }
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
