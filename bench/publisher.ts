/**
 * The reply source: publishes CLU-shaped broadcasts from its own AMQP
 * connection with publisher confirms, either as fast as the broker takes them
 * (in windows, waiting for the window's confirms) or at a fixed rate.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type ChannelModel, type ConfirmChannel, connect } from "amqplib";
import { epochMs, sleep } from "./stats.ts";
import { BENCH_HEADERS, BENCH_ROUTING_KEY, BODY_BYTES, replyBody, warmupBody } from "./wire.ts";

/** What a publishing run did. */
export interface PublishReport {
  /** Messages published and confirmed. */
  published: number;
  /** Wall time from the first publish to the last confirm, ms. */
  ms: number;
  /** Publish rate achieved (confirmed messages per second). */
  rate: number;
  /** When the first message was published (ms since the epoch). */
  firstSentMs: number;
}

/** A publisher of benchmark replies on one exchange. */
export class Publisher {
  readonly #connection: ChannelModel;
  readonly #channel: ConfirmChannel;
  readonly #exchange: string;
  readonly #bodyBytes: number;
  readonly #idPrefix = crypto.randomUUID().replaceAll("-", "").slice(0, 20);
  #blockedSince: number | undefined;
  #error: Error | undefined;
  #blockedMs = 0;

  private constructor(
    connection: ChannelModel,
    channel: ConfirmChannel,
    exchange: string,
    bodyBytes: number,
  ) {
    this.#connection = connection;
    this.#channel = channel;
    this.#exchange = exchange;
    this.#bodyBytes = bodyBytes;
    // Without a listener an 'error' event (the broker went away) would crash the harness.
    connection.on("error", (err: Error) => this.#error ??= err);
    // The broker blocks publishers during a resource alarm (e.g. another test raising one): a disturbed run.
    connection.on("blocked", () => this.#blockedSince ??= performance.now());
    connection.on("unblocked", () => {
      if (this.#blockedSince !== undefined) this.#blockedMs += performance.now() - this.#blockedSince;
      this.#blockedSince = undefined;
    });
  }

  /** Connects to `url` and declares `exchange` exactly as CLU does; bodies are `bodyBytes` long. */
  static async open(url: string, exchange: string, { bodyBytes = BODY_BYTES } = {}): Promise<Publisher> {
    // No Nagle: the harness must not add its own delays to the latencies it measures.
    const connection = await connect(url, { noDelay: true });
    const channel = await connection.createConfirmChannel();
    channel.on("error", () => {}); // Reported through the connection.
    await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    return new Publisher(connection, channel, exchange, bodyBytes);
  }

  /** How long the broker blocked this publisher (a resource alarm), ms. */
  get blockedMs(): number {
    return this.#blockedMs + (this.#blockedSince === undefined ? 0 : performance.now() - this.#blockedSince);
  }

  #publish(seq: number, warmup = false): void {
    const sent = epochMs();
    const body = warmup ? warmupBody(seq, this.#bodyBytes) : replyBody(seq, sent, this.#bodyBytes);
    this.#channel.publish(
      this.#exchange,
      BENCH_ROUTING_KEY,
      Buffer.from(body),
      {
        contentType: "text/json",
        headers: BENCH_HEADERS,
        // CLU's AMQP library stamps a 32-hex message id and a timestamp on every message.
        messageId: this.#idPrefix + seq.toString(16).padStart(12, "0"),
        timestamp: Math.floor(sent / 1000),
      },
    );
  }

  /**
   * Publishes `count` warm-up replies (which clients do not count), `rate` a
   * second or (without a rate) as fast as the broker takes them, so that the
   * measured replies meet a warmed-up gateway (JIT-compiled hot path), as in
   * production.
   */
  async warmup(count: number, rate?: number): Promise<void> {
    const started = performance.now();
    for (let seq = 0; seq < count; seq++) {
      if (this.#error) throw new Error(`publishing failed: ${this.#error.message}`);
      if (rate) {
        const due = started + (seq * 1000) / rate;
        if (due > performance.now() + 0.5) await sleep(due - performance.now());
      }
      this.#publish(seq, true);
      if ((seq + 1) % 500 === 0) await this.#channel.waitForConfirms();
    }
    await this.#channel.waitForConfirms();
  }

  /** Publishes `count` replies as fast as the broker confirms them, `window` at a time. */
  async burst(count: number, { window = 500 } = {}): Promise<PublishReport> {
    const started = performance.now();
    const firstSentMs = epochMs();
    for (let seq = 0; seq < count; seq++) {
      if (this.#error) throw new Error(`publishing failed: ${this.#error.message}`);
      this.#publish(seq);
      if ((seq + 1) % window === 0 || seq + 1 === count) await this.#channel.waitForConfirms();
    }
    const ms = performance.now() - started;
    return { published: count, ms, rate: (count * 1000) / ms, firstSentMs };
  }

  /**
   * Publishes `rate` replies a second for `seconds`, each at its due time
   * (timers permitting), without waiting for confirms in between; waits for
   * all confirms at the end.
   */
  async steady(rate: number, seconds: number): Promise<PublishReport> {
    const count = Math.round(rate * seconds);
    const interval = 1000 / rate;
    const started = performance.now();
    const firstSentMs = epochMs();
    let seq = 0;
    while (seq < count) {
      if (this.#error) throw new Error(`publishing failed: ${this.#error.message}`);
      const due = started + seq * interval;
      const now = performance.now();
      if (due > now + 0.5) {
        await sleep(due - now);
        continue;
      }
      // Catch up with whatever is due now (a late timer), one message per due slot.
      while (seq < count && started + seq * interval <= performance.now()) this.#publish(seq++);
    }
    await this.#channel.waitForConfirms();
    const ms = performance.now() - started;
    return { published: count, ms, rate: (count * 1000) / ms, firstSentMs };
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#connection.close().catch(() => {});
  }
}
