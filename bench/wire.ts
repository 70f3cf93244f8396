/**
 * The benchmark's messages: CLU-shaped replies whose ~200-byte JSON body
 * carries a sequence number (`bench_seq`) and the publish time (`ts`), and a cheap scanner that
 * finds them again in websocket frames (one frame, or a batch of several)
 * without parsing every frame as JSON.
 *
 * @module
 */

/** The `sender` header of every benchmark reply. */
export const BENCH_SENDER = "bench";

/** The routing key benchmark replies are published on (a CLU broadcast). */
export const BENCH_ROUTING_KEY = "reply.broadcast";

/** Size of a reply body in bytes, as a CLU actor's keyword reply might be. */
export const BODY_BYTES = 200;

/** The AMQP headers of a benchmark reply, as a CLU actor sets them for a broadcast. */
export const BENCH_HEADERS: Readonly<Record<string, unknown>> = Object.freeze({
  command_id: null,
  commander_id: null,
  internal: false,
  message_code: "i",
  sender: BENCH_SENDER,
});

let padding = "x".repeat(BODY_BYTES);

/** The body of warm-up reply `seq`: same size, but no `bench_seq`, so clients do not count it. */
export function warmupBody(seq: number, bytes = BODY_BYTES): string {
  if (padding.length < bytes) padding = "x".repeat(bytes);
  const head = `{"warmup":${seq},"text":"`;
  return `${head}${padding.slice(0, Math.max(0, bytes - head.length - 2))}"}`;
}

/** The body of reply `seq` published at `sentMs` (ms since the epoch), padded to `bytes`. */
export function replyBody(seq: number, sentMs: number, bytes = BODY_BYTES): string {
  if (padding.length < bytes) padding = "x".repeat(bytes);
  const head = `{"bench_seq":${seq},"ts":${sentMs.toFixed(3)},"text":"`;
  return `${head}${padding.slice(0, Math.max(0, bytes - head.length - 2))}"}`;
}

// Not `{"seq":`: clu-ws v1 frames start with their own `"seq"`.
const MARK = '{"bench_seq":';

/**
 * Calls `found(seq, sentMs)` for every benchmark body in `text` (a frame, a
 * batched frame, or a raw AMQP body) and returns how many it found.
 */
export function scanBodies(text: string, found: (seq: number, sentMs: number) => void): number {
  let count = 0;
  let at = text.indexOf(MARK);
  while (at >= 0) {
    let i = at + MARK.length;
    let seq = 0;
    let c = text.charCodeAt(i);
    while (c >= 48 && c <= 57) {
      seq = seq * 10 + (c - 48);
      c = text.charCodeAt(++i);
    }
    // `,"ts":` follows the sequence number.
    const tsStart = i + 6;
    let tsEnd = tsStart;
    c = text.charCodeAt(tsEnd);
    while ((c >= 48 && c <= 57) || c === 46) c = text.charCodeAt(++tsEnd);
    found(seq, Number(text.slice(tsStart, tsEnd)));
    count++;
    at = text.indexOf(MARK, tsEnd);
  }
  return count;
}
