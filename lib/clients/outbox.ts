/**
 * One socket's outbox: how frames reach it. It owns the send budget (the
 * socket's `bufferedAmount`), the slow-client policy, batched delivery and the
 * catch-up timer, and it is the one place that writes to or closes the socket.
 *
 * A frame is written as the shared bytes of a {@linkcode WireFrame} (framed
 * once for every socket that gets it) to a `ws` socket's connection, corked
 * for the rest of the event-loop turn (see `wire.ts`); a socket without that
 * path (the browser API, a test's plain fake), or a `ws` socket that would
 * queue the frame itself, gets the text through `send`.
 *
 * A client over its budget never delays the others nor grows memory: it is
 * closed (1008), or, with the `drop` policy, skipped until it has caught up
 * and then told how many frames it missed.
 *
 * @module
 */

import type { SlowClientPolicy } from "../config/config.ts";
import { type Wire, wireFor, WireFrame, wireFrame } from "./wire.ts";

export { WireFrame };

/** Close code for a client closed for being too slow (RFC 6455 policy violation). */
export const CLOSE_TOO_SLOW = 1008;

/** `readyState` of an open socket (as in the browser API and `ws`). */
const OPEN = 1;

/** How often a lagging outbox checks whether its socket caught up, when no traffic does it. */
const CATCH_UP_CHECK_MS = 500;

/** What an outbox needs of a socket (the browser API's names, which `ws` shares). */
export interface OutboxSocket {
  /** 1 while open. */
  readonly readyState: number;
  /** Bytes queued and not yet written to the network. */
  readonly bufferedAmount: number;
  /** Queues a text frame (when the frame cannot be written as shared bytes). */
  send(frame: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Destroys the connection at once (`ws`); absent in the browser API. */
  terminate?(): void;
}

/** Frame counts over every outbox of a hub, for metrics. */
export class OutboxTotals {
  /** Frames handed to sockets. */
  framesSent = 0;
  /** Characters of frames handed to sockets (bytes, for ASCII JSON). */
  bytesSent = 0;
  /** Sockets closed for being too slow. */
  slowCloses = 0;
  /** Frames skipped for slow sockets (drop policy). */
  framesDropped = 0;
}

/**
 * The replies of one event-loop turn that every unfiltered batching outbox
 * receives: one list, joined once for all of them.
 */
export class SharedTurn {
  #frames: string[] = [];
  #whole: WireFrame | undefined;

  /** Replies in this turn. */
  get length(): number {
    return this.#frames.length;
  }

  /** Adds a reply. */
  push(frame: string): void {
    this.#frames.push(frame);
    this.#whole = undefined;
  }

  /** The replies from `from` on. */
  from(from: number): string[] {
    return this.#frames.slice(from);
  }

  /** The whole turn as one JSON array, joined (and framed) once. */
  whole(): WireFrame {
    return this.#whole ??= new WireFrame(`[${this.#frames.join(",")}]`);
  }

  /** Starts the next turn. */
  clear(): void {
    this.#frames = [];
    this.#whole = undefined;
  }
}

/** What every outbox of a hub shares: the budget, the policy, the counts and the turn. */
export interface OutboxSettings {
  /** Outgoing bytes a socket may have waiting. */
  bufferBytes: number;
  /** What to do with a socket over its budget. */
  policy: SlowClientPolicy;
  /** The frame that tells a client how many frames it missed. */
  droppedNotice: (dropped: number) => string;
  /** Where frame counts add up. */
  totals: OutboxTotals;
  /** The shared batch of the current turn. */
  turn: SharedTurn;
}

/** What an outbox tells its owner. */
export interface OutboxEvents {
  /** It stopped sending (closed, or its socket is closing); called once. */
  onClose?: () => void;
  /** It closed its socket for being too slow. */
  onSlowClose?: (buffered: number) => void;
  /** Its socket caught up after frames were dropped. */
  onCaughtUp?: (dropped: number) => void;
}

/** Options for {@linkcode Outbox.close}. */
export interface CloseOptions {
  /** Also cut the connection at once, for a peer that would hold the closing handshake open. */
  terminate?: boolean;
}

/** One socket's outgoing side. */
export class Outbox {
  readonly #socket: OutboxSocket;
  /** The socket's raw path (a `ws` socket), if it has one. */
  readonly #wire: Wire | undefined;
  readonly #settings: OutboxSettings;
  readonly #events: OutboxEvents;
  /** Characters sent since the backlog was last looked at. */
  #unchecked = 0;
  readonly #checkEvery: number;
  #dropped = 0;
  #framesSent = 0;
  #closed = false;
  #catchUpTimer: ReturnType<typeof setInterval> | undefined;
  #batch = false;
  /** Batched replies follow the shared turn (unfiltered) or are queued here (filtered). */
  #follows = true;
  #queued: string[] | undefined;
  /** How many of this turn's shared replies this outbox was already sent. */
  #turnSent = 0;

  /** An outbox for an open socket. */
  constructor(socket: OutboxSocket, settings: OutboxSettings, events: OutboxEvents = {}) {
    this.#socket = socket;
    this.#wire = wireFor(socket);
    this.#settings = settings;
    this.#events = events;
    this.#checkEvery = Math.min(16 * 1024, Math.floor(settings.bufferBytes / 8));
  }

  /** Frames handed to the socket so far. */
  get framesSent(): number {
    return this.#framesSent;
  }

  /** Frames skipped since the socket fell behind (drop policy). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes its socket has not yet written to the network. */
  get buffered(): number {
    return this.#socket.bufferedAmount;
  }

  /** Whether it still sends (not closed by its owner or its policy). */
  get open(): boolean {
    return !this.#closed;
  }

  /** Whether replies go out batched (v1 `options`). */
  get batching(): boolean {
    return this.#batch;
  }

  /** Whether batched replies come from the shared turn rather than {@linkcode Outbox.queue}. */
  get followsTurn(): boolean {
    return this.#follows;
  }

  /**
   * Sends one frame (a control frame, an error, a notice) within the budget;
   * when batching, what was batched so far goes first, so nothing overtakes it.
   */
  send(frame: string | WireFrame): void {
    if (this.#batch) this.flush();
    this.write(frame);
  }

  /** Hands a frame (or a batch of `frames` replies) to the socket, applying the budget and the policy. */
  write(frame: string | WireFrame, frames = 1): void {
    if (this.#closed || this.#socket.readyState !== OPEN) return;
    // Asking the socket for its backlog costs an op per frame; the kernel's buffers absorb
    // megabytes first, so a look every few KiB keeps the budget to within that slack.
    this.#unchecked += frame.length;
    if (this.#unchecked < this.#checkEvery && this.#dropped === 0) {
      this.#write(frame, frames);
      return;
    }
    this.#unchecked = 0;
    const { bufferBytes, totals } = this.#settings;
    const buffered = this.#socket.bufferedAmount;
    if (this.#dropped > 0) {
      if (buffered > bufferBytes / 2) {
        this.#dropped += frames;
        totals.framesDropped += frames;
        return;
      }
      this.#caughtUp();
    }
    if (buffered + frame.length > bufferBytes && buffered > 0) {
      this.#overBudget(buffered, frames);
      return;
    }
    this.#write(frame, frames);
  }

  #write(frame: string | WireFrame, frames = 1): void {
    try {
      if (!this.#wire?.write(wireFrame(frame))) {
        this.#socket.send(typeof frame === "string" ? frame : frame.text);
      }
      this.#framesSent += frames;
      this.#settings.totals.framesSent += frames;
      this.#settings.totals.bytesSent += frame.length;
    } catch {
      // The socket closed between the check and the send; its close handler forgets it.
    }
  }

  #overBudget(buffered: number, frames: number): void {
    const { bufferBytes, totals } = this.#settings;
    if (this.#settings.policy === "drop") {
      this.#dropped += frames;
      totals.framesDropped += frames;
      this.#catchUpTimer ??= setInterval(() => this.#checkCaughtUp(), CATCH_UP_CHECK_MS);
      return;
    }
    this.#stop();
    totals.slowCloses++;
    this.#events.onSlowClose?.(buffered);
    this.#closeSocket(CLOSE_TOO_SLOW, `client too slow: over ${bufferBytes} bytes waiting`);
  }

  #checkCaughtUp(): void {
    if (this.#socket.readyState !== OPEN) {
      this.#stopCatchUp();
    } else if (this.#socket.bufferedAmount <= this.#settings.bufferBytes / 2) {
      this.#caughtUp();
    }
  }

  #caughtUp(): void {
    const dropped = this.#dropped;
    this.#dropped = 0;
    this.#stopCatchUp();
    this.#write(this.#settings.droppedNotice(dropped));
    this.#events.onCaughtUp?.(dropped);
  }

  #stopCatchUp(): void {
    clearInterval(this.#catchUpTimer);
    this.#catchUpTimer = undefined;
  }

  /** Turns batched delivery on or off; turning it off sends what was batched first. */
  setBatch(on: boolean): void {
    if (this.#batch === on) return;
    if (!on) this.flush();
    this.#batch = on;
    this.#turnSent = this.#settings.turn.length;
  }

  /**
   * Chooses where batched replies come from: the shared turn (an unfiltered
   * client) or {@linkcode Outbox.queue} (a filtered one). What was batched
   * under the old choice goes out first.
   */
  follow(shared: boolean): void {
    if (this.#batch) this.flush();
    this.#follows = shared;
    this.#turnSent = this.#settings.turn.length;
  }

  /**
   * Back in the live fan-out after being held out of it (a resume replayed to
   * it from elsewhere): the replies of the current turn so far were delivered
   * while it was held, and are not its; it follows from here. (Flushing, as
   * {@linkcode Outbox.follow} does, would send them from a position taken
   * before the hold, in a turn cleared since: replies it also got replayed.)
   */
  rejoin(shared: boolean): void {
    this.#queued = undefined;
    this.#follows = shared;
    this.#turnSent = this.#settings.turn.length;
  }

  /** Holds a reply for the next flush (a filtered batching client). */
  queue(frame: string): void {
    (this.#queued ??= []).push(frame);
  }

  /** Sends what was batched since the last flush, as one JSON array. */
  flush(): void {
    let frames: string[] | undefined;
    if (this.#follows) {
      frames = this.#settings.turn.from(this.#turnSent);
      this.#turnSent = this.#settings.turn.length;
    } else {
      frames = this.#queued;
      this.#queued = undefined;
    }
    if (frames && frames.length > 0) this.write(`[${frames.join(",")}]`, frames.length);
  }

  /** The turn ends: sends its batch (the shared one whole when nothing of it went out yet). */
  endTurn(): void {
    const turn = this.#settings.turn;
    if (!this.#follows || this.#turnSent > 0) this.flush();
    else if (turn.length > 0) this.write(turn.whole(), turn.length);
    this.#turnSent = 0;
  }

  /** Stops sending and closes the socket with `code` and `reason`. */
  close(code: number, reason: string, options: CloseOptions = {}): void {
    this.#stop();
    this.#closeSocket(code, reason);
    if (options.terminate) this.#socket.terminate?.();
  }

  /** Stops sending: the socket is closing on its own (e.g. `ws` after a frame over the size limit). */
  detach(): void {
    this.#stop();
  }

  #closeSocket(code: number, reason: string): void {
    try {
      this.#socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  #stop(): void {
    this.#stopCatchUp();
    if (this.#closed) return;
    this.#closed = true;
    this.#queued = undefined;
    this.#events.onClose?.();
  }
}
