// `--history stream` on a real two-node RabbitMQ cluster (tests/helpers/cluster.ts): the stream is
// replicated on both nodes; gateway A reads it on the default node and gateway B on the second (each
// says so in /healthz). Under a steady publish, A goes away mid-stream — stopped (SIGTERM), or killed
// (SIGKILL: no close frame, no goodbye to the broker) — and its client resumes on B with zero loss, zero
// duplicates and order kept. Each case has its own stream, deleted after it; the cluster is torn down in
// `finally`, leaving the default broker as it was (its stream coordinator included); when no cluster can
// be formed, the test fails and says why.

import assert from "node:assert/strict";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { type RabbitCluster, rabbitmqctl, startCluster } from "./helpers/cluster.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { deleteStream, SteadyPublisher, streamArgs, uniqueStream } from "./helpers/stream.ts";
import { type Frame, WsClient } from "./helpers/ws_client.ts";

const V1 = ["clu-ws.v1"];

function field(frame: Frame, name: string): unknown {
  return (frame as unknown as Record<string, unknown>)[name];
}

/** The broker node a gateway's /healthz says its link is on (`host:port`). */
async function healthNode(gateway: GatewayProcess): Promise<unknown> {
  const response = await fetch(gateway.httpUrl("/healthz"));
  const body = await response.json();
  return body.node;
}

/** The `host:port` of an AMQP URL, as /healthz names a node. */
function nodeOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || 5672}`;
}

/**
 * Gateways A (on the default node) and B (on the second) read one stream;
 * A goes away by `signal` mid-stream and its client resumes on B.
 */
async function moveMidStream(cluster: RabbitCluster, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  const stream = uniqueStream(`cluster-${signal}`);
  try {
    const exchange = uniqueExchange("stream-cluster");
    await using a = await startGateway({
      exchange,
      args: streamArgs(stream),
      env: { CLU_WS_URL: `${cluster.primaryUrl},${cluster.secondaryUrl}` },
    });
    await using b = await startGateway({
      exchange,
      args: streamArgs(stream),
      env: { CLU_WS_URL: `${cluster.secondaryUrl},${cluster.primaryUrl}` },
    });
    // Each gateway is on its own node: B reads the stream from the second node's replica.
    assert.equal(await healthNode(a), nodeOf(cluster.primaryUrl), "A is on the default node");
    assert.equal(await healthNode(b), nodeOf(cluster.secondaryUrl), "B is on the second node");
    // The stream has a member on each node.
    const members = await until("the stream's members on both nodes", async () => {
      const out = await rabbitmqctl(["list_queues", "-q", "name", "members", "--formatter", "json"]);
      const queues: Array<{ name: string; members: string[] }> = JSON.parse(out.stdout || "[]");
      const mine = queues.find((q) => q.name === stream);
      return mine && mine.members.length === 2 ? mine.members : undefined;
    });
    assert.deepEqual([...members].sort(), [cluster.primary, cluster.secondary].sort());

    const publisher = await SteadyPublisher.open(exchange);
    const clients: WsClient[] = [];
    try {
      const onA = await WsClient.connect(a.url(), { protocols: V1 });
      const onB = await WsClient.connect(b.url(), { protocols: V1 });
      clients.push(onA, onB);
      const welcome = await onA.next("A's welcome", (f) => field(f, "clu-ws") === "welcome");
      const epoch = field(welcome, "epoch");
      const numbered = (client: WsClient) => client.frames.filter((f) => f.body?.run === publisher.run);
      const has = (client: WsClient, n: number) =>
        client.next(`n=${n}`, (f) => f.body?.run === publisher.run && f.body?.n === n, { timeoutMs: 30_000 });
      publisher.start(3);
      await has(onA, 30);
      // A goes away mid-stream: stopped, its client is closed (1001); killed, its socket just ends.
      const exit = await a.stop(signal);
      if (signal === "SIGTERM") assert.equal(exit.code, 0);
      else assert.equal(a.status?.signal, "SIGKILL", "A was killed, not stopped");
      await onA.closed;
      const before = numbered(onA);
      const lastSeq = Number(field(before.at(-1)!, "seq"));
      await has(onB, publisher.last + 30);
      const back = await WsClient.connect(b.url(), { protocols: V1 });
      clients.push(back);
      const welcomeB = await back.next("B's welcome", (f) => field(f, "clu-ws") === "welcome");
      assert.equal(field(welcomeB, "epoch"), epoch, "one epoch across the cluster's gateways");
      back.send({ "clu-ws": "resume", id: "r", epoch, seq: lastSeq });
      const resumed = await back.next("resumed", (f) => field(f, "clu-ws") === "resumed", {
        timeoutMs: 30_000,
      });
      await has(back, publisher.last + 30);
      const last = await publisher.stop();
      await has(back, last);
      // From the first replayed reply on (live ones between B's welcome and the resume come before it
      // and are in the replay too: a client holds those, docs/protocol.md).
      const after = numbered(back);
      const start = after.findIndex((f) => f.body.n === Number(before.at(-1)!.body.n) + 1);
      assert.ok(start >= 0, `the replay starts with n=${Number(before.at(-1)!.body.n) + 1}`);
      const ns = [...before, ...after.slice(start)].map((f) => Number(f.body.n));
      assert.deepEqual(
        ns,
        Array.from({ length: last }, (_, i) => i + 1),
        "zero loss, zero duplicates, in order",
      );
      // The same seq for the same reply on both nodes' gateways.
      const seqOnB = new Map(numbered(onB).map((f) => [f.body.n, field(f, "seq")]));
      for (const f of before) assert.equal(field(f, "seq"), seqOnB.get(f.body.n), `seq of n=${f.body.n}`);
      console.log(
        `cluster (${signal}): stream on ${members.join(" and ")}; A gone after n=${before.at(-1)!.body.n}; ` +
          `B replayed ${field(resumed, "count")}; ${last} replies, every one once and in order`,
      );
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await publisher.close();
    }
  } finally {
    await deleteStream(stream);
  }
}

Deno.test("--history stream on a two-node cluster: a gateway on each node, one stopped or killed mid-stream, its client resumes on the other", async (t) => {
  // The second node joins the stream coordinator too: RabbitMQ 3.10 leaves a node that joined after the
  // first stream without a member, and no stream can be read on it (joinStreamCoordinator in the helper).
  const cluster = await startCluster({ streamCoordinator: true });
  try {
    await t.step("A stopped (SIGTERM)", () => moveMidStream(cluster, "SIGTERM"));
    await t.step("A killed (SIGKILL)", () => moveMidStream(cluster, "SIGKILL"));
  } finally {
    await cluster.teardown();
  }
});
