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
  readonly #conn: Deno.TcpConn;
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /**
   * Connects and completes the upgrade handshake; then reads nothing more
   * unless asked (so the server's frames pile up in the kernel, as with a
   * stalled client).
   */
  static async connect(port: number, { path = "/", hostname = "127.0.0.1" } = {}): Promise<RawWebSocket> {
    const conn = await Deno.connect({ hostname, port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await writeAll(
      conn,
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
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
