/**
 * Unit tests for lib/frames.ts: CLU's websocket frame for AMQP replies (byte
 * for byte), CLU's reply validity rules, client command validation, and the
 * reply-shaped frames the gateway makes itself. See ../../shared/PROTOCOL.md.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  type AmqpMessageLike,
  bodyJsonText,
  commandBody,
  commandHeaders,
  type EncodedReply,
  encodeReply,
  gatewayReplyFrame,
  headersToJson,
  isoTimestamp,
  newMessageId,
  unroutableReply,
} from "../lib/protocol/clu.ts";
import { type ClientCommand, MAX_COMMAND_ID_LENGTH, parseClientCommand } from "../lib/protocol/clu_input.ts";

const utf8 = new TextEncoder();
const FRAME_KEYS = ["headers", "exchange", "message_id", "routing_key", "timestamp", "body"];
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;

/** 2026-11-25T08:10:25Z, the timestamp of PROTOCOL.md's current-CLU frame. */
const T_2026 = Date.UTC(2026, 10, 25, 8, 10, 25) / 1000;
/** 2023-05-25T19:25:05Z, the timestamp of PROTOCOL.md's 2023 frame. */
const T_2023 = Date.UTC(2023, 4, 25, 19, 25, 5) / 1000;

interface ReplyParts {
  headers?: Record<string, unknown>;
  body?: string | Uint8Array;
  messageId?: string;
  timestamp?: number;
  correlationId?: string;
  exchange?: string;
  routingKey?: string;
}

/** An AMQP reply as amqplib delivers it; defaults to a valid `:` reply to id-1. */
function message(parts: ReplyParts = {}): AmqpMessageLike {
  const properties: AmqpMessageLike["properties"] = {
    headers: parts.headers ?? {
      command_id: "id-1",
      commander_id: "amqp-client-787e6de10fec.testactor",
      internal: false,
      message_code: ":",
      sender: "testactor",
    },
  };
  if ("messageId" in parts) properties.messageId = parts.messageId;
  if ("timestamp" in parts) properties.timestamp = parts.timestamp;
  properties.correlationId = "correlationId" in parts ? parts.correlationId : "id-1";
  const body = parts.body ?? '{"text": "Pong."}';
  return {
    fields: {
      exchange: parts.exchange ?? "sdss_exchange",
      routingKey: parts.routingKey ?? "reply.amqp-client-787e6de10fec.testactor",
    },
    properties,
    content: typeof body === "string" ? utf8.encode(body) : body,
  };
}

function encoded(msg: AmqpMessageLike): EncodedReply {
  const result = encodeReply(msg);
  if (result.kind !== "reply") throw new Error(`expected a reply, got dropped: ${result.reason}`);
  return result;
}

function assertDropped(msg: AmqpMessageLike, reason?: RegExp): void {
  const result = encodeReply(msg);
  assert.equal(result.kind, "dropped", `expected a drop, got ${"frame" in result ? result.frame : ""}`);
  if (result.kind === "dropped") {
    assert.equal(typeof result.reason, "string");
    assert.ok(result.reason.length > 0);
    if (reason) assert.match(result.reason, reason);
  }
}

/** The frame as a parsed object. */
function frameOf(msg: AmqpMessageLike): Record<string, unknown> {
  return JSON.parse(encoded(msg).frame);
}

function headersOf(msg: AmqpMessageLike): Record<string, unknown> {
  return frameOf(msg).headers as Record<string, unknown>;
}

// ---------------------------------------------------------------- encodeReply: frame shape

Deno.test("encodeReply: reproduces PROTOCOL.md's current-CLU frame", () => {
  const msg = message({ messageId: "10219b28d96c493cb4198d94e7ec91f5", timestamp: T_2026 });
  const result = encoded(msg);
  // Exact text: frame keys in CLU's order, headers as sent, body embedded as received.
  assert.equal(
    result.frame,
    '{"headers":{"command_id":"id-1","commander_id":"amqp-client-787e6de10fec.testactor","internal":false,' +
      '"message_code":":","sender":"testactor"},"exchange":"sdss_exchange",' +
      '"message_id":"10219b28d96c493cb4198d94e7ec91f5","routing_key":"reply.amqp-client-787e6de10fec.testactor",' +
      '"timestamp":"2026-11-25T08:10:25+00:00","body":{"text": "Pong."}}',
  );
  // Same value as the frame CLU sends, quoted from PROTOCOL.md.
  const clu =
    '{"headers": {"command_id": "id-1", "commander_id": "amqp-client-787e6de10fec.testactor", "internal": false, "message_code": ":", "sender": "testactor"}, "exchange": "sdss_exchange", "message_id": "10219b28d96c493cb4198d94e7ec91f5", "routing_key": "reply.amqp-client-787e6de10fec.testactor", "timestamp": "2026-11-25T08:10:25+00:00", "body": {"text": "Pong."}}';
  assert.deepEqual(JSON.parse(result.frame), JSON.parse(clu));
  assert.equal(result.routingKey, "reply.amqp-client-787e6de10fec.testactor");
  assert.deepEqual(result.headers, JSON.parse(clu).headers);
});

Deno.test("encodeReply: frame keys are exactly headers, exchange, message_id, routing_key, timestamp, body", () => {
  const frame = encoded(message({ messageId: "m", timestamp: T_2023 })).frame;
  assert.ok(frame.startsWith('{"headers":{'), frame);
  assert.deepEqual(Object.keys(JSON.parse(frame)), FRAME_KEYS);
  const positions = FRAME_KEYS.map((key) => frame.indexOf(`"${key}":`));
  assert.deepEqual([...positions].sort((a, b) => a - b), positions);
  // The same without message_id and timestamp.
  assert.deepEqual(Object.keys(JSON.parse(encoded(message()).frame)), FRAME_KEYS);
});

Deno.test("encodeReply: PROTOCOL.md's 2023 example, with the UTC offset written out", () => {
  const frame = frameOf(message({
    headers: {
      command_id: "uoiu-7987",
      commander_id: "amqp-client-b5821fc64fc9.lvmecp",
      internal: false,
      message_code: "d",
      sender: "lvmecp",
    },
    correlationId: "uoiu-7987",
    messageId: "2fd4ae6ca62b462585b873ba35ba2d18",
    routingKey: "reply.amqp-client-b5821fc64fc9.lvmecp",
    timestamp: T_2023,
    body: '{"dome_status": "0x10", "dome_status_labels": "POSITION_UNKNOWN"}',
  }));
  assert.deepEqual(frame, {
    headers: {
      command_id: "uoiu-7987",
      commander_id: "amqp-client-b5821fc64fc9.lvmecp",
      internal: false,
      message_code: "d",
      sender: "lvmecp",
    },
    exchange: "sdss_exchange",
    message_id: "2fd4ae6ca62b462585b873ba35ba2d18",
    routing_key: "reply.amqp-client-b5821fc64fc9.lvmecp",
    timestamp: "2023-05-25T19:25:05+00:00",
    body: { dome_status: "0x10", dome_status_labels: "POSITION_UNKNOWN" },
  });
});

Deno.test("encodeReply: message_id and timestamp are null when the message has none", () => {
  const result = encoded(message());
  const frame = JSON.parse(result.frame);
  assert.equal(frame.message_id, null);
  assert.equal(frame.timestamp, null);
  assert.ok(result.frame.includes('"message_id":null'), result.frame);
  assert.ok(result.frame.includes('"timestamp":null'), result.frame);
});

Deno.test("encodeReply: timestamp is ISO 8601 UTC with +00:00, whole seconds", () => {
  assert.equal(frameOf(message({ timestamp: T_2026 })).timestamp, "2026-11-25T08:10:25+00:00");
  assert.equal(frameOf(message({ timestamp: T_2026 + 0.999 })).timestamp, "2026-11-25T08:10:25+00:00");
  // The epoch itself is a timestamp, not a missing one.
  assert.equal(frameOf(message({ timestamp: 0 })).timestamp, "1970-01-01T00:00:00+00:00");
  const ts = frameOf(message({ timestamp: 1_700_000_000 })).timestamp as string;
  assert.match(ts, ISO_UTC);
  // JavaScript reads it back as the same instant, whatever the local zone.
  assert.equal(new Date(ts).getTime(), 1_700_000_000_000);
});

Deno.test("encodeReply: the exchange and routing key come from the delivery", () => {
  const frame = frameOf(message({ exchange: "other_exchange", routingKey: "reply.broadcast" }));
  assert.equal(frame.exchange, "other_exchange");
  assert.equal(frame.routing_key, "reply.broadcast");
});

Deno.test("encodeReply: header key order is kept as sent", () => {
  const headers = { sender: "a", message_code: "i", command_id: null, internal: true, commander_id: "x.a" };
  const frame = encoded(message({ headers })).frame;
  assert.deepEqual(Object.keys(JSON.parse(frame).headers), Object.keys(headers));
});

// ---------------------------------------------------------------- encodeReply: CLU validity rules

Deno.test("encodeReply: a reply without message_code is dropped", () => {
  assertDropped(message({ headers: { command_id: "id-1", sender: "a" } }), /message_code/);
  assertDropped(message({ headers: {} }), /message_code/);
  const msg = message();
  delete msg.properties.headers;
  assertDropped(msg, /message_code/);
});

Deno.test("encodeReply: a reply with an empty or null message_code is dropped", () => {
  assertDropped(message({ headers: { command_id: "id-1", message_code: "" } }), /message_code/);
  assertDropped(message({ headers: { command_id: "id-1", message_code: null } }), /message_code/);
  assertDropped(message({ headers: { command_id: "id-1", message_code: new Uint8Array() } }), /message_code/);
});

Deno.test("encodeReply: every CLU message code is forwarded", () => {
  for (const code of [">", ":", "f", "e", "!", "i", "w", "d"]) {
    const headers = { command_id: "id-1", message_code: code, sender: "a" };
    assert.equal(headersOf(message({ headers })).message_code, code);
  }
});

Deno.test("encodeReply: a command_id that differs from the correlation id is dropped", () => {
  assertDropped(
    message({ headers: { command_id: "id-2", message_code: ":" }, correlationId: "id-1" }),
    /command_id/,
  );
  // A set command_id with no correlation id at all differs too.
  assertDropped(message({ headers: { command_id: "id-2", message_code: ":" }, correlationId: undefined }));
  // CLU's pitfall: a numeric command_id never equals the string correlation id.
  assertDropped(message({ headers: { command_id: 7, message_code: ":" }, correlationId: "7" }));
});

Deno.test("encodeReply: a matching command_id is forwarded", () => {
  const frame = frameOf(message({ headers: { command_id: "abc", message_code: ">" }, correlationId: "abc" }));
  assert.deepEqual(frame.headers, { command_id: "abc", message_code: ">" });
});

Deno.test("encodeReply: broadcasts (command_id null or absent) are forwarded whatever the correlation id", () => {
  const broadcast = { command_id: null, commander_id: null, internal: false, message_code: "i", sender: "a" };
  assert.deepEqual(
    headersOf(message({ headers: broadcast, correlationId: undefined, routingKey: "reply.broadcast" })),
    broadcast,
  );
  assert.equal(headersOf(message({ headers: broadcast, correlationId: "something" })).command_id, null);
  assert.deepEqual(headersOf(message({ headers: { message_code: "w" }, correlationId: undefined })), {
    message_code: "w",
  });
});

Deno.test("encodeReply: a byte-array command_id is compared as text", () => {
  const headers = { command_id: utf8.encode("id-9"), message_code: utf8.encode(":") };
  assert.deepEqual(headersOf(message({ headers, correlationId: "id-9" })), {
    command_id: "id-9",
    message_code: ":",
  });
  assertDropped(message({ headers, correlationId: "id-8" }));
});

// ---------------------------------------------------------------- encodeReply: body

Deno.test("encodeReply: a body that is not JSON is dropped", () => {
  for (const body of ["", "   ", "not json", "{", '{"a": 1', "{'a': 1}", '{"a": NaNa}']) {
    assertDropped(message({ body }), /JSON/);
  }
  assertDropped(message({ body: new Uint8Array([0xff, 0xfe, 0x00]) }));
});

Deno.test("encodeReply: a JSON body is embedded exactly as received", () => {
  // Python-style spacing, key order, 1.0 and big integers survive untouched.
  const body = '{"z": 1.0, "a": [1, 2], "big": 12345678901234567890, "u": "\\u00e9"}';
  const frame = encoded(message({ body })).frame;
  assert.ok(frame.endsWith(`"body":${body}}`), frame);
});

Deno.test("encodeReply: surrounding white space around the body is trimmed", () => {
  const frame = encoded(message({ body: '\n  {"a": 1}\r\n' })).frame;
  assert.ok(frame.endsWith('"body":{"a": 1}}'), frame);
  assert.deepEqual(JSON.parse(frame).body, { a: 1 });
});

Deno.test("encodeReply: an empty body object is kept", () => {
  assert.deepEqual(frameOf(message({ body: "{}" })).body, {});
});

Deno.test("encodeReply: Python's NaN, Infinity and -Infinity become null, but not inside strings", () => {
  const body =
    '{"a": NaN, "b": Infinity, "c": -Infinity, "d": [1, NaN, -Infinity], "s": "NaN and -Infinity", ' +
    '"q": "say \\"NaN\\" Infinity", "NaN": {"e": Infinity}}';
  const frame = encoded(message({ body })).frame;
  assert.deepEqual(JSON.parse(frame).body, {
    a: null,
    b: null,
    c: null,
    d: [1, null, null],
    s: "NaN and -Infinity",
    q: 'say "NaN" Infinity',
    NaN: { e: null },
  });
  assert.ok(frame.includes('"s": "NaN and -Infinity"'), frame);
  assert.ok(frame.includes('"q": "say \\"NaN\\" Infinity"'), frame);
});

Deno.test("encodeReply: strings that mention NaN in a valid body are left alone", () => {
  const body = '{"msg": "value is NaN", "inf": "-Infinity"}';
  assert.ok(encoded(message({ body })).frame.endsWith(`"body":${body}}`));
});

Deno.test("bodyJsonText: returns embeddable JSON text or undefined", () => {
  assert.equal(bodyJsonText(utf8.encode(' {"a": 1} ')), '{"a": 1}');
  assert.equal(bodyJsonText(utf8.encode('{"a": NaN}')), '{"a": null}');
  assert.equal(bodyJsonText(utf8.encode("")), undefined);
  assert.equal(bodyJsonText(utf8.encode("nope")), undefined);
});

// ---------------------------------------------------------------- encodeReply: header values

Deno.test("encodeReply: byte-array headers (Buffer or Uint8Array) become UTF-8 text", () => {
  const headers = {
    message_code: Buffer.from(":"),
    sender: new Uint8Array(utf8.encode("äctor")),
    command_id: null,
  };
  const result = encoded(message({ headers }));
  assert.deepEqual(JSON.parse(result.frame).headers, {
    message_code: ":",
    sender: "äctor",
    command_id: null,
  });
  assert.deepEqual(result.headers, { message_code: ":", sender: "äctor", command_id: null });
});

Deno.test("encodeReply: AMQP decimals become numbers and AMQP timestamps ISO strings", () => {
  const headers = {
    message_code: "i",
    price: { "!": "decimal", value: { places: 2, digits: 12345 } },
    whole: { "!": "decimal", value: { places: 0, digits: 7 } },
    at: { "!": "timestamp", value: T_2023 },
  };
  assert.deepEqual(headersOf(message({ headers })), {
    message_code: "i",
    price: 123.45,
    whole: 7,
    at: "2023-05-25T19:25:05+00:00",
  });
});

Deno.test("encodeReply: nested tables and arrays are converted all the way down", () => {
  const headers = {
    message_code: "i",
    table: {
      bytes: utf8.encode("inner"),
      deeper: { list: [utf8.encode("x"), { "!": "decimal", value: { places: 1, digits: 5 } }] },
      at: { "!": "timestamp", value: 0 },
    },
    list: [1, "two", true, null, [utf8.encode("three")], { k: utf8.encode("v") }],
  };
  const expected = {
    message_code: "i",
    table: { bytes: "inner", deeper: { list: ["x", 0.5] }, at: "1970-01-01T00:00:00+00:00" },
    list: [1, "two", true, null, ["three"], { k: "v" }],
  };
  const result = encoded(message({ headers }));
  assert.deepEqual(result.headers, expected);
  assert.deepEqual(JSON.parse(result.frame).headers, expected);
});

Deno.test("encodeReply: plain JSON header values pass through unchanged", () => {
  const headers = { message_code: "i", n: -3, f: 1.5, t: true, f2: false, z: null, s: "text" };
  assert.deepEqual(headersOf(message({ headers })), headers);
});

Deno.test("encodeReply: a table that only looks tagged ({'!': 'decimal'} without a value) does not throw", () => {
  const headers = { message_code: "i", odd: { "!": "decimal" }, odd2: { "!": "decimal", value: "x" } };
  let result: ReturnType<typeof encodeReply> | undefined;
  assert.doesNotThrow(() => {
    result = encodeReply(message({ headers }));
  });
  assert.equal(result?.kind, "reply");
});

Deno.test("encodeReply: a __proto__ header is kept as data and pollutes nothing", () => {
  const headers = JSON.parse(
    '{"message_code": "i", "__proto__": {"polluted": "yes"}, "t": {"__proto__": {"polluted2": "yes"}}}',
  );
  const result = encoded(message({ headers }));
  const plain: Record<string, unknown> = {};
  assert.equal(plain.polluted, undefined);
  assert.equal(plain.polluted2, undefined);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"), false);
  assert.equal(Object.getPrototypeOf(result.headers), Object.prototype);
  assert.equal(result.headers.polluted, undefined);
  assert.ok(Object.hasOwn(result.headers, "__proto__"));
  assert.ok(result.frame.includes('"__proto__":{"polluted":"yes"}'), result.frame);
  assert.ok(result.frame.includes('"t":{"__proto__":{"polluted2":"yes"}}'), result.frame);
  const parsed = JSON.parse(result.frame).headers;
  assert.deepEqual(Object.keys(parsed), ["message_code", "__proto__", "t"]);
});

Deno.test("encodeReply: only own headers count (an inherited message_code is not one)", () => {
  const headers = Object.create({ message_code: ":" }) as Record<string, unknown>;
  headers.command_id = "id-1";
  assertDropped(message({ headers }), /message_code/);
});

Deno.test("headersToJson: converts a table without touching its input", () => {
  const input = { b: utf8.encode("x"), n: 1 };
  assert.deepEqual(headersToJson(input), { b: "x", n: 1 });
  assert.ok(input.b instanceof Uint8Array);
});

Deno.test("isoTimestamp: whole seconds in UTC with +00:00", () => {
  assert.equal(isoTimestamp(T_2026), "2026-11-25T08:10:25+00:00");
  assert.equal(isoTimestamp(T_2026 + 0.5), "2026-11-25T08:10:25+00:00");
  assert.equal(isoTimestamp(0), "1970-01-01T00:00:00+00:00");
});

// ---------------------------------------------------------------- parseClientCommand

function command(text: string, newCommandId?: () => string): ClientCommand {
  const result = parseClientCommand(text, newCommandId ? { newCommandId } : {});
  if (result.kind !== "command") throw new Error(`expected a command, got ${JSON.stringify(result)}`);
  return result;
}

function inputError(text: string) {
  const result = parseClientCommand(text, {
    newCommandId: () => {
      throw new Error("no command id should be made for bad input");
    },
  });
  if (result.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(result)}`);
  assert.equal(typeof result.error, "string");
  assert.ok(result.error.length > 0);
  return result;
}

const frameText = (fields: Record<string, unknown>) => JSON.stringify(fields);

Deno.test("parseClientCommand: a valid CLU client frame", () => {
  assert.deepEqual(
    parseClientCommand('{"consumer":"testactor","command_string":"ping","command_id":"id-1"}'),
    {
      kind: "command",
      consumer: "testactor",
      commandString: "ping",
      commandId: "id-1",
      ack: false,
      track: false,
    },
  );
});

Deno.test("parseClientCommand: the command string is passed on verbatim", () => {
  const text = '  status --verbose "quoted arg"\n';
  assert.equal(
    command(frameText({ consumer: "a", command_string: text, command_id: "1" })).commandString,
    text,
  );
});

Deno.test("parseClientCommand: extra fields are ignored", () => {
  assert.deepEqual(
    command(
      frameText({ consumer: "a", command_string: "ping", command_id: "x", extra: 1, headers: { y: 2 } }),
    ),
    { kind: "command", consumer: "a", commandString: "ping", commandId: "x", ack: false, track: false },
  );
});

Deno.test("parseClientCommand: a missing, null or empty command_id becomes a UUID4", () => {
  for (const extra of [{}, { command_id: null }, { command_id: "" }]) {
    const result = command(frameText({ consumer: "a", command_string: "ping", ...extra }));
    assert.match(result.commandId, UUID4, JSON.stringify(extra));
  }
  const a = command(frameText({ consumer: "a", command_string: "ping" }));
  const b = command(frameText({ consumer: "a", command_string: "ping" }));
  assert.notEqual(a.commandId, b.commandId);
});

Deno.test("parseClientCommand: a missing command_id comes from the injected newCommandId", () => {
  for (const extra of [{}, { command_id: null }, { command_id: "" }]) {
    const result = command(frameText({ consumer: "a", command_string: "ping", ...extra }), () => "made-1");
    assert.equal(result.commandId, "made-1");
  }
});

Deno.test("parseClientCommand: a given command_id does not call newCommandId", () => {
  let calls = 0;
  const result = command(frameText({ consumer: "a", command_string: "ping", command_id: "mine" }), () => {
    calls++;
    return "made";
  });
  assert.equal(result.commandId, "mine");
  assert.equal(calls, 0);
});

Deno.test("parseClientCommand: a numeric command_id is an error that echoes the number", () => {
  const result = inputError(frameText({ consumer: "a", command_string: "ping", command_id: 42 }));
  assert.equal(result.commandId, 42);
  assert.equal(result.consumer, "a");
  assert.match(result.error, /command_id/);
  assert.match(result.error, /string/);
  assert.match(result.error, /"42"/);
});

Deno.test("parseClientCommand: other non-string command_ids are errors with no id to echo", () => {
  for (const id of [true, false, { a: 1 }, [1, 2]]) {
    const result = inputError(frameText({ consumer: "a", command_string: "ping", command_id: id }));
    assert.equal(result.commandId, undefined, JSON.stringify(id));
    assert.match(result.error, /command_id must be a string/, JSON.stringify(id));
  }
  assert.match(inputError(frameText({ consumer: "a", command_string: "x", command_id: [1] })).error, /array/);
  assert.match(
    inputError(frameText({ consumer: "a", command_string: "x", command_id: true })).error,
    /boolean/,
  );
});

Deno.test("parseClientCommand: a command_id longer than the limit is an error, not echoed", () => {
  assert.equal(MAX_COMMAND_ID_LENGTH, 256);
  const ok = "i".repeat(MAX_COMMAND_ID_LENGTH);
  assert.equal(command(frameText({ consumer: "a", command_string: "x", command_id: ok })).commandId, ok);
  const result = inputError(frameText({ consumer: "a", command_string: "x", command_id: `${ok}i` }));
  assert.equal(result.commandId, undefined);
  assert.match(result.error, /command_id/);
  assert.match(result.error, /257/);
  assert.match(result.error, /256/);
});

Deno.test("parseClientCommand: text that is not JSON is an error", () => {
  for (const text of ["", "ping", "{consumer: 'a'}", '{"consumer": "a",', "\u0000"]) {
    const result = inputError(text);
    assert.match(result.error, /not valid JSON/, JSON.stringify(text));
    assert.match(result.error, /"consumer"/);
    assert.equal(result.commandId, undefined);
    assert.equal(result.consumer, undefined);
  }
});

Deno.test("parseClientCommand: JSON that is not an object is an error naming what it is", () => {
  const cases: [string, RegExp][] = [
    ['[{"consumer": "a", "command_string": "b"}]', /array/],
    ["null", /null/],
    ["42", /number/],
    ['"ping"', /string/],
    ["true", /boolean/],
  ];
  for (const [text, kind] of cases) {
    const result = inputError(text);
    assert.match(result.error, kind, text);
    assert.match(result.error, /not an object/, text);
  }
});

Deno.test("parseClientCommand: a missing consumer is an error", () => {
  const result = inputError(frameText({ command_string: "ping", command_id: "c1" }));
  assert.match(result.error, /missing "consumer"/);
  assert.equal(result.commandId, "c1");
  assert.equal(result.consumer, undefined);
});

Deno.test("parseClientCommand: a non-string consumer is an error naming its type", () => {
  const cases: [unknown, string][] = [[5, "number"], [null, "null"], [["a"], "array"], [{ a: 1 }, "object"], [
    true,
    "boolean",
  ]];
  for (const [consumer, type] of cases) {
    const result = inputError(frameText({ consumer, command_string: "ping" }));
    assert.match(result.error, /"consumer" must be a string/, type);
    assert.ok(result.error.includes(type), `${type}: ${result.error}`);
    assert.equal(result.consumer, undefined);
  }
});

Deno.test("parseClientCommand: an empty or white-space consumer is an error", () => {
  for (const consumer of ["", " ", "\t\n"]) {
    const result = inputError(frameText({ consumer, command_string: "ping", command_id: "c2" }));
    assert.match(result.error, /"consumer" is empty/, JSON.stringify(consumer));
    assert.equal(result.consumer, undefined);
    assert.equal(result.commandId, "c2");
  }
});

Deno.test("parseClientCommand: consumers with dots, dashes and underscores are accepted", () => {
  for (const consumer of ["lvm.sp1.ieb", "lvm-ecp", "jaeger_fps", "A1"]) {
    assert.equal(command(frameText({ consumer, command_string: "status" })).consumer, consumer);
  }
});

Deno.test("parseClientCommand: a consumer with white space is an error that names it", () => {
  for (const consumer of ["lvm ecp", " lvmecp", "lvmecp\n", "a\tb"]) {
    const result = inputError(frameText({ consumer, command_string: "status" }));
    assert.match(result.error, /white space/, JSON.stringify(consumer));
    assert.ok(result.error.includes(JSON.stringify(consumer)), result.error);
    assert.equal(result.consumer, undefined, "a malformed name is not echoed as the commander");
  }
});

Deno.test("parseClientCommand: a huge bad consumer name is clipped in the error, not amplified", () => {
  const consumer = "x ".repeat(20_000);
  const result = inputError(frameText({ consumer, command_string: "status" }));
  assert.ok(result.error.length < 200, `error is ${result.error.length} characters`);
  assert.equal(result.consumer, undefined);
});

Deno.test("parseClientCommand: a routing key command.<consumer> over 255 bytes is an error", () => {
  // "command." is 8 bytes, so 247 bytes of consumer is the most that fits.
  const fits = "a".repeat(247);
  assert.equal(command(frameText({ consumer: fits, command_string: "x" })).consumer, fits);
  const result = inputError(frameText({ consumer: `${fits}a`, command_string: "x" }));
  assert.match(result.error, /too long/);
  assert.match(result.error, /255 bytes/);
  // Bytes, not characters: 124 two-byte characters are 248 bytes.
  assert.match(inputError(frameText({ consumer: "é".repeat(124), command_string: "x" })).error, /too long/);
  assert.equal(
    command(frameText({ consumer: "é".repeat(123), command_string: "x" })).consumer,
    "é".repeat(123),
  );
});

Deno.test("parseClientCommand: a missing command_string is an error", () => {
  const result = inputError(frameText({ consumer: "lvmecp", command_id: "c3" }));
  assert.match(result.error, /missing "command_string"/);
  assert.equal(result.consumer, "lvmecp");
  assert.equal(result.commandId, "c3");
});

Deno.test("parseClientCommand: a non-string command_string is an error naming its type", () => {
  const cases: [unknown, string][] = [[1, "number"], [null, "null"], [["status"], "array"], [{}, "object"]];
  for (const [commandString, type] of cases) {
    const result = inputError(frameText({ consumer: "a", command_string: commandString }));
    assert.match(result.error, /"command_string" must be a string/, type);
    assert.ok(result.error.includes(type), `${type}: ${result.error}`);
  }
});

Deno.test("parseClientCommand: an empty or white-space command_string is an error (CLU would never answer)", () => {
  for (const commandString of ["", " ", "\n\t "]) {
    const result = inputError(frameText({ consumer: "a", command_string: commandString, command_id: "c4" }));
    assert.match(result.error, /"command_string" is empty/, JSON.stringify(commandString));
    assert.equal(result.commandId, "c4");
    assert.equal(result.consumer, "a");
  }
});

Deno.test("parseClientCommand: a numeric command_id is echoed even when another field is wrong", () => {
  const result = inputError(frameText({ consumer: "a", command_id: 7 }));
  assert.equal(result.commandId, 7);
  assert.match(result.error, /command_string/);
});

Deno.test("parseClientCommand: __proto__ and constructor keys neither pollute nor supply fields", () => {
  const hostile = [
    '{"__proto__": {"consumer": "evil", "command_string": "rm", "polluted": true}}',
    '{"constructor": {"prototype": {"consumer": "evil", "polluted": true}}, "command_string": "x"}',
    '{"consumer": "a", "__proto__": {"command_string": "evil", "polluted": true}}',
  ];
  for (const text of hostile) {
    const result = inputError(text);
    assert.match(result.error, /missing "(consumer|command_string)"/, text);
  }
  const ok = command(
    '{"consumer": "a", "command_string": "x", "__proto__": {"command_id": "evil", "polluted": true}}',
    () => "fresh",
  );
  assert.equal(ok.commandId, "fresh");
  const plain: Record<string, unknown> = {};
  assert.equal(plain.polluted, undefined);
  assert.equal(plain.consumer, undefined);
  assert.equal(Object.getPrototypeOf(plain), Object.prototype);
  assert.equal(Object.hasOwn(Object.prototype, "polluted"), false);
});

// ---------------------------------------------------------------- gateway-made frames

const GATEWAY = { name: "amqp-client-0123456789ab", exchange: "sdss_exchange" };

Deno.test("gatewayReplyFrame: a CLU-shaped e reply from the gateway", () => {
  const text = gatewayReplyFrame(GATEWAY, { code: "e", error: "frame is not valid JSON", now: T_2023 });
  const frame = JSON.parse(text);
  assert.deepEqual(Object.keys(frame), FRAME_KEYS);
  assert.match(frame.message_id, HEX32);
  assert.deepEqual({ ...frame, message_id: "x" }, {
    headers: {
      command_id: null,
      commander_id: null,
      internal: false,
      message_code: "e",
      sender: "amqp-client-0123456789ab",
    },
    exchange: "sdss_exchange",
    message_id: "x",
    routing_key: "reply.amqp-client-0123456789ab",
    timestamp: "2023-05-25T19:25:05+00:00",
    body: { error: "frame is not valid JSON" },
  });
  assert.deepEqual(Object.keys(frame.headers), [
    "command_id",
    "commander_id",
    "internal",
    "message_code",
    "sender",
  ]);
});

Deno.test("gatewayReplyFrame: an f reply for a command names its id, commander and sender", () => {
  const frame = JSON.parse(gatewayReplyFrame(GATEWAY, {
    code: "f",
    error: "broker unavailable",
    commandId: "id-5",
    consumer: "lvmecp",
    sender: "lvmecp",
    now: T_2026,
  }));
  assert.deepEqual(frame.headers, {
    command_id: "id-5",
    commander_id: "amqp-client-0123456789ab.lvmecp",
    internal: false,
    message_code: "f",
    sender: "lvmecp",
  });
  assert.equal(frame.body.error, "broker unavailable");
  assert.equal(frame.timestamp, "2026-11-25T08:10:25+00:00");
  assert.equal(frame.routing_key, "reply.amqp-client-0123456789ab");
  assert.equal(frame.exchange, "sdss_exchange");
});

Deno.test("gatewayReplyFrame: sender defaults to the gateway's name, command_id may be a number", () => {
  const frame = JSON.parse(
    gatewayReplyFrame(GATEWAY, { code: "e", error: "x", commandId: 42, consumer: "a" }),
  );
  assert.equal(frame.headers.sender, GATEWAY.name);
  assert.equal(frame.headers.command_id, 42);
  assert.equal(frame.headers.commander_id, `${GATEWAY.name}.a`);
});

Deno.test("gatewayReplyFrame: timestamp defaults to now and message_id is fresh each time", () => {
  const before = Math.floor(Date.now() / 1000) * 1000;
  const a = JSON.parse(gatewayReplyFrame(GATEWAY, { code: "e", error: "x" }));
  const b = JSON.parse(gatewayReplyFrame(GATEWAY, { code: "e", error: "x" }));
  const after = Date.now();
  assert.match(a.timestamp, ISO_UTC);
  const at = new Date(a.timestamp).getTime();
  assert.ok(at >= before && at <= after, `${a.timestamp} not between ${before} and ${after}`);
  assert.match(a.message_id, HEX32);
  assert.match(b.message_id, HEX32);
  assert.notEqual(a.message_id, b.message_id);
});

Deno.test("gatewayReplyFrame: an error text with quotes and newlines stays valid JSON", () => {
  const error = 'bad "input"\nline 2 \u2028 ü';
  assert.equal(JSON.parse(gatewayReplyFrame(GATEWAY, { code: "e", error })).body.error, error);
});

Deno.test("newMessageId: 32 lowercase hex digits, new each time", () => {
  const ids = new Set(Array.from({ length: 50 }, () => newMessageId()));
  assert.equal(ids.size, 50);
  for (const id of ids) assert.match(id, HEX32);
});

const PING: ClientCommand = {
  kind: "command",
  consumer: "testactor",
  commandString: "ping",
  commandId: "id-1",
  ack: false,
  track: false,
};

Deno.test("commandHeaders: exactly CLU's command headers", () => {
  const headers = commandHeaders(GATEWAY, PING);
  assert.deepEqual(headers, {
    command_id: "id-1",
    commander_id: "amqp-client-0123456789ab.testactor",
    internal: false,
    write_to_log: true,
  });
  assert.deepEqual(Object.keys(headers), ["command_id", "commander_id", "internal", "write_to_log"]);
});

Deno.test("commandBody: exactly {command_string}", () => {
  assert.deepEqual(JSON.parse(commandBody(PING)), { command_string: "ping" });
  const tricky = 'set "x" \\ y\nz ü';
  const parsed = JSON.parse(commandBody({ ...PING, commandString: tricky }));
  assert.deepEqual(Object.keys(parsed), ["command_string"]);
  assert.equal(parsed.command_string, tricky);
});

Deno.test("unroutableReply: the command's headers plus message_code f and sender, and CLU's error text", () => {
  const reply = unroutableReply(GATEWAY, { ...PING, consumer: "ghost" });
  assert.deepEqual(reply.headers, {
    command_id: "id-1",
    commander_id: "amqp-client-0123456789ab.ghost",
    internal: false,
    write_to_log: true,
    message_code: "f",
    sender: "ghost",
  });
  assert.deepEqual(Object.keys(reply.headers), [
    "command_id",
    "commander_id",
    "internal",
    "write_to_log",
    "message_code",
    "sender",
  ]);
  assert.deepEqual(JSON.parse(reply.body), { error: "Failed routing message to consumer 'ghost'." });
  assert.deepEqual(Object.keys(JSON.parse(reply.body)), ["error"]);
});

Deno.test("unroutableReply: published as CLU does, it becomes the frame PROTOCOL.md describes", () => {
  const cmd: ClientCommand = {
    kind: "command",
    consumer: "ghost",
    commandString: "ping",
    commandId: "id-7",
    ack: false,
    track: false,
  };
  const reply = unroutableReply(GATEWAY, cmd);
  const frame = frameOf({
    fields: { exchange: GATEWAY.exchange, routingKey: `reply.${GATEWAY.name}` },
    properties: { headers: reply.headers, correlationId: cmd.commandId, messageId: "0".repeat(32) },
    content: utf8.encode(reply.body),
  });
  assert.deepEqual(frame, {
    headers: {
      command_id: "id-7",
      commander_id: "amqp-client-0123456789ab.ghost",
      internal: false,
      write_to_log: true,
      message_code: "f",
      sender: "ghost",
    },
    exchange: "sdss_exchange",
    message_id: "0".repeat(32),
    routing_key: "reply.amqp-client-0123456789ab",
    timestamp: null,
    body: { error: "Failed routing message to consumer 'ghost'." },
  });
});

Deno.test("parseClientCommand: v1 fields ack, track and timeout are read and checked", () => {
  const parsed = command(
    frameText({
      consumer: "a",
      command_string: "ping",
      command_id: "x",
      ack: true,
      track: true,
      timeout: 2.5,
    }),
  );
  assert.equal(parsed.ack, true);
  assert.equal(parsed.track, true);
  assert.equal(parsed.timeoutSeconds, 2.5);
  for (
    const [extra, pattern] of [
      [{ ack: "yes" }, /"ack" must be true or false/],
      [{ track: 1 }, /"track" must be true or false/],
      [{ timeout: 0 }, /"timeout" must be a number of seconds above 0/],
      [{ timeout: 4000 }, /at most 3600/],
      [{ timeout: "5" }, /"timeout"/],
    ] as const
  ) {
    const result = parseClientCommand(frameText({ consumer: "a", command_string: "ping", ...extra }));
    assert.equal(result.kind, "error");
    assert.match((result as { error: string }).error, pattern);
  }
});

Deno.test("parseClientCommand: a frame with the clu-ws key is a control frame, never a command", () => {
  const result = parseClientCommand('{"clu-ws":"subscribe","consumer":"a","command_string":"ping"}');
  assert.equal(result.kind, "control");
});

Deno.test("encodeReply: a burst's repeated headers, exchange, routing key and second are each reply's own", () => {
  // The encoder remembers the last reply's headers and strings; every change must still show.
  const headers = { command_id: null, commander_id: null, internal: false, message_code: "i", sender: "lvm" };
  const sequence: ReplyParts[] = [
    { headers, timestamp: T_2026 },
    { headers: { ...headers }, timestamp: T_2026 },
    { headers: { ...headers, sender: "tel" }, timestamp: T_2026 + 1, routingKey: "reply.other" },
    { headers: { ...headers, sender: "tel", extra: 1 }, exchange: "lvm_exchange" },
    { headers: { ...headers, message_code: ":", command_id: "id-1" }, timestamp: T_2023 },
    { headers: { ...headers, text: utf8.encode("bytes") }, timestamp: T_2023 },
    { headers: { ...headers, text: utf8.encode("other bytes") }, timestamp: T_2023 },
    { headers: { ...headers, internal: true } },
  ];
  for (const parts of sequence) {
    const msg = message({ correlationId: "id-1", ...parts });
    const frame = frameOf(msg);
    assert.deepEqual(frame.headers, headersToJson(msg.properties.headers!));
    assert.equal(frame.exchange, parts.exchange ?? "sdss_exchange");
    assert.equal(frame.routing_key, parts.routingKey ?? "reply.amqp-client-787e6de10fec.testactor");
    assert.equal(frame.timestamp, parts.timestamp === undefined ? null : isoTimestamp(parts.timestamp));
  }
  // Shared by the replies that repeat them, so frozen: nobody may change another reply's headers.
  const shared = encoded(message({ headers, correlationId: "id-1" })).headers;
  assert.ok(Object.isFrozen(shared));
  assert.equal(encoded(message({ headers: { ...headers }, correlationId: "id-1" })).headers, shared);
});
