/**
 * The connected websocket clients: the registry, and fan-out of one encoded
 * frame to those that want it. The reply path does no per-client work: every
 * client is handed the same {@linkcode WireFrame} (the text, framed into
 * websocket bytes once for all), through its {@linkcode Outbox} (which owns
 * the budget, the slow-client policy, batching and the per-turn cork).
 *
 * @module
 */

import type { SlowClientPolicy } from "../config/config.ts";
import type { ReplyFilter, ReplyMeta } from "./filter.ts";
import {
  Outbox,
  type OutboxEvents,
  type OutboxSettings,
  type OutboxSocket,
  OutboxTotals,
  SharedTurn,
  WireFrame,
} from "./outbox.ts";

export { CLOSE_TOO_SLOW } from "./outbox.ts";

/** What the hub needs of a client's socket: what its outbox needs. */
export type HubSocket = OutboxSocket;

/** One connected websocket client; `grant` is what admission attached to it (e.g. its token). */
export interface Client<G = unknown> {
  /** A short id for logs. */
  readonly id: number;
  /** The peer address, `host:port`. */
  readonly peer: string;
  /** What admission granted it. */
  readonly grant: G;
  /** When it connected (ms since the epoch). */
  readonly connectedAt: number;
  /** Speaks clu-ws v1 (frames with `seq`, control frames). */
  readonly v1: boolean;
  /** Its socket's outgoing side; the one way to send to it or close it. */
  readonly outbox: Outbox;
  /** Its subscription (v1); everything when undefined. Changed through {@linkcode Hub.setFilter}. */
  readonly filter: ReplyFilter | undefined;
  /** Ids of its recent commands, for `mine` subscriptions (bounded); made with the first. */
  readonly mine: Set<string> | undefined;
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

/** The frames {@linkcode Hub.deliver} made for a reply (one per dialect that some socket got). */
export interface DeliveredFrames {
  /** The CLU frame, if a CLU-dialect socket got it. */
  plain?: WireFrame;
  /** The v1 frame, if an unbatched v1 socket got it. */
  v1?: WireFrame;
}

/** A reply from the history, for {@linkcode Hub.replay}. */
export interface Replayed {
  /** The v1 frame. */
  frame: string;
  /** For subscription filters. */
  meta: ReplyMeta;
}

/** How many command ids a client's `mine` set remembers. */
const MINE_LIMIT = 1000;

/** Remembers a command id as the client's own, forgetting the oldest beyond the limit. */
export function rememberMine(client: Client<unknown>, commandId: string): void {
  // Every client is the hub's own record, where the set is writable.
  const mine = (client as Entry<unknown>).mine ??= new Set();
  mine.add(commandId);
  if (mine.size > MINE_LIMIT) mine.delete(mine.values().next().value!);
}

/** Options for {@linkcode Hub}. */
export interface HubOptions {
  /** Outgoing bytes a client may have waiting. */
  bufferBytes: number;
  /** What to do with a client over its budget. */
  policy: SlowClientPolicy;
  /** The frame that tells a client how many frames it missed. */
  droppedNotice: (dropped: number) => string;
  /** Called when a client is closed for being too slow. */
  onSlowClose?: (client: Client<unknown>, buffered: number) => void;
  /** Called when a client caught up after frames were dropped. */
  onCaughtUp?: (client: Client<unknown>, dropped: number) => void;
  /** Called with the client count ({@linkcode Hub.size}) each time it changes. */
  onSizeChange?: (size: number) => void;
}

/** What a client record tells its hub when its outbox does something. */
interface EntryOwner<G> {
  stopped(client: Entry<G>): void;
  slowClose(client: Entry<G>, buffered: number): void;
  caughtUp(client: Entry<G>, dropped: number): void;
}

/**
 * A client record as the hub keeps it (its filter writable here only). It is
 * its outbox's listener itself, with methods rather than closures: an idle
 * gateway holds thousands of these, and each closure would cost every one.
 */
class Entry<G> implements Client<G>, OutboxEvents {
  readonly #owner: EntryOwner<G>;
  readonly outbox: Outbox;
  readonly connectedAt = Date.now();
  filter: ReplyFilter | undefined = undefined;
  mine: Set<string> | undefined = undefined;
  /** Out of the live fan-out while a resume's replay is sent to it (see {@linkcode Hub.hold}). */
  held = false;
  /** Not welcomed yet: gets no broadcast either (see {@linkcode Hub.hold}). */
  quiet = false;

  constructor(
    owner: EntryOwner<G>,
    readonly id: number,
    readonly peer: string,
    readonly grant: G,
    readonly v1: boolean,
    socket: HubSocket,
    settings: OutboxSettings,
  ) {
    this.#owner = owner;
    this.outbox = new Outbox(socket, settings, this);
  }

  onClose(): void {
    this.#owner.stopped(this);
  }

  onSlowClose(buffered: number): void {
    this.#owner.slowClose(this, buffered);
  }

  onCaughtUp(dropped: number): void {
    this.#owner.caughtUp(this, dropped);
  }
}

/** The registry of connected clients. */
export class Hub<G = unknown> {
  /** Clients that receive: registered and not closed. */
  readonly #clients = new Set<Entry<G>>();
  /** Clients closed by their outbox whose socket has not finished closing. */
  readonly #closing = new Set<Entry<G>>();
  readonly #batchers = new Set<Entry<G>>();
  readonly #options: HubOptions;
  readonly #settings: OutboxSettings;
  readonly #totals = new OutboxTotals();
  /** What every client record tells the hub (one object for all of them). */
  readonly #owner: EntryOwner<G>;
  #flushScheduled = false;
  #nextId = 1;
  #allClosed: PromiseWithResolvers<void> | undefined;

  /** An empty hub. */
  constructor(options: HubOptions) {
    this.#options = options;
    this.#settings = {
      bufferBytes: options.bufferBytes,
      policy: options.policy,
      droppedNotice: options.droppedNotice,
      totals: this.#totals,
      turn: new SharedTurn(),
    };
    this.#owner = {
      stopped: (client) => this.#stopped(client),
      slowClose: (client, buffered) => options.onSlowClose?.(client, buffered),
      caughtUp: (client, dropped) => options.onCaughtUp?.(client, dropped),
    };
  }

  /** How many clients are connected and receiving: the client count. */
  get size(): number {
    return this.#clients.size;
  }

  /** Sockets not yet closed: the clients plus those closed by the gateway and still closing. */
  get sockets(): number {
    return this.#clients.size + this.#closing.size;
  }

  /** Frames handed to sockets since start. */
  get framesSent(): number {
    return this.#totals.framesSent;
  }

  /** Characters of frames handed to sockets since start (bytes, for ASCII JSON). */
  get bytesSent(): number {
    return this.#totals.bytesSent;
  }

  /** Clients closed for being too slow since start. */
  get slowCloses(): number {
    return this.#totals.slowCloses;
  }

  /** Frames skipped for slow clients since start (drop policy). */
  get framesDropped(): number {
    return this.#totals.framesDropped;
  }

  /** The clients that receive, in the order they connected; copy them before closing any. */
  clients(): IterableIterator<Client<G>> {
    return this.#clients.values();
  }

  /** Resolves when every socket has closed. */
  allClosed(): Promise<void> {
    this.#allClosed ??= Promise.withResolvers<void>();
    if (this.sockets === 0) this.#allClosed.resolve();
    return this.#allClosed.promise;
  }

  /** Registers an open socket and returns its client record. */
  add(socket: HubSocket, peer: string, grant: G, { v1 = false } = {}): Client<G> {
    const client = new Entry(this.#owner, this.#nextId++, peer, grant, v1, socket, this.#settings);
    this.#clients.add(client);
    this.#options.onSizeChange?.(this.#clients.size);
    return client;
  }

  /** Forgets a client whose socket closed (idempotent). */
  remove(client: Client<G>): void {
    client.outbox.detach();
    this.#closing.delete(client as Entry<G>);
    if (this.sockets === 0) this.#allClosed?.resolve();
  }

  /** Its outbox stopped sending: out of the fan-out, still a socket until it closes. */
  #stopped(client: Entry<G>): void {
    if (!this.#clients.delete(client)) return;
    this.#batchers.delete(client);
    this.#closing.add(client);
    this.#options.onSizeChange?.(this.#clients.size);
  }

  /** Sends one frame (a control frame, an error, a notice) to one client. */
  send(client: Client<G>, frame: string): void {
    client.outbox.send(frame);
  }

  /** Sends the same frame to every connected client (framed once for all). */
  broadcast(frame: string): void {
    const wire = new WireFrame(frame);
    for (const client of this.#clients) if (!client.quiet) client.outbox.send(wire);
  }

  /** Sends a control frame to every clu-ws v1 client (framed once for all). */
  broadcastV1(frame: string): void {
    const wire = new WireFrame(frame);
    for (const client of this.#clients) if (client.v1 && !client.quiet) client.outbox.send(wire);
  }

  /** Whether a client's subscription wants a reply: the one filter check. */
  #wants(client: Client<G>, meta: ReplyMeta): boolean {
    return !client.filter || client.filter.matches(meta, (id) => client.mine?.has(id) ?? false);
  }

  /**
   * Hands a reply to every client that wants it, in its dialect; no per-client
   * encoding: each dialect's frame is framed once, on its first socket, and
   * those bytes are written to every other.
   *
   * @returns the frames made, whose bytes others may reuse (the history does).
   */
  deliver(delivery: Delivery): DeliveredFrames {
    let shared = false;
    let plain: WireFrame | undefined;
    let v1: WireFrame | undefined;
    for (const client of this.#clients) {
      if (client.held || !this.#wants(client, delivery.meta)) continue;
      const outbox = client.outbox;
      if (!outbox.batching) {
        outbox.write(
          client.v1 ? (v1 ??= new WireFrame(delivery.v1)) : (plain ??= new WireFrame(delivery.plain)),
        );
      } else if (outbox.followsTurn) shared = true;
      else outbox.queue(delivery.v1);
    }
    // Unfiltered batching clients all get the same replies: one list, one join per flush.
    if (shared) this.#settings.turn.push(delivery.v1);
    if (this.#batchers.size > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setTimeout(() => this.#flush(), 0);
    }
    return { plain, v1 };
  }

  /**
   * Sends a client the replies from the history that its subscription wants,
   * in order; synchronous, so no live reply slips in between.
   *
   * @returns how many were sent.
   */
  replay(client: Client<G>, entries: Iterable<Replayed>): number {
    let count = 0;
    for (const entry of entries) {
      if (!this.#wants(client, entry.meta)) continue;
      client.outbox.send(entry.frame);
      count++;
    }
    return count;
  }

  /**
   * Takes a client out of the live fan-out (a resume replays to it from
   * elsewhere; or, `quiet`, out of the broadcasts too until its welcome);
   * what was batched for it goes out first.
   */
  hold(client: Client<G>, { quiet = false }: { quiet?: boolean } = {}): void {
    const entry = client as Entry<G>;
    // What was batched for it goes out now; while held it follows no turn (a replay's sends flush its
    // batch, and the shared turn holds replies delivered live meanwhile, which the replay sends too).
    entry.outbox.follow(false);
    entry.held = true;
    // Before its welcome (which must come first), a client gets no broadcast either.
    entry.quiet = quiet;
  }

  /**
   * Puts a held client back in the live fan-out: it gets the replies
   * delivered from now on, and none of the current turn's from before.
   */
  release(client: Client<G>): void {
    const entry = client as Entry<G>;
    if (!entry.held) return;
    entry.held = false;
    entry.quiet = false;
    entry.outbox.rejoin(entry.filter === undefined);
  }

  /**
   * Whether a client's socket has more than half its budget waiting, counting
   * `unflushed` bytes written this turn (a corked socket reports them only
   * once the turn ends): a replay to it should pause.
   */
  backlogged(client: Client<G>, unflushed = 0): boolean {
    return client.outbox.buffered + unflushed > this.#settings.bufferBytes / 2;
  }

  /** Changes a client's subscription; what was batched under the old one goes out first. */
  setFilter(client: Client<G>, filter: ReplyFilter | undefined): void {
    client.outbox.follow(filter === undefined);
    (client as Entry<G>).filter = filter;
  }

  /** Turns batched delivery on or off for a v1 client. */
  setBatch(client: Client<G>, on: boolean): void {
    client.outbox.setBatch(on);
    if (on && client.outbox.open) this.#batchers.add(client as Entry<G>);
    else this.#batchers.delete(client as Entry<G>);
  }

  #flush(): void {
    this.#flushScheduled = false;
    for (const client of this.#batchers) if (!client.held) client.outbox.endTurn();
    this.#settings.turn.clear();
  }

  /** Closes every client with the given code and reason; their catch-up timers stop. */
  closeAll(code: number, reason: string): void {
    for (const client of [...this.#clients]) client.outbox.close(code, reason);
  }
}
