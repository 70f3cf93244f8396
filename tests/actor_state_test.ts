// The actors' state store (lib/actor_state.ts) on its own: eviction of the longest-silent actor when
// full, and the failed-routing reply that must never become an actor.

import assert from "node:assert/strict";
import { ActorState } from "../lib/replies/actor_state.ts";
import { isFailedRouting } from "../lib/protocol/clu.ts";

function names(state: ActorState): string[] {
  return state.list().map((a) => a.name);
}

Deno.test("actor state: when full, the longest-silent actor makes room for a new one", () => {
  const state = new ActorState({ maxActors: 3 });
  state.update("a", "i", { x: 1 }, 1);
  state.update("b", "i", { x: 1 }, 2);
  state.update("c", "i", { x: 1 }, 3);
  state.update("a", "i", { x: 2 }, 4); // a speaks again: b is now the longest silent
  state.update("d", "i", { x: 1 }, 5);
  assert.deepEqual(names(state), ["a", "c", "d"]);
  state.update("d", "i", { x: 2 }, 6); // the newest speaking again changes nothing
  state.update("e", ":", {}, 7);
  assert.deepEqual(names(state), ["a", "d", "e"]);
  assert.equal(state.size, 3);
  assert.equal(JSON.parse(state.actorJson("a")!).keywords.x.value, 2, "a kept its keywords");
});

Deno.test("actor state: a reply that is not an object still counts as the actor speaking", () => {
  const state = new ActorState({ maxActors: 2 });
  state.update("a", "i", {}, 1);
  state.update("b", "i", {}, 2);
  state.update("a", "i", "text", 3);
  state.update("c", "i", {}, 4);
  assert.deepEqual(names(state), ["a", "c"]);
});

Deno.test("actor state: a full store takes many new actors in linear time", () => {
  const state = new ActorState({ maxActors: 1000 });
  const started = performance.now();
  for (let i = 0; i < 200_000; i++) state.update(`actor-${i}`, "i", { n: i }, i);
  const ms = performance.now() - started;
  assert.equal(state.size, 1000);
  assert.deepEqual(names(state).slice(0, 2), ["actor-199000", "actor-199001"]);
  // A scan per eviction would take 200k × 1000 steps; a generous bound for a busy machine.
  assert.ok(ms < 5_000, `200k updates took ${ms} ms`);
});

Deno.test("actor state: the failed-routing reply is recognized by its shape and never recorded", () => {
  const failed = { error: "Failed routing message to consumer 'ghost'." };
  assert.equal(isFailedRouting("ghost", "f", failed), true);
  assert.equal(isFailedRouting("ghost", "e", failed), false, "another code");
  assert.equal(isFailedRouting("dome", "f", failed), false, "another sender");
  assert.equal(isFailedRouting("ghost", "f", { ...failed, text: "more" }), false, "more keys");
  assert.equal(isFailedRouting("ghost", "f", { error: "Failed routing message to consumer 'ghost'" }), false);
  assert.equal(isFailedRouting("ghost", "f", null), false);
  assert.equal(isFailedRouting("ghost", "f", [failed]), false);

  const state = new ActorState();
  state.update("ghost", "f", failed);
  assert.deepEqual(names(state), []);
  // A known actor's own failure is recorded; its failed-routing reply does not even refresh it.
  state.update("dome", "f", { error: "the dome is stuck" }, 10);
  state.update("dome", "f", { error: "Failed routing message to consumer 'dome'." }, 20);
  assert.deepEqual(state.list(), [{ name: "dome", last_seen: "1970-01-01T00:00:10+00:00", keywords: 1 }]);
});
