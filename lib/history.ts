/**
 * The recent replies, for clients that reconnect (clu-ws v1 `resume`): a ring
 * bounded by count and age, each entry with its position, its v1 frame text
 * and what filters look at.
 *
 * @module
 */

import type { ReplyMeta } from "./filter.ts";

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
}

/** The bounded history. */
export class History {
  readonly #options: HistoryOptions;
  readonly #ring: (HistoryEntry | undefined)[];
  #start = 0;
  #size = 0;

  /** An empty history. */
  constructor(options: HistoryOptions) {
    this.#options = options;
    this.#ring = new Array(Math.max(0, options.maxEntries));
  }

  /** Remembers an entry (its seq must follow the previous one). */
  push(entry: HistoryEntry): void {
    if (this.#ring.length === 0) return;
    if (this.#size === this.#ring.length) {
      this.#ring[this.#start] = entry;
      this.#start = (this.#start + 1) % this.#ring.length;
    } else {
      this.#ring[(this.#start + this.#size) % this.#ring.length] = entry;
      this.#size++;
    }
  }

  #expire(now: number): void {
    const oldest = now - this.#options.maxAgeSeconds * 1000;
    while (this.#size > 0 && this.#ring[this.#start]!.at < oldest) {
      this.#ring[this.#start] = undefined;
      this.#start = (this.#start + 1) % this.#ring.length;
      this.#size--;
    }
  }

  /** The oldest seq still kept, or undefined when empty. */
  oldest(now: number = Date.now()): number | undefined {
    this.#expire(now);
    return this.#size === 0 ? undefined : this.#ring[this.#start]!.seq;
  }

  /** How many entries are kept. */
  get size(): number {
    return this.#size;
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
      out.push(this.#ring[(this.#start + i) % this.#ring.length]!);
    }
    return out;
  }
}
