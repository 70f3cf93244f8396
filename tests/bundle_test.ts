// The shipped graph: the one-file bundle that `deno task bundle` builds (and
// `deno task test` builds first), copied away from the repository and run on
// its own, carries a command end to end.

import assert from "node:assert/strict";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { startGateway } from "./helpers/gateway_process.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";

const BUNDLE = new URL("../dist/clu-ws.js", import.meta.url);

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
