/**
 * What the gateway knows of each actor's commands and keywords: per actor,
 * the command model, schema and help it answered (kept as JSON text, served
 * as is), where asking it stands, and why a part is missing. Bounded in
 * actors and in bytes: the least recently used actor's answers are forgotten
 * first. No I/O: `introspector.ts` does the asking.
 *
 * @module
 */

/** Where asking an actor stands. */
export type EntryState =
  /** Waiting for a free request slot. */
  | "queued"
  /** Its commands are out. */
  | "asking"
  /** Asked; whatever it answered is kept (or why not in `reason`). */
  | "done"
  /** Not answered (timeout, link lost): asked again when next heard from, after `retryAt`. */
  | "retry"
  /** The gateway may not command it (its own command rules): never asked. */
  | "denied";

/** One actor's entry. */
export interface Entry {
  /** The actor. */
  readonly actor: string;
  /** Where asking stands. */
  state: EntryState;
  /** The command model (JSON object text), if answered. */
  model?: string;
  /** The keyword schema (JSON object text), if answered. */
  schema?: string;
  /** The help lines (JSON array text), if answered. */
  help?: string;
  /** Why the model (or everything) is missing, for clients. */
  reason?: string;
  /** The actor's last `version` keyword seen: a new one means new commands, asked again. */
  version?: string;
  /** It was reported gone (a command to it was unroutable): asked again when it is heard from. */
  gone?: boolean;
  /** Not to be asked again before this time (ms, the catalog's clock). */
  retryAt?: number;
  /** Timeouts in a row, for the backoff. */
  failures: number;
}

/** What a client is told about one actor (v1 `describe`, the HTTP API). */
export interface Description {
  /** `ready`: something is known; `pending`: being asked; `none`: nothing (see `reason`). */
  status: "ready" | "pending" | "none";
  /** The command model's JSON text, or undefined. */
  model?: string;
  /** The schema's JSON text, or undefined. */
  schema?: string;
  /** The help lines' JSON text, or undefined. */
  help?: string;
  /** Why the model is missing, when it is. */
  reason?: string;
}

/** Options for the {@linkcode Catalog} constructor. */
export interface CatalogOptions {
  /** Actors kept at most (entries of every state). */
  maxActors: number;
  /** Bytes of answers kept at most, over all actors (UTF-16 code units of the JSON texts). */
  maxBytes: number;
  /** Called when an actor's answers are forgotten to stay within the bounds. */
  onEvict?: (actor: string, why: string) => void;
}

/** The entries, least recently used first. */
export class Catalog {
  readonly #entries = new Map<string, Entry>();
  readonly #options: CatalogOptions;
  #bytes = 0;

  /** An empty catalog. */
  constructor(options: CatalogOptions) {
    this.#options = options;
  }

  /** Actors held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Bytes of answers held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The actor's entry, if held (without touching its place). */
  get(actor: string): Entry | undefined {
    return this.#entries.get(actor);
  }

  /**
   * A new entry for `actor`, making room by forgetting the least recently used
   * entry that is not being asked; undefined when every entry is busy.
   */
  add(actor: string, state: EntryState, reason?: string): Entry | undefined {
    if (this.#entries.size >= this.#options.maxActors) {
      const victim = [...this.#entries.values()].find((e) => e.state !== "asking" && e.state !== "queued");
      if (!victim) return undefined;
      this.#remove(victim);
      this.#options.onEvict?.(victim.actor, `more than ${this.#options.maxActors} actors`);
    }
    const entry: Entry = { actor, state, reason, failures: 0 };
    this.#entries.set(actor, entry);
    return entry;
  }

  /** Marks an entry as just used (described or answered): it is forgotten last. */
  touch(entry: Entry): void {
    if (this.#entries.get(entry.actor) !== entry) return;
    this.#entries.delete(entry.actor);
    this.#entries.set(entry.actor, entry);
  }

  /**
   * Keeps the answers of one round of asking (replacing the previous ones),
   * then forgets other actors' answers, least recently used first, until the
   * total is within the byte bound. Answers larger than the bound alone are
   * not kept.
   */
  store(entry: Entry, parts: { model?: string; schema?: string; help?: string }, reason?: string): void {
    this.#bytes -= sizeOf(entry);
    entry.model = parts.model;
    entry.schema = parts.schema;
    entry.help = parts.help;
    entry.reason = reason;
    entry.state = "done";
    entry.failures = 0;
    entry.retryAt = undefined;
    const size = sizeOf(entry);
    if (size > this.#options.maxBytes) {
      entry.model = entry.schema = entry.help = undefined;
      entry.reason =
        `its answers (${size} bytes) are over the introspection cache (--introspection-cache-bytes)`;
      this.#options.onEvict?.(entry.actor, entry.reason);
      return;
    }
    this.#bytes += size;
    this.touch(entry);
    for (const other of this.#entries.values()) {
      if (this.#bytes <= this.#options.maxBytes) break;
      if (other === entry || sizeOf(other) === 0) continue;
      this.#bytes -= sizeOf(other);
      other.model = other.schema = other.help = undefined;
      other.reason =
        "forgotten to stay within --introspection-cache-bytes; asked again when its version changes";
      this.#options.onEvict?.(other.actor, "over --introspection-cache-bytes");
    }
  }

  /** What clients are told about `actor`. */
  describe(actor: string): Description {
    const entry = this.#entries.get(actor);
    if (!entry) {
      return {
        status: "none",
        reason:
          "no reply from this actor has been seen yet: clu-ws asks an actor for its commands when it first hears from it",
      };
    }
    this.touch(entry);
    const { model, schema, help } = entry;
    if (model !== undefined || schema !== undefined || help !== undefined) {
      return { status: "ready", model, schema, help, reason: model === undefined ? entry.reason : undefined };
    }
    if (entry.state === "queued" || entry.state === "asking") {
      return { status: "pending", reason: "clu-ws is asking the actor for its commands" };
    }
    return { status: "none", reason: entry.reason ?? "nothing is known of its commands" };
  }

  #remove(entry: Entry): void {
    this.#bytes -= sizeOf(entry);
    this.#entries.delete(entry.actor);
  }
}

function sizeOf(entry: Entry): number {
  return (entry.model?.length ?? 0) + (entry.schema?.length ?? 0) + (entry.help?.length ?? 0);
}

/** The JSON text of a description, with the actor's name (v1 `describe` splices in its kind and id). */
export function descriptionJson(actor: string, description: Description): string {
  return `{"actor":${JSON.stringify(actor)},"status":"${description.status}","model":${
    description.model ?? "null"
  },"schema":${description.schema ?? "null"},"help":${description.help ?? "null"}${
    description.reason === undefined ? "" : `,"reason":${JSON.stringify(description.reason)}`
  }}`;
}
