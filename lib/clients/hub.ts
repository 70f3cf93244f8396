/**
 * The connected websocket clients: who is there, and fan-out of one encoded
 * frame to all of them. The reply path does no per-client JSON work: every
 * client is handed the same string.
 *
 * Each client has an outgoing budget (the socket's `bufferedAmount`). A client
 * over it never delays the others nor grows memory: it is closed (1008), or,
 * with the `drop` policy, skipped until it has caught up and then told how
 * many frames it missed.
 *
 * @module
 */

import type { SlowClientPolicy } from "../config/config.ts";
import type { ReplyFilter, ReplyMeta } from "./filter.ts";
import { TokenBucket } from "../commands/rate_limit.ts";

/** Close code for a client closed for being too slow (RFC 6455 policy violation). */
export const CLOSE_TOO_SLOW = 1008;

/** `readyState` of an open socket (as in the browser API and `ws`). */
const OPEN = 1;

/** What the hub needs of a client's socket (the browser API's names, which `ws` shares). */
export interface HubSocket {
  /** 1 while open. */
  readonly readyState: number;
  /** Bytes queued and not yet written to the network. */
  readonly bufferedAmount: number;
  /** Queues a text frame. */
  send(frame: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
}

/** One connected websocket client; `grant` is what admission attached to it (e.g. its token). */
export interface Client<G = unknown> {
  /** A short id for logs. */
  readonly id: number;
  /** The peer address, `host:port`. */
  readonly peer: string;
  /** The socket. */
  readonly socket: HubSocket;
  /** What admission granted it. */
  readonly grant: G;
  /** When it connected (ms since the epoch). */
  readonly connectedAt: number;
  /** Its command allowance (rate limit). */
  readonly allowance: TokenBucket;
  /** Frames sent to it so far. */
  framesSent: number;
  /** Frames skipped since it fell behind (drop policy). */
  dropped: number;
  /** Bad frames it sent. */
  badFrames: number;
  /** Commands it sent. */
  commandsSent: number;
  /** Speaks clu-ws v1 (frames with `seq`, control frames). */
  readonly v1: boolean;
  /** Its subscription (v1); everything when undefined. */
  filter: ReplyFilter | undefined;
  /** Ids of its recent commands, for `mine` subscriptions (bounded). */
  readonly mine: Set<string>;
  /** v1 batched delivery: replies go out as JSON arrays, one websocket message per flush. */
  batch: boolean;
  /** Batched replies waiting for the flush (filtered batch clients only). */
  pending: string[];
  /** How many of this turn's shared batched replies it has already been sent. */
  turnSent: number;
  /** Characters sent since its backlog was last looked at. */
  unchecked: number;
}

/** One reply as the hub hands it out: CLU text, v1 text, and what filters look at. */
export interface Delivery {
  /** The CLU frame. */
  plain: string;
  /** The v1 frame (with `seq`). */
  v1: string;
  /** For subscription filters. */
  meta: ReplyMeta;
}

/** How many command ids a client's `mine` set remembers. */
const MINE_LIMIT = 1000;

/** Remembers a command id as the client's own, forgetting the oldest beyond the limit. */
export function rememberMine(client: Client<unknown>, commandId: string): void {
  client.mine.add(commandId);
  if (client.mine.size > MINE_LIMIT) client.mine.delete(client.mine.values().next().value!);
}

/** Options for {@linkcode Hub}. */
export interface HubOptions {
  /** Outgoing bytes a client may have waiting. */
  bufferBytes: number;
  /** What to do with a client over its budget. */
  policy: SlowClientPolicy;
  /** Commands per second per client (0: unlimited). */
  commandRate: number;
  /** Commands a client may send at once. */
  commandBurst: number;
  /** The frame that tells a client how many frames it missed. */
  droppedNotice: (dropped: number) => string;
  /** Called when a client is closed for being too slow. */
  onSlowClose?: (client: Client<unknown>, buffered: number) => void;
  /** Called when a client caught up after frames were dropped. */
  onCaughtUp?: (client: Client<unknown>, dropped: number) => void;
}

/** How often lagging clients are checked for having caught up, when no traffic does it. */
const CATCH_UP_CHECK_MS = 500;

/** The registry of connected clients. */
export class Hub<G = unknown> {
  readonly #clients = new Set<Client<G>>();
  readonly #lagging = new Set<Client<G>>();
  readonly #batchers = new Set<Client<G>>();
  #turn: string[] = [];
  #flushScheduled = false;
  readonly #options: HubOptions;
  readonly #checkEvery: number;
  #catchUpTimer: ReturnType<typeof setInterval> | undefined;
  #nextId = 1;
  #framesSent = 0;
  #bytesSent = 0;
  #slowCloses = 0;
  #framesDropped = 0;

  /** An empty hub. */
  constructor(options: HubOptions) {
    this.#options = options;
    this.#checkEvery = Math.min(16 * 1024, Math.floor(options.bufferBytes / 8));
  }

  /** How many clients are connected. */
  get size(): number {
    return this.#clients.size;
  }

  /** Frames handed to sockets since start. */
  get framesSent(): number {
    return this.#framesSent;
  }

  /** Characters of frames handed to sockets since start (bytes, for ASCII JSON). */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Clients closed for being too slow since start. */
  get slowCloses(): number {
    return this.#slowCloses;
  }

  /** Frames skipped for slow clients since start (drop policy). */
  get framesDropped(): number {
    return this.#framesDropped;
  }

  /** The connected clients, in the order they connected; copy them before removing any. */
  clients(): IterableIterator<Client<G>> {
    return this.#clients.values();
  }

  /** Registers an open socket and returns its client record. */
  add(socket: HubSocket, peer: string, grant: G, { v1 = false } = {}): Client<G> {
    const client: Client<G> = {
      v1,
      filter: undefined,
      mine: new Set(),
      batch: false,
      pending: [],
      turnSent: 0,
      unchecked: 0,
      id: this.#nextId++,
      peer,
      socket,
      grant,
      connectedAt: Date.now(),
      allowance: new TokenBucket(this.#options.commandRate, this.#options.commandBurst),
      framesSent: 0,
      dropped: 0,
      badFrames: 0,
      commandsSent: 0,
    };
    this.#clients.add(client);
    return client;
  }

  /** Forgets a client (idempotent). */
  remove(client: Client<G>): void {
    this.#clients.delete(client);
    this.#batchers.delete(client);
    this.#unlag(client);
  }

  /**
   * Sends one frame (a control frame, an error, a notice) to one client,
   * applying its budget; a batching client first gets the replies batched for
   * it so far, so nothing overtakes them.
   */
  send(client: Client<G>, frame: string): void {
    if (client.batch) this.#flushClient(client);
    this.#sendRaw(client, frame, 1);
  }

  #sendRaw(client: Client<G>, frame: string, frames: number): void {
    const socket = client.socket;
    if (socket.readyState !== OPEN) return;
    // Asking the socket for its backlog costs an op per frame; the kernel's buffers absorb
    // megabytes first, so a look every few KiB keeps the budget to within that slack.
    client.unchecked += frame.length;
    if (client.unchecked < this.#checkEvery && client.dropped === 0) {
      this.#write(client, frame, frames);
      return;
    }
    client.unchecked = 0;
    const buffered = socket.bufferedAmount;
    if (client.dropped > 0) {
      if (buffered > this.#options.bufferBytes / 2) {
        client.dropped += frames;
        this.#framesDropped += frames;
        return;
      }
      this.#caughtUp(client);
    }
    if (buffered + frame.length > this.#options.bufferBytes && buffered > 0) {
      this.#overBudget(client, buffered, frames);
      return;
    }
    this.#write(client, frame, frames);
  }

  #write(client: Client<G>, frame: string, frames = 1): void {
    try {
      client.socket.send(frame);
      client.framesSent += frames;
      this.#framesSent += frames;
      this.#bytesSent += frame.length;
    } catch {
      // The socket closed between the check and the send; its close handler removes it.
    }
  }

  #overBudget(client: Client<G>, buffered: number, frames: number): void {
    if (this.#options.policy === "drop") {
      client.dropped += frames;
      this.#framesDropped += frames;
      this.#lagging.add(client);
      this.#catchUpTimer ??= setInterval(() => this.#checkLagging(), CATCH_UP_CHECK_MS);
      return;
    }
    this.remove(client);
    this.#slowCloses++;
    this.#options.onSlowClose?.(client, buffered);
    try {
      client.socket.close(
        CLOSE_TOO_SLOW,
        `client too slow: over ${this.#options.bufferBytes} bytes waiting`,
      );
    } catch {
      // Already closing.
    }
  }

  #caughtUp(client: Client<G>): void {
    const dropped = client.dropped;
    client.dropped = 0;
    this.#unlag(client);
    this.#write(client, this.#options.droppedNotice(dropped));
    this.#options.onCaughtUp?.(client, dropped);
  }

  #checkLagging(): void {
    for (const client of this.#lagging) {
      if (client.socket.readyState !== OPEN) {
        this.#unlag(client);
      } else if (client.socket.bufferedAmount <= this.#options.bufferBytes / 2) {
        this.#caughtUp(client);
      }
    }
  }

  #unlag(client: Client<G>): void {
    this.#lagging.delete(client);
    if (this.#lagging.size === 0 && this.#catchUpTimer !== undefined) {
      clearInterval(this.#catchUpTimer);
      this.#catchUpTimer = undefined;
    }
  }

  /** Sends the same frame to every connected client. */
  broadcast(frame: string): void {
    for (const client of this.#clients) this.send(client, frame);
  }

  /** Sends a control frame to every clu-ws v1 client. */
  broadcastV1(frame: string): void {
    for (const client of this.#clients) if (client.v1) this.send(client, frame);
  }

  /** Hands a reply to every client that wants it, in its dialect; no per-client encoding. */
  deliver(delivery: Delivery): void {
    let shared = false;
    for (const client of this.#clients) {
      if (client.filter && !client.filter.matches(delivery.meta, (id) => client.mine.has(id))) continue;
      if (!client.batch) {
        this.#sendRaw(client, client.v1 ? delivery.v1 : delivery.plain, 1);
      } else if (client.filter) {
        client.pending.push(delivery.v1);
      } else {
        shared = true;
      }
    }
    // Unfiltered batching clients all get the same replies: one list, one join per flush.
    if (shared) this.#turn.push(delivery.v1);
    if (this.#batchers.size > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setTimeout(() => this.#flush(), 0);
    }
  }

  /** Changes a client's subscription; what was batched under the old one goes out first. */
  setFilter(client: Client<G>, filter: ReplyFilter | undefined): void {
    if (client.batch) this.#flushClient(client);
    client.filter = filter;
    client.turnSent = this.#turn.length;
  }

  /** Turns batched delivery on or off for a v1 client. */
  setBatch(client: Client<G>, on: boolean): void {
    if (client.batch === on) return;
    if (!on) this.#flushClient(client);
    client.batch = on;
    client.turnSent = this.#turn.length;
    if (on) this.#batchers.add(client);
    else this.#batchers.delete(client);
  }

  /** Sends a batching client what was batched for it since the last flush. */
  #flushClient(client: Client<G>): void {
    const frames = client.filter ? client.pending : this.#turn.slice(client.turnSent);
    if (client.filter) client.pending = [];
    else client.turnSent = this.#turn.length;
    if (frames.length > 0) this.#sendRaw(client, `[${frames.join(",")}]`, frames.length);
  }

  #flush(): void {
    this.#flushScheduled = false;
    const turn = this.#turn;
    const whole = turn.length > 0 ? `[${turn.join(",")}]` : "";
    for (const client of this.#batchers) {
      if (client.filter || client.turnSent > 0) {
        this.#flushClient(client);
      } else if (whole) {
        this.#sendRaw(client, whole, turn.length);
      }
      client.turnSent = 0;
    }
    this.#turn = [];
  }

  /** Closes every client with the given code and reason, and stops the hub's timer. */
  closeAll(code: number, reason: string): void {
    for (const client of this.#clients) {
      this.#unlag(client);
      try {
        client.socket.close(code, reason);
      } catch {
        // Already closing.
      }
    }
  }
}
