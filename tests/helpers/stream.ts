/**
 * For tests of `--history stream`: a unique stream name per test (deleted
 * after it), the gateway arguments that use it, and a steady publisher of
 * numbered replies whose numbers tell a client what it missed or got twice.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { connectBroker } from "./broker.ts";

const RUN = crypto.randomUUID().slice(0, 8);
let counter = 0;

/** A stream name no other test (nor another engineer's run) uses. */
export function uniqueStream(label = "s"): string {
  return `clu-ws-test-${RUN}-${label}-${++counter}.history`;
}

/** The gateway arguments for a history stream `name` (and any more). */
export function streamArgs(name: string, more: string[] = []): string[] {
  return ["--history", "stream", "--history-stream", name, ...more];
}

/** Deletes the stream `name` (in a test's `finally`); never throws. */
export async function deleteStream(name: string): Promise<void> {
  let model: ChannelModel | undefined;
  try {
    model = await connectBroker();
    const channel = await model.createChannel();
    await channel.deleteQueue(name);
  } catch {
    // Never declared, or already gone.
  } finally {
    await model?.close().catch(() => {});
  }
}

/**
 * The offset of the first message the stream `name` still holds, read from
 * the broker (a consumer from `first`, closed after one message).
 */
export async function firstOffset(name: string): Promise<number> {
  const model = await connectBroker();
  try {
    const channel = await model.createChannel();
    await channel.prefetch(1);
    const first = Promise.withResolvers<number>();
    await channel.consume(name, (message) => {
      const offset = message?.properties.headers?.["x-stream-offset"];
      if (typeof offset === "number") first.resolve(offset);
      else first.reject(new Error(`the first message of ${name} has no x-stream-offset (${offset})`));
    }, { noAck: false, arguments: { "x-stream-offset": "first" } });
    return await first.promise;
  } finally {
    await model.close().catch(() => {});
  }
}

/** Publishes `{run, n}` replies as `sender` on `reply.broadcast`, one after another, until stopped. */
export class SteadyPublisher {
  readonly #model: ChannelModel;
  readonly #channel: ConfirmChannel;
  readonly #exchange: string;
  readonly #sender: string;
  readonly run = crypto.randomUUID().slice(0, 8);
  #n = 0;
  #stopping = false;
  #loop: Promise<void> | undefined;

  private constructor(model: ChannelModel, channel: ConfirmChannel, exchange: string, sender: string) {
    this.#model = model;
    this.#channel = channel;
    this.#exchange = exchange;
    this.#sender = sender;
  }

  /** A publisher on `exchange` (declared as CLU declares it). */
  static async open(exchange: string, sender = "steady"): Promise<SteadyPublisher> {
    const model = await connectBroker();
    const channel = await model.createConfirmChannel();
    await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    return new SteadyPublisher(model, channel, exchange, sender);
  }

  /** The last number published (and confirmed). */
  get last(): number {
    return this.#n;
  }

  /** Publishes `count` replies now, as fast as the broker confirms them. */
  async burst(count: number, pad = 0): Promise<void> {
    for (let i = 0; i < count; i++) this.#publish(pad);
    await this.#channel.waitForConfirms();
  }

  /** Publishes one unnumbered reply with message code `code` (`{run, mark: true}`) and waits for its confirm. */
  async mark(code: string): Promise<void> {
    this.#channel.publish(
      this.#exchange,
      "reply.broadcast",
      Buffer.from(JSON.stringify({ run: this.run, mark: true })),
      {
        contentType: "text/json",
        headers: {
          command_id: null,
          commander_id: null,
          internal: false,
          message_code: code,
          sender: this.#sender,
        },
      },
    );
    await this.#channel.waitForConfirms();
  }

  #publish(pad = 0): void {
    const n = ++this.#n;
    this.#channel.publish(
      this.#exchange,
      "reply.broadcast",
      Buffer.from(JSON.stringify({ run: this.run, n, ...(pad ? { pad: "x".repeat(pad) } : {}) })),
      {
        contentType: "text/json",
        timestamp: Math.floor(Date.now() / 1000),
        headers: {
          command_id: null,
          commander_id: null,
          internal: false,
          message_code: "i",
          sender: this.#sender,
        },
      },
    );
  }

  /** Starts publishing one reply every `everyMs` (a steady rate, not a synchronisation). */
  start(everyMs = 5): void {
    this.#loop = (async () => {
      while (!this.#stopping) {
        this.#publish();
        await this.#channel.waitForConfirms();
        await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    })();
  }

  /** Stops the steady publishing; resolves with the last number published. */
  async stop(): Promise<number> {
    this.#stopping = true;
    await this.#loop;
    return this.#n;
  }

  /** Stops and closes the connection. */
  async close(): Promise<void> {
    await this.stop();
    await this.#model.close().catch(() => {});
  }
}
