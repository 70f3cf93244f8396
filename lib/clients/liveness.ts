/**
 * The idle watch (`--idle-timeout`): a socket silent for half the timeout is
 * pinged; one that brings nothing in the next half is dropped. One timer for
 * every socket.
 *
 * @module
 */

/** What the watch needs of a socket. */
export interface PingSocket {
  /** Sends a ping; a live peer answers with a pong. */
  ping(): void;
}

/** Drops a socket that did not answer, with a close code and reason. */
export type Drop = (code: number, reason: string) => void;

interface Watched {
  heard: boolean;
  pinged: boolean;
  drop: Drop;
}

/** Close code for a socket dropped for silence (RFC 6455 "going away"). */
const CLOSE_SILENT = 1001;

/** Watches sockets for silence. */
export class Liveness {
  readonly #periodMs: number;
  readonly #watched = new Map<PingSocket, Watched>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** A watch with the given timeout; 0 or less watches nothing. */
  constructor(idleTimeoutSeconds: number) {
    this.#periodMs = (idleTimeoutSeconds * 1000) / 2;
  }

  /**
   * Starts watching a socket.
   *
   * @returns the function to call whenever the peer is heard from (a message, a ping, a pong).
   */
  watch(socket: PingSocket, drop: Drop): () => void {
    const state: Watched = { heard: true, pinged: false, drop };
    if (this.#periodMs > 0) {
      this.#watched.set(socket, state);
      this.#timer ??= setInterval(() => this.#look(), this.#periodMs);
    }
    return () => {
      state.heard = true;
      state.pinged = false;
    };
  }

  /** Stops watching a socket (it closed). */
  forget(socket: PingSocket): void {
    this.#watched.delete(socket);
  }

  /** Stops watching every socket, and the timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watched.clear();
  }

  #look(): void {
    for (const [socket, state] of this.#watched) {
      if (state.heard) {
        state.heard = false;
      } else if (!state.pinged) {
        state.pinged = true;
        try {
          socket.ping();
        } catch {
          // Closing already.
        }
      } else {
        this.#watched.delete(socket);
        state.drop(CLOSE_SILENT, "no answer to ping within --idle-timeout");
      }
    }
  }
}
