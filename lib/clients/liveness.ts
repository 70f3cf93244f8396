/**
 * The idle watch (`--idle-timeout`): a socket silent for half the timeout is
 * pinged; one that brings nothing in the next half is dropped. One timer for
 * every socket, and no object per socket: the two flags live on the caller's
 * own record of it (an idle gateway holds thousands).
 *
 * @module
 */

/** What the watch keeps on a watched record. */
export interface Watched {
  /** Heard from since the last look (see {@linkcode heardFrom}). */
  heard: boolean;
  /** Pinged and not heard from since. */
  pinged: boolean;
}

/** What the watch does to a watched record's socket. */
export interface LivenessActions<W> {
  /** Sends a ping; a live peer answers with a pong. */
  ping(watched: W): void;
  /** Drops a socket that did not answer, with a close code and reason. */
  drop(watched: W, code: number, reason: string): void;
}

/** Close code for a socket dropped for silence (RFC 6455 "going away"). */
const CLOSE_SILENT = 1001;

/** Marks a record's peer as heard from (a message, a ping, a pong). */
export function heardFrom(watched: Watched): void {
  watched.heard = true;
  watched.pinged = false;
}

/** Watches sockets for silence. */
export class Liveness<W extends Watched> {
  readonly #periodMs: number;
  readonly #actions: LivenessActions<W>;
  readonly #watched = new Set<W>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** A watch with the given timeout (0 or less watches nothing) and what it does to a silent socket. */
  constructor(idleTimeoutSeconds: number, actions: LivenessActions<W>) {
    this.#periodMs = (idleTimeoutSeconds * 1000) / 2;
    this.#actions = actions;
  }

  /** Starts watching a record's socket (heard from now). */
  watch(watched: W): void {
    heardFrom(watched);
    if (this.#periodMs <= 0) return;
    this.#watched.add(watched);
    this.#timer ??= setInterval(() => this.#look(), this.#periodMs);
  }

  /** Stops watching a record's socket (it closed). */
  forget(watched: W): void {
    this.#watched.delete(watched);
  }

  /** Stops watching every socket, and the timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watched.clear();
  }

  #look(): void {
    for (const watched of this.#watched) {
      if (watched.heard) {
        watched.heard = false;
      } else if (!watched.pinged) {
        watched.pinged = true;
        try {
          this.#actions.ping(watched);
        } catch {
          // Closing already.
        }
      } else {
        this.#watched.delete(watched);
        this.#actions.drop(watched, CLOSE_SILENT, "no answer to ping within --idle-timeout");
      }
    }
  }
}
