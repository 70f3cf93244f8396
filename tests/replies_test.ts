// The reply path (lib/replies/replies.ts) on its own: a fake hub that records what it is handed, and
// the real history and actor state. No broker: the messages are built as amqplib hands them over.

import assert from "node:assert/strict";
import { ActorState } from "../lib/replies/actor_state.ts";
import type { AmqpMessageLike } from "../lib/protocol/clu.ts";
import type { Delivery } from "../lib/clients/hub.ts";
import { History } from "../lib/replies/history.ts";
import { newEpoch, Replies, type ReplyObserver, v1ReplyFrame } from "../lib/replies/replies.ts";

const encoder = new TextEncoder();

function message(
  headers: Record<string, unknown>,
  body: unknown,
  { routingKey = "reply.gw.cmd", correlationId }: { routingKey?: string; correlationId?: string } = {},
): AmqpMessageLike {
  return {
    fields: { exchange: "sdss_exchange", routingKey },
    properties: { headers, messageId: crypto.randomUUID(), timestamp: 1_700_000_000, correlationId },
    content: encoder.encode(typeof body === "string" ? body : JSON.stringify(body)),
  };
}

/** Everything the parts around the reply path saw, in order. */
function world(observers = 1) {
  const events: string[] = [];
  const delivered: Delivery[] = [];
  const counted: boolean[] = [];
  const seen: Array<Parameters<ReplyObserver["observe"]>> = [];
  const history = new History({ maxEntries: 100, maxAgeSeconds: 600, maxBytes: 1 << 20 });
  const state = new ActorState();
  const hub = {
    size: 3,
    deliver(delivery: Delivery) {
      events.push(`hub ${delivery.meta.code}`);
      delivered.push(delivery);
    },
  };
  const metrics = { reply: (forwarded: boolean) => void counted.push(forwarded) };
  const list: ReplyObserver[] = Array.from({ length: observers }, (_, i) => ({
    observe(...args: Parameters<ReplyObserver["observe"]>) {
      events.push(`observer ${i} ${args[2]}`);
      if (i === 0) seen.push(args);
    },
  }));
  const replies = new Replies({
    history,
    state,
    hub,
    metrics,
    observers: list,
    startedAt: 1_700_000_000_000,
  });
  return { replies, history, state, events, delivered, counted, seen };
}

Deno.test("replies: seq goes up by one per delivered reply, and the v1 frame is {seq} + the CLU frame's fields", () => {
  const { replies, delivered, history } = world();
  assert.equal(replies.latestSeq, 0);
  for (let i = 1; i <= 3; i++) {
    replies.receive(message({ message_code: "i", sender: "lvm", command_id: null }, { n: i }));
    assert.equal(replies.latestSeq, i);
  }
  assert.equal(delivered.length, 3);
  delivered.forEach((delivery, i) => {
    assert.equal(delivery.v1, `{"seq":${i + 1},${delivery.plain.slice(1)}`);
    const plain = JSON.parse(delivery.plain);
    assert.deepEqual(JSON.parse(delivery.v1), { seq: i + 1, ...plain });
    assert.deepEqual(Object.keys(plain), [
      "headers",
      "exchange",
      "message_id",
      "routing_key",
      "timestamp",
      "body",
    ]);
    assert.deepEqual(plain.body, { n: i + 1 });
    assert.deepEqual(delivery.meta, {
      sender: "lvm",
      code: "i",
      routingKey: "reply.gw.cmd",
      commandId: undefined,
    });
  });
  // The history keeps the same v1 frames, by seq, for resume.
  assert.deepEqual(history.after(0, replies.latestSeq)!.map((e) => e.frame), delivered.map((d) => d.v1));
});

Deno.test("replies: the v1 wrapping is made in one place", () => {
  assert.equal(v1ReplyFrame(7, `{"headers":{},"body":1}`), `{"seq":7,"headers":{},"body":1}`);
});

Deno.test("replies: a reply CLU would drop gets no seq and reaches nobody, but is counted", () => {
  const { replies, delivered, seen, counted, history, state } = world();
  replies.receive(message({ sender: "lvm" }, { a: 1 })); // no message_code
  replies.receive(
    message({ message_code: ":", sender: "lvm", command_id: "c1" }, {}, { correlationId: "c2" }),
  );
  replies.receive(message({ message_code: "i", sender: "lvm" }, "{not json"));
  assert.equal(replies.latestSeq, 0);
  assert.equal(delivered.length, 0);
  assert.equal(seen.length, 0);
  assert.equal(history.size, 0);
  assert.equal(state.size, 0);
  assert.deepEqual(counted, [false, false, false]);
  // The next good reply is seq 1: the dropped ones left no hole.
  replies.receive(message({ message_code: "i", sender: "lvm" }, {}));
  assert.equal(replies.latestSeq, 1);
  assert.equal(JSON.parse(delivered[0].v1).seq, 1);
  assert.deepEqual(counted, [false, false, false, true]);
});

Deno.test("replies: actors' state is fed, but not by failed-routing replies", () => {
  const { replies, state, delivered } = world();
  replies.receive(message({ message_code: "i", sender: "lvm.ecp" }, { temperature: 12.5 }));
  replies.receive(message(
    { message_code: "f", sender: "nosuchactor", command_id: "x1", commander_id: "gw.nosuchactor" },
    { error: "Failed routing message to consumer 'nosuchactor'." },
    { correlationId: "x1" },
  ));
  assert.deepEqual(state.list().map((a) => a.name), ["lvm.ecp"]);
  assert.equal(JSON.parse(state.actorJson("lvm.ecp")!).keywords.temperature.value, 12.5);
  // The failed-routing reply still reaches the clients, with its seq.
  assert.equal(delivered.length, 2);
  assert.equal(JSON.parse(delivered[1].v1).seq, 2);
});

Deno.test("replies: every observer sees every delivered reply, after the hub, with the ids as received", () => {
  const { replies, seen, events, delivered } = world(2);
  replies.receive(message(
    { message_code: ">", sender: "lvm", command_id: "c1", commander_id: "gw.lvm" },
    {},
    { correlationId: "c1" },
  ));
  replies.receive(message(
    { message_code: ":", sender: "lvm", command_id: "c1", commander_id: "gw.lvm" },
    { done: true },
    { correlationId: "c1" },
  ));
  replies.receive(message({ message_code: "i", sender: "lvm", commander_id: 5 }, {}));
  assert.deepEqual(events, [
    "hub >",
    "observer 0 >",
    "observer 1 >",
    "hub :",
    "observer 0 :",
    "observer 1 :",
    "hub i",
    "observer 0 i",
    "observer 1 i",
  ]);
  assert.deepEqual(seen, [
    ["c1", "gw.lvm", ">", delivered[0].plain],
    ["c1", "gw.lvm", ":", delivered[1].plain],
    [undefined, 5, "i", delivered[2].plain],
  ]);
});

Deno.test("replies: each run has its own epoch, made of its start time", () => {
  const a = new Replies({
    history: new History({ maxEntries: 1, maxAgeSeconds: 1, maxBytes: 1024 }),
    state: new ActorState(),
    hub: { size: 0, deliver() {} },
    metrics: { reply() {} },
    startedAt: 1_700_000_000_000,
  });
  assert.match(a.epoch, new RegExp(`^${(1_700_000_000_000).toString(36)}-[0-9a-f]{4}$`));
  const epochs = new Set(Array.from({ length: 20 }, () => newEpoch(1)));
  assert.ok(epochs.size > 1, "random characters tell apart two runs started in the same millisecond");
});
