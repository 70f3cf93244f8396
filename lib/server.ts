/**
 * The HTTP side: `Deno.serve` with a websocket upgrade on any path (old apps
 * reach the gateway through reverse-proxy paths), `/healthz`, and a short
 * text page elsewhere.
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

/** Options for {@linkcode startServer}. */
export interface ServerOptions {
  /** Address to listen on. */
  host: string;
  /** Port to listen on (0 picks one). */
  port: number;
  /** Seconds without traffic before a ping; the peer is dropped if no pong follows. */
  idleTimeoutSeconds?: number;
  /** Asked before each upgrade; a response refuses the client (e.g. 503 when full). */
  admit?: (request: Request, peer: string) => Response | undefined;
  /** Called with every upgraded socket (not yet open) and the peer address. */
  onSocket: (socket: WebSocket, peer: string) => void;
  /** The current health. */
  health: () => Health;
  /** Called once listening, with the bound address. */
  onListen: (address: { hostname: string; port: number }) => void;
}

/** Starts the HTTP/websocket server. */
export function startServer(options: ServerOptions): Deno.HttpServer<Deno.NetAddr> {
  function handler(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    const peer = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`;
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      const refusal = options.admit?.(request, peer);
      if (refusal) return refusal;
      try {
        // Deno pings after half the idle timeout and drops the peer if no pong follows.
        const { socket, response } = Deno.upgradeWebSocket(request, {
          idleTimeout: options.idleTimeoutSeconds ?? 40,
        });
        options.onSocket(socket, peer);
        return response;
      } catch (err) {
        log.info("refused a bad websocket upgrade from {peer}: {error}", {
          peer,
          error: err instanceof Error ? err.message : String(err),
        });
        return new Response("bad websocket upgrade request\n", { status: 400 });
      }
    }
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz") {
      const health = options.health();
      return Response.json(health.body, {
        status: health.status,
        headers: { "cache-control": "no-store" },
      });
    }
    if (pathname === "/") {
      return new Response(
        "clu-ws: connect a websocket to this address to receive CLU replies and send commands; GET /healthz for the gateway's state\n",
        { headers: { "content-type": "text/plain; charset=utf-8" } },
      );
    }
    return new Response("not found\n", { status: 404 });
  }

  return Deno.serve({
    hostname: options.host,
    port: options.port,
    onListen: options.onListen,
    onError(err) {
      log.error("HTTP handler failed: {error}", { error: err instanceof Error ? err.message : String(err) });
      return new Response("internal error\n", { status: 500 });
    },
  }, handler);
}
