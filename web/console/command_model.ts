/**
 * An actor's command tree, read from what it answered to `get-command-model`
 * (click's `to_info_dict`, as CLU sends it) into the few fields completion
 * and checking need, defensively: the model comes from an actor, so every
 * field is checked, every list and text is bounded, and anything unexpected
 * is left out rather than trusted. Also the usage and option lines shown
 * under the command bar. Pure: no DOM.
 *
 * @module
 */

/** One argument or option of a command. */
export interface ParamSpec {
  /** `argument` (positional) or `option` (`--name`). */
  kind: "argument" | "option";
  /** Its Python name. */
  name: string;
  /** Its spellings: `AXIS` for an argument, `--speed`, `-s` for an option. */
  opts: string[];
  /** An option's other spellings (`--no-force` of `--force/--no-force`). */
  secondary: string[];
  /** click's type name: `text`, `float`, `integer`, `choice`, `boolean`, … */
  type: string;
  /** The values a `choice` takes. */
  choices?: string[];
  /** Whether a choice compares case-sensitively. */
  caseSensitive: boolean;
  /** Must be given. */
  required: boolean;
  /** An option that takes no value. */
  flag: boolean;
  /** Values it takes (-1: all that are left). */
  nargs: number;
  /** An option that may be given several times. */
  multiple: boolean;
  /** Its help text. */
  help?: string;
  /** Its default, as text, when it has one worth showing. */
  default?: string;
  /** Hidden from help and completion. */
  hidden: boolean;
}

/** A command, or a group of commands. */
export interface CommandSpec {
  /** Its name. */
  name: string;
  /** Its help text. */
  help?: string;
  /** Its arguments and options, in order. */
  params: ParamSpec[];
  /** A group's subcommands, by name. */
  commands?: Map<string, CommandSpec>;
  /** Hidden from help and completion. */
  hidden: boolean;
}

/** Bounds on what is read of a model. */
export const MODEL_LIMITS = { depth: 8, commands: 500, params: 100, choices: 500, text: 2000 } as const;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value.slice(0, MODEL_LIMITS.text) : undefined;
}

function strings(value: unknown, max: number): string[] {
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is string => typeof v === "string" && v !== "").slice(0, max)
    .map((v) => v.slice(0, MODEL_LIMITS.text));
}

/** A command tree from a `command_model`, or undefined when it is not one. */
export function readModel(raw: unknown, depth = 0): CommandSpec | undefined {
  if (!isObject(raw) || depth > MODEL_LIMITS.depth) return undefined;
  const name = text(raw.name);
  if (name === undefined || !Array.isArray(raw.params)) return undefined;
  const params = raw.params.slice(0, MODEL_LIMITS.params).map(readParam).filter((p) => p !== undefined);
  const spec: CommandSpec = {
    name,
    help: text(raw.help) ?? text(raw.short_help),
    params,
    hidden: raw.hidden === true,
  };
  if (isObject(raw.commands)) {
    spec.commands = new Map();
    for (const [key, value] of Object.entries(raw.commands).slice(0, MODEL_LIMITS.commands)) {
      const sub = readModel(value, depth + 1);
      if (sub && !/\s/.test(key) && key !== "") spec.commands.set(key, sub);
    }
  }
  return spec;
}

function readParam(raw: unknown): ParamSpec | undefined {
  if (!isObject(raw)) return undefined;
  const kind = raw.param_type_name;
  const name = text(raw.name);
  if ((kind !== "argument" && kind !== "option") || name === undefined) return undefined;
  const opts = strings(raw.opts, 8);
  if (opts.length === 0) return undefined;
  const type = isObject(raw.type) ? raw.type : {};
  const choices = Array.isArray(type.choices) ? strings(type.choices, MODEL_LIMITS.choices) : undefined;
  const nargs = typeof raw.nargs === "number" && Number.isInteger(raw.nargs) ? raw.nargs : 1;
  const fallback = raw.default;
  const shown = typeof fallback === "string" || typeof fallback === "number" ? String(fallback) : undefined;
  return {
    kind,
    name,
    opts,
    secondary: strings(raw.secondary_opts, 8),
    type: text(type.name) ?? "text",
    choices,
    caseSensitive: type.case_sensitive !== false,
    required: raw.required === true,
    flag: kind === "option" && raw.is_flag === true,
    nargs: Math.max(-1, Math.min(nargs, 16)),
    multiple: raw.multiple === true || raw.count === true,
    help: text(raw.help),
    default: shown === "" ? undefined : shown?.slice(0, 80),
    hidden: raw.hidden === true,
  };
}

/** How an argument is shown in a usage line: `{az|alt|rot}`, `DEGREES`, `[LAMP]`, `FILES...`. */
export function argumentLabel(param: ParamSpec): string {
  const base = param.choices ? `{${param.choices.join("|")}}` : param.opts[0];
  const label = param.nargs === -1 ? `${base}...` : base;
  return param.required ? label : `[${label}]`;
}

/** How an option is shown: `--speed FLOAT`, `--force`, `--axis [az|alt|rot]`. */
export function optionLabel(param: ParamSpec): string {
  const names = [param.opts.join(", "), ...param.secondary].join(" / ");
  if (param.flag) return names;
  const value = param.choices ? `[${param.choices.join("|")}]` : param.type.toUpperCase();
  return `${names} ${value}`;
}

/** click's usage line: `Usage: <actor> move [OPTIONS] {az|alt|rot} DEGREES`. */
export function usageLine(actor: string, path: readonly string[], command: CommandSpec): string {
  const args = command.params.filter((p) => p.kind === "argument").map(argumentLabel);
  const words = [actor, ...path, "[OPTIONS]"];
  if (command.commands) words.push("COMMAND", "[ARGS]...");
  return `Usage: ${[...words, ...args].join(" ")}`;
}

/** The options of a command as help lines: `--speed FLOAT  Slew speed in deg/s. [default: 1.0]`. */
export function optionLines(command: CommandSpec): string[] {
  return command.params.filter((p) => p.kind === "option" && !p.hidden).map((p) =>
    `${optionLabel(p)}${p.help ? `  ${p.help}` : ""}${
      p.default !== undefined && !p.flag ? `  [default: ${p.default}]` : ""
    }`
  );
}
