/**
 * The actors' latest keywords, like CLU's actor models: for every sender, the
 * last value of each top-level key of its reply bodies and when it was seen.
 * Bounded in actors, keywords per actor and value size.
 *
 * @module
 */

import { isFailedRouting, isoTimestamp } from "../protocol/clu.ts";
import type { GlobList } from "../protocol/glob.ts";

/** Bounds of the store. */
export const STATE_LIMITS = { actors: 1000, keywordsPerActor: 2000, valueBytes: 64 * 1024 } as const;

interface KeywordValue {
  value: unknown;
  /** Seconds since the epoch. */
  seen: number;
  code: string;
}

interface ActorRecord {
  lastSeen: number;
  keywords: Map<string, KeywordValue>;
}

/** Options for {@linkcode ActorState}. */
export interface ActorStateOptions {
  /** Actors kept at most; when full, the longest-silent one makes room (default {@linkcode STATE_LIMITS}). */
  maxActors?: number;
}

/** The store. */
export class ActorState {
  /**
   * The actors, least recently heard from first: every reply moves its sender
   * to the end, so the longest-silent actor is always the first key and
   * eviction is O(1).
   */
  readonly #actors = new Map<string, ActorRecord>();
  readonly #maxActors: number;
  /** The sender of the last recorded reply: already at the end, no need to move it. */
  #newest: string | undefined;

  /** An empty store. */
  constructor(options: ActorStateOptions = {}) {
    this.#maxActors = Math.max(1, options.maxActors ?? STATE_LIMITS.actors);
  }

  /**
   * Records a reply's body (an object) from `sender`; other bodies only update
   * last-seen. A failed-routing reply ({@linkcode isFailedRouting}) is not
   * recorded: its sender is whatever consumer a client typed, not an actor.
   */
  update(sender: string, code: string, body: unknown, now: number = Date.now() / 1000): void {
    if (!sender || isFailedRouting(sender, code, body)) return;
    let actor = this.#actors.get(sender);
    if (!actor) {
      // A real actor must never be shut out by stale ones: the one silent the longest goes.
      if (this.#actors.size >= this.#maxActors) this.#actors.delete(this.#actors.keys().next().value!);
      actor = { lastSeen: now, keywords: new Map() };
      this.#actors.set(sender, actor);
    } else if (sender !== this.#newest) {
      this.#actors.delete(sender);
      this.#actors.set(sender, actor);
    }
    this.#newest = sender;
    actor.lastSeen = now;
    if (body === null || typeof body !== "object" || Array.isArray(body)) return;
    for (const key in body) {
      const value = (body as Record<string, unknown>)[key];
      if (tooLarge(value)) continue;
      if (!actor.keywords.has(key) && actor.keywords.size >= STATE_LIMITS.keywordsPerActor) continue;
      actor.keywords.set(key, { value, seen: now, code });
    }
  }

  /** How many actors are known. */
  get size(): number {
    return this.#actors.size;
  }

  /** Known actors, names sorted. */
  list(): Array<{ name: string; last_seen: string; keywords: number }> {
    return [...this.#actors.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, record]) => ({
      name,
      last_seen: isoTimestamp(record.lastSeen),
      keywords: record.keywords.size,
    }));
  }

  /** One actor's keywords as JSON text, or undefined if unknown. */
  actorJson(name: string): string | undefined {
    const record = this.#actors.get(name);
    if (!record) return undefined;
    const keywords = [...record.keywords.entries()].map(([key, kw]) =>
      `${JSON.stringify(key)}:{"value":${JSON.stringify(kw.value) ?? "null"},"seen":"${
        isoTimestamp(kw.seen)
      }","code":${JSON.stringify(kw.code)}}`
    );
    return `{"last_seen":"${isoTimestamp(record.lastSeen)}","keywords":{${keywords.join(",")}}}`;
  }

  /** A snapshot of the actors matching `globs` (all when undefined) as a JSON object text. */
  snapshotJson(globs?: GlobList): string {
    const parts: string[] = [];
    for (const name of this.#actors.keys()) {
      if (globs && globs.match(name) === undefined) continue;
      parts.push(`${JSON.stringify(name)}:${this.actorJson(name)}`);
    }
    return `{${parts.join(",")}}`;
  }
}

/** Whether a keyword value is over the size limit; only structured values are encoded to tell. */
function tooLarge(value: unknown): boolean {
  if (typeof value === "string") return value.length > STATE_LIMITS.valueBytes;
  if (value === null || typeof value !== "object") return false;
  return (JSON.stringify(value)?.length ?? 0) > STATE_LIMITS.valueBytes;
}
