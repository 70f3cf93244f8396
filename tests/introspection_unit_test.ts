// The gateway's introspection on its own (lib/introspection/), with a fake publisher in place of RabbitMQ:
// which replies it takes off the reply path, at most 4 actors asked at once, the bounds in actors and
// bytes, timeouts and their backoff, a lost link, an unroutable actor, the rules, and no timer left at
// stop. tests/introspection_test.ts runs the same code against the real broker.

import assert from "node:assert/strict";
import { until } from "./helpers/broker.ts";
import type { PublishOutcome, PublishProperties } from "../lib/broker/link.ts";
import { Introspector, type IntrospectorOptions } from "../lib/introspection/introspector.ts";
import { extractAnswer } from "../lib/introspection/answers.ts";
import type { AmqpMessageLike } from "../lib/protocol/clu.ts";

const identity = { name: "gw", exchange: "x" };
const encoder = new TextEncoder();

interface Published {
  routingKey: string;
  command: string;
  properties: PublishProperties;
}

/** A publisher that records every publish and answers with `outcome` (confirmed by default). */
function fakePublisher(outcome: () => PublishOutcome = () => ({ ok: true, returned: false })) {
  const published: Published[] = [];
  return {
    published,
    publish(routingKey: string, content: string, properties: PublishProperties): Promise<PublishOutcome> {
      published.push({ routingKey, command: JSON.parse(content).command_string, properties });
      return Promise.resolve(outcome());
    },
  };
}

function introspector(overrides: Partial<IntrospectorOptions> = {}, publisher = fakePublisher()) {
  const instance = new Introspector({
    enabled: true,
    publisher,
    identity,
    denial: () => undefined,
    timeoutMs: 5_000,
    maxAnswerBytes: 64 * 1024,
    cacheBytes: 1024 * 1024,
    ...overrides,
  });
  return { instance, publisher };
}

/** The reply `actor` would send to the published command `to`. */
function replyTo(to: Published, code: string, body: unknown, sender?: string): AmqpMessageLike {
  const actor = to.routingKey.slice("command.".length);
  return {
    fields: { exchange: "x", routingKey: `reply.gw.${actor}` },
    properties: {
      headers: {
        command_id: to.properties.correlationId,
        commander_id: `gw.${actor}`,
        message_code: code,
        sender: sender ?? actor,
      },
      correlationId: to.properties.correlationId,
    },
    content: encoder.encode(JSON.stringify(body)),
  };
}

const MODEL = { command_model: { name: "command-parser", params: [], commands: {} } };
const ANSWERS: Record<string, unknown> = {
  "get-command-model": MODEL,
  get_schema: {
    schema: JSON.stringify({ type: "object", properties: { t: { type: "number", unit: "K" } } }),
  },
  help: { help: ["Usage: a [OPTIONS] COMMAND [ARGS]..."] },
};

/** Answers every command published and not answered yet, as a CLU click actor (once each), until none is left. */
async function answerAll(instance: Introspector, published: Published[], from = 0): Promise<number> {
  let next = from;
  for (let turns = 0;; turns++) {
    // One turn of the event loop: the rounds' promise chains publish their next command (not a timing wait).
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (next >= published.length && instance.inFlight === 0) break;
    if (turns > 1000) throw new Error(`still ${instance.inFlight} commands in flight after 1000 turns`);
    if (next < published.length) {
      const command = published[next++];
      assert.equal(instance.claim(replyTo(command, ">", {})), true);
      assert.equal(instance.claim(replyTo(command, ":", ANSWERS[command.command])), true);
    }
  }
  return next;
}

Deno.test("introspection: only replies to its own commands are taken, late ones too", async () => {
  const { instance, publisher } = introspector();
  instance.seen("a", "i", { text: "hi" });
  await until("the first command", () => publisher.published.length === 1);
  const [first] = publisher.published;
  assert.equal(first.routingKey, "command.a");
  assert.equal(first.command, "get-command-model");
  assert.equal(first.properties.headers.internal, true);
  assert.equal(first.properties.headers.commander_id, "gw.a");
  assert.equal(first.properties.replyTo, "gw_replies");
  assert.equal(first.properties.mandatory, true);
  // A client's reply is not taken; another gateway's question is (no client asked for it).
  const other = replyTo(first, ":", {});
  other.properties.headers!.command_id = "c-1";
  assert.equal(instance.claim(other), false);
  assert.equal(instance.claim({ ...other, properties: { headers: { message_code: ":" } } }), false);
  other.properties.headers!.command_id = "clu-ws-introspection-0other0-1";
  assert.equal(instance.claim(other), true);
  // A command to `a` reaches no other actor, but a reply from another sender under our id is swallowed.
  assert.equal(instance.claim(replyTo(first, ":", MODEL, "a.b")), true);
  assert.equal(instance.describe("a").status, "pending");
  await answerAll(instance, publisher.published);
  assert.equal(instance.describe("a").status, "ready");
  // A late, duplicate reply is taken off the path too.
  assert.equal(instance.claim(replyTo(first, ":", MODEL)), true);
  assert.deepEqual(JSON.parse(instance.describeJson("a")).schema.properties.t.unit, "K");
  instance.stop();
});

Deno.test("introspection: at most 4 actors at once; each asked once however often it speaks", async () => {
  const { instance, publisher } = introspector();
  for (let i = 0; i < 10; i++) instance.seen(`actor${i}`, "i", {});
  await until("4 commands", () => publisher.published.length === 4);
  assert.equal(instance.inFlight, 4);
  for (let i = 0; i < 10; i++) instance.seen(`actor${i}`, "i", { text: "again" });
  assert.equal(publisher.published.length, 4);
  await answerAll(instance, publisher.published);
  assert.equal(publisher.published.length, 30, "3 commands for each of 10 actors");
  for (let i = 0; i < 10; i++) instance.seen(`actor${i}`, ":", { text: "more" });
  await Promise.resolve();
  assert.equal(publisher.published.length, 30);
  // A new version asks again; the first version seen does not.
  instance.seen("actor1", "i", { version: "1.0" });
  instance.seen("actor1", "i", { version: "1.0" });
  await Promise.resolve();
  assert.equal(publisher.published.length, 30);
  instance.seen("actor1", "i", { version: "1.1" });
  await until("asked again", () => publisher.published.length === 31);
  instance.stop();
});

Deno.test("introspection: the rules, names that are no actor, failed-routing replies, and off", async () => {
  const { instance, publisher } = introspector({
    denial: (actor) =>
      actor.startsWith("lvm")
        ? "actor 'lvm' is denied by --deny-actor 'lvm'; the command was not sent"
        : undefined,
  });
  instance.seen("lvm.sp1", "i", {});
  instance.seen("has space", "i", {});
  instance.seen("a..b", "i", {});
  instance.seen("ghost", "f", { error: "Failed routing message to consumer 'ghost'." });
  await Promise.resolve();
  assert.equal(publisher.published.length, 0);
  assert.match(String(instance.describe("lvm.sp1").reason), /does not ask it.*--deny-actor 'lvm'$/);
  assert.equal(instance.describe("ghost").status, "none");
  instance.stop();
  const off = introspector({ enabled: false });
  off.instance.seen("a", "i", {});
  assert.equal(off.publisher.published.length, 0);
  assert.match(String(off.instance.describe("a").reason), /--introspection off/);
});

Deno.test("introspection: answers over the byte bound are refused; the cache forgets the least recently used", async () => {
  // An actor's three answers below are 155 bytes of JSON text: two of them do not fit in 200.
  const { instance, publisher } = introspector({ maxAnswerBytes: 2048, cacheBytes: 200 });
  instance.seen("big", "i", {});
  await until("big's command", () => publisher.published.length === 1);
  const padded = { command_model: { name: "x", params: [], help: "x".repeat(4000) } };
  assert.equal(instance.claim(replyTo(publisher.published[0], ":", padded)), true);
  let done = await answerAll(instance, publisher.published, 1);
  const big = instance.describe("big");
  assert.equal(big.model, undefined);
  assert.match(String(big.reason), /over --introspection-max-bytes \(2048\)/);
  // Two actors whose answers do not fit together: the one used least recently goes.
  instance.seen("first", "i", {});
  done = await answerAll(instance, publisher.published, done);
  assert.equal(instance.describe("first").status, "ready");
  instance.seen("second", "i", {});
  await answerAll(instance, publisher.published, done);
  assert.equal(instance.describe("second").status, "ready");
  const first = instance.describe("first");
  assert.equal(first.model, undefined);
  assert.match(String(first.reason), /forgotten to stay within --introspection-cache-bytes/);
  instance.stop();
});

Deno.test("introspection: at most maxActors are tracked; the least recently used idle one goes", async () => {
  const { instance, publisher } = introspector({ maxActors: 2 });
  instance.seen("a", "i", {});
  instance.seen("b", "i", {});
  await answerAll(instance, publisher.published);
  instance.describe("a"); // used: b is now the least recently used
  instance.seen("c", "i", {});
  await answerAll(instance, publisher.published, 6);
  assert.equal(instance.describe("b").status, "none");
  assert.equal(instance.describe("a").status, "ready");
  assert.equal(instance.describe("c").status, "ready");
  instance.stop();
});

Deno.test("introspection: no answer → timeout and backoff; a lost link or an unroutable actor → asked when heard again", async () => {
  let now = 1_000_000;
  const { instance, publisher } = introspector({ timeoutMs: 30, now: () => now });
  instance.seen("quiet", "i", {});
  await until("the timeout", () => instance.describe("quiet").status === "none");
  assert.equal(publisher.published.length, 1, "no get_schema nor help after no answer");
  assert.match(
    String(instance.describe("quiet").reason),
    /no answer to get-command-model within 0.03 s.*after 60 s/,
  );
  instance.seen("quiet", "i", {});
  assert.equal(publisher.published.length, 1, "not before the backoff");
  now += 60_001;
  instance.seen("quiet", "i", {});
  await until("asked again", () => publisher.published.length === 2);
  await until("the second timeout", () => instance.describe("quiet").status === "none");
  assert.match(String(instance.describe("quiet").reason), /after 120 s/, "the backoff doubles");

  // The link is lost while asking: asked again as soon as the actor is heard from.
  instance.seen("busy", "i", {});
  await until("busy's command", () => publisher.published.length === 3);
  instance.linkLost();
  await until("busy given up", () => instance.describe("busy").status === "none");
  assert.match(String(instance.describe("busy").reason), /link was lost/);
  instance.seen("busy", "i", {});
  await until("busy asked again", () => publisher.published.length === 4);
  instance.stop();

  // Unroutable (no command queue: gone, or a sender that is no actor): asked again when heard from, after a
  // backoff that doubles, never with each of its replies.
  let later = 5_000_000;
  const gone = introspector({ now: () => later }, fakePublisher(() => ({ ok: true, returned: true })));
  gone.instance.seen("away", "i", {});
  await until("unroutable", () => gone.instance.describe("away").status === "none");
  assert.match(String(gone.instance.describe("away").reason), /not running.*after 10 s/);
  for (let i = 0; i < 50; i++) gone.instance.seen("away", "i", {});
  assert.equal(
    gone.publisher.published.length,
    1,
    "50 more replies from it: not asked again before the backoff",
  );
  later += 10_001;
  gone.instance.seen("away", "i", {});
  await until("asked when heard after the backoff", () => gone.publisher.published.length === 2);
  await until("unroutable again", () => gone.instance.describe("away").status === "none");
  assert.match(String(gone.instance.describe("away").reason), /after 20 s/, "the backoff doubles");
  gone.instance.stop();
});

Deno.test("introspection answers: the model, the schema string parsed, help lines; anything else refused", () => {
  assert.deepEqual(extractAnswer("get-command-model", JSON.stringify(MODEL)), {
    ok: true,
    json: JSON.stringify(MODEL.command_model),
  });
  assert.equal(extractAnswer("get_schema", JSON.stringify(ANSWERS.get_schema)).ok, true);
  assert.equal(extractAnswer("get_schema", JSON.stringify({ schema: { type: "object" } })).ok, true);
  assert.equal(extractAnswer("help", JSON.stringify({ help: "one line" })).ok, true);
  for (
    const [command, body] of [
      ["get-command-model", "not json"],
      ["get-command-model", "[]"],
      ["get-command-model", JSON.stringify({ command_model: { name: "x" } })],
      ["get_schema", JSON.stringify({ schema: "{not json" })],
      ["get_schema", JSON.stringify({ schema: 5 })],
      ["help", JSON.stringify({ help: [1, 2] })],
    ] as const
  ) {
    assert.equal(extractAnswer(command, body).ok, false, `${command} ${body}`);
  }
});
