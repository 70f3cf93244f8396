/**
 * Publishing with publisher confirms: every publish ends in exactly one
 * {@linkcode PublishOutcome}, whatever the broker or the link does: confirmed
 * (maybe returned as unroutable), nacked, lost with the link, held by a
 * blocking broker, or not confirmed in time. Never a rejection.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { describeError } from "./errors.ts";
import { logger } from "../log.ts";
import { settleWithin } from "./deadline.ts";

const log = logger("broker");

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

/** Why a command was not sent when the link is down. */
export const UNREACHABLE = "RabbitMQ is unreachable; the command was not sent";

/** One publish, as {@linkcode Confirms.publish} sends it. */
export interface ConfirmedPublish {
  /** The exchange. */
  exchange: string;
  /** The routing key. */
  routingKey: string;
  /** The body (JSON text). */
  body: string;
  /** Its properties. */
  properties: PublishProperties;
}

/** Options for {@linkcode Confirms}. */
export interface ConfirmsOptions {
  /** How long to wait for the broker's confirm of a publish before failing it (ms). */
  timeoutMs: number;
}

/**
 * What a publish needs of amqplib's confirm channel: its `publish`, with the
 * options used here (a narrow type, so amqplib's stay out of this API).
 */
export interface ConfirmingChannel {
  /** Publishes; `callback` runs once the broker confirms (no error) or nacks, or the channel dies. */
  publish(
    exchange: string,
    routingKey: string,
    content: Uint8Array,
    options: {
      headers: Record<string, unknown>;
      messageId: string;
      correlationId?: string;
      replyTo?: string;
      contentType: string;
      mandatory: boolean;
    },
    callback: (err: unknown) => void,
  ): unknown;
}

interface Pending {
  /** When it fails unless confirmed (`performance.now()` ms). */
  deadline: number;
  /** Set when the broker returned the message as unroutable (before its confirm). */
  returned: boolean;
  /** Ends the publish with this outcome (once). */
  finish: (outcome: PublishOutcome) => void;
  /** The outcome. */
  outcome: Promise<PublishOutcome>;
}

/**
 * The publishes awaiting their confirm, by message id, oldest first. They all
 * share one timeout, so the oldest is always the next to expire: one timer for
 * all of them rather than one each (a timer per command was a measurable share
 * of the gateway's CPU at thousands of commands per second).
 */
export class Confirms {
  readonly #pending = new Map<string, Pending>();
  readonly #timeoutMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Publishes will fail when not confirmed within `timeoutMs`. */
  constructor(options: ConfirmsOptions) {
    this.#timeoutMs = options.timeoutMs;
  }

  /** How many publishes await their confirm. */
  get size(): number {
    return this.#pending.size;
  }

  /** The broker returned the message with this id as unroutable (it will confirm it next). */
  returned(messageId: string): void {
    const pending = this.#pending.get(messageId);
    if (pending) pending.returned = true;
  }

  /** Ends every publish still awaiting its confirm with this failure. */
  failAll(reason: string): void {
    for (const pending of this.#pending.values()) pending.finish({ ok: false, reason });
  }

  /** Waits (at most `graceMs`) until every publish awaiting its confirm has its outcome. */
  async settle(graceMs: number): Promise<void> {
    if (this.#pending.size === 0) return;
    await settleWithin(Promise.allSettled([...this.#pending.values()].map((p) => p.outcome)), graceMs);
  }

  /**
   * Publishes on `channel` and resolves once the broker confirms it (with
   * `returned` when it was mandatory and unroutable) or once it is certain it
   * will not: nacked, link lost before the confirm, or no confirm in time.
   * Never rejects.
   */
  publish(channel: ConfirmingChannel, message: ConfirmedPublish): Promise<PublishOutcome> {
    const { routingKey, properties } = message;
    const { messageId } = properties;
    const { promise, resolve } = Promise.withResolvers<PublishOutcome>();
    const pending: Pending = {
      deadline: performance.now() + this.#timeoutMs,
      returned: false,
      outcome: promise,
      finish: (result) => {
        if (this.#pending.get(messageId) !== pending) return;
        this.#pending.delete(messageId);
        if (this.#pending.size === 0) this.#disarm();
        resolve(result);
      },
    };
    this.#pending.set(messageId, pending);
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
    try {
      channel.publish(message.exchange, routingKey, Buffer.from(message.body), {
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
      log.error("publish to {routingKey} failed: {error}", { routingKey, error: describeError(err) });
      pending.finish({ ok: false, reason: `the command could not be published: ${describeError(err)}` });
    }
    return promise;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, delayMs));
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Fails every publish past its deadline (the oldest ones), then waits for the next oldest. */
  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (const pending of this.#pending.values()) {
      if (pending.deadline > now) {
        this.#arm(pending.deadline - now);
        return;
      }
      pending.finish({
        ok: false,
        reason: `RabbitMQ did not confirm the command within ${
          this.#timeoutMs / 1000
        } s; it may or may not reach the actor`,
      });
    }
  }
}
