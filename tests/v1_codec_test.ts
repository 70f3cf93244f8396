/**
 * Unit tests of the clu-ws v1 codec: the encoders of the gateway's control
 * frames (exact text, documented key order) and the validation of the control
 * frames clients send.
 */

import assert from "node:assert/strict";
import {
  CONTROL_KEY,
  encodeAccepted,
  encodeBroker,
  encodeCommandControl,
  encodeDescribe,
  encodeDone,
  encodeError,
  encodeGap,
  encodeOptions,
  encodePublished,
  encodeResumed,
  encodeState,
  encodeSubscribed,
  encodeWelcome,
  type ServerControlFrame,
  SUBPROTOCOL,
  TOKEN_PROTOCOL_PREFIX,
  V1_SUBPROTOCOL,
} from "../lib/protocol/v1.ts";
import { parseControl, parseSubscription } from "../lib/protocol/v1_parse.ts";

Deno.test("v1: the subprotocol names and the control key", () => {
  assert.equal(V1_SUBPROTOCOL, "clu-ws.v1");
  assert.equal(SUBPROTOCOL, "clu-ws");
  assert.equal(TOKEN_PROTOCOL_PREFIX, "token.");
  assert.equal(CONTROL_KEY, "clu-ws");
});

Deno.test("v1: each encoder writes its frame with the kind first and the documented keys in order", () => {
  const cases: [string, string][] = [
    [
      encodeWelcome({
        version: 1,
        epoch: "e-1",
        seq: 7,
        name: "gw",
        exchange: "sdss_exchange",
        broker: "up",
        role: "command",
      }),
      '{"clu-ws":"welcome","version":1,"epoch":"e-1","seq":7,"name":"gw","exchange":"sdss_exchange","broker":"up","role":"command"}',
    ],
    [
      encodeSubscribed({ id: 1, filter: { actors: ["lvm.*"], mine: true } }),
      '{"clu-ws":"subscribed","id":1,"filter":{"actors":["lvm.*"],"mine":true}}',
    ],
    [
      encodeResumed({ id: "r", from: 3, to: 9, count: 2 }),
      '{"clu-ws":"resumed","id":"r","from":3,"to":9,"count":2}',
    ],
    [
      encodeGap({ id: null, reason: "gone", epoch: "e-2", oldest: 5, latest: 9 }),
      '{"clu-ws":"gap","id":null,"reason":"gone","epoch":"e-2","oldest":5,"latest":9}',
    ],
    [encodeOptions({ id: 4, batch: true }), '{"clu-ws":"options","id":4,"batch":true}'],
    [encodeBroker("down"), '{"clu-ws":"broker","state":"down"}'],
    [
      encodeAccepted({ command_id: "c-1", consumer: "lvmecp" }),
      '{"clu-ws":"accepted","command_id":"c-1","consumer":"lvmecp"}',
    ],
    [encodePublished({ command_id: "c-1" }), '{"clu-ws":"published","command_id":"c-1"}'],
    [
      encodeDone({ command_id: "c-1", consumer: "lvmecp", status: "done", code: ":", elapsed_ms: 84 }),
      '{"clu-ws":"done","command_id":"c-1","consumer":"lvmecp","status":"done","code":":","elapsed_ms":84}',
    ],
    [
      encodeDone({
        command_id: "c-2",
        consumer: "x",
        status: "timeout",
        code: null,
        elapsed_ms: 1000,
        error: "no end within 1 s",
      }),
      '{"clu-ws":"done","command_id":"c-2","consumer":"x","status":"timeout","code":null,"elapsed_ms":1000,"error":"no end within 1 s"}',
    ],
    [
      encodeError({ id: { any: "json" }, error: "bad" }),
      '{"clu-ws":"error","id":{"any":"json"},"error":"bad"}',
    ],
  ];
  for (const [text, expected] of cases) {
    assert.equal(text, expected);
    const frame = JSON.parse(text) as ServerControlFrame;
    assert.equal(typeof frame[CONTROL_KEY], "string");
  }
});

Deno.test("v1: the state frame splices in the actors' JSON as encoded", () => {
  const actors = '{"lvmecp":{"last_seen":"t","keywords":{"dome":{"value":1,"seen":"t","code":"i"}}}}';
  const text = encodeState(actors, { id: 3, seq: 12 });
  assert.equal(text, `{"clu-ws":"state","id":3,"seq":12,"actors":${actors}}`);
  assert.deepEqual(JSON.parse(text).actors.lvmecp.keywords.dome.value, 1);
  assert.equal(
    encodeState("{}", { id: 'a"b', seq: 0 }),
    '{"clu-ws":"state","id":"a\\"b","seq":0,"actors":{}}',
  );
});

Deno.test("v1: describe parses an actor name and its answer splices in the description", () => {
  assert.deepEqual(parseControl({ [CONTROL_KEY]: "describe", id: 4, actor: "lvmecp" }), {
    op: "describe",
    id: 4,
    actor: "lvmecp",
  });
  for (const actor of [undefined, "", 7, "x".repeat(256)]) {
    const parsed = parseControl({ [CONTROL_KEY]: "describe", id: 5, actor });
    assert.equal(parsed.op, "error");
    assert.match((parsed as { error: string }).error, /describe needs "actor"/);
  }
  const description = '{"actor":"a","status":"ready","model":{"name":"x"},"schema":null,"help":["Usage"]}';
  assert.equal(
    encodeDescribe(description, { id: "q" }),
    '{"clu-ws":"describe","id":"q","actor":"a","status":"ready","model":{"name":"x"},"schema":null,"help":["Usage"]}',
  );
  assert.equal(JSON.parse(encodeDescribe(description, { id: undefined })).id, null);
});

Deno.test("v1: encodeCommandControl picks the encoder by kind", () => {
  assert.equal(
    encodeCommandControl({ "clu-ws": "published", command_id: "x" }),
    encodePublished({ command_id: "x" }),
  );
  assert.equal(
    encodeCommandControl({ "clu-ws": "accepted", command_id: "x", consumer: "a" }),
    encodeAccepted({ command_id: "x", consumer: "a" }),
  );
});

Deno.test("v1: valid control frames parse to their operation, with the id echoed (null when absent)", () => {
  assert.deepEqual(
    parseControl({ "clu-ws": "subscribe", id: 1, actors: ["a*"], codes: [":"], mine: false }),
    {
      op: "subscribe",
      id: 1,
      subscription: { actors: ["a*"], codes: [":"] },
    },
  );
  assert.deepEqual(parseControl({ "clu-ws": "subscribe", keys: null }), {
    op: "subscribe",
    id: null,
    subscription: {},
  });
  assert.deepEqual(parseControl({ "clu-ws": "resume", id: "x", epoch: "e", seq: 0 }), {
    op: "resume",
    id: "x",
    epoch: "e",
    seq: 0,
  });
  assert.deepEqual(parseControl({ "clu-ws": "state" }), { op: "state", id: null, actors: undefined });
  assert.deepEqual(parseControl({ "clu-ws": "state", actors: ["lvm.*"] }), {
    op: "state",
    id: null,
    actors: ["lvm.*"],
  });
  assert.deepEqual(parseControl({ "clu-ws": "options", id: 2, batch: true }), {
    op: "options",
    id: 2,
    batch: true,
  });
  assert.deepEqual(parseControl({ "clu-ws": "options" }), { op: "options", id: null, batch: undefined });
});

Deno.test("v1: malformed control frames are errors that say what was wrong", () => {
  const error = (fields: Record<string, unknown>) => {
    const parsed = parseControl(fields);
    assert.equal(parsed.op, "error");
    return parsed.op === "error" ? parsed.error : "";
  };
  assert.equal(
    error({ "clu-ws": "subscribe", actors: "lvm" }),
    `"actors" must be a list of non-empty strings`,
  );
  assert.equal(error({ "clu-ws": "subscribe", codes: [""] }), `"codes" must be a list of non-empty strings`);
  assert.match(
    error({ "clu-ws": "subscribe", keys: Array(65).fill("a") }),
    /^"keys" has 65 entries; at most 64 are accepted; subscribe to fewer, shorter patterns$/,
  );
  assert.equal(error({ "clu-ws": "subscribe", mine: "yes" }), `"mine" must be true or false`);
  for (
    const bad of [{}, { epoch: "e" }, { epoch: "e", seq: -1 }, { epoch: "e", seq: 1.5 }, { epoch: 1, seq: 1 }]
  ) {
    assert.equal(
      error({ "clu-ws": "resume", ...bad }),
      `resume needs "epoch" (text) and "seq" (a whole number) from the frames received, or "epoch" and "since" (ms since 1970)`,
    );
  }
  for (const since of [-1, 1.5, "yesterday", null]) {
    assert.equal(
      error({ "clu-ws": "resume", epoch: "e", since }),
      `resume "since" must be a time in ms since 1970 (a whole number)`,
    );
  }
  assert.deepEqual(parseControl({ "clu-ws": "resume", id: 3, epoch: "stream:x", since: 1733300000000 }), {
    op: "resume",
    id: 3,
    epoch: "stream:x",
    seq: 0,
    since: 1733300000000,
  });
  assert.equal(error({ "clu-ws": "state", actors: "x" }), `"actors" must be a list of actor names or globs`);
  assert.equal(error({ "clu-ws": "options", batch: 1 }), `"batch" must be true or false`);
  assert.equal(
    error({ "clu-ws": "frobnicate" }),
    `unknown operation "frobnicate"; use subscribe, resume, state, options, series or describe (docs/protocol.md)`,
  );
  const withId = parseControl({ "clu-ws": "nope", id: 42 });
  assert.equal(withId.id, 42);
});

Deno.test("v1: parseSubscription keeps only the fields given", () => {
  assert.deepEqual(parseSubscription({ "clu-ws": "subscribe", id: 1 }), {});
  assert.deepEqual(parseSubscription({ mine: true, keys: ["reply.#"] }), { keys: ["reply.#"], mine: true });
});
