// Hostile input, end to end: a seeded fuzzer of invalid frames (every one must
// get exactly one reply-shaped error back, nothing may reach an actor, memory
// must not grow), invalid UTF-8 (the runtime drops that peer only), and
// thousands of connects and disconnects of every kind (the registry and the
// process's file descriptors must come back to where they were).
//
// A fuzz failure prints its seed; replay it with CLU_WS_FUZZ_SEED=<seed>.

import assert from "node:assert/strict";
import { MAX_COMMAND_ID_LENGTH } from "../lib/protocol/clu_input.ts";
import { startActor } from "./helpers/actor.ts";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { RawWebSocket } from "./helpers/raw_ws.ts";
import { type Frame, replyTo, WsClient } from "./helpers/ws_client.ts";
import { ActorWatch } from "./helpers/actor_watch.ts";

/** The frame size limit the fuzz gateway runs with (its default, given explicitly). */
const MAX_MESSAGE_BYTES = 64 * 1024;
const FUZZ_ARGS = [
  "--log-level",
  "info",
  "--command-rate",
  "0",
  "--max-message-size",
  String(MAX_MESSAGE_BYTES),
];

const SEED = fuzzSeed();
const REPLAY = `seed ${SEED}; replay with CLU_WS_FUZZ_SEED=${SEED}`;

function fuzzSeed(): number {
  const given = Deno.env.get("CLU_WS_FUZZ_SEED");
  if (given === undefined || given.trim() === "") return 0x5eed_c1e5;
  const seed = Number(given);
  if (!Number.isInteger(seed)) throw new Error(`CLU_WS_FUZZ_SEED must be an integer, not ${given}`);
  return seed >>> 0;
}

/** mulberry32: small, fast and good enough to pick test cases. */
class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    let t = this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

// ---------------------------------------------------------------------------
// The generator. Every frame it makes is invalid by construction; the comment
// on each case says why.

/**
 * The actors: "testactor" and "x" with this run's suffix, since actor queues
 * (`<name>_commands`) are per broker, not per exchange, and other test runs may
 * share the broker.
 */
const RUN_ID = crypto.randomUUID().slice(0, 8);
const TESTACTOR = `testactor-${RUN_ID}`;
const X = `x-${RUN_ID}`;
/** Actors that run during the fuzz: nothing may reach them. */
const ACTORS = [TESTACTOR, X] as const;
/** Valid command strings. */
const COMMANDS = ["ping", "status", "fail", "y", "ping now", "é 漢 😀"];
/** Characters that break naive encoders and decoders. */
const TRICKY = [
  '"',
  "\\",
  "/",
  "\u0000",
  "\u0001",
  "\b",
  "\u001f",
  "\u007f",
  "\u0085",
  "\u2028",
  "\u2029",
  "\ufeff",
  "\ufffd",
  "é",
  "ß",
  "漢",
  "😀",
  "\ud800",
  "\udfff",
  " ",
  "\t",
  "\n",
  "{",
  "}",
  "[",
  "]",
  ":",
  ",",
  "%s",
  "${x}",
  "<script>",
];
/** Strings that String.prototype.trim removes entirely. */
const BLANKS = ["", " ", "\t", "\n\r", "   \t  ", "\u00a0", "\u3000", "\u2028", "\ufeff", "\u2003\u205f"];
/** Wrong-type values as JSON text (no null: see {@linkcode wrongType}). */
const WRONG_TYPES = [
  "0",
  "1",
  "-1",
  "42",
  "3.5",
  "-2.5e-3",
  "1e21",
  "9007199254740993",
  "true",
  "false",
  "[]",
  '["ping"]',
  `["${TESTACTOR}"]`,
  "[[[]]]",
  `[{"consumer":"${X}","command_string":"y"}]`,
  "{}",
  '{"toString":"x"}',
  '{"0":"p","length":1}',
  `{"consumer":"${X}","command_string":"y"}`,
];
const EXTRA_KEYS = [
  "Consumer",
  "CONSUMER",
  "consumer ",
  " consumer",
  "commandString",
  "command-string",
  "commandId",
  "command",
  "actor",
  "id",
  "body",
  "headers",
  "message_code",
  "sender",
  "internal",
  "write_to_log",
  "reply_to",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "__defineGetter__",
  "length",
  "0",
  "",
  "🔑",
  "\u0000",
];
const PROTO_KEYS = ["__proto__", "constructor", "prototype"];

const utf8 = new TextEncoder();

function randomText(r: Rng, length: number): string {
  let out = "";
  while (out.length < length) {
    out += r.chance(0.15) ? r.pick(TRICKY) : String.fromCharCode(r.between(0x20, 0x7e));
  }
  return out.slice(0, length);
}

/** `length` ASCII characters that need no escaping in JSON. */
function filler(r: Rng, length: number, alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._-"): string {
  let chunk = "";
  for (let i = 0; i < 61; i++) chunk += alphabet[r.int(alphabet.length)];
  return chunk.repeat(Math.ceil(length / chunk.length)).slice(0, length);
}

/** A random JSON value (as text), nested up to `depth`. */
function randomJson(r: Rng, depth: number): string {
  const kind = r.int(depth > 0 ? 7 : 5);
  switch (kind) {
    case 0:
      return "null";
    case 1:
      return r.pick(["true", "false"]);
    case 2:
      return String(r.pick([0, 1, -7, 3.25, 1e21, r.int(1e9), -r.float()]));
    case 3:
    case 4:
      return JSON.stringify(randomText(r, r.between(0, 40)));
    case 5:
      return `[${Array.from({ length: r.int(4) }, () => randomJson(r, depth - 1)).join(",")}]`;
    default:
      return `{${
        Array.from({ length: r.int(4) }, () =>
          `${JSON.stringify(randomText(r, 6))}:${randomJson(r, depth - 1)}`)
          .join(",")
      }}`;
  }
}

/** Wrong-type JSON text for a field; `null` only where null is not "absent". */
function wrongType(r: Rng, allowNull: boolean): string {
  if (allowNull && r.chance(0.15)) return "null";
  if (r.chance(0.8)) return r.pick(WRONG_TYPES);
  // A random array or object: never a string, which could be a valid value.
  const members = Array.from({ length: r.int(4) }, () => randomJson(r, 2));
  return r.chance(0.5)
    ? `[${members.join(",")}]`
    : `{${members.map((m) => `${JSON.stringify(randomText(r, 5))}:${m}`).join(",")}}`;
}

/** An object's text from entries of key and value text (so `__proto__` stays a plain key). */
function objectText(r: Rng, entries: Array<[string, string]>): string {
  const space = r.chance(0.2) ? r.pick([" ", "\n", "\t ", "\r\n  "]) : "";
  return `{${space}${
    entries.map(([key, value]) => `${JSON.stringify(key)}${space}:${space}${value}`).join(`,${space}`)
  }${space}}`;
}

/** A command with exactly one invalid field (plus `extras` extra fields). */
function oneBadField(r: Rng, n: number, extras: number): string {
  const fields = new Map<string, string>([
    ["consumer", JSON.stringify(r.pick(ACTORS))],
    ["command_string", JSON.stringify(r.pick(COMMANDS))],
  ]);
  if (r.chance(0.6)) fields.set("command_id", JSON.stringify(r.chance(0.3) ? n : `fz-${n}`));
  // Which field is wrong, and how; `undefined` removes it.
  const field = r.pick(["consumer", "command_string", "command_id"]);
  let bad: string | undefined;
  if (field === "consumer") {
    bad = r.pick([
      () => wrongType(r, true),
      () => undefined,
      () => JSON.stringify(r.pick(BLANKS)),
      // White space inside a name: no actor is called that.
      () =>
        JSON.stringify(r.pick(["test actor", `${TESTACTOR}\n`, ` ${TESTACTOR}`, `${X}\u00a0`, `${X}\ty`])),
      // command.<consumer> over AMQP's 255-byte routing key limit.
      () => JSON.stringify(filler(r, r.between(248, 3000), "abcdefghijklmnopqrstuvwxyz.")),
    ])();
  } else if (field === "command_string") {
    bad = r.pick([() => wrongType(r, true), () => undefined, () => JSON.stringify(r.pick(BLANKS))])();
  } else {
    // A missing, null or empty command_id is valid (it gets a UUID): never use those here.
    bad = r.chance(0.75)
      ? wrongType(r, false)
      : JSON.stringify(filler(r, r.between(MAX_COMMAND_ID_LENGTH + 1, 3 * MAX_COMMAND_ID_LENGTH)));
  }
  const duplicate = bad !== undefined && r.chance(0.15);
  if (!duplicate) {
    if (bad === undefined) fields.delete(field);
    else fields.set(field, bad);
  }
  const entries = [...fields.entries()];
  for (let i = 0; i < extras; i++) {
    const key = r.chance(0.7) ? r.pick(EXTRA_KEYS) : randomText(r, r.between(1, 12));
    if (key === "consumer" || key === "command_string" || key === "command_id") continue;
    entries.push([key, randomJson(r, 3)]);
  }
  r.shuffle(entries);
  // A duplicate key: the last one wins in JSON.parse, so the bad one goes last.
  if (duplicate) entries.push([field, bad!]);
  return objectText(r, entries);
}

/** Prototype-pollution shapes: a command hidden where only a careless reader would find it. */
function pollution(r: Rng, n: number): string {
  const k = r.pick(PROTO_KEYS);
  const k2 = r.pick(PROTO_KEYS);
  const a = JSON.stringify(r.pick(ACTORS));
  const c = JSON.stringify(r.pick(["y", "ping"]));
  const id = JSON.stringify(`pp-${n}`);
  const shapes = [
    `{"${k}":{"consumer":${a},"command_string":${c}}}`,
    `{"${k}":{"consumer":${a},"command_string":${c},"command_id":${id}}}`,
    `{"consumer":${a},"${k}":{"command_string":${c}}}`,
    `{"command_string":${c},"${k}":{"consumer":${a}}}`,
    `{"command_id":${id},"command_string":${c},"${k}":{"consumer":${a}}}`,
    `{"${k}":{"${k2}":{"consumer":${a},"command_string":${c}}}}`,
    `{"constructor":{"prototype":{"consumer":${a},"command_string":${c}}}}`,
    `{"__proto__":null,"constructor":{"prototype":{"consumer":${a},"command_string":${c}}}}`,
    `{"consumer":${a},"command_string":"","${k}":{"command_string":${c}}}`,
    `{"consumer":${a},"command_string":${c},"command_id":${r.pick(WRONG_TYPES)},"${k}":{"command_id":${id}}}`,
    `[{"${k}":{"consumer":${a},"command_string":${c}}}]`,
    `{"${k}":[{"consumer":${a},"command_string":${c}}]}`,
    `{"consumer":{"${k}":${a}},"command_string":${c}}`,
    `{"consumer":${a},"command_string":{"${k}":${c},"toString":${c}}}`,
    `{"hasOwnProperty":"consumer","${k}":{"consumer":${a},"command_string":${c}}}`,
    `{"consumer":${a},"hasOwnProperty":null,"${k}":{"command_string":${c}}}`,
  ];
  return r.pick(shapes);
}

/** Text that is not JSON at all. */
function notJson(r: Rng, n: number): string {
  const valid = JSON.stringify({ consumer: r.pick(ACTORS), command_string: "ping", command_id: `nj-${n}` });
  return r.pick([
    () =>
      r.pick(["x", "#", "'", "<", "NaN", "undefined", "{'", "//", "\u0000", "}"]) + randomText(r, r.int(200)),
    () => valid.slice(0, r.int(valid.length)), // a proper prefix of an object is never JSON
    () => valid + r.pick([" x", ",", "}", "]", "{}", "\u0000", valid]),
    () => valid.slice(0, -1) + ",}",
    () => valid.replaceAll('"', "'"),
    () => valid.replace(/"(\w+)":/g, "$1:"),
    () => "\ufeff" + valid, // JSON.parse (like Python's json.loads) refuses a BOM
    () =>
      valid.slice(0, -1) +
      r.pick([',"x":NaN}', ',"x":Infinity}', ',"x":0x10}', ',"x":.5}', ',"x":undefined}']),
    () => "/* comment */" + valid,
    () => valid.replace("ping", "pi\u0001ng"), // a raw control character inside a string
    () => r.pick(BLANKS), // nothing, or white space only
    () => "\ud800" + valid, // a lone surrogate: sent as U+FFFD
  ])();
}

/** Deep nesting, up to the size limit. */
function deep(r: Rng): string {
  const depth = r.chance(0.2) ? 10_000 : r.between(1_000, 10_000);
  const arrays = (d: number) => "[".repeat(d) + "]".repeat(d);
  const objects = (d: number, inner = "0") => '{"a":'.repeat(d) + inner + "}".repeat(d);
  return r.pick([
    () => arrays(r.between(1_000, 32_000)),
    () => objects(depth),
    () => {
      const opens: string[] = [];
      const closes: string[] = [];
      for (let i = 0; i < depth; i++) {
        const array = r.chance(0.5);
        opens.push(array ? "[" : '{"k":');
        closes.push(array ? "]" : "}");
      }
      return opens.join("") + "1" + closes.reverse().join("");
    },
    () => `{"consumer":"${TESTACTOR}","command_string":${arrays(depth)}}`,
    () => `{"consumer":${objects(depth, JSON.stringify(TESTACTOR))},"command_string":"ping"}`,
    () => `{"consumer":"${TESTACTOR}","command_string":"ping","deep":${arrays(depth)},"command_id":true}`,
    () => objects(depth, `{"consumer":"${TESTACTOR}","command_string":"ping"}`),
    () => "[".repeat(depth), // unbalanced
    () => '{"a":'.repeat(depth) + "}".repeat(depth), // no innermost value
  ])();
}

/** Huge strings, up to exactly the size limit, each in a frame that is invalid for another reason. */
function huge(r: Rng): string {
  const size = r.chance(0.25) ? MAX_MESSAGE_BYTES : r.between(8 * 1024, MAX_MESSAGE_BYTES);
  const fit = (before: string, after: string, alphabet?: string) =>
    before + filler(r, size - utf8.encode(before + after).length, alphabet) + after;
  return r.pick([
    () => fit('"', '"'), // a JSON string, not an object
    () => fit('{"consumer":"', '","command_string":"ping"}'), // routing key too long
    () => fit('{"consumer":"t', 'x","command_string":"ping"}', "ab "), // white space in the name
    () => fit(`{"consumer":"${TESTACTOR}","command_string":"ping","command_id":"`, '"}'), // id too long
    () => fit(`{"consumer":"${TESTACTOR}","command_string":"`, '","command_id":7}'), // numeric id
    () => fit('{"consumer":"","command_string":"', '"}'), // empty consumer
    () => fit(`{"consumer":"${TESTACTOR}","command_string":" ","padding":"`, '"}'), // blank command
    () => fit(`{"consumer":"${TESTACTOR}","command_string":"`, '","command_id":"ok","command_string":null}'),
    () => fit('{"padding":"', '"}'), // no consumer
    // White space in a name made of characters JSON escapes: the error quotes the name, escaped twice.
    () => JSON.stringify({ consumer: '"\\ '.repeat(Math.floor((size - 40) / 5)), command_string: "ping" }),
    () => `{"consumer":"${TESTACTOR}","command_string":${JSON.stringify(" \t\n\u3000".repeat(size / 16))}}`,
    () => JSON.stringify(randomText(r, r.between(1_000, 10_000))), // escapes galore, at most 6 bytes a char
    () =>
      objectText(r, [["consumer", JSON.stringify(TESTACTOR)], [
        "command_string",
        JSON.stringify(randomText(r, 9_000)),
      ]]) +
      " !",
  ])();
}

/** JSON that is not an object. */
function notObject(r: Rng, n: number): string {
  return r.pick([
    () => String(r.pick([0, -1, 42, 1e308, 3.14159, r.int(1e9)])),
    () => r.pick(["true", "false", "null", "1e999", "-0", " 42 ", "[]", '""']),
    () => JSON.stringify(randomText(r, r.between(0, 100))),
    () => `[${JSON.stringify({ consumer: TESTACTOR, command_string: "ping", command_id: `arr-${n}` })}]`,
    () => JSON.stringify(JSON.stringify({ consumer: TESTACTOR, command_string: "ping" })),
    () => `[${Array.from({ length: r.int(6) }, () => randomJson(r, 2)).join(",")}]`,
  ])();
}

/** Blank command strings and blank or spaced consumer names. */
function blank(r: Rng, n: number): string {
  const id: Array<[string, string]> = r.chance(0.5) ? [["command_id", JSON.stringify(`bl-${n}`)]] : [];
  return r.chance(0.6)
    ? objectText(r, [
      ["consumer", JSON.stringify(r.pick(ACTORS))],
      ["command_string", JSON.stringify(r.pick(BLANKS) + r.pick(BLANKS))],
      ...id,
    ])
    : objectText(r, [
      ["consumer", JSON.stringify(r.pick([...BLANKS, "test actor", " x", "x\n"]))],
      ["command_string", '"ping"'],
      ...id,
    ]);
}

/** Binary frames: random bytes, or a valid command's bytes (binary is never a command). */
function binary(r: Rng, n: number): Uint8Array {
  if (r.chance(0.2)) {
    return utf8.encode(
      JSON.stringify({ consumer: r.pick(ACTORS), command_string: "ping", command_id: `b-${n}` }),
    );
  }
  const length = r.chance(0.02)
    ? (r.chance(0.3) ? MAX_MESSAGE_BYTES : r.between(4096, MAX_MESSAGE_BYTES))
    : r.int(300);
  return r.bytes(length);
}

type Generator = (r: Rng, n: number) => string | Uint8Array;

const CASES: Array<[label: string, weight: number, generate: Generator]> = [
  ["binary", 10, binary],
  ["not-json", 12, notJson],
  ["not-object", 8, notObject],
  ["deep", 1, deep],
  ["huge", 1, huge],
  ["bad-field", 25, (r, n) => oneBadField(r, n, 0)],
  ["extra-fields+bad-field", 15, (r, n) => oneBadField(r, n, r.between(1, 10))],
  ["blank", 8, blank],
  ["pollution", 15, pollution],
];
const TOTAL_WEIGHT = CASES.reduce((sum, [, weight]) => sum + weight, 0);

/** One generated frame and what its error frame must say. */
interface Fuzzed {
  /** The generator case, for failure messages and statistics. */
  label: string;
  /** What to send: text or binary. */
  data: string | Uint8Array;
  /** The command_id the error must carry (a usable one the frame gave), or null. */
  echo: string | number | null;
}

function utf8Length(text: string): number {
  return text.length * 3 <= MAX_MESSAGE_BYTES ? text.length : utf8.encode(text).length;
}

/** The command_id an error frame echoes: a usable string or a finite number the client gave. */
function expectedEcho(data: string | Uint8Array): string | number | null {
  if (typeof data !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  if (!Object.hasOwn(value, "command_id")) return null;
  const id = (value as { command_id: unknown }).command_id;
  if (typeof id === "string" && id !== "" && id.length <= MAX_COMMAND_ID_LENGTH) return id;
  if (typeof id === "number" && Number.isFinite(id)) return id;
  return null;
}

/** The deterministic stream of invalid frames for one connection. */
class FrameSource {
  readonly #rng: Rng;
  #n = 0;
  readonly counts = new Map<string, number>();

  constructor(seed: number) {
    this.#rng = new Rng(seed);
  }

  next(): Fuzzed {
    const r = this.#rng;
    const n = this.#n++;
    while (true) {
      let pick = r.float() * TOTAL_WEIGHT;
      let chosen = CASES[CASES.length - 1];
      for (const c of CASES) {
        if ((pick -= c[1]) < 0) {
          chosen = c;
          break;
        }
      }
      const [label, , generate] = chosen;
      const data = generate(r, n);
      // Over the limit would close the connection (1009), which is another test; never send that here.
      const size = typeof data === "string" ? utf8Length(data) : data.length;
      if (size > MAX_MESSAGE_BYTES) continue;
      this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
      return { label, data, echo: expectedEcho(data) };
    }
  }
}

function preview(data: string | Uint8Array): string {
  if (typeof data !== "string") return `<${data.length} binary bytes>`;
  const shown = JSON.stringify(data.length > 160 ? data.slice(0, 160) : data);
  return data.length > 160 ? `${shown}… (${data.length} chars)` : shown;
}

// ---------------------------------------------------------------------------
// A websocket peer that checks each error frame as it arrives, without keeping
// them: WsClient keeps every frame twice and scans them all on each wake-up,
// which 100,000 frames would make quadratic.

class FuzzPeer {
  readonly closed: Promise<CloseEvent>;
  /** Frames sent. */
  sent = 0;
  /** Frames received. */
  received = 0;
  /** Bytes sent. */
  bytesSent = 0;
  /** The longest frame received, in characters. */
  longest = 0;
  /** What went wrong, first ones first (kept short). */
  readonly failures: string[] = [];
  /** Frames from anyone but the gateway (there must be none during the fuzz). */
  readonly others: Frame[] = [];
  readonly #socket: WebSocket;
  readonly #expected = new Map<number, Fuzzed & { index: number }>();
  readonly #gateway: string;
  readonly #index: number;
  #closeEvent: CloseEvent | undefined;
  #collecting = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: WebSocket, gateway: string, index: number) {
    this.#socket = socket;
    this.#gateway = gateway;
    this.#index = index;
    this.closed = new Promise((resolve) => {
      socket.addEventListener("close", (event) => {
        this.#closeEvent = event;
        resolve(event);
        this.#wake();
      });
    });
    socket.addEventListener("message", (event) => {
      this.#onMessage(event.data);
      this.#wake();
    });
  }

  static connect(gateway: GatewayProcess, index: number): Promise<FuzzPeer> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(gateway.url());
      const peer = new FuzzPeer(socket, gateway.name, index);
      socket.addEventListener("open", () => resolve(peer), { once: true });
      socket.addEventListener("error", () => reject(new Error(`fuzz peer ${index} failed to open`)), {
        once: true,
      });
    });
  }

  #fail(problem: string): void {
    if (this.failures.length < 10) this.failures.push(`connection ${this.#index}: ${problem} (${REPLAY})`);
  }

  #onMessage(data: unknown): void {
    if (this.#collecting) {
      if (typeof data === "string") this.others.push(JSON.parse(data));
      return;
    }
    if (typeof data !== "string") {
      this.#fail(`a binary frame after ${this.received} errors`);
      return;
    }
    let frame: Frame;
    try {
      frame = JSON.parse(data);
    } catch {
      this.#fail(`a frame that is not JSON after ${this.received} errors: ${data.slice(0, 200)}`);
      return;
    }
    if (frame?.headers?.sender !== this.#gateway) {
      // Not an answer to this connection's frames (replies go to every client): no index of its own.
      this.others.push(frame);
      this.#fail(`a frame not from the gateway after ${this.received} errors: ${data.slice(0, 300)}`);
      return;
    }
    const index = this.received++;
    this.longest = Math.max(this.longest, data.length);
    const sent = this.#expected.get(index);
    this.#expected.delete(index);
    if (!sent) {
      this.#fail(`error frame #${index} answers no frame that was sent: ${data.slice(0, 300)}`);
      return;
    }
    const { message_code: code, command_id: id } = frame.headers;
    const error = frame.body?.error;
    const problem = code !== "e" && code !== "f"
      ? `message_code ${JSON.stringify(code)}`
      : typeof error !== "string" || error.trim() === ""
      ? "no body.error"
      : id !== sent.echo
      ? `command_id ${JSON.stringify(id)}, expected ${JSON.stringify(sent.echo)}`
      : code !== (sent.echo === null ? "e" : "f")
      ? `message_code ${code} with command_id ${JSON.stringify(id)}`
      : undefined;
    if (problem) {
      this.#fail(
        `frame #${sent.index} (${sent.label}) ${preview(sent.data)} got a bad error: ${problem}; ${
          data.slice(0, 300)
        }`,
      );
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits until `check` holds; rejects if the socket closes first or after `timeoutMs`. */
  async until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.#closeEvent) {
        throw new Error(
          `connection ${this.#index} closed (${this.#closeEvent.code} ${this.#closeEvent.reason}) while waiting for ${what}; sent ${this.sent}, received ${this.received} (${REPLAY})`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `connection ${this.#index}: no ${what} within ${timeoutMs} ms; sent ${this.sent}, received ${this.received} (${REPLAY})`,
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

  send(frame: Fuzzed): void {
    const index = this.sent++;
    this.#expected.set(index, { ...frame, index });
    this.bytesSent += frame.data.length; // characters for text: an estimate
    this.#socket.send(frame.data);
  }

  /** Sends a valid command after the fuzz; its frames land in `others`. */
  sendRaw(text: string): void {
    this.#socket.send(text);
  }

  /** Starts collecting frames from actors instead of checking them as errors. */
  expectReplies(): void {
    this.#collecting = true;
  }

  get open(): boolean {
    return this.#socket.readyState === WebSocket.OPEN;
  }

  async close(): Promise<void> {
    if (this.#socket.readyState !== WebSocket.CLOSED) this.#socket.close();
    await this.closed;
  }
}

/** Sends `count` frames from `source` with at most `window` unanswered, then waits for the last answer. */
async function fuzz(peer: FuzzPeer, source: FrameSource, count: number, window: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const frame = source.next();
    if (peer.sent - peer.received >= window) {
      await peer.until("room in the window", () => peer.sent - peer.received < window);
    }
    peer.send(frame);
    if (peer.failures.length > 0) return;
  }
  await peer.until("an error for every frame", () => peer.received >= peer.sent);
}

const CONNECTIONS = 4;
/** Frames per connection between two RSS samples. */
const CHUNK = 5_000;
/** Chunks before the baseline RSS sample (20,000 frames), then chunks measured (100,000 frames). */
const WARM_UP_CHUNKS = 1;
const MEASURED_CHUNKS = 5;
const WINDOW = 32;
const MiB = 1024 * 1024;
/**
 * The fuzzed gateway's V8 old-space cap. With V8's defaults its RSS climbs by
 * 45-70 MiB over the first ~200,000 frames, then swings between ~135 and ~155
 * MiB for the next 600,000 (measured: heap sizing, not a leak, since it levels
 * off), so growth after a 20,000-frame warm-up says nothing about leaks. Under
 * a 40 MiB cap the heap reaches its working size during the warm-up and RSS
 * stays within ~10 MiB (measured): RSS can then only grow by leaking outside
 * the JS heap, and a leak inside it ends in an out-of-memory exit, which the
 * test sees as the gateway no longer running.
 */
const FUZZ_HEAP_MIB = 40;

Deno.test("fuzz: 120,000 invalid frames each get exactly one error, reach no actor, and leak nothing", async () => {
  const exchange = uniqueExchange("fuzz");
  await using gateway = await startGateway({
    exchange,
    args: FUZZ_ARGS,
    env: { DENO_V8_FLAGS: `--max-old-space-size=${FUZZ_HEAP_MIB}` },
  });
  const testactor = await startActor(exchange, TESTACTOR);
  const x = await startActor(exchange, X);
  const peers: FuzzPeer[] = [];
  try {
    for (let i = 0; i < CONNECTIONS; i++) peers.push(await FuzzPeer.connect(gateway, i));
    const sources = peers.map((_, i) => new FrameSource((SEED + Math.imul(i + 1, 0x9e3779b9)) >>> 0));
    const chunk = async () => {
      await Promise.all(peers.map((p, i) => fuzz(p, sources[i], CHUNK, WINDOW)));
      const failures = peers.flatMap((p) => p.failures);
      assert.deepEqual(
        failures,
        [],
        `${
          failures.join("\n")
        }\n(the first failure of a connection is exact; after a frame that got no error, ` +
          "the next ones pair each error with the frame before its own)",
      );
      assert.equal(
        gateway.status,
        undefined,
        `the gateway is still running (${REPLAY}):\n${gateway.dump()}`,
      );
      return gateway.rssBytes();
    };

    const rss: number[] = [];
    for (let c = 0; c < WARM_UP_CHUNKS; c++) rss.push(await chunk());
    const rssWarm = rss[rss.length - 1];
    const started = performance.now();
    for (let c = 0; c < MEASURED_CHUNKS; c++) rss.push(await chunk());
    const seconds = (performance.now() - started) / 1000;
    const rssEnd = rss[rss.length - 1];
    const measured = CONNECTIONS * CHUNK * MEASURED_CHUNKS;

    const total = peers.reduce((sum, p) => sum + p.sent, 0);
    const bytes = peers.reduce((sum, p) => sum + p.bytesSent, 0);
    const counts = new Map<string, number>();
    for (const s of sources) {
      for (const [label, n] of s.counts) counts.set(label, (counts.get(label) ?? 0) + n);
    }
    console.log(
      `fuzz (${REPLAY}): ${total} frames (~${
        (bytes / MiB).toFixed(1)
      } MiB) over ${CONNECTIONS} connections; ` +
        `the last ${measured} in ${seconds.toFixed(2)} s = ${Math.round(measured / seconds)} frames/s; ` +
        `gateway RSS (V8 old space capped at ${FUZZ_HEAP_MIB} MiB) every ${CONNECTIONS * CHUNK} frames: ${
          rss.map((b) => (b / MiB).toFixed(1)).join(", ")
        } MiB (after warm-up ${(rssWarm / MiB).toFixed(1)}, at the end ${(rssEnd / MiB).toFixed(1)}); ` +
        `longest error frame ${Math.max(...peers.map((p) => p.longest))} chars; ` +
        `cases ${JSON.stringify(Object.fromEntries(counts))}`,
    );

    for (const [i, p] of peers.entries()) {
      assert.equal(
        p.received,
        p.sent,
        `connection ${i}: ${p.sent} frames sent, ${p.received} frames received (${REPLAY})`,
      );
      assert.ok(p.open, `connection ${i} is still open (${REPLAY})`);
      assert.deepEqual(p.others, [], `connection ${i} only got errors from the gateway (${REPLAY})`);
    }
    assert.equal(total, CONNECTIONS * CHUNK * (WARM_UP_CHUNKS + MEASURED_CHUNKS));
    assert.equal(gateway.status, undefined, `the gateway is still running (${REPLAY})`);
    assert.ok(
      rssEnd - rssWarm < 30 * MiB,
      `gateway RSS grew by ${((rssEnd - rssWarm) / MiB).toFixed(1)} MiB after the warm-up (${
        (rssWarm / MiB).toFixed(1)
      } → ${(rssEnd / MiB).toFixed(1)} MiB; ${REPLAY})`,
    );

    // The same sockets still carry commands, and the actors had nothing before them.
    assert.equal(x.received.length, 0, `actor x received ${JSON.stringify(x.received[0])} (${REPLAY})`);
    assert.equal(
      testactor.received.length,
      0,
      `testactor received ${JSON.stringify(testactor.received[0])} (${REPLAY})`,
    );
    for (const [i, p] of peers.entries()) {
      p.expectReplies();
      p.sendRaw(
        JSON.stringify({ consumer: TESTACTOR, command_string: "ping", command_id: `after-fuzz-${i}` }),
      );
    }
    for (const [i, p] of peers.entries()) {
      const done = replyTo(`after-fuzz-${i}`, ":");
      await p.until(`the Pong for after-fuzz-${i}`, () => p.others.some(done), 15_000);
      assert.deepEqual(p.others.find(done)?.body, { text: "Pong." });
    }
    assert.equal(testactor.received.length, CONNECTIONS);
    assert.equal(x.received.length, 0);
    assert.deepEqual(gateway.otherLines, [], "the gateway wrote only JSON log lines");
    const errors = gateway.logs.filter((r) => /^(error|fatal)$/i.test(r.level));
    assert.deepEqual(errors, [], "the gateway logged no errors");
  } finally {
    await Promise.all(peers.map((p) => p.close()));
    await testactor.close();
    await x.close();
  }
});

// ---------------------------------------------------------------------------

/** The registry size as `/healthz` reports it; over a connection that is not kept alive. */
async function registrySize(gateway: GatewayProcess, client: Deno.HttpClient): Promise<number> {
  const response = await fetch(gateway.httpUrl("/healthz"), { client });
  const body = await response.json();
  return Number(body.clients);
}

/** Rejects with `what` if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const INVALID_UTF8: Array<[string, number[]]> = [
  ["0xff 0xfe", [0xff, 0xfe]],
  ["an overlong '/'", [0xc0, 0xaf]],
  ["a UTF-8-encoded surrogate", [0xed, 0xa0, 0x80]],
  ["a truncated 3-byte sequence", [0xe2, 0x82]],
  ["a code point over U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ["a command then 0xff", [
    ...new TextEncoder().encode(`{"consumer":"${TESTACTOR}","command_string":"ping"}`),
    0xff,
  ]],
];

Deno.test("invalid UTF-8 in a text frame drops only that connection; the gateway and other clients carry on", async () => {
  const exchange = uniqueExchange("utf8");
  await using gateway = await startGateway({ exchange, args: FUZZ_ARGS });
  const actor = await startActor(exchange, TESTACTOR);
  const http = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  let bystander: WsClient | undefined;
  try {
    bystander = await WsClient.connect(gateway.url());
    await until("the bystander in the registry", async () => await registrySize(gateway, http) === 1);
    for (const [i, [what, bytes]] of INVALID_UTF8.entries()) {
      const raw = await RawWebSocket.connect(gateway.port);
      try {
        await until(
          `the raw peer (${what}) in the registry`,
          async () => await registrySize(gateway, http) === 2,
        );
        await raw.sendFrame(0x1, new Uint8Array(bytes));
        await within(raw.readUntilClosed(), 10_000, `the server closing the connection after ${what}`);
      } finally {
        raw.abort();
      }
      assert.equal(gateway.status, undefined, `the gateway survived ${what}`);
      await until(
        `the registry back to 1 after ${what}`,
        async () => await registrySize(gateway, http) === 1,
      );
      bystander.send({ consumer: TESTACTOR, command_string: "ping", command_id: `utf8-${i}` });
      await bystander.next(`the bystander's Pong after ${what}`, replyTo(`utf8-${i}`, ":"));
    }
    // Log lines reach us through the gateway's stderr pipe (written once per event-loop turn): awaited.
    const logged = () => gateway.logs.filter((r) => /disconnected/.test(r.message));
    await until("every dropped peer in the log", () => logged().length >= INVALID_UTF8.length, {
      timeoutMs: 10_000,
    }).catch(() => {});
    const codes = logged().map((r) => r.code);
    console.log(
      `invalid UTF-8: the gateway logged these close codes for the dropped peers: ${codes.join(", ")}`,
    );
    assert.equal(codes.length, INVALID_UTF8.length, "every dropped peer was logged as gone");
    assert.equal(bystander.readyState, WebSocket.OPEN);
    assert.equal(
      actor.received.length,
      INVALID_UTF8.length,
      "only the bystander's commands reached the actor",
    );
    const fresh = await WsClient.connect(gateway.url());
    try {
      fresh.send({ consumer: TESTACTOR, command_string: "ping", command_id: "utf8-fresh" });
      await fresh.next("a new client's Pong", replyTo("utf8-fresh", ":"));
    } finally {
      await fresh.close();
    }
  } finally {
    await bystander?.close();
    await actor.close();
    http.close();
  }
});

// ---------------------------------------------------------------------------

const CHURN_CYCLES = 2_000;
const CHURN_CONCURRENCY = 20;
const CLOSE_FRAME_1000 = new Uint8Array([0x03, 0xe8]);

/** The ways a client can come and go; cycle i uses kind i mod their number. */
const CHURN_KINDS: Array<[string, (gateway: GatewayProcess, i: number) => Promise<void>]> = [
  ["clean close", async (gateway) => {
    const client = await WsClient.connect(gateway.url());
    await client.close();
  }],
  ["abort without a close frame", async (gateway) => {
    const raw = await RawWebSocket.connect(gateway.port);
    raw.abort();
  }],
  ["close right after a bad frame", async (gateway, i) => {
    const client = await WsClient.connect(gateway.url());
    client.send(i % 2 ? "not json" : new Uint8Array([1, 2, 3]));
    await client.close();
  }],
  ["close right after a command", async (gateway, i) => {
    const client = await WsClient.connect(gateway.url());
    client.send({ consumer: TESTACTOR, command_string: "ping", command_id: `churn-${i}` });
    await client.close();
  }],
  ["abort right after a command", async (gateway, i) => {
    const raw = await RawWebSocket.connect(gateway.port);
    await raw.sendFrame(
      0x1,
      new TextEncoder().encode(`{"consumer":"${TESTACTOR}","command_string":"ping","command_id":"raw-${i}"}`),
    );
    raw.abort();
  }],
  ["close frame from a raw peer", async (gateway) => {
    const raw = await RawWebSocket.connect(gateway.port);
    try {
      await raw.sendFrame(0x8, CLOSE_FRAME_1000);
      await within(raw.readUntilClosed(), 10_000, "the server finishing a client's close");
    } finally {
      raw.abort();
    }
  }],
];

Deno.test("connection churn: 2,000 connects and disconnects of every kind leave no client and no fd behind", async () => {
  const exchange = uniqueExchange("churn");
  await using gateway = await startGateway({ exchange, args: FUZZ_ARGS });
  const actor = await startActor(exchange, TESTACTOR);
  const watch = await ActorWatch.start(exchange, TESTACTOR);
  const http = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    // Before any client or HTTP request, the process holds what it always will.
    const fdsBefore = gateway.openFds();
    assert.equal(await registrySize(gateway, http), 0);

    let next = 0;
    const failures: string[] = [];
    const kinds = new Map<string, number>();
    const worker = async (): Promise<void> => {
      while (next < CHURN_CYCLES) {
        const i = next++;
        const [kind, cycle] = CHURN_KINDS[i % CHURN_KINDS.length];
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        try {
          await within(cycle(gateway, i), 20_000, `cycle ${i} (${kind})`);
        } catch (err) {
          if (failures.length < 10) {
            failures.push(`cycle ${i} (${kind}): ${err instanceof Error ? err.message : err}`);
          }
        }
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: CHURN_CONCURRENCY }, worker));
    const seconds = (performance.now() - started) / 1000;
    assert.deepEqual(failures, [], failures.join("\n"));
    assert.equal(gateway.status, undefined, "the gateway is still running");

    await until("the registry back to 0", async () => await registrySize(gateway, http) === 0, {
      timeoutMs: 30_000,
    });
    let fdsAfter = gateway.openFds();
    try {
      await until(
        "the gateway's fds back to the baseline",
        () => (fdsAfter = gateway.openFds()) <= fdsBefore,
        {
          timeoutMs: 30_000,
        },
      );
    } finally {
      console.log(
        `churn: ${CHURN_CYCLES} cycles (${
          JSON.stringify(Object.fromEntries(kinds))
        }), ${CHURN_CONCURRENCY} at a time, in ${seconds.toFixed(2)} s = ${
          Math.round(CHURN_CYCLES / seconds)
        } cycles/s; gateway fds before ${fdsBefore}, after ${fdsAfter}`,
      );
    }
    // Log lines reach us through the gateway's stderr pipe (written once per event-loop turn): awaited.
    const count = (pattern: RegExp) => gateway.logs.filter((r) => pattern.test(r.message)).length;
    await until(
      "every disconnect in the log",
      () => count(/^client \d+ from .* disconnected/) >= CHURN_CYCLES,
      {
        timeoutMs: 10_000,
      },
    ).catch(() => {});
    assert.equal(count(/^client \d+ connected/), CHURN_CYCLES, "every cycle's client was registered");
    assert.equal(count(/^client \d+ from .* disconnected/), CHURN_CYCLES, "and every one was logged as gone");

    // Still serving.
    const client = await WsClient.connect(gateway.url());
    try {
      client.send({ consumer: TESTACTOR, command_string: "ping", command_id: "after-churn" });
      await client.next("a Pong after the churn", replyTo("after-churn", ":"));
    } finally {
      await client.close();
    }
  } finally {
    await watch.settle(actor).catch(() => {});
    await watch.close();
    await actor.close();
    http.close();
  }
});
