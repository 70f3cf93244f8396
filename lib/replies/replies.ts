/**
 * The reply path, in the order a reply takes it: an AMQP message from the
 * replies queue is encoded once ({@linkcode encodeReply}), counted, numbered
 * (`seq`, in this run's `epoch`), wrapped as a clu-ws v1 frame, fed to the
 * actors' state (and its numbers to the keyword series), handed to the hub
 * (which picks the sockets that want it, in their dialect), remembered in the
 * history (which copies the bytes the hub framed, when it framed any) and
 * shown to the commands ledger(s), which end the commands it answers.
 *
 * A reply CLU would drop (see {@linkcode encodeReply}) is counted and logged,
 * gets no `seq` and reaches nobody.
 *
 * @module
 */

import { type AmqpMessageLike, type EncodedReply, encodeReply } from "../protocol/clu.ts";
import type { ActorState } from "./actor_state.ts";
import type { DeliveredFrames, Delivery } from "../clients/hub.ts";
import type { History } from "./history.ts";
import type { KeywordSeries } from "./keyword_series.ts";
import type { ReplyMeta } from "../clients/filter.ts";
import { debugEnabled, logger } from "../log.ts";

const log = logger("replies");

/**
 * Who follows commands by their replies (the commands ledger): shown every
 * delivered reply, after the clients got it.
 */
export interface ReplyObserver {
  /**
   * One reply: its `command_id` and `commander_id` headers as received (any
   * JSON value, or undefined), its message code and its CLU frame text.
   */
  observe(commandId: unknown, commanderId: unknown, code: string, frame: string): void;
}

/** What the reply path needs of the hub: fan-out, and its client count for the debug log. */
export interface ReplyHub {
  /** Clients connected now. */
  readonly size: number;
  /** Hands one reply to every client that wants it; may say which frames it made (their bytes are reused). */
  deliver(delivery: Delivery): DeliveredFrames | void;
}

/**
 * The gateway's own questions to actors (`introspection/introspector.ts`):
 * the replies to them are taken off the reply path before anyone sees them,
 * and every other reply tells it an actor is there.
 */
export interface ReplyIntrospection {
  /** Takes the message (true) when it answers one of the gateway's own commands; nothing else sees it. */
  claim(message: AmqpMessageLike): boolean;
  /** A delivered reply from `sender`. */
  seen(sender: string, code: string, body: unknown): void;
}

/** What the reply path needs of the metrics. */
export interface ReplyCounter {
  /** Counts a reply, forwarded or dropped; `timestamp` (seconds) is when its actor sent it. */
  reply(forwarded: boolean, timestamp?: number): void;
}

/** Options for {@linkcode Replies}. */
export interface RepliesOptions {
  /** The recent replies, for `resume`. */
  history: History;
  /** The actors' latest keywords. */
  state: ActorState;
  /** The recent numbers of numeric keywords, for plots. */
  series?: KeywordSeries;
  /** The clients. */
  hub: ReplyHub;
  /** Counts every reply. */
  metrics: ReplyCounter;
  /** Shown every delivered reply, in this order (the commands ledger). */
  observers?: readonly ReplyObserver[];
  /** Takes the replies to the gateway's own introspection commands, and hears of actors. */
  introspection?: ReplyIntrospection;
  /** When this run started (ms since the epoch); the epoch is made of it. Default: now. */
  startedAt?: number;
  /** The epoch, when it is not this run's (a history stream's name); `startedAt` is then unused. */
  epoch?: string;
}

/** A reply decoded for clients: its CLU frame and what filters look at; or why CLU would drop it. */
export type DecodedReply =
  | { kind: "reply"; reply: EncodedReply; meta: ReplyMeta }
  | { kind: "dropped"; reason: string };

/** Decodes one AMQP reply for clients (the one place its filter fields are read). */
export function decodeReply(message: AmqpMessageLike): DecodedReply {
  const reply = encodeReply(message);
  if (reply.kind === "dropped") return reply;
  const { headers } = reply;
  const meta: ReplyMeta = {
    sender: typeof headers.sender === "string" ? headers.sender : "",
    code: String(headers.message_code),
    routingKey: reply.routingKey,
    commandId: typeof headers.command_id === "string" ? headers.command_id : undefined,
  };
  return { kind: "reply", reply, meta };
}

/** Names this run: its start time (base 36) and a few random characters, so a restart never repeats it. */
export function newEpoch(startedAt: number = Date.now()): string {
  return `${startedAt.toString(36)}-${crypto.randomUUID().slice(0, 4)}`;
}

/**
 * The v1 frame of a reply: `seq` first, then the CLU frame's own fields, as
 * they are (`frame` is a JSON object text). The one place a v1 reply is made.
 */
export function v1ReplyFrame(seq: number, frame: string): string {
  return `{"seq":${seq},${frame.slice(1)}`;
}

/**
 * The UTF-8 of a v1 reply frame after its head of `headLength` characters (ASCII), from the bytes the hub
 * already made for a socket: the v1 frame's past its head, or the CLU frame's past its `{` (the same text).
 */
function historyTail(frames: DeliveredFrames | void, headLength: number): Uint8Array | undefined {
  if (!frames) return undefined;
  return frames.v1?.payload?.subarray(headLength) ?? frames.plain?.payload?.subarray(1);
}

/** The reply path: from the broker's message to the clients and the ledger. */
export class Replies {
  readonly #options: RepliesOptions;
  readonly #observers: readonly ReplyObserver[];
  readonly #epoch: string;
  #seq = 0;

  /** A reply path at `seq` 0 in a new epoch. */
  constructor(options: RepliesOptions) {
    this.#options = options;
    this.#observers = options.observers ?? [];
    this.#epoch = options.epoch ?? newEpoch(options.startedAt);
  }

  /** This run's epoch: a client resuming from another one missed a restart. */
  get epoch(): string {
    return this.#epoch;
  }

  /** The seq of the last reply delivered (0 before the first). */
  get latestSeq(): number {
    return this.#seq;
  }

  /**
   * Takes one message from the replies queue (an amqplib `ConsumeMessage`) all
   * the way; `seq` is its position when a history stream gave it one (its
   * offset plus one), else the next of this run.
   */
  receive(message: AmqpMessageLike, seq?: number): void {
    const { history, state, series, hub, metrics, introspection } = this.#options;
    // The answers to the gateway's own commands are its business: not counted, numbered, kept nor sent.
    if (introspection?.claim(message)) return;
    const decoded = decodeReply(message);
    metrics.reply(decoded.kind === "reply", message.properties.timestamp);
    if (decoded.kind === "dropped") {
      log.warn("dropped a reply on {routingKey}: {reason}", {
        routingKey: message.fields.routingKey,
        reason: decoded.reason,
      });
      return;
    }
    const { reply, meta } = decoded;
    const { headers } = reply;
    this.#seq = seq ?? this.#seq + 1;
    const v1 = v1ReplyFrame(this.#seq, reply.frame);
    const at = Date.now();
    // The state leaves out failed-routing replies (ours, other gateways', CLU clients'): see isFailedRouting.
    state.update(meta.sender, meta.code, reply.body);
    // The same body, parsed once: its numbers go to the plots' history, by the same rules as the state.
    series?.record(meta.sender, meta.code, reply.body, at);
    introspection?.seen(meta.sender, meta.code, reply.body);
    // Debug off (the usual case): no logger lookup, nothing built per reply.
    if (debugEnabled(log)) {
      log.debug("reply {seq} on {routingKey} to {clients} clients", {
        seq: this.#seq,
        routingKey: reply.routingKey,
        clients: hub.size,
      });
    }
    const frames = hub.deliver({ plain: reply.frame, v1, meta });
    // The history copies the frame's and the meta's bytes: it keeps none of these strings (nor the
    // broker's buffer), which die young once delivered. It keeps the v1 frame after its `{"seq":N,`
    // head, which is the CLU frame after its `{`: the bytes a socket was just sent, when one was.
    history.push(
      { seq: this.#seq, at, frame: v1, meta },
      historyTail(frames, v1.length - reply.frame.length + 1),
    );
    for (const observer of this.#observers) {
      observer.observe(headers.command_id, headers.commander_id, meta.code, reply.frame);
    }
  }
}
