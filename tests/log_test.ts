/**
 * The gateway's log lines: what lib/log.ts builds itself for speed (split templates, its own timestamp and
 * value rendering) must be exactly the line LogTape renders for the same call.
 */

import assert from "node:assert/strict";
import { getLogger, getTextFormatter, type LogRecord, resetSync } from "@logtape/logtape";
import { debugEnabled, logger, setupLogging } from "../lib/log.ts";
import type { LogFormat, LogLevelName } from "../lib/config/config.ts";

/** Runs `body` with the gateway's logging set up and its lines captured. */
function capture(format: LogFormat, level: LogLevelName, body: () => void): string[] {
  const lines: string[] = [];
  setupLogging({ level, format, secrets: ["hunter2-secret"], write: (line) => lines.push(line) });
  try {
    body();
  } finally {
    resetSync();
  }
  return lines;
}

/** Calls that cover every kind of value a line holds, hostile strings included. */
const CALLS: Array<[string, Record<string, unknown>]> = [
  ["command {commandId} to {consumer} from client {client}: {outcome}", {
    commandId: "a\nforged line",
    consumer: "lvm\x1b[31m\x85\u2028",
    client: 17,
    outcome: "published",
    reason: undefined,
  }],
  ["values {a} {b} {c} {d} {e}", { a: undefined, b: null, c: { x: [1, "y"] }, d: -0.5, e: true }],
  ["a secret {token} is masked", { token: "hunter2-secret" }],
  ["no placeholders", {}],
  ["other syntax {{literal}} and {a.b}", { a: { b: 2 } }],
  ["missing {nope}", {}],
  ["{first}{second}", { first: 1, second: false }],
];

for (const format of ["text", "json"] as const) {
  Deno.test(`log (${format}): a line is the one LogTape renders for the same call`, () => {
    const ours = capture(format, "info", () => {
      for (const [template, properties] of CALLS) logger("part").info(template, properties);
    });
    const theirs = capture(format, "info", () => {
      for (const [template, properties] of CALLS) getLogger(["clu-ws", "part"]).info(template, properties);
    });
    const stamp = format === "text" ? /^\S+ \S+ \+00 / : /"@timestamp":"[^"]+"/;
    assert.equal(ours.length, CALLS.length);
    assert.deepEqual(ours.map((l) => l.replace(stamp, "")), theirs.map((l) => l.replace(stamp, "")));
    // One line per call, whatever the values hold, and the secret never written.
    for (const line of ours) assert.equal(line.indexOf("\n"), line.length - 1, line);
    assert.ok(ours.every((line) => !line.includes("hunter2-secret")));
    assert.ok(ours[2].includes("***"));
  });
}

/** A record of the category `clu-ws·time` at `timestamp`. */
function stamped(timestamp: number): LogRecord {
  return {
    category: ["clu-ws", "time"],
    level: "info",
    message: ["t"],
    rawMessage: "t",
    timestamp,
    properties: {},
  };
}

Deno.test("log: the timestamp is LogTape's date-time-tz in UTC, to the millisecond", () => {
  const times = [0, 5, 57, 999, 1000, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1)];
  const emitAll = () => {
    for (const timestamp of times) getLogger(["clu-ws", "time"]).emit(stamped(timestamp));
  };
  const lines = capture("text", "info", emitAll);
  const expected = getTextFormatter({ timestamp: "date-time-tz", value: "bare" });
  assert.deepEqual(lines, times.map((timestamp) => expected(stamped(timestamp))));
  assert.ok(lines.at(-1)!.startsWith("2027-01-01 00:00:00.000 +00 [INF]"), lines.at(-1));
  const json = capture("json", "info", emitAll);
  assert.deepEqual(
    json.map((line) => JSON.parse(line)["@timestamp"]),
    times.map((t) => new Date(t).toISOString()),
  );
});

Deno.test("log: levels below the configured one cost nothing, lazy properties included", () => {
  let built = 0;
  const lines = capture("text", "info", () => {
    const log = logger("levels");
    assert.equal(debugEnabled(log), false);
    log.debug("never {x}", () => {
      built++;
      return { x: 1 };
    });
    log.info("kept {x}", () => {
      built++;
      return { x: 2 };
    });
  });
  assert.equal(built, 1);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /\[INF\] clu-ws·levels: kept 2\n$/);
  const debug = capture("text", "debug", () => logger("levels").debug("now {x}", { x: 3 }));
  assert.match(debug[0], /\[DBG\] clu-ws·levels: now 3\n$/);
});
