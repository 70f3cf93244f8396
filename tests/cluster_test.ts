// Scale-out on a real two-node RabbitMQ cluster formed on this machine (tests/helpers/cluster.ts):
// two gateways on the same exchange, A on the default node and B on the second, each with the
// other node as its fallback. It proves that replies published on either node reach the clients
// of both gateways, that a command through either gateway reaches an actor on either node and its
// replies reach both gateways' clients; it measures the fan-out of the two gateways side by side;
// and it stops B's node and watches B move to the other node while its clients stay connected.
//
// The cluster is torn down in a `finally` (and by a detached watcher if this process dies), leaving
// the default broker as it was. When no cluster can be formed, the test fails and says why.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type ChannelModel, connect, type ConsumeMessage } from "amqplib";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { type RabbitCluster, startCluster } from "./helpers/cluster.ts";
import { type GatewayProcess, type LogRecord, startGateway } from "./helpers/gateway_process.ts";
import { type Frame, replyTo, WsClient } from "./helpers/ws_client.ts";

const RUN = crypto.randomUUID().slice(0, 8);

/** A minimal CLU actor connected to one node: answers every command with `>` then `:` naming its node. */
interface NodeActor {
  readonly name: string;
  /** The commands it received, in order, with the epoch time (ms) of each. */
  readonly received: Array<{ commanderId: string; commandId: string; at: number }>;
  /** Publishes a broadcast (`reply.broadcast`) through its node. */
  broadcast(body: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

async function startNodeActor(url: string, node: string, exchange: string, name: string): Promise<NodeActor> {
  const connection: ChannelModel = await connect(url);
  // Stopping its node closes the connection under it: expected here, not a crash.
  connection.on("error", () => {});
  const channel = await connection.createConfirmChannel();
  channel.on("error", () => {});
  await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
  const queue = `${name}_commands`;
  await channel.assertQueue(queue, { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, exchange, `command.${name}.#`);
  const received: Array<{ commanderId: string; commandId: string; at: number }> = [];
  const publish = (
    routingKey: string,
    headers: Record<string, unknown>,
    body: unknown,
    correlationId?: string,
  ) => {
    channel.publish(exchange, routingKey, Buffer.from(JSON.stringify(body)), {
      contentType: "text/json",
      correlationId,
      timestamp: Math.floor(Date.now() / 1000),
      messageId: crypto.randomUUID().replaceAll("-", ""),
      headers,
    });
    return channel.waitForConfirms();
  };
  async function answer(message: ConsumeMessage): Promise<void> {
    const headers = message.properties.headers ?? {};
    const commanderId = String(headers.commander_id);
    // The gateways' own questions to an actor they heard from (introspection_test.ts) are no client's command.
    if (!String(headers.command_id).startsWith("clu-ws-introspection-")) {
      received.push({ commanderId, commandId: String(headers.command_id), at: Date.now() });
    }
    const base = { command_id: headers.command_id, commander_id: commanderId, sender: name };
    const correlationId = message.properties.correlationId;
    await publish(`reply.${commanderId}`, { ...base, internal: true, message_code: ">" }, {}, correlationId);
    await publish(
      `reply.${commanderId}`,
      { ...base, internal: false, message_code: ":" },
      { text: "Pong.", node },
      correlationId,
    );
  }
  await channel.consume(queue, (message) => {
    if (!message) return;
    channel.ack(message);
    answer(message).catch(() => {/* the connection closed mid-reply */});
  });
  return {
    name,
    received,
    async broadcast(body) {
      await publish("reply.broadcast", {
        command_id: null,
        commander_id: null,
        internal: false,
        message_code: "i",
        sender: name,
      }, body);
    },
    async close() {
      await connection.close().catch(() => {});
    },
  };
}

/** The gateway's wall-clock time of a log record (ms since the epoch). */
function loggedAt(record: LogRecord): number {
  return Date.parse(String(record["@timestamp"]));
}

async function health(gateway: GatewayProcess): Promise<Record<string, unknown>> {
  return await (await fetch(gateway.httpUrl("/healthz"))).json();
}

/** The `node` labels of `cluws_broker_node` samples whose value is 1. */
async function metricNodes(gateway: GatewayProcess): Promise<string[]> {
  const text = await (await fetch(gateway.httpUrl("/metrics"))).text();
  return [...text.matchAll(/^cluws_broker_node\{node="([^"]+)"\} 1$/gm)].map((m) => m[1]);
}

/** Sends `command_id` to `actor` through `sender` and resolves once every client in `watchers` has its `:`. */
async function commandSeenByAll(
  sender: WsClient,
  actor: string,
  commandId: string,
  watchers: Array<[string, WsClient]>,
): Promise<Frame> {
  sender.send({ consumer: actor, command_string: "ping", command_id: commandId });
  const frames = await Promise.all(
    watchers.map(([label, client]) => client.next(`${commandId}'s : at ${label}`, replyTo(commandId, ":"))),
  );
  return frames[0];
}

/**
 * The counting clients of the fan-out measurement, run in a process of their own (one per gateway)
 * so that neither the publisher nor the other gateway's clients share their event loop. Arguments:
 * URL, marker, broadcasts expected, clients. Prints `ready` once every socket is open, then one JSON
 * line: per client the count of frames carrying the marker and the epoch times (ms) of the first and
 * last, and the close code if the gateway closed it.
 */
const COUNTER_SCRIPT = `
const [url, marker, expectedText, clientsText] = Deno.args;
const expected = Number(expectedText);
const now = () => performance.timeOrigin + performance.now();
const stats = [];
await Promise.all(Array.from({ length: Number(clientsText) }, () => new Promise((resolve, reject) => {
  const socket = new WebSocket(url);
  const stat = { count: 0, first: 0, last: 0, closed: null, socket };
  stat.done = new Promise((done) => {
    socket.onmessage = (event) => {
      if (typeof event.data !== "string" || !event.data.includes(marker)) return;
      const t = now();
      if (stat.count === 0) stat.first = t;
      stat.last = t;
      if (++stat.count === expected) done();
    };
    socket.onclose = (event) => { stat.closed = event.code + " " + event.reason; done(); };
  });
  stats.push(stat);
  socket.onopen = () => resolve();
  socket.onerror = () => reject(new Error("websocket to " + url + " failed"));
})));
console.log("ready");
await Promise.race([Promise.all(stats.map((s) => s.done)), new Promise((r) => setTimeout(r, 60000))]);
console.log(JSON.stringify(stats.map(({ count, first, last, closed }) => ({ count, first, last, closed }))));
Deno.exit(0);
`;

interface ClientStats {
  count: number;
  first: number;
  last: number;
  closed: string | null;
}

/** A process of counting clients on one gateway. */
class CounterProcess {
  readonly #child: Deno.ChildProcess;
  readonly #lines: AsyncIterator<string>;

  constructor(url: string, marker: string, expected: number, clients: number) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["eval", COUNTER_SCRIPT, url, marker, String(expected), String(clients)],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = lines(this.#child.stdout)[Symbol.asyncIterator]();
  }

  async #line(what: string): Promise<string> {
    const next = await this.#lines.next();
    if (next.done) throw new Error(`the counting clients exited before ${what}`);
    return next.value;
  }

  /** Resolves once every client is connected. */
  async ready(): Promise<void> {
    const line = await this.#line("connecting");
    if (line !== "ready") throw new Error(`the counting clients said ${line}`);
  }

  /** Resolves with each client's counts once all have every broadcast (or after 60 s). */
  async result(): Promise<ClientStats[]> {
    const stats = JSON.parse(await this.#line("reporting"));
    await this.#child.status;
    return stats;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.#child.status;
    await this.#lines.return?.();
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
    }
  }
}

/**
 * Fan-out of two gateways side by side: `clientsEach` clients on each, `count`
 * broadcasts of `bodyBytes` published on the default node as fast as it confirms them.
 */
async function measureFanOut(
  cluster: RabbitCluster,
  exchange: string,
  gateways: Array<[string, GatewayProcess]>,
  { clientsEach = 10, count = 5_000, bodyBytes = 200 } = {},
): Promise<void> {
  const marker = `fan-${RUN}`;
  await using stack = new AsyncDisposableStack();
  const groups = gateways.map(([label, gateway]) =>
    [label, stack.use(new CounterProcess(gateway.url(), marker, count, clientsEach))] as const
  );
  await Promise.all(groups.map(([, counters]) => counters.ready()));
  const connection = await connect(cluster.primaryUrl);
  connection.on("error", () => {});
  stack.defer(() => connection.close().catch(() => {}));
  const channel = await connection.createConfirmChannel();
  const headers = {
    command_id: null,
    commander_id: null,
    internal: false,
    message_code: "i",
    sender: "bench",
  };
  const bodies = Array.from({ length: count }, (_, n) => {
    const head = JSON.stringify({ marker, n, pad: "" });
    return Buffer.from(JSON.stringify({ marker, n, pad: "x".repeat(Math.max(0, bodyBytes - head.length)) }));
  });
  assert.equal(bodies[0].length, bodyBytes);
  const now = () => performance.timeOrigin + performance.now();
  const startedAt = now();
  for (const body of bodies) {
    const more = channel.publish(exchange, "reply.broadcast", body, { contentType: "text/json", headers });
    if (!more) await new Promise((resolve) => channel.once("drain", resolve));
  }
  await channel.waitForConfirms();
  const publishMs = now() - startedAt;
  const results = await Promise.all(
    groups.map(async ([label, counters]) => [label, await counters.result()] as const),
  );
  const lines = [
    `fan-out, two gateways side by side: ${clientsEach} clients on each (one process of clients per gateway), ` +
    `${count} broadcasts of ${bodyBytes} B published on ${cluster.primary} at ${
      Math.round(count / publishMs * 1000)
    } msgs/s (all confirmed after ${Math.round(publishMs)} ms)`,
  ];
  for (const [label, group] of results) {
    const perClient = group.map((c) => c.count / ((c.last - startedAt) / 1000)).sort((a, b) => a - b);
    const lastAt = Math.max(...group.map((c) => c.last));
    const frames = group.reduce((sum, c) => sum + c.count, 0);
    const median = perClient[Math.floor(perClient.length / 2)];
    lines.push(
      `  ${label}: ${frames}/${clientsEach * count} frames; per client ${Math.round(perClient[0])}–${
        Math.round(perClient.at(-1)!)
      } msgs/s (median ${Math.round(median)}); aggregate ${
        Math.round(frames / ((lastAt - startedAt) / 1000))
      } frames/s; last frame ${Math.round(lastAt - startedAt)} ms after the first publish`,
    );
  }
  console.log(lines.join("\n"));
  for (const [label, group] of results) {
    for (const [i, c] of group.entries()) {
      assert.equal(
        c.count,
        count,
        `fan-out: client ${i} of ${label} got ${c.count} of ${count} broadcasts${
          c.closed ? ` (closed: ${c.closed})` : ""
        }`,
      );
    }
  }
}

Deno.test("two gateways on a two-node RabbitMQ cluster: every reply reaches both, and a gateway moves when its node stops", async (t) => {
  // Throws (the test fails) with the reason when no cluster can be formed here.
  const cluster = await startCluster();
  console.log(
    `cluster: ${cluster.secondary} (port ${cluster.secondaryPort}) accepted AMQP ${cluster.timings.startMs} ms ` +
      `after spawning; stop_app + join_cluster ${cluster.primary} + start_app took ${cluster.timings.joinMs} ms`,
  );
  const nodeA = new URL(cluster.primaryUrl).host;
  const nodeB = new URL(cluster.secondaryUrl).host;
  try {
    const exchange = uniqueExchange("cluster");
    await using gatewayA = await startGateway({
      exchange,
      env: { CLU_WS_URL: `${cluster.primaryUrl},${cluster.secondaryUrl}` },
    });
    await using gatewayB = await startGateway({
      exchange,
      env: { CLU_WS_URL: `${cluster.secondaryUrl},${cluster.primaryUrl}` },
    });
    // Disposed before the gateways (declared after them): clients and actors go first.
    const clients: WsClient[] = [];
    const actors: NodeActor[] = [];
    await using _closing = {
      async [Symbol.asyncDispose]() {
        await Promise.all(clients.map((c) => c.close()));
        await Promise.all(actors.map((a) => a.close()));
      },
    };
    assert.notEqual(gatewayA.name, gatewayB.name, "the default random names differ");
    assert.equal((await health(gatewayA)).node, nodeA, "gateway A is on the default node");
    assert.equal((await health(gatewayB)).node, nodeB, "gateway B is on the second node");
    assert.deepEqual(await metricNodes(gatewayA), [nodeA]);
    assert.deepEqual(await metricNodes(gatewayB), [nodeB]);

    const actorOne = await startNodeActor(
      cluster.primaryUrl,
      cluster.primary,
      exchange,
      `cluster-${RUN}-one`,
    );
    actors.push(actorOne);
    const actorTwo = await startNodeActor(
      cluster.secondaryUrl,
      cluster.secondary,
      exchange,
      `cluster-${RUN}-two`,
    );
    actors.push(actorTwo);
    const connectTo = async (gateway: GatewayProcess) => {
      const client = await WsClient.connect(gateway.url());
      clients.push(client);
      return client;
    };
    const a1 = await connectTo(gatewayA);
    const b1 = await connectTo(gatewayB);
    const b2 = await connectTo(gatewayB);
    const everyone: Array<[string, WsClient]> = [["A/1", a1], ["B/1", b1], ["B/2", b2]];

    await t.step("replies published on either node reach the clients of both gateways", async () => {
      for (const actor of [actorOne, actorTwo]) {
        const marker = crypto.randomUUID();
        await actor.broadcast({ marker });
        for (const [label, client] of everyone) {
          await client.next(`${actor.name}'s broadcast at ${label}`, (f) => f.body.marker === marker);
        }
      }
      // Every pairing: through A or B, to the actor on the default node or the second one.
      for (const [via, sender, gateway] of [["A", a1, gatewayA], ["B", b1, gatewayB]] as const) {
        for (const actor of [actorOne, actorTwo]) {
          const id = `via-${via}-to-${actor.name}`;
          const done = await commandSeenByAll(sender, actor.name, id, everyone);
          assert.equal(
            done.body.node,
            actor === actorOne ? cluster.primary : cluster.secondary,
            `${id} was answered on the actor's node`,
          );
          assert.equal(
            actor.received.at(-1)?.commanderId,
            `${gateway.name}.${actor.name}`,
            "the commander id names the gateway",
          );
        }
      }
    });

    await t.step("fan-out of the two gateways side by side", async () => {
      await measureFanOut(cluster, exchange, [[`A (on ${nodeA})`, gatewayA], [`B (on ${nodeB})`, gatewayB]]);
    });

    await t.step(
      "stopping B's node moves B to the other node; its clients stay and traffic resumes",
      async () => {
        const beforeA = gatewayA.logs.length;
        const before = gatewayB.logs.length;
        const stopAt = Date.now();
        const stopping = cluster.stopSecondaryApp();
        // Commands through B all along the move, every 100 ms (within the default rate limit).
        const sent: Array<{ id: string; at: number }> = [];
        let pumpUntil = Infinity;
        const pump = (async () => {
          for (let i = 0; Date.now() < pumpUntil && Date.now() - stopAt < 30_000; i++) {
            const id = `move-${i}`;
            sent.push({ id, at: Date.now() });
            b1.send({ consumer: actorOne.name, command_string: "ping", command_id: id });
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        })();
        let lost: LogRecord;
        let up: LogRecord;
        try {
          lost = await gatewayB.waitForLog("B's link lost", (r) => /RabbitMQ link lost/.test(r.message), {
            after: before,
            timeoutMs: 30_000,
          });
          up = await gatewayB.waitForLog(
            `B's link up at ${nodeA}`,
            (r) => /RabbitMQ link up/.test(r.message) && String(r.url).includes(`@${nodeA}/`),
            { after: before, timeoutMs: 30_000 },
          );
        } finally {
          pumpUntil = Date.now() + 500;
          await pump;
          await stopping;
        }
        const stopReturnedAt = Date.now();
        const lostAt = loggedAt(lost);
        const lostMs = lostAt - stopAt;
        const moveMs = loggedAt(up) - lostAt;
        assert.equal(b1.readyState, WebSocket.OPEN, "B's first client stayed connected");
        assert.equal(b2.readyState, WebSocket.OPEN, "B's second client stayed connected");
        const bHealth = await health(gatewayB);
        assert.equal(bHealth.node, nodeA, "/healthz: B is on the default node now");
        assert.equal(bHealth.broker, "up");
        assert.deepEqual(
          await metricNodes(gatewayB),
          [nodeA],
          "/metrics: cluws_broker_node names the new node",
        );

        // Every command ends in a frame on B: ":" answered, "f" not sent, or "w" when it was
        // confirmed just before the loss and its replies went to the queue that died with the node.
        const ends = (id: string) => (f: Frame) =>
          f.headers.command_id === id && ["f", ":", "w"].includes(String(f.headers.message_code));
        await until(
          "an end frame for every command sent through B",
          () => sent.every((c) => b1.frames.some(ends(c.id))),
          {
            timeoutMs: 20_000,
          },
        );
        const outcomes = sent.map((c) => ({ ...c, frame: b1.frames.find(ends(c.id)) }));
        const failed = outcomes.filter((c) => c.frame?.headers.message_code === "f");
        const answered = outcomes.filter((c) => c.frame?.headers.message_code === ":");
        const warned = outcomes.filter((c) => c.frame?.headers.message_code === "w");
        const silent = outcomes.filter((c) => !c.frame);
        assert.deepEqual(silent, [], "no command ends in silence");
        for (const c of warned) assert.match(String(c.frame!.body.text), /replies may be lost/);

        // Sent once B knew its link was gone: each ends in a frame, never silence.
        for (const c of outcomes.filter((c) => c.at >= lostAt && !c.frame)) {
          throw new Error(
            `${c.id}, sent through B ${
              c.at - lostAt
            } ms after B lost its link, got no f frame nor an answer; ` +
              `B's frames for it: ${
                JSON.stringify(b1.frames.filter((f) => f.headers.command_id === c.id).map((f) => f.headers))
              }; B's log about it: ${
                gatewayB.logs.slice(before).filter((r) => JSON.stringify(r).includes(`"${c.id}"`)).map((r) =>
                  r.message
                ).join(" | ")
              }; the actor received it: ${actorOne.received.some((r) => r.commandId === c.id)}`,
          );
        }
        assert.ok(
          failed.length > 0,
          `a command during the move gets an f frame; of ${sent.length} sent, none did`,
        );
        for (const c of failed) {
          assert.match(String(c.frame!.body.error), /RabbitMQ is unreachable|link was lost|did not confirm/);
          assert.equal(c.frame!.headers.sender, gatewayB.name, "the f frame comes from the gateway");
        }

        // Traffic resumes: a ping through B, answered to B's and A's clients; a broadcast reaches everyone.
        const resumedAt = Date.now();
        await commandSeenByAll(b1, actorOne.name, "after-move-via-B", everyone);
        const firstReplyMs = Date.now() - resumedAt;
        await commandSeenByAll(a1, actorOne.name, "after-move-via-A", everyone);
        const marker = crypto.randomUUID();
        await actorOne.broadcast({ marker });
        for (const [label, client] of everyone) {
          await client.next(`the broadcast after the move at ${label}`, (f) => f.body.marker === marker);
        }
        assert.ok(
          !gatewayA.logs.slice(beforeA).some((r) => /RabbitMQ link lost/.test(r.message)),
          "gateway A, on the node that kept running, never lost its link",
        );
        assert.equal((await health(gatewayA)).node, nodeA);
        // The replies queue of B exists once, on the node it moved to, with one consumer.
        await until("B's replies queue on the default node", async () => {
          const out = await new Deno.Command("rabbitmqctl", {
            args: ["list_queues", "-q", "name", "consumers", "--formatter", "json"],
            stdout: "piped",
            stderr: "null",
          }).output();
          const queues: Array<{ name: string; consumers: number }> = JSON.parse(
            new TextDecoder().decode(out.stdout),
          );
          const mine = queues.filter((q) => q.name === `${gatewayB.name}_replies`);
          return mine.length === 1 && mine[0].consumers === 1;
        });

        console.log(
          `failover: stop_app issued → B's link lost after ${lostMs} ms; lost → up at ${nodeA} after ${moveMs} ms ` +
            `(stop_app returned after ${stopReturnedAt - stopAt} ms); first ping through B after the move ` +
            `answered in ${firstReplyMs} ms\n` +
            `  ${sent.length} commands through B during the move: ${failed.length} f frames, ${answered.length} ` +
            `answered, ${warned.length} warned that their replies may be lost\n  f reasons: ${
              [...new Set(failed.map((c) => String(c.frame!.body.error)))].join(" | ")
            }`,
        );
        assert.ok(moveMs < 5_000, `B moved to the other node ${moveMs} ms after losing its link`);
      },
    );
  } finally {
    const teardownAt = performance.now();
    await cluster.teardown();
    console.log(
      `cluster: torn down in ${
        Math.round(performance.now() - teardownAt)
      } ms; the default node is alone again`,
    );
  }
});
