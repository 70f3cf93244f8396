// lib/protocol/clu.ts
var decoder = new TextDecoder();
function failedRoutingText(consumer) {
  return `Failed routing message to consumer '${consumer}'.`;
}
function isFailedRouting(sender, code, body) {
  if (code !== "f" || body === null || typeof body !== "object" || Array.isArray(body)) return false;
  const keys = Object.keys(body);
  return keys.length === 1 && keys[0] === "error" && body.error === failedRoutingText(sender);
}

// web/console/dom.ts
function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the console page has no #${id}; web/console.html and console.ts disagree`);
  return element;
}
function el(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== void 0) element.textContent = text;
  return element;
}
function load(storage, key) {
  try {
    return (storage === "local" ? localStorage : sessionStorage).getItem(key);
  } catch {
    return null;
  }
}
function save(storage, key, value) {
  try {
    const store = storage === "local" ? localStorage : sessionStorage;
    if (value === null) store.removeItem(key);
    else store.setItem(key, value);
  } catch {
  }
}

// web/console/format.ts
var VALUE_CHARS = 160;
var CODES = [
  {
    code: ">",
    meaning: "running",
    kind: "running"
  },
  {
    code: ":",
    meaning: "done",
    kind: "done"
  },
  {
    code: "f",
    meaning: "failed",
    kind: "failed"
  },
  {
    code: "!",
    meaning: "failed (fatal)",
    kind: "failed"
  },
  {
    code: "e",
    meaning: "error",
    kind: "error"
  },
  {
    code: "w",
    meaning: "warning",
    kind: "warning"
  },
  {
    code: "i",
    meaning: "info",
    kind: "info"
  },
  {
    code: "d",
    meaning: "debug",
    kind: "debug"
  }
];
var CODE_INFO = new Map(CODES.map((c) => [
  c.code,
  c
]));
function entryOf(frame) {
  const id = frame.headers.command_id;
  return {
    frame,
    code: String(frame.headers.message_code ?? "").toLowerCase(),
    actor: typeof frame.headers.sender === "string" ? frame.headers.sender : "",
    commandId: id === void 0 || id === null ? "" : String(id),
    at: Date.now()
  };
}
function noteEntry(text) {
  return {
    note: text,
    code: "",
    actor: "",
    commandId: "",
    at: Date.now()
  };
}
function jsonText(value) {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return String(value);
  }
}
function formatValue(value, limit = VALUE_CHARS) {
  const text = Array.isArray(value) ? value.map(jsonText).join(",") : jsonText(value);
  return text.length > limit ? `${text.slice(0, limit)}\u2026` : text;
}
function kindOf(code) {
  return CODE_INFO.get(code)?.kind ?? "other";
}
function meaningOf(code) {
  return CODE_INFO.get(code)?.meaning ?? "other";
}
function timeOf(entry) {
  const stamp = entry.frame?.timestamp;
  if (stamp) {
    const date = new Date(stamp);
    if (!Number.isNaN(date.getTime())) return date;
  }
  return new Date(entry.at);
}
function clock(entry) {
  return timeOf(entry).toISOString().slice(11, 19);
}
function ago(ms, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - ms) / 1e3));
  if (seconds < 2) return "now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}
function duration(ms) {
  if (ms < 1e3) return `${Math.round(ms)} ms`;
  if (ms < 6e4) return `${(ms / 1e3).toFixed(ms < 1e4 ? 2 : 1)} s`;
  const seconds = Math.round(ms / 1e3);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}
function newCommandId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// web/console/actors.ts
function createActors(options) {
  const list = byId("actors");
  const count = byId("actor-count");
  const find = byId("actor-find");
  const names = byId("actor-names");
  const actors2 = /* @__PURE__ */ new Map();
  const dirtyActors = /* @__PURE__ */ new Set();
  const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");
  function actorView(name) {
    const known = actors2.get(name);
    if (known) return known;
    const item = el("li", "actor-item");
    item.dataset.actor = name;
    const details = el("details");
    const summary = el("summary");
    const title = el("span", "actor-name", name);
    title.title = name;
    const meta = el("span", "actor-meta");
    summary.append(title, meta);
    const tools = el("div", "actor-tools");
    const filterButton = el("button", "actor-filter", "Show only");
    filterButton.type = "button";
    filterButton.setAttribute("aria-label", `show only ${name}'s replies`);
    const commandButton = el("button", "actor-command", "Command");
    commandButton.type = "button";
    commandButton.setAttribute("aria-label", `send a command to ${name}`);
    tools.append(filterButton, commandButton);
    details.append(summary, tools);
    item.append(details);
    const view = {
      name,
      lastSeen: 0,
      keywords: /* @__PURE__ */ new Map(),
      item,
      details,
      meta,
      rows: /* @__PURE__ */ new Map(),
      changed: /* @__PURE__ */ new Set()
    };
    filterButton.addEventListener("click", () => options.onShowOnly(name));
    commandButton.addEventListener("click", () => options.onCommand(name));
    details.addEventListener("toggle", () => {
      if (details.open) buildKeywordTable(view);
      else {
        view.table?.parentElement?.remove();
        view.table = void 0;
        view.rows.clear();
      }
    });
    actors2.set(name, view);
    let before = null;
    for (const other of list.children) {
      if (other.dataset.actor.localeCompare(name) > 0) {
        before = other;
        break;
      }
    }
    list.insertBefore(item, before);
    const option = el("option");
    option.value = name;
    names.append(option);
    count.textContent = `(${actors2.size})`;
    item.hidden = !matchesFind(name);
    return view;
  }
  function matchesFind(name) {
    const query = find.value.trim().toLowerCase();
    return !query || name.toLowerCase().includes(query);
  }
  function setKeyword(view, key, value) {
    const current = view.keywords.get(key);
    if (current && current.seq > value.seq) return;
    view.keywords.set(key, value);
    view.changed.add(key);
    dirtyActors.add(view);
  }
  function fromReply(frame) {
    const sender = frame.headers.sender;
    if (frame.seq === void 0 || typeof sender !== "string" || !sender) return;
    if (isFailedRouting(sender, String(frame.headers.message_code), frame.body)) return;
    const view = actorView(sender);
    const now = Date.now();
    view.lastSeen = now;
    dirtyActors.add(view);
    const body = frame.body;
    if (body === null || typeof body !== "object" || Array.isArray(body)) return;
    const code = String(frame.headers.message_code).toLowerCase();
    for (const [key, value] of Object.entries(body)) {
      setKeyword(view, key, {
        value,
        seen: now,
        code,
        seq: frame.seq
      });
    }
  }
  async function load2(client) {
    try {
      const snapshot = await client.actorState();
      for (const [name, record] of Object.entries(snapshot.actors)) {
        const view = actorView(name);
        view.lastSeen = Math.max(view.lastSeen, Date.parse(record.last_seen) || 0);
        dirtyActors.add(view);
        for (const [key, kw] of Object.entries(record.keywords)) {
          setKeyword(view, key, {
            value: kw.value,
            seen: Date.parse(kw.seen) || Date.now(),
            code: String(kw.code).toLowerCase(),
            seq: snapshot.seq
          });
        }
      }
      options.requestRender();
    } catch {
    }
  }
  function render() {
    if (dirtyActors.size === 0) return;
    const flash = !reducedMotion.matches;
    const flashColor = options.flashColor();
    for (const view of dirtyActors) {
      view.meta.textContent = metaText(view);
      if (view.table) {
        if (view.table.querySelector("td.panel-empty") && view.changed.size) view.table.replaceChildren();
        for (const key of view.changed) {
          let row = view.rows.get(key);
          if (row) fillKeywordRow(view, key, row);
          else {
            row = keywordRow(view, key);
            view.table.append(row);
          }
          if (flash) {
            row.cells[1].animate([
              {
                backgroundColor: flashColor
              },
              {
                backgroundColor: "transparent"
              }
            ], {
              duration: 1200,
              easing: "ease-out"
            });
          }
        }
      }
      view.changed.clear();
    }
    dirtyActors.clear();
  }
  find.addEventListener("input", () => {
    for (const view of actors2.values()) view.item.hidden = !matchesFind(view.name);
  });
  return {
    changed: () => dirtyActors.size > 0,
    fromReply,
    load: load2,
    forgetPositions() {
      for (const view of actors2.values()) for (const kw of view.keywords.values()) kw.seq = -1;
    },
    render,
    refreshLastSeen() {
      for (const view of actors2.values()) {
        if (!view.item.hidden) view.meta.textContent = metaText(view);
      }
    }
  };
}
function metaText(view) {
  return `${view.keywords.size} kw \xB7 ${view.lastSeen ? ago(view.lastSeen) : "\u2014"}`;
}
function buildKeywordTable(view) {
  const table = el("table", "keywords");
  const caption = el("caption", "visually-hidden", `${view.name} keywords`);
  const tbody = el("tbody");
  table.append(caption, tbody);
  view.table = tbody;
  view.rows.clear();
  const keys = [
    ...view.keywords.keys()
  ].sort((a, b) => a.localeCompare(b));
  for (const key of keys) tbody.append(keywordRow(view, key));
  if (keys.length === 0) {
    const row = el("tr");
    row.append(el("td", "panel-empty", "no keywords yet"));
    tbody.append(row);
  }
  view.details.append(table);
}
function keywordRow(view, key) {
  const row = el("tr");
  row.dataset.keyword = key;
  const name = el("th", void 0, key);
  name.scope = "row";
  name.title = key;
  row.append(name, el("td"));
  view.rows.set(key, row);
  fillKeywordRow(view, key, row);
  return row;
}
function fillKeywordRow(view, key, row) {
  const kw = view.keywords.get(key);
  const cell = row.cells[1];
  cell.textContent = formatValue(kw.value, 600);
  cell.className = `c-${kindOf(kw.code)}`;
  cell.title = `${meaningOf(kw.code)} \xB7 ${new Date(kw.seen).toISOString()}`;
}

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
function newCommandId2() {
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
    const actors2 = this.#watchers.actors();
    if (actors2.length === 0) return;
    this.#watchers.feedState(await this.actorState(actors2));
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
  async actorState(actors2) {
    const answer = await this.#request({
      "clu-ws": "state",
      ...actors2 ? {
        actors: actors2
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
    const id = commandId ?? newCommandId2();
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

// web/console/command_history.ts
var HISTORY_SIZE = 100;
var CommandHistory = class {
  #entries = [];
  #index = 0;
  #draft;
  /** A history from its stored JSON ({@linkcode CommandHistory.toJSON}); anything unreadable is left out. */
  constructor(saved) {
    try {
      const parsed = JSON.parse(saved ?? "[]");
      if (Array.isArray(parsed)) {
        this.#entries = parsed.filter((h) => typeof h?.actor === "string" && typeof h?.text === "string");
      }
    } catch {
      this.#entries = [];
    }
    this.#index = this.#entries.length;
  }
  /** The commands remembered, oldest first. */
  get entries() {
    return this.#entries;
  }
  /** Remembers a command sent (not twice in a row) and goes back to the end of the history. */
  remember(command) {
    const last = this.#entries.at(-1);
    if (!last || last.actor !== command.actor || last.text !== command.text) {
      this.#entries.push({
        actor: command.actor,
        text: command.text
      });
    }
    if (this.#entries.length > HISTORY_SIZE) this.#entries.splice(0, this.#entries.length - HISTORY_SIZE);
    this.#index = this.#entries.length;
    this.#draft = void 0;
  }
  /**
   * One step back (`up`) or forward (`down`) from what the bar holds now
   * (`current`, kept as the draft when leaving the end); what to show, or
   * undefined for nothing to change.
   */
  move(direction, current) {
    const length = this.#entries.length;
    if (this.#index === length) this.#draft = {
      actor: current.actor,
      text: current.text
    };
    this.#index = direction === "up" ? Math.max(0, this.#index - 1) : Math.min(length, this.#index + 1);
    return this.#index < length ? this.#entries[this.#index] : this.#draft;
  }
  /** The history as stored. */
  toJSON() {
    return this.#entries;
  }
};

// web/console/rows.ts
var ROW_KEYWORDS = 24;
var rowEntries = /* @__PURE__ */ new WeakMap();
function rowFor(entry, inStream = true) {
  if (entry.note !== void 0) {
    const row2 = el("div", "note", `${clock(entry)}  ${entry.note}`);
    row2.dataset.note = "";
    if (inStream) row2.tabIndex = -1;
    return row2;
  }
  const frame = entry.frame;
  const row = el("div", `row c-${kindOf(entry.code)}${frame.headers.internal ? " internal" : ""}`);
  row.dataset.actor = entry.actor;
  row.dataset.code = entry.code;
  if (entry.commandId) row.dataset.commandId = entry.commandId;
  rowEntries.set(row, entry);
  const time = el("span", "time", clock(entry));
  time.title = `${timeOf(entry).toISOString()}${frame.seq !== void 0 ? ` \xB7 position ${frame.seq}` : ""}`;
  const code = el("span", "code", frame.headers.message_code);
  code.title = meaningOf(entry.code);
  const actor = el("span", "actor", entry.actor || "\u2014");
  actor.title = entry.actor;
  let id;
  if (entry.commandId) {
    id = el("button", "cid", entry.commandId);
    id.type = "button";
    id.title = `command ${entry.commandId}: show only its replies`;
  } else {
    id = el("span", "cid-none");
  }
  const body = el("span", "body");
  fillBody(body, frame.body);
  const expand = el("button", "expand", "{\u2026}");
  expand.type = "button";
  expand.setAttribute("aria-expanded", "false");
  expand.setAttribute("aria-label", "full JSON of this reply");
  row.append(time, code, actor, id, body, expand);
  if (inStream) {
    row.tabIndex = -1;
    id.tabIndex = -1;
    expand.tabIndex = -1;
  }
  return row;
}
function fillBody(target, body) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    target.textContent = formatValue(body);
    return;
  }
  const keys = Object.keys(body);
  const parts = [];
  for (const key of keys.slice(0, ROW_KEYWORDS)) {
    if (parts.length) parts.push(document.createTextNode("; "));
    parts.push(el("span", "k", key), document.createTextNode(`=${formatValue(body[key])}`));
  }
  if (keys.length > ROW_KEYWORDS) {
    parts.push(document.createTextNode(`; \u2026 ${keys.length - ROW_KEYWORDS} more`));
  }
  target.append(...parts);
}
function toggleJson(button) {
  const row = button.closest(".row");
  const entry = row && rowEntries.get(row);
  if (!row || !entry?.frame) return;
  const open = row.querySelector(":scope > pre");
  if (open) {
    open.remove();
    row.classList.remove("expanded");
    button.setAttribute("aria-expanded", "false");
    return;
  }
  const pre = el("pre", void 0, JSON.stringify(entry.frame, null, 2));
  row.append(pre);
  row.classList.add("expanded");
  button.setAttribute("aria-expanded", "true");
}
function rowClicks(onCommandId) {
  return (event) => {
    const target = event.target;
    const button = target.closest("button");
    if (!button) return;
    if (button.classList.contains("expand")) toggleJson(button);
    else if (button.classList.contains("cid")) onCommandId(button.textContent ?? "");
  };
}

// web/console/commands.ts
var MAX_COMMANDS = 50;
var HISTORY_KEY = "clu-ws.history";
function createCommands(options) {
  const list = byId("commands");
  const bar = byId("command-bar");
  const fields = byId("command-fields");
  const actorInput = byId("command-actor");
  const textInput = byId("command-text");
  const note = byId("command-note");
  const views = /* @__PURE__ */ new Map();
  const history2 = new CommandHistory(load("local", HISTORY_KEY));
  let ticker;
  function onKey(event) {
    if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    const current = {
      actor: actorInput.value,
      text: textInput.value
    };
    const shown = history2.move(event.key === "ArrowUp" ? "up" : "down", current);
    if (!shown) return;
    actorInput.value = shown.actor;
    textInput.value = shown.text;
    const end = shown.text.length;
    textInput.setSelectionRange(end, end);
  }
  function send(event) {
    event.preventDefault();
    const actor = actorInput.value.trim();
    const text = textInput.value.trim();
    if (!actor || !text) return;
    history2.remember({
      actor,
      text
    });
    save("local", HISTORY_KEY, JSON.stringify(history2));
    textInput.value = "";
    const view = commandView(newCommandId(), actor, text);
    const client = options.client();
    if (!client) {
      finish(view, void 0, "not connected to the gateway");
      return;
    }
    client.command(actor, text, {
      commandId: view.id
    }).then((result) => finish(view, result), (err) => finish(view, err instanceof CommandError ? err.result : void 0, err instanceof Error ? err.message : String(err)));
  }
  function commandView(id, actor, text) {
    const item = el("li", "command-item st-sent");
    item.dataset.commandId = id;
    item.dataset.state = "sent";
    const line = el("div", "command-line");
    const what = el("span", "what", `${actor} ${text}`);
    what.title = `${actor} ${text}
command id ${id}`;
    const stateEl = el("span", "state", "sent");
    const elapsedEl = el("span", "elapsed", "0 ms");
    line.append(what, stateEl, elapsedEl);
    const trailEl = el("div", "trail", "sent");
    const errorEl = el("div", "command-error");
    errorEl.hidden = true;
    const toggle = el("button", "replies-toggle", "Replies (0)");
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", "false");
    item.append(line, trailEl, errorEl, toggle);
    const view = {
      id,
      started: performance.now(),
      state: "sent",
      trail: [
        "sent"
      ],
      replies: [],
      item,
      stateEl,
      elapsedEl,
      trailEl,
      errorEl,
      toggle
    };
    toggle.addEventListener("click", () => toggleReplies(view));
    views.set(id, view);
    list.querySelector(".panel-empty")?.remove();
    list.prepend(item);
    while (list.childElementCount > MAX_COMMANDS) {
      const last = list.lastElementChild;
      views.delete(last.dataset.commandId ?? "");
      last.remove();
    }
    ticker ??= setInterval(tick, 100);
    return view;
  }
  function toggleReplies(view) {
    if (view.repliesBox) {
      view.repliesBox.remove();
      view.repliesBox = void 0;
      view.toggle.setAttribute("aria-expanded", "false");
      return;
    }
    const box = el("div", "replies");
    box.addEventListener("click", options.onRowClick);
    for (const frame of view.replies) box.append(rowFor(entryOf(frame), false));
    view.repliesBox = box;
    view.item.append(box);
    view.toggle.setAttribute("aria-expanded", "true");
  }
  function tick() {
    let running = 0;
    for (const view of views.values()) {
      if (view.state !== "sent" && view.state !== "running") continue;
      running++;
      view.elapsedEl.textContent = duration(performance.now() - view.started);
    }
    if (running === 0) {
      clearInterval(ticker);
      ticker = void 0;
    }
  }
  list.append(el("li", "panel-empty", "Commands you send appear here."));
  bar.addEventListener("submit", send);
  textInput.addEventListener("keydown", onKey);
  return {
    target(actor) {
      actorInput.value = actor;
      textInput.focus();
    },
    setRole(role) {
      const watchOnly = role === "watch";
      fields.disabled = watchOnly;
      bar.dataset.role = role ?? "";
      if (watchOnly) note.textContent = "This access token may only watch: commands are off.";
    },
    onReply(frame) {
      const id = frame.headers.command_id;
      if (id === void 0 || id === null) return;
      const view = views.get(String(id));
      if (!view) return;
      view.replies.push(frame);
      view.toggle.textContent = `Replies (${view.replies.length})`;
      if (view.repliesBox) view.repliesBox.append(rowFor(entryOf(frame), false));
      if (view.state === "sent" && frame.headers.message_code === ">") {
        setState(view, "running", performance.now() - view.started);
      }
    }
  };
}
function setState(view, state, elapsedMs) {
  view.state = state;
  view.trail.push(`${state} ${duration(elapsedMs)}`);
  view.trailEl.textContent = view.trail.join(" \u2192 ");
  view.stateEl.textContent = state;
  view.item.className = `command-item st-${state}`;
  view.item.dataset.state = state;
  view.elapsedEl.textContent = duration(elapsedMs);
}
function finish(view, result, error) {
  const elapsed = result?.elapsedMs ?? performance.now() - view.started;
  setState(view, result?.status ?? "failed", elapsed);
  if (result?.status !== "done") {
    const reason = result?.error ?? (result?.replies.length ? jsonText(result.replies.at(-1)?.body) : void 0) ?? error ?? "failed";
    view.errorEl.textContent = reason;
    view.errorEl.hidden = false;
  }
}

// web/console/connection.ts
var TOKEN_KEY = "clu-ws.token";
var GATEWAY_LABELS = {
  connecting: "connecting\u2026",
  open: "connected",
  closed: "disconnected, retrying"
};
function createConnection(options) {
  const { note } = options;
  const gatewayState = byId("gateway-state");
  const brokerState = byId("broker-state");
  const info = byId("info");
  const rate = byId("rate");
  const forgetToken = byId("forget-token");
  const tokenDialog = byId("token-dialog");
  const tokenForm = byId("token-form");
  const tokenInput = byId("token-input");
  const tokenError = byId("token-error");
  let client;
  let welcome;
  let token;
  let everOpen = false;
  let checkingToken = false;
  let lastTokenCheck = -Infinity;
  const stopListening = [];
  let received = 0;
  function showGateway(state) {
    gatewayState.dataset.state = state;
    gatewayState.textContent = `Gateway: ${GATEWAY_LABELS[state] ?? state}`;
    document.title = state === "open" ? "clu-ws console" : `clu-ws console (${GATEWAY_LABELS[state] ?? state})`;
    if (state !== "open") showBroker("unknown");
  }
  function showBroker(state) {
    brokerState.dataset.state = state;
    brokerState.textContent = `RabbitMQ: ${state}`;
  }
  function connect() {
    for (const stop of stopListening.splice(0)) stop();
    client?.close();
    const url = new URL(".", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const current = new CluClient(url.href, token ? {
      token
    } : {});
    client = current;
    let lastBroker = "";
    stopListening.push(current.on("reply", (frame) => {
      received++;
      options.onReply(frame);
    }), current.on("connection", (state) => {
      showGateway(state);
      if (state === "closed") {
        const dropped = welcome !== void 0;
        if (everOpen && dropped) note("Connection to the gateway lost; reconnecting.");
        welcome = void 0;
        lastBroker = "";
        if (!dropped) recheckToken(current);
      }
    }), current.on("broker", (state) => {
      showBroker(state);
      if (lastBroker && state !== lastBroker) note(`RabbitMQ link ${state}.`);
      lastBroker = state;
    }), current.on("gap", (gap) => {
      options.onGap();
      note(`Some replies were missed (${gap.reason}); actor state reloaded.`);
    }), current.on("welcome", (hello) => {
      if (everOpen && !welcome) note("Reconnected to the gateway.");
      everOpen = true;
      welcome = hello;
      info.textContent = `${hello.exchange} \xB7 role ${hello.role}`;
      info.title = `gateway ${hello.name}, epoch ${hello.epoch}`;
      options.onWelcome(hello, current);
    }));
    showGateway(current.state);
  }
  async function obtainToken(reason) {
    tokenError.textContent = reason;
    gatewayState.dataset.state = "connecting";
    gatewayState.textContent = "Gateway: waiting for a token";
    if (!tokenDialog.open) tokenDialog.showModal();
    while (true) {
      tokenInput.focus();
      const candidate = await new Promise((resolve) => {
        tokenForm.addEventListener("submit", (event) => {
          event.preventDefault();
          resolve(tokenInput.value.trim());
        }, {
          once: true
        });
      });
      if (!candidate) continue;
      const status = await probe(candidate);
      if (status === 401) {
        tokenError.textContent = "The gateway refused that token. Check it and try again.";
        tokenInput.select();
        continue;
      }
      token = candidate;
      save("session", TOKEN_KEY, token);
      tokenInput.value = "";
      tokenError.textContent = "";
      tokenDialog.close();
      forgetToken.hidden = false;
      return;
    }
  }
  async function recheckToken(current) {
    if (checkingToken || performance.now() - lastTokenCheck < 5e3) return;
    checkingToken = true;
    lastTokenCheck = performance.now();
    try {
      if (await probe(token) !== 401 || client !== current) return;
      current.close();
      token = void 0;
      save("session", TOKEN_KEY, null);
      forgetToken.hidden = true;
      await obtainToken(everOpen ? "The gateway no longer accepts the token; give another." : "");
      connect();
    } finally {
      checkingToken = false;
    }
  }
  forgetToken.addEventListener("click", () => {
    save("session", TOKEN_KEY, null);
    location.reload();
  });
  tokenDialog.addEventListener("cancel", (event) => event.preventDefault());
  return {
    client: () => client,
    asking: () => tokenDialog.open,
    showRate() {
      rate.textContent = `${received} msg/s`;
      received = 0;
    },
    async start() {
      token = load("session", TOKEN_KEY) ?? void 0;
      forgetToken.hidden = token === void 0;
      if (await probe(token) === 401) {
        if (token) save("session", TOKEN_KEY, null);
        token = void 0;
        await obtainToken("");
      }
      connect();
    }
  };
}
async function probe(candidate) {
  try {
    const response = await fetch(new URL("actors", location.href), {
      headers: candidate ? {
        authorization: `Bearer ${candidate}`
      } : {},
      cache: "no-store"
    });
    await response.text();
    return response.status;
  } catch {
    return 0;
  }
}

// lib/protocol/glob.ts
var MAX_CLIENT_GLOBS = 64;
function wildcardMatch(pattern, subject, many, one) {
  let p = 0;
  let s = 0;
  let star = -1;
  let resume = 0;
  while (s < subject.length) {
    if (p < pattern.length && pattern[p] === many) {
      star = p++;
      resume = s;
    } else if (p < pattern.length && (pattern[p] === one || pattern[p] === subject[s])) {
      p++;
      s++;
    } else if (star >= 0) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === many) p++;
  return p === pattern.length;
}
function compileGlob(pattern) {
  const collapsed = pattern.replace(/\*{2,}/g, "*");
  if (!collapsed.includes("*")) {
    if (!collapsed.includes("?")) return (name) => name === collapsed;
    return (name) => name.length === collapsed.length && wildcardMatch(collapsed, name, "*", "?");
  }
  if (collapsed === "*") return () => true;
  const fixed = collapsed.length - (collapsed.match(/\*/g)?.length ?? 0);
  return (name) => name.length >= fixed && wildcardMatch(collapsed, name, "*", "?");
}
function compileGlobs(patterns) {
  const compiled = patterns.map((pattern) => ({
    pattern,
    test: compileGlob(pattern)
  }));
  return {
    patterns,
    match(name) {
      return compiled.find((c) => c.test(name))?.pattern;
    }
  };
}
var encoder2 = new TextEncoder();

// web/console/filter_query.ts
var MAX_FILTER_WORDS = MAX_CLIENT_GLOBS;
function actorGlob(glob) {
  const compiled = compileGlobs([
    glob.toLowerCase()
  ]);
  return (actor) => compiled.match(actor.toLowerCase()) !== void 0;
}
function parseFilter(form) {
  const include = [];
  const exclude = [];
  const words = form.actor.split(/[\s,]+/).filter((word) => word && word !== "!" && word !== "-");
  for (const word of words.slice(0, MAX_FILTER_WORDS)) {
    if (word.startsWith("!") || word.startsWith("-")) exclude.push(actorGlob(word.slice(1)));
    else include.push(actorGlob(word));
  }
  return {
    include,
    exclude,
    codes: form.codes,
    text: form.text.trim().toLowerCase()
  };
}
function matchesFilter(filter, entry) {
  if (entry.note !== void 0) return true;
  if (filter.include.length && !filter.include.some((test) => test(entry.actor))) return false;
  if (filter.exclude.some((test) => test(entry.actor))) return false;
  if (filter.codes && !filter.codes.has(entry.code)) return false;
  if (filter.text) {
    entry.hay ??= `${entry.actor} ${entry.code} ${entry.commandId} ${jsonText(entry.frame?.body)}`.toLowerCase();
    if (!entry.hay.includes(filter.text)) return false;
  }
  return true;
}
function chosenCodes(ticked) {
  const chosen = new Set(ticked);
  return chosen.size === CODES.length ? void 0 : chosen;
}
function formFromQuery(search) {
  const params = new URLSearchParams(search);
  const codes = params.get("codes");
  const ticked = CODES.map(({ code }) => code).filter((code) => codes === null || codes.toLowerCase().includes(code));
  return {
    actor: params.get("actor") ?? "",
    codes: chosenCodes(ticked),
    text: params.get("q") ?? ""
  };
}
function queryWithForm(search, form) {
  const params = new URLSearchParams(search);
  setParam(params, "actor", form.actor.trim());
  setParam(params, "codes", form.codes ? [
    ...form.codes
  ].join("") : "");
  setParam(params, "q", form.text.trim());
  return params.toString();
}
function setParam(params, key, value) {
  if (value) params.set(key, value);
  else params.delete(key);
}

// web/console/filters.ts
function createFilters(options) {
  const form = byId("filters");
  const actorInput = byId("filter-actor");
  const textInput = byId("filter-text");
  const boxes = /* @__PURE__ */ new Map();
  let filter = {
    include: [],
    exclude: [],
    codes: void 0,
    text: ""
  };
  let urlTimer;
  function read() {
    const ticked = [
      ...boxes
    ].filter(([, box]) => box.checked).map(([code]) => code);
    return {
      actor: actorInput.value,
      codes: chosenCodes(ticked),
      text: textInput.value
    };
  }
  function apply() {
    const shown = read();
    filter = parseFilter(shown);
    options.onChange();
    clearTimeout(urlTimer);
    urlTimer = setTimeout(() => {
      const query = queryWithForm(location.search, shown);
      history.replaceState(history.state, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
    }, 150);
  }
  const codeSet = byId("filter-codes");
  for (const { code, meaning, kind } of CODES) {
    const label = el("label", `code-box c-${kind}`);
    const box = el("input");
    box.type = "checkbox";
    box.checked = true;
    box.value = code;
    box.name = "codes";
    const glyph = el("span", "code", code);
    glyph.setAttribute("aria-hidden", "true");
    label.title = meaning;
    label.append(box, glyph, el("span", "visually-hidden", meaning));
    boxes.set(code, box);
    codeSet.append(label);
  }
  const linked = formFromQuery(location.search);
  actorInput.value = linked.actor;
  textInput.value = linked.text;
  for (const [code, box] of boxes) box.checked = linked.codes === void 0 || linked.codes.has(code);
  filter = parseFilter(read());
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("input", apply);
  byId("filter-clear").addEventListener("click", () => {
    actorInput.value = "";
    textInput.value = "";
    for (const box of boxes.values()) box.checked = true;
    apply();
  });
  return {
    matches: (entry) => matchesFilter(filter, entry),
    showActor(actor) {
      actorInput.value = actor;
      apply();
    },
    showText(text) {
      textInput.value = text;
      apply();
    },
    focusText: () => textInput.focus()
  };
}

// web/console/stream.ts
var MAX_ROWS = 2e3;
var CHUNK_ROWS = 100;
var MAX_BUFFER = 5e3;
var MIN_RENDER_MS = 100;
function createStream(options) {
  const { matches, beforeRender } = options;
  const stream2 = byId("stream");
  const empty = byId("empty");
  const counts = byId("counts");
  const jump = byId("jump");
  const pause = byId("pause");
  const buffer = [];
  let pending = [];
  let held = 0;
  let paused = false;
  let stick = true;
  let lastScrollTop = 0;
  let frameRequested = false;
  let rowCount = 0;
  let lastRender = 0;
  let renderTimer;
  function schedule() {
    if (frameRequested || renderTimer !== void 0) return;
    const wait = lastRender + MIN_RENDER_MS - performance.now();
    if (wait > 0) {
      renderTimer = setTimeout(() => {
        renderTimer = void 0;
        schedule();
      }, wait);
      return;
    }
    frameRequested = true;
    requestAnimationFrame(flush);
  }
  function add(entry) {
    buffer.push(entry);
    if (buffer.length > MAX_BUFFER + 500) buffer.splice(0, buffer.length - MAX_BUFFER);
    if (!matches(entry)) return;
    pending.push(entry);
    held++;
    if (pending.length > MAX_ROWS + 500) pending.splice(0, pending.length - MAX_ROWS);
    schedule();
  }
  function flush() {
    frameRequested = false;
    render();
  }
  function render() {
    lastRender = performance.now();
    beforeRender();
    let added = false;
    if (!paused && stick && pending.length) {
      const entries = pending.length > MAX_ROWS ? pending.slice(-MAX_ROWS) : pending;
      pending = [];
      held = 0;
      added = appendRows(entries);
    }
    updateCounts();
    if (added && stick) scrollToEnd();
  }
  function scrollToEnd() {
    stream2.scrollTop = stream2.scrollHeight;
    lastScrollTop = stream2.scrollTop;
  }
  function appendRows(entries) {
    if (entries.length === 0) return false;
    let chunk = stream2.lastElementChild;
    let room = chunk ? CHUNK_ROWS - chunk.childElementCount : 0;
    let fragment = document.createDocumentFragment();
    for (const entry of entries) {
      if (room === 0) {
        chunk?.append(fragment);
        chunk = stream2.appendChild(el("div", "chunk"));
        fragment = document.createDocumentFragment();
        room = CHUNK_ROWS;
      }
      fragment.append(rowFor(entry));
      room--;
    }
    chunk.append(fragment);
    rowCount += entries.length;
    while (stream2.firstElementChild && stream2.firstElementChild !== chunk) {
      const first = stream2.firstElementChild;
      if (rowCount - first.childElementCount < MAX_ROWS - CHUNK_ROWS && rowCount <= MAX_ROWS) break;
      rowCount -= first.childElementCount;
      first.remove();
    }
    empty.hidden = true;
    return true;
  }
  function rerender() {
    stream2.replaceChildren();
    rowCount = 0;
    pending = [];
    held = 0;
    const entries = [];
    for (let i = buffer.length - 1; i >= 0 && entries.length < MAX_ROWS; i--) {
      if (matches(buffer[i])) entries.push(buffer[i]);
    }
    entries.reverse();
    stick = true;
    appendRows(entries);
    empty.hidden = entries.length > 0;
    empty.textContent = buffer.length ? "No replies match the filters." : "Waiting for replies\u2026";
    updateCounts();
    scrollToEnd();
  }
  function onStreamKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const focused = document.activeElement;
    const row = focused && focused !== stream2 ? focused.closest(".row, .note") : null;
    let next;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      next = row ? adjacentRow(row, step) : stream2.lastElementChild?.lastElementChild;
    } else if (event.key === "Home") {
      next = stream2.firstElementChild?.firstElementChild;
    } else if ((event.key === "Enter" || event.key === " ") && row) {
      const expand = row.querySelector(":scope > .expand");
      if (expand) toggleJson(expand);
    } else if (event.key === "c" && row) {
      const id = row.querySelector(":scope > .cid");
      if (id) id.click();
    } else return;
    event.preventDefault();
    next?.focus();
  }
  function atBottom() {
    return stream2.scrollHeight - stream2.scrollTop - stream2.clientHeight < 24;
  }
  function onScroll() {
    const top = stream2.scrollTop;
    const movedUp = top < lastScrollTop - 1;
    lastScrollTop = top;
    if (atBottom()) {
      if (stick) return;
      stick = true;
      schedule();
    } else if (stick && movedUp) {
      stick = false;
    } else return;
    updateCounts();
  }
  function jumpToLatest() {
    paused = false;
    stick = true;
    pause.setAttribute("aria-pressed", "false");
    render();
    scrollToEnd();
  }
  function setPaused(value) {
    paused = value;
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      stick = true;
      schedule();
    }
    updateCounts();
  }
  function updateCounts() {
    const waiting = paused || !stick ? held : 0;
    counts.textContent = `${rowCount} shown${paused ? " \xB7 paused" : ""}${waiting ? ` \xB7 ${waiting} new` : ""}`;
    const showJump = paused || !stick;
    jump.hidden = !showJump;
    if (showJump) jump.textContent = waiting ? `${waiting} new \xB7 jump to latest` : "Jump to latest";
  }
  stream2.addEventListener("click", options.onRowClick);
  stream2.addEventListener("keydown", onStreamKey);
  stream2.addEventListener("scroll", onScroll, {
    passive: true
  });
  new ResizeObserver(() => {
    if (stick) scrollToEnd();
  }).observe(stream2);
  jump.addEventListener("click", jumpToLatest);
  pause.addEventListener("click", () => setPaused(!paused));
  return {
    schedule,
    add,
    note: (text) => add(noteEntry(text)),
    rerender,
    jumpToLatest,
    togglePause: () => setPaused(!paused)
  };
}
function adjacentRow(row, step) {
  const sibling = step > 0 ? row.nextElementSibling : row.previousElementSibling;
  if (sibling) return sibling;
  const chunk = step > 0 ? row.parentElement?.nextElementSibling : row.parentElement?.previousElementSibling;
  return (step > 0 ? chunk?.firstElementChild : chunk?.lastElementChild) ?? null;
}

// web/console/theme.ts
var THEME_KEY = "clu-ws.theme";
function createTheme() {
  const button = byId("night");
  let flash = "";
  function set(night) {
    document.documentElement.dataset.theme = night ? "night" : "day";
    button.setAttribute("aria-pressed", String(night));
    save("local", THEME_KEY, night ? "night" : "day");
    flash = getComputedStyle(document.documentElement).getPropertyValue("--flash").trim();
  }
  function toggle() {
    set(button.getAttribute("aria-pressed") !== "true");
  }
  set(load("local", THEME_KEY) === "night");
  button.addEventListener("click", toggle);
  return {
    flashColor: () => flash,
    set,
    toggle
  };
}

// web/console.ts
var theme = createTheme();
document.documentElement.classList.remove("loading");
var filters = createFilters({
  onChange: () => stream.rerender()
});
var onRowClick = rowClicks((id) => filters.showText(id));
var stream = createStream({
  matches: (entry) => filters.matches(entry),
  beforeRender: () => actors.render(),
  onRowClick
});
var commands = createCommands({
  client: () => connection.client(),
  onRowClick
});
var actors = createActors({
  flashColor: theme.flashColor,
  onShowOnly: (actor) => filters.showActor(actor),
  onCommand: (actor) => commands.target(actor),
  requestRender: () => stream.schedule()
});
var connection = createConnection({
  onReply: (frame) => {
    stream.add(entryOf(frame));
    actors.fromReply(frame);
    commands.onReply(frame);
    if (actors.changed()) stream.schedule();
  },
  onWelcome: (hello, client) => {
    commands.setRole(hello.role);
    actors.load(client);
  },
  onGap: () => actors.forgetPositions(),
  note: (text) => stream.note(text)
});
stream.rerender();
document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || connection.asking()) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  if (event.key === "/") {
    event.preventDefault();
    filters.focusText();
  } else if (event.key === "p") {
    stream.togglePause();
  } else if (event.key === "n") {
    theme.toggle();
  } else if (event.key === "End" && target.closest("button, summary") === null) {
    event.preventDefault();
    stream.jumpToLatest();
  }
});
setInterval(() => {
  connection.showRate();
  actors.refreshLastSeen();
}, 1e3);
connection.start();
