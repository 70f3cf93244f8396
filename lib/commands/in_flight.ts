/**
 * Commands the broker confirmed whose end has not been seen yet. Their replies
 * come back through the gateway's exclusive queue, which dies with the link:
 * when the link is lost, each sender is told its replies may be lost, so a
 * command never ends in silence.
 *
 * @module
 */

/** How long a command is remembered without an end (ms). */
const KEEP_MS = 10 * 60_000;
/** Commands remembered at most; the oldest are forgotten first. */
const MAX_ENTRIES = 10_000;

interface Entry {
  commanderId: string;
  at: number;
  notify: () => void;
}

/** The confirmed, unfinished commands. */
export class InFlight {
  readonly #entries = new Map<string, Entry>();

  /** How many are remembered now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Remembers a confirmed command; `notify` tells its sender if the link is lost before it ends. */
  add(commandId: string, commanderId: string, notify: () => void, now: number = Date.now()): void {
    for (const [id, entry] of this.#entries) {
      if (this.#entries.size < MAX_ENTRIES && now - entry.at < KEEP_MS) break;
      this.#entries.delete(id);
    }
    this.#entries.set(commandId, { commanderId, at: now, notify });
  }

  /** Forgets a command when a reply ends it (`:`, `f`, `!`, any case). */
  observe(commandId: unknown, commanderId: unknown, code: string): void {
    if (typeof commandId !== "string") return;
    const entry = this.#entries.get(commandId);
    if (!entry || entry.commanderId !== commanderId) return;
    const lower = code.toLowerCase();
    if (lower === ":" || lower === "f" || lower === "!") this.#entries.delete(commandId);
  }

  /** The link was lost: tells every sender whose command had not ended, and forgets them. */
  lost(): number {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const entry of entries) entry.notify();
    return entries.length;
  }
}
