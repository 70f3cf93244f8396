/**
 * The bridge between `node:http` and the gateway's web-standard handlers: a
 * `Request` whose body streams from the socket as the handler reads it (so a
 * handler that stops reading stops the bytes coming), and a `Response` written
 * back. Kept this small on purpose: every route stays testable as
 * `Request` → `Response`, and the transport can change under it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type http from "node:http";

/** How long a connection whose request body was left unread stays open after the answer (ms). */
const LINGER_MS = 2000;

/** Whether the handler stopped reading the body before its end. */
const unread = new WeakSet<http.IncomingMessage>();

/** The web `Request` for a node request; its body streams from the socket, paused while unread. */
export function requestFrom(req: http.IncomingMessage, scheme: "http" | "https"): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i], raw[i + 1]);
    } catch {
      // A header value fetch's Headers refuses (node's parser is laxer): the handlers never need it.
    }
  }
  let url: URL;
  try {
    url = new URL(req.url ?? "/", `${scheme}://${req.headers.host ?? "localhost"}`);
  } catch {
    url = new URL(req.url?.startsWith("/") ? req.url : "/", `${scheme}://localhost`);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD" && req.headers.upgrade === undefined;
  return new Request(url, {
    method,
    headers,
    ...(hasBody ? { body: bodyOf(req), duplex: "half" } : {}),
  } as RequestInit);
}

function bodyOf(req: http.IncomingMessage): ReadableStream<Uint8Array> {
  let ended = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      req.pause();
      req.on("data", (chunk: Buffer) => {
        if (ended) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        // Back-pressure: the socket is read only as fast as the handler reads the body.
        if ((controller.desiredSize ?? 0) <= 0) req.pause();
      });
      req.on("end", () => {
        if (ended) return;
        ended = true;
        controller.close();
      });
      req.on("error", (err: Error) => {
        if (ended) return;
        ended = true;
        controller.error(err);
      });
    },
    pull() {
      req.resume();
    },
    cancel() {
      ended = true;
      req.pause();
      unread.add(req);
    },
  }, { highWaterMark: 4 });
}

/**
 * Writes `response` to `res`. When the handler left part of the request body
 * unread, the connection is closed after the answer instead of reading (and
 * discarding) the rest, which could be any size.
 */
export async function writeResponse(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  response: Response,
): Promise<void> {
  const body = response.body === null ? undefined : Buffer.from(await response.arrayBuffer());
  if (res.destroyed) return;
  res.statusCode = response.status;
  response.headers.forEach((value, name) => res.setHeader(name, value));
  const abandoned = unread.has(req) || (!req.complete && req.method !== "GET" && req.method !== "HEAD");
  if (abandoned) {
    // Not "connection: close": node would then destroy the socket right after the answer, and closing
    // with unread bytes resets the connection, which can cost the client the answer. Instead end our
    // side, leave the rest unread (the peer's window fills and it stops sending), and cut a little later.
    res.once("finish", () => {
      req.socket.end();
      setTimeout(() => req.socket.destroy(), LINGER_MS);
    });
  }
  if (body) res.setHeader("content-length", body.length);
  res.end(req.method === "HEAD" ? undefined : body);
}
