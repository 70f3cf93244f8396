/**
 * The composition root: wires the broker link, the frame codec, the client
 * hub, sessions, tracking, history, actor state and the HTTP server into one
 * gateway with a start and a stop.
 *
 * Reply path: broker → {@linkcode encodeReply} (once) → history, state and
 * tracker → hub → every socket that wants it, in its dialect.
 * Command path: socket or `POST /commands` → validation → rules → broker
 * (confirmed) → on any failure an `f` frame to the sender. Never silence.
 *
 * @module
 */

import { Access, type Grant } from "./access/admission.ts";
import { ActorState } from "./replies/actor_state.ts";
import { BrokerLink } from "./broker/link.ts";
import type { Config } from "./config/config.ts";
import { settleWithin } from "./broker/deadline.ts";
import { CommandLifecycle } from "./commands/lifecycle.ts";
import { encodeReply, type GatewayIdentity, gatewayReplyFrame } from "./protocol/clu.ts";
import { History } from "./replies/history.ts";
import { handleApi, HttpAllowances } from "./http/api.ts";
import { Hub } from "./clients/hub.ts";
import { logger } from "./log.ts";
import { Metrics } from "./http/metrics.ts";
import { type Admission, startServer } from "./http/server.ts";
import { describeBytes, Sessions, V1_PROTOCOL } from "./clients/sessions.ts";
import { Ledger } from "./commands/ledger.ts";
import { staticFile } from "./http/static.ts";
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
  /**
   * Re-reads the tokens file (SIGHUP): closes the sockets of tokens it no longer
   * holds; changed roles and actor lists apply to the next command. Reloads run
   * one at a time, the last file read wins, and a bad file changes nothing.
   */
  reloadTokens(): Promise<void>;
  /** Resolves if the listener ended for good (the process should exit non-zero to be restarted). */
  readonly failed: Promise<Error>;
}

/** Starts serving clients at once and connects to RabbitMQ in the background. */
export async function startGateway(config: Config): Promise<Gateway> {
  const identity: GatewayIdentity = { name: config.name, exchange: config.exchange };
  const { limits } = config;
  const access = new Access(config.access);
  await access.load();
  const startedAt = Date.now();
  const epoch = `${startedAt.toString(36)}-${crypto.randomUUID().slice(0, 4)}`;
  let seq = 0;
  let stopping = false;

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
  const history = new History({
    maxEntries: limits.historySize,
    maxAgeSeconds: limits.historyAgeSeconds,
    maxBytes: limits.historyBytes,
  });
  const state = new ActorState();
  const ledger = new Ledger();

  const broker = new BrokerLink({
    brokers: config.brokers,
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
      const { headers } = reply;
      const meta = {
        sender: typeof headers.sender === "string" ? headers.sender : "",
        code: String(headers.message_code),
        routingKey: reply.routingKey,
        commandId: typeof headers.command_id === "string" ? headers.command_id : undefined,
      };
      seq++;
      const v1 = `{"seq":${seq},${reply.frame.slice(1)}`;
      // The history copies the frame's and the meta's bytes: it keeps none of these strings (nor the
      // broker's buffer), which die young once delivered.
      history.push({ seq, at: Date.now(), frame: v1, meta });
      // The state leaves out failed-routing replies (ours, other gateways', CLU clients'): see isFailedRouting.
      state.update(meta.sender, meta.code, reply.body);
      // Lazy properties: when debug is off (the usual case) nothing is built per reply.
      log.debug("reply {seq} on {routingKey} to {clients} clients", () => ({
        seq,
        routingKey: reply.routingKey,
        clients: hub.size,
      }));
      hub.deliver({ plain: reply.frame, v1, meta });
      ledger.observe(headers.command_id, headers.commander_id, meta.code, reply.frame);
    },
    onStateChange(linkState) {
      if (linkState === "down") {
        // Replies to running commands came back through the queue that just died with the link.
        ledger.lost();
      }
      hub.broadcastV1(JSON.stringify({ "clu-ws": "broker", state: linkState }));
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
    node: () => broker.node,
  });

  const commands = new CommandLifecycle({
    publisher: broker,
    identity,
    access,
    metrics,
    ledger,
    rate: { commandRate: limits.commandRate, commandBurst: limits.commandBurst },
    stopping: () => stopping,
  });
  const sessions = new Sessions({
    identity,
    access,
    commands,
    hub,
    history,
    state,
    limits,
    epoch,
    latestSeq: () => seq,
    brokerState: () => broker.state,
  });

  // Removed tokens lose their sockets here; changed roles and actor lists need nothing more,
  // as every command looks its token up in the tokens in force.
  access.onReload(() => sessions.closeRevoked());

  const httpAllowances = new HttpAllowances(limits.commandRate, limits.commandBurst);

  function admit(request: Request, peer: string): Promise<Admission<Grant> | Response> | Response {
    if (stopping) return new Response("clu-ws is shutting down\n", { status: 503 });
    if (sessions.count < limits.maxClients) return access.admit(request, peer);
    log.warn("refused a client from {peer}: {clients} clients connected, the limit (--max-clients)", {
      peer,
      clients: sessions.count,
    });
    return new Response(
      `clu-ws is serving its maximum of ${limits.maxClients} clients (--max-clients); try again later\n`,
      { status: 503, headers: { "retry-after": "5" } },
    );
  }

  let listening: (port: number) => void;
  const boundPort = new Promise<number>((resolve) => listening = resolve);
  const server = await startServer<Grant>({
    host: config.host,
    port: config.port,
    tls: config.tls,
    headerTimeoutSeconds: limits.headerTimeoutSeconds,
    maxPending: limits.maxPending,
    maxMessageBytes: limits.maxMessageBytes,
    tooBigReason: `message too big: limit ${describeBytes(limits.maxMessageBytes)}`,
    admit,
    onSocket(socket, peer, grant, protocol) {
      sessions.attach(socket, peer, grant, { v1: protocol === V1_PROTOCOL });
    },
    routes: async (request, peer) =>
      staticFile(request) ?? await handleApi(
        {
          commands,
          brokerState: () => broker.state,
          state,
          authorize: (r) => access.authorizeHttp(r, peer),
          allowances: httpAllowances,
        },
        request,
        peer,
      ),
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
          node: broker.node ?? null,
          blocked: broker.blockedReason ?? null,
          uptime_s: Math.round((Date.now() - startedAt) / 1000),
          clients: hub.size,
          version: VERSION,
          name: config.name,
          exchange: config.exchange,
          epoch,
          seq,
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
  warnIfOpen(config, access.usesTokens, port);
  warnIfTooFewDescriptors(limits.maxClients + limits.maxPending);
  await broker.start();

  return {
    port,
    failed: server.failed,
    reloadTokens: () => access.reload(),
    async stop() {
      if (stopping) return;
      stopping = true;
      log.info("stopping: answering commands in flight, closing clients and the RabbitMQ link");
      await broker.close({ graceMs: 1000 });
      ledger.failAll("clu-ws is shutting down");
      const allClosed = sessions.allClosed();
      sessions.closeAll(CLOSE_GOING_AWAY, "clu-ws is shutting down");
      // Our close frames first: shutting the server down closes what is left with its own reason.
      await settleWithin(allClosed, 300);
      await settleWithin(server.shutdown(), 200);
      metrics.close();
      log.info("stopped");
    },
  };
}

/**
 * Says once, at warn level, who can reach the actors without a token: anyone
 * who reaches the port (when it is not loopback), and any web page a user
 * opens, through that user's browser, on the same machine too (the browser is
 * the one that connects), unless origins are restricted or commands refused.
 */
function warnIfOpen(config: Config, usesTokens: boolean, port: number): void {
  if (usesTokens) return;
  const exposed = !isLoopback(config.host);
  const byWebPages = !config.access.readOnly && config.access.allowOrigins.length === 0;
  if (exposed && byWebPages) {
    log.warn(
      "no access tokens: anyone who reaches port {port} can watch and command every actor, and so can any web page a user opens, through that user's browser (websocket and POST /commands); set --tokens-file, and --allow-origin or --public-url to refuse other web pages",
      { port },
    );
  } else if (exposed) {
    log.warn(
      "no access tokens: anyone who reaches port {port} can watch {what} every actor; set --tokens-file",
      { port, what: config.access.readOnly ? "(but not command)" : "and command" },
    );
  } else if (byWebPages) {
    log.warn(
      "no access tokens and no --allow-origin: any web page a user of this machine opens can command every actor through that user's browser and port {port} (websocket and POST /commands); set --allow-origin or --public-url to refuse other web pages, or --tokens-file",
      { port },
    );
  }
}

/** Descriptors the process holds besides its clients (runtime, broker link, listener), with a margin. */
const FIXED_DESCRIPTORS = 64;

/** Warns when the open-files limit cannot hold `connections` clients and pending connections. */
function warnIfTooFewDescriptors(connections: number): void {
  let limit: number;
  try {
    const line = /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
    if (!line) return;
    limit = Number(line[1]);
  } catch {
    return; // Not Linux, or /proc hidden: nothing to check against.
  }
  if (limit >= connections + FIXED_DESCRIPTORS) return;
  log.warn(
    "the open-files limit ({limit}) allows about {clients} connections, fewer than --max-clients plus --max-pending ({connections}); raise it (LimitNOFILE= in the systemd unit, ulimit -n) or lower those options",
    { limit, clients: Math.max(0, limit - FIXED_DESCRIPTORS), connections },
  );
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
