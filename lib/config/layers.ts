/**
 * The layering: each option's raw text from the first place that gives it —
 * flags, then `CLU_WS_*` variables, then the config file, then the table's
 * default — with where it came from, for error messages and precedence rules.
 *
 * Argv is parsed by `parseArgs` from `node:util` (part of the platform, no
 * dependency) rather than by hand: driven by the option table it gives repeatable
 * flags, `--a=b` and `--a b`, short flags, switches, `--` and strict errors, all
 * the command line needs. Its error codes become our messages below; only a flag
 * missing its value, or given one it does not take, keeps the platform's wording.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError } from "./config_error.ts";
import { type DefaultedOption, type OptionName, OPTIONS, type OptionSpec, optionSpec } from "./options.ts";
import type { RawValue } from "./parsers.ts";

/** A flag given once or more on the command line, by long name: text, a switch, or a repeated flag's list. */
export type FlagValues = Readonly<Record<string, string | boolean | string[] | undefined>>;

/** Precedence of where a value came from: a lower layer wins. */
export const LAYERS = { flag: 0, env: 1, file: 2, default: 3 } as const;

/** A raw option value, where it came from, and its layer (see {@linkcode LAYERS}). */
export interface Picked extends RawValue {
  /** 0 flag, 1 environment, 2 config file, 3 the table's default. */
  layer: number;
}

/** What {@linkcode Layers} picks from; every part may be missing. */
export interface LayerSources {
  /** The command line, from {@linkcode parseFlags}. */
  flags?: FlagValues;
  /** The environment; an empty variable counts as not set. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The config file's options as text (from `readConfigFile`), and its path for messages. */
  file?: { path: string; values: Readonly<Record<string, string>> };
}

/** The layers of one start, asked per option. */
export class Layers {
  #flags: FlagValues;
  #env: Readonly<Record<string, string | undefined>>;
  #file?: { path: string; values: Readonly<Record<string, string>> };

  /** Layers over the given sources; with none, only the defaults. */
  constructor(sources: LayerSources = {}) {
    this.#flags = sources.flags ?? {};
    this.#env = sources.env ?? {};
    this.#file = sources.file;
  }

  /** The value given for an option by a flag, a variable or the config file, in that order; else `undefined`. */
  pick(name: OptionName): Picked | undefined {
    const spec = optionSpec(name)!;
    const fromFlag = this.#flags[name];
    if (typeof fromFlag === "string") return { value: fromFlag, source: `--${name}`, layer: LAYERS.flag };
    if (Array.isArray(fromFlag)) {
      return { value: fromFlag.join(","), source: `--${name}`, layer: LAYERS.flag };
    }
    if (fromFlag === true) return { value: "true", source: `--${name}`, layer: LAYERS.flag };
    const fromEnv = spec.env ? this.#env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== "") {
      return { value: fromEnv, source: spec.env!, layer: LAYERS.env };
    }
    if (this.#file && Object.hasOwn(this.#file.values, name)) {
      return { value: this.#file.values[name], source: `${this.#file.path}: ${name}`, layer: LAYERS.file };
    }
    return undefined;
  }

  /** Like {@linkcode Layers.pick}, falling back to the option's default from the table. */
  get(name: DefaultedOption): Picked {
    return this.pick(name) ??
      { value: optionSpec(name)!.default!, source: `the default of --${name}`, layer: LAYERS.default };
  }
}

/**
 * The command line's flags by long name.
 *
 * @throws {ConfigError} on an unknown flag, a stray argument, or a flag
 *   missing its value or given one it does not take.
 */
export function parseFlags(args: readonly string[]): FlagValues {
  const spec: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const o of OPTIONS as readonly OptionSpec[]) {
    if (o.noFlag) continue;
    spec[o.flag] = {
      type: o.boolean ? "boolean" : "string",
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  try {
    const { values } = parseArgs({ args: [...args], options: spec, strict: true, allowPositionals: false });
    return values as FlagValues;
  } catch (err) {
    throw new ConfigError(describeParseArgsError(err));
  }
}

function describeParseArgsError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string }).code;
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${quoted ?? ""}; run with --help to list the options`.replace("  ", " ");
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${quoted ?? ""}; options take the form --name value (see --help)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return `${message.replace(/\.$/, "")}; see --help`;
    default:
      return `${message}; see --help`;
  }
}
