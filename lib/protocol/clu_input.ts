/**
 * What a client sends, validated: a websocket text frame (or a `POST /commands`
 * body) becomes a CLU command, a clu-ws v1 control frame, or bad input with an
 * error that says what to send instead. Pure and browser-safe; the replies'
 * side of CLU's wire format is `clu.ts`.
 *
 * @module
 */

/** A validated command from a websocket client. */
export interface ClientCommand {
  /** Tells the three results of {@linkcode parseClientCommand} apart. */
  kind: "command";
  /** The actor to command (`command.<consumer>`). */
  consumer: string;
  /** The command text, e.g. `status`. */
  commandString: string;
  /** The id the client gave, or a new UUID4. */
  commandId: string;
  /** v1: acknowledge receipt and publication. */
  ack: boolean;
  /** v1: report the end of the command. */
  track: boolean;
  /** v1: seconds before a tracked command is failed as timed out. */
  timeoutSeconds?: number;
}

/** Longest tracking timeout a client may ask for, in seconds. */
export const MAX_TRACK_TIMEOUT_SECONDS = 3600;

/** The key that marks a control frame (clu-ws v1); no CLU frame has it. */
export const CONTROL_KEY = "clu-ws";

/** A clu-ws v1 control frame, not yet validated (see `sessions.ts`). */
export interface ControlFrame {
  /** Tells the three results of {@linkcode parseClientCommand} apart. */
  kind: "control";
  /** The frame's fields. */
  fields: Record<string, unknown>;
}

/** Bad input from a client: what it was, and the id to fail if one was given. */
export interface ClientInputError {
  /** Tells the three results of {@linkcode parseClientCommand} apart. */
  kind: "error";
  /** What was wrong, for the client. */
  error: string;
  /** The command_id the client gave, if any usable one. */
  commandId?: string | number;
  /** The consumer the client named, if any usable one. */
  consumer?: string;
}

/**
 * The start of the command ids of the gateways' own introspection commands
 * (`lib/introspection/`): every clu-ws gateway keeps the replies to them from
 * its clients, so a client may not use such an id.
 */
export const INTROSPECTION_ID_PREFIX = "clu-ws-introspection-";

/** Longest accepted command_id, in characters. */
export const MAX_COMMAND_ID_LENGTH = 256;
/** Longest routing key AMQP allows, in bytes. */
const MAX_ROUTING_KEY_BYTES = 255;
const encoder = new TextEncoder();

/**
 * Validates a client's text frame `{"consumer", "command_string",
 * "command_id"?}`. Extra fields are ignored, as CLU does; anything CLU would
 * silently ignore or forward into silence is an error the client is told of.
 */
export function parseClientCommand(
  text: string,
  options: { newCommandId?: () => string; v1?: boolean } = {},
): ClientCommand | ControlFrame | ClientInputError {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return {
      kind: "error",
      error: `frame is not valid JSON (${why}); send {"consumer": "<actor>", "command_string": "<command>"}`,
    };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return {
      kind: "error",
      error: `frame is a JSON ${
        value === null ? "null" : Array.isArray(value) ? "array" : typeof value
      }, not an object; send {"consumer": "<actor>", "command_string": "<command>"}`,
    };
  }
  const fields = value as Record<string, unknown>;
  if (Object.hasOwn(fields, CONTROL_KEY)) return { kind: "control", fields };
  const rawId = Object.hasOwn(fields, "command_id") ? fields.command_id : undefined;
  let commandId: string | undefined;
  let idError: string | undefined;
  let echoId: string | number | undefined;
  if (typeof rawId === "string" && rawId !== "") {
    echoId = rawId;
    if (rawId.length > MAX_COMMAND_ID_LENGTH) {
      idError = `command_id is ${rawId.length} characters long; the limit is ${MAX_COMMAND_ID_LENGTH}`;
      echoId = undefined;
    } else if (rawId.startsWith(INTROSPECTION_ID_PREFIX)) {
      idError =
        `command_id '${INTROSPECTION_ID_PREFIX}…' is reserved for the gateways' own questions to actors (their replies reach no client); choose another`;
    } else {
      commandId = rawId;
    }
  } else if (rawId !== undefined && rawId !== null && rawId !== "") {
    if (typeof rawId === "number" && Number.isFinite(rawId)) echoId = rawId;
    idError = `command_id must be a string, not a ${
      Array.isArray(rawId) ? "array" : typeof rawId
    } (CLU would drop every reply to it); send it as text, e.g. "${
      typeof rawId === "number" ? rawId : "my-id-1"
    }"`;
  }
  const rawConsumer = Object.hasOwn(fields, "consumer") ? fields.consumer : undefined;
  const consumer = typeof rawConsumer === "string" && rawConsumer.trim() !== "" ? rawConsumer : undefined;
  // Only a well-formed actor name is echoed back: a hostile one must not be amplified into the answer.
  const fits = consumer !== undefined && routingKeyFits(consumer);
  const echoConsumer = consumer !== undefined && !/\s/.test(consumer) && fits ? consumer : undefined;
  const fail = (error: string): ClientInputError => ({
    kind: "error",
    error,
    ...(echoId !== undefined ? { commandId: echoId } : {}),
    ...(echoConsumer !== undefined ? { consumer: echoConsumer } : {}),
  });
  if (rawConsumer === undefined) return fail(`missing "consumer": name the actor to command`);
  if (typeof rawConsumer !== "string") {
    return fail(`"consumer" must be a string naming an actor, not a ${describeType(rawConsumer)}`);
  }
  if (consumer === undefined) return fail(`"consumer" is empty: name the actor to command`);
  if (/[\s]/.test(consumer)) {
    return fail(`"consumer" ${JSON.stringify(clip(consumer))} contains white space; actor names have none`);
  }
  if (!fits) {
    return fail(`"consumer" is too long: the routing key command.<consumer> is limited to 255 bytes`);
  }
  // `a.`, `.a` and `a..b` name no actor: the access rules reason about whole dot-separated words.
  if (consumer.split(".").includes("")) {
    return fail(
      `"consumer" '${
        clip(consumer)
      }' has an empty word: actor names are dot-separated words, e.g. "lvm.sp1.ieb"`,
    );
  }
  const rawCommand = Object.hasOwn(fields, "command_string") ? fields.command_string : undefined;
  if (rawCommand === undefined) return fail(`missing "command_string": say what to run, e.g. "status"`);
  if (typeof rawCommand !== "string") {
    return fail(`"command_string" must be a string, not a ${describeType(rawCommand)}`);
  }
  if (rawCommand.trim() === "") {
    return fail(
      `"command_string" is empty (a CLU actor would never answer it); say what to run, e.g. "status"`,
    );
  }
  if (idError) return fail(idError);
  const base = {
    kind: "command" as const,
    consumer,
    commandString: rawCommand,
    commandId: commandId ?? (options.newCommandId ?? (() => crypto.randomUUID()))(),
  };
  // CLU ignores extra fields; only a clu-ws v1 sender (or the HTTP API) means these.
  if (options.v1 === false) return { ...base, ack: false, track: false };
  for (const flag of ["ack", "track"]) {
    if (Object.hasOwn(fields, flag) && typeof fields[flag] !== "boolean") {
      return fail(`"${flag}" must be true or false`);
    }
  }
  const timeout = Object.hasOwn(fields, "timeout") ? fields.timeout : undefined;
  if (
    timeout !== undefined &&
    (typeof timeout !== "number" || !(timeout > 0) || timeout > MAX_TRACK_TIMEOUT_SECONDS)
  ) {
    return fail(`"timeout" must be a number of seconds above 0 and at most ${MAX_TRACK_TIMEOUT_SECONDS}`);
  }
  return {
    ...base,
    ack: fields.ack === true,
    track: fields.track === true,
    ...(typeof timeout === "number" ? { timeoutSeconds: timeout } : {}),
  };
}

/** Whether `command.<consumer>` fits an AMQP routing key; UTF-8 is counted only for names that could not. */
function routingKeyFits(consumer: string): boolean {
  return (consumer.length + "command.".length) * 3 <= MAX_ROUTING_KEY_BYTES ||
    encoder.encode(`command.${consumer}`).length <= MAX_ROUTING_KEY_BYTES;
}

/** A value quoted in an error message, cut to 64 characters. */
function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
