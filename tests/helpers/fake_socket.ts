/**
 * A fake websocket for unit tests of the hub and the outbox: its backlog
 * (`bufferedAmount`) and state are set by the test; sends and closes are
 * recorded.
 *
 * @module
 */

import type { OutboxSocket } from "../../lib/clients/outbox.ts";

/** A socket whose backlog the test controls. */
export class FakeSocket implements OutboxSocket {
  /** 1 while open; `close` sets it to 2 (closing). */
  readyState = 1;
  /** Frames handed to `send`, in order. */
  readonly sent: string[] = [];
  /** The closes asked for, in order. */
  readonly closes: { code?: number; reason?: string }[] = [];
  /** Whether `terminate` was called. */
  terminated = false;
  /** How often the backlog was read. */
  looks = 0;
  #buffered = 0;

  /** The backlog, as set by the test; each read is counted. */
  get bufferedAmount(): number {
    this.looks++;
    return this.#buffered;
  }

  /** Sets the backlog. */
  set bufferedAmount(bytes: number) {
    this.#buffered = bytes;
  }

  /** Records a frame. */
  send(frame: string): void {
    this.sent.push(frame);
  }

  /** Records a close and starts closing. */
  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
    this.readyState = 2;
  }

  /** Records a terminate. */
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }
}
