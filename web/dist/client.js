// lib/protocol/clu_input.ts
var encoder = new TextEncoder();

// lib/protocol/glob.ts
var encoder2 = new TextEncoder();

// lib/protocol/v1.ts
var V1_SUBPROTOCOL = "clu-ws.v1";
var TOKEN_PROTOCOL_PREFIX = "token.";

// web/client.ts
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
var CluClient = class _CluClient {
  #url;
  #options;
  #listeners = {
    reply: /* @__PURE__ */ new Set(),
    connection: /* @__PURE__ */ new Set(),
    broker: /* @__PURE__ */ new Set(),
    gap: /* @__PURE__ */ new Set(),
    welcome: /* @__PURE__ */ new Set()
  };
  #commands = /* @__PURE__ */ new Map();
  #requests = /* @__PURE__ */ new Map();
  #watchers = /* @__PURE__ */ new Set();
  #socket;
  #welcome;
  #epoch;
  #lastSeq = 0;
  #nextId = 1;
  #subscription;
  #closed = false;
  #delay;
  #retry;
  #state = "connecting";
  #opened;
  /** Replies held while a resume is answered, so the replay comes first. */
  #held;
  /** Command ends that arrived while replies were held. */
  #heldSettles = [];
  /** Starts connecting to `url` (ws:// or wss://); see {@linkcode CluClient.connect}. */
  constructor(url, options = {}) {
    this.#url = url;
    this.#options = options;
    this.#subscription = options.subscribe;
    this.#delay = options.minDelayMs ?? 500;
    this.#opened = Promise.withResolvers();
    this.#opened.promise.catch(() => {
    });
    this.#open();
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
    return this.#lastSeq;
  }
  /** Listens to `reply`, `connection`, `broker`, `gap` or `welcome`; returns the function that stops it. */
  on(event, listener) {
    this.#listeners[event].add(listener);
    return () => this.#listeners[event].delete(listener);
  }
  #emit(event, value) {
    for (const listener of this.#listeners[event]) {
      try {
        listener(value);
      } catch (err) {
        console.error(`clu-ws client: a ${event} listener threw`, err);
      }
    }
  }
  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit("connection", state);
  }
  #open() {
    this.#setState("connecting");
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
      this.#opened.reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.#socket = socket;
    socket.onmessage = (event) => this.#onFrame(String(event.data));
    socket.onclose = (event) => this.#onClose(socket, event);
    socket.onerror = () => {
    };
  }
  #onClose(socket, event) {
    if (this.#socket !== socket) return;
    this.#socket = void 0;
    this.#welcome = void 0;
    this.#held = void 0;
    this.#heldSettles = [];
    for (const request of this.#requests.values()) request.reject(new Error("connection lost"));
    this.#requests.clear();
    this.#setState("closed");
    this.#opened.reject(new Error(`connection closed before ${this.#url} welcomed this client (${event.code}${event.reason ? ` ${event.reason}` : ""}): is it a clu-ws gateway, and is the token right?`));
    if (this.#closed || this.#options.reconnect === false) {
      this.#failAll("the connection closed");
      return;
    }
    const maxDelay = this.#options.maxDelayMs ?? 3e4;
    const delay = this.#delay * (0.7 + Math.random() * 0.6);
    this.#delay = Math.min(maxDelay, this.#delay * 2);
    this.#retry = setTimeout(() => {
      this.#retry = void 0;
      if (!this.#closed) this.#open();
    }, delay);
  }
  #onFrame(text) {
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
    if (this.#held && frame.seq !== void 0) {
      this.#held.push(frame);
      return;
    }
    this.#onFrameObject(frame);
  }
  #onFrameObject(reply) {
    if (reply.seq !== void 0) {
      if (reply.seq <= this.#lastSeq) return;
      this.#lastSeq = reply.seq;
    }
    this.#onReply(reply);
  }
  #onReply(frame) {
    const id = frame.headers.command_id;
    const pending = typeof id === "string" ? this.#commands.get(id) : void 0;
    if (pending) {
      pending.replies.push(frame);
      const code = String(frame.headers.message_code).toLowerCase();
      if (code === ":") this.#settle(id, "done", frame.headers.message_code);
      else if (code === "f" || code === "!") {
        this.#settle(id, "failed", frame.headers.message_code, errorOf(frame));
      }
    }
    if (frame.seq !== void 0 && frame.headers.sender) {
      this.#feedWatchers(frame.headers.sender, frame.body, frame);
    }
    this.#emit("reply", frame);
  }
  #feedWatchers(actor, body, frame, seq = frame?.seq ?? 0) {
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
  #onControl(frame) {
    const kind = frame["clu-ws"];
    switch (kind) {
      case "welcome":
        this.#onWelcome(frame);
        return;
      case "broker":
        this.#emit("broker", String(frame.state));
        return;
      case "done": {
        const settle = () => this.#settle(String(frame.command_id), frame.status, frame.code ?? null, frame.error);
        if (this.#held) this.#heldSettles.push(settle);
        else settle();
        return;
      }
      case "accepted":
      case "published":
        return;
    }
    if (typeof frame.id === "number" && this.#requests.has(frame.id)) {
      const request = this.#requests.get(frame.id);
      this.#requests.delete(frame.id);
      if (frame["clu-ws"] === "error") request.reject(new Error(String(frame.error)));
      else request.resolve(frame);
    }
  }
  async #onWelcome(welcome) {
    this.#welcome = welcome;
    this.#delay = this.#options.minDelayMs ?? 500;
    this.#setState("open");
    this.#emit("broker", welcome.broker);
    try {
      if (this.#epoch === welcome.epoch) this.#held = [];
      if (this.#options.batch) await this.#request({
        "clu-ws": "options",
        batch: true
      });
      if (this.#epoch === void 0) {
        this.#epoch = welcome.epoch;
        this.#lastSeq = welcome.seq;
        if (this.#subscription) await this.#request({
          "clu-ws": "subscribe",
          ...this.#subscription
        });
        await this.#refreshWatchers();
      } else if (this.#epoch === welcome.epoch) {
        if (this.#subscription) await this.#request({
          "clu-ws": "subscribe",
          ...this.#subscription
        });
        const answer = await this.#request({
          "clu-ws": "resume",
          epoch: this.#epoch,
          seq: this.#lastSeq
        });
        this.#releaseHeld();
        if (answer["clu-ws"] === "gap") await this.#afterGap(String(answer.reason), welcome);
      } else {
        const previous = this.#epoch;
        this.#epoch = welcome.epoch;
        this.#lastSeq = welcome.seq;
        if (this.#subscription) await this.#request({
          "clu-ws": "subscribe",
          ...this.#subscription
        });
        await this.#afterGap(`the gateway restarted (epoch ${previous} \u2192 ${welcome.epoch})`, welcome);
      }
    } catch {
      this.#held = void 0;
      return;
    }
    this.#emit("welcome", welcome);
    this.#opened.resolve(welcome);
  }
  #releaseHeld() {
    const held = this.#held ?? [];
    this.#held = void 0;
    held.sort((a, b) => a.seq - b.seq);
    for (const frame of held) this.#onFrameObject(frame);
    const settles = this.#heldSettles;
    this.#heldSettles = [];
    for (const settle of settles) settle();
  }
  async #afterGap(reason, welcome) {
    this.#epoch = welcome.epoch;
    this.#lastSeq = welcome.seq;
    for (const watcher of this.#watchers) watcher.seq = 0;
    this.#emit("gap", {
      reason,
      epoch: welcome.epoch
    });
    await this.#refreshWatchers();
  }
  async #refreshWatchers() {
    const actors = [
      ...new Set([
        ...this.#watchers
      ].map((w) => w.actor))
    ];
    if (actors.length === 0) return;
    const snapshot = await this.actorState(actors);
    for (const [actor, record] of Object.entries(snapshot.actors)) {
      const values = {};
      for (const [keyword, kw] of Object.entries(record.keywords)) values[keyword] = kw.value;
      this.#feedWatchers(actor, values, void 0, snapshot.seq);
    }
  }
  #request(request) {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected"));
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers();
    this.#requests.set(id, {
      resolve,
      reject
    });
    const { "clu-ws": operation, ...fields } = request;
    socket.send(JSON.stringify({
      "clu-ws": operation,
      id,
      ...fields
    }));
    return promise;
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
    const id = commandId ?? newId();
    const { promise, resolve, reject } = Promise.withResolvers();
    const socket = this.#socket;
    const pending = {
      consumer: actor,
      started: performance.now(),
      replies: [],
      resolve,
      reject,
      // The gateway times tracked commands out; this catches a connection that never comes back.
      timer: setTimeout(() => this.#settle(id, "timeout", null, `no end within ${seconds} s`), seconds * 1e3 + 5e3)
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
      timeout: seconds
    }));
    return promise;
  }
  #settle(id, status, code, error) {
    const pending = this.#commands.get(id);
    if (!pending) return;
    this.#commands.delete(id);
    clearTimeout(pending.timer);
    const result = {
      commandId: id,
      consumer: pending.consumer,
      status,
      code,
      ...error !== void 0 ? {
        error
      } : {},
      replies: pending.replies,
      elapsedMs: Math.round(performance.now() - pending.started)
    };
    if (status === "done") pending.resolve(result);
    else pending.reject(new CommandError(result));
  }
  #failAll(error) {
    for (const id of [
      ...this.#commands.keys()
    ]) this.#settle(id, "failed", null, error);
  }
  /**
   * Calls `callback` with the latest value of `actor`'s `keyword`: first from
   * the gateway's state, then on every reply that carries it. Returns the
   * function that stops watching.
   */
  watch(actor, keyword, callback) {
    const watcher = {
      actor,
      keyword,
      callback,
      seq: 0
    };
    this.#watchers.add(watcher);
    if (this.#welcome) {
      this.actorState([
        actor
      ]).then((snapshot) => {
        const kw = snapshot.actors[actor]?.keywords[keyword];
        if (kw && this.#watchers.has(watcher)) {
          this.#feedWatchers(actor, {
            [keyword]: kw.value
          }, void 0, snapshot.seq);
        }
      }).catch(() => {
      });
    }
    return () => this.#watchers.delete(watcher);
  }
  /** Closes for good: no reconnect; commands still pending fail. */
  close() {
    this.#closed = true;
    if (this.#retry !== void 0) clearTimeout(this.#retry);
    this.#failAll("the client was closed");
    const socket = this.#socket;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1e3, "client closed");
    else this.#setState("closed");
  }
};
function errorOf(frame) {
  const error = frame.body?.error;
  return typeof error === "string" ? error : error === void 0 ? void 0 : JSON.stringify(error);
}
function newId() {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from({
    length: 4
  }, () => Math.random().toString(16).slice(2, 10)).join("-");
}
export {
  CluClient,
  CommandError
};
