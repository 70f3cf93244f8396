/**
 * The command bar's history, as a shell's: the up arrow walks back through
 * the commands sent, the down arrow forward and then back to what was being
 * typed. Pure: storage is the caller's, so Deno tests it directly.
 *
 * @module
 */

/** Commands remembered for the up arrow. */
export const HISTORY_SIZE = 100;

/** A command as typed in the bar. */
export interface TypedCommand {
  /** The actor field. */
  actor: string;
  /** The command text field. */
  text: string;
}

/** The history of commands sent, and where the arrows have got to in it. */
export class CommandHistory {
  #entries: TypedCommand[] = [];
  #index = 0;
  #draft: TypedCommand | undefined;

  /** A history from its stored JSON ({@linkcode CommandHistory.toJSON}); anything unreadable is left out. */
  constructor(saved: string | null) {
    try {
      const parsed = JSON.parse(saved ?? "[]");
      if (Array.isArray(parsed)) {
        this.#entries = parsed.filter((h) => typeof h?.actor === "string" && typeof h?.text === "string");
      }
    } catch {
      this.#entries = [];
    }
    this.#index = this.#entries.length;
  }

  /** The commands remembered, oldest first. */
  get entries(): readonly TypedCommand[] {
    return this.#entries;
  }

  /** Remembers a command sent (not twice in a row) and goes back to the end of the history. */
  remember(command: TypedCommand): void {
    const last = this.#entries.at(-1);
    if (!last || last.actor !== command.actor || last.text !== command.text) {
      this.#entries.push({ actor: command.actor, text: command.text });
    }
    if (this.#entries.length > HISTORY_SIZE) this.#entries.splice(0, this.#entries.length - HISTORY_SIZE);
    this.#index = this.#entries.length;
    this.#draft = undefined;
  }

  /**
   * One step back (`up`) or forward (`down`) from what the bar holds now
   * (`current`, kept as the draft when leaving the end); what to show, or
   * undefined for nothing to change.
   */
  move(direction: "up" | "down", current: TypedCommand): TypedCommand | undefined {
    const length = this.#entries.length;
    if (this.#index === length) this.#draft = { actor: current.actor, text: current.text };
    this.#index = direction === "up" ? Math.max(0, this.#index - 1) : Math.min(length, this.#index + 1);
    return this.#index < length ? this.#entries[this.#index] : this.#draft;
  }

  /** The history as stored. */
  toJSON(): TypedCommand[] {
    return this.#entries;
  }
}
