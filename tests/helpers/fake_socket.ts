/**
 * A fake websocket for unit tests of the hub and the outbox: its backlog
 * (`bufferedAmount`) and state are set by the test; sends and closes are
 * recorded.
 *
 * By default it also has the parts of a `ws` server socket that the outbox's
 * raw path uses (`_socket`, a net socket that records its writes, corks and
 * flushes; `_sender`, whose state the test can set), so frames reach it the way
 * they reach a real one: as shared websocket bytes, decoded back into `sent`
 * as they are written. `{ raw: false }` leaves those out (the browser API):
 * frames then arrive through `send`.
 *
 * @module
 */

import type { OutboxSocket } from "../../lib/clients/outbox.ts";

/** The net socket beneath a fake `ws` socket: records writes, corks and the writes reaching the "network". */
export class FakeNetSocket {
  /** Every chunk written, in order (the same objects, to check that bytes are shared). */
  readonly chunks: Uint8Array[] = [];
  /** How many times bytes went to the "network": one per uncorked write, one per uncork that flushed. */
  flushes = 0;
  /** Set by the test to make the socket look destroyed. */
  destroyed = false;
  #corks = 0;
  #held = 0;
  #bytes = new Uint8Array(0);
  readonly #onFrame: (text: string) => void;

  /** A net socket that hands each complete text frame written to it to `onFrame`. */
  constructor(onFrame: (text: string) => void) {
    this.#onFrame = onFrame;
  }

  /** How many corks are held now. */
  get corked(): number {
    return this.#corks;
  }

  /** Records a chunk; decodes the frames it completes. */
  write(chunk: Uint8Array): boolean {
    this.chunks.push(chunk);
    if (this.#corks > 0) this.#held++;
    else this.flushes++;
    const joined = new Uint8Array(this.#bytes.length + chunk.length);
    joined.set(this.#bytes);
    joined.set(chunk, this.#bytes.length);
    this.#bytes = joined;
    this.#decode();
    return true;
  }

  /** Holds writes. */
  cork(): void {
    this.#corks++;
  }

  /** Releases one cork; the last one flushes what was held in one go. */
  uncork(): void {
    if (this.#corks === 0) return;
    if (--this.#corks === 0 && this.#held > 0) {
      this.#held = 0;
      this.flushes++;
    }
  }

  /** Takes every complete unmasked frame off the front of the bytes written. */
  #decode(): void {
    for (;;) {
      const b = this.#bytes;
      if (b.length < 2) return;
      if ((b[0] & 0x0f) !== 1 || (b[0] & 0x80) === 0 || (b[1] & 0x80) !== 0) {
        throw new Error(`not a whole unmasked text frame: ${b[0]} ${b[1]}`);
      }
      let length = b[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = (b[2] << 8) | b[3];
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
        offset = 10;
      }
      if (b.length < offset + length) return;
      this.#onFrame(new TextDecoder().decode(b.subarray(offset, offset + length)));
      this.#bytes = b.slice(offset + length);
    }
  }
}

/** A socket whose backlog the test controls. */
export class FakeSocket implements OutboxSocket {
  /** 1 while open; `close` sets it to 2 (closing). */
  readyState = 1;
  /** Frames handed to `send` or written as bytes, in order. */
  readonly sent: string[] = [];
  /** Frames that came through `send` rather than as bytes. */
  readonly sentThroughSend: string[] = [];
  /** The closes asked for, in order. */
  readonly closes: { code?: number; reason?: string }[] = [];
  /** Whether `terminate` was called. */
  terminated = false;
  /** How often the backlog was read. */
  looks = 0;
  /** `ws`'s net socket, absent with `{ raw: false }`. */
  readonly _socket: FakeNetSocket | undefined;
  /** `ws`'s sender state: `_state` 0 when idle, `_firstFragment` false mid-message. */
  readonly _sender: { _state: number; _firstFragment: boolean } | undefined;
  #buffered = 0;
  #waiters: Array<() => void> = [];

  /** An open socket; `raw: false` makes it a plain one (frames through `send` only). */
  constructor({ raw = true } = {}) {
    this._socket = raw ? new FakeNetSocket((text) => this.#record(text)) : undefined;
    this._sender = raw ? { _state: 0, _firstFragment: true } : undefined;
  }

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
    this.sentThroughSend.push(frame);
    this.#record(frame);
  }

  /**
   * Resolves when the next frame is recorded: for frames a timer sends (await it, never sleep).
   * Rejects after `timeoutMs`, so a frame that never comes fails the test instead of hanging it.
   */
  nextFrame(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #record(frame: string): void {
    this.sent.push(frame);
    for (const wake of this.#waiters.splice(0)) wake();
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
