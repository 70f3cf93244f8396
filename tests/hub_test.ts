/**
 * Unit tests of the hub with fake sockets: fan-out to the clients whose
 * subscription matches, in their dialect; one client count; replay; batching;
 * the slow-client policies seen through the hub.
 */

import assert from "node:assert/strict";
import { CLOSE_TOO_SLOW, type Delivery, Hub, type HubOptions, rememberMine } from "../lib/clients/hub.ts";
import { compileFilter, type ReplyMeta } from "../lib/clients/filter.ts";
import { gatewayReplyFrame } from "../lib/protocol/clu.ts";
import { FakeSocket } from "./helpers/fake_socket.ts";

const IDENTITY = { name: "clu-ws-test", exchange: "sdss_exchange" };

function options(overrides: Partial<HubOptions> = {}): HubOptions {
  return {
    bufferBytes: 1000,
    policy: "close",
    droppedNotice: (dropped) =>
      gatewayReplyFrame(IDENTITY, { code: "w", body: { text: "skipped", dropped_frames: dropped } }),
    ...overrides,
  };
}

let seq = 0;
function reply(meta: Partial<ReplyMeta> = {}, padding = ""): Delivery {
  seq++;
  const full: ReplyMeta = {
    sender: "lvm.ecp",
    code: "i",
    routingKey: "reply.x",
    commandId: undefined,
    ...meta,
  };
  return {
    plain: `{"n":${seq}${padding ? `,"p":"${padding}"` : ""}}`,
    v1: `{"seq":${seq},"n":${seq}${padding ? `,"p":"${padding}"` : ""}}`,
    meta: full,
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("hub: a reply reaches the clients whose filter matches, each in its dialect", () => {
  const hub = new Hub(options());
  const plain = new FakeSocket();
  const all = new FakeSocket();
  const lvm = new FakeSocket();
  const done = new FakeSocket();
  hub.add(plain, "p:1", {});
  hub.add(all, "p:2", {}, { v1: true });
  hub.setFilter(hub.add(lvm, "p:3", {}, { v1: true }), compileFilter({ actors: ["lvm.*"] }));
  hub.setFilter(hub.add(done, "p:4", {}, { v1: true }), compileFilter({ codes: [":"] }));

  const info = reply({ sender: "lvm.ecp", code: "i" });
  hub.deliver(info);
  const end = reply({ sender: "apogee", code: ":" });
  hub.deliver(end);

  assert.deepEqual(plain.sent, [info.plain, end.plain]);
  assert.deepEqual(all.sent, [info.v1, end.v1]);
  assert.deepEqual(lvm.sent, [info.v1]);
  assert.deepEqual(done.sent, [end.v1]);
  assert.equal(hub.framesSent, 6);
});

Deno.test("hub: mine filters on the client's own command ids", () => {
  const hub = new Hub(options());
  const socket = new FakeSocket();
  const client = hub.add(socket, "p:1", {}, { v1: true });
  hub.setFilter(client, compileFilter({ mine: true }));
  rememberMine(client, "c-1");
  const mine = reply({ commandId: "c-1" });
  hub.deliver(mine);
  hub.deliver(reply({ commandId: "c-2" }));
  hub.deliver(reply());
  assert.deepEqual(socket.sent, [mine.v1]);
});

Deno.test("hub: broadcastV1 reaches v1 clients only; broadcast reaches all", () => {
  const hub = new Hub(options());
  const plain = new FakeSocket();
  const v1 = new FakeSocket();
  hub.add(plain, "p:1", {});
  hub.add(v1, "p:2", {}, { v1: true });
  hub.broadcastV1('{"clu-ws":"broker","state":"down"}');
  hub.broadcast("both");
  assert.deepEqual(plain.sent, ["both"]);
  assert.deepEqual(v1.sent, ['{"clu-ws":"broker","state":"down"}', "both"]);
});

Deno.test("hub: one client count; a client closed by its outbox leaves the fan-out at once, its socket counts until closed", async () => {
  const hub = new Hub(options({ policy: "close" }));
  const sockets = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
  const clients = sockets.map((s, i) => hub.add(s, `p:${i}`, {}));
  assert.equal(hub.size, 3);
  assert.equal(hub.sockets, 3);
  assert.deepEqual([...hub.clients()].map((c) => c.id), clients.map((c) => c.id));

  sockets[1].bufferedAmount = 900;
  hub.deliver(reply({}, "z".repeat(300)));
  assert.deepEqual(sockets[1].closes.map((c) => c.code), [CLOSE_TOO_SLOW]);
  assert.equal(hub.slowCloses, 1);
  assert.equal(hub.size, 2, "out of the registry at once");
  assert.equal(hub.sockets, 3, "its socket still closing");

  hub.deliver(reply({}, "z".repeat(300)));
  assert.equal(sockets[1].sent.length, 0);
  assert.equal(sockets[0].sent.length, 2);

  const allClosed = hub.allClosed();
  hub.remove(clients[1]); // its close event
  assert.equal(hub.sockets, 2);
  hub.remove(clients[0]);
  hub.remove(clients[0]); // idempotent
  assert.equal(hub.size, 1);
  hub.remove(clients[2]);
  assert.equal(hub.size, 0);
  assert.equal(hub.sockets, 0);
  await allClosed;
});

Deno.test("hub: the slow-client hooks name the client", () => {
  const seen: string[] = [];
  const hub = new Hub(options({
    policy: "close",
    onSlowClose: (client, buffered) => seen.push(`${client.peer} ${buffered}`),
  }));
  const socket = new FakeSocket();
  hub.add(socket, "peer:9", {});
  socket.bufferedAmount = 950;
  hub.deliver(reply({}, "z".repeat(300)));
  assert.deepEqual(seen, ["peer:9 950"]);
});

Deno.test("hub: with the drop policy a lagging client misses frames, then gets a w notice with dropped_frames", () => {
  const caught: number[] = [];
  const hub = new Hub(options({ policy: "drop", onCaughtUp: (_client, dropped) => caught.push(dropped) }));
  const socket = new FakeSocket();
  const client = hub.add(socket, "p:1", {});
  try {
    const padding = "z".repeat(300);
    let sent = 0;
    for (let i = 0; i < 4; i++, sent++) hub.deliver(reply({}, padding));
    socket.bufferedAmount = 900;
    for (let i = 0; i < 5; i++, sent++) hub.deliver(reply({}, padding));
    socket.bufferedAmount = 0;
    for (let i = 0; i < 2; i++, sent++) hub.deliver(reply({}, padding));
    const notices = socket.sent.map((f) => JSON.parse(f)).filter((f) => f.headers?.message_code === "w");
    assert.equal(notices.length, 1);
    const dropped = notices[0].body.dropped_frames;
    const received = socket.sent.length - 1;
    assert.equal(dropped, 5);
    assert.equal(received + dropped, sent);
    assert.deepEqual(caught, [5]);
    assert.equal(hub.framesDropped, 5);
    assert.equal(hub.size, 1, "still connected");
  } finally {
    client.outbox.close(1000, "done");
  }
});

Deno.test("hub: replay sends the history entries the filter wants, in order, and counts them", () => {
  const hub = new Hub(options());
  const socket = new FakeSocket();
  const client = hub.add(socket, "p:1", {}, { v1: true });
  hub.setFilter(client, compileFilter({ actors: ["apogee"] }));
  const entries = [
    { frame: "1", meta: reply({ sender: "apogee" }).meta },
    { frame: "2", meta: reply({ sender: "lvm" }).meta },
    { frame: "3", meta: reply({ sender: "apogee" }).meta },
    { frame: "4", meta: reply({ sender: "apogee" }).meta },
  ];
  assert.equal(hub.replay(client, entries), 3);
  assert.deepEqual(socket.sent, ["1", "3", "4"]);
});

Deno.test("hub: batching clients get one array per turn; filtered ones their own subset; the shared array is joined once", async () => {
  const hub = new Hub(options());
  const a = new FakeSocket();
  const b = new FakeSocket();
  const filtered = new FakeSocket();
  const live = new FakeSocket();
  hub.setBatch(hub.add(a, "p:1", {}, { v1: true }), true);
  hub.setBatch(hub.add(b, "p:2", {}, { v1: true }), true);
  const f = hub.add(filtered, "p:3", {}, { v1: true });
  hub.setFilter(f, compileFilter({ codes: [":"] }));
  hub.setBatch(f, true);
  hub.add(live, "p:4", {}, { v1: true });

  const r1 = reply({ code: "i" });
  const r2 = reply({ code: ":" });
  const r3 = reply({ code: "i" });
  hub.deliver(r1);
  hub.deliver(r2);
  hub.deliver(r3);
  assert.deepEqual(a.sent, [], "nothing before the turn ends");
  assert.deepEqual(live.sent, [r1.v1, r2.v1, r3.v1], "non-batching clients at once");
  await tick();
  const whole = `[${r1.v1},${r2.v1},${r3.v1}]`;
  assert.deepEqual(a.sent, [whole]);
  assert.deepEqual(b.sent, [whole]);
  assert.ok(a.sent[0] === b.sent[0]);
  assert.equal(a._socket!.chunks.length, 1, "one frame, one buffer");
  assert.ok(a._socket!.chunks[0] === b._socket!.chunks[0], "the shared array is framed once");
  assert.deepEqual(filtered.sent, [`[${r2.v1}]`]);
  assert.equal(hub.framesSent, 3 + 3 + 3 + 1);

  // A control frame mid-turn goes after what was batched before it.
  const r4 = reply();
  hub.deliver(r4);
  hub.send([...hub.clients()][0], '{"clu-ws":"state"}');
  const r5 = reply();
  hub.deliver(r5);
  await tick();
  assert.deepEqual(a.sent.slice(1), [`[${r4.v1}]`, '{"clu-ws":"state"}', `[${r5.v1}]`]);
  assert.deepEqual(b.sent.slice(1), [`[${r4.v1},${r5.v1}]`]);
});

Deno.test("hub: closeAll closes every client with the code and reason", () => {
  const hub = new Hub(options());
  const sockets = [new FakeSocket(), new FakeSocket()];
  for (const s of sockets) hub.add(s, "p", {});
  hub.closeAll(1001, "clu-ws is shutting down");
  for (const s of sockets) assert.deepEqual(s.closes, [{ code: 1001, reason: "clu-ws is shutting down" }]);
  assert.equal(hub.size, 0);
  assert.equal(hub.sockets, 2);
});

Deno.test("hub: a reply is framed once per dialect; every socket gets the same bytes; k replies in a turn are one write per socket", async () => {
  const hub = new Hub(options());
  const plain = [new FakeSocket(), new FakeSocket()];
  const v1 = [new FakeSocket(), new FakeSocket()];
  for (const s of plain) hub.add(s, "p", {});
  for (const s of v1) hub.add(s, "p", {}, { v1: true });
  const replies = [reply(), reply(), reply()];
  for (const r of replies) hub.deliver(r);
  for (const s of plain) assert.deepEqual(s.sent, replies.map((r) => r.plain));
  for (const s of v1) assert.deepEqual(s.sent, replies.map((r) => r.v1));
  // Each frame is one buffer (header and payload), the same Buffer for all sockets of a dialect.
  for (const s of [...plain, ...v1]) assert.equal(s._socket!.chunks.length, replies.length);
  for (let i = 0; i < replies.length; i++) {
    assert.ok(plain[0]._socket!.chunks[i] === plain[1]._socket!.chunks[i]);
    assert.ok(v1[0]._socket!.chunks[i] === v1[1]._socket!.chunks[i]);
    assert.ok(plain[0]._socket!.chunks[i] !== v1[0]._socket!.chunks[i]);
  }
  await Promise.resolve();
  for (const s of [...plain, ...v1]) assert.equal(s._socket!.flushes, 1, "three replies, one write");

  hub.broadcast("both");
  assert.ok(plain[0]._socket!.chunks.at(-1) === v1[1]._socket!.chunks.at(-1), "a broadcast is framed once");
});
