// The test actor and the console against what a real CLU 2.6 actor says about itself
// (tests/fixtures/clu_introspection.json, a copy of the team's clu-samples/introspection.json: its replies to `get-command-model`, `help`, `get_schema` and a
// bad command, message by message). The test actor's commands and help texts are its own, so its replies are
// compared by shape (message codes; body keys and value types, with command and keyword names wildcarded);
// the console's model reader, completion, checks and keyword readers are fed the sample itself.

import assert from "node:assert/strict";
import { cluReplies } from "./helpers/actor_model.ts";
import { extractAnswer, type IntrospectionCommand } from "../lib/introspection/answers.ts";
import { optionLines, readModel, usageLine } from "../web/console/command_model.ts";
import { analyze, problemsOnSend } from "../web/console/command_line.ts";
import { keywordInfo } from "../web/console/keyword_schema.ts";
import { unitInSchema } from "../web/console/plot_units.ts";
import { parseSeriesName } from "../web/console/plot_data.ts";

/** Committed with the tests, so a clean clone (CI) has it. */
const SAMPLE_PATH = new URL("./fixtures/clu_introspection.json", import.meta.url);

interface SampleReply {
  message_code: string;
  body: Record<string, unknown>;
}

const sample = JSON.parse(await Deno.readTextFile(SAMPLE_PATH)) as {
  replies: Record<string, SampleReply[]>;
};

/** The sample's replies to `command`; fails if the sample has none (a renamed key must not pass silently). */
function replies(command: string): SampleReply[] {
  const found = sample.replies[command];
  assert.ok(found?.length, `the sample has no replies to '${command}'`);
  return found;
}

/** The body of the reply that ended `command` in the sample. */
function finalBody(command: string): Record<string, unknown> {
  return replies(command).at(-1)!.body;
}

function typeOf(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}

/**
 * The shape of a JSON value: each path with the set of types found there. Array elements share one
 * path (`[]`); the names under `commands` (a command tree) and `properties` (a JSON schema) are
 * wildcarded (`*`), and nested command groups fold onto one level, so trees with other commands and
 * keywords, nested differently, have the same shape when their nodes do.
 */
function shape(value: unknown): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const walk = (node: unknown, path: string) => {
    const folded = path.replace(/(\.commands\.\*)+/g, ".commands.*");
    if (!out.has(folded)) out.set(folded, new Set());
    out.get(folded)!.add(typeOf(node));
    if (Array.isArray(node)) {
      for (const item of node) walk(item, `${path}[]`);
    } else if (node !== null && typeof node === "object") {
      const wildcard = path.endsWith(".commands") || path.endsWith(".properties");
      for (const [key, child] of Object.entries(node)) walk(child, `${path}.${wildcard ? "*" : key}`);
    }
  };
  walk(value, "$");
  return out;
}

/** A shape as sorted lines `path: type|type`, so a difference shows as a readable diff. */
function shapeLines(value: unknown): string[] {
  return [...shape(value)].map(([path, types]) => `${path}: ${[...types].sort().join("|")}`).sort();
}

/** The body with the schema string (as CLU sends it) parsed, so its inside is compared too. */
function withParsedSchema(body: Record<string, unknown>): Record<string, unknown> {
  return typeof body.schema === "string" ? { ...body, schema: JSON.parse(body.schema) } : body;
}

Deno.test("CLU sample: the test actor answers each introspection command with the sample's codes and body shapes", () => {
  for (const command of ["get-command-model", "get-command-model move", "get_schema", "help", "help move"]) {
    const expected = replies(command);
    const actual = cluReplies("demoactor", command);
    assert.ok(actual, `the test actor does not answer '${command}'`);
    assert.deepEqual(
      actual.map((r) => r.code),
      expected.map((r) => r.message_code),
      `message codes of '${command}'`,
    );
    for (const [i, reply] of expected.entries()) {
      assert.deepEqual(
        shapeLines(withParsedSchema(actual[i].body)),
        shapeLines(withParsedSchema(reply.body)),
        `body shape of reply ${i} (${reply.message_code}) to '${command}'`,
      );
    }
  }
  // CLU sends the schema as a JSON string, not an object.
  assert.equal(typeof finalBody("get_schema").schema, "string");
  assert.equal(typeof cluReplies("demoactor", "get_schema")!.at(-1)!.body.schema, "string");
});

Deno.test("CLU sample: a command the parser rejects gets the sample's replies, click's message word for word", () => {
  const command = "move sideways 3";
  const actual = cluReplies("demoactor", command)!;
  assert.deepEqual(
    actual.map((r) => ({ message_code: r.code, body: r.body })),
    replies(command),
  );
});

Deno.test("CLU sample: the test actor's help has the sample's usage line for the same command", () => {
  // `move` has the same arguments in both; the help texts are the test actor's own.
  const helpOf = (command: string) => cluReplies("demoactor", command)!.at(-1)!.body.help as string[];
  assert.equal(helpOf("help move")[0], (finalBody("help move").help as string[])[0]);
  assert.equal(helpOf("help")[0], (finalBody("help").help as string[])[0]);
});

/** The sample's answer to `command` as the gateway keeps it (extractAnswer), parsed again as a client would. */
function kept(command: IntrospectionCommand, key: string = command): unknown {
  const extracted = extractAnswer(command, JSON.stringify(finalBody(key)));
  assert.ok(extracted.ok, extracted.ok ? "" : extracted.reason);
  return JSON.parse(extracted.json);
}

Deno.test("CLU sample: the console reads the sample's command model and completes and checks against it", () => {
  const root = readModel(kept("get-command-model"));
  assert.ok(root, "the sample's model was refused");
  const values = (text: string) => analyze(root, text).candidates.map((c) => c.value);
  const problems = (text: string) => analyze(root, text).problems.map((p) => `${p.kind}: ${p.message}`);
  // Written out from the sample by hand: its commands, in its order, and move's choices and options.
  assert.deepEqual(values(""), [
    "get-command-model",
    "get_schema",
    "help",
    "keyword",
    "lamps",
    "move",
    "ping",
    "version",
  ]);
  assert.deepEqual(values("move "), ["az", "alt", "rot", "--speed", "--force", "--help"]);
  assert.deepEqual(values("move a"), ["az", "alt"]);
  assert.deepEqual(values("move az 10 "), ["--speed", "--force", "--help"]);
  assert.deepEqual(values("move az 10 --force "), ["--speed", "--help"]);
  assert.deepEqual(values("lamps "), ["on"]);
  assert.deepEqual(values("lamps on "), ["--help"]);
  assert.deepEqual(values("get-command-model "), ["--help"]);
  assert.deepEqual(problems("move az 10 --speed 2 --force"), []);
  assert.deepEqual(problems("lamps on "), ["missing: Missing argument 'LAMP'."]);
  assert.deepEqual(problems("move az ten"), [
    "wrong: Invalid value for 'DEGREES': 'ten' is not a valid float.",
  ]);
  // The console says what the actor's click says of the same command (after click's `BadParameter: `).
  const clicks = (replies("move sideways 3").find((r) => r.message_code === "w")!.body.help as string[])[0];
  assert.equal(
    clicks,
    "BadParameter: Invalid value for '{az|alt|rot}': 'sideways' is not one of 'az', 'alt', 'rot'.",
  );
  assert.deepEqual(problemsOnSend(root, "move sideways 3").map((p) => p.message), [
    clicks.replace(/^BadParameter: /, ""),
  ]);
  // Usage lines as click writes them in the sample's help.
  assert.equal(usageLine("demoactor", [], root), (finalBody("help").help as string[])[0]);
  const move = root.commands!.get("move")!;
  assert.equal(usageLine("demoactor", ["move"], move), (finalBody("help move").help as string[])[0]);
  assert.equal(move.help, "Moves one axis by DEGREES.");
  assert.deepEqual(optionLines(move), [
    "--speed FLOAT  Slew speed in deg/s.  [default: 1]",
    "--force  Ignore soft limits.",
    "--help  Show this message and exit.",
  ]);
  // `get-command-model move` answers the sub-model alone; it reads as the same command.
  const sub = readModel(kept("get-command-model", "get-command-model move"));
  assert.deepEqual(sub, move);
});

Deno.test("CLU sample: the sample's help lines are kept as they are", () => {
  assert.deepEqual(kept("help"), finalBody("help").help);
});

Deno.test("CLU sample: keyword descriptions and units from the sample's schema", () => {
  const schema = kept("get_schema");
  assert.deepEqual(keywordInfo(schema, "temperature"), { description: "Dome temperature", unit: "degC" });
  assert.deepEqual(keywordInfo(schema, "dome_status"), { description: "Dome status bits as hex" });
  assert.deepEqual(keywordInfo(schema, "position"), { description: "Az, alt in degrees" });
  assert.deepEqual(keywordInfo(schema, "text"), {}, "CLU's own keywords have neither");
  assert.deepEqual(keywordInfo(schema, "error"), {});
  assert.deepEqual(keywordInfo(schema, "nosuch"), {});
  assert.equal(unitInSchema(schema, parseSeriesName("temperature")!), "degC");
  assert.equal(unitInSchema(schema, parseSeriesName("position[0]")!), undefined, "no unit in the sample");
  assert.equal(unitInSchema(schema, parseSeriesName("dome_status")!), undefined);
  // The string as CLU sends it reads the same.
  assert.equal(unitInSchema(finalBody("get_schema").schema, parseSeriesName("temperature")!), "degC");
});
