/**
 * Unit tests of the client module's control requests (web/client/requests.ts)
 * and its event emitter (web/client/emitter.ts), with a fake sink.
 */

import assert from "node:assert/strict";
import { type ControlFrame, Requests } from "../web/client/requests.ts";
import { Emitter } from "../web/client/emitter.ts";

type Answer = ControlFrame & { id?: unknown; error?: string; n?: number };

function fakeSink(open = true) {
  const sent: unknown[] = [];
  return { sent, isOpen: open, send: (text: string) => (sent.push(JSON.parse(text)), open) };
}

Deno.test("client requests: each gets a fresh id, and the answer with that id settles it", async () => {
  const requests = new Requests<ControlFrame & Record<string, unknown>, Answer>();
  const sink = fakeSink();
  const first = requests.send({ "clu-ws": "state", actors: ["a"] }, sink);
  const second = requests.send({ "clu-ws": "subscribe" }, sink);
  assert.deepEqual(sink.sent, [{ "clu-ws": "state", id: 1, actors: ["a"] }, {
    "clu-ws": "subscribe",
    id: 2,
  }]);
  requests.answer({ "clu-ws": "state", id: 99 });
  requests.answer({ "clu-ws": "welcome" });
  requests.answer({ "clu-ws": "error", id: 2, error: "bad glob" });
  requests.answer({ "clu-ws": "state", id: 1, n: 1 });
  requests.answer({ "clu-ws": "state", id: 1, n: 2 });
  assert.deepEqual(await first, { "clu-ws": "state", id: 1, n: 1 });
  await assert.rejects(second, /^Error: bad glob$/);
});

Deno.test("client requests: not connected rejects at once; failAll rejects what waits", async () => {
  const requests = new Requests<ControlFrame, Answer>();
  await assert.rejects(requests.send({ "clu-ws": "state" }, fakeSink(false)), /not connected/);
  const sink = fakeSink();
  const waiting = requests.send({ "clu-ws": "state" }, sink);
  requests.failAll("connection lost");
  await assert.rejects(waiting, /connection lost/);
  requests.answer({ "clu-ws": "state", id: 1 });
  // Ids keep counting: an answer meant for an old request cannot settle a new one.
  requests.send({ "clu-ws": "state" }, sink).catch(() => {});
  assert.deepEqual(sink.sent.at(-1), { "clu-ws": "state", id: 2 });
  requests.failAll("done");
});

Deno.test("client emitter: listeners in order, removable, and one that throws does not stop the rest", () => {
  const emitter = new Emitter<{ a: number; b: string }>(["a", "b"]);
  const seen: string[] = [];
  emitter.on("a", (n) => seen.push(`first ${n}`));
  emitter.on("a", () => {
    throw new Error("bad listener");
  });
  const stop = emitter.on("a", (n) => seen.push(`third ${n}`));
  emitter.on("b", (s) => seen.push(`b ${s}`));
  const error = console.error;
  const logged: unknown[] = [];
  console.error = (...args: unknown[]) => logged.push(args[0]);
  try {
    emitter.emit("a", 1);
    stop();
    emitter.emit("a", 2);
    emitter.emit("b", "x");
  } finally {
    console.error = error;
  }
  assert.deepEqual(seen, ["first 1", "third 1", "first 2", "b x"]);
  assert.deepEqual(logged, ["clu-ws client: a a listener threw", "clu-ws client: a a listener threw"]);
});
