/**
 * A small CLU-style actor in TypeScript, for tests: consumes `<name>_commands`
 * bound to `command.<name>.#` and answers like a CLU actor does — `>` (internal,
 * empty body), data, then `:` (or `f`) to `reply.<commander_id>` — and can
 * publish broadcasts to `reply.broadcast`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { connectBroker } from "./broker.ts";
import { cluReplies } from "./actor_model.ts";

/** A command as the actor received it. */
export interface ReceivedCommand {
  /** The AMQP routing key. */
  routingKey: string;
  /** The AMQP headers. */
  headers: Record<string, unknown>;
  /** The AMQP properties that CLU sets. */
  correlationId?: string;
  /** Where replies should go. */
  replyTo?: string;
  /** Message id. */
  messageId?: string;
  /** Content type. */
  contentType?: string;
  /** The parsed body. */
  body: { command_string?: string };
}

/** A running test actor. */
export interface TestActor {
  /** The actor's name. */
  readonly name: string;
  /**
   * Every command received, in order, except the introspection commands
   * (`get-command-model`, `get_schema`, `help`), which go to `introspection`:
   * the gateway sends those by itself, and tests that count a client's
   * commands must not see them.
   */
  readonly received: ReceivedCommand[];
  /** The introspection commands received (`get-command-model`, `get_schema`, `help`), in order. */
  readonly introspection: ReceivedCommand[];
  /** Publishes a reply not tied to a command, to `reply.broadcast`. */
  broadcast(body: Record<string, unknown>, options?: { code?: string }): Promise<void>;
  /** Publishes raw content with given headers on `reply.<key>`; for odd-reply tests. */
  publishRaw(
    routingKey: string,
    content: string,
    properties: { headers?: Record<string, unknown>; correlationId?: string; timestamp?: number },
  ): Promise<void>;
  /** Stops consuming and closes the connection. */
  close(): Promise<void>;
}

async function reply(
  channel: ConfirmChannel,
  exchange: string,
  actor: string,
  command: ConsumeMessage,
  code: string,
  body: Record<string, unknown>,
  internal = false,
): Promise<void> {
  const headers = command.properties.headers ?? {};
  const commanderId = String(headers.commander_id);
  const commandId = headers.command_id;
  channel.publish(exchange, `reply.${commanderId}`, Buffer.from(JSON.stringify(body)), {
    contentType: "text/json",
    correlationId: command.properties.correlationId,
    timestamp: Math.floor(Date.now() / 1000),
    messageId: crypto.randomUUID().replaceAll("-", ""),
    headers: {
      command_id: commandId,
      commander_id: commanderId,
      internal,
      message_code: code,
      sender: actor,
    },
  });
  await channel.waitForConfirms();
}

/** The introspection commands, as CLU names them. */
const INTROSPECTION = new Set(["get-command-model", "get_schema", "help"]);

/** Options for {@linkcode startActor}. */
export interface ActorOptions {
  /**
   * How it answers the introspection commands: `clu` as a CLU actor with the
   * click parser does (see `actor_model.ts`); `fails` with `f`, as an actor
   * with another parser; `silent` not at all. Default `fails`.
   */
  introspection?: "clu" | "fails" | "silent";
  /** Characters of help text added to its command model (to test the gateway's size bound). */
  modelPadding?: number;
}

/**
 * Starts an actor named `name` on `exchange`. It understands `ping` (→ `i`
 * text, then `:` Pong.), `status` (→ keywords, then `:`), `fail` (→ `f`) and
 * answers anything else with `:` echoing the command string. With
 * `introspection: "clu"` it also answers `get-command-model`, `get_schema` and
 * `help` as a CLU click actor does, and a `move` or `lamps` command that does
 * not parse with `w` (click's message) then `f`, as CLU does.
 */
export async function startActor(
  exchange: string,
  name: string,
  options: ActorOptions = {},
): Promise<TestActor> {
  const mode = options.introspection ?? "fails";
  const connection: ChannelModel = await connectBroker();
  // A broker restart in a test kills this connection; that is expected, not a crash.
  connection.on("error", () => {});
  const channel = await connection.createConfirmChannel();
  channel.on("error", () => {});
  await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
  const queue = `${name}_commands`;
  await channel.assertQueue(queue, { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, exchange, `command.${name}.#`);
  const received: ReceivedCommand[] = [];
  const introspection: ReceivedCommand[] = [];
  await channel.consume(queue, (message) => {
    if (message) answer(message).catch(() => {/* the connection closed mid-reply */});
  });
  async function answer(message: ConsumeMessage): Promise<void> {
    channel.ack(message);
    const body = JSON.parse(message.content.toString());
    const text = String(body.command_string ?? "");
    const words = text.trim().split(/\s+/);
    const introspecting = INTROSPECTION.has(words[0]);
    (introspecting ? introspection : received).push({
      routingKey: message.fields.routingKey,
      headers: message.properties.headers ?? {},
      correlationId: message.properties.correlationId,
      replyTo: message.properties.replyTo,
      messageId: message.properties.messageId,
      contentType: message.properties.contentType,
      body,
    });
    if (introspecting && mode === "silent") return;
    const script = mode === "clu" ? cluReplies(name, text, options.modelPadding) : undefined;
    if (script) {
      for (const { code, body, internal } of script) {
        await reply(channel, exchange, name, message, code, body, internal);
      }
      return;
    }
    await reply(channel, exchange, name, message, ">", {}, true);
    if (introspecting) {
      await reply(channel, exchange, name, message, "f", {
        error: `Command '${text}' does not exist or cannot be parsed.`,
      });
    } else if (text === "ping") {
      await reply(channel, exchange, name, message, ":", { text: "Pong." });
    } else if (text === "status") {
      await reply(channel, exchange, name, message, "i", { temperature: 12.5, dome: "open" });
      await reply(channel, exchange, name, message, ":", {});
    } else if (text === "fail") {
      await reply(channel, exchange, name, message, "f", { error: "failed on purpose" });
    } else {
      await reply(channel, exchange, name, message, ":", { echo: text });
    }
  }
  return {
    name,
    received,
    introspection,
    async broadcast(body, { code = "i" } = {}) {
      channel.publish(exchange, "reply.broadcast", Buffer.from(JSON.stringify(body)), {
        contentType: "text/json",
        timestamp: Math.floor(Date.now() / 1000),
        messageId: crypto.randomUUID().replaceAll("-", ""),
        headers: { command_id: null, commander_id: null, internal: false, message_code: code, sender: name },
      });
      await channel.waitForConfirms();
    },
    async publishRaw(routingKey, content, properties) {
      channel.publish(exchange, routingKey, Buffer.from(content), {
        contentType: "text/json",
        messageId: crypto.randomUUID().replaceAll("-", ""),
        ...properties,
      });
      await channel.waitForConfirms();
    },
    async close() {
      await connection.close().catch(() => {});
    },
  };
}

/** An actor that takes commands off its queue and never answers. */
export interface SilentActor {
  readonly name: string;
  /** Correlation ids of the commands received, in order, except the introspection commands. */
  readonly received: string[];
  /** Correlation ids of the introspection commands received (`get-command-model`, …), in order. */
  readonly introspection: string[];
  close(): Promise<void>;
}

/** Starts an actor named `name` on `exchange` that receives commands and never answers them. */
export async function startSilentActor(exchange: string, name: string): Promise<SilentActor> {
  const connection: ChannelModel = await connectBroker();
  connection.on("error", () => {});
  const channel = await connection.createChannel();
  channel.on("error", () => {});
  await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
  const queue = `${name}_commands`;
  await channel.assertQueue(queue, { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, exchange, `command.${name}`);
  const received: string[] = [];
  const introspection: string[] = [];
  await channel.consume(queue, (message) => {
    if (!message) return;
    let text = "";
    try {
      text = String(JSON.parse(message.content.toString()).command_string ?? "");
    } catch {
      // Not JSON: a command all the same.
    }
    const list = INTROSPECTION.has(text.trim().split(/\s+/)[0]) ? introspection : received;
    list.push(String(message.properties.correlationId));
  }, { noAck: true });
  return {
    name,
    received,
    introspection,
    async close() {
      await connection.close().catch(() => {});
    },
  };
}

/**
 * Publishes, as `actor`, a reply to a command the gateway sent to `consumer`:
 * for tests that need a reply no test actor would send (an `F`, a `!`).
 */
export function publishReplyTo(
  actor: TestActor,
  gateway: { name: string },
  consumer: string,
  commandId: string,
  code: string,
  body: Record<string, unknown> = {},
): Promise<void> {
  return actor.publishRaw(`reply.${gateway.name}.${consumer}`, JSON.stringify(body), {
    headers: {
      command_id: commandId,
      commander_id: `${gateway.name}.${consumer}`,
      internal: false,
      message_code: code,
      sender: consumer,
    },
    correlationId: commandId,
    timestamp: Math.floor(Date.now() / 1000),
  });
}
