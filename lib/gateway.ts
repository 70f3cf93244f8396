/**
 * The composition root, wiring only: builds the broker link, the reply path
 * (`replies/replies.ts`), the client hub and sessions, the command lifecycle and its ledger
 * and the HTTP server, connects them, and starts and stops them in order.
 *
 * @module
 */

import { Access, type Grant } from "./access/admission.ts";
import { ActorState } from "./replies/actor_state.ts";
import { BrokerLink, type LinkState } from "./broker/link.ts";
import { GatewayEvents, type OnGatewayEvent } from "./gateway_events.ts";
import type { Config } from "./config/config.ts";
import { settleWithin } from "./broker/deadline.ts";
import { CommandLifecycle } from "./commands/lifecycle.ts";
import type { GatewayIdentity } from "./protocol/clu.ts";
import { healthReport } from "./http/health.ts";
import { History } from "./replies/history.ts";
import { KeywordSeries } from "./replies/keyword_series.ts";
import { handleApi, HttpAllowances } from "./http/api.ts";
import { Hub } from "./clients/hub.ts";
import { slowClientOptions } from "./clients/slow_clients.ts";
import { flushLogs, logger } from "./log.ts";
import { Metrics } from "./http/metrics.ts";
import { type Admission, startServer } from "./http/server.ts";
import { describeBytes, Sessions } from "./clients/sessions.ts";
import { encodeBroker, V1_SUBPROTOCOL } from "./protocol/v1.ts";
import { Ledger } from "./commands/ledger.ts";
import { staticFile } from "./http/static.ts";
import { Replies } from "./replies/replies.ts";
import { Introspector } from "./introspection/introspector.ts";
import { streamEpoch, StreamHistory } from "./replies/stream_history.ts";
import { logListening, warnAtStartup } from "./startup_log.ts";

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
  /** The RabbitMQ link's state now. */
  readonly brokerState: LinkState;
  /** Websocket clients connected now. */
  readonly clients: number;
  /** Listens to `broker` (link state) and `clients` (client count) changes; returns the unsubscribe function. */
  readonly on: OnGatewayEvent;
}

/**
 * Starts serving clients at once and connects to RabbitMQ in the background;
 * the CLI (`main.ts`) and embedding programs (`mod.ts`) both start here.
 */
export async function runGateway(config: Config): Promise<Gateway> {
  for (const warning of config.warnings) log.warn(warning);
  const events = new GatewayEvents();
  const identity: GatewayIdentity = { name: config.name, exchange: config.exchange };
  const { limits } = config;
  const access = new Access(config.access);
  await access.load();
  const startedAt = Date.now();
  let stopping = false;

  const hub = new Hub<Grant>({
    ...slowClientOptions(identity, limits),
    onSizeChange: (count) => events.emit("clients", count),
  });
  // With a history stream, nothing is kept here: resumes read the stream.
  const history = new History({
    maxEntries: config.stream ? 0 : limits.historySize,
    maxAgeSeconds: limits.historyAgeSeconds,
    maxBytes: limits.historyBytes,
  });
  const state = new ActorState();
  const series = new KeywordSeries({
    maxPoints: limits.seriesPoints,
    maxAgeSeconds: limits.seriesAgeSeconds,
    maxSeries: limits.seriesCount,
  });
  const ledger = new Ledger();

  const fatal = Promise.withResolvers<Error>();
  const streamConfig = config.stream;
  const broker = new BrokerLink({
    brokers: config.brokers,
    exchange: config.exchange,
    name: config.name,
    onReply: (message, offset) =>
      offset === undefined ? replies.receive(message) : streamHistory!.live(message, offset),
    stream: streamConfig && {
      config: streamConfig,
      from: (): number | undefined => streamHistory!.from(),
      onMarker: (offset) => streamHistory!.marker(offset),
      onRestart: (offset: number) => streamHistory!.restart(offset),
    },
    onFatal: (error) => fatal.resolve(error),
    onStateChange(linkState) {
      streamHistory?.linkChanged();
      if (linkState === "down") {
        // Replies to running commands came back through the queue that just died with the link.
        ledger.lost();
        introspection.linkLost();
      }
      hub.broadcastV1(encodeBroker(linkState));
      events.emit("broker", linkState);
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

  const introspection = new Introspector({
    enabled: config.introspection.enabled,
    publisher: broker,
    identity,
    // The gateway asks only what its own rules let it command; it has no token, so no client's rule applies.
    denial: (actor) => access.commandDenial({}, actor),
    timeoutMs: config.introspection.timeoutSeconds * 1000,
    maxAnswerBytes: config.introspection.maxAnswerBytes,
    cacheBytes: config.introspection.cacheBytes,
  });
  const replies = new Replies({
    history,
    state,
    series,
    hub,
    metrics,
    observers: [ledger],
    introspection,
    startedAt,
    epoch: streamConfig && streamEpoch(streamConfig.name),
  });
  const streamHistory: StreamHistory<Grant> | undefined = streamConfig &&
    new StreamHistory<Grant>({
      config: streamConfig,
      hub,
      replies,
      source: {
        get up() {
          return broker.state === "up";
        },
        readStream: (offset, prefetch, events) => broker.readStream(offset, prefetch, events),
        appendMarker: () => broker.appendMarker(),
      },
    });
  const latestSeq = () => streamHistory ? streamHistory.latestSeq : replies.latestSeq;

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
    series,
    limits,
    epoch: replies.epoch,
    latestSeq,
    resumer: streamHistory,
    positionKnown: streamHistory && (() => streamHistory.positionKnown()),
    brokerState: () => broker.state,
    describe: (actor) => introspection.describeJson(actor),
  });

  // Removed tokens lose their sockets here; changed roles and actor lists need nothing more,
  // as every command looks its token up in the tokens in force.
  access.onReload(() => sessions.closeRevoked());

  const api = {
    commands,
    brokerState: () => broker.state,
    state,
    series,
    allowances: new HttpAllowances(limits.commandRate, limits.commandBurst),
    describe: (actor: string) => introspection.describe(actor),
  };

  function admit(request: Request, peer: string): Promise<Admission<Grant> | Response> | Response {
    if (stopping) return new Response("clu-ws is shutting down\n", { status: 503 });
    return sessions.refuseWhenFull(peer) ?? access.admit(request, peer);
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
      sessions.attach(socket, peer, grant, { v1: protocol === V1_SUBPROTOCOL });
    },
    routes: async (request, peer) =>
      staticFile(request) ??
        await handleApi({ ...api, authorize: (r) => access.authorizeHttp(r, peer) }, request, peer),
    guardOps: (request) => access.guardOps(request),
    async metrics() {
      return { text: await metrics.render(), contentType: metrics.contentType };
    },
    health: () =>
      healthReport({
        broker,
        replies: { epoch: replies.epoch, latestSeq: latestSeq() },
        identity,
        clients: hub.size,
        startedAt,
      }),
    onListen(address) {
      logListening(config, address);
      listening(address.port);
    },
  });
  const port = await boundPort;
  warnAtStartup(config, { port, usesTokens: access.usesTokens });
  await broker.start();

  return {
    port,
    // A history stream that cannot be used as configured stops the gateway: retrying cannot help.
    failed: Promise.race([server.failed, fatal.promise]),
    get brokerState() {
      return broker.state;
    },
    get clients() {
      return hub.size;
    },
    on: events.on,
    reloadTokens: () => access.reload(),
    async stop() {
      if (stopping) return;
      stopping = true;
      log.info("stopping: answering commands in flight, closing clients and the RabbitMQ link");
      introspection.stop();
      await broker.close({ graceMs: 1000 });
      ledger.failAll("clu-ws is shutting down");
      const allClosed = sessions.allClosed();
      sessions.closeAll(CLOSE_GOING_AWAY, "clu-ws is shutting down");
      // Our close frames first: shutting the server down closes what is left with its own reason.
      await settleWithin(allClosed, 300);
      await settleWithin(server.shutdown(), 200);
      metrics.close();
      log.info("stopped");
      flushLogs();
    },
  };
}
