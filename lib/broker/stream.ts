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
  /** The connection, with what the broker said about itself (`product`, `version`). */
  readonly connection: { readonly serverProperties: { product?: string; version?: string } };
  /** Opens a channel. */
  createChannel(): Promise<DeclaringChannel>;
  /** Listens for the connection's end; amqplib passes the server's close frame as an error. */
  once(event: "close", listener: (reason?: Error) => void): unknown;
  /** Stops listening. */
  off(event: "close", listener: (reason?: Error) => void): unknown;
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
 * A RabbitMQ older than 3.9 is refused before declaring: 3.8 would refuse
 * the declare anyway, but 3.7 and older do not know `x-queue-type` and
 * would quietly make a classic queue of that name.
 *
 * Some refusals close the whole connection instead: RabbitMQ 3.9+ with the
 * `stream_queue` feature flag disabled answers with 541 INTERNAL_ERROR, a
 * connection error. amqplib then rejects the declare with only "Channel
 * ended, no reply will be forthcoming", which reads like a lost link; the
 * server's reason is in the connection's `close` event, so that is what is
 * judged. amqplib emits `close` in the same turn as it rejects the declare,
 * so the reason is known before the rejection is seen.
 *
 * @throws {StreamSetupError} when the stream exists with other arguments or the broker has no streams.
 */
export async function declareStream(model: ChannelOpener, config: StreamHistoryConfig): Promise<void> {
  const tooOld = olderThanStreams(model.connection.serverProperties);
  if (tooOld) {
    throw new StreamSetupError(
      `RabbitMQ ${tooOld} has no streams: --history stream needs RabbitMQ 3.9 or later; ` +
        "upgrade it, or use --history memory",
    );
  }
  let channel: DeclaringChannel | undefined;
  let closedWith: Error | undefined;
  const onClose = (reason?: Error) => closedWith = reason;
  model.once("close", onClose);
  try {
    channel = await model.createChannel();
    channel.on("error", () => {/* reported through the declare's rejection */});
    await channel.assertQueue(config.name, { durable: true, arguments: streamArguments(config) });
  } catch (err) {
    // The server's close frame says more than amqplib's "Channel ended" (and a lost link stays a lost link).
    const reason = closedWith ?? err;
    throw setupError(reason, config) ?? reason;
  } finally {
    model.off("close", onClose);
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
  // RabbitMQ's own texts (rabbit_amqqueue): 3.9+ with the flag off closes the connection (541) with "Cannot
  // declare a queue 'queue '…' in vhost '/'' of type 'rabbit_stream_queue' on node '…': the corresponding
  // feature flag is disabled"; 3.8 refuses the argument (406), "invalid arg 'x-queue-type' for queue '…' in
  // vhost '/': invalid_queue_type" (later versions say "unsupported queue type '…'" for a type they lack).
  if (/of type 'rabbit_stream_queue'.*feature flag is disabled/.test(text)) {
    return new StreamSetupError(
      `RabbitMQ refused to declare the history stream '${config.name}' (${text}): --history stream needs ` +
        "the stream_queue feature flag, disabled on this broker: enable it " +
        "(rabbitmqctl enable_feature_flag stream_queue, with every node of the cluster on 3.9 or later), " +
        "or use --history memory",
    );
  }
  if (/invalid arg 'x-queue-type'.*(invalid_queue_type|unsupported queue type 'stream')/.test(text)) {
    return new StreamSetupError(
      `RabbitMQ refused to declare the history stream '${config.name}' (${text}): --history stream needs ` +
        "RabbitMQ 3.9 or later; upgrade it, or use --history memory",
    );
  }
  return undefined;
}

/**
 * The version of a RabbitMQ older than 3.9 (which has no streams), from its
 * server properties; undefined for 3.9 and later, and for a broker that is
 * not RabbitMQ or does not say (its declare is judged instead).
 */
function olderThanStreams(server: { product?: string; version?: string }): string | undefined {
  if (server.product !== "RabbitMQ" || !server.version) return undefined;
  const version = /^(\d+)\.(\d+)\./.exec(server.version);
  if (!version) return undefined;
  const [major, minor] = [Number(version[1]), Number(version[2])];
  return major < 3 || (major === 3 && minor < 9) ? server.version : undefined;
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
