// A frame far over --max-message-size, streamed by a real peer (plain and over
// TLS): the gateway refuses it with 1009 as soon as its header says how long
// it is, stops reading the rest, and ends the connection, so its memory does
// not grow with what the peer keeps sending; another client carries on.

import assert from "node:assert/strict";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { RawWebSocket } from "./helpers/raw_ws.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";

const MiB = 1024 * 1024;

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

/** The close code and reason of a close frame's payload. */
function closeOf(payload: Uint8Array): { code: number; reason: string } {
  return {
    code: (payload[0] << 8) | payload[1],
    reason: new TextDecoder().decode(payload.subarray(2)),
  };
}

/** Sends frames just over the limit from `count` peers, each refused with 1009: the same work, warmed up. */
async function warmUpRefusals(connect: () => Promise<RawWebSocket>, count = 3): Promise<void> {
  for (let i = 0; i < count; i++) {
    const small = await connect();
    const frames = small.readFramesUntilClosed();
    await small.streamFrame(1, 256 * 1024);
    assert.equal(closeOf((await frames).at(-1)!.payload).code, 1009);
    small.abort();
  }
}

/** What a peer streaming a big frame saw, and the gateway's peak RSS over its RSS before. */
interface BigFrame {
  close?: { code: number; reason: string };
  written: number;
  error?: Error;
  ms: number;
  before: number;
  growth: number;
}

/** A peer from `connect` streams a text frame of `total` bytes; `meanwhile` runs until it is done. */
async function streamBigFrame(
  gateway: GatewayProcess,
  connect: () => Promise<RawWebSocket>,
  total: number,
  meanwhile: (streaming: () => boolean) => Promise<void> = async () => {},
): Promise<BigFrame> {
  const before = gateway.rssBytes();
  gateway.resetPeakRss();
  const peer = await connect();
  const frames = peer.readFramesUntilClosed();
  const started = performance.now();
  let streaming = true;
  const sending = peer.streamFrame(1, total).finally(() => streaming = false);
  const other = meanwhile(() => streaming);
  const sent = await sending;
  const ms = performance.now() - started;
  await other;
  const received = await frames;
  peer.abort();
  const growth = gateway.peakRssBytes() - before;
  const close = received.find((f) => f.opcode === 0x8);
  return { close: close && closeOf(close.payload), ...sent, ms, before, growth };
}

function describe(what: string, result: BigFrame): string {
  return `${what}: ${mib(result.written)} MiB of it written in ${result.ms.toFixed(0)} ms before ` +
    `${result.error ? `the gateway ended the connection (${result.error.name})` : "the peer was done"}; ` +
    `gateway RSS ${mib(result.before)} MiB before, peak +${mib(result.growth)} MiB`;
}

const TOTAL = 48 * MiB;

/** The outcome the issue asks for: 1009 with its reason, the connection ended early, RSS within 16 MiB. */
function assertRefusedEarly(result: BigFrame): void {
  assert.ok(result.close, "the peer got a close frame");
  assert.equal(result.close.code, 1009);
  assert.match(result.close.reason, /^message too big: limit 64 KiB/);
  assert.ok(
    result.error && result.written < TOTAL,
    "the gateway ended the connection before the frame was all sent",
  );
  assert.ok(
    result.growth <= 16 * MiB,
    `the gateway's RSS peaked ${mib(result.growth)} MiB above its level before`,
  );
}

async function clientCount(gateway: GatewayProcess, client?: Deno.HttpClient): Promise<number> {
  const url = client ? `https://127.0.0.1:${gateway.port}/healthz` : gateway.httpUrl("/healthz");
  const response = await fetch(url, client ? { client } : {});
  return (await response.json()).clients;
}

Deno.test("a 48 MiB frame is closed with 1009 while it arrives, the gateway's RSS grows by at most 16 MiB, and another client keeps getting replies", async () => {
  const exchange = uniqueExchange("bigframe");
  const actorName = `big-${crypto.randomUUID().slice(0, 8)}`;
  // Default --max-message-size (64 KiB); info logs, as debug logs a line per reply.
  await using gateway = await startGateway({ exchange, args: ["--log-level", "info"] });
  const actor = await startActor(exchange, actorName);
  const other = await WsClient.connect(gateway.url());
  let pings = 0;
  const ping = async (id: string) => {
    other.send({ consumer: actorName, command_string: "ping", command_id: id });
    await other.next(`the end of ${id}`, replyTo(id, ":"), { timeoutMs: 20_000 });
    pings++;
  };
  const connect = () => RawWebSocket.connect(gateway.port);
  try {
    // Warm-up: commands and replies, and the same refusal for a frame just over the limit, so what
    // is measured is the big frame, not the heap growing to its working size.
    for (let i = 0; i < 20; i++) await ping(`warm-${i}`);
    await warmUpRefusals(connect);
    await until("the warm-up peers are gone", async () => (await clientCount(gateway)) === 1);

    const pingsBefore = pings;
    const result = await streamBigFrame(gateway, connect, TOTAL, async (streaming) => {
      // Replies keep reaching the other client while the peer streams.
      for (let i = 0; streaming(); i++) await ping(`during-${i}`);
    });
    console.log(`${describe("a 48 MiB frame", result)}; ${pings - pingsBefore} replies meanwhile`);
    assertRefusedEarly(result);
    assert.ok(pings > pingsBefore, "the other client got replies while the frame was streamed");

    await ping("after");
    await gateway.waitForLog("the refusal", (r) => /sent a frame over the limit/.test(r.message));
    await until("the peer left the registry", async () => (await clientCount(gateway)) === 1);
  } finally {
    await other.close();
    await actor.close();
  }
});

Deno.test("over TLS too, a 48 MiB frame is closed with 1009 while it arrives and the gateway's RSS grows by at most 16 MiB", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A self-signed server certificate the test trusts.
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `openssl: ${new TextDecoder().decode(out.stderr)}`);
    const caCerts = [await Deno.readTextFile(`${dir}/cert.pem`)];
    const http = Deno.createHttpClient({ caCerts });
    try {
      await using gateway = await startGateway({
        exchange: uniqueExchange("bigframe-tls"),
        args: ["--log-level", "info", "--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`],
      });
      const connect = () => RawWebSocket.connect(gateway.port, { caCerts });
      await warmUpRefusals(connect);
      await until("the warm-up peers are gone", async () => (await clientCount(gateway, http)) === 0);

      const result = await streamBigFrame(gateway, connect, TOTAL);
      console.log(describe("a 48 MiB frame over TLS", result));
      assertRefusedEarly(result);
      await until("the peer left the registry", async () => (await clientCount(gateway, http)) === 0);
    } finally {
      http.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
