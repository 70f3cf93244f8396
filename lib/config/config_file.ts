/**
 * The config file (`--config`, `CLU_WS_CONFIG`): TOML, or JSON by its `.json`
 * name, holding options by their long names. Read into option text, the same
 * form flags and variables take, so one set of parsers checks all three.
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import { ConfigError } from "./config_error.ts";
import { optionSpec } from "./options.ts";
import type { RawValue } from "./parsers.ts";

/**
 * Reads a config file into option text by long name: a list becomes
 * comma-separated, a number or boolean its text, a `tokens` table its JSON.
 *
 * @param path The file's path and where it was named (`--config` or `CLU_WS_CONFIG`).
 * @param readTextFile Reads the file (injected, so tests need no I/O).
 * @throws {ConfigError} when the file cannot be read or parsed, holds an
 *   unknown key, or a value of the wrong shape; the message names the file.
 */
export function readConfigFile(
  path: RawValue,
  readTextFile: (path: string) => string,
): Record<string, string> {
  let text: string;
  try {
    text = readTextFile(path.value);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`${path.source}: cannot read config file '${path.value}' (${why})`);
  }
  const json = path.value.endsWith(".json");
  let data: Record<string, unknown>;
  try {
    data = json ? JSON.parse(text) : parseToml(text);
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new ConfigError(`${path.value}: not valid ${json ? "JSON" : "TOML"} (${why})`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`${path.value}: the config file must hold a table of options`);
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(data)) {
    const spec = optionSpec(key);
    if (!spec || spec.notInFile) {
      throw new ConfigError(
        `${path.value}: unknown option '${key}'; the keys are the long flag names (see --help)`,
      );
    }
    if (Array.isArray(value) && spec.multiple) {
      if (!value.every((item) => typeof item === "string")) {
        throw new ConfigError(`${path.value}: option '${key}' must be a list of strings`);
      }
      out[key] = value.join(",");
    } else if (["string", "number", "boolean"].includes(typeof value)) {
      out[key] = String(value);
    } else if (key === "tokens" && value !== null && typeof value === "object") {
      out[key] = JSON.stringify(value);
    } else {
      throw new ConfigError(
        `${path.value}: option '${key}' must be a ${spec.multiple ? "list or " : ""}single value`,
      );
    }
  }
  return out;
}
