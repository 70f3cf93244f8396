/**
 * The gateway's own introspection commands (get-command-model, get_schema,
 * help) are answered on `reply.<commander>`, which the history stream keeps
 * too (it is bound to `reply.#`): those answers reach no client live, and no
 * client in a replay from the stream either.
 */

import assert from "node:assert/strict";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { startGateway } from "./helpers/gateway_process.ts";
import { deleteStream, streamArgs, uniqueStream } from "./helpers/stream.ts";
import { type Frame, WsClient } from "./helpers/ws_client.ts";

type Json = Record<string, unknown>;
const json = (frame: Frame) => frame as unknown as Json;
const INTROSPECTION_PREFIX = "clu-ws-introspection-";

Deno.test("--history stream: the gateway's introspection answers are in the stream but never replayed to a client", async () => {
  const stream = uniqueStream("introspect");
  const exchange = uniqueExchange("stream-introspect");
  try {
    await using gateway = await startGateway({ exchange, args: streamArgs(stream) });
    const watcher = await WsClient.connect(gateway.url(), { protocols: ["clu-ws.v1"] });
    const welcome = json(await watcher.next("the welcome", (f) => json(f)["clu-ws"] === "welcome"));
    const actor = await startActor(exchange, `streamintro${crypto.randomUUID().slice(0, 6)}`, {
      introspection: "clu",
    });
    try {
      // The first reply makes the gateway ask the actor; its model arriving means the answers went by.
      await actor.broadcast({ temperature: 1 });
      await until("the actor's model at the gateway", async () => {
        const response = await fetch(gateway.httpUrl(`/actors/${actor.name}/model`));
        await response.body?.cancel();
        return response.status === 200;
      }, { timeoutMs: 20_000 });
      await actor.broadcast({ temperature: 2 });
      await watcher.next("temperature 2", (f) => f.body?.temperature === 2);
      // A client that resumes from the watcher's welcome gets the stream's replies since then.
      const resumer = await WsClient.connect(gateway.url(), { protocols: ["clu-ws.v1"] });
      try {
        await resumer.next("its welcome", (f) => json(f)["clu-ws"] === "welcome");
        resumer.send({ "clu-ws": "resume", id: "r", epoch: welcome.epoch, seq: welcome.seq });
        const resumed = json(
          await resumer.next("resumed", (f) => json(f)["clu-ws"] === "resumed", {
            timeoutMs: 20_000,
          }),
        );
        assert.ok(
          Number(resumed.count) >= 2,
          `the two broadcasts were replayed (${JSON.stringify(resumed)})`,
        );
        const replayed = resumer.frames.filter((f) => !("clu-ws" in f));
        assert.deepEqual(
          replayed.map((f) => f.body?.temperature).filter((t) => t !== undefined),
          [1, 2],
          "the actor's own replies, once each",
        );
        for (const client of [watcher, resumer]) {
          const asked = client.frames.filter((f) =>
            String(f.headers?.command_id ?? "").startsWith(INTROSPECTION_PREFIX) ||
            f.body?.command_model !== undefined || f.body?.schema !== undefined
          );
          assert.deepEqual(asked, [], "no introspection answer reached a client");
        }
        assert.ok(actor.introspection.length >= 3, "the gateway did ask the actor (3 commands)");
      } finally {
        await resumer.close();
      }
    } finally {
      await watcher.close();
      await actor.close();
    }
  } finally {
    await deleteStream(stream);
  }
});
