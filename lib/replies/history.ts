/**
 * The recent replies, for clients that reconnect (clu-ws v1 `resume`): a ring
 * bounded by count, age and bytes, each entry with its position, its v1 frame
 * text and what filters look at.
 *
 * Entries are kept as UTF-8 bytes in one buffer allocated up front, not as
 * JavaScript strings and objects. Why: every reply the history keeps outlives
 * the young generation, and V8 grows its young generation (up to tens of MiB)
 * as soon as a steady stream of objects survives; a gateway that kept 1,000
 * reply strings peaked 50 MiB higher under a flood than one that kept none.
 * Bytes in a buffer survive nothing, hold exactly one flat copy of each reply
 * (no cons or sliced string keeping a larger parent alive, no broker buffer)
 * and cost what the byte bound says. Reading them back (`resume`) decodes
 * them again, which is rare and bounded.
 *
 * @module
 */

import type { ReplyMeta } from "../clients/filter.ts";

/** One remembered reply. */
export interface HistoryEntry {
  /** Position in this epoch. */
  seq: number;
  /** When it was received (ms since the epoch). */
  at: number;
  /** The v1 frame text (with `seq`). */
  frame: string;
  /** For subscription filters. */
  meta: ReplyMeta;
}

/** Options for {@linkcode History}. */
export interface HistoryOptions {
  /** Entries kept at most. */
  maxEntries: number;
  /** Seconds an entry is kept at most. */
  maxAgeSeconds: number;
  /**
   * Bytes kept at most: each entry counts its frame and filter fields (UTF-8)
   * plus {@linkcode HISTORY_ENTRY_OVERHEAD}. The buffer for them is allocated
   * once at this size.
   */
  maxBytes: number;
}

/** Bytes each entry counts against `maxBytes` besides its text: its index slot (seq, time, offsets). */
export const HISTORY_ENTRY_OVERHEAD = 32;

/** How every v1 reply frame begins, before its seq and a comma: the part the history need not keep. */
const V1_HEAD = '{"seq":';

/** The length of `frame`'s `{"seq":<seq>,` head (ASCII: characters are bytes), or 0 if it has none. */
function v1HeadLength(frame: string, seq: number): number {
  const head = `${V1_HEAD}${seq},`;
  return frame.startsWith(head) ? head.length : 0;
}

/** Most UTF-8 bytes of filter fields remembered for the next entry (the same sender's replies share them). */
const META_CACHE_BYTES = 1024;

const encoder = new TextEncoder();

/** Most UTF-8 bytes an entry encodes in the shared scratch buffer; larger ones get buffers of their own. */
const SCRATCH_BYTES = 64 * 1024;
const scratch = new Uint8Array(SCRATCH_BYTES);

/**
 * A text as UTF-8, in the shared scratch buffer when it fits (the usual reply): encoding into an existing
 * buffer costs a tenth of `encode`, which makes a new one per call. The view is valid until the next call;
 * the history copies it into its own buffer at once.
 */
function utf8(text: string): Uint8Array {
  if (text.length * 3 > SCRATCH_BYTES) return encoder.encode(text);
  return scratch.subarray(0, encoder.encodeInto(text, scratch).written);
}

const decoder = new TextDecoder();

/** The bounded history. */
export class History {
  readonly #options: HistoryOptions;
  /** Slots, one per entry kept: when, where its bytes start, and how many for the frame and the meta. */
  readonly #at: Float64Array;
  readonly #offset: Float64Array;
  readonly #frameBytes: Uint32Array;
  readonly #metaBytes: Uint32Array;
  /** 1 where the frame is kept without its `{"seq":<seq>,` head (every v1 reply), 0 where kept whole. */
  readonly #headless: Uint8Array;
  readonly #bytes: Uint8Array;
  /** The last entry's filter fields and their UTF-8 (in `#metaCache`): a burst from one actor shares them. */
  #lastMeta: ReplyMeta | undefined;
  #lastMetaBytes = 0;
  readonly #metaCache = new Uint8Array(META_CACHE_BYTES);
  /** Slot of the oldest entry. */
  #start = 0;
  #size = 0;
  #oldestSeq = 0;
  /** Where the newest entry's bytes end (the next write position). */
  #end = 0;
  /** Bytes counted against the bound (text plus overhead) of the entries kept. */
  #used = 0;

  /** An empty history. */
  constructor(options: HistoryOptions) {
    this.#options = options;
    const slots = Math.max(0, options.maxEntries);
    this.#at = new Float64Array(slots);
    this.#offset = new Float64Array(slots);
    this.#frameBytes = new Uint32Array(slots);
    this.#metaBytes = new Uint32Array(slots);
    this.#headless = new Uint8Array(slots);
    // Zero-filled and untouched, the pages cost no resident memory until replies fill them.
    this.#bytes = new Uint8Array(slots === 0 ? 0 : Math.max(0, options.maxBytes));
  }

  /**
   * Remembers an entry (its seq must follow the previous one).
   *
   * @param tail The UTF-8 of `entry.frame` after its `{"seq":<seq>,` head, when the caller has it already
   *   (the frame's websocket payload, see `Replies`): copied rather than encoded again. It must be exactly
   *   those bytes.
   */
  push(entry: HistoryEntry, tail?: Uint8Array): void {
    if (this.#at.length === 0 || this.#bytes.length === 0) return;
    // The filter fields in their own small buffer, the frame (when not given) in the scratch one.
    const meta = this.#metaUtf8(entry.meta);
    let frame = tail;
    let headless = 1;
    if (frame === undefined) {
      const head = v1HeadLength(entry.frame, entry.seq);
      frame = utf8(head > 0 ? entry.frame.slice(head) : entry.frame);
      headless = head > 0 ? 1 : 0;
    }
    const size = frame.length + meta.length;
    if (size + HISTORY_ENTRY_OVERHEAD > this.#options.maxBytes) {
      // Larger than the whole budget: it cannot be kept, and nothing before it can be replayed past it.
      this.#clear(entry.seq + 1);
      return;
    }
    if (this.#size === this.#at.length) this.#evictOldest();
    while (this.#size > 0 && this.#used + size + HISTORY_ENTRY_OVERHEAD > this.#options.maxBytes) {
      this.#evictOldest();
    }
    let position = this.#end;
    if (position + size > this.#bytes.length) {
      // No room before the end of the buffer: the entries still there are the oldest; they go, and
      // the entry is written from the start.
      while (this.#size > 0 && this.#offset[this.#start] >= position) this.#evictOldest();
      position = 0;
    }
    while (
      this.#size > 0 && this.#offset[this.#start] >= position && this.#offset[this.#start] < position + size
    ) {
      this.#evictOldest();
    }
    if (this.#size === 0) this.#oldestSeq = entry.seq;
    this.#bytes.set(frame, position);
    this.#bytes.set(meta, position + frame.length);
    const slot = (this.#start + this.#size) % this.#at.length;
    this.#at[slot] = entry.at;
    this.#offset[slot] = position;
    this.#frameBytes[slot] = frame.length;
    this.#metaBytes[slot] = meta.length;
    this.#headless[slot] = headless;
    this.#size++;
    this.#end = position + size;
    this.#used += size + HISTORY_ENTRY_OVERHEAD;
  }

  /**
   * The filter fields as UTF-8: the last entry's bytes again when they are the same (a view valid until
   * the next call), else encoded now.
   */
  #metaUtf8(meta: ReplyMeta): Uint8Array {
    const last = this.#lastMeta;
    if (
      last !== undefined && last.sender === meta.sender && last.code === meta.code &&
      last.routingKey === meta.routingKey && last.commandId === meta.commandId
    ) {
      return this.#metaCache.subarray(0, this.#lastMetaBytes);
    }
    const text = metaText(meta);
    if (text.length * 3 > META_CACHE_BYTES) {
      this.#lastMeta = undefined;
      return encoder.encode(text);
    }
    // A copy: the caller's object may change after this entry.
    this.#lastMeta = {
      sender: meta.sender,
      code: meta.code,
      routingKey: meta.routingKey,
      commandId: meta.commandId,
    };
    this.#lastMetaBytes = encoder.encodeInto(text, this.#metaCache).written;
    return this.#metaCache.subarray(0, this.#lastMetaBytes);
  }

  #evictOldest(): void {
    const slot = this.#start;
    this.#used -= this.#frameBytes[slot] + this.#metaBytes[slot] + HISTORY_ENTRY_OVERHEAD;
    this.#start = (this.#start + 1) % this.#at.length;
    this.#size--;
    this.#oldestSeq++;
    if (this.#size === 0) this.#reset(this.#oldestSeq);
  }

  /** Forgets everything; the next entry kept will be `nextSeq` or later. */
  #clear(nextSeq: number): void {
    this.#size = 0;
    this.#reset(nextSeq);
  }

  #reset(nextSeq: number): void {
    this.#start = 0;
    this.#end = 0;
    this.#used = 0;
    this.#oldestSeq = nextSeq;
  }

  #expire(now: number): void {
    const oldest = now - this.#options.maxAgeSeconds * 1000;
    while (this.#size > 0 && this.#at[this.#start] < oldest) this.#evictOldest();
  }

  /** The oldest seq still kept, or undefined when empty. */
  oldest(now: number = Date.now()): number | undefined {
    this.#expire(now);
    return this.#size === 0 ? undefined : this.#oldestSeq;
  }

  /** How many entries are kept. */
  get size(): number {
    return this.#size;
  }

  /** Bytes counted against the byte bound by the entries kept (text plus overhead). */
  get bytes(): number {
    return this.#used;
  }

  /**
   * The entries after `seq`, oldest first, or undefined when some of them are
   * no longer kept (a gap the client must be told about).
   */
  after(seq: number, latest: number, now: number = Date.now()): HistoryEntry[] | undefined {
    if (seq >= latest) return [];
    const oldest = this.oldest(now);
    if (oldest === undefined || oldest > seq + 1) return undefined;
    const out: HistoryEntry[] = [];
    for (let i = seq + 1 - oldest; i < this.#size; i++) {
      const slot = (this.#start + i) % this.#at.length;
      const start = this.#offset[slot];
      const frameEnd = start + this.#frameBytes[slot];
      const seq = oldest + i;
      const kept = decoder.decode(this.#bytes.subarray(start, frameEnd));
      out.push({
        seq,
        at: this.#at[slot],
        frame: this.#headless[slot] === 1 ? `${V1_HEAD}${seq},${kept}` : kept,
        meta: parseMeta(decoder.decode(this.#bytes.subarray(frameEnd, frameEnd + this.#metaBytes[slot]))),
      });
    }
    return out;
  }
}

/** The filter fields as one text (JSON: any character may appear in a sender or a routing key). */
function metaText(meta: ReplyMeta): string {
  return JSON.stringify([meta.sender, meta.code, meta.routingKey, meta.commandId ?? null]);
}

function parseMeta(text: string): ReplyMeta {
  const [sender, code, routingKey, commandId] = JSON.parse(text) as [string, string, string, string | null];
  return { sender, code, routingKey, commandId: commandId ?? undefined };
}
