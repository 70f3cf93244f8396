/**
 * The connected websocket clients: who is there, and fan-out of one encoded
 * frame to all of them. The reply path does no per-client JSON work: every
 * client is handed the same string.
 *
 * @module
 */

/** One connected websocket client. */
export interface Client {
  /** A short id for logs. */
  readonly id: number;
  /** The peer address, `host:port`. */
  readonly peer: string;
  /** The socket. */
  readonly socket: WebSocket;
  /** When it connected (ms since the epoch). */
  readonly connectedAt: number;
  /** Frames sent to it so far. */
  framesSent: number;
}

/** The registry of connected clients. */
export class Hub {
  readonly #clients = new Set<Client>();
  #nextId = 1;
  #framesSent = 0;

  /** How many clients are connected. */
  get size(): number {
    return this.#clients.size;
  }

  /** Frames handed to sockets since start. */
  get framesSent(): number {
    return this.#framesSent;
  }

  /** Registers an open socket and returns its client record. */
  add(socket: WebSocket, peer: string): Client {
    const client: Client = { id: this.#nextId++, peer, socket, connectedAt: Date.now(), framesSent: 0 };
    this.#clients.add(client);
    return client;
  }

  /** Forgets a client (idempotent). */
  remove(client: Client): void {
    this.#clients.delete(client);
  }

  /** Sends one frame to one client if its socket is open. */
  send(client: Client, frame: string): void {
    if (client.socket.readyState !== WebSocket.OPEN) return;
    try {
      client.socket.send(frame);
      client.framesSent++;
      this.#framesSent++;
    } catch {
      // The socket closed between the check and the send; its close handler removes it.
    }
  }

  /** Sends the same frame to every connected client. */
  broadcast(frame: string): void {
    for (const client of this.#clients) this.send(client, frame);
  }

  /** Closes every client with the given code and reason. */
  closeAll(code: number, reason: string): void {
    for (const client of this.#clients) {
      try {
        client.socket.close(code, reason);
      } catch {
        // Already closing.
      }
    }
  }
}
