// End-to-end: the gateway process, the real RabbitMQ, a CLU-style actor and
// real websocket clients. Every test has its own exchange.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connectBroker, uniqueExchange } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/;

interface World {
  exchange: string;
  gateway: GatewayProcess;
  actor: TestActor;
  client: WsClient;
}

/** Runs `body` with a gateway, an actor `testactor` and one connected client; cleans up after. */
async function withWorld(body: (world: World) => Promise<void>, actorName = "testactor"): Promise<void> {
  const exchange = uniqueExchange();
  await using gateway = await startGateway({ exchange });
  const actor = await startActor(exchange, actorName);
  const client = await WsClient.connect(gateway.url());
  try {
    await body({ exchange, gateway, actor, client });
  } finally {
    await client.close();
    await actor.close();
  }
}

Deno.test("a command is published exactly as a CLU client does, and its replies reach the client", async () => {
  await withWorld(async ({ exchange, gateway, actor, client }) => {
    client.send({ consumer: "testactor", command_string: "ping", command_id: "id-1" });
    const done = await client.next(":", replyTo("id-1", ":"));
    const running = await client.next(">", replyTo("id-1", ">"));

    assert.equal(actor.received.length, 1);
    const command = actor.received[0];
    assert.equal(command.routingKey, "command.testactor");
    assert.deepEqual(command.body, { command_string: "ping" });
    assert.equal(command.contentType, "text/json");
    assert.equal(command.correlationId, "id-1");
    assert.equal(command.replyTo, `${gateway.name}_replies`);
    assert.match(command.messageId ?? "", /^[0-9a-f]{32}$/);
    assert.deepEqual(command.headers, {
      command_id: "id-1",
      commander_id: `${gateway.name}.testactor`,
      internal: false,
      write_to_log: true,
    });

    const raw = client.raw[client.frames.indexOf(done)];
    assert.deepEqual(Object.keys(JSON.parse(raw)), [
      "headers",
      "exchange",
      "message_id",
      "routing_key",
      "timestamp",
      "body",
    ]);
    assert.deepEqual(done.headers, {
      command_id: "id-1",
      commander_id: `${gateway.name}.testactor`,
      internal: false,
      message_code: ":",
      sender: "testactor",
    });
    assert.equal(done.exchange, exchange);
    assert.equal(done.routing_key, `reply.${gateway.name}.testactor`);
    assert.match(done.message_id ?? "", /^[0-9a-f]{32}$/);
    assert.match(done.timestamp ?? "", ISO_UTC);
    assert.deepEqual(done.body, { text: "Pong." });
    assert.equal(running.headers.internal, true);
    assert.deepEqual(running.body, {});
    assert.ok(client.frames.indexOf(running) < client.frames.indexOf(done), "`>` arrives before `:`");
  });
});

Deno.test("broadcasts reach every connected client, on any upgrade path", async () => {
  await withWorld(async ({ gateway, actor, client }) => {
    const second = await WsClient.connect(gateway.url("/behind/a/reverse/proxy"));
    try {
      await actor.broadcast({ dome_status: "0x10", dome_status_labels: "POSITION_UNKNOWN" });
      for (const c of [client, second]) {
        const frame = await c.next("broadcast", (f) => f.routing_key === "reply.broadcast");
        assert.equal(frame.headers.command_id, null);
        assert.equal(frame.headers.sender, "testactor");
        assert.deepEqual(frame.body, { dome_status: "0x10", dome_status_labels: "POSITION_UNKNOWN" });
      }
    } finally {
      await second.close();
    }
  });
});

Deno.test("replies to commands that another AMQP client sent reach websocket clients", async () => {
  await withWorld(async ({ exchange, client }) => {
    const connection = await connectBroker();
    try {
      const channel = await connection.createConfirmChannel();
      channel.publish(
        exchange,
        "command.testactor",
        Buffer.from(JSON.stringify({ command_string: "status" })),
        {
          contentType: "text/json",
          correlationId: "other-7",
          headers: {
            command_id: "other-7",
            commander_id: "amqp-client-0123456789ab.testactor",
            internal: false,
            write_to_log: true,
          },
        },
      );
      await channel.waitForConfirms();
      const data = await client.next("status data", replyTo("other-7", "i"));
      assert.equal(data.routing_key, "reply.amqp-client-0123456789ab.testactor");
      assert.deepEqual(data.body, { temperature: 12.5, dome: "open" });
      await client.next("status done", replyTo("other-7", ":"));
    } finally {
      await connection.close();
    }
  });
});

Deno.test("a missing, null or empty command_id becomes a UUID4 that the replies carry", async () => {
  await withWorld(async ({ actor, client }) => {
    client.send({ consumer: "testactor", command_string: "ping" });
    client.send({ consumer: "testactor", command_string: "ping", command_id: null });
    client.send({ consumer: "testactor", command_string: "ping", command_id: "" });
    const done = await client.count("three Pongs", (f) => f.headers.message_code === ":", 3);
    const ids = done.map((f) => String(f.headers.command_id));
    for (const id of ids) assert.match(id, UUID4);
    assert.equal(new Set(ids).size, 3);
    assert.deepEqual(actor.received.map((c) => c.headers.command_id).sort(), [...ids].sort());
    assert.deepEqual(actor.received.map((c) => c.correlationId).sort(), [...ids].sort());
  });
});

Deno.test("a command to an actor that is not running fails with CLU's f reply, seen by every client", async () => {
  await withWorld(async ({ exchange, gateway, client }) => {
    const watcher = await WsClient.connect(gateway.url());
    try {
      client.send({ consumer: "ghost", command_string: "status", command_id: "lost-1" });
      for (const c of [client, watcher]) {
        const failed = await c.next("f for lost-1", replyTo("lost-1", "f"));
        assert.deepEqual(failed.body, { error: "Failed routing message to consumer 'ghost'." });
        assert.equal(failed.headers.sender, "ghost");
        assert.equal(failed.headers.commander_id, `${gateway.name}.ghost`);
        assert.equal(failed.headers.write_to_log, true);
        assert.equal(failed.routing_key, `reply.${gateway.name}`);
        assert.equal(failed.exchange, exchange);
        assert.equal(failed.timestamp, null);
        assert.match(failed.message_id ?? "", /^[0-9a-f]{32}$/);
      }
    } finally {
      await watcher.close();
    }
  });
});

Deno.test("actor names with dots are commanded on command.<name>", async () => {
  await withWorld(async ({ actor, client }) => {
    client.send({ consumer: "lvm.sp1.ieb", command_string: "ping", command_id: "dot-1" });
    const done = await client.next("Pong", replyTo("dot-1", ":"));
    assert.equal(done.headers.sender, "lvm.sp1.ieb");
    assert.equal(actor.received[0].routingKey, "command.lvm.sp1.ieb");
  }, "lvm.sp1.ieb");
});

Deno.test("bad input gets a reply-shaped error for that client only, and the socket keeps working", async () => {
  await withWorld(async ({ gateway, actor, client }) => {
    const bystander = await WsClient.connect(gateway.url());
    try {
      const cases: Array<{ send: unknown; code: "e" | "f"; error: RegExp; id?: unknown }> = [
        { send: "not json", code: "e", error: /not valid JSON/ },
        { send: "[1, 2]", code: "e", error: /array, not an object/ },
        { send: "42", code: "e", error: /number, not an object/ },
        { send: new Uint8Array([0xff, 0x00, 0x7b]), code: "e", error: /binary frames are not supported/ },
        { send: { command_string: "ping" }, code: "e", error: /missing "consumer"/ },
        { send: { consumer: 7, command_string: "ping" }, code: "e", error: /"consumer" must be a string/ },
        { send: { consumer: "testactor" }, code: "e", error: /missing "command_string"/ },
        {
          send: { consumer: "testactor", command_string: "" },
          code: "e",
          error: /"command_string" is empty/,
        },
        {
          send: { consumer: "testactor", command_string: ["ping"], command_id: "bad-1" },
          code: "f",
          error: /"command_string" must be a string/,
          id: "bad-1",
        },
        {
          send: { consumer: "testactor", command_string: "ping", command_id: 17 },
          code: "f",
          error: /command_id must be a string/,
          id: 17,
        },
        {
          send: { consumer: "testactor", command_string: "ping", command_id: { a: 1 } },
          code: "e",
          error: /command_id must be a string/,
        },
      ];
      for (const [i, c] of cases.entries()) {
        client.send(c.send);
        const frame = await client.next(`error #${i}`, () => client.frames.length > i);
        const got = client.frames[i];
        assert.equal(got.headers.message_code, c.code, `case ${i}: ${JSON.stringify(got)}`);
        assert.equal(got.headers.sender, gateway.name);
        assert.equal(got.headers.command_id, c.id ?? null);
        assert.match(String(got.body.error), c.error, `case ${i}`);
        assert.ok(frame);
      }
      client.send({ consumer: "testactor", command_string: "ping", command_id: "after-bad" });
      await client.next("Pong after bad input", replyTo("after-bad", ":"));
      assert.equal(actor.received.length, 1, "no bad input reached the actor");
      await bystander.next("the valid command's reply", replyTo("after-bad", ":"));
      assert.equal(
        bystander.frames.filter((f) => f.headers.sender === gateway.name).length,
        0,
        "error frames go to the sender only",
      );
    } finally {
      await bystander.close();
    }
  });
});

Deno.test("replies CLU would drop are not forwarded; Python's NaN becomes null", async () => {
  await withWorld(async ({ gateway, actor, client }) => {
    const valid = { command_id: "v-1", commander_id: "x.testactor", internal: false, sender: "testactor" };
    await actor.publishRaw("reply.x.testactor", "{}", {
      headers: { ...valid, message_code: undefined },
      correlationId: "v-1",
    });
    await actor.publishRaw("reply.x.testactor", "{}", {
      headers: { ...valid, message_code: "" },
      correlationId: "v-1",
    });
    await actor.publishRaw("reply.x.testactor", "{}", {
      headers: { ...valid, message_code: "i" },
      correlationId: "another-id",
    });
    await actor.publishRaw("reply.x.testactor", "this is not json", {
      headers: { ...valid, message_code: "i" },
      correlationId: "v-1",
    });
    await actor.publishRaw(
      "reply.x.testactor",
      '{"temp": NaN, "limits": [-Infinity, Infinity], "label": "NaN stays"}',
      { headers: { ...valid, message_code: "i" }, correlationId: "v-1", timestamp: 1795594225 },
    );
    const frame = await client.next("the valid reply", replyTo("v-1", "i"));
    assert.deepEqual(frame.body, { temp: null, limits: [null, null], label: "NaN stays" });
    assert.equal(frame.timestamp, "2026-11-25T08:10:25+00:00");
    assert.equal(client.frames.length, 1, `only the valid reply arrives: ${client.raw.join("\n")}`);
    const logged = await gateway.waitForLog(
      "non-JSON body logged",
      (r) => /body is not JSON/.test(String(r.reason)),
    );
    assert.equal(logged.routingKey, "reply.x.testactor");
  });
});

Deno.test("/healthz reports the broker link, clients and version", async () => {
  await withWorld(async ({ gateway }) => {
    const response = await fetch(gateway.httpUrl("/healthz"));
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.broker, "up");
    assert.equal(body.clients, 1);
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    const other = await fetch(gateway.httpUrl("/no-such-page"));
    assert.equal(other.status, 404);
    await other.body?.cancel();
  });
});
