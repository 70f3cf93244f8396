/**
 * The actors' latest keywords, like CLU's actor models: for every sender, the
 * last value of each top-level key of its reply bodies and when it was seen.
 * Bounded in actors, keywords per actor and value size.
 *
 * @module
 */

import { isoTimestamp } from "./frames.ts";
import type { GlobList } from "./glob.ts";

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

/** The store. */
export class ActorState {
  readonly #actors = new Map<string, ActorRecord>();

  /** Records a reply's body (an object) from `sender`; other bodies only update last-seen. */
  update(sender: string, code: string, body: unknown, now: number = Date.now() / 1000): void {
    if (!sender) return;
    let actor = this.#actors.get(sender);
    if (!actor) {
      if (this.#actors.size >= STATE_LIMITS.actors) return;
      actor = { lastSeen: now, keywords: new Map() };
      this.#actors.set(sender, actor);
    }
    actor.lastSeen = now;
    if (body === null || typeof body !== "object" || Array.isArray(body)) return;
    for (const key in body) {
      const value = (body as Record<string, unknown>)[key];
      if (tooLarge(value)) continue;
      if (!actor.keywords.has(key) && actor.keywords.size >= STATE_LIMITS.keywordsPerActor) continue;
      actor.keywords.set(key, { value, seen: now, code });
    }
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
