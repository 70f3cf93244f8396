/**
 * Frames on the wire: a text frame framed once (websocket header + UTF-8
 * payload) and the same bytes written to every socket that gets it, each
 * socket corked from its first frame of an event-loop turn to the end of that
 * turn, so that k frames in one turn cost one write per socket rather than
 * k (the batch is copied into one buffer and written once: see
 * `merged_writes.ts`). A socket that wrote less than
 * {@linkcode FLUSH_INTERVAL_MS} ago stays corked until then, so that a steady
 * stream of frames (a client's command acknowledgements, a fast actor's
 * replies) costs at most one write per millisecond.
 *
 * The bytes go to the `ws` socket's own `net.Socket` (a `TLSSocket` under
 * TLS), exactly as `ws`'s own send writes them (`Sender.frame` then
 * `socket.write`), so `bufferedAmount` (the net socket's queued bytes plus
 * the sender's) still counts them. They go that way only while `ws` would
 * itself write at once: the socket open (no close frame sent), the sender idle
 * (nothing queued behind a compression or a blob; the gateway turns
 * `perMessageDeflate` off) and not in the middle of a fragmented message.
 * Otherwise the frame takes `ws`'s `send`, which queues it in order.
 *
 * @module
 */

import { Buffer } from "node:buffer";
// @ts-types="npm:@types/ws@8.18.2"
import * as ws from "ws";
import { mergeBatchedWrites } from "../merged_writes.ts";

/** `readyState` of an open socket. */
const OPEN = 1;
/** `ws`'s `Sender` state when it writes at once (not deflating, not reading a blob). */
const SENDER_IDLE = 0;

/** `ws`'s `Sender.frame`: the header and payload buffers of one frame. */
type FrameFn = (data: Buffer, options: {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}) => Buffer[];

// `@types/ws` leaves the Sender out; it is one of ws's exports (`import { Sender } from "ws"`).
const frameText: FrameFn = (ws as unknown as { Sender: { frame: FrameFn } }).Sender.frame;

/**
 * Least time between two writes to one socket while frames keep coming to it
 * (ms): at a low rate every turn's frames go at once; at a high one a socket
 * sees at most one write per interval, with every frame queued since (the
 * commands' acknowledgements were one write each).
 */
export const FLUSH_INTERVAL_MS = 1;
/** Queued bytes that a socket writes at once, whatever the interval. */
export const FLUSH_BYTES = 64 * 1024;

/** Options of every server text frame: whole (fin), unmasked (server to client), uncompressed. */
const TEXT = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false } as const;

/**
 * One text frame for any number of sockets: its text, and its websocket bytes
 * made on first use and shared by every socket it is written to.
 */
export class WireFrame {
  /** The frame's text (JSON). */
  readonly text: string;
  #bytes: readonly Buffer[] | undefined;
  #payloadStart = 0;

  /** A frame of `text`; nothing is encoded until a socket takes its bytes. */
  constructor(text: string) {
    this.text = text;
  }

  /** Characters of text: what the send budget and the byte counters count, as for a plain send. */
  get length(): number {
    return this.text.length;
  }

  /**
   * The frame's bytes, framed once; read-only, shared by every socket. One buffer, header and payload
   * together: each chunk is one `write` into every socket's stream (at 100 sockets, a second chunk per
   * frame was 100 more), so the header `ws` frames is put in front of the payload once here.
   */
  get bytes(): readonly Buffer[] {
    if (this.#bytes === undefined) {
      const buffer = framed(this.text);
      this.#bytes = [buffer];
      this.#payloadStart = headerLength(buffer);
    }
    return this.#bytes;
  }

  /**
   * The text's UTF-8 (the frame's payload) if a socket already took the frame's bytes, else undefined:
   * whoever needs the same bytes (the history) copies them instead of encoding the text again.
   */
  get payload(): Uint8Array | undefined {
    return this.#bytes?.[0].subarray(this.#payloadStart);
  }
}

/** Room left before the payload for the longest header of an unmasked frame (64-bit length). */
const MAX_HEADER_BYTES = 10;

/**
 * `text` as one unmasked websocket text frame in one buffer: the UTF-8 payload is written after room for
 * the longest header, `ws` frames it (its header depends on the payload's length), and the header is
 * copied in just before the payload.
 */
function framed(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const buffer = Buffer.allocUnsafe(MAX_HEADER_BYTES + length);
  const payload = buffer.subarray(MAX_HEADER_BYTES);
  payload.write(text);
  const [header] = frameText(payload, TEXT);
  const start = MAX_HEADER_BYTES - header.length;
  buffer.set(header, start);
  return buffer.subarray(start);
}

/** The length of an unmasked frame's header (RFC 6455, 5.2): 2 bytes, or 4 or 10 with an extended length. */
function headerLength(frame: Uint8Array): number {
  const length = frame[1] & 0x7f;
  return length === 127 ? 10 : length === 126 ? 4 : 2;
}

/** The frame `frame` as a {@linkcode WireFrame}: a text is wrapped, a wire frame kept. */
export function wireFrame(frame: string | WireFrame): WireFrame {
  return typeof frame === "string" ? new WireFrame(frame) : frame;
}

/** What a wire needs of a byte stream: a `net.Socket` or `tls.TLSSocket`, or a test's fake. */
export interface ByteSocket {
  /** Writes bytes (queued while corked). */
  write(chunk: Uint8Array): boolean;
  /** Holds writes until `uncork`. */
  cork(): void;
  /** Writes what was held, in one write. */
  uncork(): void;
  /** Bytes queued (corked or not yet taken by the kernel); a fake may leave it out. */
  readonly writableLength?: number;
  /** Set once the stream is destroyed. */
  readonly destroyed: boolean;
}

/**
 * The parts of a `ws` socket a wire looks at: its net socket and its sender's
 * state. `ws`'s own fields, read and never written.
 */
export interface WsInternals {
  /** 1 while open: no close frame sent or received. */
  readonly readyState: number;
  /** The connection beneath (ws's `_socket`). */
  readonly _socket?: ByteSocket;
  /** The frame writer (ws's `_sender`). */
  readonly _sender?: {
    /** 0 while idle: frames go out at once rather than into its queue. */
    readonly _state: number;
    /** False in the middle of a fragmented message. */
    readonly _firstFragment: boolean;
  };
}

/**
 * One socket's raw path: writes a {@linkcode WireFrame}'s shared bytes to the
 * `ws` socket's net socket, corked for the rest of the turn.
 */
export class Wire {
  readonly #ws: WsInternals;
  /** The net socket while corked by this wire (this turn, or until its deferred flush). */
  #corkedOn: ByteSocket | undefined;
  /** When this wire last uncorked (`performance.now()`). */
  #lastFlush = -Infinity;

  /** A wire for a `ws` socket (see {@linkcode wireFor}). */
  constructor(ws: WsInternals) {
    this.#ws = ws;
  }

  /**
   * Writes the frame's bytes if `ws` itself would write them at once now.
   *
   * @returns false when it did not: the caller sends the frame through `ws`.
   */
  write(frame: WireFrame): boolean {
    const ws = this.#ws;
    const socket = ws._socket;
    const sender = ws._sender;
    if (
      ws.readyState !== OPEN || !socket || socket.destroyed || !sender ||
      sender._state !== SENDER_IDLE || !sender._firstFragment
    ) {
      return false;
    }
    if (this.#corkedOn === undefined) {
      // The first frame of this turn: hold the socket's writes until the turn's microtasks run.
      this.#corkedOn = socket;
      socket.cork();
      if (Wire.#corked.length === 0) queueMicrotask(Wire.#uncorkAll);
      Wire.#corked.push(this);
    }
    for (const chunk of frame.bytes) socket.write(chunk);
    return true;
  }

  /** Wires corked in this turn, uncorked together in one microtask rather than one each. */
  static #corked: Wire[] = [];
  /** Wires that flushed less than {@linkcode FLUSH_INTERVAL_MS} ago: they stay corked until the timer. */
  static #deferred: Wire[] = [];
  static #timer: ReturnType<typeof setTimeout> | undefined;

  static #uncorkAll(): void {
    // An uncork writes synchronously and may reach code that writes (and corks) again: take the list first.
    const wires = Wire.#corked;
    Wire.#corked = [];
    const now = performance.now();
    for (const wire of wires) {
      const socket = wire.#corkedOn!;
      if (
        now - wire.#lastFlush < FLUSH_INTERVAL_MS && (socket.writableLength ?? 0) < FLUSH_BYTES &&
        !socket.destroyed
      ) {
        // Frames keep coming to this socket: the ones of the next turns join these, at most a millisecond.
        Wire.#deferred.push(wire);
        continue;
      }
      wire.#flush(now);
    }
    if (Wire.#deferred.length > 0 && Wire.#timer === undefined) {
      const timer = setTimeout(Wire.#flushDeferred, FLUSH_INTERVAL_MS);
      Deno.unrefTimer(timer);
      Wire.#timer = timer;
    }
  }

  static #flushDeferred(): void {
    Wire.#timer = undefined;
    const wires = Wire.#deferred;
    Wire.#deferred = [];
    const now = performance.now();
    for (const wire of wires) wire.#flush(now);
  }

  #flush(now: number): void {
    const socket = this.#corkedOn;
    if (socket === undefined) return;
    this.#corkedOn = undefined;
    this.#lastFlush = now;
    try {
      socket.uncork();
    } catch {
      // A write error surfaces as the socket's `error` event (ws closes it); the other sockets still flush.
    }
  }
}

/** A wire for a `ws` server socket, or undefined for any other socket (the browser API, a plain fake). */
export function wireFor(socket: object): Wire | undefined {
  const ws = socket as WsInternals;
  if (!ws._socket || !ws._sender) return undefined;
  mergeBatchedWrites(ws._socket);
  return new Wire(ws);
}
