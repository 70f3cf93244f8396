/**
 * The ledger of commands in flight: every command the gateway is about to
 * publish, from then until a reply ends it, the gateway fails it, its timeout
 * passes or the broker link is lost. One map, one end rule, one link-loss
 * handler; what each entry's sender hears is up to the listener it was opened
 * with (see `lifecycle.ts`).
 *
 * Two things an entry may ask for:
 * - **tracking** (clu-ws v1 `track`, `POST /commands`): its end is reported
 *   once, with a timeout, and optionally with every reply frame collected;
 * - **a warning** once the broker has confirmed it: its replies come back
 *   through the gateway's exclusive queue, which dies with the link, so when
 *   the link is lost its sender is told they may be lost.
 *
 * @module
 */

import { logger } from "../log.ts";

const log = logger("commands");

/** What the sender of a running command is told when the broker link is lost. */
export const LINK_LOST_WARNING =
  "the RabbitMQ link was lost while this command ran: the actor may still finish it, but its replies may be lost";

/** How a tracked command ended. */
export interface CommandEnd {
  /** `done`, `failed` or `timeout`. */
  status: "done" | "failed" | "timeout";
  /** The message code that ended it, or null. */
  code: string | null;
  /** Milliseconds since it was opened. */
  elapsedMs: number;
  /** Why it failed, when the gateway failed it or it timed out. */
  error?: string;
}

/** Who hears of an entry's end and of a lost link: the command's sender, through the lifecycle. */
export interface LedgerListener {
  /** A tracked command ended; `frames` are the replies collected (empty unless asked for). */
  ended(end: CommandEnd, frames: readonly string[]): void;
  /** The link was lost after the broker confirmed the command (entries opened with `warn`). */
  lost(): void;
}

/** Options for {@linkcode Ledger.open}. */
export interface OpenOptions {
  /** The commander id its replies carry (`commanderId()` in `protocol/clu.ts`). */
  commanderId: string;
  /** Who hears of its end or of a lost link. */
  listener: LedgerListener;
  /** Report its end once, failing it after `timeoutMs`; `collect` keeps every reply frame. */
  track?: { timeoutMs: number; collect?: boolean };
  /** Warn its sender if the link is lost once the broker confirmed it. */
  warn?: boolean;
}

/** A command in the ledger, as {@linkcode Ledger.open} returns it; pass it back to confirm or fail it. */
export interface LedgerEntry {
  /** The command's id. */
  readonly commandId: string;
}

interface Entry extends LedgerEntry {
  readonly options: OpenOptions;
  readonly started: number;
  readonly frames: string[];
  timer?: ReturnType<typeof setTimeout>;
  confirmed: boolean;
}

/** Options for the {@linkcode Ledger} constructor. */
export interface LedgerOptions {
  /** Commands held at most; untracked ones are forgotten oldest first to make room. */
  max?: number;
  /** How long an untracked command is remembered without an end (ms). */
  keepMs?: number;
  /** The clock, in milliseconds (tests). */
  now?: () => number;
}

/** The commands in flight, by command id. */
export class Ledger {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  readonly #keepMs: number;
  readonly #now: () => number;

  /** An empty ledger holding at most `max` commands (10,000) and untracked ones for `keepMs` (10 min). */
  constructor({ max = 10_000, keepMs = 10 * 60_000, now = () => performance.now() }: LedgerOptions = {}) {
    this.#max = max;
    this.#keepMs = keepMs;
    this.#now = now;
  }

  /** How many commands are in flight now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Opens a command before it is published, or says why it cannot be tracked.
   * A tracked command is never displaced: its id is refused to any other
   * command until it ends. An untracked one is displaced by a newer command
   * with its id (the replies could not tell the two apart anyway).
   */
  open(commandId: string, options: OpenOptions): LedgerEntry | string {
    const held = this.#entries.get(commandId);
    if (held?.options.track) {
      return `command_id '${commandId}' is already used by a tracked command; choose another`;
    }
    if (held) this.#entries.delete(commandId);
    const now = this.#now();
    this.#makeRoom(now);
    if (this.#entries.size >= this.#max) {
      return `clu-ws is tracking ${this.#max} commands already; try again later`;
    }
    const entry: Entry = { commandId, options, started: now, frames: [], confirmed: false };
    const track = options.track;
    if (track) {
      entry.timer = setTimeout(() => {
        this.#end(entry, {
          status: "timeout",
          code: null,
          error: `no end of the command within ${track.timeoutMs / 1000} s`,
        });
      }, track.timeoutMs);
    }
    this.#entries.set(commandId, entry);
    return entry;
  }

  /** Forgets untracked commands older than `keepMs`, and the oldest of them while the ledger is full. */
  #makeRoom(now: number): void {
    for (const [id, entry] of this.#entries) {
      // Insertion order is age order: past the first young entry, with room left, nothing is due.
      if (this.#entries.size < this.#max && now - entry.started < this.#keepMs) break;
      if (!entry.options.track) this.#entries.delete(id);
    }
  }

  /** The broker confirmed the command: from now on a lost link warns its sender (if it asked). */
  confirm(entry: LedgerEntry): void {
    const held = this.#entries.get(entry.commandId);
    if (held === entry) held.confirmed = true;
  }

  /** Feeds a reply; ends its command if the reply ends it (`:` done; `f` or `!` failed; any case). */
  observe(commandId: unknown, commanderId: unknown, code: string, frame: string): void {
    if (typeof commandId !== "string") return;
    const entry = this.#entries.get(commandId);
    if (!entry || entry.options.commanderId !== commanderId) return;
    if (entry.options.track?.collect) entry.frames.push(frame);
    const lower = code.toLowerCase();
    if (lower === ":") this.#end(entry, { status: "done", code });
    else if (lower === "f" || lower === "!") this.#end(entry, { status: "failed", code });
  }

  /** Ends a command the gateway could not send (or that its sender must hear failed). */
  fail(entry: LedgerEntry, error: string): void {
    const held = this.#entries.get(entry.commandId);
    if (held === entry) this.#end(held, { status: "failed", code: null, error });
  }

  /**
   * The link was lost, and with it the queue the replies come back through:
   * every confirmed command's sender that asked is warned, every tracked
   * command fails with {@linkcode LINK_LOST_WARNING}, and the ledger is
   * emptied. Returns how many senders were warned.
   */
  lost(): number {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    let warned = 0;
    for (const entry of entries) {
      if (entry.confirmed && entry.options.warn) {
        warned++;
        entry.options.listener.lost();
      }
      this.#finish(entry, { status: "failed", code: null, error: LINK_LOST_WARNING });
    }
    if (warned > 0) {
      log.warn("told the senders of {count} running commands that their replies may be lost", {
        count: warned,
      });
    }
    return warned;
  }

  /** Fails every tracked command (at shutdown); the others need no answer but their replies. */
  failAll(error: string): void {
    for (const entry of [...this.#entries.values()]) {
      if (entry.options.track) this.#end(entry, { status: "failed", code: null, error });
    }
  }

  #end(entry: Entry, end: Omit<CommandEnd, "elapsedMs">): void {
    if (this.#entries.get(entry.commandId) !== entry) return;
    this.#entries.delete(entry.commandId);
    this.#finish(entry, end);
  }

  /** Reports a removed entry's end, if it was tracked. */
  #finish(entry: Entry, end: Omit<CommandEnd, "elapsedMs">): void {
    if (!entry.options.track) return;
    clearTimeout(entry.timer);
    const elapsedMs = Math.round(this.#now() - entry.started);
    entry.options.listener.ended({ ...end, elapsedMs }, entry.frames);
  }
}
