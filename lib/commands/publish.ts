/**
 * The command path after validation: publish a client's command exactly as a
 * CLU client does, and when the broker returns it (no actor bound), publish
 * CLU's failed-routing reply so that every listener sees the command fail.
 *
 * @module
 */

import type { BrokerLink } from "../broker/link.ts";
import {
  type ClientCommand,
  commandBody,
  commandHeaders,
  type GatewayIdentity,
  newMessageId,
  unroutableReply,
} from "../protocol/clu.ts";

/** How a command ended as far as the gateway can tell. */
export type CommandResult =
  /** The broker confirmed it and an actor's queue took it. */
  | { status: "published" }
  /** No actor is bound; `announced` says whether CLU's `f` reply went out on the exchange. */
  | { status: "unroutable"; announced: boolean }
  /** It was not (or maybe not) sent; `reason` says why, for the client. */
  | { status: "failed"; reason: string };

/** Publishes one command to `command.<consumer>` and reports how it ended. Never rejects. */
export async function sendCommand(
  broker: BrokerLink,
  identity: GatewayIdentity,
  command: ClientCommand,
): Promise<CommandResult> {
  const outcome = await broker.publish(`command.${command.consumer}`, commandBody(command), {
    headers: commandHeaders(identity, command),
    messageId: newMessageId(),
    correlationId: command.commandId,
    replyTo: `${identity.name}_replies`,
    mandatory: true,
  });
  if (!outcome.ok) return { status: "failed", reason: outcome.reason };
  if (!outcome.returned) return { status: "published" };
  const reply = unroutableReply(identity, command);
  const announced = await broker.publish(`reply.${identity.name}`, reply.body, {
    headers: reply.headers,
    messageId: newMessageId(),
    correlationId: command.commandId,
  });
  return { status: "unroutable", announced: announced.ok };
}
