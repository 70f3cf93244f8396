/**
 * The history stream on the broker (`--history stream`): declaring it with
 * the configured retention (idempotent on every gateway; a different
 * retention is an error, never a redeclare), reading a message's offset, and
 * the marker each gateway appends to learn where the stream's end is.
 *
 * A stream's offsets are one sequence for every reader: the v1 `seq` of a
 * reply read from it is its offset plus one, so that `seq` 0 keeps meaning
 * "before the first reply" as in the memory history.
 *
 * @module
 */

import type { StreamHistoryConfig } from "../config/config.ts";
import type { AmqpMessageLike } from "../protocol/clu.ts";
import { describeError } from "./errors.ts";

/** The header that marks a gateway's marker message (not a reply; readers skip it). */
export const MARKER_HEADER = "x-clu-ws-marker";

/**
 * The stream cannot be used as configured: its retention differs from the
 * options, or the broker has no streams. Retrying cannot help: the gateway
 * stops and says which option to change.
 */
export class StreamSetupError extends Error {
  /** An error whose message says what to change. */
  constructor(message: string) {
    super(message);
    this.name = "StreamSetupError";
  }
}

/** What declaring needs of a channel (an amqplib `Channel`). */
export interface DeclaringChannel {
  /** Listens to the channel's errors. */
  on(event: "error", listener: (err: Error) => void): unknown;
  /** Declares a queue (`queue.declare`). */
  assertQueue(
    name: string,
    options: { durable: boolean; arguments: Record<string, unknown> },
  ): Promise<unknown>;
  /** Closes the channel. */
  close(): Promise<void>;
}

/** What declaring needs of a connection (an amqplib `ChannelModel`). */
export interface ChannelOpener {
  /** Opens a channel. */
  createChannel(): Promise<DeclaringChannel>;
}

/** The arguments the stream is declared with. */
export function streamArguments(config: StreamHistoryConfig): Record<string, unknown> {
  return {
    "x-queue-type": "stream",
    "x-max-age": config.maxAge,
    "x-max-length-bytes": config.maxBytes,
    "x-stream-max-segment-size-bytes": config.segmentBytes,
  };
}

/**
 * Declares the stream (durable, with the configured retention) on a channel
 * of its own: a refusal closes that channel (406), not the link's.
 *
 * @throws {StreamSetupError} when the stream exists with other arguments or the broker has no streams.
 */
export async function declareStream(model: ChannelOpener, config: StreamHistoryConfig): Promise<void> {
  let channel: DeclaringChannel | undefined;
  try {
    channel = await model.createChannel();
    channel.on("error", () => {/* reported through the declare's rejection */});
    await channel.assertQueue(config.name, { durable: true, arguments: streamArguments(config) });
  } catch (err) {
    throw setupError(err, config) ?? err;
  } finally {
    await channel?.close().catch(() => {/* closed by the broker already */});
  }
}

/** The {@linkcode StreamSetupError} a declare's failure means, or undefined for a passing failure. */
function setupError(err: unknown, config: StreamHistoryConfig): StreamSetupError | undefined {
  const text = describeError(err);
  const inequivalent = /inequivalent arg '([^']+)'[^:]*: (received [^"]*)/.exec(text);
  if (inequivalent) {
    const option = inequivalent[1] === "x-max-age"
      ? "--history-max-age"
      : inequivalent[1] === "x-max-length-bytes"
      ? "--history-max-bytes"
      : inequivalent[1] === "x-stream-max-segment-size-bytes"
      ? "--history-segment-bytes"
      : undefined;
    return new StreamSetupError(
      `the history stream '${config.name}' exists with another ${inequivalent[1]} (${inequivalent[2]}); ` +
        (option
          ? `give ${option} the stream's value, or delete the stream (rabbitmqctl delete_queue ${config.name}) to recreate it`
          : `it is not a stream made by clu-ws: name another one with --history-stream`),
    );
  }
  if (/x-queue-type|queue type|stream_queue|feature flag/i.test(text)) {
    return new StreamSetupError(
      `RabbitMQ refused to declare the history stream '${config.name}' (${text}): --history stream needs ` +
        "RabbitMQ 3.9 or later with the stream_queue feature flag enabled " +
        "(rabbitmqctl enable_feature_flag stream_queue); or use --history memory",
    );
  }
  return undefined;
}

/** A message's offset in the stream (`x-stream-offset`), or undefined when it has none. */
export function streamOffset(message: AmqpMessageLike): number | undefined {
  const offset = message.properties.headers?.["x-stream-offset"];
  return typeof offset === "number" && Number.isSafeInteger(offset) && offset >= 0 ? offset : undefined;
}

/** Whether a stream message is a gateway's marker rather than a reply. */
export function isMarker(message: AmqpMessageLike): boolean {
  return message.properties.headers?.[MARKER_HEADER] !== undefined;
}
