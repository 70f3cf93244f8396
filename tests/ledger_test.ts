// The ledger of commands in flight, without a gateway: its end rule, timeouts, link loss,
// duplicate ids and its bound, with a listener that records what the sender would hear.

import assert from "node:assert/strict";
import {
  type CommandEnd,
  Ledger,
  type LedgerEntry,
  type LedgerListener,
  LINK_LOST_WARNING,
} from "../lib/commands/ledger.ts";

class Heard implements LedgerListener {
  ends: Array<{ end: CommandEnd; frames: readonly string[] }> = [];
  warnings = 0;
  #ended = Promise.withResolvers<void>();
  /** Resolves at the first end heard (an event to await, not a sleep). */
  readonly firstEnd: Promise<void> = this.#ended.promise;
  ended(end: CommandEnd, frames: readonly string[]): void {
    this.ends.push({ end, frames: [...frames] });
    this.#ended.resolve();
  }
  lost(): void {
    this.warnings++;
  }
}

const COMMANDER = "gw.lvm";

function opened(result: LedgerEntry | string): LedgerEntry {
  assert.equal(typeof result, "object", `opened, not refused: ${result}`);
  return result as LedgerEntry;
}

Deno.test("the end rule: `:` ends done, `f` and `!` end failed, in any case; other codes do not", () => {
  const ledger = new Ledger();
  const heard = new Heard();
  const track = { timeoutMs: 60_000, collect: true };
  for (const id of ["a", "b", "c", "d"]) {
    opened(ledger.open(id, { commanderId: COMMANDER, listener: heard, track }));
  }
  ledger.observe("a", COMMANDER, "i", "{1}");
  ledger.observe("a", COMMANDER, ">", "{2}");
  ledger.observe("a", COMMANDER, "w", "{3}");
  assert.equal(heard.ends.length, 0, "i, > and w end nothing");
  ledger.observe("a", COMMANDER, ":", "{4}");
  ledger.observe("b", COMMANDER, "F", "{5}");
  ledger.observe("c", COMMANDER, "!", "{6}");
  assert.deepEqual(heard.ends.map(({ end }) => [end.status, end.code]), [
    ["done", ":"],
    ["failed", "F"],
    ["failed", "!"],
  ]);
  assert.deepEqual(heard.ends[0].frames, ["{1}", "{2}", "{3}", "{4}"]);
  assert.equal(ledger.size, 1, "d still runs");
  ledger.observe("a", COMMANDER, ":", "{7}");
  assert.equal(heard.ends.length, 3, "an end is reported once");
  ledger.failAll("stopping");
});

Deno.test("replies of another commander, or with no string id, are not the command's", () => {
  const ledger = new Ledger();
  const heard = new Heard();
  opened(ledger.open("a", { commanderId: COMMANDER, listener: heard, track: { timeoutMs: 60_000 } }));
  ledger.observe("a", "other.lvm", ":", "{}");
  ledger.observe(7, COMMANDER, ":", "{}");
  ledger.observe(undefined, COMMANDER, ":", "{}");
  assert.equal(heard.ends.length, 0);
  ledger.observe("a", COMMANDER, ":", "{}");
  assert.deepEqual(heard.ends[0].frames, [], "frames are kept only when collecting");
});

Deno.test("untracked commands end silently; the gateway's failure ends a tracked one with its error", () => {
  const ledger = new Ledger();
  const heard = new Heard();
  opened(ledger.open("plain", { commanderId: COMMANDER, listener: heard, warn: true }));
  ledger.observe("plain", COMMANDER, ":", "{}");
  assert.equal(ledger.size, 0);
  const tracked = opened(
    ledger.open("t", { commanderId: COMMANDER, listener: heard, track: { timeoutMs: 60_000 } }),
  );
  ledger.fail(tracked, "RabbitMQ is unreachable");
  ledger.fail(tracked, "again");
  assert.deepEqual(heard.ends.map(({ end }) => [end.status, end.code, end.error]), [
    ["failed", null, "RabbitMQ is unreachable"],
  ]);
  assert.equal(heard.warnings, 0);
});

Deno.test("a tracked command times out once, and frees its id", async () => {
  const ledger = new Ledger();
  const heard = new Heard();
  opened(ledger.open("slow", { commanderId: COMMANDER, listener: heard, track: { timeoutMs: 20 } }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    heard.firstEnd,
    new Promise((_, reject) => timer = setTimeout(() => reject(new Error("no timeout within 10 s")), 10_000)),
  ]).finally(() => clearTimeout(timer));
  assert.equal(heard.ends.length, 1);
  assert.equal(heard.ends[0].end.status, "timeout");
  assert.equal(heard.ends[0].end.error, "no end of the command within 0.02 s");
  assert.ok(heard.ends[0].end.elapsedMs >= 15);
  ledger.observe("slow", COMMANDER, ":", "{}");
  assert.equal(heard.ends.length, 1, "a late end is not reported");
  assert.equal(ledger.size, 0);
  opened(ledger.open("slow", { commanderId: COMMANDER, listener: heard }));
});

Deno.test("link loss: confirmed commands that asked are warned, tracked ones fail, the ledger empties", () => {
  const ledger = new Ledger();
  const confirmedPlain = new Heard();
  const unconfirmed = new Heard();
  const confirmedTracked = new Heard();
  const quiet = new Heard();
  ledger.confirm(opened(ledger.open("p", { commanderId: COMMANDER, listener: confirmedPlain, warn: true })));
  opened(ledger.open("u", { commanderId: COMMANDER, listener: unconfirmed, warn: true }));
  const tracked = opened(
    ledger.open("t", {
      commanderId: COMMANDER,
      listener: confirmedTracked,
      warn: true,
      track: { timeoutMs: 60_000 },
    }),
  );
  ledger.confirm(tracked);
  ledger.confirm(opened(ledger.open("h", { commanderId: COMMANDER, listener: quiet })));
  assert.equal(ledger.lost(), 2);
  assert.equal(confirmedPlain.warnings, 1);
  assert.equal(unconfirmed.warnings, 0, "not confirmed: its publish fails and tells the sender instead");
  assert.equal(quiet.warnings, 0, "it did not ask");
  assert.equal(confirmedTracked.warnings, 1);
  assert.deepEqual(confirmedTracked.ends.map(({ end }) => [end.status, end.error]), [[
    "failed",
    LINK_LOST_WARNING,
  ]]);
  assert.equal(ledger.size, 0);
  assert.equal(ledger.lost(), 0, "told once");
  ledger.confirm(tracked);
  ledger.fail(tracked, "late");
  assert.equal(confirmedTracked.ends.length, 1, "a forgotten entry hears nothing more");
});

Deno.test("duplicates: a tracked id is refused to others; an untracked one is displaced by the newer", () => {
  const ledger = new Ledger();
  const first = new Heard();
  const second = new Heard();
  opened(ledger.open("x", { commanderId: COMMANDER, listener: first, track: { timeoutMs: 60_000 } }));
  assert.equal(
    ledger.open("x", { commanderId: COMMANDER, listener: second, track: { timeoutMs: 60_000 } }),
    "command_id 'x' is already used by a tracked command; choose another",
  );
  assert.equal(typeof ledger.open("x", { commanderId: "gw.other", listener: second, warn: true }), "string");
  const old = opened(ledger.open("y", { commanderId: COMMANDER, listener: first, warn: true }));
  const newer = opened(ledger.open("y", { commanderId: COMMANDER, listener: second, warn: true }));
  ledger.confirm(old);
  ledger.confirm(newer);
  assert.equal(ledger.lost(), 1);
  assert.equal(first.warnings, 0, "the displaced command is forgotten");
  assert.equal(second.warnings, 1);
  assert.equal(first.ends[0].end.error, LINK_LOST_WARNING, "the tracked x failed with the link");
});

Deno.test("bounded: untracked commands are forgotten when old or to make room; tracked ones are refused when full", () => {
  let now = 0;
  const ledger = new Ledger({ max: 3, keepMs: 1000, now: () => now });
  const heard = new Heard();
  const track = { timeoutMs: 60_000 };
  opened(ledger.open("p1", { commanderId: COMMANDER, listener: heard }));
  opened(ledger.open("t1", { commanderId: COMMANDER, listener: heard, track }));
  opened(ledger.open("p2", { commanderId: COMMANDER, listener: heard }));
  opened(ledger.open("p3", { commanderId: COMMANDER, listener: heard }));
  assert.equal(ledger.size, 3, "p1, the oldest untracked, made room");
  opened(ledger.open("t2", { commanderId: COMMANDER, listener: heard, track }));
  opened(ledger.open("t3", { commanderId: COMMANDER, listener: heard, track }));
  assert.equal(ledger.size, 3, "p2 and p3 made room");
  assert.equal(
    ledger.open("t4", { commanderId: COMMANDER, listener: heard, track }),
    "clu-ws is tracking 3 commands already; try again later",
  );
  assert.equal(typeof ledger.open("p4", { commanderId: COMMANDER, listener: heard }), "string");
  ledger.observe("t1", COMMANDER, ":", "{}");
  opened(ledger.open("p5", { commanderId: COMMANDER, listener: heard }));
  now = 500;
  opened(ledger.open("t5", { commanderId: COMMANDER, listener: heard, track })); // p5 made room
  ledger.observe("t2", COMMANDER, ":", "{}");
  opened(ledger.open("p6", { commanderId: COMMANDER, listener: heard }));
  now = 1600;
  ledger.observe("t3", COMMANDER, ":", "{}");
  opened(ledger.open("p7", { commanderId: COMMANDER, listener: heard }));
  assert.equal(ledger.size, 2, "p6, older than keepMs, was forgotten; t5 and p7 remain");
  ledger.failAll("stopping");
  assert.equal(ledger.size, 1, "failAll ends the tracked commands only");
  assert.equal(heard.ends.length, 4);
});
