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

import { Access, type Grant } from "./access.ts";
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
import { type CommandOutcome, Metrics } from "./metrics.ts";
import { type Admission, startServer } from "./server.ts";
import { VERSION } from "./version.ts";

const log = logger("gateway");

/** Close code sent to clients when the gateway stops (RFC 6455 "going away"). */
export const CLOSE_GOING_AWAY = 1001;

/** Close code for a client frame over the size limit (RFC 6455 "message too big"). */
export const CLOSE_TOO_BIG = 1009;

/** A running gateway. */
export interface Gateway {
  /** The port the websocket server listens on. */
  readonly port: number;
  /** Stops accepting, answers commands in flight, closes clients (1001) and the broker link. */
  stop(): Promise<void>;
  /** Re-reads the tokens file (SIGHUP). */
  reloadTokens(): Promise<void>;
}

/** Starts serving clients at once and connects to RabbitMQ in the background. */
export async function startGateway(config: Config): Promise<Gateway> {
  const identity: GatewayIdentity = { name: config.name, exchange: config.exchange };
  const { limits } = config;
  const access = new Access(config.access);
  await access.load();
  const hub = new Hub<Grant>({
    bufferBytes: limits.clientBufferBytes,
    policy: limits.slowClient,
    commandRate: limits.commandRate,
    commandBurst: limits.commandBurst,
    droppedNotice: (dropped) =>
      gatewayReplyFrame(identity, {
        code: "w",
        body: {
          text: `clu-ws skipped ${dropped} frames because this client fell behind (over ${
            describeBytes(limits.clientBufferBytes)
          } waiting)`,
          dropped_frames: dropped,
        },
      }),
    onSlowClose(client, buffered) {
      log.warn("closed client {client} from {peer}: too slow ({buffered} bytes waiting, limit {limit})", {
        client: client.id,
        peer: client.peer,
        buffered,
        limit: limits.clientBufferBytes,
      });
    },
    onCaughtUp(client, dropped) {
      log.warn("client {client} from {peer} caught up after {dropped} frames were skipped", {
        client: client.id,
        peer: client.peer,
        dropped,
      });
    },
  });
  const startedAt = Date.now();
  let stopping = false;

  const broker = new BrokerLink({
    broker: config.broker,
    exchange: config.exchange,
    name: config.name,
    onReply(message) {
      const reply = encodeReply(message);
      metrics.reply(reply.kind === "reply", message.properties.timestamp);
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

  const metrics = new Metrics({
    clients: () => hub.size,
    framesSent: () => hub.framesSent,
    bytesSent: () => hub.bytesSent,
    slowCloses: () => hub.slowCloses,
    framesSkipped: () => hub.framesDropped,
    reconnects: () => broker.reconnects,
    linkUp: () => broker.state === "up" ? 1 : 0,
    blocked: () => broker.blockedReason === undefined ? 0 : 1,
  });

  function answer(client: Client<Grant>, command: ClientCommand, reason: string): void {
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

  /** Decides and, if allowed, sends a command; every path ends in one outcome. */
  async function decide(
    client: Client<Grant>,
    command: ClientCommand,
  ): Promise<{ outcome: CommandOutcome; reason?: string; announced?: boolean }> {
    if (stopping) return { outcome: "failed", reason: "clu-ws is shutting down; the command was not sent" };
    const denial = access.commandDenial(client.grant, command.consumer);
    if (denial) return { outcome: "denied", reason: denial };
    if (!client.allowance.take()) {
      return {
        outcome: "rate_limited",
        reason:
          `rate limit exceeded: at most ${limits.commandRate} commands a second (bursts of ${limits.commandBurst}) per client; the command was not sent`,
      };
    }
    const result = await sendCommand(broker, identity, command);
    if (result.status === "failed") return { outcome: "failed", reason: result.reason };
    if (result.status === "unroutable") return { outcome: "unroutable", announced: result.announced };
    return { outcome: "published" };
  }

  async function runCommand(client: Client<Grant>, command: ClientCommand): Promise<void> {
    client.commandsSent++;
    metrics.commandReceived();
    const { outcome, reason, announced } = await decide(client, command);
    metrics.command(outcome);
    const record = {
      commandId: command.commandId,
      consumer: command.consumer,
      client: client.id,
      peer: client.peer,
      token: client.grant.token?.name,
      outcome,
      reason,
    };
    if (outcome === "denied") {
      log.warn("command {commandId} to {consumer} from client {client}: {outcome} ({reason})", record);
    } else {
      log.info("command {commandId} to {consumer} from client {client}: {outcome}", record);
    }
    if (reason !== undefined) {
      answer(client, command, reason);
    } else if (outcome === "unroutable" && !announced) {
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

  function onClientMessage(client: Client<Grant>, data: unknown): void {
    const size = typeof data === "string" ? textBytes(data, limits.maxMessageBytes) : byteLength(data);
    if (size > limits.maxMessageBytes) {
      client.badFrames++;
      log.warn("closed client {client} from {peer}: sent {size} bytes in one frame, limit {limit}", {
        client: client.id,
        peer: client.peer,
        size,
        limit: limits.maxMessageBytes,
      });
      hub.remove(client);
      client.socket.close(CLOSE_TOO_BIG, `message too big: limit ${describeBytes(limits.maxMessageBytes)}`);
      return;
    }
    if (typeof data !== "string") {
      client.badFrames++;
      hub.send(
        client,
        gatewayReplyFrame(identity, {
          code: "e",
          error:
            'binary frames are not supported; send a JSON text frame {"consumer": "<actor>", "command_string": "<command>"}',
        }),
      );
      log.debug("client {client} ({peer}) sent a binary frame", { client: client.id, peer: client.peer });
      return;
    }
    const parsed = parseClientCommand(data);
    if (parsed.kind === "error") {
      client.badFrames++;
      hub.send(
        client,
        gatewayReplyFrame(identity, {
          code: parsed.commandId === undefined ? "e" : "f",
          error: parsed.error,
          commandId: parsed.commandId,
          consumer: parsed.consumer,
        }),
      );
      log.debug("client {client} ({peer}) sent bad input: {error}", {
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

  let sockets = 0;
  let allClosed: PromiseWithResolvers<void> | undefined;
  function admit(request: Request, peer: string): Promise<Admission<Grant> | Response> | Response {
    if (stopping) return new Response("clu-ws is shutting down\n", { status: 503 });
    if (sockets < limits.maxClients) return access.admit(request, peer);
    log.warn("refused a client from {peer}: {clients} clients connected, the limit (--max-clients)", {
      peer,
      clients: sockets,
    });
    return new Response(
      `clu-ws is serving its maximum of ${limits.maxClients} clients (--max-clients); try again later\n`,
      { status: 503, headers: { "retry-after": "5" } },
    );
  }

  function onSocket(socket: WebSocket, peer: string, grant: Grant): void {
    let client: Client<Grant> | undefined;
    sockets++;
    socket.onopen = () => {
      client = hub.add(socket, peer, grant);
      log.info("client {client} connected from {peer} with token {token} ({clients} connected)", {
        client: client.id,
        peer,
        token: grant.token?.name ?? "(none)",
        clients: hub.size,
      });
    };
    socket.onmessage = (event) => {
      if (client) onClientMessage(client, event.data);
    };
    socket.onclose = (event) => {
      sockets--;
      if (sockets === 0) allClosed?.resolve();
      if (!client) return;
      hub.remove(client);
      log.info(
        "client {client} from {peer} ({token}) disconnected ({code}) after {seconds} s: {frames} frames sent, {commands} commands, {bad} bad frames ({clients} connected)",
        {
          client: client.id,
          peer,
          token: client.grant.token?.name ?? "no token",
          code: event.code,
          seconds: ((Date.now() - client.connectedAt) / 1000).toFixed(1),
          frames: client.framesSent,
          commands: client.commandsSent,
          bad: client.badFrames,
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
    tls: config.tls,
    idleTimeoutSeconds: limits.idleTimeoutSeconds,
    admit,
    onSocket,
    guardOps: (request) => access.guardOps(request),
    async metrics() {
      return { text: await metrics.render(), contentType: metrics.contentType };
    },
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
      log.info("clu-ws {version} listening on {scheme}://{host}:{port}/ as {name}", {
        version: VERSION,
        scheme: config.tls ? "wss" : "ws",
        host: hostname.includes(":") ? `[${hostname}]` : hostname,
        port,
        name: config.name,
      });
      listening(port);
    },
  });
  const port = await boundPort;
  if (!access.usesTokens && !isLoopback(config.host)) {
    log.warn(
      "no access tokens: anyone who reaches port {port} can watch and command every actor; set --tokens-file (or --read-only)",
      { port },
    );
  }
  await broker.start();

  return {
    port,
    reloadTokens: () => access.reload(),
    async stop() {
      if (stopping) return;
      stopping = true;
      log.info("stopping: answering commands in flight, closing clients and the RabbitMQ link");
      await broker.close({ graceMs: 1000 });
      allClosed = Promise.withResolvers<void>();
      if (sockets === 0) allClosed.resolve();
      hub.closeAll(CLOSE_GOING_AWAY, "clu-ws is shutting down");
      // Our close frames first: shutting the server down closes what is left with its own reason.
      await settleWithin(allClosed.promise, 300);
      await settleWithin(server.shutdown(), 200);
      metrics.close();
      log.info("stopped");
    },
  };
}

const textEncoder = new TextEncoder();

/** UTF-8 size of `text`, computed only when it could exceed `limit`. */
function textBytes(text: string, limit: number): number {
  return text.length * 3 <= limit ? text.length : textEncoder.encode(text).length;
}

function byteLength(data: unknown): number {
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  if (data instanceof Blob) return data.size;
  return 0;
}

function describeBytes(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / 1024 / 1024} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
