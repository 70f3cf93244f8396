// The gateway under broker faults, against the real RabbitMQ: a stalled link
// (bytes stop, TCP stays open), repeated cuts, a restart of the broker's
// application, a resource alarm, and a cut in the middle of a burst. In every
// case clients stay connected, every command ends in a frame (never silence),
// and service resumes by itself.
//
// Two tests act on the shared broker itself (`rabbitmqctl stop_app`, a memory
// alarm); both put it back in a `finally`, whatever happens.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect as amqpConnect } from "amqplib";
import { AMQP_URL, connectBroker, uniqueExchange, until } from "./helpers/broker.ts";
import { startActor, startSilentActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, healthState, type LogRecord, startGateway } from "./helpers/gateway_process.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { type Frame, replyTo, WsClient } from "./helpers/ws_client.ts";

const UNREACHABLE = "RabbitMQ is unreachable; the command was not sent";

/** Runs `rabbitmqctl` with `args`; resolves with its exit code and output. */
async function rabbitmqctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command("rabbitmqctl", { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout).trim(),
    stderr: decoder.decode(output.stderr).trim(),
  };
}

/** Like {@linkcode rabbitmqctl}, but throws unless it exits 0; resolves with stdout. */
async function rabbitmqctlOk(...args: string[]): Promise<string> {
  const result = await rabbitmqctl(...args);
  if (result.code !== 0) {
    throw new Error(`rabbitmqctl ${args.join(" ")} exited ${result.code}: ${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

/** The broker's queues with that name, with their consumer counts (`rabbitmqctl list_queues`). */
async function queuesNamed(name: string): Promise<Array<{ name: string; consumers: number }>> {
  // `-q --formatter json` prints one JSON array of {"name": ..., "consumers": ...} objects.
  const queues: Array<{ name: string; consumers: number }> = JSON.parse(
    await rabbitmqctlOk("list_queues", "-q", "name", "consumers", "--formatter", "json"),
  );
  return queues.filter((q) => q.name === name);
}

/** How many AMQP connections the broker has from a client with that `connection_name`. */
async function connectionsNamed(name: string): Promise<number> {
  // client_properties comes as [key, type, value] triples.
  const connections: Array<{ client_properties: Array<[string, string, unknown]> }> = JSON.parse(
    await rabbitmqctlOk("list_connections", "-q", "client_properties", "--formatter", "json"),
  );
  return connections.filter((c) =>
    c.client_properties.some(([key, , value]) => key === "connection_name" && value === name)
  ).length;
}

/** Resolves once port 5672 accepts AMQP connections (not just `rabbitmq-diagnostics ping`). */
async function brokerAcceptsConnections(timeoutMs = 60_000): Promise<void> {
  await until("RabbitMQ to accept AMQP connections", async () => {
    const connection = await connectBroker();
    await connection.close();
    return true;
  }, { timeoutMs, intervalMs: 200 });
}

/** Starts the broker application if it is stopped and waits for its port; safe when it runs. */
async function ensureBrokerRunning(): Promise<void> {
  const result = await rabbitmqctl("start_app");
  if (result.code !== 0 && !/already running/i.test(result.stdout + result.stderr)) {
    console.error(`rabbitmqctl start_app exited ${result.code}: ${result.stderr || result.stdout}`);
  }
  await brokerAcceptsConnections();
}

/**
 * Makes sure `rabbitmqctl <restore>` runs even if this test process dies (an
 * uncaught error, a kill) before its `finally`: a detached shell watches the
 * process and runs it then. Disposing (the normal path) stops the watch.
 */
async function brokerGuard(...restore: string[]): Promise<AsyncDisposable> {
  const flag = await Deno.makeTempFile({ prefix: "clu-ws-broker-guard-" });
  const script = 'flag=$1; pid=$2; shift 2; while [ -e "$flag" ]; do ' +
    'if ! kill -0 "$pid" 2>/dev/null; then rabbitmqctl "$@" >/dev/null 2>&1; rm -f "$flag"; exit 0; fi; ' +
    "sleep 0.5; done";
  // `setsid -f` forks, so the watcher is not this process's child and outlives it.
  await new Deno.Command("setsid", {
    args: ["-f", "sh", "-c", script, "sh", flag, String(Deno.pid), ...restore],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return {
    async [Symbol.asyncDispose]() {
      await Deno.remove(flag).catch(() => {});
    },
  };
}

/** The gateway's wall-clock time of a log record (ms since the epoch). */
function loggedAt(record: LogRecord): number {
  return Date.parse(String(record["@timestamp"]));
}

const linkUp = (r: LogRecord) => /RabbitMQ link up/.test(r.message);
const linkLost = (r: LogRecord) => /RabbitMQ link lost/.test(r.message);

const RUN = crypto.randomUUID().slice(0, 8);

/**
 * An actor name of its own for each test: actors' `<name>_commands` queues are
 * exclusive and not per exchange, and RabbitMQ deletes a closed connection's
 * exclusive queue asynchronously, so a name reused at once can meet 405 RESOURCE_LOCKED.
 */
function actorName(label: string): string {
  return `faults-${RUN}-${label}`;
}

/** Connects a client; a failure carries the gateway's last log lines. */
async function connectClient(gateway: GatewayProcess): Promise<WsClient> {
  try {
    return await WsClient.connect(gateway.url());
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : err}; gateway log:\n${gateway.dump()}`);
  }
}

/** Sends a ping with `id` to `actor` and resolves with its `:` frame. */
function ping(client: WsClient, actor: string, id: string, timeoutMs = 10_000): Promise<Frame> {
  client.send({ consumer: actor, command_string: "ping", command_id: id });
  return client.next(`Pong for ${id}`, replyTo(id, ":"), { timeoutMs });
}

/** A gateway behind a fault proxy, an actor connected directly, and one client. */
interface ProxiedWorld {
  proxy: TcpProxy;
  gateway: GatewayProcess;
  actor: TestActor;
  client: WsClient;
}

async function withProxiedWorld(
  label: string,
  args: string[],
  body: (world: ProxiedWorld) => Promise<void>,
): Promise<void> {
  const exchange = uniqueExchange(label);
  await using proxy = TcpProxy.reserve();
  proxy.up();
  await using gateway = await startGateway({
    exchange,
    args,
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
  });
  const actor = await startActor(exchange, actorName(label));
  let client: WsClient | undefined;
  try {
    client = await connectClient(gateway);
    await body({ proxy, gateway, actor, client });
  } finally {
    await client?.close();
    await actor.close();
  }
}

Deno.test("a confirmed command still running when the link is lost: its sender is warned its replies may be lost", async () => {
  const exchange = uniqueExchange("inflight");
  await using proxy = TcpProxy.reserve();
  proxy.up();
  await using gateway = await startGateway({
    exchange,
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
  });
  const actor = await startSilentActor(exchange, actorName("silent"));
  const client = await connectClient(gateway);
  try {
    client.send({ consumer: actor.name, command_string: "expose 900", command_id: "long-1" });
    await gateway.waitForLog(
      "the command published",
      (r) => r.commandId === "long-1" && r.outcome === "published",
    );
    await until("the actor has it", () => actor.received.includes("long-1"));
    await proxy.down();
    const warning = await client.next(
      "the warning for long-1",
      (f) => f.headers.command_id === "long-1" && f.headers.message_code === "w",
    );
    assert.match(String(warning.body.text), /RabbitMQ link was lost while this command ran/);
    assert.equal(warning.headers.sender, gateway.name);
    assert.equal(client.frames.filter((f) => f.headers.command_id === "long-1").length, 1, "told once");
  } finally {
    await client.close();
    await actor.close();
  }
});

Deno.test("a stalled broker link is noticed through heartbeats, commands fail at once, and service resumes", async () => {
  await withProxiedWorld("stall", ["--heartbeat", "1"], async ({ proxy, gateway, actor, client }) => {
    await ping(client, actor.name, "before");

    const beforeStall = gateway.logs.length;
    const stalledAt = Date.now();
    proxy.stall();
    // Published into the stalled link: the broker can never confirm it.
    client.send({ consumer: actor.name, command_string: "ping", command_id: "in-flight" });
    const lost = await gateway.waitForLog("link lost (heartbeat)", linkLost, {
      after: beforeStall,
      timeoutMs: 10_000,
    });
    const noticedMs = loggedAt(lost) - stalledAt;

    const inFlight = await client.next("f for the command in flight", replyTo("in-flight", "f"), {
      timeoutMs: 12_000,
    });
    // The broker never nacked it: the link died under it, so it may or may not have been delivered.
    assert.match(
      String(inFlight.body.error),
      /link was lost before the broker confirmed|did not confirm/,
      `the client is told what happened to a command in flight when the link dies`,
    );

    const sentAt = Date.now();
    client.send({ consumer: actor.name, command_string: "ping", command_id: "during" });
    const during = await client.next("f during the stall", replyTo("during", "f"), { timeoutMs: 5_000 });
    const failedMs = Date.now() - sentAt;
    assert.match(String(during.body.error), /RabbitMQ is unreachable|did not confirm/);
    assert.equal(during.headers.sender, gateway.name);
    assert.ok(failedMs < 2_000, `a command during the stall waited ${failedMs} ms for its f frame`);
    assert.equal(client.readyState, WebSocket.OPEN, "the client stays connected during the stall");

    const beforeResume = gateway.logs.length;
    const resumedAt = Date.now();
    proxy.resume();
    const up = await gateway.waitForLog("link up after the stall", linkUp, {
      after: beforeResume,
      timeoutMs: 45_000,
    });
    const upAt = loggedAt(up);
    await ping(client, actor.name, "after", 10_000);
    const firstReplyMs = Date.now() - upAt;
    console.log(
      `stall: noticed after ${noticedMs} ms; restored → link up ${upAt - resumedAt} ms; ` +
        `link up → first reply ${firstReplyMs} ms; f during the stall after ${failedMs} ms; ` +
        `in flight: ${inFlight.body.error}`,
    );
    assert.ok(noticedMs < 10_000, `the stall was noticed after ${noticedMs} ms`);
    assert.ok(firstReplyMs < 2_000, `replies flowed ${firstReplyMs} ms after the link came up`);
    assert.equal(client.readyState, WebSocket.OPEN, "the client stayed connected throughout");
    await healthState(gateway, "up");
    // The stalled connection and the attempts made during the stall are all gone (the broker drops a
    // dead one after two missed heartbeats): one connection, one queue, one consumer.
    await until("one connection from the gateway", async () => (await connectionsNamed(gateway.name)) === 1);
    const queue = `${gateway.name}_replies`;
    assert.deepEqual(await queuesNamed(queue), [{ name: queue, consumers: 1 }]);
  });
});

Deno.test("after repeated cuts the replies queue exists once with one consumer, and broadcasts arrive once", async () => {
  await withProxiedWorld("cuts", [], async ({ proxy, gateway, actor, client }) => {
    for (let cycle = 1; cycle <= 2; cycle++) {
      const before = gateway.logs.length;
      await proxy.down();
      await gateway.waitForLog(`link lost (cut ${cycle})`, linkLost, { after: before });
      const beforeUp = gateway.logs.length;
      proxy.up();
      await gateway.waitForLog(`link up (cut ${cycle})`, linkUp, { after: beforeUp, timeoutMs: 30_000 });
    }
    assert.equal(client.readyState, WebSocket.OPEN, "the client stayed connected through both cuts");

    const queue = `${gateway.name}_replies`;
    const queues = await queuesNamed(queue);
    assert.deepEqual(queues, [{ name: queue, consumers: 1 }], `rabbitmqctl list_queues for ${queue}`);
    assert.equal(await connectionsNamed(gateway.name), 1, "one AMQP connection from the gateway");

    const marker = crypto.randomUUID();
    await actor.broadcast({ marker, n: 1 });
    await actor.broadcast({ marker, n: 2 });
    // Replies come in order through the one queue: once the second is here, a copy of the first would be too.
    await client.next("the second broadcast", (f) => f.body.marker === marker && f.body.n === 2);
    const copies = client.frames.filter((f) => f.body.marker === marker);
    assert.deepEqual(copies.map((f) => f.body.n), [1, 2], "each broadcast reached the client exactly once");
    await ping(client, actor.name, "after-cuts");
  });
});

Deno.test("a restart of the RabbitMQ application: clients stay, commands fail meanwhile, the link and its queue come back", async () => {
  const exchange = uniqueExchange("restart");
  const name = actorName("restart");
  await using gateway = await startGateway({ exchange });
  let actor = await startActor(exchange, name);
  let client: WsClient | undefined;
  try {
    client = await connectClient(gateway);
    await ping(client, actor.name, "before");
    const beforeStop = gateway.logs.length;
    // The actor's connection would die with the application, and amqplib throws an unhandled
    // ECONNRESET from a connection without an error listener: close it first, start a new one after.
    await actor.close();
    await using _guard = await brokerGuard("start_app");
    try {
      await rabbitmqctlOk("stop_app");
      await gateway.waitForLog("link lost (stop_app)", linkLost, { after: beforeStop });
      const sentAt = Date.now();
      client.send({ consumer: actor.name, command_string: "ping", command_id: "stopped" });
      const failed = await client.next("f while the broker is stopped", replyTo("stopped", "f"));
      assert.equal(failed.body.error, UNREACHABLE);
      assert.ok(Date.now() - sentAt < 2_000, "the f frame came at once");
      assert.equal(
        client.readyState,
        WebSocket.OPEN,
        "the client stays connected while the broker is stopped",
      );
      const health = await fetch(gateway.httpUrl("/healthz"));
      assert.equal(health.status, 503);
      assert.equal((await health.json()).broker, "down");

      const beforeStart = gateway.logs.length;
      const startCalledAt = Date.now();
      await rabbitmqctlOk("start_app");
      const startReturnedAt = Date.now();
      await brokerAcceptsConnections();
      const portAt = Date.now();
      const up = await gateway.waitForLog("link up after start_app", linkUp, {
        after: beforeStart,
        timeoutMs: 45_000,
      });
      console.log(
        `restart: from the start_app call: it returned after ${startReturnedAt - startCalledAt} ms, ` +
          `the port accepted AMQP after ${portAt - startCalledAt} ms, the gateway's link was up after ${
            loggedAt(up) - startCalledAt
          } ms`,
      );
    } finally {
      await ensureBrokerRunning();
    }

    const queue = `${gateway.name}_replies`;
    assert.deepEqual(
      await queuesNamed(queue),
      [{ name: queue, consumers: 1 }],
      "the queue is declared again",
    );
    actor = await startActor(exchange, name);
    await ping(client, actor.name, "after-restart");
    assert.equal(client.readyState, WebSocket.OPEN, "the client stayed connected through the restart");
    await healthState(gateway, "up");
  } finally {
    await client?.close();
    await actor.close();
  }
});

Deno.test("a resource alarm: every command gets an f frame, never silence, and service resumes when it clears", async () => {
  const exchange = uniqueExchange("alarm");
  const name = actorName("alarm");
  await using gateway = await startGateway({ exchange });
  const actor = await startActor(exchange, name);
  let client: WsClient | undefined;
  try {
    client = await connectClient(gateway);
    await ping(client, actor.name, "before");
    let watermark = await rabbitmqctlOk("eval", "vm_memory_monitor:get_vm_memory_high_watermark().");
    if (Number(watermark) < 0.01) {
      // A tiny value is a leftover of an interrupted run of this test: put back the default.
      console.warn(`the memory watermark was ${watermark}; restoring RabbitMQ's default 0.4`);
      watermark = "0.4";
    }
    const beforeAlarm = gateway.logs.length;
    await using _guard = await brokerGuard(
      "eval",
      `vm_memory_monitor:set_vm_memory_high_watermark(${watermark}).`,
    );
    try {
      await rabbitmqctlOk("set_vm_memory_high_watermark", "0.00001");
      await until("the memory alarm", async () => {
        return (await rabbitmqctlOk("eval", "rabbit_alarm:get_alarms().")).includes("memory");
      }, { timeoutMs: 20_000, intervalMs: 200 });

      // RabbitMQ tells a connection it is blocked only when it publishes.
      const firstSentAt = Date.now();
      client.send({ consumer: actor.name, command_string: "ping", command_id: "first" });
      const blocked = await gateway.waitForLog(
        "RabbitMQ blocks publishes",
        (r) => /RabbitMQ blocks publishes/.test(r.message),
        { after: beforeAlarm, timeoutMs: 10_000 },
      );
      const health = await (await fetch(gateway.httpUrl("/healthz"))).json();
      assert.equal(typeof health.blocked, "string", "/healthz reports the block");

      const secondSentAt = Date.now();
      client.send({ consumer: actor.name, command_string: "ping", command_id: "second" });
      const second = await client.next("f for the command while blocked", replyTo("second", "f"));
      const secondMs = Date.now() - secondSentAt;
      assert.ok(
        String(second.body.error).startsWith("RabbitMQ is blocking publishes:"),
        `body.error: ${second.body.error}`,
      );
      assert.equal(second.headers.sender, gateway.name);
      assert.ok(secondMs < 2_000, `the f frame for a command while blocked took ${secondMs} ms`);

      // The first one went out before the gateway knew: the broker holds it; its sender is told at once.
      const first = await client.next("f for the command that met the alarm", replyTo("first", "f"), {
        timeoutMs: 20_000,
      });
      const firstMs = Date.now() - firstSentAt;
      assert.match(String(first.body.error), /^RabbitMQ is blocking publishes: .*holds the command/);
      assert.ok(firstMs < 5_000, `the f frame for the command that met the alarm took ${firstMs} ms`);
      assert.equal(client.readyState, WebSocket.OPEN, "the client stays connected");
      console.log(
        `alarm: connection.blocked ${loggedAt(blocked) - firstSentAt} ms after the first publish ` +
          `("${blocked.reason}"); first command f after ${firstMs} ms: ${first.body.error}; ` +
          `second command f after ${secondMs} ms`,
      );
    } finally {
      await rabbitmqctlOk("eval", `vm_memory_monitor:set_vm_memory_high_watermark(${watermark}).`);
    }
    assert.equal(
      await rabbitmqctlOk("eval", "vm_memory_monitor:get_vm_memory_high_watermark()."),
      watermark,
      "the watermark is restored exactly",
    );
    await gateway.waitForLog(
      "RabbitMQ unblocked publishes",
      (r) => /RabbitMQ unblocked publishes/.test(r.message),
      {
        after: beforeAlarm,
        timeoutMs: 20_000,
      },
    );
    await ping(client, actor.name, "after");
    const health = await (await fetch(gateway.httpUrl("/healthz"))).json();
    assert.equal(health.blocked, null);
    // The first command's publish was held by the broker, not dropped: the actor's queue is FIFO, so now
    // that "after" is answered the actor has received "first" if it ever will. On RabbitMQ 3.10 it does,
    // and runs it: the client sees the f frame ("it may or may not reach the actor"), then the replies.
    const ranFirst = actor.received.some((c) => c.headers.command_id === "first");
    if (ranFirst) await client.next("the late Pong for first", replyTo("first", ":"));
    console.log(
      `alarm: after the unblock the actor ${ranFirst ? "ran" : "never received"} the first command${
        ranFirst ? " (its f frame came first, then its replies)" : ""
      }`,
    );
  } finally {
    await client?.close();
    await actor.close();
  }
});

Deno.test("a burst with a cut in the middle: every command has one logged outcome, and every failure an f frame", async () => {
  const total = 300;
  await withProxiedWorld("burst", ["--command-rate", "0"], async ({ proxy, gateway, actor, client }) => {
    const ids = Array.from({ length: total }, (_, i) => `burst-${i}`);
    const idSet = new Set(ids);
    const isActorReply = (f: Frame) =>
      idSet.has(String(f.headers.command_id)) && [">", ":"].includes(String(f.headers.message_code));
    const before = gateway.logs.length;

    // As fast as the client can, yielding to its event loop between frames so that it sees the
    // actor's replies while it sends: the cut lands in the middle of the burst, after 50 replies.
    // (All at once, the gateway publishes every command before the first 50 replies are back.)
    let sentBeforeCut = -1;
    for (let i = 0; i < total; i++) {
      client.send({ consumer: actor.name, command_string: "ping", command_id: ids[i] });
      if (sentBeforeCut < 0 && (client.frames.filter(isActorReply).length >= 50 || i === total / 2)) {
        // Should the replies be slow, cut at half-way at the latest, once 50 are in.
        if (i === total / 2) await client.count("50 replies from the actor", isActorReply, 50);
        await proxy.down();
        sentBeforeCut = i + 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
    }

    const outcomes = new Map<string, LogRecord[]>();
    const collect = () => {
      outcomes.clear();
      for (const record of gateway.logs.slice(before)) {
        const id = String(record.commandId);
        if (record.outcome === undefined || !idSet.has(id)) continue;
        outcomes.set(id, [...(outcomes.get(id) ?? []), record]);
      }
      return outcomes.size === total;
    };
    // The longest an outcome can take is the confirm timeout (10 s).
    await until("an outcome record for every command", collect, { timeoutMs: 30_000 }).catch((err) => {
      const missing = ids.filter((id) => !outcomes.has(id));
      throw new Error(`${err.message}; ${missing.length} without an outcome, e.g. ${missing.slice(0, 5)}`);
    });
    const counts: Record<string, number> = {};
    const failed: string[] = [];
    const reasons = new Map<string, number>();
    for (const [id, records] of outcomes) {
      assert.equal(records.length, 1, `exactly one outcome for ${id}`);
      const record = records[0];
      assert.match(
        String(record.message),
        // LogTape renders string values quoted: command "burst-0" to "faults-…-burst" from client 1: "published"
        new RegExp(`^command "?${id}"? to "?${actor.name}"? from client \\S+: "?${record.outcome}"?$`),
      );
      const outcome = String(record.outcome);
      counts[outcome] = (counts[outcome] ?? 0) + 1;
      if (outcome === "failed") {
        failed.push(id);
        reasons.set(String(record.reason), (reasons.get(String(record.reason)) ?? 0) + 1);
      }
    }
    const published = counts.published ?? 0;
    const unroutable = counts.unroutable ?? 0;
    console.log(
      `burst: cut after ${sentBeforeCut} sent; ${total} sent = ${published} published + ${failed.length} failed + ` +
        `${unroutable} unroutable; failure reasons: ${JSON.stringify(Object.fromEntries(reasons))}`,
    );
    assert.deepEqual(
      Object.keys(counts).filter((k) => !["published", "failed", "unroutable"].includes(k)),
      [],
    );
    assert.equal(published + failed.length + unroutable, total);
    assert.equal(unroutable, 0, "the actor was bound all along");
    for (const id of ids.slice(sentBeforeCut)) {
      assert.equal(outcomes.get(id)?.[0].outcome, "failed", `${id} was sent after the cut`);
    }
    for (const reason of reasons.keys()) {
      // The broker never nacked anything here: the link was cut.
      assert.doesNotMatch(reason, /nack|refused/, `a command lost in the cut was reported as "${reason}"`);
    }

    // Every failed command got exactly one f frame from the gateway, to this client.
    const failedSet = new Set(failed);
    await client.count(
      "an f frame for every failed command",
      (f) => {
        return f.headers.message_code === "f" && f.headers.sender === gateway.name &&
          failedSet.has(String(f.headers.command_id));
      },
      failed.length,
      { timeoutMs: 10_000 },
    );
    for (const id of failed) {
      const frames = client.frames.filter((f) =>
        f.headers.command_id === id && f.headers.message_code === "f"
      );
      assert.equal(frames.length, 1, `one f frame for ${id}`);
    }
    assert.equal(client.readyState, WebSocket.OPEN, "the client stayed connected");

    const beforeUp = gateway.logs.length;
    proxy.up();
    await gateway.waitForLog("link up after the cut", linkUp, { after: beforeUp, timeoutMs: 30_000 });
    await ping(client, actor.name, "after-burst");
    // The actor's queue is FIFO and the ping went in after every command routed before the cut:
    // now that it is answered, the actor has received all it ever will of the burst.
    const received = new Set(actor.received.map((c) => String(c.headers.command_id)));
    for (const id of ids) {
      const record = outcomes.get(id)![0];
      if (record.outcome === "published") {
        assert.ok(received.has(id), `${id} was confirmed but never reached the actor`);
      } else if (received.has(id)) {
        // It did reach the actor, so the client must not have been told it was not sent.
        assert.doesNotMatch(
          String(record.reason),
          /was not sent|was not delivered/,
          `${id} reached the actor`,
        );
      }
    }
  });
});

/** Resolves with the instant (ms since the epoch) port 5672 first accepts a TCP connection; polls every 20 ms. */
async function portOpens(timeoutMs = 60_000): Promise<number> {
  return await until("port 5672 to accept TCP connections", async () => {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: 5672 });
      conn.close();
      return Date.now();
    } catch {
      return undefined;
    }
  }, { timeoutMs, intervalMs: 20 });
}

/**
 * Publishes a broadcast with `marker` every 100 ms, from its own connection
 * (made as soon as the broker lets it log in), until `stop` resolves.
 */
async function publishUntil(exchange: string, marker: string, stop: Promise<unknown>): Promise<void> {
  let stopped = false;
  stop.finally(() => stopped = true);
  const connection = await until("an AMQP connection of the test's own", async () => {
    if (stopped) return "stopped" as const;
    return await amqpConnect(AMQP_URL, { timeout: 1000 });
  }, { timeoutMs: 60_000, intervalMs: 50 });
  if (connection === "stopped") return;
  try {
    connection.on("error", () => {});
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    for (let n = 1; !stopped; n++) {
      channel.publish(exchange, "reply.broadcast", Buffer.from(JSON.stringify({ marker, n })), {
        contentType: "text/json",
        headers: {
          command_id: null,
          commander_id: null,
          internal: false,
          message_code: "i",
          sender: "recovery",
        },
      });
      await channel.waitForConfirms();
      await Promise.race([stop, new Promise((resolve) => setTimeout(resolve, 100))]);
    }
  } finally {
    await connection.close().catch(() => {});
  }
}

Deno.test("after a long stop of the RabbitMQ application, replies flow within 2 s of its port opening; meanwhile attempts follow the backoff", async () => {
  const exchange = uniqueExchange("recovery");
  await using gateway = await startGateway({ exchange });
  let client: WsClient | undefined;
  let starting: Promise<unknown> | undefined;
  try {
    client = await connectClient(gateway);
    const beforeStop = gateway.logs.length;
    await using _guard = await brokerGuard("start_app");
    try {
      await rabbitmqctlOk("stop_app");
      const lost = await gateway.waitForLog("link lost (stop_app)", linkLost, { after: beforeStop });
      // The outage lasts until the backoff has grown past several seconds: the sixth attempt's delay is
      // 11 to 21 s (16 s ± 30 %), which the link would have waited out in full before.
      const sixth = await gateway.waitForLog(
        "the sixth connection attempt",
        (r) => /retrying/.test(r.message) && Number(r.attempt) >= 6,
        { after: beforeStop, timeoutMs: 60_000 },
      );
      starting = rabbitmqctlOk("start_app");
      const portAt = await portOpens();
      const marker = crypto.randomUUID();
      const arrived = client.next(
        "a reply published after the port opened",
        (f) => f.body.marker === marker,
        {
          timeoutMs: 30_000,
        },
      );
      const publishing = publishUntil(exchange, marker, arrived);
      await arrived;
      const arrivedAt = Date.now();
      await publishing;
      const up = await gateway.waitForLog("link up after start_app", linkUp, { after: beforeStop });

      // While the port was closed: each attempt waited at least what the backoff asked (70 % of
      // 0.5 s × 2^(n-1), capped), and no attempt came sooner than the delay logged before it.
      const attempts = gateway.logs.slice(beforeStop).filter((r) =>
        /retrying/.test(r.message) && loggedAt(r) < portAt
      );
      for (const [i, record] of attempts.entries()) {
        const minimum = 0.7 * Math.min(30_000 / 1.3, 500 * 2 ** (Number(record.attempt) - 1));
        assert.ok(
          Number(record.delay) * 1000 >= minimum - 50,
          `attempt ${record.attempt}: delay ${record.delay} s`,
        );
        const next = attempts[i + 1];
        if (next) {
          const gap = loggedAt(next) - loggedAt(record);
          assert.ok(
            gap >= Number(record.delay) * 1000 - 50,
            `attempt ${next.attempt} came ${gap} ms after the last`,
          );
        }
      }
      const closedMs = portAt - loggedAt(lost);
      assert.ok(
        attempts.length <= 7,
        `${attempts.length} attempts in the ${closedMs} ms the port was closed; the backoff allows 6 or 7`,
      );
      const replyMs = arrivedAt - portAt;
      console.log(
        `recovery: port closed for ${closedMs} ms (${attempts.length} attempts, the last waiting ${sixth.delay} s); after the port opened: link up in ${
          loggedAt(up) - portAt
        } ms, a reply at a client in ${replyMs} ms`,
      );
      assert.ok(replyMs < 2_000, `a reply reached the client ${replyMs} ms after the broker's port opened`);
    } finally {
      await starting?.catch(() => {});
      await ensureBrokerRunning();
    }
    await healthState(gateway, "up");
  } finally {
    await client?.close();
  }
});

Deno.test("a broker port that opens before AMQP works: quick retries, then the backoff again; the link never waits out a grown backoff", async () => {
  // gateway → front → back → RabbitMQ. The front proxy's port is what the gateway probes; with the back one
  // down, the front accepts and drops every connection at once, as a starting broker that does not log
  // anyone in yet.
  await using back = TcpProxy.reserve();
  await using front = TcpProxy.reserve(back.port);
  back.up();
  front.up();
  const exchange = uniqueExchange("quick");
  await using gateway = await startGateway({
    exchange,
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${front.port}` },
  });
  const client = await connectClient(gateway);
  const publisher = await connectBroker();
  try {
    const channel = await publisher.createConfirmChannel();
    await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    const broadcast = async (marker: string) => {
      channel.publish(exchange, "reply.broadcast", Buffer.from(JSON.stringify({ marker })), {
        contentType: "text/json",
        headers: {
          command_id: null,
          commander_id: null,
          internal: false,
          message_code: "i",
          sender: "quick",
        },
      });
      await channel.waitForConfirms();
    };
    const retrying = (r: LogRecord) => /retrying/.test(r.message);
    const reopened = (r: LogRecord) => /accepts connections again/.test(r.message);

    const beforeDown = gateway.logs.length;
    await back.down();
    await front.down();
    await gateway.waitForLog("link lost", linkLost, { after: beforeDown });
    // A backoff of 8 s ± 30 %: the fifth attempt.
    await gateway.waitForLog("the fifth attempt", (r) => retrying(r) && Number(r.attempt) >= 5, {
      after: beforeDown,
      timeoutMs: 30_000,
    });

    // The port opens, but AMQP fails behind it.
    const beforeOpen = gateway.logs.length;
    const openedAt = Date.now();
    front.up();
    const noticed = await gateway.waitForLog("the port seen open", reopened, { after: beforeOpen });
    const noticedMs = loggedAt(noticed) - openedAt;
    assert.ok(noticedMs < 1_500, `the open port was noticed after ${noticedMs} ms`);
    // Quick retries at 0.25 s, a dozen of them, then the backoff again (no quicker than 70 % of 16 s).
    const resumed = await gateway.waitForLog(
      "the backoff again",
      (r) => retrying(r) && Number(r.delay) >= 5,
      { after: beforeOpen, timeoutMs: 30_000 },
    );
    const quick = gateway.logs.slice(beforeOpen).filter((r) =>
      retrying(r) && loggedAt(r) < loggedAt(resumed)
    );
    assert.ok(quick.length >= 3 && quick.length <= 13, `${quick.length} quick retries`);
    for (const [i, record] of quick.slice(1).entries()) {
      assert.ok(loggedAt(record) - loggedAt(quick[i]) >= 200, "quick retries are 250 ms apart");
    }
    const reopenedAgain = gateway.logs.slice(beforeOpen).filter(reopened).length;
    assert.equal(reopenedAgain, 1, "a port that stays open does not cut the backoff short again");

    // The broker goes away and comes back for real: the link is up within moments, not the backoff's 16 s.
    const beforeGone = gateway.logs.length;
    await front.down();
    await gateway.waitForLog("the port seen closed", (r) => /refuses connections/.test(r.message), {
      after: beforeGone,
    });
    const beforeBack = gateway.logs.length;
    back.up();
    front.up();
    const backAt = Date.now();
    const up = await gateway.waitForLog("link up", linkUp, { after: beforeBack, timeoutMs: 30_000 });
    const marker = crypto.randomUUID();
    await broadcast(marker);
    await client.next("the broadcast after recovery", (f) => f.body.marker === marker);
    const replyMs = Date.now() - backAt;
    console.log(
      `quick: open port noticed after ${noticedMs} ms; ${quick.length} quick retries, then a delay of ${resumed.delay} s; ` +
        `back for real → link up ${loggedAt(up) - backAt} ms, a reply at a client ${replyMs} ms`,
    );
    assert.ok(replyMs < 2_000, `a reply reached the client ${replyMs} ms after the broker came back`);
  } finally {
    await publisher.close().catch(() => {});
    await client.close();
  }
});

Deno.test("a broker that refuses the login: its open port never cuts the backoff short", async () => {
  const exchange = uniqueExchange("login");
  await using gateway = await startGateway({
    exchange,
    env: { CLU_WS_URL: "amqp://guest:not-the-password@127.0.0.1:5672" },
    waitForBroker: false,
  });
  const retrying = (r: LogRecord) => /retrying/.test(r.message);
  // Attempts 2 to 5 (the first failure is attempt 1): delays of 1, 2 and 4 s ± 30 % between them.
  await gateway.waitForLog("the fifth attempt", (r) => retrying(r) && Number(r.attempt) >= 5, {
    timeoutMs: 30_000,
  });
  const attempts = gateway.logs.filter(retrying);
  assert.match(String(attempts[0].error), /ACCESS_REFUSED|403/, "the login is refused");
  for (const [i, record] of attempts.slice(1).entries()) {
    const gap = loggedAt(record) - loggedAt(attempts[i]);
    assert.ok(
      gap >= Number(attempts[i].delay) * 1000 - 50,
      `attempt ${record.attempt} came ${gap} ms after the last`,
    );
  }
  assert.equal(gateway.logs.filter((r) => /accepts connections again/.test(r.message)).length, 0);
  console.log(
    `login refused: ${attempts.length} attempts, ${
      attempts.map((r) => `${r.delay} s`).join(", ")
    } apart; no early retry`,
  );
});
