// The command bar's completion and checking on their own, without a browser: reading a CLU command model
// (web/console/command_model.ts), and analysing what is typed against it (web/console/command_line.ts).
// The model is the test actor's, in the shape a CLU click actor sends (tests/helpers/actor_model.ts);
// the Playwright tests in console_assist_test.ts drive the same code in Chromium.

import assert from "node:assert/strict";
import { commandModel } from "./helpers/actor_model.ts";
import {
  type CommandSpec,
  MODEL_LIMITS,
  optionLines,
  readModel,
  usageLine,
} from "../web/console/command_model.ts";
import { analyze, commonPrefix, complete, problemsOnSend, splitWords } from "../web/console/command_line.ts";
import { keywordInfo } from "../web/console/keyword_schema.ts";

const root = readModel(commandModel())!;

function values(text: string): string[] {
  return analyze(root, text).candidates.map((c) => c.value);
}

function problems(text: string): string[] {
  return analyze(root, text).problems.map((p) => `${p.kind}: ${p.message}`);
}

Deno.test("command model: reads commands, groups, arguments, options, types and choices", () => {
  assert.equal(root.name, "command-parser");
  assert.deepEqual([...root.commands!.keys()].sort(), [
    "fail",
    "get-command-model",
    "get_schema",
    "help",
    "keyword",
    "lamps",
    "move",
    "ping",
    "status",
    "version",
  ]);
  const move = root.commands!.get("move")!;
  assert.equal(move.help, "Moves one axis of the test mount by DEGREES.");
  const [axis, degrees, speed, force] = move.params;
  assert.deepEqual(axis.choices, ["az", "alt", "rot"]);
  assert.equal(axis.required, true);
  assert.equal(degrees.type, "float");
  assert.deepEqual([speed.opts, speed.flag, speed.default], [["--speed"], false, "1"]);
  assert.deepEqual([force.opts, force.flag], [["--force"], true]);
  assert.deepEqual([...root.commands!.get("lamps")!.commands!.keys()], ["on", "off"]);
  assert.equal(usageLine("tel", ["move"], move), "Usage: tel move [OPTIONS] {az|alt|rot} DEGREES");
  assert.equal(
    usageLine("tel", ["lamps"], root.commands!.get("lamps")!),
    "Usage: tel lamps [OPTIONS] COMMAND [ARGS]...",
  );
  assert.deepEqual(optionLines(move), [
    "--speed FLOAT  Slew speed in deg/s.  [default: 1]",
    "--force  Ignore the soft limits.",
    "--help  Show this message and exit.",
  ]);
});

Deno.test("command model: hostile models are refused or bounded, never trusted", () => {
  for (
    const bad of [null, 7, "x", [], {}, { name: "x" }, { name: 3, params: [] }, { name: "x", params: {} }]
  ) {
    assert.equal(readModel(bad), undefined, JSON.stringify(bad));
  }
  // Bad parameters and subcommands are left out; lists are cut at their bounds.
  const many = Object.fromEntries(
    Array.from({ length: MODEL_LIMITS.commands + 50 }, (_, i) => [`c${i}`, { name: `c${i}`, params: [] }]),
  );
  const model = readModel({
    name: "root",
    params: [null, { param_type_name: "argument", name: "a", opts: [] }, {
      param_type_name: "weird",
      name: "w",
      opts: ["W"],
    }],
    commands: { ...many, "has space": { name: "x", params: [] }, broken: { name: 1 } },
  })!;
  assert.deepEqual(model.params, []);
  assert.equal(model.commands!.size, MODEL_LIMITS.commands);
  let deep: Record<string, unknown> = { name: "leaf", params: [] };
  for (let i = 0; i < 20; i++) deep = { name: `g${i}`, params: [], commands: { [`g${i}`]: deep } };
  let depth = 0;
  for (let node: CommandSpec | undefined = readModel(deep); node?.commands; depth++) {
    node = [...node.commands.values()][0];
  }
  assert.ok(depth <= MODEL_LIMITS.depth + 1, `depth ${depth}`);
});

Deno.test("completion: commands, subcommands, choices and options", () => {
  assert.ok(values("").includes("move") && values("").includes("lamps"));
  assert.deepEqual(values("mo"), ["move"]);
  assert.deepEqual(values("lamps "), ["on", "off"]);
  assert.deepEqual(values("lamps o"), ["on", "off"]);
  assert.deepEqual(values("move "), ["az", "alt", "rot", "--speed", "--force", "--help"]);
  assert.deepEqual(values("move a"), ["az", "alt"]);
  assert.deepEqual(values("move az 10 "), ["--speed", "--force", "--help"]);
  assert.deepEqual(values("move az 10 --"), ["--speed", "--force", "--help"]);
  assert.deepEqual(values("move az 10 --force "), ["--speed", "--help"], "a flag given is not offered again");
  assert.deepEqual(values("move --s"), ["--speed"]);
  const analysis = analyze(root, "move --speed ");
  assert.equal(analysis.focus?.name, "speed");
  assert.deepEqual(analysis.candidates, []);
});

Deno.test("completion: an option's choices are offered after it, and a wrong one is flagged", () => {
  const on = root.commands!.get("lamps")!.commands!.get("on")!;
  assert.equal(usageLine("tel", ["lamps", "on"], on), "Usage: tel lamps on [OPTIONS] LAMP");
  assert.deepEqual(optionLines(on), [
    "--level [low|high]  Brightness.",
    "--help  Show this message and exit.",
  ]);
  assert.deepEqual(values("lamps on "), ["--level", "--help"]);
  // The option's value comes next: its choices, and the bar says which option they are for.
  const next = analyze(root, "lamps on arc --level ");
  assert.deepEqual(next.candidates.map((c) => [c.value, c.kind]), [["low", "choice"], ["high", "choice"]]);
  assert.equal(next.focus?.name, "level");
  assert.deepEqual(values("lamps on arc --level h"), ["high"]);
  assert.deepEqual(values("lamps on --level l"), ["low"], "before the argument too");
  assert.deepEqual(values("lamps on arc --level x"), []);
  assert.equal(
    complete("lamps on arc --level h", analyze(root, "lamps on arc --level h"), "high"),
    "lamps on arc --level high ",
  );
  assert.deepEqual(problems("lamps on arc --level "), ["missing: Option '--level' requires an argument."]);
  assert.deepEqual(problems("lamps on arc --level high"), []);
  assert.deepEqual(problems("lamps on arc --level hi"), [], "a prefix of a choice, still being typed");
  assert.deepEqual(problems("lamps on arc --level max"), [
    "wrong: Invalid value for '--level': 'max' is not one of 'low', 'high'.",
  ]);
  assert.deepEqual(problems("lamps on --level low "), ["missing: Missing argument 'LAMP'."]);
  assert.deepEqual(problemsOnSend(root, "lamps on arc --level hi").map((p) => p.message), [
    "Invalid value for '--level': 'hi' is not one of 'low', 'high'.",
  ]);
  assert.deepEqual(problemsOnSend(root, "lamps on arc --level=max").map((p) => p.message), [
    "Invalid value for '--level': 'max' is not one of 'low', 'high'.",
  ]);
  assert.deepEqual(problemsOnSend(root, "lamps on arc --level=low"), []);
  assert.deepEqual(problemsOnSend(root, "lamps off arc --level low").map((p) => p.message), [
    "No such option: --level",
    "Got unexpected extra argument (low)",
  ]);
});

Deno.test("completion: Tab fills the word being typed", () => {
  const text = "move a";
  const analysis = analyze(root, text);
  assert.equal(commonPrefix(analysis.candidates), "a");
  assert.equal(complete(text, analysis, "alt"), "move alt ");
  assert.equal(complete("lamps o", analyze(root, "lamps o"), "on"), "lamps on ");
  assert.equal(complete("", analyze(root, ""), "ping"), "ping ");
  assert.equal(
    commonPrefix([{ value: "get_schema", kind: "command" }, { value: "get-command-model", kind: "command" }]),
    "get",
  );
});

Deno.test("checking: a wrong choice, a missing argument, unknown commands and options, bad numbers", () => {
  assert.deepEqual(problems("move az 10"), []);
  assert.deepEqual(problems("move az 10 --speed 2.5 --force"), []);
  assert.deepEqual(problems("move sideways 3"), [
    "wrong: Invalid value for '{az|alt|rot}': 'sideways' is not one of 'az', 'alt', 'rot'.",
  ]);
  assert.deepEqual(problems("move az"), ["missing: Missing argument 'DEGREES'."]);
  assert.deepEqual(problems("move "), [
    "missing: Missing argument '{az|alt|rot}'.",
    "missing: Missing argument 'DEGREES'.",
  ]);
  assert.deepEqual(problems("move az ten"), [
    "wrong: Invalid value for 'DEGREES': 'ten' is not a valid float.",
  ]);
  assert.deepEqual(problems("move az 10 --speed fast"), [
    "wrong: Invalid value for '--speed': 'fast' is not a valid float.",
  ]);
  assert.deepEqual(problems("move az 10 --speed"), []);
  assert.deepEqual(problems("move az 10 --speed "), ["missing: Option '--speed' requires an argument."]);
  assert.deepEqual(problems("move az 10 --fast "), ["wrong: No such option: --fast"]);
  assert.deepEqual(problems("move az 10 20 "), ["wrong: Got unexpected extra argument (20)"]);
  assert.deepEqual(problems("move -5"), [
    "wrong: Invalid value for '{az|alt|rot}': '-5' is not one of 'az', 'alt', 'rot'.",
    "missing: Missing argument 'DEGREES'.",
  ]);
  assert.deepEqual(problems("lamps on "), ["missing: Missing argument 'LAMP'."]);
  assert.deepEqual(problems("lamps on 'arc lamp'"), []);
  assert.deepEqual(problems("lamps "), ["missing: Missing command."]);
  assert.deepEqual(problems("lamps blink x"), ["wrong: No such command 'blink'."]);
  assert.deepEqual(problems("warp 9"), ["wrong: No such command 'warp'."]);
  // While a word is typed, a prefix of a choice is not wrong yet; sent as it is, it is.
  assert.deepEqual(problems("lamps on"), []);
  assert.deepEqual(problemsOnSend(root, "lamps on").map((p) => p.message), ["Missing argument 'LAMP'."]);
  assert.deepEqual(problemsOnSend(root, "move al 3").map((p) => p.message), [
    "Invalid value for '{az|alt|rot}': 'al' is not one of 'az', 'alt', 'rot'.",
  ]);
  assert.deepEqual(problemsOnSend(root, "  ping  "), []);
  assert.deepEqual(problems("move al"), ["missing: Missing argument 'DEGREES'."]);
  assert.deepEqual(problems("move x"), [
    "wrong: Invalid value for '{az|alt|rot}': 'x' is not one of 'az', 'alt', 'rot'.",
    "missing: Missing argument 'DEGREES'.",
  ]);
});

Deno.test("splitWords: white space and quotes, as CLU splits a command", () => {
  assert.deepEqual(splitWords(`  on  "arc lamp" 'x y'z `).map((w) => w.value), ["on", "arc lamp", "x yz"]);
  assert.deepEqual(splitWords(`say "unclosed`).map((w) => w.value), ["say", "unclosed"]);
  assert.deepEqual(splitWords("").length, 0);
});

Deno.test("keyword schema: description and unit where the schema has them, bounded", () => {
  const schema = {
    type: "object",
    properties: {
      temperature: { type: "number", description: "Dome temperature", unit: "degC" },
      dome: { type: "string" },
      odd: { description: 5, unit: ["x"] },
      long: { description: "d".repeat(5000), unit: "u".repeat(100) },
    },
  };
  assert.deepEqual(keywordInfo(schema, "temperature"), { description: "Dome temperature", unit: "degC" });
  assert.deepEqual(keywordInfo(schema, "dome"), {});
  assert.deepEqual(keywordInfo(schema, "odd"), {});
  assert.deepEqual(keywordInfo(schema, "missing"), {});
  assert.deepEqual(keywordInfo(null, "temperature"), {});
  assert.deepEqual(keywordInfo({ properties: [] }, "0"), {});
  assert.deepEqual(keywordInfo(schema, "__proto__"), {});
  const long = keywordInfo(schema, "long");
  assert.equal(long.description?.length, 300);
  assert.equal(long.unit?.length, 32);
});
