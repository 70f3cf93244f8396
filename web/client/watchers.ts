/**
 * Keyword watchers: callbacks on one actor's keyword, fed first from the
 * gateway's state and then from live replies. Each remembers the position of
 * the value it was last given, so a snapshot older than a reply already seen
 * does not overwrite it.
 *
 * @module
 */

import type { StateFrame } from "../../lib/protocol/v1.ts";
import type { Frame } from "./types.ts";

/** What a watcher is called with: the keyword's value and, for a live reply, the reply. */
export type WatchCallback = (value: unknown, frame?: Frame) => void;

/** One watcher; the handle {@linkcode Watchers.add} returns. */
export interface Watcher {
  /** The actor watched. */
  readonly actor: string;
  /** The keyword watched. */
  readonly keyword: string;
  /** Called with each newer value. */
  readonly callback: WatchCallback;
  /** Position of the last value given, so a stale snapshot does not overwrite a newer reply. */
  seq: number;
}

/** The watchers of one client. */
export class Watchers {
  readonly #watchers = new Set<Watcher>();

  /** Adds a watcher of `actor`'s `keyword`; it has seen nothing yet. */
  add(actor: string, keyword: string, callback: WatchCallback): Watcher {
    const watcher: Watcher = { actor, keyword, callback, seq: 0 };
    this.#watchers.add(watcher);
    return watcher;
  }

  /** Stops `watcher`; true if it was watching. */
  delete(watcher: Watcher): boolean {
    return this.#watchers.delete(watcher);
  }

  /** Whether `watcher` is still watching. */
  has(watcher: Watcher): boolean {
    return this.#watchers.has(watcher);
  }

  /** The actors watched, each once. */
  actors(): string[] {
    return [...new Set([...this.#watchers].map((w) => w.actor))];
  }

  /** Forgets every position (positions restart after a gap or a new epoch). */
  forgetPositions(): void {
    for (const watcher of this.#watchers) watcher.seq = 0;
  }

  /**
   * Gives each watcher of `actor` whose keyword is in `body` its value, unless
   * it already has one from position `seq` or later; `frame` is the live reply,
   * absent when the values come from the gateway's state.
   */
  feed(actor: string, body: Record<string, unknown>, options: { seq: number; frame?: Frame }): void {
    const { seq, frame } = options;
    if (body === null || typeof body !== "object") return;
    for (const watcher of this.#watchers) {
      if (watcher.actor !== actor || !Object.hasOwn(body, watcher.keyword) || seq <= watcher.seq) continue;
      watcher.seq = seq;
      try {
        watcher.callback(body[watcher.keyword], frame);
      } catch (err) {
        console.error("clu-ws client: a watch callback threw", err);
      }
    }
  }

  /** Feeds every actor of a state snapshot, at the snapshot's position. */
  feedState(snapshot: Pick<StateFrame, "seq" | "actors">): void {
    for (const [actor, record] of Object.entries(snapshot.actors)) {
      const values: Record<string, unknown> = {};
      for (const [keyword, kw] of Object.entries(record.keywords)) values[keyword] = kw.value;
      this.feed(actor, values, { seq: snapshot.seq });
    }
  }
}
