/**
 * A websocket peer at the TCP level, for what a well-behaved client library
 * cannot do: complete the handshake and then go silent (a dead or stalled
 * peer), send a text frame with invalid UTF-8, or vanish without a close frame.
 *
 * @module
 */

const encoder = new TextEncoder();

/** A raw websocket connection after a successful handshake. */
export class RawWebSocket {
  readonly #conn: Deno.Conn;
  #closed = false;
  /** Bytes read and not yet parsed into frames (readTextUntil). */
  #pending = new Uint8Array(0);

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /**
   * Connects and completes the upgrade handshake; then reads nothing more
   * unless asked (so the server's frames pile up in the kernel, as with a
   * stalled client). With `caCerts`, over TLS (wss://) trusting those.
   */
  static async connect(
    port: number,
    { path = "/", hostname = "127.0.0.1", caCerts, protocols = [] }: {
      path?: string;
      hostname?: string;
      caCerts?: string[];
      /** Subprotocols to offer (e.g. `clu-ws.v1`). */
      protocols?: string[];
    } = {},
  ): Promise<RawWebSocket> {
    const conn = caCerts
      ? await Deno.connectTls({ hostname, port, caCerts })
      : await Deno.connect({ hostname, port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await writeAll(
      conn,
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          (protocols.length > 0 ? `Sec-WebSocket-Protocol: ${protocols.join(", ")}\r\n` : "") + "\r\n",
      ),
    );
    // Read the response head byte by byte so no frame byte after it is consumed.
    let head = "";
    const one = new Uint8Array(1);
    while (!head.endsWith("\r\n\r\n")) {
      const n = await conn.read(one);
      if (n === null) throw new Error(`server closed during the handshake: ${head}`);
      head += String.fromCharCode(one[0]);
      if (head.length > 8192) throw new Error("handshake response too long");
    }
    if (!head.startsWith("HTTP/1.1 101")) {
      conn.close();
      throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
    }
    return new RawWebSocket(conn);
  }

  /** Sends one masked frame (as clients must) with the given opcode and payload. */
  async sendFrame(opcode: number, payload: Uint8Array): Promise<void> {
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const length = payload.length;
    const header = length < 126
      ? [0x80 | opcode, 0x80 | length]
      : length < 65536
      ? [0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff]
      : [
        0x80 | opcode,
        0x80 | 127,
        0,
        0,
        0,
        0,
        (length >>> 24) & 0xff,
        (length >> 16) & 0xff,
        (length >> 8) & 0xff,
        length & 0xff,
      ];
    const frame = new Uint8Array(header.length + 4 + length);
    frame.set(header, 0);
    frame.set(mask, header.length);
    for (let i = 0; i < length; i++) frame[header.length + 4 + i] = payload[i] ^ mask[i % 4];
    await writeAll(this.#conn, frame);
  }

  /**
   * Streams one masked frame of `length` payload bytes (spaces) as it goes, `chunkBytes` at a time,
   * never holding it whole. Stops at the first failed write (the server reset the connection);
   * resolves with the payload bytes written by then and that error, if any.
   */
  async streamFrame(
    opcode: number,
    length: number,
    { chunkBytes = 256 * 1024 } = {},
  ): Promise<{ written: number; error?: Error }> {
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const header = new Uint8Array(14);
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 127;
    new DataView(header.buffer).setBigUint64(2, BigInt(length));
    header.set(mask, 10);
    // The same masked chunk every time: its length is a multiple of 4, so the mask lines up.
    const chunk = new Uint8Array(chunkBytes - (chunkBytes % 4)).map((_, i) => 0x20 ^ mask[i % 4]);
    let written = 0;
    try {
      await writeAll(this.#conn, header);
      while (written < length) {
        const part = chunk.subarray(0, Math.min(chunk.length, length - written));
        await writeAll(this.#conn, part);
        written += part.length;
      }
    } catch (err) {
      return { written, error: err instanceof Error ? err : new Error(String(err)) };
    }
    return { written };
  }

  /**
   * Reads the server's (unmasked) frames until it closes the TCP connection or resets it; resolves
   * with them. Payloads of frames over 64 KiB are not kept.
   */
  async readFramesUntilClosed(): Promise<Array<{ opcode: number; payload: Uint8Array }>> {
    const frames: Array<{ opcode: number; payload: Uint8Array }> = [];
    const buffer = new Uint8Array(64 * 1024);
    let pending = new Uint8Array(0);
    try {
      while (true) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        const joined = new Uint8Array(pending.length + n);
        joined.set(pending);
        joined.set(buffer.subarray(0, n), pending.length);
        pending = joined;
        while (pending.length >= 2) {
          const short = pending[1] & 0x7f;
          const head = short === 126 ? 4 : short === 127 ? 10 : 2;
          if (pending.length < head) break;
          const view = new DataView(pending.buffer, pending.byteOffset);
          const size = short === 126
            ? view.getUint16(2)
            : short === 127
            ? Number(view.getBigUint64(2))
            : short;
          if (size > 64 * 1024) throw new Error(`a frame of ${size} bytes from the server`);
          if (pending.length < head + size) break;
          frames.push({ opcode: pending[0] & 0x0f, payload: pending.slice(head, head + size) });
          pending = pending.slice(head + size);
        }
      }
    } catch {
      // Reset by the server.
    }
    return frames;
  }

  /**
   * Reads the server's text frames (unfragmented) until one satisfies `done`
   * or `timeoutMs` passes; resolves with their texts, the last one included.
   * Bytes after that frame are kept for the next call.
   */
  async readTextUntil(done: (text: string) => boolean, { timeoutMs = 30_000 } = {}): Promise<string[]> {
    const texts: string[] = [];
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(256 * 1024);
    const deadline = Date.now() + timeoutMs;
    while (true) {
      while (this.#pending.length >= 2) {
        const short = this.#pending[1] & 0x7f;
        const head = short === 126 ? 4 : short === 127 ? 10 : 2;
        if (this.#pending.length < head) break;
        const view = new DataView(this.#pending.buffer, this.#pending.byteOffset);
        const size = short === 126 ? view.getUint16(2) : short === 127 ? Number(view.getBigUint64(2)) : short;
        if (this.#pending.length < head + size) break;
        const opcode = this.#pending[0] & 0x0f;
        const payload = this.#pending.subarray(head, head + size);
        this.#pending = this.#pending.slice(head + size);
        if (opcode === 0x8) {
          throw new Error(
            `the server closed: ${new DataView(payload.buffer, payload.byteOffset).getUint16(0)} ${
              decoder.decode(payload.subarray(2))
            }`,
          );
        }
        if (opcode !== 0x1) continue;
        const text = decoder.decode(payload);
        texts.push(text);
        if (done(text)) return texts;
      }
      if (Date.now() > deadline) {
        throw new Error(`no frame ended the read within ${timeoutMs} ms (${texts.length} read)`);
      }
      const timer = setTimeout(() => this.abort(), Math.max(1, deadline - Date.now()));
      const n = await this.#conn.read(buffer).finally(() => clearTimeout(timer));
      if (n === null) throw new Error(`the server closed the connection after ${texts.length} frames`);
      const joined = new Uint8Array(this.#pending.length + n);
      joined.set(this.#pending);
      joined.set(buffer.subarray(0, n), this.#pending.length);
      this.#pending = joined;
    }
  }

  /** Reads until the server closes the TCP connection; resolves with the bytes read. */
  async readUntilClosed(): Promise<number> {
    const buffer = new Uint8Array(64 * 1024);
    let total = 0;
    try {
      while (true) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        total += n;
      }
    } catch {
      // Reset by the server.
    }
    return total;
  }

  /** Drops the TCP connection without a close frame, as a crashed client would. */
  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}
