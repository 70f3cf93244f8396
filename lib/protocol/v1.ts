/**
 * The clu-ws v1 protocol (docs/protocol.md) in one place: the subprotocol
 * names, every control frame in both directions as a typed union, one encoder
 * per frame the gateway sends, and the validation of the control frames a
 * client sends. Pure and browser-safe: the gateway and `web/client.ts` share
 * these types.
 *
 * CLU reply frames (with `seq` in v1) are not control frames: see `clu.ts`.
 *
 * @module
 */

import { CONTROL_KEY } from "./clu_input.ts";
import type { SeriesFrame, SeriesRequest } from "./v1_series.ts";

export { CONTROL_KEY };

/** The subprotocol that opts a connection into clu-ws v1. */
export const V1_SUBPROTOCOL = "clu-ws.v1";
/** The subprotocol a plain CLU-mode client may offer; clu-ws answers it. */
export const SUBPROTOCOL = "clu-ws";
/** Prefix of the subprotocol that carries a token, e.g. `token.<value>`. */
export const TOKEN_PROTOCOL_PREFIX = "token.";

/** The id a client gave an operation (any JSON value), echoed in the answer; null when none. */
export type RequestId = unknown;

// ---------------------------------------------------------------------------
// Client → gateway

/** What a subscription filters on (all optional; an omitted field does not filter). */
export interface Subscription {
  /** Sender globs (`lvm.*`). */
  actors?: string[];
  /** Message codes, compared case-insensitively. */
  codes?: string[];
  /** AMQP topic patterns on the routing key. */
  keys?: string[];
  /** Only replies to this connection's commands. */
  mine?: boolean;
}

/** `subscribe`: choose what to receive. */
export interface SubscribeRequest extends Subscription {
  /** The operation. */
  "clu-ws": "subscribe";
  /** Echoed in the answer. */
  id?: RequestId;
}

/** `resume`: replay what was missed after a position. */
export interface ResumeRequest {
  /** The operation. */
  "clu-ws": "resume";
  /** Echoed in the answer. */
  id?: RequestId;
  /** The epoch of the frames received. */
  epoch: string;
  /** The last position received (or `since`). */
  seq?: number;
  /**
   * Instead of `seq`: replay the replies received since this time (ms since
   * 1970), e.g. "the last 10 minutes" on a fresh page; `--history stream` only.
   */
  since?: number;
}

/** `state`: the actors' latest keywords. */
export interface StateRequest {
  /** The operation. */
  "clu-ws": "state";
  /** Echoed in the answer. */
  id?: RequestId;
  /** Actor names or globs; all actors when absent. */
  actors?: string[];
}

/** `options`: per-connection options. */
export interface OptionsRequest {
  /** The operation. */
  "clu-ws": "options";
  /** Echoed in the answer. */
  id?: RequestId;
  /** Batched delivery: replies as JSON arrays. */
  batch?: boolean;
}

/** `describe`: what the gateway learnt of an actor's commands and keywords. */
export interface DescribeRequest {
  /** The operation. */
  "clu-ws": "describe";
  /** Echoed in the answer. */
  id?: RequestId;
  /** The actor's name (not a glob). */
  actor: string;
}

/** Every control frame a client sends. */
export type ClientControlFrame =
  | SubscribeRequest
  | ResumeRequest
  | StateRequest
  | OptionsRequest
  | SeriesRequest
  | DescribeRequest;

/** A command as a v1 client sends it: the CLU command frame plus `ack`, `track` and `timeout`. */
export interface CommandRequest {
  /** The actor. */
  consumer: string;
  /** The command text. */
  command_string: string;
  /** The command's id; the gateway makes one when absent. */
  command_id?: string;
  /** Acknowledge receipt (`accepted`) and publication (`published`). */
  ack?: boolean;
  /** Report the command's end (`done`). */
  track?: boolean;
  /** Seconds before a tracked command times out. */
  timeout?: number;
}

// ---------------------------------------------------------------------------
// Gateway → client

/** What a client may do: receive only (`watch`) or also command. */
export type Role = "watch" | "command";

/** What the gateway tells a client on connect. */
export interface Welcome {
  /** Protocol version. */
  version: number;
  /** This run of the gateway. */
  epoch: string;
  /** Newest position at connect. */
  seq: number;
  /** The gateway's AMQP client name. */
  name: string;
  /** The exchange. */
  exchange: string;
  /** Broker link state at connect. */
  broker: string;
  /** What this client may do: `watch` or `command`. */
  role: Role;
}

/** `welcome`: the first frame on a v1 connection. */
export interface WelcomeFrame extends Welcome {
  /** The frame's kind. */
  "clu-ws": "welcome";
}

/** `subscribed`: the answer to `subscribe`. */
export interface SubscribedFrame {
  /** The frame's kind. */
  "clu-ws": "subscribed";
  /** The request's id. */
  id: RequestId;
  /** The subscription now in force. */
  filter: Subscription;
}

/** `resumed`: the replay of a `resume` is complete. */
export interface ResumedFrame {
  /** The frame's kind. */
  "clu-ws": "resumed";
  /** The request's id. */
  id: RequestId;
  /** The position asked for. */
  from: number;
  /** The newest position replayed up to. */
  to: number;
  /** Replies replayed (those matching the subscription). */
  count: number;
}

/** `gap`: the answer to a `resume` that cannot be replayed. */
export interface GapFrame {
  /** The frame's kind. */
  "clu-ws": "gap";
  /** The request's id. */
  id: RequestId;
  /** Why nothing was replayed. */
  reason: string;
  /** The gateway's epoch now. */
  epoch: string;
  /** The oldest position the history holds. */
  oldest: number;
  /** The newest position. */
  latest: number;
}

/** One keyword of an actor's state. */
export interface KeywordState {
  /** Its latest value. */
  value: unknown;
  /** When it was seen (ISO 8601). */
  seen: string;
  /** The message code that carried it. */
  code: string;
}

/** One actor's state. */
export interface ActorSnapshot {
  /** When the actor was last heard (ISO 8601). */
  last_seen: string;
  /** Its keywords by name. */
  keywords: Record<string, KeywordState>;
}

/** `state`: the answer to `state`. */
export interface StateFrame {
  /** The frame's kind. */
  "clu-ws": "state";
  /** The request's id. */
  id: RequestId;
  /** The position the snapshot is as of. */
  seq: number;
  /** The actors asked for, by name. */
  actors: Record<string, ActorSnapshot>;
}

/** `options`: the answer to `options`. */
export interface OptionsFrame {
  /** The frame's kind. */
  "clu-ws": "options";
  /** The request's id. */
  id: RequestId;
  /** Whether replies come batched. */
  batch: boolean;
}

/**
 * `describe`: the answer to `describe`: what the actor answered to
 * `get-command-model` (click's command tree), `get_schema` (a JSON schema whose
 * `properties[keyword]` may have `description` and `unit`) and `help`, each
 * null when unknown.
 */
export interface DescribeFrame {
  /** The frame's kind. */
  "clu-ws": "describe";
  /** The request's id. */
  id: RequestId;
  /** The actor asked about. */
  actor: string;
  /** `ready` (something is known), `pending` (being asked) or `none` (see `reason`). */
  status: "ready" | "pending" | "none";
  /** The command model (`{name, params, commands?, help, …}`), or null. */
  model: Record<string, unknown> | null;
  /** The keyword schema (`{type: "object", properties: {…}}`), or null. */
  schema: Record<string, unknown> | null;
  /** The help lines, or null. */
  help: string[] | null;
  /** Why the model is null, when it is. */
  reason?: string;
}

/** `broker`: the gateway's RabbitMQ link changed state. */
export interface BrokerFrame {
  /** The frame's kind. */
  "clu-ws": "broker";
  /** `up`, `down`, `connecting` or `closed`. */
  state: string;
}

/** `accepted`: a command with `ack` was received. */
export interface AcceptedFrame {
  /** The frame's kind. */
  "clu-ws": "accepted";
  /** The command's id (the gateway's when the client gave none). */
  command_id: string;
  /** The actor. */
  consumer: string;
}

/** `published`: RabbitMQ confirmed a command with `ack`. */
export interface PublishedFrame {
  /** The frame's kind. */
  "clu-ws": "published";
  /** The command's id. */
  command_id: string;
}

/** How a tracked command ended. */
export type CommandStatus = "done" | "failed" | "timeout";

/** `done`: a command with `track` ended. */
export interface DoneFrame {
  /** The frame's kind. */
  "clu-ws": "done";
  /** The command's id. */
  command_id: string;
  /** The actor. */
  consumer: string;
  /** How it ended. */
  status: CommandStatus;
  /** The message code that ended it, or null. */
  code: string | null;
  /** Milliseconds from sending to the end. */
  elapsed_ms: number;
  /** Why it failed or timed out, when known. */
  error?: string;
}

/** `error`: a malformed control frame; it changed nothing. */
export interface ErrorFrame {
  /** The frame's kind. */
  "clu-ws": "error";
  /** The request's id. */
  id: RequestId;
  /** What was wrong. */
  error: string;
}

/** Every control frame the gateway sends. */
export type ServerControlFrame =
  | WelcomeFrame
  | SubscribedFrame
  | ResumedFrame
  | GapFrame
  | StateFrame
  | OptionsFrame
  | SeriesFrame
  | DescribeFrame
  | BrokerFrame
  | AcceptedFrame
  | PublishedFrame
  | DoneFrame
  | ErrorFrame;

/** The control frames that answer the command fields `ack` and `track`. */
export type CommandControlFrame = AcceptedFrame | PublishedFrame | DoneFrame;

/** A frame's fields without its kind, as the encoders take them. */
export type FieldsOf<F> = Omit<F, "clu-ws">;

// ---------------------------------------------------------------------------
// Encoders: one per frame the gateway sends; each returns the JSON text. Fields
// are listed in the documented order.

/** `{"clu-ws": "welcome", …}`. */
export function encodeWelcome(welcome: Welcome): string {
  const { version, epoch, seq, name, exchange, broker, role } = welcome;
  return JSON.stringify({ "clu-ws": "welcome", version, epoch, seq, name, exchange, broker, role });
}

/** `{"clu-ws": "subscribed", "id": …, "filter": {…}}`. */
export function encodeSubscribed(frame: FieldsOf<SubscribedFrame>): string {
  return JSON.stringify({ "clu-ws": "subscribed", id: frame.id, filter: frame.filter });
}

/** `{"clu-ws": "resumed", "id": …, "from": …, "to": …, "count": …}`. */
export function encodeResumed(frame: FieldsOf<ResumedFrame>): string {
  const { id, from, to, count } = frame;
  return JSON.stringify({ "clu-ws": "resumed", id, from, to, count });
}

/** `{"clu-ws": "gap", "id": …, "reason": …, "epoch": …, "oldest": …, "latest": …}`. */
export function encodeGap(frame: FieldsOf<GapFrame>): string {
  const { id, reason, epoch, oldest, latest } = frame;
  return JSON.stringify({ "clu-ws": "gap", id, reason, epoch, oldest, latest });
}

/**
 * `{"clu-ws": "state", "id": …, "seq": …, "actors": {…}}`, splicing in the
 * actors as the actor state already encoded them (no second encoding).
 */
export function encodeState(actorsJson: string, frame: { id: RequestId; seq: number }): string {
  return `{"clu-ws":"state","id":${JSON.stringify(frame.id)},"seq":${frame.seq},"actors":${actorsJson}}`;
}

/** `{"clu-ws": "options", "id": …, "batch": …}`. */
export function encodeOptions(frame: FieldsOf<OptionsFrame>): string {
  return JSON.stringify({ "clu-ws": "options", id: frame.id, batch: frame.batch });
}

/**
 * `{"clu-ws": "describe", "id": …, "actor": …, "status": …, "model": …, "schema": …, "help": …[, "reason": …]}`,
 * splicing in the description's JSON text (`{"actor", …}`) as the introspection made it.
 */
export function encodeDescribe(descriptionJson: string, frame: { id: RequestId }): string {
  return `{"clu-ws":"describe","id":${JSON.stringify(frame.id) ?? "null"},${descriptionJson.slice(1)}`;
}

/** `{"clu-ws": "broker", "state": …}`. */
export function encodeBroker(state: string): string {
  return JSON.stringify({ "clu-ws": "broker", state });
}

/** `{"clu-ws": "accepted", "command_id": …, "consumer": …}`. */
export function encodeAccepted(frame: FieldsOf<AcceptedFrame>): string {
  return JSON.stringify({ "clu-ws": "accepted", command_id: frame.command_id, consumer: frame.consumer });
}

/** `{"clu-ws": "published", "command_id": …}`. */
export function encodePublished(frame: FieldsOf<PublishedFrame>): string {
  return JSON.stringify({ "clu-ws": "published", command_id: frame.command_id });
}

/** `{"clu-ws": "done", "command_id": …, "consumer": …, "status": …, "code": …, "elapsed_ms": …[, "error": …]}`. */
export function encodeDone(frame: FieldsOf<DoneFrame>): string {
  const { command_id, consumer, status, code, elapsed_ms, error } = frame;
  return JSON.stringify({
    "clu-ws": "done",
    command_id,
    consumer,
    status,
    code,
    elapsed_ms,
    ...(error ? { error } : {}),
  });
}

/** `{"clu-ws": "error", "id": …, "error": …}`. */
export function encodeError(frame: FieldsOf<ErrorFrame>): string {
  return JSON.stringify({ "clu-ws": "error", id: frame.id, error: frame.error });
}

/** The frame answering `ack` and `track`, whichever it is. */
export function encodeCommandControl(frame: CommandControlFrame): string {
  switch (frame["clu-ws"]) {
    case "accepted":
      return encodeAccepted(frame);
    case "published":
      return encodePublished(frame);
    case "done":
      return encodeDone(frame);
  }
}
