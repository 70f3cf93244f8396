/**
 * Batched socket writes as one plain `write`: when a corked `net.Socket` (or
 * `tls.TLSSocket`) is uncorked with several chunks queued, Node's stream calls
 * the socket's `_writev`. Under Deno 2.9 that path costs several times a
 * plain write per call (at 5,000 commands/s, the `writev`s of the websocket
 * acknowledgements and of amqplib's frames were 39 % of the gateway's busy
 * time; one `write` of the same bytes costs a fraction of that), so small
 * batches are copied into one buffer and written once. A batch larger than
 * {@linkcode MERGE_LIMIT_BYTES} keeps `writev`: copying it would cost more
 * than the call saves, and would double its memory for a moment.
 *
 * Everything still goes through the socket's own queue, in order, so frames
 * that `ws` or amqplib write themselves (close frames, pongs, heartbeats) are
 * never reordered against ours.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/**
 * Largest batch copied into one buffer by default; above this the socket's own `writev` runs. Small:
 * the merge pays for itself on the many small writes (acknowledgements, a reply or two per turn), while
 * a big batch of replies shared by many sockets would be copied once per socket.
 */
export const MERGE_LIMIT_BYTES = 16 * 1024;

/** One queued chunk, as Node's `Writable` hands it to `_writev`. */
interface QueuedChunk {
  chunk: unknown;
  encoding: string;
}

type Writev = (
  chunks: QueuedChunk[] & { allBuffers?: boolean },
  callback: (err?: Error | null) => void,
) => void;

/** The parts of a Node socket used here. */
interface WritableInternals {
  _writev?: Writev | null;
  _write?: (chunk: Uint8Array, encoding: string, callback: (err?: Error | null) => void) => void;
}

const MERGING = Symbol("clu-ws merged writes");

/**
 * Makes `socket`'s batched writes one copied `write` when they are small.
 *
 * @param socket A `net.Socket` or `tls.TLSSocket`.
 * @returns whether the socket now merges its batches (false: it has no `_writev`/`_write`, or merges already).
 */
export function mergeBatchedWrites(socket: object): boolean {
  const target = socket as WritableInternals & { [MERGING]?: true };
  const writev = target._writev;
  const write = target._write;
  if (target[MERGING] || typeof writev !== "function" || typeof write !== "function") return false;
  target[MERGING] = true;
  target._writev = function (this: WritableInternals, chunks, callback) {
    let total = 0;
    for (const { chunk } of chunks) {
      if (!(chunk instanceof Uint8Array)) return writev.call(this, chunks, callback);
      total += chunk.byteLength;
      if (total > MERGE_LIMIT_BYTES) return writev.call(this, chunks, callback);
    }
    const merged = Buffer.allocUnsafe(total);
    let offset = 0;
    for (const { chunk } of chunks) {
      merged.set(chunk as Uint8Array, offset);
      offset += (chunk as Uint8Array).byteLength;
    }
    write.call(this, merged, "buffer", callback);
  };
  return true;
}
