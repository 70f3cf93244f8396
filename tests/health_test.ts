// The /healthz document (lib/http/health.ts) on its own: status and body from the figures handed in.

import assert from "node:assert/strict";
import { type HealthInputs, healthReport } from "../lib/http/health.ts";
import { VERSION } from "../lib/version.ts";

function inputs(overrides: Partial<HealthInputs> = {}): HealthInputs {
  return {
    broker: { state: "up", node: "127.0.0.1:5672", blockedReason: undefined },
    replies: { epoch: "abc-1234", latestSeq: 42 },
    identity: { name: "gw", exchange: "sdss_exchange" },
    clients: 3,
    startedAt: 1_000,
    now: 61_400,
    ...overrides,
  };
}

Deno.test("health: 200 and every figure while the broker link is up", () => {
  const health = healthReport(inputs());
  assert.equal(health.status, 200);
  assert.deepEqual(health.body, {
    status: "ok",
    broker: "up",
    node: "127.0.0.1:5672",
    blocked: null,
    uptime_s: 60,
    clients: 3,
    version: VERSION,
    name: "gw",
    exchange: "sdss_exchange",
    epoch: "abc-1234",
    seq: 42,
  });
});

Deno.test("health: 503 while the link is not up, with nulls for what is unknown", () => {
  for (const state of ["connecting", "down", "closed"] as const) {
    const health = healthReport(inputs({ broker: { state, node: undefined, blockedReason: undefined } }));
    assert.equal(health.status, 503);
    assert.equal(health.body.status, "broker link down");
    assert.equal(health.body.broker, state);
    assert.equal(health.body.node, null);
  }
});

Deno.test("health: a blocking broker is reported, and the link still counts as up", () => {
  const health = healthReport(
    inputs({ broker: { state: "up", node: "h:5672", blockedReason: "low on disk" } }),
  );
  assert.equal(health.status, 200);
  assert.equal(health.body.blocked, "low on disk");
});
