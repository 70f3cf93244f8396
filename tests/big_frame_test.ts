// A frame far over --max-message-size, streamed by a real peer: the gateway
// refuses it with 1009 as soon as its header says how long it is, stops
// reading the rest, and ends the connection, so its memory does not grow
// with what the peer keeps sending; another client carries on meanwhile.

import assert from "node:assert/strict";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { startGateway } from "./helpers/gateway_process.ts";
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
  try {
    // Warm-up: commands and replies, and the same refusal for a frame just over the limit, so what
    // is measured is the big frame, not the heap growing to its working size.
    for (let i = 0; i < 20; i++) await ping(`warm-${i}`);
    for (let i = 0; i < 3; i++) {
      const small = await RawWebSocket.connect(gateway.port);
      const frames = small.readFramesUntilClosed();
      await small.streamFrame(1, 256 * 1024);
      assert.equal(closeOf((await frames).at(-1)!.payload).code, 1009);
      small.abort();
    }
    await until("the warm-up peers are gone", async () => {
      const response = await fetch(gateway.httpUrl("/healthz"));
      return (await response.json()).clients === 1;
    });

    const total = 48 * MiB;
    const before = gateway.rssBytes();
    gateway.resetPeakRss();
    const peer = await RawWebSocket.connect(gateway.port);
    const frames = peer.readFramesUntilClosed();
    const started = performance.now();
    let streaming = true;
    const sending = peer.streamFrame(1, total).finally(() => streaming = false);
    // Replies keep reaching the other client while the peer streams.
    const pingsBefore = pings;
    const pinging = (async () => {
      for (let i = 0; streaming; i++) await ping(`during-${i}`);
    })();
    const sent = await sending;
    const ms = performance.now() - started;
    await pinging;
    const received = await frames;
    peer.abort();
    const peak = gateway.peakRssBytes();
    const growth = peak - before;
    console.log(
      `a 48 MiB frame: ${mib(sent.written)} MiB of it written in ${ms.toFixed(0)} ms before ` +
        `${sent.error ? `the gateway ended the connection (${sent.error.name})` : "the peer was done"}; ` +
        `gateway RSS ${mib(before)} MiB before, peak +${mib(growth)} MiB; ${
          pings - pingsBefore
        } replies meanwhile`,
    );

    const close = received.find((f) => f.opcode === 0x8);
    assert.ok(close, "the peer got a close frame");
    assert.equal(closeOf(close.payload).code, 1009);
    assert.match(closeOf(close.payload).reason, /^message too big: limit 64 KiB/);
    assert.ok(
      sent.error && sent.written < total,
      "the gateway ended the connection before the frame was all sent",
    );
    assert.ok(growth <= 16 * MiB, `the gateway's RSS peaked ${mib(growth)} MiB above its level before`);
    assert.ok(pings > pingsBefore, "the other client got replies while the frame was streamed");

    await ping("after");
    await gateway.waitForLog("the refusal", (r) => /sent a frame over the limit/.test(r.message));
    await until("the peer left the registry", async () => {
      const response = await fetch(gateway.httpUrl("/healthz"));
      return (await response.json()).clients === 1;
    });
  } finally {
    await other.close();
    await actor.close();
  }
});
