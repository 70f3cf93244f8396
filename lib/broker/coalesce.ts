/**
 * Fewer system calls for AMQP frames. amqplib's multiplexer (`Mux`) moves
 * the frames its channels queued to the socket in passes scheduled with
 * `setImmediate`, and writes them one by one, each its own system call; at a
 * few thousand commands per second nearly every command was its own pass, and
 * those writes (on loopback the sender pays for the whole TCP path) were the
 * largest single cost of a command.
 *
 * So the socket is corked during a pass, and uncorked (one `write` of every
 * frame, see `merged_writes.ts`) at once when the last flush is at least
 * {@linkcode FLUSH_INTERVAL_MS} old, or else when it becomes that old: at a
 * low rate nothing waits; at a high one the socket sees at most one write per
 * interval, each with every frame queued since. Heartbeats and closes written
 * by amqplib go through the same socket in order; `end()` uncorks.
 *
 * This reaches into amqplib's connection (`connection.muxer`, its `out` stream
 * and `_readIncoming`), which its public API does not expose. It is done
 * defensively: if a future amqplib moves them, nothing is changed and the
 * frames go out as before, and `tests/broker_coalesce_test.ts` fails, so that
 * the loss is seen.
 *
 * @module
 */

import { mergeBatchedWrites } from "../merged_writes.ts";

/** Least time between two flushes of the socket while frames keep coming (ms). */
export const FLUSH_INTERVAL_MS = 1;
/** Queued bytes that flush at once, whatever the interval. */
export const FLUSH_BYTES = 64 * 1024;

/** The parts of amqplib's `Mux` used here. */
interface MuxLike {
  out?: {
    cork?: () => void;
    uncork?: () => void;
    readonly writableLength?: number;
    readonly destroyed?: boolean;
  };
  _readIncoming?: () => void;
}

/**
 * Makes `model`'s frame writes coalesce as described in this module.
 *
 * @param model An amqplib `ChannelModel` (what `connect` resolves to).
 * @returns whether the writes now coalesce (false: amqplib's internals were not where expected).
 */
export function coalesceFrameWrites(model: unknown): boolean {
  const mux = (model as { connection?: { muxer?: MuxLike } }).connection?.muxer;
  const out = mux?.out;
  const pass = mux?._readIncoming;
  if (
    !mux || typeof pass !== "function" || typeof out?.cork !== "function" || typeof out.uncork !== "function"
  ) {
    return false;
  }
  mergeBatchedWrites(out);
  const cork = out.cork.bind(out);
  const uncork = out.uncork.bind(out);
  let corked = false;
  let lastFlush = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    lastFlush = performance.now();
    if (!corked) return;
    corked = false;
    uncork();
  };
  mux._readIncoming = function (this: MuxLike) {
    if (!corked && !out.destroyed) {
      corked = true;
      cork();
    }
    try {
      pass.call(this);
    } finally {
      const since = performance.now() - lastFlush;
      if (since >= FLUSH_INTERVAL_MS || (out.writableLength ?? 0) >= FLUSH_BYTES || out.destroyed) {
        flush();
      } else if (timer === undefined) {
        const scheduled = setTimeout(flush, FLUSH_INTERVAL_MS - since);
        Deno.unrefTimer(scheduled);
        timer = scheduled;
      }
    }
  };
  return true;
}
