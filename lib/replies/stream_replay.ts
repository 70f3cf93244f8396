/**
 * One resume's replay from the history stream (see `stream_history.ts` for
 * the hand-over): a reader of its own from the client's last reply (or from a
 * time), every reply before the live position sent to the client at its
 * socket's pace, and the answer (`resumed`, `gap`, or a 1013 close when the
 * reader is lost) given with the client's return to the live fan-out.
 *
 * @module
 */

import type { AmqpMessageLike } from "../protocol/clu.ts";
import type { StreamHistoryConfig } from "../config/config.ts";
import type { StreamReader, StreamReaderEvents } from "../broker/link.ts";
import type { Client, Hub } from "../clients/hub.ts";
import { encodeResumed, type RequestId } from "../protocol/v1.ts";
import { isMarker } from "../broker/stream.ts";
import { decodeReply, v1ReplyFrame } from "./replies.ts";
import { isIntrospectionReply } from "../introspection/introspector.ts";
import { logger } from "../log.ts";

const log = logger("history");

/** Messages a replay's reader may hold unacknowledged. */
export const REPLAY_PREFETCH = 500;
/** How long a replay waits for its next message before giving up (ms). */
const IDLE_TIMEOUT_MS = 15_000;
/** A replay by time that got nothing for this long appends a marker, which ends its wait at the stream's end (ms). */
const MARKER_AFTER_MS = 250;
/** How often a paused replay looks whether its client's socket drained (ms). */
const DRAIN_CHECK_MS = 20;
/** Close code for a client whose replay was cut (RFC 6455 "try again later"): it reconnects and resumes. */
export const CLOSE_TRY_AGAIN = 1013;

/** What a replay needs of the broker link. */
export interface StreamSource {
  /** Whether the link is up. */
  readonly up: boolean;
  /** Opens a reader of the stream at `offset`, or at the first chunk written since a time. */
  readStream(offset: number | Date, prefetch: number, events: StreamReaderEvents): Promise<StreamReader>;
  /** Appends a marker to the stream (readers skip it): a reader waiting at the end gets a message. */
  appendMarker(): void;
}

/** One replay: to whom, from where, and how it reaches the stream history's state. */
export interface ReplayContext<G> {
  /** The clients. */
  hub: Hub<G>;
  /** The broker link. */
  source: StreamSource;
  /** The stream's settings. */
  config: StreamHistoryConfig;
  /** The client (held out of the live fan-out until {@linkcode ReplayContext.end}). */
  client: Client<G>;
  /** The request's id. */
  id: RequestId;
  /** The client's last position (an offset + 1). */
  seq: number;
  /** Instead of `seq`: from this time (ms since 1970). */
  since?: number;
  /** The live position (the next offset the live consumer delivers). */
  liveNext(): number;
  /** Resolves when the live position moves, or after `ms`. */
  nextWake(ms: number): Promise<void>;
  /** Puts the client back in the live fan-out and answers, in one step. */
  end(answer: () => void): void;
  /** The `gap` answer (call within {@linkcode ReplayContext.end}). */
  gap(reason: string, oldest?: number): void;
}

/**
 * Reads the stream from `seq` (an offset), or from the time `since`, and
 * sends the client what it missed, until live catches it.
 */
export async function replayFromStream<G>(ctx: ReplayContext<G>): Promise<void> {
  const { hub, source, config, client, id, seq, since } = ctx;
  const inbox: Array<[AmqpMessageLike, number]> = [];
  let ended: string | undefined;
  let wake: (() => void) | undefined;
  const events: StreamReaderEvents = {
    message(message, offset) {
      inbox.push([message, offset]);
      wake?.();
    },
    ended(reason) {
      ended = reason;
      wake?.();
    },
  };
  let next = seq;
  /** The position the replay is after (the client's `seq`, or where `since` starts). */
  let from = seq;
  let count = 0;
  const finish = () => ctx.end(() => hub.send(client, encodeResumed({ id, from, to: next, count })));
  // Gone while it waited for a reader slot.
  if (!client.outbox.open) return ctx.end(() => {});
  if (since === undefined && next >= ctx.liveNext()) return finish();
  let reader: StreamReader;
  let first = true;
  let markerTimer: ReturnType<typeof setTimeout> | undefined;
  try {
    // From the last reply the client has (a message, never a hole: offsets have holes), so that a
    // later first offset means the retention took it.
    reader = await source.readStream(
      since === undefined ? Math.max(0, seq - 1) : new Date(since),
      REPLAY_PREFETCH,
      events,
    );
    // Nothing may have come since then: the marker is the message that ends the wait at the end.
    if (since !== undefined) {
      markerTimer = setTimeout(() => {
        if (first && inbox.length === 0) source.appendMarker();
      }, MARKER_AFTER_MS);
    }
  } catch (err) {
    return ctx.end(() =>
      client.outbox.close(
        CLOSE_TRY_AGAIN,
        `the history stream cannot be read now (${err}); reconnect to resume`,
      )
    );
  }
  const startedAt = Date.now();
  let pauses = 0;
  /** Bytes sent to the client since the last turn ended. */
  let unflushed = 0;
  try {
    while (true) {
      if (!client.outbox.open) return ctx.end(() => {});
      if (next >= ctx.liveNext()) return finish();
      if (inbox.length === 0) {
        if (ended !== undefined) {
          const why = ended;
          return ctx.end(() =>
            client.outbox.close(CLOSE_TRY_AGAIN, `replay cut: ${why}; reconnect to resume`)
          );
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const idle = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), IDLE_TIMEOUT_MS);
          wake = () => resolve(true);
        });
        // The live position may move past everything while the reader waits (e.g. markers only).
        const moved = ctx.nextWake(IDLE_TIMEOUT_MS).then(() => true);
        const woke = await Promise.race([idle, moved]);
        clearTimeout(timer);
        wake = undefined;
        if (!woke) {
          return ctx.end(() =>
            ctx.gap(`the history stream delivered nothing for ${IDLE_TIMEOUT_MS / 1000} s`)
          );
        }
        continue;
      }
      const [message, offset] = inbox.shift()!;
      if (first && since !== undefined) {
        first = false;
        from = next = Math.min(offset, ctx.liveNext());
        if (ctx.liveNext() - from > config.maxReplay) {
          // Too far back for one resume: the last --history-max-replay positions only.
          await reader.close();
          inbox.length = 0;
          from = next = ctx.liveNext() - config.maxReplay;
          try {
            reader = await source.readStream(next, REPLAY_PREFETCH, events);
          } catch (err) {
            return ctx.end(() =>
              client.outbox.close(
                CLOSE_TRY_AGAIN,
                `the history stream cannot be read now (${err}); reconnect to resume`,
              )
            );
          }
          continue;
        }
      }
      if (first) {
        first = false;
        // A stream reader starts at the first offset still kept: a later one than the client's last
        // reply (or than 0 for a client that has none) means the retention took what it missed.
        if (offset > Math.max(0, seq - 1)) {
          return ctx.end(() =>
            ctx.gap(
              `replies after ${seq} are no longer in the stream (its retention, --history-max-age and --history-max-bytes)`,
              offset + 1,
            )
          );
        }
      }
      // Not yet delivered live: the live consumer sends it once the client is back in the fan-out.
      if (offset >= ctx.liveNext()) return finish();
      if (offset >= next) {
        next = offset + 1;
        // By time: a stream is positioned by chunks, so what its first chunk holds from before `since` is
        // left out by the reply's own timestamp (seconds), when it has one.
        const stamp = message.properties.timestamp;
        const before = since !== undefined && typeof stamp === "number" && stamp < Math.floor(since / 1000);
        // The gateways' own introspection answers are in the stream too (bound to reply.#): never a client's.
        if (!isMarker(message) && !before && !isIntrospectionReply(message)) {
          const decoded = decodeReply(message);
          if (decoded.kind === "reply") {
            const frame = v1ReplyFrame(offset + 1, decoded.reply.frame);
            const sent = hub.replay(client, [{ frame, meta: decoded.meta }]);
            count += sent;
            unflushed += sent * frame.length;
          }
        }
      }
      // Flow control: what the socket has not taken is not acknowledged, so the broker waits too.
      if (hub.backlogged(client, unflushed)) {
        // Writes of this turn are corked: let them reach the socket before its backlog is looked at.
        await new Promise((resolve) => setTimeout(resolve, 0));
        unflushed = 0;
      }
      if (hub.backlogged(client)) {
        if (pauses++ === 0) {
          log.debug("replay to client {client} paused at {seq}: {bytes} bytes wait for its socket", {
            client: client.id,
            seq: next,
            bytes: client.outbox.buffered,
          });
        }
        while (hub.backlogged(client) && client.outbox.open) {
          await new Promise((resolve) => setTimeout(resolve, DRAIN_CHECK_MS));
        }
      }
      reader.ack(message);
      if (next - from > 2 * config.maxReplay) {
        return ctx.end(() =>
          client.outbox.close(
            CLOSE_TRY_AGAIN,
            "the replay could not catch up with live replies; reconnect to resume",
          )
        );
      }
    }
  } finally {
    clearTimeout(markerTimer);
    await reader.close();
    log.debug(
      "replayed {count} replies to client {client} from {from} to {to} in {ms} ms ({pauses} pauses)",
      {
        count,
        pauses,
        client: client.id,
        from,
        to: next,
        ms: Date.now() - startedAt,
      },
    );
  }
}
