// The console's pure parts on their own, without a browser: text formatting (web/console/format.ts), the
// filters and their URL form (web/console/filter_query.ts), and the command bar's history
// (web/console/command_history.ts). The Playwright tests in console_test.ts drive the same code in Chromium.

import assert from "node:assert/strict";
import type { Frame } from "../web/client.ts";
import {
  ago,
  clock,
  CODES,
  duration,
  entryOf,
  formatValue,
  jsonText,
  kindOf,
  meaningOf,
  newCommandId,
  noteEntry,
} from "../web/console/format.ts";
import {
  chosenCodes,
  type Filter,
  formFromQuery,
  matchesFilter,
  MAX_FILTER_WORDS,
  parseFilter,
  queryWithForm,
} from "../web/console/filter_query.ts";
import { CommandHistory, HISTORY_SIZE } from "../web/console/command_history.ts";

function frame(sender: string, code: string, body: unknown, extra: Partial<Frame["headers"]> = {}): Frame {
  return {
    headers: { message_code: code, sender, command_id: 7, ...extra },
    body,
    timestamp: "2026-12-04T10:11:12.345Z",
    seq: 1,
  } as Frame;
}

function filterOf(actor: string, codes?: string, text = ""): Filter {
  return parseFilter({ actor, codes: codes === undefined ? undefined : new Set(codes), text });
}

function passes(filter: Filter, sender: string, code = "i", body: unknown = {}): boolean {
  return matchesFilter(filter, entryOf(frame(sender, code, body)));
}

Deno.test("console format: keyword values as CLU prints them, cut at the limit", () => {
  assert.equal(formatValue("open"), '"open"');
  assert.equal(formatValue([1, "a", null]), '1,"a",null');
  assert.equal(formatValue({ a: 1 }), '{"a":1}');
  assert.equal(formatValue(undefined), "null");
  assert.equal(formatValue("x".repeat(200)), `"${"x".repeat(159)}…`);
  assert.equal(formatValue("abcdef", 3), '"ab…');
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.equal(jsonText(cycle), "[object Object]", "a cycle is shown, not thrown");
  assert.equal(jsonText(10n), "10");
});

Deno.test("console format: codes, their meaning and style; unknown codes are 'other'", () => {
  assert.deepEqual(CODES.map((c) => c.code).join(""), ">:f!ewid");
  assert.equal(kindOf("!"), "failed");
  assert.equal(meaningOf("!"), "failed (fatal)");
  assert.equal(kindOf(":"), "done");
  assert.equal(kindOf("x"), "other");
  assert.equal(meaningOf(""), "other");
});

Deno.test("console format: elapsed times and 'ago'", () => {
  assert.equal(duration(84.4), "84 ms");
  assert.equal(duration(999.4), "999 ms");
  assert.equal(duration(1240), "1.24 s");
  assert.equal(duration(12_540), "12.5 s");
  assert.equal(duration(125_000), "2 min 5 s");
  const now = 1_000_000_000;
  assert.equal(ago(now - 1_400, now), "now");
  assert.equal(ago(now + 5_000, now), "now", "a clock ahead of ours is not negative");
  assert.equal(ago(now - 12_000, now), "12 s ago");
  assert.equal(ago(now - 5 * 60_000, now), "5 min ago");
  assert.equal(ago(now - 3 * 3_600_000, now), "3 h ago");
  assert.equal(ago(now - 2 * 86_400_000, now), "2 d ago");
});

Deno.test("console format: entries from frames and notes, and their clock time", () => {
  const entry = entryOf(frame("lvm.ecp", "F", { error: "no" }));
  assert.equal(entry.code, "f");
  assert.equal(entry.actor, "lvm.ecp");
  assert.equal(entry.commandId, "7");
  assert.equal(clock(entry), "10:11:12", "the reply's own timestamp, in UTC");
  const bare = entryOf({ headers: { message_code: "e", command_id: null }, body: {} } as unknown as Frame);
  assert.equal(bare.actor, "");
  assert.equal(bare.commandId, "");
  const bad = entryOf({ ...frame("a", "i", {}), timestamp: "not a time" });
  bad.at = Date.parse("2026-01-02T03:04:05Z");
  assert.equal(clock(bad), "03:04:05", "an unreadable timestamp falls back to when it arrived");
  const note = noteEntry("Reconnected.");
  assert.equal(note.note, "Reconnected.");
  assert.equal(note.code, "");
  assert.match(newCommandId(), /^[0-9a-f-]{32,36}$/);
  assert.notEqual(newCommandId(), newCommandId());
});

Deno.test("console filters: actor globs with dots, any case, and ! or - exclusions", () => {
  const lvm = filterOf("lvm.*");
  assert.ok(passes(lvm, "lvm.sp1.ieb"), "* covers dots");
  assert.ok(passes(lvm, "LVM.ecp"), "case is ignored");
  assert.ok(!passes(lvm, "apogee"));
  const two = filterOf("apogee, lvm.?cp");
  assert.ok(passes(two, "apogee") && passes(two, "lvm.ecp"));
  assert.ok(!passes(two, "lvm.sp1"));
  const except = filterOf("!apogee -lvm.*");
  assert.ok(passes(except, "jaeger"), "only exclusions: everything else passes");
  assert.ok(!passes(except, "apogee") && !passes(except, "lvm.ecp"));
  assert.ok(passes(filterOf("! - "), "anyone"), "a lone ! or - is no word");
  assert.equal(filterOf("").include.length, 0);
});

Deno.test("console filters: codes, free text over actor, code, command id and body; notes always pass", () => {
  const failures = filterOf("", "fe");
  assert.ok(passes(failures, "a", "f") && passes(failures, "a", "E"));
  assert.ok(!passes(failures, "a", ":"));
  const text = filterOf("", undefined, "  DOME ");
  assert.equal(text.text, "dome");
  assert.ok(passes(text, "a", "i", { dome_status: "open" }));
  assert.ok(!passes(text, "a", "i", { status: "open" }));
  assert.ok(matchesFilter(filterOf("", undefined, "7"), entryOf(frame("a", "i", {}))), "the command id");
  assert.ok(matchesFilter(filterOf("x", "f", "nothing"), noteEntry("Connection lost")));
});

Deno.test("console filters: a link takes at most MAX_FILTER_WORDS words, and hostile globs stay fast", () => {
  const words = Array.from({ length: MAX_FILTER_WORDS }, (_, i) => `n${i}`);
  assert.equal(filterOf([...words, "late"].join(" ")).include.length, MAX_FILTER_WORDS);
  const started = performance.now();
  const hostile = filterOf(Array(MAX_FILTER_WORDS).fill(`${"*".repeat(200)}Z`).join(" "));
  assert.ok(!passes(hostile, "a".repeat(255)));
  assert.ok(performance.now() - started < 1000, "no backtracking");
});

Deno.test("console filters: read from and written to the URL's query string", () => {
  assert.deepEqual(formFromQuery(""), { actor: "", codes: undefined, text: "" });
  const form = formFromQuery("?actor=lvm.*&codes=:FE&q=dome&other=1");
  assert.equal(form.actor, "lvm.*");
  assert.equal(form.text, "dome");
  assert.deepEqual([...form.codes!], [":", "f", "e"]);
  assert.equal(formFromQuery("?codes=>:f!ewid").codes, undefined, "every code: no code filter");
  assert.deepEqual([...formFromQuery("?codes=").codes!], [], "an empty list shows no codes");
  assert.equal(chosenCodes(CODES.map((c) => c.code)), undefined);

  assert.equal(
    queryWithForm("?other=1&q=old", { actor: " apogee ", codes: new Set(["f", "e"]), text: " x " }),
    "other=1&q=x&actor=apogee&codes=fe",
  );
  assert.equal(queryWithForm("?actor=a&codes=f&q=b", { actor: "", codes: undefined, text: "  " }), "");
  const back = formFromQuery(`?${queryWithForm("", form)}`);
  assert.deepEqual(back, form, "what is written reads back the same");
});

Deno.test("console history: remembers commands, not twice in a row, at most HISTORY_SIZE", () => {
  const history = new CommandHistory(null);
  history.remember({ actor: "a", text: "status" });
  history.remember({ actor: "a", text: "status" });
  history.remember({ actor: "b", text: "status" });
  history.remember({ actor: "a", text: "status" });
  assert.deepEqual(history.entries.map((h) => `${h.actor} ${h.text}`), ["a status", "b status", "a status"]);
  for (let i = 0; i < HISTORY_SIZE + 10; i++) history.remember({ actor: "a", text: `n${i}` });
  assert.equal(history.entries.length, HISTORY_SIZE);
  assert.equal(history.entries[0].text, "n10");
  const stored = new CommandHistory(JSON.stringify(history));
  assert.deepEqual(stored.entries, history.entries, "it reads back what it stores");
});

Deno.test("console history: stored garbage is left out", () => {
  assert.deepEqual(new CommandHistory("{not json").entries, []);
  assert.deepEqual(new CommandHistory('{"actor":"a"}').entries, []);
  const mixed = new CommandHistory('[{"actor":"a","text":"t"},{"actor":1,"text":"t"},null,"x"]');
  assert.deepEqual(mixed.entries, [{ actor: "a", text: "t" }]);
});

Deno.test("console history: up and down walk the history and come back to the draft", () => {
  const history = new CommandHistory('[{"actor":"a","text":"one"},{"actor":"b","text":"two"}]');
  const draft = { actor: "c", text: "half typed" };
  assert.deepEqual(history.move("down", draft), draft, "down at the end keeps the draft");
  assert.deepEqual(history.move("up", draft), { actor: "b", text: "two" });
  assert.deepEqual(history.move("up", { actor: "b", text: "two" }), { actor: "a", text: "one" });
  assert.deepEqual(
    history.move("up", { actor: "a", text: "one" }),
    { actor: "a", text: "one" },
    "stays first",
  );
  assert.deepEqual(history.move("down", { actor: "a", text: "one" }), { actor: "b", text: "two" });
  assert.deepEqual(history.move("down", { actor: "b", text: "two" }), draft, "back to what was typed");
  history.remember({ actor: "d", text: "three" });
  assert.equal(history.move("down", { actor: "", text: "" })?.text, "", "after sending, the draft is new");
  assert.equal(new CommandHistory(null).move("up", { actor: "", text: "" })?.text, "");
});
