/**
 * Command tracking (clu-ws v1 `track`, and `POST /commands`): follows a command
 * by its id until a reply ends it (`:` done; `f` or `!` failed, compared
 * case-insensitively), the gateway fails it, or its timeout passes; then
 * reports the end once.
 *
 * @module
 */

/** How a tracked command ended. */
export interface CommandEnd {
  /** `done`, `failed` or `timeout`. */
  status: "done" | "failed" | "timeout";
  /** The message code that ended it, or null. */
  code: string | null;
  /** Milliseconds since it was accepted. */
  elapsedMs: number;
  /** Why it failed, when the gateway failed it or it timed out. */
  error?: string;
}

/** Options for {@linkcode Tracker.start}. */
export interface TrackOptions {
  /** The command's id. */
  commandId: string;
  /** The commander id its replies carry (`<gateway name>.<consumer>`). */
  commanderId: string;
  /** When to give up, in milliseconds. */
  timeoutMs: number;
  /** Keep every reply frame (for `POST /commands`). */
  collect?: boolean;
  /** Called once, with the end and the collected frames. */
  onEnd: (end: CommandEnd, frames: string[]) => void;
}

interface Entry {
  options: TrackOptions;
  started: number;
  timer: ReturnType<typeof setTimeout>;
  frames: string[];
}

/** Commands being followed. */
export class Tracker {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;

  /** A tracker that follows at most `max` commands at once. */
  constructor({ max = 10_000 } = {}) {
    this.#max = max;
  }

  /** How many commands are followed now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Why a command with this id cannot be tracked now, or undefined. */
  refusal(commandId: string): string | undefined {
    if (this.#entries.has(commandId)) {
      return `command_id '${commandId}' is already used by a tracked command; choose another`;
    }
    if (this.#entries.size >= this.#max) {
      return `clu-ws is tracking ${this.#max} commands already; try again later`;
    }
    return undefined;
  }

  /** Starts following a command (check {@linkcode Tracker.refusal} first). */
  start(options: TrackOptions): void {
    const entry: Entry = {
      options,
      started: performance.now(),
      frames: [],
      timer: setTimeout(() => {
        this.#end(options.commandId, {
          status: "timeout",
          code: null,
          error: `no end of the command within ${options.timeoutMs / 1000} s`,
        });
      }, options.timeoutMs),
    };
    this.#entries.set(options.commandId, entry);
  }

  /** Feeds a reply; ends the command if the reply ends it. */
  observe(commandId: unknown, commanderId: unknown, code: string, frame: string): void {
    if (typeof commandId !== "string") return;
    const entry = this.#entries.get(commandId);
    if (!entry || entry.options.commanderId !== commanderId) return;
    if (entry.options.collect) entry.frames.push(frame);
    const lower = code.toLowerCase();
    if (lower === ":") this.#end(commandId, { status: "done", code });
    else if (lower === "f" || lower === "!") this.#end(commandId, { status: "failed", code });
  }

  /** Ends a command the gateway could not send. */
  fail(commandId: string, error: string): void {
    this.#end(commandId, { status: "failed", code: null, error });
  }

  #end(commandId: string, end: Omit<CommandEnd, "elapsedMs">): void {
    const entry = this.#entries.get(commandId);
    if (!entry) return;
    this.#entries.delete(commandId);
    clearTimeout(entry.timer);
    entry.options.onEnd({ ...end, elapsedMs: Math.round(performance.now() - entry.started) }, entry.frames);
  }

  /** Fails every command still followed (at shutdown). */
  failAll(error: string): void {
    for (const commandId of [...this.#entries.keys()]) this.fail(commandId, error);
  }
}
