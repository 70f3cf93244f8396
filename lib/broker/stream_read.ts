/**
 * Reading the history stream (`--history stream`) on the link's channels:
 * the live consumer (every reply, from where the last link left off or the
 * stream's end, acked in batches), the marker each gateway appends, and the
 * readers that replay a `resume` from an offset or a time, each on a channel
 * of its own and paced by its acknowledgements.
 *
 * The channels are typed by what is used of them ({@linkcode StreamChannel}),
 * which amqplib's `Channel` is.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { StreamHistoryConfig } from "../config/config.ts";
import type { AmqpMessageLike } from "../protocol/clu.ts";
import { describeError } from "./errors.ts";
import { isMarker, MARKER_HEADER, streamOffset } from "./stream.ts";
import { logger } from "../log.ts";

const log = logger("broker");

/** Messages the live stream consumer may hold unacknowledged (acked in batches). */
export const LIVE_PREFETCH = 2000;

/** What reading the stream needs of an AMQP channel (amqplib's `Channel` has it). */
export interface StreamChannel {
  /** Listens to the channel's errors or its close. */
  on(event: "error" | "close", listener: (err: Error) => void): unknown;
  /** Sets how many messages may be unacknowledged. */
  prefetch(count: number): Promise<unknown>;
  /** Consumes a queue; `null` means the broker cancelled the consumer. */
  consume(
    queue: string,
    onMessage: (message: AmqpMessageLike | null) => void,
    options: { noAck: boolean; arguments: Record<string, unknown> },
  ): Promise<unknown>;
  /** Acknowledges a message (and all before it with `allUpTo`). */
  ack(message: AmqpMessageLike, allUpTo?: boolean): void;
  /** Publishes to a queue through the default exchange. */
  sendToQueue(
    queue: string,
    content: Buffer,
    options: { headers: Record<string, unknown>; persistent: boolean },
  ): boolean;
  /** Closes the channel. */
  close(): Promise<void>;
}

/** How the link reads replies from the history stream. */
export interface StreamLiveOptions {
  /** The stream. */
  config: StreamHistoryConfig;
  /** Where to start reading on each link up: the next offset not yet seen, or undefined for the stream's end. */
  from(): number | undefined;
  /** Called for each marker read (a gateway's, this one's included): the stream's end has moved to `offset` + 1. */
  onMarker(offset: number): void;
  /**
   * The stream ends before `from()` (deleted and declared again, say): its
   * positions started over at `offset` (this link's marker). The link
   * reconnects after this, to read from the new stream's end.
   */
  onRestart(offset: number): void;
}

/** What the live consumer needs of the link. */
export interface LiveStreamContext {
  /** The stream and where to start. */
  stream: StreamLiveOptions;
  /** The gateway's name, in its markers. */
  gateway: string;
  /** Every reply read, with its offset (the `x-stream-offset` header removed). */
  onReply(message: AmqpMessageLike, offset: number): void;
  /** Whether this channel is still the link's (acks on a replaced channel are dropped). */
  current(): boolean;
  /** The broker cancelled the consumer, or the stream started over: the link starts over. */
  lost(): void;
  /** A channel of its own (to look where the stream ends). */
  openChannel(): Promise<StreamChannel>;
}

/** How long the look for this link's marker at the stream's end may take (ms). */
const END_CHECK_MS = 10_000;

/**
 * Reads replies from the stream on `channel`, from `from()` or the stream's
 * end, acknowledging in batches; then appends a marker, so that the stream's
 * end is known even while no reply comes.
 */
export async function consumeLiveStream(channel: StreamChannel, context: LiveStreamContext): Promise<void> {
  const { stream } = context;
  await channel.prefetch(LIVE_PREFETCH);
  const from = stream.from();
  let unacked: AmqpMessageLike | undefined;
  let pending = 0;
  let flush: ReturnType<typeof setTimeout> | undefined;
  const ack = () => {
    flush = undefined;
    if (!unacked) return;
    const message = unacked;
    unacked = undefined;
    pending = 0;
    // The channel may have closed since: the next link reads from the offset after the last reply.
    if (context.current()) channel.ack(message, true);
  };
  await channel.consume(stream.config.name, (message) => {
    if (message === null) {
      log.warn("RabbitMQ cancelled the history stream consumer (stream deleted?); reconnecting");
      context.lost();
      return;
    }
    unacked = message;
    // Acked in batches: one ack per message would cost a frame each; half the prefetch keeps it flowing.
    if (++pending >= LIVE_PREFETCH / 2) ack();
    else flush ??= setTimeout(ack, 0);
    const offset = streamOffset(message);
    if (offset === undefined) return;
    if (isMarker(message)) return stream.onMarker(offset);
    delete message.properties.headers!["x-stream-offset"];
    context.onReply(message, offset);
  }, { noAck: false, arguments: { "x-stream-offset": from ?? "next" } });
  // The marker: read back by every reader, it says where the stream ended when this link came up.
  const tag = `${context.gateway} ${crypto.randomUUID()}`;
  appendMarker(channel, stream.config.name, tag);
  // Reading on from a position: a stream that now ends before it (deleted and declared again) would
  // deliver nothing until its offsets caught up. This link's marker, read at the end, says where it ends.
  if (from !== undefined) void checkStreamEnd(context, tag, from);
}

/** Reads the stream's last chunk for the marker `tag`; one before `from` means the stream started over. */
async function checkStreamEnd(context: LiveStreamContext, tag: string, from: number): Promise<void> {
  const done = Promise.withResolvers<void>();
  const timer = setTimeout(done.resolve, END_CHECK_MS);
  let reader: StreamReader | undefined;
  try {
    reader = await openStreamReader(await context.openChannel(), context.stream.config.name, "last", 100, {
      message(message, offset) {
        reader?.ack(message);
        if (message.properties.headers?.[MARKER_HEADER] !== tag) return;
        if (offset < from && context.current()) {
          log.error(
            "the history stream {stream} ends at {offset}, before this gateway's position {from}: it was deleted and declared again; positions start over (clients resuming from before get gap)",
            { stream: context.stream.config.name, offset, from },
          );
          context.stream.onRestart(offset);
          context.lost();
        }
        done.resolve();
      },
      ended: () => done.resolve(),
    });
    await done.promise;
    await reader.close();
    reader = undefined;
  } catch {
    // The link went down meanwhile: the next link looks again.
  } finally {
    clearTimeout(timer);
    await reader?.close();
  }
}

/** Appends a marker (an empty message every reader skips), tagged `tag` (the gateway's name…), to the stream. */
export function appendMarker(channel: StreamChannel, stream: string, tag: string): void {
  channel.sendToQueue(stream, Buffer.alloc(0), { headers: { [MARKER_HEADER]: tag }, persistent: true });
}

/** One reader of the stream at an offset (a resume's replay); see {@linkcode openStreamReader}. */
export interface StreamReader {
  /** Acknowledges every message up to this one: the broker may send more (prefetch). */
  ack(message: AmqpMessageLike): void;
  /** Stops reading and closes its channel (idempotent). */
  close(): Promise<void>;
}

/** What a {@linkcode StreamReader} reports. */
export interface StreamReaderEvents {
  /** A message (a reply or a marker) with its offset. */
  message(message: AmqpMessageLike, offset: number): void;
  /** The reader stopped without being closed: the channel or the link was lost, or the stream deleted. */
  ended(reason: string): void;
}

/**
 * Reads `stream` on `channel` (a fresh one, closed with the reader) from
 * `offset`, or from the first chunk written since a time, `prefetch`
 * messages ahead of the acknowledgements: a reader that stops acking stops
 * the broker. Messages before `offset` (a stream is read by chunks) are
 * skipped here.
 */
export async function openStreamReader(
  channel: StreamChannel,
  stream: string,
  offset: number | Date | "last",
  prefetch: number,
  events: StreamReaderEvents,
): Promise<StreamReader> {
  let closed = false;
  channel.on("error", (err: Error) => {
    log.warn("history stream reader: channel error: {error}", { error: describeError(err) });
  });
  channel.on("close", () => {
    if (closed) return;
    closed = true;
    events.ended("the RabbitMQ channel closed");
  });
  const close = async () => {
    if (closed) return;
    closed = true;
    await channel.close().catch(() => {/* the link went with it */});
  };
  try {
    await channel.prefetch(prefetch);
    await channel.consume(stream, (message) => {
      if (closed) return;
      if (message === null) {
        void close();
        events.ended("RabbitMQ cancelled the reader (the stream was deleted?)");
        return;
      }
      const at = streamOffset(message);
      if (at === undefined || (typeof offset === "number" && at < offset)) {
        channel.ack(message);
        return;
      }
      if (!isMarker(message)) delete message.properties.headers!["x-stream-offset"];
      events.message(message, at);
    }, {
      noAck: false,
      // amqplib encodes a Date as no AMQP type (the broker would close the connection): a timestamp, in s.
      arguments: {
        "x-stream-offset": typeof offset === "number" || offset === "last"
          ? offset
          : { "!": "timestamp", value: Math.floor(offset.getTime() / 1000) },
      },
    });
  } catch (err) {
    await close();
    throw err;
  }
  return {
    ack: (message) => {
      if (!closed) channel.ack(message, true);
    },
    close,
  };
}
