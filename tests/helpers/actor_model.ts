/**
 * The test actor's introspection, in the shapes of a real CLU 2.6 actor with
 * the click parser (`tests/fixtures/clu_introspection.json`): its
 * command model as `get-command-model [COMMAND]` answers it (click's
 * `to_info_dict`, as CLU's `unclick` sends it), its keyword schema as
 * `get_schema` answers it (a JSON *string*), its `help [COMMAND]` lines, and
 * the `w` + `f` answer to a command that does not parse.
 *
 * The tree is the test actor's own: `move AXIS DEGREES [--speed FLOAT]
 * [--force]` (AXIS a choice of az|alt|rot), a group `lamps` with
 * `on LAMP [--level low|high]` (an option with choices) and `off LAMP`,
 * `ping`, `status`, `fail`, and CLU's own commands. `tests/clu_sample_test.ts`
 * checks these shapes against the sample.
 *
 * @module
 */

type Json = Record<string, unknown>;

const HELP_OPTION: Json = {
  name: "help",
  param_type_name: "option",
  opts: ["--help"],
  secondary_opts: [],
  type: { param_type: "Bool", name: "boolean" },
  required: false,
  nargs: 1,
  multiple: false,
  default: false,
  envvar: null,
  help: "Show this message and exit.",
  prompt: null,
  is_flag: true,
  flag_value: true,
  count: false,
  hidden: false,
};

function argument(name: string, type: Json, required = true): Json {
  return {
    name,
    param_type_name: "argument",
    opts: [name.toUpperCase().replaceAll("_", "-")],
    secondary_opts: [],
    type,
    required,
    nargs: 1,
    multiple: false,
    default: null,
    envvar: null,
  };
}

function option(name: string, type: Json, help: string, extra: { flag?: boolean; default?: unknown }): Json {
  return {
    name,
    param_type_name: "option",
    opts: [`--${name}`],
    secondary_opts: [],
    type,
    required: false,
    nargs: 1,
    multiple: false,
    default: extra.default ?? (extra.flag ? false : null),
    envvar: null,
    help,
    prompt: null,
    is_flag: extra.flag ?? false,
    flag_value: extra.flag ?? false,
    count: false,
    hidden: false,
  };
}

function command(name: string, help: string, params: Json[]): Json {
  return {
    name,
    params: [...params, HELP_OPTION],
    help,
    epilog: null,
    short_help: null,
    hidden: false,
    deprecated: false,
  };
}

function group(name: string, help: string | null, commands: Json[]): Json {
  return {
    ...command(name, help ?? "", []),
    help,
    commands: Object.fromEntries(commands.map((c) => [c.name, c])),
    chain: false,
  };
}

const TEXT = { param_type: "String", name: "text" };
const FLOAT = { param_type: "Float", name: "float" };
const BOOL = { param_type: "Bool", name: "boolean" };
const AXES = ["az", "alt", "rot"];
const LEVELS = ["low", "high"];

/** The test actor's command tree; `padding` characters of help text make it as big as a test needs. */
export function commandModel(padding = 0): Json {
  const root = group("command-parser", null, [
    command("get-command-model", "Returns a dictionary representation of the command using ``unclick``.", [
      argument("command_name", TEXT, false),
    ]),
    command("get_schema", "Returns the schema of the actor as a JSON schema.", []),
    command("help", "Shows the help.", [argument("parser_command", TEXT, false)]),
    command("keyword", "Prints human-readable information about a keyword.", [argument("keyword", TEXT)]),
    group("lamps", "Switches the test lamps.", [
      command("on", "Turns a lamp on.", [
        argument("lamp", TEXT),
        // No default: click gives a choice option without one `default: null`, as the sample's shapes have.
        option(
          "level",
          { param_type: "Choice", name: "choice", choices: LEVELS, case_sensitive: true },
          "Brightness.",
          {},
        ),
      ]),
      command("off", "Turns a lamp off.", [argument("lamp", TEXT)]),
    ]),
    command("move", "Moves one axis of the test mount by DEGREES.", [
      argument("axis", { param_type: "Choice", name: "choice", choices: AXES, case_sensitive: true }),
      argument("degrees", FLOAT),
      option("speed", FLOAT, "Slew speed in deg/s.", { default: 1.0 }),
      option("force", BOOL, "Ignore the soft limits.", { flag: true }),
    ]),
    command("ping", "Pings the actor.", []),
    command("status", "Reports the test temperature and dome.", []),
    command("fail", "Fails on purpose.", []),
    command("version", "Reports the version.", []),
  ]);
  if (padding > 0) root.help = "x".repeat(padding);
  return root;
}

/** The sub-model `get-command-model <path>` answers, or undefined for an unknown command. */
export function commandModelOf(path: string[], padding = 0): Json | undefined {
  let node: Json | undefined = commandModel(padding);
  for (const word of path) node = (node?.commands as Record<string, Json> | undefined)?.[word];
  return node;
}

/** A keyword that is a text, lines of text, or CLU's exception object: CLU's `error`, `exception`, …. */
const ERROR_LIKE: Json = {
  oneOf: [
    { type: "array", items: { type: "string" } },
    { type: "string" },
    {
      type: "object",
      properties: {
        module: { type: "string" },
        type: { type: "string" },
        message: { type: "string" },
        filename: { oneOf: [{ type: "string" }, { type: "null" }] },
        lineno: { oneOf: [{ type: "integer" }, { type: "null" }] },
        traceback: { oneOf: [{ type: "array", items: { type: "string" } }, { type: "string" }] },
      },
    },
  ],
};

/** The keywords CLU 2.6 adds to every actor's schema, as it sends them. */
const CLU_KEYWORDS: Json = {
  text: { type: "string" },
  schema: { type: "string" },
  version: { type: "string" },
  help: { oneOf: [{ type: "array", items: { type: "string" } }, { type: "string" }] },
  error: ERROR_LIKE,
  exception: ERROR_LIKE,
  exception_info: ERROR_LIKE,
  yourUserID: { type: "integer" },
  UserInfo: { type: "array", items: [{ type: "integer" }, { type: "string" }] },
  num_users: { type: "integer" },
  command_model: { oneOf: [{ type: "array" }, { type: "object" }] },
};

/** The keyword schema (JSON schema with CLU's `description` and `unit`), as the JSON text `get_schema` sends. */
export function schemaText(): string {
  return JSON.stringify({
    type: "object",
    properties: {
      temperature: { type: "number", description: "Test enclosure temperature", unit: "degC" },
      dome: { type: "string", description: "Dome state: open or closed" },
      position: { type: "array", items: { type: "number" }, description: "Az, alt in degrees" },
      ...CLU_KEYWORDS,
    },
    additionalProperties: false,
  });
}

/** `help [COMMAND]` lines for `actor`, or undefined for an unknown command. */
export function helpLines(actor: string, path: string[]): string[] | undefined {
  const node = commandModelOf(path);
  if (!node) return undefined;
  const subcommands = node.commands as Record<string, Json> | undefined;
  const params = node.params as Json[];
  const args = params.filter((p) => p.param_type_name === "argument").map(usageOf);
  const usage = `Usage: ${[actor, ...path].join(" ")} [OPTIONS]${subcommands ? " COMMAND [ARGS]..." : ""}${
    args.length ? ` ${args.join(" ")}` : ""
  }`;
  const lines = [usage, ""];
  if (node.help) lines.push(`  ${node.help}`, "");
  lines.push("Options:");
  for (const p of params.filter((p) => p.param_type_name === "option")) {
    const choices = (p.type as Json).choices as string[] | undefined;
    const metavar = choices ? `[${choices.join("|")}]` : String((p.type as Json).name).toUpperCase();
    const opt = `${(p.opts as string[])[0]}${p.is_flag ? "" : ` ${metavar}`}`;
    lines.push(`  ${opt.padEnd(14)} ${p.help}`);
  }
  if (subcommands) {
    lines.push("", "Commands:");
    for (const [name, sub] of Object.entries(subcommands)) lines.push(`  ${name.padEnd(18)} ${sub.help}`);
  }
  return lines;
}

function usageOf(param: Json): string {
  const choices = (param.type as Json).choices as string[] | undefined;
  const name = choices ? `{${choices.join("|")}}` : (param.opts as string[])[0];
  return param.required ? name : `[${name}]`;
}

/**
 * Why `words` (a `move` or `lamps` command) does not parse, as click's message, or undefined when it parses.
 */
export function parseProblem(words: string[]): string | undefined {
  const [name, ...rest] = words;
  if (name === "move") {
    const positional = rest.filter((w, i) => !w.startsWith("--") && rest[i - 1] !== "--speed");
    if (positional.length === 0) return "Missing argument '{az|alt|rot}'.";
    if (!AXES.includes(positional[0])) {
      return `BadParameter: Invalid value for '{az|alt|rot}': '${
        positional[0]
      }' is not one of 'az', 'alt', 'rot'.`;
    }
    if (positional.length === 1) return "Missing argument 'DEGREES'.";
    if (Number.isNaN(Number(positional[1]))) {
      return `BadParameter: Invalid value for 'DEGREES': '${positional[1]}' is not a valid float.`;
    }
  } else if (name === "lamps") {
    const [sub, ...args] = rest;
    if (sub !== "on" && sub !== "off") return `No such command '${sub ?? ""}'.`;
    const level = sub === "on" ? args.indexOf("--level") : -1;
    if (level >= 0) {
      const value = args[level + 1];
      if (value === undefined) return "Option '--level' requires an argument.";
      if (!LEVELS.includes(value)) {
        return `BadParameter: Invalid value for '--level': '${value}' is not one of 'low', 'high'.`;
      }
      args.splice(level, 2);
    }
    if (args.length === 0) return "Missing argument 'LAMP'.";
  }
  return undefined;
}

/** One reply of the test actor: its message code, its body, and whether it is marked internal. */
export interface ScriptedReply {
  /** The message code (`>`, `:`, `f`, `w`, …). */
  code: string;
  /** The body. */
  body: Json;
  /** The `internal` header. */
  internal: boolean;
}

/**
 * The replies, in order, of the test actor named `actor` to `text` when it
 * answers as a CLU click actor does: `get-command-model [COMMAND]`,
 * `get_schema`, `help [COMMAND]`, and `move` or `lamps` (`w` with click's
 * message then `f` when they do not parse); undefined for any other command.
 * Pure, so `tests/clu_sample_test.ts` compares it with the real sample.
 */
export function cluReplies(actor: string, text: string, padding = 0): ScriptedReply[] | undefined {
  const words = text.trim().split(/\s+/);
  const [first, ...rest] = words;
  // CLU marks get-command-model internal (PROTOCOL.md), so all its replies are; `>` always is.
  const internal = first === "get-command-model";
  const running: ScriptedReply = { code: ">", body: {}, internal: true };
  const say = (code: string, body: Json): ScriptedReply[] => [running, { code, body, internal }];
  const notFound = () => say("f", { error: `Command '${rest.join(" ")}' not found.` });
  switch (first) {
    case "get-command-model": {
      const model = commandModelOf(rest, padding);
      return model ? say(":", { command_model: model }) : notFound();
    }
    case "get_schema":
      return say(":", { schema: schemaText() });
    case "help": {
      const lines = helpLines(actor, rest);
      return lines ? say(":", { help: lines }) : notFound();
    }
    case "move":
    case "lamps": {
      const problem = parseProblem(words);
      if (!problem) return say(":", { text: `done: ${words.join(" ")}` });
      return [
        running,
        { code: "w", body: { help: [problem] }, internal },
        {
          code: "f",
          body: { error: `Command '${words.join(" ")}' does not exist or cannot be parsed.` },
          internal,
        },
      ];
    }
  }
  return undefined;
}
