/**
 * The HTTP side: `Deno.serve` (TLS when configured) with a websocket upgrade
 * on any path (old apps reach the gateway through reverse-proxy paths),
 * `/healthz`, `/metrics`, and the caller's routes (the console, the API). Whether a client may
 * connect is asked of the caller's `admit` before the upgrade, so a refusal is
 * a plain HTTP answer (401, 403, 503) that any client can show.
 *
 * @module
 */

import { logger } from "./log.ts";

const log = logger("server");

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
  /** Seconds without traffic before a ping; the peer is dropped if no pong follows. */
  idleTimeoutSeconds?: number;
  /** Decides on each upgrade: an admission, or the HTTP response that refuses it. */
  admit: (request: Request, peer: string) => Promise<Admission<T> | Response> | Admission<T> | Response;
  /** Called with every upgraded socket (not yet open), the peer address, the grant and the subprotocol. */
  onSocket: (socket: WebSocket, peer: string, grant: T, protocol: string | undefined) => void;
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

/** Starts the HTTP/websocket server. */
export function startServer<T>(options: ServerOptions<T>): Deno.HttpServer<Deno.NetAddr> {
  async function upgrade(request: Request, peer: string): Promise<Response> {
    const admission = await options.admit(request, peer);
    if (admission instanceof Response) return admission;
    try {
      // Deno pings after half the idle timeout and drops the peer if no pong follows.
      const { socket, response } = Deno.upgradeWebSocket(request, {
        idleTimeout: options.idleTimeoutSeconds ?? 40,
        ...(admission.protocol ? { protocol: admission.protocol } : {}),
      });
      options.onSocket(socket, peer, admission.grant, admission.protocol);
      return response;
    } catch (err) {
      log.info("refused a bad websocket upgrade from {peer}: {error}", {
        peer,
        error: err instanceof Error ? err.message : String(err),
      });
      return new Response("bad websocket upgrade request\n", { status: 400 });
    }
  }

  async function handler(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> {
    const peer = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`;
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") return await upgrade(request, peer);
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

  return Deno.serve({
    hostname: options.host,
    port: options.port,
    ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
    onListen: options.onListen,
    onError(err) {
      log.error("HTTP handler failed: {error}", { error: err instanceof Error ? err.message : String(err) });
      return new Response("internal error\n", { status: 500 });
    },
  }, handler);
}
