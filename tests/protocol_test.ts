// End-to-end tests of the clu-ws v1 protocol (docs/protocol.md) through real
// sockets: the gateway process, the real RabbitMQ, a CLU-style actor and raw
// websocket clients that offer the `clu-ws.v1` subprotocol. Every test has its
// own exchange; waits are for frames and log records, never for time.

import assert from "node:assert/strict";
import { bytesToHex, sha256 } from "../lib/access/tokens.ts";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { type SilentActor, startActor, startSilentActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { type Frame, WsClient } from "./helpers/ws_client.ts";
import { publishReplyTo } from "./helpers/actor.ts";

const V1 = ["clu-ws.v1"];
const CLU_KEYS = ["headers", "exchange", "message_id", "routing_key", "timestamp", "body"];
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/;
const RUN = crypto.randomUUID().slice(0, 8);
let actorCount = 0;

/**
 * An actor name of its own for each test: the actors' `<name>_commands` queues
 * are exclusive and not per exchange, so a reused name can meet 405 RESOURCE_LOCKED.
 */
function actorName(label: string): string {
  return `proto-${RUN}-${label}-${++actorCount}`;
}

type Json = Record<string, unknown>;

/** A frame as a plain JSON object (control frames are not CLU frames). */
function json(frame: Frame): Json {
  return frame as unknown as Json;
}

/** Matches the control frame `{"clu-ws": kind, …}` for which `match` holds. */
function control(kind: string, match: (frame: Json) => boolean = () => true): (frame: Frame) => boolean {
  return (frame) => json(frame)["clu-ws"] === kind && match(json(frame));
}

/** Whether a frame is a CLU reply (not a control frame). */
function isReply(frame: Frame): boolean {
  return !("clu-ws" in frame);
}

/** True for the reply (not a control frame) to `commandId` with message code `code`. */
function replyTo(commandId: string, code: string): (frame: Frame) => boolean {
  return (frame) =>
    isReply(frame) && frame.headers.command_id === commandId && frame.headers.message_code === code;
}

/** The position a v1 reply carries. */
function seqOf(frame: Frame): number | undefined {
  return json(frame).seq as number | undefined;
}

/** The raw text of a frame the client received. */
function rawOf(client: WsClient, frame: Frame): string {
  return client.raw[client.frames.indexOf(frame)];
}

/** Publishes a reply on the exchange as if `sender` had sent it (no command). */
function publishAs(
  actor: TestActor,
  sender: string,
  body: unknown,
  { code = "i", routingKey = "reply.broadcast" } = {},
): Promise<void> {
  return actor.publishRaw(routingKey, JSON.stringify(body), {
    headers: { command_id: null, commander_id: null, internal: false, message_code: code, sender },
    timestamp: Math.floor(Date.now() / 1000),
  });
}

interface World {
  exchange: string;
  gateway: GatewayProcess;
  actor: TestActor;
  /** Opens a clu-ws v1 client (directly, or at `url`) and resolves once it has its welcome. */
  v1(options?: { url?: string; protocols?: string[] }): Promise<WsClient>;
  /** Opens a CLU-dialect client. */
  plain(options?: { protocols?: string[] }): Promise<WsClient>;
  /** A silent actor, closed with the world. */
  silent(): Promise<SilentActor>;
}

/** Runs `body` with a gateway, an actor and client factories; closes everything after. */
async function withWorld(
  label: string,
  options: { args?: string[]; env?: Record<string, string> },
  body: (world: World) => Promise<void>,
): Promise<void> {
  const exchange = uniqueExchange(label);
  await using gateway = await startGateway({ exchange, ...options });
  const actor = await startActor(exchange, actorName(label));
  const clients: WsClient[] = [];
  const silents: SilentActor[] = [];
  const world: World = {
    exchange,
    gateway,
    actor,
    async v1({ url = gateway.url(), protocols = V1 } = {}) {
      const client = await WsClient.connect(url, { protocols });
      clients.push(client);
      await client.next("the welcome", control("welcome"));
      return client;
    },
    async plain({ protocols = [] } = {}) {
      const client = await WsClient.connect(gateway.url(), { protocols });
      clients.push(client);
      return client;
    },
    async silent() {
      const silent = await startSilentActor(exchange, actorName(`${label}-silent`));
      silents.push(silent);
      return silent;
    },
  };
  try {
    await body(world);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(silents.map((s) => s.close()));
    await actor.close();
  }
}

/** Subscribes and resolves with the `subscribed` answer. */
async function subscribe(client: WsClient, id: number | string, fields: Json = {}): Promise<Json> {
  client.send({ "clu-ws": "subscribe", id, ...fields });
  return json(await client.next(`subscribed #${id}`, control("subscribed", (f) => f.id === id)));
}

/**
 * Waits for the reply whose body has `marker` and returns the replies from
 * index `from` up to and including it. Replies come in order through the
 * gateway's one queue: once the marker is here, anything published before it is too.
 */
async function repliesUntil(client: WsClient, marker: string, from = 0): Promise<Frame[]> {
  const last = await client.next(`the marker ${marker}`, (f) => isReply(f) && f.body?.marker === marker);
  return client.frames.slice(from, client.frames.indexOf(last) + 1).filter(isReply);
}

// ---------------------------------------------------------------------------------------------------------
// Welcome, positions and the two dialects

Deno.test("v1: the welcome comes first, with epoch, position, name, exchange, broker state and role", async () => {
  await withWorld("welcome", {}, async ({ exchange, gateway, actor, v1 }) => {
    const client = await v1();
    assert.equal(client.protocol, "clu-ws.v1");
    const welcome = json(client.frames[0]);
    assert.deepEqual(Object.keys(welcome), [
      "clu-ws",
      "version",
      "epoch",
      "seq",
      "name",
      "exchange",
      "broker",
      "role",
    ]);
    assert.equal(welcome["clu-ws"], "welcome");
    assert.equal(welcome.version, 1);
    assert.equal(typeof welcome.epoch, "string");
    assert.ok(String(welcome.epoch).length > 0);
    assert.equal(welcome.seq, 0, "no reply yet");
    assert.equal(welcome.name, gateway.name);
    assert.equal(welcome.exchange, exchange);
    assert.equal(welcome.broker, "up");
    assert.equal(welcome.role, "command");

    await actor.broadcast({ n: 1 });
    await actor.broadcast({ n: 2 });
    await client.count("two broadcasts", isReply, 2);
    // The position of the newest reply, the same epoch; whichever order the subprotocols are offered in.
    for (const protocols of [["clu-ws.v1", "clu-ws"], ["clu-ws", "clu-ws.v1"]]) {
      const later = await v1({ protocols });
      assert.equal(later.protocol, "clu-ws.v1");
      assert.equal(json(later.frames[0]).seq, 2);
      assert.equal(json(later.frames[0]).epoch, welcome.epoch);
    }
    const health = await (await fetch(gateway.httpUrl("/healthz"))).json();
    assert.equal(health.epoch, welcome.epoch);
    assert.equal(health.seq, 2);
  });
});

Deno.test("v1 replies carry seq as their first key, one more each time; a plain client gets exactly CLU's frames", async () => {
  await withWorld("dialects", {}, async ({ gateway, actor, v1, plain }) => {
    const modern = await v1();
    const clu = await plain();
    const cluNamed = await plain({ protocols: ["clu-ws"] });
    assert.equal(cluNamed.protocol, "clu-ws");
    const start = Number(json(modern.frames[0]).seq);

    // A v1 command with ack and track, and a plain one with the same fields (ignored in CLU mode).
    modern.send({
      consumer: actor.name,
      command_string: "status",
      command_id: "v1-1",
      ack: true,
      track: true,
    });
    await modern.next("done for v1-1", control("done", (f) => f.command_id === "v1-1"));
    clu.send({
      consumer: actor.name,
      command_string: "ping",
      command_id: "plain-1",
      ack: true,
      track: true,
      timeout: 5,
    });
    await clu.next("Pong for plain-1", replyTo("plain-1", ":"));
    for (let n = 1; n <= 3; n++) await actor.broadcast({ n });
    await actor.broadcast({ marker: "end" });

    const modernReplies = await repliesUntil(modern, "end");
    // status: > i :   ping: > :   three broadcasts and the marker.
    assert.equal(modernReplies.length, 9);
    modernReplies.forEach((frame, i) => {
      const keys = Object.keys(JSON.parse(rawOf(modern, frame)));
      assert.deepEqual(keys, ["seq", ...CLU_KEYS], "seq first, then CLU's keys");
      assert.equal(seqOf(frame), start + i + 1, "positions increase by one");
    });

    for (const client of [clu, cluNamed]) {
      const replies = await repliesUntil(client, "end");
      assert.equal(client.frames.filter((f) => !isReply(f)).length, 0, "no control frame in CLU mode");
      assert.deepEqual(client.frames, replies, "only replies");
      assert.equal(replies.length, 9);
      replies.forEach((frame, i) => {
        const raw = rawOf(client, frame);
        assert.deepEqual(Object.keys(JSON.parse(raw)), CLU_KEYS);
        // The v1 frame is the CLU frame, byte for byte, with "seq" in front.
        assert.equal(rawOf(modern, modernReplies[i]), `{"seq":${start + i + 1},${raw.slice(1)}`);
      });
    }
    assert.ok(
      !clu.frames.some((f) => f.headers.sender === gateway.name),
      "the plain client's ack/track/timeout fields were ignored, not refused",
    );
    // Bad input: answered with a gateway-made frame, without seq even in v1.
    modern.send("not json");
    const bad = await modern.next("the e frame", (f) => isReply(f) && f.headers.message_code === "e");
    assert.equal(seqOf(bad), undefined, "gateway-made frames have no seq");
    assert.deepEqual(Object.keys(JSON.parse(rawOf(modern, bad))), CLU_KEYS);
  });
});

Deno.test("CLU mode ignores ack, track and timeout of any type, as CLU ignores extra fields", async () => {
  await withWorld("cluextra", {}, async ({ actor, plain }) => {
    const clu = await plain();
    clu.send({
      consumer: actor.name,
      command_string: "ping",
      command_id: "extra-1",
      ack: "yes",
      track: 1,
      timeout: "soon",
    });
    const answer = await clu.next(
      "an answer to extra-1",
      (f) => f.headers.command_id === "extra-1" && [":", "f"].includes(String(f.headers.message_code)),
    );
    assert.equal(
      answer.headers.message_code,
      ":",
      `docs/protocol.md: "in CLU mode they are ignored, as CLU ignores extra fields"; got ${
        JSON.stringify(answer.body)
      }`,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Subscriptions

Deno.test("subscribe by actors: globs on the sender, * crossing dots, anchored at both ends", async () => {
  await withWorld("actors", {}, async ({ actor, v1 }) => {
    const client = await v1();
    const everything = await v1();
    const answer = await subscribe(client, 1, { actors: ["lvm.*", "apo?ee"] });
    assert.deepEqual(answer, { "clu-ws": "subscribed", id: 1, filter: { actors: ["lvm.*", "apo?ee"] } });
    const senders = ["lvm.sp1.ieb", "lvm.ecp", "apogee", "xlvm.ecp", "lvm", "apogee2", "boss", "lvm.ecp"];
    for (const sender of senders) await publishAs(actor, sender, { from: sender });
    await publishAs(actor, "lvm.marker", { marker: "m" });
    const got = await repliesUntil(client, "m");
    assert.deepEqual(got.map((f) => f.headers.sender), [
      "lvm.sp1.ieb",
      "lvm.ecp",
      "apogee",
      "lvm.ecp",
      "lvm.marker",
    ]);
    const all = await repliesUntil(everything, "m");
    assert.equal(all.length, senders.length + 1, "the unsubscribed client got everything");
  });
});

Deno.test("subscribe by codes: compared case-insensitively; fields combine (all must match)", async () => {
  await withWorld("codes", {}, async ({ actor, v1 }) => {
    const client = await v1();
    await subscribe(client, "c", { codes: ["f", ":", "W"] });
    const codes = ["i", "F", ":", ">", "w", "f", "e", "!", "W"];
    for (const code of codes) await publishAs(actor, "lvm.ecp", { code }, { code });
    await publishAs(actor, "lvm.ecp", { marker: "codes" }, { code: ":" });
    const got = await repliesUntil(client, "codes");
    assert.deepEqual(got.map((f) => f.headers.message_code), ["F", ":", "w", "f", "W", ":"]);

    const from = client.frames.length;
    await subscribe(client, "both", { codes: ["I"], actors: ["lvm.*"] });
    await publishAs(actor, "lvm.ecp", { want: 1 }, { code: "i" });
    await publishAs(actor, "apogee", { want: 0 }, { code: "i" });
    await publishAs(actor, "lvm.ecp", { want: 0 }, { code: ":" });
    await publishAs(actor, "lvm.ecp", { marker: "both" }, { code: "i" });
    const both = await repliesUntil(client, "both", from);
    assert.deepEqual(both.map((f) => f.body), [{ want: 1 }, { marker: "both" }]);
  });
});

Deno.test("subscribe by keys (AMQP topic patterns), changed on the open socket, and reset by a bare subscribe", async () => {
  await withWorld("keys", {}, async ({ actor, v1 }) => {
    const client = await v1();
    const keys = [
      "reply.broadcast",
      "reply.gw.lvm.ecp",
      "reply.ieb",
      "reply.a.b.c.ieb",
      "reply.a.iebx",
      "reply.special",
      "reply.x.special",
    ];
    const publishAll = async (marker: string, markerKey: string) => {
      for (const routingKey of keys) await publishAs(actor, "lvm.ecp", { key: routingKey }, { routingKey });
      await publishAs(actor, "lvm.ecp", { marker }, { routingKey: markerKey });
    };
    const received = async (marker: string, from: number) =>
      (await repliesUntil(client, marker, from)).map((f) => f.routing_key);

    let from = client.frames.length;
    await subscribe(client, 1, { keys: ["reply.*"] });
    await publishAll("one", "reply.one");
    assert.deepEqual(await received("one", from), [
      "reply.broadcast",
      "reply.ieb",
      "reply.special",
      "reply.one",
    ]);

    from = client.frames.length;
    const changed = await subscribe(client, 2, { keys: ["reply.#.ieb", "#.special", "reply.*.*.lvm.*"] });
    assert.deepEqual(changed.filter, { keys: ["reply.#.ieb", "#.special", "reply.*.*.lvm.*"] });
    await publishAll("two", "reply.two.ieb");
    assert.deepEqual(await received("two", from), [
      "reply.ieb",
      "reply.a.b.c.ieb",
      "reply.special",
      "reply.x.special",
      "reply.two.ieb",
    ]);

    from = client.frames.length;
    await subscribe(client, 3, { keys: ["reply.gw.#"] });
    await publishAll("three", "reply.gw");
    assert.deepEqual(await received("three", from), ["reply.gw.lvm.ecp", "reply.gw"], "# matches zero words");

    from = client.frames.length;
    const reset = await subscribe(client, 4);
    assert.deepEqual(reset, { "clu-ws": "subscribed", id: 4, filter: {} });
    await publishAll("four", "reply.four");
    assert.deepEqual(await received("four", from), [...keys, "reply.four"], "everything again");
  });
});

Deno.test("subscribe mine: only replies to this connection's own commands", async () => {
  await withWorld("mine", {}, async ({ actor, v1 }) => {
    const me = await v1();
    const other = await v1();
    const answer = await subscribe(me, "m", { mine: true });
    assert.deepEqual(answer.filter, { mine: true });
    me.send({ consumer: actor.name, command_string: "ping", command_id: "mine-1" });
    await me.next("Pong for mine-1", replyTo("mine-1", ":"));
    // The same actor and commander id (the gateway's), another connection's command id.
    other.send({ consumer: actor.name, command_string: "status", command_id: "theirs-1" });
    await other.next("done for theirs-1", replyTo("theirs-1", ":"));
    await actor.broadcast({ not: "mine" });
    await other.next("the broadcast", (f) => f.body?.not === "mine");
    me.send({ consumer: actor.name, command_string: "marker", command_id: "mine-2" });
    await me.next("the echo for mine-2", replyTo("mine-2", ":"));
    const got = me.frames.filter(isReply);
    assert.deepEqual(
      got.map((f) => `${f.headers.command_id} ${f.headers.message_code}`),
      ["mine-1 >", "mine-1 :", "mine-2 >", "mine-2 :"],
    );
    // And the other client, unsubscribed, saw all of it.
    await other.next("the echo for mine-2", replyTo("mine-2", ":"));
    assert.equal(other.frames.filter(isReply).length, 2 + 3 + 1 + 2);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Commands: acknowledgement and tracking

Deno.test("ack: accepted at once with the given or generated command_id, then published", async () => {
  await withWorld("ack", {}, async ({ actor, v1 }) => {
    const client = await v1();
    client.send({ consumer: actor.name, command_string: "ping", command_id: "ack-1", ack: true });
    const accepted = await client.next("accepted", control("accepted", (f) => f.command_id === "ack-1"));
    assert.deepEqual(Object.keys(json(accepted)), ["clu-ws", "command_id", "consumer"]);
    assert.equal(json(accepted).consumer, actor.name);
    const published = await client.next("published", control("published", (f) => f.command_id === "ack-1"));
    assert.deepEqual(json(published), { "clu-ws": "published", command_id: "ack-1" });
    assert.ok(client.frames.indexOf(accepted) < client.frames.indexOf(published));
    await client.next("Pong for ack-1", replyTo("ack-1", ":"));

    client.send({ consumer: actor.name, command_string: "ping", ack: true });
    const generated = json(
      await client.next("accepted, no id given", control("accepted", (f) => f.command_id !== "ack-1")),
    );
    const id = String(generated.command_id);
    assert.match(id, UUID4);
    await client.next("published with that id", control("published", (f) => f.command_id === id));
    const pong = await client.next("Pong with that id", replyTo(id, ":"));
    assert.ok(
      client.frames.indexOf(pong) > client.frames.findIndex(control("accepted", (f) => f.command_id === id)),
    );

    // Without ack (or with ack false): no acknowledgement.
    client.send({ consumer: actor.name, command_string: "ping", command_id: "noack-1", ack: false });
    client.send({ consumer: actor.name, command_string: "ping", command_id: "noack-2" });
    await client.next("Pong for noack-2", replyTo("noack-2", ":"));
    await client.next("Pong for noack-1", replyTo("noack-1", ":"));
    assert.equal(
      client.frames.filter((f) => String(json(f).command_id).startsWith("noack")).length,
      0,
      "no control frame for commands without ack",
    );
  });
});

Deno.test("track: done with code : and elapsed time; failed on f; ended once, after the ending reply", async () => {
  await withWorld("track", {}, async ({ actor, v1 }) => {
    const client = await v1();
    client.send({ consumer: actor.name, command_string: "status", command_id: "t-done", track: true });
    const done = await client.next("done", control("done", (f) => f.command_id === "t-done"));
    assert.deepEqual(Object.keys(json(done)), [
      "clu-ws",
      "command_id",
      "consumer",
      "status",
      "code",
      "elapsed_ms",
    ]);
    assert.equal(json(done).consumer, actor.name);
    assert.equal(json(done).status, "done");
    assert.equal(json(done).code, ":");
    const elapsed = json(done).elapsed_ms as number;
    assert.ok(Number.isInteger(elapsed) && elapsed >= 0 && elapsed < 10_000, `elapsed_ms ${elapsed}`);
    const ending = client.frames.findIndex(replyTo("t-done", ":"));
    assert.ok(ending >= 0 && ending < client.frames.indexOf(done), "the : reply comes before done");
    assert.equal(client.frames.findIndex(control("accepted")), -1, "track without ack sends no accepted");

    client.send({ consumer: actor.name, command_string: "fail", command_id: "t-fail", track: true });
    const failed = json(await client.next("failed", control("done", (f) => f.command_id === "t-fail")));
    assert.equal(failed.status, "failed");
    assert.equal(failed.code, "f");
    assert.equal(failed.error, undefined, "an actor's f carries its own error in the reply");
    assert.ok(client.frames.findIndex(replyTo("t-fail", "f")) >= 0);

    // A marker after both: each command ended exactly once.
    client.send({ consumer: actor.name, command_string: "ping", command_id: "t-last", track: true });
    await client.next("done for t-last", control("done", (f) => f.command_id === "t-last"));
    for (const id of ["t-done", "t-fail", "t-last"]) {
      assert.equal(client.frames.filter(control("done", (f) => f.command_id === id)).length, 1, id);
    }
  });
});

Deno.test("track: F and ! end a command as failed (case-insensitive); timeout; a tracked command_id in use is refused", async () => {
  await withWorld("track2", {}, async ({ gateway, actor, v1, silent }) => {
    const client = await v1();
    const quiet = await silent();
    for (const [id, code] of [["upper-F", "F"], ["bang", "!"]]) {
      client.send({ consumer: quiet.name, command_string: "wait", command_id: id, track: true, ack: true });
      await client.next(`published ${id}`, control("published", (f) => f.command_id === id));
      await publishReplyTo(actor, gateway, quiet.name, id, ">", {});
      await publishReplyTo(actor, gateway, quiet.name, id, code, { error: `ended with ${code}` });
      const end = json(await client.next(`end of ${id}`, control("done", (f) => f.command_id === id)));
      assert.equal(end.status, "failed", id);
      assert.equal(end.code, code, id);
    }

    const sentAt = performance.now();
    client.send({
      consumer: quiet.name,
      command_string: "wait",
      command_id: "slow",
      track: true,
      timeout: 1,
    });
    // While it runs, its command_id is taken for tracked commands.
    client.send({ consumer: quiet.name, command_string: "again", command_id: "slow", track: true });
    const refused = await client.next("f for the duplicate", replyTo("slow", "f"));
    assert.match(String(refused.body.error), /command_id 'slow' is already used by a tracked command/);
    assert.equal(seqOf(refused), undefined);
    const timedOut = json(
      await client.next("timeout", control("done", (f) => f.command_id === "slow"), { timeoutMs: 10_000 }),
    );
    const waited = performance.now() - sentAt;
    assert.equal(timedOut.status, "timeout");
    assert.equal(timedOut.code, null);
    assert.match(String(timedOut.error), /no end of the command within 1 s/);
    assert.ok((timedOut.elapsed_ms as number) >= 950, `elapsed_ms ${timedOut.elapsed_ms}`);
    assert.ok(waited >= 950 && waited < 8_000, `the timeout came after ${Math.round(waited)} ms`);
    assert.equal(client.frames.filter(control("done", (f) => f.command_id === "slow")).length, 1);
    // The duplicate was not sent; the original was.
    client.send({ consumer: quiet.name, command_string: "wait", command_id: "after-dup", ack: true });
    await client.next("published after-dup", control("published", (f) => f.command_id === "after-dup"));
    await until("the silent actor to get after-dup", () => quiet.received.includes("after-dup"));
    assert.deepEqual(quiet.received, ["upper-F", "bang", "slow", "after-dup"]);
    // Once ended, the id may be tracked again.
    client.send({ consumer: actor.name, command_string: "ping", command_id: "slow", track: true });
    const again = json(
      await client.next(
        "done, second use",
        control("done", (f) => f.command_id === "slow" && f.status === "done"),
      ),
    );
    assert.equal(again.code, ":");
  });
});

Deno.test("track: a command no actor receives ends failed", async () => {
  await withWorld("unroutable", {}, async ({ gateway, v1 }) => {
    const client = await v1();
    const ghost = `ghost-${RUN}`;
    client.send({ consumer: ghost, command_string: "status", command_id: "lost", track: true, ack: true });
    await client.next("accepted", control("accepted", (f) => f.command_id === "lost"));
    const end = json(await client.next("the end", control("done", (f) => f.command_id === "lost")));
    assert.equal(end.status, "failed");
    assert.equal(end.consumer, ghost);
    const failed = await client.next("CLU's f reply", replyTo("lost", "f"));
    assert.equal(failed.routing_key, `reply.${gateway.name}`);
    assert.equal(typeof seqOf(failed), "number", "CLU's reply on the exchange has a position");
  });
});

// ---------------------------------------------------------------------------------------------------------
// Bad control frames

Deno.test("a control frame on a plain connection gets a reply-shaped e frame; the socket keeps working", async () => {
  await withWorld("plainctl", {}, async ({ gateway, actor, plain }) => {
    const clu = await plain();
    clu.send({ "clu-ws": "subscribe", id: 1, actors: ["x"] });
    const error = await clu.next("the e frame", (f) => f.headers?.message_code === "e");
    assert.deepEqual(Object.keys(JSON.parse(rawOf(clu, error))), CLU_KEYS);
    assert.equal(error.headers.sender, gateway.name);
    assert.equal(error.headers.command_id, null);
    assert.match(String(error.body.error), /control frames need the clu-ws v1 subprotocol/);
    assert.match(String(error.body.error), /clu-ws\.v1/);
    // The subscription was not applied: the plain client still gets everything.
    await publishAs(actor, "other", { marker: "after" });
    await clu.next("the broadcast", (f) => f.body?.marker === "after");
    clu.send({ consumer: actor.name, command_string: "ping", command_id: "p-1" });
    await clu.next("Pong", replyTo("p-1", ":"));
  });
});

Deno.test("malformed control frames get a clu-ws error with their id, change nothing, and the socket keeps working", async () => {
  await withWorld("badctl", {}, async ({ actor, v1 }) => {
    const client = await v1();
    await subscribe(client, "keep", { actors: ["lvm.*"] });
    const cases: Array<{ send: Json; id: unknown; error: RegExp }> = [
      { send: { "clu-ws": "nope", id: 1 }, id: 1, error: /unknown operation "nope"/ },
      { send: { "clu-ws": null }, id: null, error: /unknown operation null/ },
      { send: { "clu-ws": 7, id: "seven" }, id: "seven", error: /unknown operation 7/ },
      { send: { "clu-ws": "subscribe", id: 2, actors: "apogee" }, id: 2, error: /"actors" must be a list/ },
      { send: { "clu-ws": "subscribe", id: 3, codes: [""] }, id: 3, error: /"codes" must be a list/ },
      { send: { "clu-ws": "subscribe", id: 4, keys: [1] }, id: 4, error: /"keys" must be a list/ },
      { send: { "clu-ws": "subscribe", id: { a: [1] }, mine: "yes" }, id: { a: [1] }, error: /"mine"/ },
      { send: { "clu-ws": "resume", id: 5 }, id: 5, error: /resume needs "epoch"/ },
      { send: { "clu-ws": "resume", id: 6, epoch: "x", seq: -1 }, id: 6, error: /resume needs/ },
      { send: { "clu-ws": "resume", id: 7, epoch: "x", seq: 1.5 }, id: 7, error: /resume needs/ },
      { send: { "clu-ws": "resume", id: 8, epoch: 3, seq: 1 }, id: 8, error: /resume needs/ },
      { send: { "clu-ws": "state", id: 9, actors: "lvm.*" }, id: 9, error: /"actors" must be a list/ },
      { send: { "clu-ws": "state", id: 10, actors: [""] }, id: 10, error: /"actors" must be a list/ },
    ];
    const from = client.frames.length;
    for (const c of cases) client.send(c.send);
    await client.count("the errors", control("error"), cases.length);
    const answers = client.frames.slice(from).map(json);
    assert.equal(answers.length, cases.length, "one answer each, nothing else");
    cases.forEach((c, i) => {
      assert.deepEqual(Object.keys(answers[i]), ["clu-ws", "id", "error"]);
      assert.equal(answers[i]["clu-ws"], "error");
      assert.deepEqual(answers[i].id, c.id, `case ${i}`);
      assert.match(String(answers[i].error), c.error, `case ${i}: ${answers[i].error}`);
    });
    // The subscription is the one from before the bad frames.
    await publishAs(actor, "apogee", { dropped: true });
    await publishAs(actor, "lvm.ecp", { marker: "kept" });
    const got = await repliesUntil(client, "kept", from);
    assert.deepEqual(got.map((f) => f.headers.sender), ["lvm.ecp"]);
    // Commands and operations still work.
    client.send({ consumer: actor.name, command_string: "ping", command_id: "still", track: true });
    await client.next("done after bad frames", control("done", (f) => f.command_id === "still"));
    client.send({ "clu-ws": "state", id: "ok" });
    await client.next("state answer", control("state", (f) => f.id === "ok"));
  });
});

// ---------------------------------------------------------------------------------------------------------
// Missed messages

Deno.test("resume across a forced disconnect: every missed reply once and in order, then resumed, then live", async () => {
  await withWorld("resume", {}, async ({ gateway, actor, v1 }) => {
    await using proxy = TcpProxy.reserve(gateway.port);
    proxy.up();
    const url = `ws://127.0.0.1:${proxy.port}/`;
    const observer = await v1();
    const first = await v1({ url });
    const epoch = json(first.frames[0]).epoch;
    let n = 0;
    for (let i = 0; i < 3; i++) await actor.broadcast({ n: ++n });
    const before = await first.count("the first three", (f) => typeof f.body?.n === "number", 3);
    const lastSeq = seqOf(before[2])!;

    await proxy.down();
    await first.closed;
    const missed: number[] = [];
    for (let i = 0; i < 10; i++) {
      await actor.broadcast({ n: ++n });
      missed.push(n);
      // Replies the new subscription leaves out are not replayed.
      if (i % 3 === 0) await publishAs(actor, "someone-else", { other: i });
    }
    await publishAs(actor, "someone-else", { marker: "away" });
    const latest = seqOf(await observer.next("the last reply while away", (f) => f.body?.marker === "away"))!;

    proxy.up();
    const second = await v1({ url });
    assert.equal(json(second.frames[0]).epoch, epoch);
    assert.equal(json(second.frames[0]).seq, latest);
    await subscribe(second, 1, { actors: [actor.name] });
    second.send({ "clu-ws": "resume", id: 2, epoch, seq: lastSeq });
    const resumed = await second.next("resumed", control("resumed"));
    const at = second.frames.indexOf(resumed);
    const replayed = second.frames.slice(0, at).filter(isReply);
    assert.deepEqual(replayed.map((f) => f.body.n), missed, "every missed reply, once, in order");
    const seqs = replayed.map((f) => seqOf(f)!);
    assert.ok(seqs.every((s, i) => s > lastSeq && s <= latest && (i === 0 || s > seqs[i - 1])), `${seqs}`);
    assert.deepEqual(json(resumed), { "clu-ws": "resumed", id: 2, from: lastSeq, to: latest, count: 10 });

    const live: number[] = [];
    for (let i = 0; i < 3; i++) {
      await actor.broadcast({ n: ++n });
      live.push(n);
    }
    await second.next("the last live reply", (f) => f.body?.n === n);
    const after = second.frames.slice(at + 1).filter(isReply);
    assert.deepEqual(after.map((f) => f.body.n), live, "then live replies");
    assert.ok(after.every((f) => seqOf(f)! > latest));
    const everything = [...first.frames, ...second.frames].filter((f) => typeof f.body?.n === "number");
    assert.deepEqual(
      everything.map((f) => f.body.n),
      Array.from({ length: n }, (_, i) => i + 1),
      "nothing missing, nothing twice, order kept",
    );
  });
});

Deno.test("resume beyond --history-size: gap with oldest and latest, nothing replayed; another epoch is a gap too", async () => {
  await withWorld("gap", { args: ["--history-size", "5"] }, async ({ actor, v1 }) => {
    const observer = await v1();
    const away = await v1();
    const epoch = json(away.frames[0]).epoch;
    await actor.broadcast({ n: 1 });
    const last = seqOf(await away.next("n=1", (f) => f.body?.n === 1))!;
    await away.close();
    for (let n = 2; n <= 9; n++) await actor.broadcast({ n });
    const latest = seqOf(await observer.next("n=9", (f) => f.body?.n === 9))!;
    assert.equal(latest - last, 8, "eight missed, more than the history keeps");

    const back = await v1();
    back.send({ "clu-ws": "resume", id: "r1", epoch, seq: last });
    const gap = await back.next("gap", control("gap", (f) => f.id === "r1"));
    assert.deepEqual(Object.keys(json(gap)), ["clu-ws", "id", "reason", "epoch", "oldest", "latest"]);
    assert.match(String(json(gap).reason), /no longer kept/);
    assert.equal(json(gap).epoch, epoch);
    assert.equal(json(gap).oldest, latest - 4, "the history keeps the last five");
    assert.equal(json(gap).latest, latest);
    assert.equal(back.frames.filter(isReply).length, 0, "nothing replayed");

    // The oldest kept reply is the first after seq: no gap, all five replayed.
    let from = back.frames.length;
    back.send({ "clu-ws": "resume", id: "r2", epoch, seq: latest - 5 });
    const resumed = await back.next("resumed", control("resumed", (f) => f.id === "r2"));
    assert.deepEqual(json(resumed), {
      "clu-ws": "resumed",
      id: "r2",
      from: latest - 5,
      to: latest,
      count: 5,
    });
    assert.deepEqual(back.frames.slice(from).filter(isReply).map((f) => f.body.n), [5, 6, 7, 8, 9]);

    from = back.frames.length;
    back.send({ "clu-ws": "resume", id: "r3", epoch: "another-epoch", seq: latest });
    const otherEpoch = json(await back.next("gap r3", control("gap", (f) => f.id === "r3")));
    assert.match(String(otherEpoch.reason), /another epoch/);
    assert.equal(otherEpoch.epoch, epoch, "the current epoch");
    assert.equal(otherEpoch.oldest, latest - 4);
    assert.equal(otherEpoch.latest, latest);

    back.send({ "clu-ws": "resume", id: "r4", epoch, seq: latest + 10 });
    assert.match(
      String(json(await back.next("gap r4", control("gap", (f) => f.id === "r4"))).reason),
      /ahead/,
    );
    back.send({ "clu-ws": "resume", id: "r5", epoch, seq: latest });
    const upToDate = json(await back.next("resumed r5", control("resumed", (f) => f.id === "r5")));
    assert.deepEqual(upToDate, { "clu-ws": "resumed", id: "r5", from: latest, to: latest, count: 0 });
    assert.equal(back.frames.slice(from).filter(isReply).length, 0, "nothing replayed by r3..r5");
  });
});

Deno.test("resume of replies older than --history-age: gap, nothing replayed", async () => {
  // 4 s: the resume that must still find both replies has that long on a loaded machine.
  await withWorld("age", { args: ["--history-age", "4"] }, async ({ actor, v1 }) => {
    const client = await v1();
    const epoch = json(client.frames[0]).epoch;
    await actor.broadcast({ n: 1 });
    await actor.broadcast({ n: 2 });
    const latest = seqOf(await client.next("n=2", (f) => f.body?.n === 2))!;
    const fresh = await v1();
    fresh.send({ "clu-ws": "resume", id: 1, epoch, seq: latest - 2 });
    assert.equal(json(await fresh.next("resumed", control("resumed"))).count, 2);
    // Replies age out of the history: a timed wait is what this is about.
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    const late = await v1();
    late.send({ "clu-ws": "resume", id: 2, epoch, seq: latest - 2 });
    const gap = json(await late.next("gap", control("gap")));
    assert.match(String(gap.reason), /no longer kept/);
    assert.equal(gap.latest, latest);
    assert.ok((gap.oldest as number) > latest - 1, `oldest ${gap.oldest}`);
    assert.equal(late.frames.filter(isReply).length, 0);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Actor state

Deno.test("state: the latest value of each keyword per actor, all actors or by globs; GET /actors and /actors/<name>", async () => {
  await withWorld("state", {}, async ({ gateway, actor, v1 }) => {
    const client = await v1();
    await publishAs(actor, "lvm.ecp", { dome_status: "0x10", n: 1 });
    await publishAs(actor, "lvm.ecp", { dome_status: "0x20" }, { code: ":" });
    await publishAs(actor, "lvm.sp1.ieb", { pressure: 1.5, labels: ["a", "b"], nested: { x: null } });
    await publishAs(actor, "apogee", { temp: 3 });
    await publishAs(actor, "apogee", "a text body");
    client.send({ consumer: actor.name, command_string: "status", command_id: "s-1" });
    await client.next("status done", replyTo("s-1", ":"));
    client.send({ consumer: `ghost-${RUN}`, command_string: "status", command_id: "s-2" });
    const last = await client.next("the routing failure", replyTo("s-2", "f"));

    client.send({ "clu-ws": "state", id: 1 });
    const all = json(await client.next("state 1", control("state", (f) => f.id === 1)));
    assert.deepEqual(Object.keys(all), ["clu-ws", "id", "seq", "actors"]);
    assert.equal(all.seq, seqOf(last), "the position the snapshot reflects");
    const actors = all.actors as Record<string, { last_seen: string; keywords: Record<string, Json> }>;
    assert.deepEqual(
      Object.keys(actors).sort(),
      [actor.name, "apogee", "lvm.ecp", "lvm.sp1.ieb"].sort(),
      "no entry for the actor that does not exist",
    );
    const ecp = actors["lvm.ecp"];
    assert.match(ecp.last_seen, ISO_UTC);
    assert.deepEqual(Object.keys(ecp.keywords).sort(), ["dome_status", "n"]);
    assert.equal(ecp.keywords.dome_status.value, "0x20", "the latest value");
    assert.equal(ecp.keywords.dome_status.code, ":");
    assert.match(String(ecp.keywords.dome_status.seen), ISO_UTC);
    assert.deepEqual(ecp.keywords.n, { value: 1, seen: ecp.keywords.n.seen, code: "i" });
    assert.deepEqual(actors["lvm.sp1.ieb"].keywords.labels.value, ["a", "b"]);
    assert.deepEqual(actors["lvm.sp1.ieb"].keywords.nested.value, { x: null });
    assert.deepEqual(Object.keys(actors.apogee.keywords), ["temp"], "a non-object body only marks last_seen");
    assert.equal(actors[actor.name].keywords.temperature.value, 12.5, "replies to commands count too");
    assert.equal(actors[actor.name].keywords.dome.value, "open");

    client.send({ "clu-ws": "state", id: 2, actors: ["lvm.*"] });
    const some = json(await client.next("state 2", control("state", (f) => f.id === 2)));
    assert.deepEqual(Object.keys(some.actors as Json).sort(), ["lvm.ecp", "lvm.sp1.ieb"]);
    assert.deepEqual((some.actors as Json)["lvm.ecp"], ecp);
    client.send({ "clu-ws": "state", id: 3, actors: ["apogee", "nobody"] });
    const named = json(await client.next("state 3", control("state", (f) => f.id === 3)));
    assert.deepEqual(Object.keys(named.actors as Json), ["apogee"]);
    client.send({ "clu-ws": "state", id: 4, actors: ["nobody*"] });
    assert.deepEqual(json(await client.next("state 4", control("state", (f) => f.id === 4))).actors, {});

    const list = await fetch(gateway.httpUrl("/actors"));
    assert.equal(list.status, 200);
    assert.match(String(list.headers.get("content-type")), /application\/json/);
    const listed = (await list.json()).actors as Array<{ name: string; last_seen: string; keywords: number }>;
    assert.deepEqual(listed.map((a) => a.name), [actor.name, "apogee", "lvm.ecp", "lvm.sp1.ieb"].sort());
    const byName = Object.fromEntries(listed.map((a) => [a.name, a]));
    assert.equal(byName["lvm.ecp"].keywords, 2);
    assert.equal(byName["lvm.sp1.ieb"].keywords, 3);
    assert.equal(byName["lvm.ecp"].last_seen, ecp.last_seen);

    const one = await fetch(gateway.httpUrl("/actors/lvm.sp1.ieb"));
    assert.equal(one.status, 200);
    assert.deepEqual(await one.json(), { name: "lvm.sp1.ieb", ...actors["lvm.sp1.ieb"] });
    const missing = await fetch(gateway.httpUrl(`/actors/ghost-${RUN}`));
    assert.equal(missing.status, 404);
    assert.match(String((await missing.json()).error), /no reply from an actor named/);
    const wrongMethod = await fetch(gateway.httpUrl("/actors"), { method: "POST", body: "{}" });
    assert.equal(wrongMethod.status, 405);
    await wrongMethod.body?.cancel();

    // Later replies update it.
    await publishAs(actor, "lvm.ecp", { dome_status: "0x30" });
    await client.next("the update", (f) => f.body?.dome_status === "0x30");
    const updated = await (await fetch(gateway.httpUrl("/actors/lvm.ecp"))).json();
    assert.equal(updated.keywords.dome_status.value, "0x30");
    assert.equal(updated.keywords.n.value, 1, "other keywords stay");
  });
});

Deno.test("GET /actors/<name> with a name that is not valid percent-encoding is a bad request, not a server error", async () => {
  await withWorld("undecodable", {}, async ({ gateway }) => {
    const response = await fetch(gateway.httpUrl("/actors/%E0%A4%A"));
    const text = await response.text();
    assert.ok(
      response.status === 400 || response.status === 404,
      `GET /actors/%E0%A4%A answered ${response.status} ${text.trim()}`,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// HTTP commands

function postCommand(gateway: GatewayProcess, body: unknown, headers: Record<string, string> = {}) {
  return fetch(gateway.httpUrl("/commands"), {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

Deno.test("POST /commands: 200 done with the replies, 502 failed, 504 timeout, 400 bad body, 409 id in use", async () => {
  await withWorld("http", {}, async ({ gateway, actor, silent }) => {
    const quiet = await silent();
    const ok = await postCommand(gateway, { consumer: actor.name, command_string: "ping" });
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers.get("content-type")), /application\/json/);
    const done = await ok.json();
    assert.deepEqual(Object.keys(done), [
      "command_id",
      "consumer",
      "status",
      "code",
      "elapsed_ms",
      "replies",
    ]);
    assert.match(done.command_id, UUID4);
    assert.equal(done.consumer, actor.name);
    assert.equal(done.status, "done");
    assert.equal(done.code, ":");
    assert.ok(Number.isInteger(done.elapsed_ms) && done.elapsed_ms >= 0);
    assert.deepEqual(done.replies.map((r: Frame) => r.headers.message_code), [">", ":"]);
    assert.deepEqual(done.replies[1].body, { text: "Pong." });
    for (const reply of done.replies) {
      assert.deepEqual(Object.keys(reply), CLU_KEYS);
      assert.equal(reply.headers.command_id, done.command_id);
      assert.equal(reply.headers.commander_id, `${gateway.name}.${actor.name}`);
    }

    const status = await (await postCommand(gateway, {
      consumer: actor.name,
      command_string: "status",
      command_id: "http-status",
    })).json();
    assert.equal(status.command_id, "http-status");
    assert.deepEqual(status.replies.map((r: Frame) => r.headers.message_code), [">", "i", ":"]);
    assert.deepEqual(status.replies[1].body, { temperature: 12.5, dome: "open" });

    const failed = await postCommand(gateway, { consumer: actor.name, command_string: "fail" });
    assert.equal(failed.status, 502);
    const failedBody = await failed.json();
    assert.equal(failedBody.status, "failed");
    assert.equal(failedBody.code, "f");
    assert.deepEqual(failedBody.replies.at(-1).body, { error: "failed on purpose" });

    const lost = await postCommand(gateway, { consumer: `ghost-${RUN}`, command_string: "status" });
    assert.equal(lost.status, 502);
    assert.equal((await lost.json()).status, "failed");

    const slow = postCommand(gateway, {
      consumer: quiet.name,
      command_string: "wait",
      command_id: "http-slow",
      // Long enough that the duplicate below is sent while it still runs, on a loaded machine too.
      timeout: 5,
    });
    await until("the silent actor to get http-slow", () => quiet.received.includes("http-slow"));
    const duplicate = await postCommand(gateway, {
      consumer: quiet.name,
      command_string: "again",
      command_id: "http-slow",
    });
    assert.equal(duplicate.status, 409);
    assert.match(String((await duplicate.json()).error), /already used by a tracked command/);
    const timedOut = await slow;
    assert.equal(timedOut.status, 504);
    const timeoutBody = await timedOut.json();
    assert.equal(timeoutBody.status, "timeout");
    assert.equal(timeoutBody.code, null);
    assert.match(timeoutBody.error, /within 5 s/);
    assert.deepEqual(timeoutBody.replies, []);
    assert.ok(timeoutBody.elapsed_ms >= 4900, `elapsed_ms ${timeoutBody.elapsed_ms}`);

    const bad: Array<[unknown, RegExp]> = [
      ["not json", /not valid JSON/],
      ["[1]", /array, not an object/],
      [{ command_string: "ping" }, /missing "consumer"/],
      [{ consumer: actor.name }, /missing "command_string"/],
      [{ consumer: actor.name, command_string: "ping", timeout: 0 }, /"timeout" must be a number/],
      [{ consumer: actor.name, command_string: "ping", timeout: "5" }, /"timeout" must be a number/],
      [{ "clu-ws": "state" }, /not a control frame/],
    ];
    for (const [body, error] of bad) {
      const response = await postCommand(gateway, body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.match(String((await response.json()).error), error);
    }
    const get = await fetch(gateway.httpUrl("/commands"));
    assert.equal(get.status, 405);
    await get.body?.cancel();
    assert.equal(actor.received.length, 3, "only the ping, status and fail reached the actor");
  });
});

Deno.test("the same access rules for HTTP and websocket commands: --deny-actor gives 403, and f then failed on a socket", async () => {
  await withWorld("deny", { args: ["--deny-actor", "lvm.*"] }, async ({ actor, gateway, v1 }) => {
    const denied = await postCommand(gateway, { consumer: "lvm.ecp", command_string: "open" });
    assert.equal(denied.status, 403);
    const body = await denied.json();
    assert.equal(body.status, "failed");
    assert.equal(body.error, "actor 'lvm.ecp' is denied by --deny-actor 'lvm.*'; the command was not sent");
    assert.deepEqual(body.replies, []);
    const allowed = await postCommand(gateway, { consumer: actor.name, command_string: "ping" });
    assert.equal(allowed.status, 200);
    await allowed.body?.cancel();

    const client = await v1();
    client.send({ consumer: "lvm.ecp", command_string: "open", command_id: "no", track: true, ack: true });
    const f = await client.next("f", replyTo("no", "f"));
    assert.match(String(f.body.error), /denied by --deny-actor/);
    const end = json(await client.next("failed", control("done", (c) => c.command_id === "no")));
    assert.equal(end.status, "failed");
    assert.equal(end.code, null);
    assert.match(String(end.error), /denied by --deny-actor/);
    assert.equal(client.frames.findIndex(control("published")), -1, "never published");
  });
});

Deno.test("POST /commands is rate-limited like websocket commands (429)", async () => {
  await withWorld(
    "httprate",
    { args: ["--command-rate", "1", "--command-burst", "1"] },
    async ({ actor, gateway, v1 }) => {
      // On a websocket, the second command in a row is over the rate.
      const client = await v1();
      client.send({ consumer: actor.name, command_string: "ping", command_id: "ws-1" });
      client.send({ consumer: actor.name, command_string: "ping", command_id: "ws-2" });
      assert.match(String((await client.next("f", replyTo("ws-2", "f"))).body.error), /rate limit exceeded/);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const response = await postCommand(gateway, { consumer: actor.name, command_string: "ping" });
        statuses.push(response.status);
        await response.body?.cancel();
      }
      assert.ok(statuses.includes(429), `four POSTs in a row at 1 a second answered ${statuses}`);
    },
  );
});

const WATCHER = "watcher-token-0123456789";
const OPERATOR = "operator-token-0123456789";

async function tokensJson(): Promise<string> {
  return JSON.stringify({
    tokens: [
      { name: "dashboard", role: "watch", sha256: bytesToHex(await sha256(WATCHER)) },
      { name: "ops", role: "command", sha256: bytesToHex(await sha256(OPERATOR)) },
    ],
  });
}

Deno.test("with tokens: /commands and /actors need one (401), a watch token may not command (403); welcome role", async () => {
  await withWorld(
    "tokens",
    { env: { CLU_WS_TOKENS: await tokensJson() } },
    async ({ actor, gateway, v1 }) => {
      const command = { consumer: actor.name, command_string: "ping" };
      const none = await postCommand(gateway, command);
      assert.equal(none.status, 401);
      assert.match(String(none.headers.get("www-authenticate")), /^Bearer/);
      assert.match(String((await none.json()).error), /valid token is required/);
      const wrong = await postCommand(gateway, command, { authorization: "Bearer not-a-token-at-all-0000" });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const actors = await fetch(gateway.httpUrl("/actors"));
      assert.equal(actors.status, 401);
      await actors.body?.cancel();

      const watch = await postCommand(gateway, command, { authorization: `Bearer ${WATCHER}` });
      assert.equal(watch.status, 403);
      assert.match(String((await watch.json()).error), /may only watch/);
      const watchActors = await fetch(gateway.httpUrl("/actors"), {
        headers: { authorization: `Bearer ${WATCHER}` },
      });
      assert.equal(watchActors.status, 200);
      await watchActors.body?.cancel();
      assert.equal(actor.received.length, 0);

      const byBearer = await postCommand(gateway, command, { authorization: `Bearer ${OPERATOR}` });
      assert.equal(byBearer.status, 200);
      assert.equal((await byBearer.json()).status, "done");
      const byQuery = await fetch(gateway.httpUrl(`/commands?token=${OPERATOR}`), {
        method: "POST",
        body: JSON.stringify(command),
      });
      assert.equal(byQuery.status, 200);
      await byQuery.body?.cancel();

      const watcher = await v1({ protocols: ["clu-ws.v1", `token.${WATCHER}`] });
      assert.equal(watcher.protocol, "clu-ws.v1");
      assert.equal(json(watcher.frames[0]).role, "watch");
      const operator = await v1({ protocols: ["clu-ws.v1", `token.${OPERATOR}`] });
      assert.equal(json(operator.frames[0]).role, "command");
    },
  );
});

// ---------------------------------------------------------------------------------------------------------
// Broker link state

Deno.test("v1 clients are told when the RabbitMQ link goes down and comes back up; plain clients are not", async () => {
  const exchange = uniqueExchange("brokerstate");
  await using proxy = TcpProxy.reserve();
  proxy.up();
  await using gateway = await startGateway({
    exchange,
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
  });
  const actor = await startActor(exchange, actorName("brokerstate"));
  const clients: WsClient[] = [];
  try {
    const client = await WsClient.connect(gateway.url(), { protocols: V1 });
    clients.push(client);
    const clu = await WsClient.connect(gateway.url());
    clients.push(clu);
    assert.equal(json(await client.next("welcome", control("welcome"))).broker, "up");

    await proxy.down();
    const down = await client.next("broker down", control("broker", (f) => f.state === "down"));
    assert.deepEqual(json(down), { "clu-ws": "broker", state: "down" });
    const during = await WsClient.connect(gateway.url(), { protocols: V1 });
    clients.push(during);
    assert.equal(json(await during.next("welcome", control("welcome"))).broker, "down");
    client.send({ consumer: actor.name, command_string: "ping", command_id: "while-down", track: true });
    const unreachable = await postCommand(gateway, { consumer: actor.name, command_string: "ping" });
    assert.equal(unreachable.status, 503);
    const unreachableBody = await unreachable.json();
    assert.equal(unreachableBody.status, "failed");
    assert.match(String(unreachableBody.error), /unreachable/);
    const failed = await client.next("f while down", replyTo("while-down", "f"));
    assert.match(String(failed.body.error), /unreachable/);
    const end = json(await client.next("failed", control("done", (f) => f.command_id === "while-down")));
    assert.equal(end.status, "failed");

    proxy.up();
    const up = await client.next("broker up", control("broker", (f) => f.state === "up"), {
      timeoutMs: 30_000,
    });
    assert.ok(client.frames.indexOf(up) > client.frames.indexOf(down));
    await during.next("broker up", control("broker", (f) => f.state === "up"));
    client.send({ consumer: actor.name, command_string: "ping", command_id: "after", track: true });
    await client.next("done after", control("done", (f) => f.command_id === "after" && f.status === "done"));

    clu.send({ consumer: actor.name, command_string: "ping", command_id: "plain-after" });
    await clu.next("Pong", replyTo("plain-after", ":"));
    assert.ok(clu.frames.every(isReply), "no control frame for the plain client");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await actor.close();
  }
});
