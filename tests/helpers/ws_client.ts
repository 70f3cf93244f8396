/**
 * A websocket test client that keeps every frame it receives and awaits frames
 * by predicate with a deadline: tests wait for events, never for time.
 *
 * @module
 */

/** A CLU frame as clients receive it. */
export interface Frame {
  headers: Record<string, unknown>;
  exchange: string;
  message_id: string | null;
  routing_key: string;
  timestamp: string | null;
  body: Record<string, unknown>;
}

/** A connected test client. */
export class WsClient {
  /** Every text frame received, parsed, in order. */
  readonly frames: Frame[] = [];
  /** Raw text of every frame received. */
  readonly raw: string[] = [];
  /** Resolves with the close event once the socket closes. */
  readonly closed: Promise<CloseEvent>;
  readonly #socket: WebSocket;
  #closeEvent: CloseEvent | undefined;
  #waiters: Array<() => void> = [];

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => {
      socket.addEventListener("close", (event) => {
        this.#closeEvent = event;
        resolve(event);
        this.#wake();
      });
    });
    socket.addEventListener("message", (event) => {
      const text = typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
      this.raw.push(text);
      this.frames.push(JSON.parse(text));
      this.#wake();
    });
  }

  /**
   * Opens a client to `url` and resolves once it is open; `protocols` are
   * offered subprotocols, `headers` extra handshake headers (a Deno extension).
   */
  static connect(
    url: string,
    { timeoutMs = 10_000, protocols = [] as string[], headers = {} as Record<string, string> } = {},
  ): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket = Object.keys(headers).length > 0
        ? new WebSocket(url, { protocols, headers } as unknown as string[])
        : new WebSocket(url, protocols);
      const client = new WsClient(socket);
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error(`websocket to ${url} did not open within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.addEventListener("open", () => {
        clearTimeout(timer);
        resolve(client);
      }, { once: true });
      socket.addEventListener("error", () => {
        clearTimeout(timer);
        reject(new Error(`websocket to ${url} failed to open`));
      }, { once: true });
    });
  }

  /** The subprotocol the server answered. */
  get protocol(): string {
    return this.#socket.protocol;
  }

  /** The socket's ready state. */
  get readyState(): number {
    return this.#socket.readyState;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Sends a JSON value, or a string or bytes as they are. */
  send(data: unknown): void {
    if (typeof data === "string" || data instanceof Uint8Array) {
      this.#socket.send(data);
    } else {
      this.#socket.send(JSON.stringify(data));
    }
  }

  /**
   * Resolves with the first frame (received before or after the call) that
   * matches, or rejects after `timeoutMs` with what did arrive.
   */
  async next(
    what: string,
    match: (frame: Frame) => boolean,
    { timeoutMs = 10_000 } = {},
  ): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const found = this.frames.find(match);
      if (found) return found;
      if (this.#socket.readyState === WebSocket.CLOSED) {
        const event = this.#closeEvent;
        throw new Error(
          `socket closed (${event?.code} ${event?.reason}) while waiting for ${what}, after ${this.raw.length} frames`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `no frame matching ${what} within ${timeoutMs} ms; got ${this.raw.length} frames, the last: ${
            this.raw.slice(-3).map((f) => f.slice(0, 300)).join("\n")
          }`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Waits until `count` frames match; resolves with them. */
  async count(
    what: string,
    match: (frame: Frame) => boolean,
    count: number,
    { timeoutMs = 10_000 } = {},
  ): Promise<Frame[]> {
    const matches: Frame[] = [];
    let seen = 0;
    const enough = () => {
      for (; seen < this.frames.length; seen++) {
        if (match(this.frames[seen])) matches.push(this.frames[seen]);
      }
      return matches.length >= count;
    };
    // next() asks its predicate frame by frame; this one looks at what is new once per call.
    await this.next(`${count} × ${what}`, enough, { timeoutMs });
    return matches.slice(0, count);
  }

  /** Closes the socket and waits for the close to finish. */
  async close(): Promise<void> {
    if (this.#socket.readyState !== WebSocket.CLOSED) this.#socket.close();
    await this.closed;
  }
}

/** True for the frame that answers `commandId` with message code `code`. */
export function replyTo(commandId: string, code: string): (frame: Frame) => boolean {
  return (frame) => frame.headers.command_id === commandId && frame.headers.message_code === code;
}
