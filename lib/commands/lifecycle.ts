/**
 * One command's life, for websocket sessions and `POST /commands` alike:
 * decide (shutting down, the command rules, the sender's rate) → publish with
 * a confirm, exactly as a CLU client does → one outcome, logged and counted →
 * what the sender is told. The ledger follows it from publication to its end.
 *
 * **Never silence.** This module is where the guarantee lives: every command
 * is either confirmed by the broker (its replies then come back on the reply
 * path, and the ledger warns its sender if the link is lost before one ends
 * it) or its sender is told why not — refused, denied, over its rate,
 * unroutable, not confirmed, or failed unexpectedly — through {@linkcode Told}.
 * Each sender supplies only how to deliver that: a frame to a socket
 * ({@linkcode socketRecipient}), or an HTTP response (`http/api.ts`).
 *
 * @module
 */

import type { Grant } from "../access/admission.ts";
import type { PublishOutcome, PublishProperties } from "../broker/link.ts";
import {
  commandBody,
  commanderId,
  commandHeaders,
  failedRoutingText,
  type GatewayIdentity,
  gatewayReplyFrame,
  newMessageId,
  unroutableReply,
} from "../protocol/clu.ts";
import type { ClientCommand } from "../protocol/clu_input.ts";
import { logger } from "../log.ts";
import { encodeAccepted, encodeDone, encodePublished } from "../protocol/v1.ts";
import {
  type CommandEnd,
  type Ledger,
  type LedgerEntry,
  type LedgerListener,
  LINK_LOST_WARNING,
  type OpenOptions,
} from "./ledger.ts";
import type { TokenBucket } from "./rate_limit.ts";

/** How a command ended, as counted in `cluws_commands_total{outcome}`. */
export type CommandOutcome = "published" | "unroutable" | "failed" | "denied" | "rate_limited";

const log = logger("commands");

/** Seconds a tracked command may run when its sender gives no timeout. */
const DEFAULT_TRACK_TIMEOUT_SECONDS = 60;

/** What the lifecycle needs of the broker link: publish with a confirm (a fake in unit tests). */
export interface Publisher {
  /** Publishes with a confirm; never rejects. */
  publish(routingKey: string, content: string, properties: PublishProperties): Promise<PublishOutcome>;
}

/** What the lifecycle needs of access control. */
export interface CommandAccess {
  /** Why this grant may not command `actor`, or undefined. */
  commandDenial(grant: Grant, actor: string): string | undefined;
  /** The grant's token name, for the log. */
  tokenName(grant: Grant): string | undefined;
}

/** What the lifecycle counts. */
export interface CommandMetrics {
  /** A command was received. */
  commandReceived(): void;
  /** A command ended at the gateway with this outcome. */
  command(outcome: CommandOutcome): void;
}

/** Options for the {@linkcode CommandLifecycle} constructor. */
export interface LifecycleOptions {
  /** The broker link. */
  publisher: Publisher;
  /** The gateway's name and exchange. */
  identity: GatewayIdentity;
  /** The command rules. */
  access: CommandAccess;
  /** Counters. */
  metrics: CommandMetrics;
  /** The commands in flight. */
  ledger: Ledger;
  /** The rate limit's numbers, for the refusal message. */
  rate: { commandRate: number; commandBurst: number };
  /** Whether the gateway is stopping. */
  stopping(): boolean;
}

/** What a sender is told about its command, in order; see {@linkcode CommandLifecycle.run}. */
export type Told =
  /** Not sent: its id is taken by a tracked command, or the ledger is full. */
  | { kind: "refused"; reason: string }
  /** v1 `ack`: received, about to be decided. */
  | { kind: "accepted" }
  /** v1 `ack`: the broker confirmed it. */
  | { kind: "published" }
  /** It failed at the gateway; `sender` is the actor when CLU's failed-routing reply could not go out. */
  | { kind: "failed"; outcome: CommandOutcome; reason: string; sender?: string }
  /** The link was lost after the broker confirmed it: its replies may be lost. */
  | { kind: "lost" }
  /** A tracked command ended; `frames` are its replies when collected. */
  | { kind: "ended"; end: CommandEnd; frames: readonly string[] };

/** How a kind of sender is reached: one object for all websockets, one for all HTTP requests. */
export interface Recipient<T> {
  /** Delivers what `to` is told about `command`. */
  tell(to: T, command: ClientCommand, told: Told): void;
}

/** Who sent a command, and how to reach them. */
export interface Sender<T> {
  /** What admission granted (the token). */
  grant: Grant;
  /** Its command allowance; none for callers not rate-limited. */
  allowance?: TokenBucket;
  /** For the log: the client id or "http". */
  client: number | string;
  /** For the log: the peer address. */
  peer: string;
  /** The sender (a socket's client, a pending HTTP response). */
  to: T;
  /** How to reach it. */
  recipient: Recipient<T>;
}

/** Options for {@linkcode CommandLifecycle.run}. */
export interface RunOptions {
  /** Tell `accepted` and `published` (clu-ws v1 `ack`). */
  ack?: boolean;
  /** Report the end (v1 `track`, HTTP): within `timeoutSeconds`, collecting the replies if asked. */
  track?: { timeoutSeconds?: number; collect?: boolean };
  /** Warn the sender if the link is lost while the confirmed command runs (websockets). */
  warn?: boolean;
}

/** The frame a websocket sender gets for each {@linkcode Told}, built here and nowhere else. */
export function socketFrame(identity: GatewayIdentity, command: ClientCommand, told: Told): string {
  const { commandId, consumer } = command;
  switch (told.kind) {
    case "refused":
      return gatewayReplyFrame(identity, { code: "f", error: told.reason, commandId, consumer });
    case "failed":
      return gatewayReplyFrame(identity, {
        code: "f",
        error: told.reason,
        commandId,
        consumer,
        sender: told.sender,
      });
    case "lost":
      return gatewayReplyFrame(identity, {
        code: "w",
        body: { text: LINK_LOST_WARNING },
        commandId,
        consumer,
      });
    case "accepted":
      return encodeAccepted({ command_id: commandId, consumer });
    case "published":
      return encodePublished({ command_id: commandId });
    case "ended": {
      const { end } = told;
      return encodeDone({
        command_id: commandId,
        consumer,
        status: end.status,
        code: end.code,
        elapsed_ms: end.elapsedMs,
        ...(end.error ? { error: end.error } : {}),
      });
    }
  }
}

/** Where frames reach a socket: the hub's `send`. */
export interface FrameSink<T> {
  /** Sends one frame to one client. */
  send(to: T, frame: string): void;
}

/** The recipient for websocket senders: each {@linkcode Told} as its {@linkcode socketFrame}, through `sink`. */
export function socketRecipient<T>(identity: GatewayIdentity, sink: FrameSink<T>): Recipient<T> {
  return { tell: (to, command, told) => sink.send(to, socketFrame(identity, command, told)) };
}

/** A command's listener in the ledger: passes its end and a lost link on to its sender. */
class Running<T> implements LedgerListener {
  constructor(readonly sender: Sender<T>, readonly command: ClientCommand) {}

  ended(end: CommandEnd, frames: readonly string[]): void {
    tell(this.sender, this.command, { kind: "ended", end, frames });
  }

  lost(): void {
    tell(this.sender, this.command, { kind: "lost" });
  }
}

/** Tells a sender, never letting a failing delivery break the lifecycle or the ledger's loops. */
function tell<T>(sender: Sender<T>, command: ClientCommand, told: Told): void {
  try {
    sender.recipient.tell(sender.to, command, told);
  } catch (err) {
    log.error("could not tell client {client} about command {commandId}: {error}", {
      client: sender.client,
      commandId: command.commandId,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

/** What a sender is told when the gateway itself failed (a bug): the log has the stack. */
const UNEXPECTED = "clu-ws failed to send the command; see its log";

function logUnexpected(command: ClientCommand, err: unknown): void {
  log.error("command {commandId} failed unexpectedly: {error}", {
    commandId: command.commandId,
    error: err instanceof Error ? err.stack ?? err.message : String(err),
  });
}

/** How a command ended at the gateway, before the sender is told. */
type Decided =
  | { outcome: "published" }
  | { outcome: "unroutable"; announced: boolean }
  | { outcome: "failed" | "denied" | "rate_limited"; reason: string };

/** Decides, publishes and ends every command; tells each sender what became of it. */
export class CommandLifecycle {
  readonly #options: LifecycleOptions;

  /** A lifecycle over one broker link and one ledger. */
  constructor(options: LifecycleOptions) {
    this.#options = options;
  }

  /**
   * Runs one validated command to its outcome. The sender is told, in order:
   * `refused` (and nothing more), or `accepted` (if `ack`), then `published`
   * (if `ack`) or `failed`, and later `ended` (if tracked) and `lost` (if
   * `warn` and the link is lost while it runs). Never rejects.
   */
  async run<T>(command: ClientCommand, sender: Sender<T>, options: RunOptions = {}): Promise<void> {
    try {
      await this.#run(command, sender, options);
    } catch (err) {
      logUnexpected(command, err);
      tell(sender, command, { kind: "failed", outcome: "failed", reason: UNEXPECTED });
    }
  }

  async #run<T>(command: ClientCommand, sender: Sender<T>, options: RunOptions): Promise<void> {
    const { ledger, identity } = this.#options;
    const opening: OpenOptions = {
      commanderId: commanderId(identity, command.consumer),
      listener: new Running(sender, command),
      warn: options.warn,
    };
    let entry: LedgerEntry | undefined;
    if (options.track) {
      const timeoutSeconds = options.track.timeoutSeconds ?? DEFAULT_TRACK_TIMEOUT_SECONDS;
      const track = { timeoutMs: timeoutSeconds * 1000, collect: options.track.collect };
      const opened = ledger.open(command.commandId, { ...opening, track });
      if (typeof opened === "string") return tell(sender, command, { kind: "refused", reason: opened });
      entry = opened;
    }
    if (options.ack) tell(sender, command, { kind: "accepted" });
    this.#options.metrics.commandReceived();
    let decided = this.#refusal(command, sender);
    if (decided === undefined) {
      if (!entry && options.warn) {
        // Untracked commands enter the ledger only as they are published; if a tracked command
        // holds the id, this one is sent all the same, without a link-loss warning.
        const opened = ledger.open(command.commandId, opening);
        if (typeof opened !== "string") entry = opened;
      }
      decided = await this.#publish(command);
    }
    this.#options.metrics.command(decided.outcome);
    this.#log(command, sender, decided);
    if (decided.outcome === "published") {
      if (entry) ledger.confirm(entry);
      if (options.ack) tell(sender, command, { kind: "published" });
    } else if (decided.outcome !== "unroutable") {
      tell(sender, command, { kind: "failed", outcome: decided.outcome, reason: decided.reason });
      if (entry) ledger.fail(entry, decided.reason);
    } else if (!decided.announced) {
      // CLU's own `f` reply could not go out on the exchange: only this sender can be told.
      const reason = failedRoutingText(command.consumer);
      tell(sender, command, {
        kind: "failed",
        outcome: "unroutable",
        reason,
        sender: command.consumer,
      });
      if (entry) ledger.fail(entry, reason);
    }
    // Unroutable and announced: CLU's `f` reply comes back on the reply path and ends the entry.
  }

  /** Why the command is not to be published (stopping, a rule, the rate), or undefined. */
  #refusal<T>(command: ClientCommand, sender: Sender<T>): Decided | undefined {
    const { access, rate } = this.#options;
    if (this.#options.stopping()) {
      return { outcome: "failed", reason: "clu-ws is shutting down; the command was not sent" };
    }
    const denial = access.commandDenial(sender.grant, command.consumer);
    if (denial) return { outcome: "denied", reason: denial };
    if (sender.allowance && !sender.allowance.take()) {
      return {
        outcome: "rate_limited",
        reason:
          `rate limit exceeded: at most ${rate.commandRate} commands a second (bursts of ${rate.commandBurst}) per client; the command was not sent`,
      };
    }
    return undefined;
  }

  /** {@linkcode CommandLifecycle.#publishAsClu}, with a throw turned into a failed command. */
  async #publish(command: ClientCommand): Promise<Decided> {
    try {
      return await this.#publishAsClu(command);
    } catch (err) {
      logUnexpected(command, err);
      return { outcome: "failed", reason: UNEXPECTED };
    }
  }

  /** Publishes to `command.<consumer>`; when the broker returns it, publishes CLU's failed-routing reply. */
  async #publishAsClu(command: ClientCommand): Promise<Decided> {
    const { publisher, identity } = this.#options;
    const outcome = await publisher.publish(`command.${command.consumer}`, commandBody(command), {
      headers: commandHeaders(identity, command),
      messageId: newMessageId(),
      correlationId: command.commandId,
      replyTo: `${identity.name}_replies`,
      mandatory: true,
    });
    if (!outcome.ok) return { outcome: "failed", reason: outcome.reason };
    if (!outcome.returned) return { outcome: "published" };
    const reply = unroutableReply(identity, command);
    const announced = await publisher.publish(`reply.${identity.name}`, reply.body, {
      headers: reply.headers,
      messageId: newMessageId(),
      correlationId: command.commandId,
    });
    return { outcome: "unroutable", announced: announced.ok };
  }

  #log<T>(command: ClientCommand, sender: Sender<T>, decided: Decided): void {
    const record = {
      commandId: command.commandId,
      consumer: command.consumer,
      client: sender.client,
      peer: sender.peer,
      token: this.#options.access.tokenName(sender.grant),
      outcome: decided.outcome,
      reason: "reason" in decided ? decided.reason : undefined,
    };
    if (decided.outcome === "denied") {
      log.warn("command {commandId} to {consumer} from client {client}: {outcome} ({reason})", record);
    } else {
      log.info("command {commandId} to {consumer} from client {client}: {outcome}", record);
    }
  }
}
