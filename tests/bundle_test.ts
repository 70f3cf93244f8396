// The shipped graph: the one-file bundle that `deno task bundle` builds (and
// `deno task test` builds first), copied away from the repository and run on
// its own, carries a command end to end.

import assert from "node:assert/strict";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { startGateway } from "./helpers/gateway_process.ts";
import { RawWebSocket } from "./helpers/raw_ws.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";

const BUNDLE = new URL("../dist/clu-ws.js", import.meta.url);
/** A frame far over the default --max-message-size (64 KiB), and under Deno.serve's own 64 MiB. */
const BIG_FRAME = 48 * 1024 * 1024;

Deno.test("the bundle, alone in an empty directory, runs the gateway end to end", async () => {
  let source: Uint8Array;
  try {
    source = await Deno.readFile(BUNDLE);
  } catch {
    throw new Error(
      `${BUNDLE.pathname} is missing: build it with \`deno task bundle\` (deno task test does)`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "clu-ws-bundle-" });
  try {
    const copy = `${dir}/clu-ws.js`;
    await Deno.writeFile(copy, source);
    const exchange = uniqueExchange("bundle");
    await using gateway = await startGateway({ exchange, entry: copy });
    const actor = await startActor(exchange, "testactor");
    const client = await WsClient.connect(gateway.url());
    try {
      client.send({ consumer: "testactor", command_string: "ping", command_id: "bundle-1" });
      const done = await client.next("Pong through the bundle", replyTo("bundle-1", ":"));
      assert.deepEqual(done.body, { text: "Pong." });
      assert.equal(actor.received[0].headers.commander_id, `${gateway.name}.testactor`);
      // The websocket transport is ws on node:http: only it refuses an oversized frame while the frame
      // arrives (Deno.serve's websocket reads a frame whole, up to 64 MiB, before anyone sees its size).
      const peer = await RawWebSocket.connect(gateway.port);
      const frames = peer.readFramesUntilClosed();
      const sent = await peer.streamFrame(1, BIG_FRAME);
      // A gateway that took the whole frame may hold the connection open: give up on it after a while.
      const deadline = setTimeout(() => peer.abort(), 30_000);
      const closed = (await frames).find((frame) => frame.opcode === 0x8);
      clearTimeout(deadline);
      peer.abort();
      assert.ok(closed, "the peer got a close frame");
      assert.equal((closed.payload[0] << 8) | closed.payload[1], 1009);
      assert.ok(
        sent.error && sent.written < BIG_FRAME,
        `the bundle read ${sent.written} bytes of a ${BIG_FRAME}-byte frame: it must end the connection first`,
      );
    } finally {
      await client.close();
      await actor.close();
    }
    const { code } = await gateway.stop();
    assert.equal(code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
