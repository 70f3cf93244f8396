/**
 * The HTTP side: `node:http` (or `node:https` with TLS) on one port, with a
 * websocket upgrade (`npm:ws`) on any path (old apps reach the gateway through
 * reverse-proxy paths), `/healthz`, `/metrics`, and the caller's routes (the
 * console, the API) as web-standard `Request` → `Response` handlers. Whether a
 * client may connect is asked of the caller's `admit` before the upgrade, so a
 * refusal is a plain HTTP answer (401, 403, 503) that any client can show.
 *
 * Hostile or broken peers are bounded here: a request head must arrive within
 * the header timeout (408), connections not upgraded to websockets are capped,
 * and a watchdog re-opens the listener when running out of file descriptors
 * has stopped it (under Deno 2.9 `node:http` stops accepting on EMFILE without
 * an `error` or `close` event); if it cannot, {@linkcode GatewayServer.failed}
 * settles so the process can exit for its supervisor to restart it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import http from "node:http";
import https from "node:https";
import process from "node:process";
import type net from "node:net";
import type { Duplex } from "node:stream";
// @ts-types="npm:@types/ws@8.18.2"
import { WebSocket, WebSocketServer } from "ws";
import { requestFrom, writeResponse } from "./adapter.ts";
import { listen, ListenerWatchdog, WARN_EVERY_MS } from "./listener_watchdog.ts";
import { logger } from "../log.ts";

const log = logger("server");

/** A client's websocket, as the server hands it over (already open). */
export type ServerSocket = WebSocket;

/** What `/healthz` answers: HTTP status and JSON body. */
export interface Health {
  /** 200 when the broker link is up, 503 otherwise. */
  status: number;
  /** The JSON body. */
  body: Record<string, unknown>;
}

/** An accepted upgrade: which subprotocol to answer and what to attach to the socket. */
export interface Admission<T> {
  /** The subprotocol to answer (one the client offered), if any. */
  protocol?: string;
  /** Whatever the caller wants back with the socket (e.g. the client's token). */
  grant: T;
}

/** Options for {@linkcode startServer}. */
export interface ServerOptions<T> {
  /** Address to listen on. */
  host: string;
  /** Port to listen on (0 picks one). */
  port: number;
  /** PEM certificate and key: serve https:// and wss://. */
  tls?: { cert: string; key: string };
  /** Seconds a client has to send a request's head (and body); then 408 or a close. */
  headerTimeoutSeconds: number;
  /** Connections at once that are not websockets (yet); more are closed on arrival. */
  maxPending: number;
  /** Largest frame a websocket client may send; larger closes it with 1009 while it arrives. */
  maxMessageBytes: number;
  /** The close reason sent with 1009. */
  tooBigReason: string;
  /** Decides on each upgrade: an admission, or the HTTP response that refuses it. */
  admit: (request: Request, peer: string) => Promise<Admission<T> | Response> | Admission<T> | Response;
  /** Called with every upgraded (open) socket, the peer address, the grant and the subprotocol. */
  onSocket: (socket: ServerSocket, peer: string, grant: T, protocol: string | undefined) => void;
  /** Application routes (plain HTTP): a response, or undefined to fall through. */
  routes?: (request: Request, peer: string) => Promise<Response | undefined>;
  /** Refuses a request for `/healthz` or `/metrics`, or undefined to serve it. */
  guardOps?: (request: Request) => Response | undefined;
  /** The current health. */
  health: () => Health;
  /** Prometheus text and its content type. */
  metrics: () => Promise<{ text: string; contentType: string }>;
  /** Called once listening, with the bound address. */
  onListen: (address: { hostname: string; port: number }) => void;
}

/** A running server. */
export interface GatewayServer {
  /** Stops accepting and closes every connection left. */
  shutdown(): Promise<void>;
  /** Resolves with the reason if the listener ended for good and could not be reopened. */
  readonly failed: Promise<Error>;
  /** Connections open now that are not websockets. */
  readonly pending: number;
}

/** Starts the HTTP/websocket server; resolves once it listens. */
export async function startServer<T>(options: ServerOptions<T>): Promise<GatewayServer> {
  const headerTimeoutMs = options.headerTimeoutSeconds * 1000;
  const serverOptions: http.ServerOptions = {
    headersTimeout: headerTimeoutMs,
    requestTimeout: headerTimeoutMs,
    // The timeouts are enforced by a periodic sweep (30 s by default): sweep often enough to keep them.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, headerTimeoutMs / 4)),
    keepAliveTimeout: 5000,
  };
  if (options.tls) checkTls(options.tls);
  const server = options.tls
    ? https.createServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key })
    : http.createServer(serverOptions);
  const scheme = options.tls ? "https" : "http";
  const chosen = new WeakMap<http.IncomingMessage, string | undefined>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes,
    perMessageDeflate: false,
    clientTracking: false,
    // ws refuses an offer list it cannot parse with 400; the choice itself was made by `admit`.
    handleProtocols: (_offered: Set<string>, request: http.IncomingMessage) => chosen.get(request) ?? false,
    WebSocket: GatewaySocket,
  });
  GatewaySocket.tooBigReason = options.tooBigReason;

  /** Every TCP connection (under TLS, the raw socket beneath): websockets and the rest. */
  const connections = new Set<net.Socket>();
  /** How many of them are websockets; the others are pending (HTTP, keep-alive, handshakes). */
  let websockets = 0;
  const pending = () => connections.size - websockets;
  let lastPendingWarning = 0;
  const watchdog = new ListenerWatchdog(server, { host: options.host, pending });

  server.on("connection", (socket: net.Socket) => {
    watchdog.accepted(socket);
    if (pending() >= options.maxPending) {
      if (Date.now() - lastPendingWarning > WARN_EVERY_MS) {
        lastPendingWarning = Date.now();
        log.warn(
          "closing new connections: {pending} connections have not become websockets, the limit (--max-pending)",
          { pending: pending() },
        );
      }
      socket.destroy();
      return;
    }
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
  });
  server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
    // Node answers a header timeout with 408 itself only when no listener is attached; keep that.
    if (socket.writable && (err.code === "ERR_HTTP_REQUEST_TIMEOUT" || err.code === "HPE_HEADER_OVERFLOW")) {
      const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : 408;
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
    } else if (socket.writable && err.code?.startsWith("HPE_")) {
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    } else {
      socket.destroy();
    }
    log.debug("dropped a bad or slow HTTP client: {error}", { error: err.code ?? err.message });
  });

  async function serveHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const peer = peerOf(req.socket);
    const request = requestFrom(req, scheme);
    let response: Response;
    try {
      response = await route(request, peer);
    } catch (err) {
      log.error("HTTP handler failed: {error}", { error: err instanceof Error ? err.message : String(err) });
      response = new Response("internal error\n", { status: 500 });
    }
    await writeResponse(req, res, response);
  }

  async function route(request: Request, peer: string): Promise<Response> {
    const routed = await options.routes?.(request, peer);
    if (routed) return routed;
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz" || pathname === "/metrics") {
      const refusal = options.guardOps?.(request);
      if (refusal) return refusal;
      if (pathname === "/healthz") {
        const health = options.health();
        return Response.json(health.body, {
          status: health.status,
          headers: { "cache-control": "no-store" },
        });
      }
      const { text, contentType } = await options.metrics();
      return new Response(text, { headers: { "content-type": contentType } });
    }
    return new Response("not found\n", { status: 404 });
  }

  async function upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => {}); // A peer that resets mid-handshake is no error of ours.
    const peer = peerOf(socket as net.Socket);
    if (req.headers.upgrade?.toLowerCase() !== "websocket") {
      return refuse(socket, new Response("only websocket upgrades are served\n", { status: 400 }));
    }
    let admission: Admission<T> | Response;
    try {
      admission = await options.admit(requestFrom(req, scheme), peer);
    } catch (err) {
      log.error("admission failed: {error}", { error: err instanceof Error ? err.message : String(err) });
      admission = new Response("internal error\n", { status: 500 });
    }
    if (admission instanceof Response) return refuse(socket, admission);
    if (socket.destroyed) return;
    chosen.set(req, admission.protocol);
    const { grant, protocol } = admission;
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      stopReadingOnError(ws);
      websockets++;
      ws.once("close", () => websockets--);
      options.onSocket(ws, peer, grant, protocol);
    });
  }

  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    serveHttp(req, res).catch((err) => {
      log.error("HTTP response failed: {error}", { error: err instanceof Error ? err.message : String(err) });
      res.destroy();
    });
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrade(req, socket, head).catch((err) => {
      log.error("websocket upgrade failed: {error}", {
        error: err instanceof Error ? err.message : String(err),
      });
      socket.destroy();
    });
  });

  const address = await listen(server, options.host, options.port);
  options.onListen({ hostname: address.address, port: address.port });
  // An accept error surfacing as an event (not seen under Deno 2.9, which stops silently): logged,
  // never thrown; the watchdog notices whether the listener still accepts.
  server.on("error", (err: Error & { code?: string }) => {
    log.error("the listener reported an error: {error}", { error: err.code ?? err.message });
  });
  watchdog.start(address.port);

  return {
    failed: watchdog.failed,
    get pending() {
      return pending();
    },
    async shutdown() {
      watchdog.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of connections) socket.destroy();
      await closed;
    },
  };
}

/** A `ws` socket whose 1009 close (a frame over `maxPayload`) says what the limit is. */
class GatewaySocket extends WebSocket {
  static tooBigReason = "message too big";

  // @ts-ignore: ws's own close, with the same signature.
  override close(code?: number, reason?: string | Buffer): void {
    super.close(code, code === 1009 && !reason ? GatewaySocket.tooBigReason : reason);
  }
}

/** A websocket's socket as `ws` holds it: under TLS, Deno's TLS handle keeps the TCP handle it reads from. */
type RawSocket = Duplex & { _handle?: { _nativeTcpHandle?: { readStop?(): unknown } } | null };

/** After a refused frame's close frame and FIN are written: time for them to reach the peer before the reset. */
const REFUSED_LINGER_MS = 250;
/** At most this long from a refused frame to the end of its connection, close frame flushed or not. */
const REFUSED_GRACE_MS = 2000;

/**
 * Stops reading from a peer whose frame `ws` refused (over `maxPayload`: 1009; invalid UTF-8: 1007;
 * a protocol error: 1002) and ends the connection soon after the close frame is out.
 *
 * On such an error `ws` writes its close frame, removes its `data` listener and then *resumes* the
 * socket (`process.nextTick(resume, socket)` in `receiverOnError`), so the socket flows with nobody
 * listening: the rest of the peer's frame (a 48 MiB one: all of it but the first chunk) is read from
 * the kernel into fresh buffers and dropped, until the peer stops sending or ws's close timer (30 s)
 * destroys the socket; the dropped buffers are external memory that V8 frees only at its next
 * collection, so the RSS grew by about 50 MiB for a 48 MiB frame. Pausing the socket (after ws's
 * resume, hence the tick) leaves what the peer still sends in the kernel, and the connection is
 * destroyed a moment after the close frame and FIN are written (sooner would reset the connection
 * before a slow network has carried the close frame, as unread data makes the kernel send RST) or,
 * when they cannot be written (a peer that does not read either), after a bounded grace.
 *
 * Under TLS, Deno 2.9's TLS handle reads its TCP handle natively whatever the JavaScript side's
 * pause says (the peer's 48 MiB were read and kept: +88 MiB), so that TCP handle is stopped too. It
 * is a private field, looked up defensively: tests/big_frame_test.ts says when a Deno upgrade moves it.
 */
function stopReadingOnError(ws: WebSocket): void {
  ws.once("error", () => {
    const socket = (ws as unknown as { _socket?: RawSocket | null })._socket;
    const stop = () => {
      ws.pause();
      // Under TLS, pausing stops what reaches JavaScript but not the native reads beneath: those too.
      socket?._handle?._nativeTcpHandle?.readStop?.();
    };
    process.nextTick(stop);
    // Whatever resumes it later (ws's `resume` schedules the stream's own resume a tick on): paused again.
    socket?.on("resume", stop);
    const end = () => ws.terminate();
    let timer = setTimeout(end, REFUSED_GRACE_MS);
    ws.once("close", () => clearTimeout(timer));
    // ws calls `end()` on the socket once its close frame is written; "finish" follows the flush.
    socket?.once("finish", () => {
      clearTimeout(timer);
      timer = setTimeout(end, REFUSED_LINGER_MS);
    });
  });
}

/** Writes a refusal as a plain HTTP answer on the upgrade socket and closes it. */
async function refuse(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const lines = [`HTTP/1.1 ${response.status} ${http.STATUS_CODES[response.status] ?? ""}`];
  response.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "connection") lines.push(`${name}: ${value}`);
  });
  lines.push(`content-length: ${body.length}`, "connection: close", "", "");
  if (!socket.writable) return;
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n")), body]));
}

/**
 * Throws when the certificate and key are not a usable PEM pair: `node:https` under Deno accepts
 * anything at start and then fails every handshake, so the pair is tried on a throwaway listener.
 */
function checkTls(tls: { cert: string; key: string }): void {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key });
  listener.close();
}

function peerOf(socket: net.Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}
