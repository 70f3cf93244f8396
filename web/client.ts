/**
 * The clu-ws client: one module for browsers (served by the gateway as
 * `/client.js`) and Deno. It speaks clu-ws v1 (docs/protocol.md): it
 * reconnects with backoff and resumes from the last position it saw, so
 * nothing is missed or seen twice; it runs commands and resolves when they end;
 * and it feeds keyword watchers from the gateway's state and then from live
 * replies.
 *
 * ```js
 * import { CluClient } from "/client.js";
 * const client = await CluClient.connect("wss://gateway:9876/", { token: "…" });
 * const status = await client.command("lvmecp", "status");   // resolves on ":", rejects on "f"
 * client.watch("lvmecp", "dome_status", (value) => console.log("dome", value));
 * client.on("reply", (frame) => console.log(frame.headers.sender, frame.body));
 * ```
 *
 * @module
 */

import {
  type ClientControlFrame,
  type CommandStatus,
  type ServerControlFrame,
  type StateFrame,
  type Subscription,
  TOKEN_PROTOCOL_PREFIX,
  V1_SUBPROTOCOL,
  type Welcome,
} from "../lib/protocol/v1.ts";

export type { Subscription, Welcome };

/** A CLU reply frame (with `seq` in v1; gateway-made `e`/`f` frames have none). */
export interface Frame {
  /** Position in the gateway's epoch; absent on frames the gateway made for this client. */
  seq?: number;
  /** AMQP headers: message_code, sender, command_id, commander_id, internal, … */
  headers: {
    message_code: string;
    sender?: string;
    command_id?: string | number | null;
    commander_id?: string | null;
    internal?: boolean;
    [key: string]: unknown;
  };
  /** The exchange. */
  exchange: string;
  /** The AMQP message id, or null. */
  message_id: string | null;
  /** The routing key. */
  routing_key: string;
  /** ISO 8601 with offset, or null. */
  timestamp: string | null;
  /** The reply's body. */
  body: Record<string, unknown>;
}

/** How a command ended. */
export interface CommandResult {
  /** The command's id. */
  commandId: string;
  /** The actor. */
  consumer: string;
  /** `done`, `failed` or `timeout`. */
  status: CommandStatus;
  /** The message code that ended it, or null. */
  code: string | null;
  /** Why it failed, when known. */
  error?: string;
  /** Every reply to it, in order. */
  replies: Frame[];
  /** Milliseconds from sending to the end. */
  elapsedMs: number;
}

/** A command that failed or timed out; `result` has its replies. */
export class CommandError extends Error {
  /** The command's end. */
  readonly result: CommandResult;
  /** Builds the error from a result. */
  constructor(result: CommandResult) {
    super(
      `${result.consumer} ${result.status === "timeout" ? "timed out" : "failed"}: ${
        result.error ?? JSON.stringify(result.replies.at(-1)?.body ?? {})
      }`,
    );
    this.name = "CommandError";
    this.result = result;
  }
}

/** Connection states reported to `connection` listeners. */
export type ConnectionState = "connecting" | "open" | "closed";

/** What a `gap` listener is told: replies were missed and cannot be replayed. */
export interface GapInfo {
  /** Why. */
  reason: string;
  /** The gateway's epoch now. */
  epoch: string;
}

/** Options for {@linkcode CluClient}. */
export interface ClientOptions {
  /** Access token, when the gateway uses them. */
  token?: string;
  /** Reconnect after a loss (default true). */
  reconnect?: boolean;
  /** First reconnect delay (default 500 ms); doubles up to `maxDelayMs`. */
  minDelayMs?: number;
  /** Longest reconnect delay (default 30 s). */
  maxDelayMs?: number;
  /** The initial subscription. */
  subscribe?: Subscription;
  /** Default command timeout in seconds (default 30). */
  commandTimeout?: number;
  /** Ask for batched delivery (arrays of replies; fewer messages at high rates). */
  batch?: boolean;
}

/** The events of {@linkcode CluClient.on} and what each listener is given. */
export interface Events {
  /** A CLU reply (live or replayed), once. */
  reply: Frame;
  /** The connection's state changed. */
  connection: ConnectionState;
  /** The gateway's RabbitMQ link state. */
  broker: string;
  /** Replies were missed and cannot be replayed. */
  gap: GapInfo;
  /** The gateway welcomed this client (after each reconnect). */
  welcome: Welcome;
}

interface PendingCommand {
  consumer: string;
  started: number;
  replies: Frame[];
  resolve: (result: CommandResult) => void;
  reject: (error: CommandError) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface Watcher {
  actor: string;
  keyword: string;
  callback: (value: unknown, frame?: Frame) => void;
  /** Position of the last value given, so a stale snapshot does not overwrite a newer reply. */
  seq: number;
}

/** A clu-ws v1 connection that survives reconnects. */
export class CluClient {
  readonly #url: string;
  readonly #options: ClientOptions;
  readonly #listeners: { [K in keyof Events]: Set<(value: Events[K]) => void> } = {
    reply: new Set(),
    connection: new Set(),
    broker: new Set(),
    gap: new Set(),
    welcome: new Set(),
  };
  readonly #commands = new Map<string, PendingCommand>();
  readonly #requests = new Map<
    number,
    { resolve: (frame: ServerControlFrame) => void; reject: (e: Error) => void }
  >();
  readonly #watchers = new Set<Watcher>();
  #socket: WebSocket | undefined;
  #welcome: Welcome | undefined;
  #epoch: string | undefined;
  #lastSeq = 0;
  #nextId = 1;
  #subscription: Subscription | undefined;
  #closed = false;
  #delay: number;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #state: ConnectionState = "connecting";
  #opened: PromiseWithResolvers<Welcome>;
  /** Replies held while a resume is answered, so the replay comes first. */
  #held: Frame[] | undefined;
  /** Command ends that arrived while replies were held. */
  #heldSettles: Array<() => void> = [];

  /** Starts connecting to `url` (ws:// or wss://); see {@linkcode CluClient.connect}. */
  constructor(url: string, options: ClientOptions = {}) {
    this.#url = url;
    this.#options = options;
    this.#subscription = options.subscribe;
    this.#delay = options.minDelayMs ?? 500;
    this.#opened = Promise.withResolvers<Welcome>();
    this.#opened.promise.catch(() => {});
    this.#open();
  }

  /** Connects and resolves once the gateway has welcomed this client. */
  static async connect(url: string, options: ClientOptions = {}): Promise<CluClient> {
    const client = new CluClient(url, options);
    try {
      await client.#opened.promise;
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** The gateway's welcome on the current connection, if connected. */
  get welcome(): Welcome | undefined {
    return this.#welcome;
  }

  /** The connection's state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The position of the newest reply received. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Listens to `reply`, `connection`, `broker`, `gap` or `welcome`; returns the function that stops it. */
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): () => void {
    this.#listeners[event].add(listener);
    return () => this.#listeners[event].delete(listener);
  }

  #emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const listener of this.#listeners[event]) {
      try {
        listener(value);
      } catch (err) {
        console.error(`clu-ws client: a ${event} listener threw`, err);
      }
    }
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit("connection", state);
  }

  #open(): void {
    this.#setState("connecting");
    const token = this.#options.token;
    const protocols = [V1_SUBPROTOCOL, ...(token ? [`${TOKEN_PROTOCOL_PREFIX}${token}`] : [])];
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.#url, protocols);
    } catch (err) {
      this.#opened.reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.#socket = socket;
    socket.onmessage = (event) => this.#onFrame(String(event.data));
    socket.onclose = (event) => this.#onClose(socket, event);
    socket.onerror = () => {
      // A close event follows.
    };
  }

  #onClose(socket: WebSocket, event: CloseEvent): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#welcome = undefined;
    this.#held = undefined;
    this.#heldSettles = [];
    for (const request of this.#requests.values()) request.reject(new Error("connection lost"));
    this.#requests.clear();
    this.#setState("closed");
    // connect() settles on the first attempt; a client made with `new` keeps trying.
    this.#opened.reject(
      new Error(
        `connection closed before ${this.#url} welcomed this client (${event.code}${
          event.reason ? ` ${event.reason}` : ""
        }): is it a clu-ws gateway, and is the token right?`,
      ),
    );
    if (this.#closed || this.#options.reconnect === false) {
      this.#failAll("the connection closed");
      return;
    }
    const maxDelay = this.#options.maxDelayMs ?? 30_000;
    const delay = this.#delay * (0.7 + Math.random() * 0.6);
    this.#delay = Math.min(maxDelay, this.#delay * 2);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (!this.#closed) this.#open();
    }, delay);
  }

  #onFrame(text: string): void {
    let data: Frame | ServerControlFrame | Frame[];
    try {
      data = JSON.parse(text);
    } catch {
      return;
    }
    for (const frame of Array.isArray(data) ? data : [data]) this.#onParsed(frame);
  }

  #onParsed(frame: Frame | ServerControlFrame): void {
    if ("clu-ws" in frame) {
      this.#onControl(frame as ServerControlFrame);
      return;
    }
    if (this.#held && (frame as Frame).seq !== undefined) {
      this.#held.push(frame as Frame);
      return;
    }
    this.#onFrameObject(frame as Frame);
  }

  #onFrameObject(reply: Frame): void {
    if (reply.seq !== undefined) {
      // Replayed on resume and live: anything at or before the last position was seen already.
      if (reply.seq <= this.#lastSeq) return;
      this.#lastSeq = reply.seq;
    }
    this.#onReply(reply);
  }

  #onReply(frame: Frame): void {
    const id = frame.headers.command_id;
    const pending = typeof id === "string" ? this.#commands.get(id) : undefined;
    if (pending) {
      pending.replies.push(frame);
      const code = String(frame.headers.message_code).toLowerCase();
      if (code === ":") this.#settle(id as string, "done", frame.headers.message_code);
      else if (code === "f" || code === "!") {
        this.#settle(id as string, "failed", frame.headers.message_code, errorOf(frame));
      }
    }
    if (frame.seq !== undefined && frame.headers.sender) {
      this.#feedWatchers(frame.headers.sender, frame.body, frame);
    }
    this.#emit("reply", frame);
  }

  #feedWatchers(actor: string, body: Record<string, unknown>, frame?: Frame, seq = frame?.seq ?? 0): void {
    if (body === null || typeof body !== "object") return;
    for (const watcher of this.#watchers) {
      if (watcher.actor !== actor || !Object.hasOwn(body, watcher.keyword) || seq <= watcher.seq) continue;
      watcher.seq = seq;
      try {
        watcher.callback(body[watcher.keyword], frame);
      } catch (err) {
        console.error("clu-ws client: a watch callback threw", err);
      }
    }
  }

  #onControl(frame: ServerControlFrame): void {
    const kind = frame["clu-ws"];
    switch (kind) {
      case "welcome":
        this.#onWelcome(frame);
        return;
      case "broker":
        this.#emit("broker", String(frame.state));
        return;
      case "done": {
        const settle = () =>
          this.#settle(String(frame.command_id), frame.status, frame.code ?? null, frame.error);
        // After a resume, the held replies of that command come first.
        if (this.#held) this.#heldSettles.push(settle);
        else settle();
        return;
      }
      case "accepted":
      case "published":
        return;
    }
    if (typeof frame.id === "number" && this.#requests.has(frame.id)) {
      const request = this.#requests.get(frame.id)!;
      this.#requests.delete(frame.id);
      if (frame["clu-ws"] === "error") request.reject(new Error(String(frame.error)));
      else request.resolve(frame);
    }
  }

  async #onWelcome(welcome: Welcome): Promise<void> {
    this.#welcome = welcome;
    this.#delay = this.#options.minDelayMs ?? 500;
    this.#setState("open");
    this.#emit("broker", welcome.broker);
    try {
      // Live replies may overtake the replay of a resume: hold them until it is answered.
      if (this.#epoch === welcome.epoch) this.#held = [];
      if (this.#options.batch) await this.#request({ "clu-ws": "options", batch: true });
      if (this.#epoch === undefined) {
        this.#epoch = welcome.epoch;
        this.#lastSeq = welcome.seq;
        if (this.#subscription) await this.#request({ "clu-ws": "subscribe", ...this.#subscription });
        await this.#refreshWatchers();
      } else if (this.#epoch === welcome.epoch) {
        if (this.#subscription) await this.#request({ "clu-ws": "subscribe", ...this.#subscription });
        const answer = await this.#request({ "clu-ws": "resume", epoch: this.#epoch, seq: this.#lastSeq });
        this.#releaseHeld();
        if (answer["clu-ws"] === "gap") await this.#afterGap(String(answer.reason), welcome);
      } else {
        // A new epoch: positions restart, so forget the old ones before anything else arrives.
        const previous = this.#epoch;
        this.#epoch = welcome.epoch;
        this.#lastSeq = welcome.seq;
        if (this.#subscription) await this.#request({ "clu-ws": "subscribe", ...this.#subscription });
        await this.#afterGap(`the gateway restarted (epoch ${previous} → ${welcome.epoch})`, welcome);
      }
    } catch {
      // The connection dropped while setting up; the next welcome starts over.
      this.#held = undefined;
      return;
    }
    this.#emit("welcome", welcome);
    this.#opened.resolve(welcome);
  }

  #releaseHeld(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    held.sort((a, b) => a.seq! - b.seq!);
    for (const frame of held) this.#onFrameObject(frame);
    const settles = this.#heldSettles;
    this.#heldSettles = [];
    for (const settle of settles) settle();
  }

  async #afterGap(reason: string, welcome: Welcome): Promise<void> {
    this.#epoch = welcome.epoch;
    this.#lastSeq = welcome.seq;
    for (const watcher of this.#watchers) watcher.seq = 0;
    this.#emit("gap", { reason, epoch: welcome.epoch });
    await this.#refreshWatchers();
  }

  async #refreshWatchers(): Promise<void> {
    const actors = [...new Set([...this.#watchers].map((w) => w.actor))];
    if (actors.length === 0) return;
    const snapshot = await this.actorState(actors);
    for (const [actor, record] of Object.entries(snapshot.actors)) {
      const values: Record<string, unknown> = {};
      for (const [keyword, kw] of Object.entries(record.keywords)) values[keyword] = kw.value;
      this.#feedWatchers(actor, values, undefined, snapshot.seq);
    }
  }

  #request(request: ClientControlFrame): Promise<ServerControlFrame> {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected"));
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<ServerControlFrame>();
    this.#requests.set(id, { resolve, reject });
    const { "clu-ws": operation, ...fields } = request;
    socket.send(JSON.stringify({ "clu-ws": operation, id, ...fields }));
    return promise;
  }

  /** Changes what this client receives (also after reconnects). */
  async subscribe(subscription: Subscription = {}): Promise<void> {
    this.#subscription = subscription;
    await this.#request({ "clu-ws": "subscribe", ...subscription });
  }

  /** The actors' latest keywords (all actors, or those matching the names or globs given). */
  async actorState(actors?: string[]): Promise<Pick<StateFrame, "seq" | "actors">> {
    const answer = await this.#request({ "clu-ws": "state", ...(actors ? { actors } : {}) });
    return answer as StateFrame;
  }

  /**
   * Runs `commandString` on `actor`; resolves with its replies when it ends
   * with `:`, rejects with a {@linkcode CommandError} on `f`, `!`, a refusal
   * or the timeout (seconds).
   */
  command(
    actor: string,
    commandString: string,
    { timeout, commandId }: { timeout?: number; commandId?: string } = {},
  ): Promise<CommandResult> {
    const seconds = timeout ?? this.#options.commandTimeout ?? 30;
    const id = commandId ?? newId();
    const { promise, resolve, reject } = Promise.withResolvers<CommandResult>();
    const socket = this.#socket;
    const pending: PendingCommand = {
      consumer: actor,
      started: performance.now(),
      replies: [],
      resolve,
      reject,
      // The gateway times tracked commands out; this catches a connection that never comes back.
      timer: setTimeout(
        () => this.#settle(id, "timeout", null, `no end within ${seconds} s`),
        seconds * 1000 + 5000,
      ),
    };
    this.#commands.set(id, pending);
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      this.#settle(id, "failed", null, "not connected to the gateway");
      return promise;
    }
    socket.send(JSON.stringify({
      consumer: actor,
      command_string: commandString,
      command_id: id,
      ack: true,
      track: true,
      timeout: seconds,
    }));
    return promise;
  }

  #settle(id: string, status: CommandStatus, code: string | null, error?: string): void {
    const pending = this.#commands.get(id);
    if (!pending) return;
    this.#commands.delete(id);
    clearTimeout(pending.timer);
    const result: CommandResult = {
      commandId: id,
      consumer: pending.consumer,
      status,
      code,
      ...(error !== undefined ? { error } : {}),
      replies: pending.replies,
      elapsedMs: Math.round(performance.now() - pending.started),
    };
    if (status === "done") pending.resolve(result);
    else pending.reject(new CommandError(result));
  }

  #failAll(error: string): void {
    for (const id of [...this.#commands.keys()]) this.#settle(id, "failed", null, error);
  }

  /**
   * Calls `callback` with the latest value of `actor`'s `keyword`: first from
   * the gateway's state, then on every reply that carries it. Returns the
   * function that stops watching.
   */
  watch(actor: string, keyword: string, callback: (value: unknown, frame?: Frame) => void): () => void {
    const watcher: Watcher = { actor, keyword, callback, seq: 0 };
    this.#watchers.add(watcher);
    if (this.#welcome) {
      this.actorState([actor]).then((snapshot) => {
        const kw = snapshot.actors[actor]?.keywords[keyword];
        if (kw && this.#watchers.has(watcher)) {
          this.#feedWatchers(actor, { [keyword]: kw.value }, undefined, snapshot.seq);
        }
      }).catch(() => {/* refreshed on the next welcome */});
    }
    return () => this.#watchers.delete(watcher);
  }

  /** Closes for good: no reconnect; commands still pending fail. */
  close(): void {
    this.#closed = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#failAll("the client was closed");
    const socket = this.#socket;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, "client closed");
    else this.#setState("closed");
  }
}

function errorOf(frame: Frame): string | undefined {
  const error = frame.body?.error;
  return typeof error === "string" ? error : error === undefined ? undefined : JSON.stringify(error);
}

/** A command id: a UUID where the platform offers one (secure contexts), else random hex. */
function newId(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from({ length: 4 }, () => Math.random().toString(16).slice(2, 10)).join("-");
}
