/**
 * Where a client is in the gateway's stream of replies: the epoch and the
 * last position seen, so that across reconnects nothing is seen twice; and,
 * while a resume is answered, the live replies (and command ends) held back
 * so the replay comes first.
 *
 * @module
 */

import type { Frame } from "./types.ts";

/** A client's epoch and last position, and what is held while a resume is answered. */
export class StreamPosition {
  #epoch: string | undefined;
  #lastSeq = 0;
  /** Replies held while a resume is answered, so the replay comes first. */
  #held: Frame[] | undefined;
  /** Command ends that arrived while replies were held. */
  #heldSettles: Array<() => void> = [];

  /** The gateway epoch the positions belong to; undefined before the first welcome. */
  get epoch(): string | undefined {
    return this.#epoch;
  }

  /** The position of the newest reply received. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Starts over in `epoch` at position `seq` (the first welcome, a new epoch, or after a gap). */
  restart(epoch: string, seq: number): void {
    this.#epoch = epoch;
    this.#lastSeq = seq;
  }

  /**
   * Takes the position of `reply`; false when it was seen already (replayed
   * on resume and live: anything at or before the last position). Replies
   * without a position (made by the gateway for this client) always pass.
   */
  advance(reply: Frame): boolean {
    if (reply.seq === undefined) return true;
    if (reply.seq <= this.#lastSeq) return false;
    this.#lastSeq = reply.seq;
    return true;
  }

  /** Starts holding live replies and command ends until {@linkcode StreamPosition.release}. */
  hold(): void {
    this.#held = [];
  }

  /** Holds `reply` if holding and it has a position; true when held. */
  holdReply(reply: Frame): boolean {
    if (!this.#held || reply.seq === undefined) return false;
    this.#held.push(reply);
    return true;
  }

  /** Runs `settle` now, or after the held replies when holding. */
  holdSettle(settle: () => void): void {
    if (this.#held) this.#heldSettles.push(settle);
    else settle();
  }

  /** Stops holding: `deliver` gets the held replies in position order, then the held command ends run. */
  release(deliver: (reply: Frame) => void): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    held.sort((a, b) => a.seq! - b.seq!);
    for (const frame of held) deliver(frame);
    const settles = this.#heldSettles;
    this.#heldSettles = [];
    for (const settle of settles) settle();
  }

  /** Stops holding and drops the held replies (the welcome's set-up failed). */
  stopHolding(): void {
    this.#held = undefined;
  }

  /** Drops everything held, command ends too (the socket closed). */
  dropHeld(): void {
    this.#held = undefined;
    this.#heldSettles = [];
  }
}
