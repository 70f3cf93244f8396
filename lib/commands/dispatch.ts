/**
 * One place where every command, from a websocket or from `POST /commands`,
 * is decided (shutting down, denied by a rule, over its rate) and, if allowed,
 * sent; each ends in exactly one outcome, logged and counted.
 *
 * @module
 */

import type { Access, Grant } from "../access/admission.ts";
import type { BrokerLink } from "../broker/link.ts";
import { sendCommand } from "./publish.ts";
import type { ClientCommand, GatewayIdentity } from "../protocol/clu.ts";
import { logger } from "../log.ts";
import type { CommandOutcome, Metrics } from "../http/metrics.ts";
import type { TokenBucket } from "./rate_limit.ts";

const log = logger("commands");

/** What dispatching needs from the gateway. */
export interface DispatchContext {
  /** The broker link. */
  broker: BrokerLink;
  /** The gateway's name and exchange. */
  identity: GatewayIdentity;
  /** Access rules. */
  access: Access;
  /** Counters. */
  metrics: Metrics;
  /** The rate limit's numbers, for the refusal message. */
  rate: { commandRate: number; commandBurst: number };
  /** Whether the gateway is stopping. */
  stopping(): boolean;
}

/** Who sent a command, for the rules and the log. */
export interface Sender {
  /** What admission granted (the token). */
  grant: Grant;
  /** Its command allowance; none for callers not rate-limited per connection. */
  allowance?: TokenBucket;
  /** For the log: the client id or "http". */
  client: number | string;
  /** For the log: the peer address. */
  peer: string;
}

/** How a command ended at the gateway. */
export interface Dispatched {
  /** The outcome. */
  outcome: CommandOutcome;
  /** Why it was not sent, for the sender. */
  reason?: string;
  /** For `unroutable`: whether CLU's `f` reply went out on the exchange. */
  announced?: boolean;
}

/** Decides and, if allowed, sends a command. Never rejects. */
export async function dispatch(
  context: DispatchContext,
  sender: Sender,
  command: ClientCommand,
): Promise<Dispatched> {
  context.metrics.commandReceived();
  const result = await decide(context, sender, command);
  context.metrics.command(result.outcome);
  const record = {
    commandId: command.commandId,
    consumer: command.consumer,
    client: sender.client,
    peer: sender.peer,
    token: context.access.tokenName(sender.grant),
    outcome: result.outcome,
    reason: result.reason,
  };
  if (result.outcome === "denied") {
    log.warn("command {commandId} to {consumer} from client {client}: {outcome} ({reason})", record);
  } else {
    log.info("command {commandId} to {consumer} from client {client}: {outcome}", record);
  }
  return result;
}

async function decide(context: DispatchContext, sender: Sender, command: ClientCommand): Promise<Dispatched> {
  if (context.stopping()) {
    return { outcome: "failed", reason: "clu-ws is shutting down; the command was not sent" };
  }
  const denial = context.access.commandDenial(sender.grant, command.consumer);
  if (denial) return { outcome: "denied", reason: denial };
  if (sender.allowance && !sender.allowance.take()) {
    const { commandRate, commandBurst } = context.rate;
    return {
      outcome: "rate_limited",
      reason:
        `rate limit exceeded: at most ${commandRate} commands a second (bursts of ${commandBurst}) per client; the command was not sent`,
    };
  }
  const result = await sendCommand(context.broker, context.identity, command);
  if (result.status === "failed") return { outcome: "failed", reason: result.reason };
  if (result.status === "unroutable") return { outcome: "unroutable", announced: result.announced };
  return { outcome: "published" };
}
