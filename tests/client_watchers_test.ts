/**
 * Unit tests of the client module's keyword watchers (web/client/watchers.ts):
 * fed from replies and from state snapshots, never with an older value.
 */

import assert from "node:assert/strict";
import { Watchers } from "../web/client/watchers.ts";

Deno.test("client watchers: a watcher gets its actor's keyword, at newer positions only", () => {
  const watchers = new Watchers();
  const seen: unknown[] = [];
  watchers.add("ecp", "dome", (value) => seen.push(value));
  watchers.feed("ecp", { dome: "open", other: 1 }, { seq: 5 });
  watchers.feed("ecp", { dome: "stale" }, { seq: 5 });
  watchers.feed("ecp", { dome: "older" }, { seq: 3 });
  watchers.feed("other", { dome: "not mine" }, { seq: 9 });
  watchers.feed("ecp", { unrelated: true }, { seq: 10 });
  watchers.feed("ecp", { dome: "closed" }, { seq: 11 });
  assert.deepEqual(seen, ["open", "closed"]);
});

Deno.test("client watchers: a live reply is passed along; a state value is not", () => {
  const watchers = new Watchers();
  const frames: unknown[] = [];
  watchers.add("ecp", "dome", (_value, frame) => frames.push(frame));
  const frame = {
    seq: 2,
    headers: { message_code: "i", sender: "ecp" },
    exchange: "x",
    message_id: null,
    routing_key: "r",
    timestamp: null,
    body: { dome: 1 },
  };
  watchers.feed("ecp", { dome: 0 }, { seq: 1 });
  watchers.feed("ecp", frame.body, { seq: 2, frame });
  assert.deepEqual(frames, [undefined, frame]);
});

Deno.test("client watchers: feedState feeds every actor of a snapshot; forgetPositions lets older ones in", () => {
  const watchers = new Watchers();
  const seen: string[] = [];
  watchers.add("a", "k", (value) => seen.push(`a ${value}`));
  watchers.add("b", "k", (value) => seen.push(`b ${value}`));
  watchers.add("a", "k", () => {
    throw new Error("a bad callback does not stop the others");
  });
  assert.deepEqual(watchers.actors(), ["a", "b"]);
  const keyword = (value: unknown) => ({ k: { value, at: "2026-01-01T00:00:00Z" } });
  const snapshot = (seq: number, value: string) =>
    ({ seq, actors: { a: { keywords: keyword(value) }, b: { keywords: keyword(value) } } }) as never;
  const error = console.error;
  console.error = () => {};
  try {
    watchers.feedState(snapshot(7, "x"));
    watchers.feedState(snapshot(4, "old"));
    watchers.forgetPositions();
    watchers.feedState(snapshot(4, "new epoch"));
  } finally {
    console.error = error;
  }
  assert.deepEqual(seen, ["a x", "b x", "a new epoch", "b new epoch"]);
});

Deno.test("client watchers: delete stops a watcher", () => {
  const watchers = new Watchers();
  let calls = 0;
  const watcher = watchers.add("a", "k", () => calls++);
  assert.equal(watchers.has(watcher), true);
  assert.equal(watchers.delete(watcher), true);
  assert.equal(watchers.has(watcher), false);
  watchers.feed("a", { k: 1 }, { seq: 1 });
  assert.equal(calls, 0);
  assert.deepEqual(watchers.actors(), []);
});
