// The gateway's life: broker down at start or lost mid-run, and stopping on
// SIGTERM/SIGINT in time. Broker outages are made with a TCP fault proxy, so
// the shared RabbitMQ keeps running for every other test.

import assert from "node:assert/strict";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { healthState, startGateway } from "./helpers/gateway_process.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";

Deno.test("with RabbitMQ down at start, clients are served, commands fail at once, then traffic flows", async () => {
  const exchange = uniqueExchange("down");
  await using proxy = TcpProxy.reserve();
  await using gateway = await startGateway({
    exchange,
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
    waitForBroker: false,
  });
  await gateway.waitForLog("a retry is scheduled", (r) => /cannot reach RabbitMQ/.test(r.message));
  const response = await fetch(gateway.httpUrl("/healthz"));
  assert.equal(response.status, 503);
  assert.equal((await response.json()).broker, "down");

  const client = await WsClient.connect(gateway.url());
  try {
    client.send({ consumer: "testactor", command_string: "ping", command_id: "early-1" });
    const failed = await client.next("f for early-1", replyTo("early-1", "f"));
    assert.equal(failed.body.error, "RabbitMQ is unreachable; the command was not sent");
    assert.equal(failed.headers.sender, gateway.name);

    proxy.up();
    await gateway.waitForLog("link up", (r) => /RabbitMQ link up/.test(r.message), { timeoutMs: 20_000 });
    await healthState(gateway, "up");
    const actor = await startActor(exchange, "testactor");
    try {
      client.send({ consumer: "testactor", command_string: "ping", command_id: "late-1" });
      const done = await client.next("Pong for late-1", replyTo("late-1", ":"));
      assert.deepEqual(done.body, { text: "Pong." });
    } finally {
      await actor.close();
    }
  } finally {
    await client.close();
  }
});

Deno.test("after the broker link is lost, clients stay connected and the link comes back with its queue", async () => {
  const exchange = uniqueExchange("lost");
  await using proxy = TcpProxy.reserve();
  proxy.up();
  await using gateway = await startGateway({
    exchange,
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
  });
  const actor = await startActor(exchange, "testactor");
  const client = await WsClient.connect(gateway.url());
  try {
    client.send({ consumer: "testactor", command_string: "ping", command_id: "before" });
    await client.next("Pong before the cut", replyTo("before", ":"));

    const ups = gateway.logs.length;
    await proxy.down();
    await gateway.waitForLog("link lost", (r) => /RabbitMQ link lost/.test(r.message));
    client.send({ consumer: "testactor", command_string: "ping", command_id: "during" });
    const failed = await client.next("f during the outage", replyTo("during", "f"));
    assert.match(String(failed.body.error), /unreachable/);

    proxy.up();
    await gateway.waitForLog("link up again", (r) => /RabbitMQ link up/.test(r.message), {
      after: ups,
      timeoutMs: 20_000,
    });
    assert.equal(client.readyState, WebSocket.OPEN, "the client stayed connected");
    client.send({ consumer: "testactor", command_string: "ping", command_id: "after" });
    await client.next("Pong after the link came back", replyTo("after", ":"));
    await actor.broadcast({ after_reconnect: true });
    await client.next("broadcast after reconnect", (f) => f.body.after_reconnect === true);
  } finally {
    await client.close();
    await actor.close();
  }
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} closes clients with 1001 and exits 0 within 2 s`, async () => {
    const exchange = uniqueExchange("stop");
    await using gateway = await startGateway({ exchange });
    const client = await WsClient.connect(gateway.url());
    const { code, ms } = await gateway.stop(signal);
    const closed = await client.closed;
    assert.equal(code, 0, gateway.dump());
    assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`);
    assert.equal(closed.code, 1001);
    assert.equal(closed.reason, "clu-ws is shutting down");
  });
}
