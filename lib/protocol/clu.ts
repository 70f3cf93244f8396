/**
 * The CLU wire format, as pure functions: an AMQP reply becomes the websocket
 * frame text (encoded once, shared by every client), a client's text becomes a
 * validated command, and the gateway's own errors become reply-shaped frames.
 *
 * No I/O here; see `../shared/PROTOCOL.md` for the facts these rules follow.
 *
 * @module
 */

import type { ClientCommand } from "./clu_input.ts";

/** The parts of an AMQP message (as amqplib delivers it) that a frame uses. */
export interface AmqpMessageLike {
  /** Delivery fields. */
  fields: { exchange: string; routingKey: string };
  /** Message properties. */
  properties: {
    headers?: Record<string, unknown>;
    messageId?: string;
    timestamp?: number;
    correlationId?: string;
  };
  /** The raw body. */
  content: Uint8Array;
}

/** A reply that passed CLU's validity rules, with its frame text. */
export interface EncodedReply {
  /** Marks a reply to forward. */
  kind: "reply";
  /** The frame exactly as sent to websocket clients. */
  frame: string;
  /** Headers decoded to JSON values. */
  headers: Record<string, unknown>;
  /** The routing key the reply was published with. */
  routingKey: string;
  /** The parsed body (for the actors' keyword state). */
  body: unknown;
}

/** A reply the gateway does not forward, and why. */
export interface DroppedReply {
  /** Marks a reply not to forward. */
  kind: "dropped";
  /** Why the reply was dropped, for the log. */
  reason: string;
}

const decoder = new TextDecoder();

/**
 * Encodes one AMQP reply as CLU's websocket frame
 * `{headers, exchange, message_id, routing_key, timestamp, body}`, or says why
 * CLU would drop it (no `message_code`, `command_id` ≠ correlation id, a body
 * that is not JSON).
 */
export function encodeReply(message: AmqpMessageLike): EncodedReply | DroppedReply {
  const { json: headers, text: headersText } = headersWithText(message.properties.headers ?? {});
  const code = headers.message_code;
  if (code === undefined || code === null || code === "") {
    return { kind: "dropped", reason: "no message_code header" };
  }
  const commandId = headers.command_id;
  const correlationId = message.properties.correlationId;
  if (
    commandId !== undefined && commandId !== null && commandId !== "" &&
    commandId !== correlationId
  ) {
    return {
      kind: "dropped",
      reason: `command_id header ${JSON.stringify(commandId)} differs from correlation id ${
        JSON.stringify(correlationId ?? null)
      }`,
    };
  }
  const parsed = parseBody(message.content);
  if (parsed === undefined) {
    return { kind: "dropped", reason: "body is not JSON" };
  }
  const body = parsed.text;
  const { exchange, routingKey } = message.fields;
  const timestamp = message.properties.timestamp;
  const frame = `{"headers":${headersText},"exchange":${lastExchange.json(exchange)},"message_id":${
    JSON.stringify(message.properties.messageId ?? null)
  },"routing_key":${lastRoutingKey.json(routingKey)},"timestamp":${
    timestamp === undefined ? "null" : lastTimestamp.json(isoTimestamp(timestamp))
  },"body":${body}}`;
  return { kind: "reply", frame, headers, routingKey, body: parsed.value };
}

/**
 * A string's JSON text, remembered for the next call with the same string: a burst of replies shares its
 * exchange, often its routing key, and its timestamp's second.
 */
class LastJson {
  #source: string | undefined;
  #json = "";

  /** `JSON.stringify(text)`. */
  json(text: string): string {
    if (text !== this.#source) {
      this.#source = text;
      this.#json = JSON.stringify(text);
    }
    return this.#json;
  }
}

const lastExchange = new LastJson();
const lastRoutingKey = new LastJson();
const lastTimestamp = new LastJson();

/** Most headers compared with the last reply's; a reply with more is converted afresh. */
const MAX_CACHED_HEADERS = 32;

/**
 * The last reply's headers as amqplib gave them (keys and plain values), with their JSON values (frozen:
 * every reply with the same headers shares them) and text. A burst from one actor repeats its headers.
 */
let lastHeaders:
  | { keys: string[]; values: unknown[]; json: Record<string, unknown>; text: string }
  | undefined;

/** {@linkcode headersToJson} and its JSON text, the last reply's again when its headers had the same values. */
function headersWithText(headers: Record<string, unknown>): { json: Record<string, unknown>; text: string } {
  const keys = Object.keys(headers);
  const last = lastHeaders;
  if (last !== undefined && last.keys.length === keys.length) {
    let same = true;
    for (let i = 0; i < keys.length && same; i++) {
      same = keys[i] === last.keys[i] && headers[keys[i]] === last.values[i];
    }
    if (same) return last;
  }
  const json = Object.freeze(headersToJson(headers));
  const text = JSON.stringify(json);
  // Only plain values are compared (===); a byte array, a table or a list is converted every time.
  const values = keys.map((key) => headers[key]);
  const plain = keys.length <= MAX_CACHED_HEADERS &&
    values.every((value) => value === null || (typeof value !== "object" && typeof value !== "function"));
  lastHeaders = plain ? { keys, values, json, text } : undefined;
  return { json, text };
}

/**
 * The body as JSON text fit to embed in a frame, or undefined if it is not
 * JSON. Valid JSON is embedded as received, so it is never re-serialised.
 * Python's `json.dumps` (what CLU actors use) writes `NaN` and `Infinity` for
 * such floats; those become `null` so browsers can still parse the frame.
 */
export function bodyJsonText(content: Uint8Array): string | undefined {
  return parseBody(content)?.text;
}

/** The body's JSON text (as received, or with NaN/Infinity nulled) and its parsed value. */
function parseBody(content: Uint8Array): { text: string; value: unknown } | undefined {
  const text = decoder.decode(content).trim();
  if (text === "") return undefined;
  try {
    return { text, value: JSON.parse(text) };
  } catch {
    const patched = replaceNonFiniteNumbers(text);
    if (patched === text) return undefined;
    try {
      return { text: patched, value: JSON.parse(patched) };
    } catch {
      return undefined;
    }
  }
}

const NON_FINITE = ["-Infinity", "Infinity", "NaN"];

/** Replaces bare `NaN`, `Infinity` and `-Infinity` outside strings with `null`. */
function replaceNonFiniteNumbers(text: string): string {
  let out = "";
  let i = 0;
  let last = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      continue;
    }
    const token = NON_FINITE.find((t) => text.startsWith(t, i));
    if (token) {
      out += text.slice(last, i) + "null";
      i += token.length;
      last = i;
    } else {
      i++;
    }
  }
  return out + text.slice(last);
}

/** ISO 8601 in UTC with an explicit offset, as current CLU writes it. */
export function isoTimestamp(seconds: number): string {
  const whole = Math.trunc(seconds);
  // Replies come in bursts stamped with the same second: format each second once.
  if (whole === lastStamp.seconds) return lastStamp.text;
  const date = new Date(whole * 1000);
  if (Number.isNaN(date.getTime())) return String(seconds);
  lastStamp = { seconds: whole, text: date.toISOString().slice(0, 19) + "+00:00" };
  return lastStamp.text;
}

let lastStamp = { seconds: NaN, text: "" };

/**
 * AMQP header values as JSON values: byte arrays become UTF-8 text, decimals
 * numbers, timestamps ISO strings; everything else is already JSON.
 */
export function headersToJson(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(headers)) {
    const value = headerValueToJson(headers[key]);
    if (key === "__proto__") {
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    } else {
      out[key] = value;
    }
  }
  return out;
}

function headerValueToJson(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  if (Array.isArray(value)) return value.map(headerValueToJson);
  // amqplib tags decimals and timestamps; an actor's own table of the same shape stays a table.
  const tagged = value as { "!"?: unknown; value?: unknown };
  const decimal = tagged.value as { places?: unknown; digits?: unknown } | undefined;
  if (
    tagged["!"] === "decimal" && typeof decimal?.places === "number" && typeof decimal?.digits === "number"
  ) {
    return decimal.digits / 10 ** decimal.places;
  }
  if (tagged["!"] === "timestamp" && typeof tagged.value === "number") return isoTimestamp(tagged.value);
  return headersToJson(value as Record<string, unknown>);
}

/** A random 32-hex message id, as CLU's AMQP library stamps on every message. */
export function newMessageId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** What a gateway-made frame needs to know about the gateway. */
export interface GatewayIdentity {
  /** The gateway's AMQP client name. */
  name: string;
  /** The exchange the gateway serves. */
  exchange: string;
}

/** Options for {@linkcode gatewayReplyFrame}. */
export interface GatewayReplyOptions {
  /** `e` for bad input, `f` to fail a command, `w` for a warning notice. */
  code: "e" | "f" | "w";
  /** What went wrong, in words for the client (becomes `body.error`). */
  error?: string;
  /** The whole body, instead of `{error}`. */
  body?: Record<string, unknown>;
  /** The command this is about, if any. */
  commandId?: string | number;
  /** The actor the command was for, if known. */
  consumer?: string;
  /** The reply's sender; the gateway's name unless given. */
  sender?: string;
  /** Seconds since the epoch; now unless given. */
  now?: number;
}

/**
 * A frame shaped like a CLU reply that the gateway sends to one client (bad
 * input, a command that could not be sent, a notice), so apps that only know
 * CLU frames handle it: `message_code` `e`, `f` or `w`, and for errors
 * `body.error` saying what was wrong.
 */
export function gatewayReplyFrame(identity: GatewayIdentity, options: GatewayReplyOptions): string {
  const headers = {
    command_id: options.commandId ?? null,
    commander_id: options.consumer === undefined ? null : commanderId(identity, options.consumer),
    internal: false,
    message_code: options.code,
    sender: options.sender ?? identity.name,
  };
  return JSON.stringify({
    headers,
    exchange: identity.exchange,
    message_id: newMessageId(),
    routing_key: `reply.${identity.name}`,
    timestamp: isoTimestamp(options.now ?? Date.now() / 1000),
    body: options.body ?? { error: options.error ?? "" },
  });
}

/**
 * The commander id of a command the gateway sends to `consumer`
 * (`<gateway name>.<consumer>`), as CLU's clients stamp it; replies carry it
 * back, so it is how the gateway knows a reply answers one of its commands.
 */
export function commanderId(identity: GatewayIdentity, consumer: string): string {
  return `${identity.name}.${consumer}`;
}

/** CLU's error text when the broker returns a command because no actor `consumer` is bound. */
export function failedRoutingText(consumer: string): string {
  return `Failed routing message to consumer '${consumer}'.`;
}

/**
 * Whether a reply is the "failed routing" reply that a CLU client (or a
 * gateway) publishes for its own command when no actor took it: code `f`,
 * sender = the consumer the command was sent to, and a body that is only
 * `{"error": "Failed routing message to consumer '<sender>'."}`. Its sender
 * is whatever a user typed, so it says nothing about any actor. Recognized by
 * its shape, not its routing key: other gateways and CLU clients publish it
 * on routing keys of their own.
 */
export function isFailedRouting(sender: string, code: string, body: unknown): boolean {
  if (code !== "f" || body === null || typeof body !== "object" || Array.isArray(body)) return false;
  const keys = Object.keys(body);
  return keys.length === 1 && keys[0] === "error" &&
    (body as { error: unknown }).error === failedRoutingText(sender);
}

/** The AMQP headers of a command, exactly as a CLU client sends them. */
export function commandHeaders(
  identity: GatewayIdentity,
  command: ClientCommand,
): Record<string, unknown> {
  return {
    command_id: command.commandId,
    commander_id: commanderId(identity, command.consumer),
    internal: false,
    write_to_log: true,
  };
}

/** The body of a command, exactly as a CLU client sends it. */
export function commandBody(command: ClientCommand): string {
  return JSON.stringify({ command_string: command.commandString });
}

/**
 * The reply CLU publishes when the broker returns a command (no actor bound):
 * the command's headers plus `message_code: "f"` and `sender: <consumer>`.
 */
export function unroutableReply(
  identity: GatewayIdentity,
  command: ClientCommand,
): { headers: Record<string, unknown>; body: string } {
  return {
    headers: { ...commandHeaders(identity, command), message_code: "f", sender: command.consumer },
    body: JSON.stringify({ error: failedRoutingText(command.consumer) }),
  };
}
