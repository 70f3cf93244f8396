// The reconnect schedule (lib/broker/reconnect.ts) on its own: which broker next and how long to wait.

import assert from "node:assert/strict";
import { QUICK_RETRIES, QUICK_RETRY_MS, ReconnectSchedule } from "../lib/broker/reconnect.ts";

Deno.test("reconnect: the backoff doubles with jitter up to its ceiling, over the brokers in turn", () => {
  const schedule = new ReconnectSchedule(3, { initialDelayMs: 100, maxDelayMs: 1300 });
  assert.equal(schedule.index, 0);
  const bases = [100, 200, 400, 800, 1000, 1000];
  bases.forEach((base, i) => {
    const delay = schedule.next(true);
    assert.equal(schedule.attempt, i + 1);
    assert.equal(schedule.index, (i + 1) % 3);
    assert.ok(delay >= base * 0.7 && delay <= base * 1.3, `attempt ${i + 1}: ${delay} ms around ${base}`);
  });
  schedule.up();
  schedule.next(false);
  assert.equal(schedule.attempt, 1, "a loss after the link was up starts the backoff over");
});

Deno.test("reconnect: once the port opens, failures retry the same broker soon, a bounded number of times", () => {
  const schedule = new ReconnectSchedule(2, { initialDelayMs: 100 });
  schedule.next(true);
  schedule.portOpened();
  const index = schedule.index;
  for (let i = 0; i < QUICK_RETRIES; i++) {
    assert.equal(schedule.next(true), QUICK_RETRY_MS);
    assert.equal(schedule.index, index);
  }
  schedule.next(true);
  assert.notEqual(schedule.index, index, "then the backoff and the next broker again");
  schedule.portOpened();
  schedule.next(false);
  assert.notEqual(
    schedule.next(true),
    QUICK_RETRY_MS,
    "a lost link (not a failed attempt) ends quick retries",
  );
});
