// The reply path (lib/replies/replies.ts) on its own: a fake hub that records what it is handed, and
// the real history and actor state. No broker: the messages are built as amqplib hands them over.

import assert from "node:assert/strict";
import { ActorState } from "../lib/replies/actor_state.ts";
import type { AmqpMessageLike } from "../lib/protocol/clu.ts";
import { type Delivery, Hub } from "../lib/clients/hub.ts";
import { FakeSocket } from "./helpers/fake_socket.ts";
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

Deno.test("replies: the history keeps the same v1 frames whichever bytes it copies (CLU socket, v1 socket, none)", () => {
  // The history copies the bytes the hub framed for a socket (the CLU frame past its `{`, or the v1 frame
  // past its `{"seq":N,` head) and encodes the text itself when no socket took any: all three must give
  // back exactly the v1 frames sent, non-ASCII text and a long body included.
  const cases: Array<{ name: string; sockets: Array<{ raw: boolean; v1: boolean }> }> = [
    { name: "a CLU socket", sockets: [{ raw: true, v1: false }] },
    { name: "a v1 socket", sockets: [{ raw: true, v1: true }] },
    { name: "both", sockets: [{ raw: true, v1: false }, { raw: true, v1: true }] },
    { name: "a socket without the raw path", sockets: [{ raw: false, v1: true }] },
    { name: "no socket", sockets: [] },
  ];
  for (const { name, sockets } of cases) {
    const history = new History({ maxEntries: 100, maxAgeSeconds: 600, maxBytes: 1 << 20 });
    const hub = new Hub({ bufferBytes: 1 << 24, policy: "close", droppedNotice: () => "{}" });
    const fakes = sockets.map(({ raw, v1 }) => {
      const socket = new FakeSocket({ raw });
      hub.add(socket, "peer", {}, { v1 });
      return { socket, v1 };
    });
    const replies = new Replies({ history, state: new ActorState(), hub, metrics: { reply() {} } });
    const bodies = [{ t: "é→✓ naïve" }, { n: 1 }, { text: "x".repeat(70_000) }, { emoji: "🔭", n: 2 }];
    for (const [i, body] of bodies.entries()) {
      const sender = i % 2 === 0 ? "lvm.ecp" : "tel\u00e9";
      replies.receive(message({ message_code: i === 3 ? ":" : "i", sender, command_id: null }, body));
    }
    const kept = history.after(0, replies.latestSeq)!;
    assert.equal(kept.length, bodies.length, name);
    kept.forEach((entry, i) => {
      const frame = JSON.parse(entry.frame);
      assert.equal(frame.seq, i + 1, name);
      assert.deepEqual(frame.body, bodies[i], name);
      assert.equal(entry.meta.sender, i % 2 === 0 ? "lvm.ecp" : "tel\u00e9", name);
      assert.equal(entry.meta.code, i === 3 ? ":" : "i", name);
    });
    for (const { socket, v1 } of fakes) {
      // What the socket got is what a resume gives back, in its dialect.
      const frames = kept.map((e) => v1 ? e.frame : `{${e.frame.slice(`{"seq":${e.seq},`.length)}`);
      assert.deepEqual(socket.sent, frames, `${name}: sent and kept agree`);
    }
  }
});
