/**
 * The client's socket: opens it with the v1 subprotocol (and the token, when
 * there is one), and after a loss opens a new one with exponential backoff
 * and jitter until closed for good. What the frames mean is the client's job.
 *
 * @module
 */

import { TOKEN_PROTOCOL_PREFIX, V1_SUBPROTOCOL } from "../../lib/protocol/v1.ts";
import type { ClientOptions } from "./types.ts";

/** What a {@linkcode Connection} tells its owner. */
export interface ConnectionEvents {
  /** A socket is being opened (the first, or one after a loss). */
  connecting(): void;
  /** The socket could not even be made (a bad URL, say); no retry follows. */
  failed(error: Error): void;
  /** A text message arrived. */
  message(text: string): void;
  /** The current socket closed; a retry follows unless {@linkcode ConnectionEvents.ended} does. */
  lost(event: CloseEvent): void;
  /** No retry follows the loss just reported: the connection was closed or reconnecting is off. */
  ended(): void;
}

/** The options a {@linkcode Connection} reads. */
export type ConnectionOptions = Pick<ClientOptions, "token" | "reconnect" | "minDelayMs" | "maxDelayMs">;

/** One logical connection to a gateway, over as many sockets as reconnecting takes. */
export class Connection {
  readonly #url: string;
  readonly #options: ConnectionOptions;
  readonly #events: ConnectionEvents;
  #socket: WebSocket | undefined;
  #closed = false;
  #delay: number;
  #retry: ReturnType<typeof setTimeout> | undefined;

  /** Prepares a connection to `url` (ws:// or wss://); {@linkcode Connection.open} starts it. */
  constructor(url: string, options: ConnectionOptions & { events: ConnectionEvents }) {
    this.#url = url;
    this.#options = options;
    this.#events = options.events;
    this.#delay = options.minDelayMs ?? 500;
  }

  /** The URL connected to. */
  get url(): string {
    return this.#url;
  }

  /** Whether a socket is open and can send. */
  get isOpen(): boolean {
    const socket = this.#socket;
    return socket !== undefined && socket.readyState === WebSocket.OPEN;
  }

  /** Sends `text` on the open socket; false (and nothing sent) when none is open. */
  send(text: string): boolean {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(text);
    return true;
  }

  /** Opens a socket now. */
  open(): void {
    this.#events.connecting();
    const token = this.#options.token;
    const protocols = [V1_SUBPROTOCOL, ...(token ? [`${TOKEN_PROTOCOL_PREFIX}${token}`] : [])];
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.#url, protocols);
    } catch (err) {
      this.#events.failed(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.#socket = socket;
    socket.onmessage = (event) => this.#events.message(String(event.data));
    socket.onclose = (event) => this.#onClose(socket, event);
    socket.onerror = () => {
      // A close event follows.
    };
  }

  /** The gateway accepted this socket: the next loss starts again from the shortest delay. */
  resetBackoff(): void {
    this.#delay = this.#options.minDelayMs ?? 500;
  }

  /**
   * Closes for good: no more retries. Returns true when a socket is closing
   * (its loss is reported as usual), false when there was none to close.
   */
  close(): boolean {
    this.#closed = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    const socket = this.#socket;
    if (socket && socket.readyState <= WebSocket.OPEN) {
      socket.close(1000, "client closed");
      return true;
    }
    return false;
  }

  #onClose(socket: WebSocket, event: CloseEvent): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#events.lost(event);
    // Checked after `lost`: its listeners may have closed the client.
    if (this.#closed || this.#options.reconnect === false) {
      this.#events.ended();
      return;
    }
    const maxDelay = this.#options.maxDelayMs ?? 30_000;
    const delay = this.#delay * (0.7 + Math.random() * 0.6);
    this.#delay = Math.min(maxDelay, this.#delay * 2);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (!this.#closed) this.open();
    }, delay);
  }
}
