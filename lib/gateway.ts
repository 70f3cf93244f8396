/**
 * The composition root: wires the broker link, the frame codec, the client
 * hub and the HTTP server into one gateway with a start and a stop.
 *
 * Reply path: broker → {@linkcode encodeReply} (once) → hub → every socket.
 * Command path: socket → {@linkcode parseClientCommand} → broker (confirmed)
 * → on any failure a reply-shaped `f` frame to the sender. Never silence.
 *
 * @module
 */

import { BrokerLink, type LinkState } from "./broker.ts";
import { sendCommand } from "./commands.ts";
import type { Config } from "./config.ts";
import {
  type ClientCommand,
  encodeReply,
  type GatewayIdentity,
  gatewayReplyFrame,
  parseClientCommand,
} from "./frames.ts";
import { type Client, Hub } from "./hub.ts";
import { settleWithin } from "./deadline.ts";
import { logger } from "./log.ts";
import { startServer } from "./server.ts";
import { VERSION } from "./version.ts";

const log = logger("gateway");

/** Close code sent to clients when the gateway stops (RFC 6455 "going away"). */
export const CLOSE_GOING_AWAY = 1001;

/** A running gateway. */
export interface Gateway {
  /** The port the websocket server listens on. */
  readonly port: number;
  /** Stops accepting, answers commands in flight, closes clients (1001) and the broker link. */
  stop(): Promise<void>;
}

/** Starts serving clients at once and connects to RabbitMQ in the background. */
export async function startGateway(config: Config): Promise<Gateway> {
  const identity: GatewayIdentity = { name: config.name, exchange: config.exchange };
  const hub = new Hub();
  const startedAt = Date.now();
  let stopping = false;

  const broker = new BrokerLink({
    broker: config.broker,
    exchange: config.exchange,
    name: config.name,
    onReply(message) {
      const reply = encodeReply(message);
      if (reply.kind === "dropped") {
        log.warn("dropped a reply on {routingKey}: {reason}", {
          routingKey: message.fields.routingKey,
          reason: reply.reason,
        });
        return;
      }
      log.debug("reply on {routingKey} to {clients} clients", {
        routingKey: reply.routingKey,
        clients: hub.size,
      });
      hub.broadcast(reply.frame);
    },
    onStateChange(state: LinkState) {
      log.debug("broker link state {state}", { state });
    },
  });

  function answer(client: Client, command: ClientCommand, reason: string): void {
    hub.send(
      client,
      gatewayReplyFrame(identity, {
        code: "f",
        error: reason,
        commandId: command.commandId,
        consumer: command.consumer,
      }),
    );
  }

  async function runCommand(client: Client, command: ClientCommand): Promise<void> {
    if (stopping) {
      answer(client, command, "clu-ws is shutting down; the command was not sent");
      return;
    }
    const result = await sendCommand(broker, identity, command);
    log.info("command {commandId} to {consumer} from client {client}: {outcome}", {
      commandId: command.commandId,
      consumer: command.consumer,
      client: client.id,
      outcome: result.status === "failed" ? `failed (${result.reason})` : result.status,
    });
    if (result.status === "failed") {
      answer(client, command, result.reason);
    } else if (result.status === "unroutable" && !result.announced) {
      hub.send(
        client,
        gatewayReplyFrame(identity, {
          code: "f",
          error: `Failed routing message to consumer '${command.consumer}'.`,
          commandId: command.commandId,
          consumer: command.consumer,
          sender: command.consumer,
        }),
      );
    }
  }

  function onClientMessage(client: Client, data: unknown): void {
    if (typeof data !== "string") {
      hub.send(
        client,
        gatewayReplyFrame(identity, {
          code: "e",
          error:
            'binary frames are not supported; send a JSON text frame {"consumer": "<actor>", "command_string": "<command>"}',
        }),
      );
      log.info("client {client} ({peer}) sent a binary frame", { client: client.id, peer: client.peer });
      return;
    }
    const parsed = parseClientCommand(data);
    if (parsed.kind === "error") {
      hub.send(
        client,
        gatewayReplyFrame(identity, {
          code: parsed.commandId === undefined ? "e" : "f",
          error: parsed.error,
          commandId: parsed.commandId,
          consumer: parsed.consumer,
        }),
      );
      log.info("client {client} ({peer}) sent bad input: {error}", {
        client: client.id,
        peer: client.peer,
        error: parsed.error,
      });
      return;
    }
    runCommand(client, parsed).catch((err) => {
      log.error("command {commandId} failed unexpectedly: {error}", {
        commandId: parsed.commandId,
        error: err instanceof Error ? err.message : String(err),
      });
      answer(client, parsed, "clu-ws failed to send the command; see its log");
    });
  }

  function onSocket(socket: WebSocket, peer: string): void {
    let client: Client | undefined;
    socket.onopen = () => {
      client = hub.add(socket, peer);
      log.info("client {client} connected from {peer} ({clients} connected)", {
        client: client.id,
        peer,
        clients: hub.size,
      });
    };
    socket.onmessage = (event) => {
      if (client) onClientMessage(client, event.data);
    };
    socket.onclose = (event) => {
      if (!client) return;
      hub.remove(client);
      log.info(
        "client {client} from {peer} disconnected ({code}) after {seconds} s, {frames} frames sent ({clients} connected)",
        {
          client: client.id,
          peer,
          code: event.code,
          seconds: ((Date.now() - client.connectedAt) / 1000).toFixed(1),
          frames: client.framesSent,
          clients: hub.size,
        },
      );
    };
    socket.onerror = () => {
      // Followed by a close event, which does the bookkeeping.
    };
  }

  let listening: (port: number) => void;
  const boundPort = new Promise<number>((resolve) => listening = resolve);
  const server = startServer({
    host: config.host,
    port: config.port,
    onSocket,
    health() {
      const up = broker.state === "up";
      return {
        status: up ? 200 : 503,
        body: {
          status: up ? "ok" : "broker link down",
          broker: broker.state,
          blocked: broker.blockedReason ?? null,
          uptime_s: Math.round((Date.now() - startedAt) / 1000),
          clients: hub.size,
          version: VERSION,
          name: config.name,
          exchange: config.exchange,
        },
      };
    },
    onListen({ hostname, port }) {
      log.info("clu-ws {version} listening on ws://{host}:{port}/ as {name}", {
        version: VERSION,
        host: hostname.includes(":") ? `[${hostname}]` : hostname,
        port,
        name: config.name,
      });
      listening(port);
    },
  });
  const port = await boundPort;
  await broker.start();

  return {
    port,
    async stop() {
      if (stopping) return;
      stopping = true;
      log.info("stopping: answering commands in flight, closing clients and the RabbitMQ link");
      await broker.close({ graceMs: 1000 });
      hub.closeAll(CLOSE_GOING_AWAY, "clu-ws is shutting down");
      await settleWithin(server.shutdown(), 300);
      log.info("stopped");
    },
  };
}
