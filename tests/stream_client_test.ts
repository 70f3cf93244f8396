// The client module (web/client.ts) with `--history stream`, from Deno, end to end: real gateway
// processes on one history stream, the real RabbitMQ, and a TCP proxy in front of them standing for
// a load balancer. The client moves to another gateway and then to a restarted one, under a steady
// publish, and sees every reply exactly once, in order, with no gap.

import assert from "node:assert/strict";
import { CluClient, type Frame, type GapInfo, type Welcome } from "../web/client.ts";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { deleteStream, SteadyPublisher, streamArgs, uniqueStream } from "./helpers/stream.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";

Deno.test("client module, --history stream: resumes on another gateway and on a restarted one, no gap, nothing twice", async () => {
  const stream = uniqueStream("client");
  const exchange = uniqueExchange("stream-client");
  const gateways: GatewayProcess[] = [];
  try {
    const a = await startGateway({ exchange, args: streamArgs(stream) });
    gateways.push(a);
    const b = await startGateway({ exchange, args: streamArgs(stream) });
    gateways.push(b);
    await using proxy = TcpProxy.reserve(a.port);
    proxy.up();
    const publisher = await SteadyPublisher.open(exchange);
    const client = await CluClient.connect(`ws://127.0.0.1:${proxy.port}/`, {
      minDelayMs: 100,
      maxDelayMs: 400,
    });
    const seen: Frame[] = [];
    const gaps: GapInfo[] = [];
    const welcomes: Welcome[] = [];
    client.on("reply", (frame) => {
      if (frame.body?.run === publisher.run) seen.push(frame);
    });
    client.on("gap", (gap) => gaps.push(gap));
    client.on("welcome", (welcome) => welcomes.push(welcome));
    const reached = (n: number, what: string) =>
      until(`${what}: the client has n=${n}`, () => seen.some((f) => f.body.n === n), { timeoutMs: 30_000 });
    try {
      assert.equal(client.welcome?.epoch, `stream:${stream}`);
      publisher.start(3);
      await reached(30, "on A");

      // The load balancer moves the client to B.
      proxy.retarget(b.port);
      await proxy.down();
      proxy.up();
      await until("the client's welcome from B", () => welcomes.some((w) => w.name === b.name), {
        timeoutMs: 30_000,
      });
      await reached(publisher.last + 30, "on B");

      // B restarts (its clients are closed with 1001); the load balancer sends them to the new B.
      await b.stop();
      const b2 = await startGateway({ exchange, args: streamArgs(stream) });
      gateways.push(b2);
      proxy.retarget(b2.port);
      await until(
        "the client's welcome from the restarted B",
        () => welcomes.some((w) => w.name === b2.name),
        {
          timeoutMs: 30_000,
        },
      );
      await reached(publisher.last + 30, "on the restarted B");

      const last = await publisher.stop();
      await reached(last, "at the end");
      const ns = seen.map((f) => Number(f.body.n));
      assert.deepEqual(ns, Array.from({ length: last }, (_, i) => i + 1), "every reply once, in order");
      assert.deepEqual(gaps, [], "no gap");
      assert.ok(seen.every((f, i) => i === 0 || f.seq! > seen[i - 1].seq!), "seq grows across gateways");
      console.log(
        `client module: ${last} replies across 3 gateways (A → B → restarted B), ${welcomes.length} welcomes, no gap`,
      );
    } finally {
      client.close();
      await publisher.close();
    }
  } finally {
    for (const gateway of gateways) await gateway[Symbol.asyncDispose]();
    await deleteStream(stream);
  }
});
