// Per-client limits through real sockets: a slow client never hurts the others
// (closed, or skipped and told), silent peers are dropped, oversized frames,
// one client too many, and commands over the rate are refused clearly.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connectBroker, uniqueExchange, until } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { RawWebSocket } from "./helpers/raw_ws.ts";
import { ChildClient } from "./helpers/ws_child.ts";
import { WsClient } from "./helpers/ws_client.ts";

/**
 * Publishes `count` broadcasts of about `bytes` each, tagged with their index,
 * in batches of 1 MB; before each next batch, `pace` (if given) awaits the
 * healthy reader, so only a client that stopped reading falls behind.
 */
async function flood(
  exchange: string,
  count: number,
  bytes: number,
  pace?: (published: number) => Promise<unknown>,
): Promise<void> {
  const connection = await connectBroker();
  try {
    const channel = await connection.createConfirmChannel();
    const padding = "x".repeat(bytes);
    const batch = Math.max(1, Math.floor(1_000_000 / bytes));
    for (let i = 0; i < count; i++) {
      channel.publish(exchange, "reply.broadcast", Buffer.from(JSON.stringify({ seq: i, padding })), {
        contentType: "text/json",
        headers: {
          message_code: "d",
          sender: "flooder",
          command_id: null,
          commander_id: null,
          internal: false,
        },
      });
      if ((i + 1) % batch === 0 || i + 1 === count) {
        await channel.waitForConfirms();
        await pace?.(i + 1);
      }
    }
  } finally {
    await connection.close();
  }
}

/** A pace for {@linkcode flood}: waits until `client` has every frame published so far. */
function keptUpBy(client: WsClient): (published: number) => Promise<unknown> {
  return (published) =>
    client.count("flood frames", (f) => f.headers.sender === "flooder", published, { timeoutMs: 30_000 });
}

async function clients(gateway: GatewayProcess): Promise<number> {
  const response = await fetch(gateway.httpUrl("/healthz"));
  return (await response.json()).clients;
}

const FLOOD = 1500;
const FLOOD_BYTES = 10_000;

Deno.test("a client that stops reading is closed with 1008 and the others get every frame", async () => {
  const exchange = uniqueExchange("slow");
  await using gateway = await startGateway({ exchange, args: ["--client-buffer", "1MiB"] });
  await using stalled = await ChildClient.open(gateway.url());
  const healthy = await WsClient.connect(gateway.url());
  try {
    stalled.freeze();
    await flood(exchange, FLOOD, FLOOD_BYTES, keptUpBy(healthy));
    const closed = await gateway.waitForLog("slow-client close", (r) => /too slow/.test(r.message));
    assert.ok(Number(closed.buffered) > 0);
    assert.equal(await clients(gateway), 1, "the slow client left the registry at once");
    const seqs = healthy.frames.filter((f) => f.headers.sender === "flooder").map((f) => f.body.seq);
    assert.deepEqual(seqs, [...Array(FLOOD).keys()], "in order, none missing, none twice");

    stalled.thaw();
    const line = await stalled.waitFor("close line", (l) => l.startsWith("close "), { timeoutMs: 60_000 });
    assert.match(line, /^close 1008 client too slow/);
  } finally {
    await healthy.close();
  }
});

Deno.test("with --slow-client drop, a client that falls behind is skipped, then told how many frames it missed", async () => {
  const exchange = uniqueExchange("drop");
  await using gateway = await startGateway({
    exchange,
    args: ["--client-buffer", "1MiB", "--slow-client", "drop"],
  });
  await using lagging = await ChildClient.open(gateway.url());
  const healthy = await WsClient.connect(gateway.url());
  try {
    lagging.freeze();
    await flood(exchange, FLOOD, FLOOD_BYTES, keptUpBy(healthy));
    lagging.thaw();
    const noticeLine = await lagging.waitFor(
      "the dropped-frames notice",
      (l) => l.includes('"dropped_frames"'),
    );
    const notice = JSON.parse(noticeLine);
    assert.equal(notice.headers.message_code, "w");
    assert.equal(notice.headers.sender, gateway.name);
    const dropped = notice.body.dropped_frames;
    assert.ok(dropped > 0, "some frames were skipped");
    assert.match(notice.body.text, new RegExp(`skipped ${dropped} frames`));
    const received = lagging.lines.filter((l) => l.includes('"sender":"flooder"')).length;
    assert.equal(received + dropped, FLOOD, "every frame was either delivered or counted as skipped");

    // Once caught up it is served as before.
    await flood(exchange, 1, 10);
    await lagging.waitFor("a frame after catching up", (l) => l.includes('"seq":0,"padding":"xxxxxxxxxx"'));
    assert.equal(await clients(gateway), 2, "the lagging client stayed connected");
  } finally {
    await healthy.close();
  }
});

Deno.test("a peer that never answers pings is dropped; a live client stays", async () => {
  const exchange = uniqueExchange("idle");
  await using gateway = await startGateway({ exchange, args: ["--idle-timeout", "2"] });
  const live = await WsClient.connect(gateway.url());
  const silent = await RawWebSocket.connect(gateway.port);
  try {
    assert.equal(await clients(gateway), 2);
    const closedBytes = silent.readUntilClosed();
    await gateway.waitForLog(
      "the silent peer dropped",
      (r) => /disconnected/.test(r.message) && r.code === 1001,
    );
    assert.ok((await closedBytes) > 0, "it was pinged before being dropped");
    await until("one client left", async () => (await clients(gateway)) === 1);
    assert.equal(live.readyState, WebSocket.OPEN, "a client that answers pings is kept");
  } finally {
    silent.abort();
    await live.close();
  }
});

Deno.test("a frame over --max-message-size closes that client with 1009; smaller bad frames get an error", async () => {
  const exchange = uniqueExchange("size");
  await using gateway = await startGateway({ exchange, args: ["--max-message-size", "1KiB"] });
  const client = await WsClient.connect(gateway.url());
  const other = await WsClient.connect(gateway.url());
  try {
    client.send("y".repeat(900));
    await client.next("error for a bad but small frame", (f) => f.headers.message_code === "e");
    client.send(JSON.stringify({ consumer: "testactor", command_string: "z".repeat(2000) }));
    const closed = await client.closed;
    assert.equal(closed.code, 1009);
    assert.match(closed.reason, /message too big: limit 1 KiB/);
    assert.equal(other.readyState, WebSocket.OPEN);
    await until("the closed client left the registry", async () => (await clients(gateway)) === 1);
  } finally {
    await client.close();
    await other.close();
  }
});

Deno.test("one client over --max-clients gets HTTP 503 before the upgrade; a place frees when one leaves", async () => {
  const exchange = uniqueExchange("max");
  await using gateway = await startGateway({ exchange, args: ["--max-clients", "2"] });
  const first = await WsClient.connect(gateway.url());
  const second = await WsClient.connect(gateway.url());
  try {
    await assert.rejects(RawWebSocket.connect(gateway.port), /upgrade refused: HTTP\/1\.1 503/);
    await gateway.waitForLog("the refusal", (r) => /refused a client/.test(r.message));
    await first.close();
    await until("a free place", async () => (await clients(gateway)) === 1);
    const third = await WsClient.connect(gateway.url());
    await third.close();
  } finally {
    await first.close();
    await second.close();
  }
});

Deno.test("commands over --command-rate get an f frame and are not published", async () => {
  const exchange = uniqueExchange("rate");
  await using gateway = await startGateway({
    exchange,
    args: ["--command-rate", "1", "--command-burst", "5"],
  });
  const actor = await startActor(exchange, "testactor");
  const client = await WsClient.connect(gateway.url());
  try {
    for (let i = 0; i < 20; i++) {
      client.send({ consumer: "testactor", command_string: "ping", command_id: `r-${i}` });
    }
    const ends = await client.count(
      "an end for each command",
      (f) => String(f.headers.command_id).startsWith("r-") && /^[:f]$/.test(String(f.headers.message_code)),
      20,
      { timeoutMs: 20_000 },
    );
    const limited = ends.filter((f) => f.headers.message_code === "f");
    for (const f of limited) {
      assert.match(String(f.body.error), /^rate limit exceeded: at most 1 commands a second/);
    }
    const published = 20 - limited.length;
    assert.ok(published >= 5 && published <= 6, `the burst of 5 (+1 refilled) went out, got ${published}`);
    await until("the actor got exactly the published ones", () => actor.received.length === published);
  } finally {
    await client.close();
    await actor.close();
  }
});
