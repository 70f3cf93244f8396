/**
 * Memory back after a surge of connections (`lib/surge_gc.ts`): one full
 * collection once a surge is over, one per surge, and V8's collector
 * really is reachable in this runtime.
 */

import assert from "node:assert/strict";
import { exposeGarbageCollector, SurgeCollector } from "../lib/surge_gc.ts";

/** A collector whose collections the test can await. */
function watched(minConnections: number, quietMs: number) {
  let waiting = Promise.withResolvers<void>();
  const surges = new SurgeCollector({
    minConnections,
    quietMs,
    collect: () => {
      waiting.resolve();
      waiting = Promise.withResolvers<void>();
    },
  });
  const collected = (what: string) => {
    const wait = waiting.promise;
    let timer: ReturnType<typeof setTimeout>;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no collection after ${what} within 10 s`)), 10_000);
    });
    return Promise.race([wait, deadline]).finally(() => clearTimeout(timer));
  };
  return { surges, collected };
}

Deno.test("surge gc: one collection after a surge is over, counted from the last new connection", async () => {
  const { surges, collected } = watched(100, 50);
  try {
    for (let count = 1; count <= 150; count++) surges.clients(count);
    await collected("150 connections");
    assert.equal(surges.collections, 1);
    // Departures and a trickle of arrivals are no surge; the next surge is counted afresh.
    surges.clients(20);
    for (let count = 21; count <= 60; count++) surges.clients(count);
    for (let count = 61; count <= 140; count++) surges.clients(count);
    await collected("the next 120 connections");
    assert.equal(surges.collections, 2, "one collection per surge, not one per connection");
  } finally {
    surges.stop();
  }
});

Deno.test("surge gc: V8's full collection is reachable under this Deno and gives memory back", () => {
  const collect = exposeGarbageCollector();
  assert.equal(
    typeof collect,
    "function",
    "--expose-gc set at run time no longer exposes gc(): see lib/surge_gc.ts",
  );
  let garbage: unknown[] = Array.from({ length: 300_000 }, (_, i) => ({ i, text: `item ${i}` }));
  const before = Deno.memoryUsage().heapUsed;
  garbage = [];
  collect!();
  assert.equal(garbage.length, 0);
  assert.ok(Deno.memoryUsage().heapUsed < before - 10 * 1024 * 1024, "the heap did not shrink after gc()");
});
