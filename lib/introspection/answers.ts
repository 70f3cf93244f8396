/**
 * What a CLU actor's answers to the introspection commands hold, checked and
 * bounded: `get-command-model` ends with `:` `{"command_model": {…}}` (click's
 * command tree), `get_schema` with `:` `{"schema": "<JSON schema as text>"}`
 * (a string that is parsed once more), `help` with `:` `{"help": ["line", …]}`
 * (see `/work/shared/clu-samples/introspection.json`). Pure.
 *
 * @module
 */

/** The introspection commands, in the order they are sent. */
export const INTROSPECTION_COMMANDS = ["get-command-model", "get_schema", "help"] as const;
/** One of {@linkcode INTROSPECTION_COMMANDS}. */
export type IntrospectionCommand = typeof INTROSPECTION_COMMANDS[number];

/** Lines of help kept at most; a help text is a screenful. */
export const MAX_HELP_LINES = 2000;

/** What an answer gave: the part's JSON text to keep, or why there is none. */
export type Extracted = { ok: true; json: string } | { ok: false; reason: string };

/**
 * The part kept from the body (JSON text) of the `:` reply that ended
 * `command`: the command model object, the schema object (parsed from its
 * string), or the help lines. The body's size is checked by the caller
 * before it is parsed.
 */
export function extractAnswer(command: IntrospectionCommand, bodyText: string): Extracted {
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return { ok: false, reason: `its answer to ${command} is not JSON` };
  }
  if (!isObject(body)) return { ok: false, reason: `its answer to ${command} is not a JSON object` };
  switch (command) {
    case "get-command-model": {
      const model = body.command_model;
      if (!isObject(model) || typeof model.name !== "string" || !Array.isArray(model.params)) {
        return { ok: false, reason: "its answer to get-command-model has no command_model {name, params}" };
      }
      return { ok: true, json: JSON.stringify(model) };
    }
    case "get_schema": {
      // CLU sends the schema as a JSON string inside the body; some actors may send the object itself.
      let schema = body.schema;
      if (typeof schema === "string") {
        try {
          schema = JSON.parse(schema);
        } catch {
          return { ok: false, reason: "its get_schema answer's schema is not JSON text" };
        }
      }
      if (!isObject(schema)) return { ok: false, reason: "its answer to get_schema has no schema object" };
      return { ok: true, json: JSON.stringify(schema) };
    }
    case "help": {
      const help = typeof body.help === "string" ? [body.help] : body.help;
      if (!Array.isArray(help) || help.some((line) => typeof line !== "string")) {
        return { ok: false, reason: "its answer to help has no help lines" };
      }
      return { ok: true, json: JSON.stringify(help.slice(0, MAX_HELP_LINES)) };
    }
  }
}

/** The `error` of an `f` answer's body, clipped, for the reason shown to clients. */
export function failureText(bodyText: string): string {
  try {
    const body = JSON.parse(bodyText);
    if (isObject(body) && typeof body.error === "string") return body.error.slice(0, 200);
  } catch {
    // Not JSON: say only that it failed.
  }
  return "no reason given";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

const encoder = new TextEncoder();

/** The longest routing key RabbitMQ takes, in bytes. */
const MAX_ROUTING_KEY_BYTES = 255;

/**
 * Whether a reply's sender can be commanded as a consumer: no white space, no
 * empty word (`a.`, `a..b`), and `command.<name>` within a routing key.
 */
export function commandableName(name: string): boolean {
  return name !== "" && !/\s/.test(name) && !name.split(".").includes("") &&
    encoder.encode(`command.${name}`).length <= MAX_ROUTING_KEY_BYTES;
}
