/**
 * Unit tests of one socket's outbox with a fake socket: the budget, the close
 * and drop policies, the catch-up timer, batching and closing.
 */

import assert from "node:assert/strict";
import {
  CLOSE_TOO_SLOW,
  Outbox,
  type OutboxSettings,
  OutboxTotals,
  SharedTurn,
} from "../lib/clients/outbox.ts";
import { FakeSocket } from "./helpers/fake_socket.ts";
import { until } from "./helpers/broker.ts";

const BUDGET = 1000;
/** Long enough that every write looks at the backlog (the look comes every BUDGET / 8 characters). */
const FRAME = "x".repeat(200);

function settings(policy: "close" | "drop" = "close"): OutboxSettings {
  return {
    bufferBytes: BUDGET,
    policy,
    droppedNotice: (dropped) => JSON.stringify({ code: "w", dropped_frames: dropped }),
    totals: new OutboxTotals(),
    turn: new SharedTurn(),
  };
}

Deno.test("outbox: frames within the budget go out; small ones do not read the backlog each time", () => {
  const socket = new FakeSocket();
  const s = settings();
  const outbox = new Outbox(socket, s);
  for (let i = 0; i < 10; i++) outbox.write(`f${i}`);
  assert.deepEqual(socket.sent, [...Array(10).keys()].map((i) => `f${i}`));
  assert.equal(socket.looks, 0, "ten short frames are under one look's worth of characters");
  outbox.write(FRAME);
  assert.equal(socket.looks, 1);
  assert.equal(outbox.framesSent, 11);
  assert.equal(s.totals.framesSent, 11);
  assert.equal(s.totals.bytesSent, 20 + FRAME.length);
});

Deno.test("outbox: over the budget with the close policy, the socket is closed 1008 once and sent nothing more", () => {
  const socket = new FakeSocket();
  const s = settings("close");
  const events: string[] = [];
  const outbox = new Outbox(socket, s, {
    onClose: () => events.push("close"),
    onSlowClose: (buffered) => events.push(`slow ${buffered}`),
  });
  outbox.write(FRAME);
  socket.bufferedAmount = 900;
  outbox.write(FRAME);
  assert.deepEqual(socket.sent, [FRAME]);
  assert.deepEqual(socket.closes, [{
    code: CLOSE_TOO_SLOW,
    reason: `client too slow: over ${BUDGET} bytes waiting`,
  }]);
  assert.deepEqual(events, ["close", "slow 900"]);
  assert.equal(s.totals.slowCloses, 1);
  assert.equal(outbox.open, false);
  socket.readyState = 1; // even if the socket still looked open
  outbox.write(FRAME);
  outbox.send("control");
  assert.deepEqual(socket.sent, [FRAME]);
  assert.equal(socket.closes.length, 1);
});

Deno.test("outbox: a first frame larger than the budget goes out when nothing is waiting", () => {
  const socket = new FakeSocket();
  const outbox = new Outbox(socket, settings("close"));
  const big = "y".repeat(BUDGET * 2);
  outbox.write(big);
  assert.deepEqual(socket.sent, [big]);
  assert.equal(socket.closes.length, 0);
});

Deno.test("outbox: with the drop policy, frames are skipped, then a w notice counts them; received + dropped = sent", () => {
  const socket = new FakeSocket();
  const s = settings("drop");
  const caughtUp: number[] = [];
  const outbox = new Outbox(socket, s, { onCaughtUp: (dropped) => caughtUp.push(dropped) });
  try {
    const sent = 12;
    for (let i = 0; i < sent; i++) {
      if (i === 3) socket.bufferedAmount = 900; // falls behind
      if (i === 6) socket.bufferedAmount = 600; // still over half the budget: still skipped
      if (i === 9) socket.bufferedAmount = 100; // caught up
      outbox.write(`${FRAME}${i}`);
    }
    const notices = socket.sent.filter((f) => f.startsWith("{"));
    const received = socket.sent.filter((f) => f.startsWith("x"));
    assert.equal(notices.length, 1);
    const dropped = JSON.parse(notices[0]).dropped_frames;
    assert.equal(dropped, 6);
    assert.equal(received.length + dropped, sent);
    assert.deepEqual(received.map((f) => Number(f.slice(FRAME.length))), [0, 1, 2, 9, 10, 11]);
    assert.equal(socket.sent.indexOf(notices[0]), 3, "the notice comes before the next frame");
    assert.deepEqual(caughtUp, [6]);
    assert.equal(s.totals.framesDropped, 6);
    assert.equal(outbox.dropped, 0);
    assert.equal(socket.closes.length, 0);
  } finally {
    outbox.close(1000, "done");
  }
});

Deno.test("outbox: the catch-up timer sends the notice when no traffic comes", async () => {
  const socket = new FakeSocket();
  const outbox = new Outbox(socket, settings("drop"));
  try {
    socket.bufferedAmount = 900;
    outbox.write(FRAME); // over budget at once: skipped
    outbox.write(FRAME);
    assert.equal(outbox.dropped, 2);
    assert.deepEqual(socket.sent, []);
    socket.bufferedAmount = 0;
    await socket.nextFrame();
    assert.equal(socket.sent.length, 1);
    assert.equal(JSON.parse(socket.sent[0]).dropped_frames, 2);
    assert.equal(outbox.dropped, 0);
  } finally {
    outbox.close(1000, "done");
  }
});

Deno.test("outbox: closing stops the catch-up timer (no timer leaks)", () => {
  const socket = new FakeSocket();
  const outbox = new Outbox(socket, settings("drop"));
  socket.bufferedAmount = 900;
  outbox.write(FRAME);
  assert.equal(outbox.dropped, 1);
  outbox.close(1001, "going away");
  // The test sanitizer fails this test if an interval is still running.
});

Deno.test("outbox: filtered batching queues replies and sends them as one JSON array", () => {
  const socket = new FakeSocket();
  const s = settings();
  const outbox = new Outbox(socket, s);
  outbox.setBatch(true);
  outbox.follow(false);
  outbox.queue('{"seq":1}');
  outbox.queue('{"seq":2}');
  assert.deepEqual(socket.sent, []);
  outbox.endTurn();
  assert.deepEqual(socket.sent, ['[{"seq":1},{"seq":2}]']);
  assert.equal(outbox.framesSent, 2);
  outbox.endTurn();
  assert.equal(socket.sent.length, 1, "nothing more to flush");
});

Deno.test("outbox: unfiltered batching sends the shared turn whole; a control frame flushes what came before it", () => {
  const s = settings();
  const a = new FakeSocket();
  const b = new FakeSocket();
  const first = new Outbox(a, s);
  const second = new Outbox(b, s);
  first.setBatch(true);
  second.setBatch(true);
  s.turn.push('{"seq":1}');
  second.send('{"clu-ws":"options"}'); // mid-turn: seq 1 first, then the control frame
  s.turn.push('{"seq":2}');
  first.endTurn();
  second.endTurn();
  s.turn.clear();
  assert.deepEqual(a.sent, ['[{"seq":1},{"seq":2}]']);
  assert.deepEqual(b.sent, ['[{"seq":1}]', '{"clu-ws":"options"}', '[{"seq":2}]']);
  assert.equal(s.totals.framesSent, 2 + 1 + 1 + 1);
});

Deno.test("outbox: turning batching off sends what was batched", () => {
  const socket = new FakeSocket();
  const outbox = new Outbox(socket, settings());
  outbox.setBatch(true);
  outbox.follow(false);
  outbox.queue("1");
  outbox.setBatch(false);
  assert.deepEqual(socket.sent, ["[1]"]);
  assert.equal(outbox.batching, false);
});

Deno.test("outbox: close sends one close frame (and cuts on terminate); detach closes nothing", () => {
  const socket = new FakeSocket();
  let closedEvents = 0;
  const outbox = new Outbox(socket, settings(), { onClose: () => closedEvents++ });
  outbox.close(1001, "no answer", { terminate: true });
  assert.deepEqual(socket.closes, [{ code: 1001, reason: "no answer" }]);
  assert.equal(socket.terminated, true);
  assert.equal(closedEvents, 1);
  outbox.detach();
  assert.equal(closedEvents, 1, "told once");

  const other = new FakeSocket();
  const detached = new Outbox(other, settings());
  detached.detach();
  detached.write("late");
  assert.deepEqual(other.closes, []);
  assert.deepEqual(other.sent, []);
});

Deno.test("outbox: the frames of one turn are written corked and reach the network in one write at its end", async () => {
  const socket = new FakeSocket();
  const net = socket._socket!;
  const outbox = new Outbox(socket, settings());
  for (let i = 0; i < 5; i++) outbox.write(`f${i}`);
  outbox.send("control");
  assert.deepEqual(socket.sent, ["f0", "f1", "f2", "f3", "f4", "control"], "in order, at once");
  assert.deepEqual(socket.sentThroughSend, [], "as bytes, not through ws's send");
  assert.equal(net.corked, 1, "corked once for the turn");
  assert.equal(net.flushes, 0, "nothing written to the network yet");
  await Promise.resolve();
  assert.equal(net.corked, 0);
  assert.equal(net.flushes, 1, "six frames, one write");
  // The next turn comes within a millisecond of that write: it may be held for the rest of the
  // millisecond (FLUSH_INTERVAL_MS), to join whatever follows, and then written, once.
  outbox.write("next turn");
  await until("the next turn's write", () => net.flushes === 2, { timeoutMs: 5000, intervalMs: 1 });
  assert.equal(net.corked, 0);
  assert.deepEqual(socket.sent.at(-1), "next turn");
});

Deno.test("outbox: frames go through send when ws would queue them, or the socket has no raw path", () => {
  const socket = new FakeSocket();
  const outbox = new Outbox(socket, settings());
  socket._sender!._state = 1; // ws is deflating or reading a blob: its queue keeps the order
  outbox.write("queued");
  socket._sender!._state = 0;
  socket._sender!._firstFragment = false; // mid-way through a fragmented message
  outbox.write("mid-message");
  socket._sender!._firstFragment = true;
  socket._socket!.destroyed = true;
  outbox.write("destroyed");
  assert.deepEqual(socket.sentThroughSend, ["queued", "mid-message", "destroyed"]);
  assert.equal(socket._socket!.chunks.length, 0);

  const plain = new FakeSocket({ raw: false });
  const other = new Outbox(plain, settings());
  other.write("a");
  other.send("b");
  assert.deepEqual(plain.sentThroughSend, ["a", "b"]);
});

Deno.test("outbox: nothing is written after the close frame", async () => {
  const socket = new FakeSocket();
  const outbox = new Outbox(socket, settings());
  outbox.write("before");
  outbox.close(1001, "going away");
  outbox.write("after");
  socket.readyState = 2; // closing on its own (e.g. the peer's close frame): nothing more either
  const other = new Outbox(socket, settings());
  other.write("late");
  await Promise.resolve();
  assert.deepEqual(socket.sent, ["before"]);
});
