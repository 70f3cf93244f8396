// web/client/commands.ts
var CommandError = class extends Error {
  /** The command's end. */
  result;
  /** Builds the error from a result. */
  constructor(result) {
    super(`${result.consumer} ${result.status === "timeout" ? "timed out" : "failed"}: ${result.error ?? JSON.stringify(result.replies.at(-1)?.body ?? {})}`);
    this.name = "CommandError";
    this.result = result;
  }
};
var PendingCommands = class {
  #commands = /* @__PURE__ */ new Map();
  /**
   * Tracks command `id` sent to `consumer`; the promise resolves when it ends
   * `done` and rejects with a {@linkcode CommandError} otherwise. It times out
   * 5 s after `timeoutSeconds`: the gateway times tracked commands out itself,
   * so this only catches a connection that never comes back.
   */
  start(id, options) {
    const { consumer, timeoutSeconds } = options;
    const { promise, resolve, reject } = Promise.withResolvers();
    this.#commands.set(id, {
      consumer,
      started: performance.now(),
      replies: [],
      resolve,
      reject,
      timer: setTimeout(() => this.settle(id, {
        status: "timeout",
        code: null,
        error: `no end within ${timeoutSeconds} s`
      }), timeoutSeconds * 1e3 + 5e3)
    });
    return promise;
  }
  /** Records `frame` if it answers a command in flight, and ends that command on `:`, `f` or `!`. */
  reply(frame) {
    const id = frame.headers.command_id;
    const pending = typeof id === "string" ? this.#commands.get(id) : void 0;
    if (!pending) return;
    pending.replies.push(frame);
    const code = String(frame.headers.message_code).toLowerCase();
    if (code === ":") this.settle(id, {
      status: "done",
      code: frame.headers.message_code
    });
    else if (code === "f" || code === "!") {
      this.settle(id, {
        status: "failed",
        code: frame.headers.message_code,
        error: errorOf(frame)
      });
    }
  }
  /** Ends command `id` (if still in flight) with `end`. */
  settle(id, end) {
    const pending = this.#commands.get(id);
    if (!pending) return;
    this.#commands.delete(id);
    clearTimeout(pending.timer);
    const result = {
      commandId: id,
      consumer: pending.consumer,
      status: end.status,
      code: end.code,
      ...end.error !== void 0 ? {
        error: end.error
      } : {},
      replies: pending.replies,
      elapsedMs: Math.round(performance.now() - pending.started)
    };
    if (end.status === "done") pending.resolve(result);
    else pending.reject(new CommandError(result));
  }
  /** Fails every command in flight with `error`. */
  failAll(error) {
    for (const id of [
      ...this.#commands.keys()
    ]) this.settle(id, {
      status: "failed",
      code: null,
      error
    });
  }
};
function errorOf(frame) {
  const error = frame.body?.error;
  return typeof error === "string" ? error : error === void 0 ? void 0 : JSON.stringify(error);
}
function newCommandId() {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from({
    length: 4
  }, () => Math.random().toString(16).slice(2, 10)).join("-");
}

// lib/protocol/clu_input.ts
var encoder = new TextEncoder();

// lib/protocol/v1.ts
var V1_SUBPROTOCOL = "clu-ws.v1";
var TOKEN_PROTOCOL_PREFIX = "token.";

// web/client/connection.ts
var Connection = class {
  #url;
  #options;
  #events;
  #socket;
  #closed = false;
  #delay;
  #retry;
  /** Prepares a connection to `url` (ws:// or wss://); {@linkcode Connection.open} starts it. */
  constructor(url, options) {
    this.#url = url;
    this.#options = options;
    this.#events = options.events;
    this.#delay = options.minDelayMs ?? 500;
  }
  /** The URL connected to. */
  get url() {
    return this.#url;
  }
  /** Whether a socket is open and can send. */
  get isOpen() {
    const socket = this.#socket;
    return socket !== void 0 && socket.readyState === WebSocket.OPEN;
  }
  /** Sends `text` on the open socket; false (and nothing sent) when none is open. */
  send(text) {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(text);
    return true;
  }
  /** Opens a socket now. */
  open() {
    this.#events.connecting();
    const token = this.#options.token;
    const protocols = [
      V1_SUBPROTOCOL,
      ...token ? [
        `${TOKEN_PROTOCOL_PREFIX}${token}`
      ] : []
    ];
    let socket;
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
    };
  }
  /** The gateway accepted this socket: the next loss starts again from the shortest delay. */
  resetBackoff() {
    this.#delay = this.#options.minDelayMs ?? 500;
  }
  /**
   * Closes for good: no more retries. Returns true when a socket is closing
   * (its loss is reported as usual), false when there was none to close.
   */
  close() {
    this.#closed = true;
    if (this.#retry !== void 0) clearTimeout(this.#retry);
    const socket = this.#socket;
    if (socket && socket.readyState <= WebSocket.OPEN) {
      socket.close(1e3, "client closed");
      return true;
    }
    return false;
  }
  #onClose(socket, event) {
    if (this.#socket !== socket) return;
    this.#socket = void 0;
    this.#events.lost(event);
    if (this.#closed || this.#options.reconnect === false) {
      this.#events.ended();
      return;
    }
    const maxDelay = this.#options.maxDelayMs ?? 3e4;
    const delay = this.#delay * (0.7 + Math.random() * 0.6);
    this.#delay = Math.min(maxDelay, this.#delay * 2);
    this.#retry = setTimeout(() => {
      this.#retry = void 0;
      if (!this.#closed) this.open();
    }, delay);
  }
};

// web/client/emitter.ts
var Emitter = class {
  #listeners;
  /** Makes an emitter for exactly the `events` named; `on` with any other name throws. */
  constructor(events) {
    this.#listeners = Object.fromEntries(events.map((event) => [
      event,
      /* @__PURE__ */ new Set()
    ]));
  }
  /** Adds `listener` to `event`; returns the function that removes it. */
  on(event, listener) {
    this.#listeners[event].add(listener);
    return () => this.#listeners[event].delete(listener);
  }
  /** Calls every listener of `event` with `value`, in the order they were added. */
  emit(event, value) {
    for (const listener of this.#listeners[event]) {
      try {
        listener(value);
      } catch (err) {
        console.error(`clu-ws client: a ${String(event)} listener threw`, err);
      }
    }
  }
};

// web/client/position.ts
var StreamPosition = class {
  #epoch;
  #lastSeq = 0;
  /** Replies held while a resume is answered, so the replay comes first. */
  #held;
  /** Command ends that arrived while replies were held. */
  #heldSettles = [];
  /** The gateway epoch the positions belong to; undefined before the first welcome. */
  get epoch() {
    return this.#epoch;
  }
  /** The position of the newest reply received. */
  get lastSeq() {
    return this.#lastSeq;
  }
  /** Starts over in `epoch` at position `seq` (the first welcome, a new epoch, or after a gap). */
  restart(epoch, seq) {
    this.#epoch = epoch;
    this.#lastSeq = seq;
  }
  /**
   * Takes the position of `reply`; false when it was seen already (replayed
   * on resume and live: anything at or before the last position). Replies
   * without a position (made by the gateway for this client) always pass.
   */
  advance(reply) {
    if (reply.seq === void 0) return true;
    if (reply.seq <= this.#lastSeq) return false;
    this.#lastSeq = reply.seq;
    return true;
  }
  /** Starts holding live replies and command ends until {@linkcode StreamPosition.release}. */
  hold() {
    this.#held = [];
  }
  /** Holds `reply` if holding and it has a position; true when held. */
  holdReply(reply) {
    if (!this.#held || reply.seq === void 0) return false;
    this.#held.push(reply);
    return true;
  }
  /** Runs `settle` now, or after the held replies when holding. */
  holdSettle(settle) {
    if (this.#held) this.#heldSettles.push(settle);
    else settle();
  }
  /** Stops holding: `deliver` gets the held replies in position order, then the held command ends run. */
  release(deliver) {
    const held = this.#held ?? [];
    this.#held = void 0;
    held.sort((a, b) => a.seq - b.seq);
    for (const frame of held) deliver(frame);
    const settles = this.#heldSettles;
    this.#heldSettles = [];
    for (const settle of settles) settle();
  }
  /** Stops holding and drops the held replies (the welcome's set-up failed). */
  stopHolding() {
    this.#held = void 0;
  }
  /** Drops everything held, command ends too (the socket closed). */
  dropHeld() {
    this.#held = void 0;
    this.#heldSettles = [];
  }
};

// web/client/requests.ts
var Requests = class {
  #pending = /* @__PURE__ */ new Map();
  #nextId = 1;
  /** Sends `request` on `sink` with a fresh id; resolves with the answer, rejects when not connected. */
  send(request, sink) {
    if (!sink.isOpen) return Promise.reject(new Error("not connected"));
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers();
    this.#pending.set(id, {
      resolve,
      reject
    });
    const { "clu-ws": operation, ...fields } = request;
    sink.send(JSON.stringify({
      "clu-ws": operation,
      id,
      ...fields
    }));
    return promise;
  }
  /** Settles the request `frame` answers (an `error` frame rejects it); ignores frames that answer none. */
  answer(frame) {
    const { id, error } = frame;
    if (typeof id !== "number" || !this.#pending.has(id)) return;
    const request = this.#pending.get(id);
    this.#pending.delete(id);
    if (frame["clu-ws"] === "error") request.reject(new Error(String(error)));
    else request.resolve(frame);
  }
  /** Rejects every request awaiting an answer with `message`. */
  failAll(message) {
    for (const request of this.#pending.values()) request.reject(new Error(message));
    this.#pending.clear();
  }
};

// web/client/watchers.ts
var Watchers = class {
  #watchers = /* @__PURE__ */ new Set();
  /** Adds a watcher of `actor`'s `keyword`; it has seen nothing yet. */
  add(actor, keyword, callback) {
    const watcher = {
      actor,
      keyword,
      callback,
      seq: 0
    };
    this.#watchers.add(watcher);
    return watcher;
  }
  /** Stops `watcher`; true if it was watching. */
  delete(watcher) {
    return this.#watchers.delete(watcher);
  }
  /** Whether `watcher` is still watching. */
  has(watcher) {
    return this.#watchers.has(watcher);
  }
  /** The actors watched, each once. */
  actors() {
    return [
      ...new Set([
        ...this.#watchers
      ].map((w) => w.actor))
    ];
  }
  /** Forgets every position (positions restart after a gap or a new epoch). */
  forgetPositions() {
    for (const watcher of this.#watchers) watcher.seq = 0;
  }
  /**
   * Gives each watcher of `actor` whose keyword is in `body` its value, unless
   * it already has one from position `seq` or later; `frame` is the live reply,
   * absent when the values come from the gateway's state.
   */
  feed(actor, body, options) {
    const { seq, frame } = options;
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
  /** Feeds every actor of a state snapshot, at the snapshot's position. */
  feedState(snapshot) {
    for (const [actor, record] of Object.entries(snapshot.actors)) {
      const values = {};
      for (const [keyword, kw] of Object.entries(record.keywords)) values[keyword] = kw.value;
      this.feed(actor, values, {
        seq: snapshot.seq
      });
    }
  }
};

// web/client.ts
var CluClient = class _CluClient {
  #options;
  #events = new Emitter([
    "reply",
    "connection",
    "broker",
    "gap",
    "welcome"
  ]);
  #commands = new PendingCommands();
  #requests = new Requests();
  #watchers = new Watchers();
  #position = new StreamPosition();
  #connection;
  #welcome;
  #subscription;
  #state = "connecting";
  #opened;
  /** Starts connecting to `url` (ws:// or wss://); see {@linkcode CluClient.connect}. */
  constructor(url, options = {}) {
    this.#options = options;
    this.#subscription = options.subscribe;
    this.#opened = Promise.withResolvers();
    this.#opened.promise.catch(() => {
    });
    this.#connection = new Connection(url, {
      ...options,
      events: {
        connecting: () => this.#setState("connecting"),
        failed: (error) => this.#opened.reject(error),
        message: (text) => this.#onMessage(text),
        lost: (event) => this.#onLost(event),
        ended: () => this.#commands.failAll("the connection closed")
      }
    });
    this.#connection.open();
  }
  /** Connects and resolves once the gateway has welcomed this client. */
  static async connect(url, options = {}) {
    const client = new _CluClient(url, options);
    try {
      await client.#opened.promise;
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }
  /** The gateway's welcome on the current connection, if connected. */
  get welcome() {
    return this.#welcome;
  }
  /** The connection's state. */
  get state() {
    return this.#state;
  }
  /** The position of the newest reply received. */
  get lastSeq() {
    return this.#position.lastSeq;
  }
  /** Listens to `reply`, `connection`, `broker`, `gap` or `welcome`; returns the function that stops it. */
  on(event, listener) {
    return this.#events.on(event, listener);
  }
  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#events.emit("connection", state);
  }
  #onLost(event) {
    this.#welcome = void 0;
    this.#position.dropHeld();
    this.#requests.failAll("connection lost");
    this.#setState("closed");
    this.#opened.reject(new Error(`connection closed before ${this.#connection.url} welcomed this client (${event.code}${event.reason ? ` ${event.reason}` : ""}): is it a clu-ws gateway, and is the token right?`));
  }
  #onMessage(text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      return;
    }
    for (const frame of Array.isArray(data) ? data : [
      data
    ]) this.#onParsed(frame);
  }
  #onParsed(frame) {
    if ("clu-ws" in frame) {
      this.#onControl(frame);
      return;
    }
    if (this.#position.holdReply(frame)) return;
    this.#deliver(frame);
  }
  /** A reply in order: dropped if seen already, else it feeds its command, the watchers and listeners. */
  #deliver(reply) {
    if (!this.#position.advance(reply)) return;
    this.#commands.reply(reply);
    if (reply.seq !== void 0 && reply.headers.sender) {
      this.#watchers.feed(reply.headers.sender, reply.body, {
        seq: reply.seq,
        frame: reply
      });
    }
    this.#events.emit("reply", reply);
  }
  #onControl(frame) {
    switch (frame["clu-ws"]) {
      case "welcome":
        this.#onWelcome(frame);
        return;
      case "broker":
        this.#events.emit("broker", String(frame.state));
        return;
      case "done":
        this.#position.holdSettle(() => this.#commands.settle(String(frame.command_id), {
          status: frame.status,
          code: frame.code ?? null,
          error: frame.error
        }));
        return;
      case "accepted":
      case "published":
        return;
    }
    this.#requests.answer(frame);
  }
  async #onWelcome(welcome) {
    this.#welcome = welcome;
    this.#connection.resetBackoff();
    this.#setState("open");
    this.#events.emit("broker", welcome.broker);
    const position = this.#position;
    try {
      if (position.epoch === welcome.epoch) position.hold();
      if (this.#options.batch) await this.#request({
        "clu-ws": "options",
        batch: true
      });
      if (position.epoch === void 0) {
        position.restart(welcome.epoch, welcome.seq);
        await this.#resubscribe();
        await this.#refreshWatchers();
      } else if (position.epoch === welcome.epoch) {
        await this.#resubscribe();
        const answer = await this.#request({
          "clu-ws": "resume",
          epoch: position.epoch,
          seq: position.lastSeq
        });
        position.release((reply) => this.#deliver(reply));
        if (answer["clu-ws"] === "gap") await this.#afterGap(String(answer.reason), welcome);
      } else {
        const previous = position.epoch;
        position.restart(welcome.epoch, welcome.seq);
        await this.#resubscribe();
        await this.#afterGap(`the gateway restarted (epoch ${previous} \u2192 ${welcome.epoch})`, welcome);
      }
    } catch {
      position.stopHolding();
      return;
    }
    this.#events.emit("welcome", welcome);
    this.#opened.resolve(welcome);
  }
  async #resubscribe() {
    if (this.#subscription) await this.#request({
      "clu-ws": "subscribe",
      ...this.#subscription
    });
  }
  async #afterGap(reason, welcome) {
    this.#position.restart(welcome.epoch, welcome.seq);
    this.#watchers.forgetPositions();
    this.#events.emit("gap", {
      reason,
      epoch: welcome.epoch
    });
    await this.#refreshWatchers();
  }
  async #refreshWatchers() {
    const actors = this.#watchers.actors();
    if (actors.length === 0) return;
    this.#watchers.feedState(await this.actorState(actors));
  }
  #request(request) {
    return this.#requests.send(request, this.#connection);
  }
  /** Changes what this client receives (also after reconnects). */
  async subscribe(subscription = {}) {
    this.#subscription = subscription;
    await this.#request({
      "clu-ws": "subscribe",
      ...subscription
    });
  }
  /** The actors' latest keywords (all actors, or those matching the names or globs given). */
  async actorState(actors) {
    const answer = await this.#request({
      "clu-ws": "state",
      ...actors ? {
        actors
      } : {}
    });
    return answer;
  }
  /**
   * Runs `commandString` on `actor`; resolves with its replies when it ends
   * with `:`, rejects with a {@linkcode CommandError} on `f`, `!`, a refusal
   * or the timeout (seconds).
   */
  command(actor, commandString, { timeout, commandId } = {}) {
    const seconds = timeout ?? this.#options.commandTimeout ?? 30;
    const id = commandId ?? newCommandId();
    const promise = this.#commands.start(id, {
      consumer: actor,
      timeoutSeconds: seconds
    });
    const sent = this.#connection.send(JSON.stringify({
      consumer: actor,
      command_string: commandString,
      command_id: id,
      ack: true,
      track: true,
      timeout: seconds
    }));
    if (!sent) {
      this.#commands.settle(id, {
        status: "failed",
        code: null,
        error: "not connected to the gateway"
      });
    }
    return promise;
  }
  /**
   * Calls `callback` with the latest value of `actor`'s `keyword`: first from
   * the gateway's state, then on every reply that carries it. Returns the
   * function that stops watching.
   */
  watch(actor, keyword, callback) {
    const watcher = this.#watchers.add(actor, keyword, callback);
    if (this.#welcome) {
      this.actorState([
        actor
      ]).then((snapshot) => {
        const kw = snapshot.actors[actor]?.keywords[keyword];
        if (kw && this.#watchers.has(watcher)) {
          this.#watchers.feed(actor, {
            [keyword]: kw.value
          }, {
            seq: snapshot.seq
          });
        }
      }).catch(() => {
      });
    }
    return () => this.#watchers.delete(watcher);
  }
  /** Closes for good: no reconnect; commands still pending fail. */
  close() {
    const closing = this.#connection.close();
    this.#commands.failAll("the client was closed");
    if (!closing) this.#setState("closed");
  }
};
export {
  CluClient,
  CommandError
};
