/**
 * How a request presents a token, and the subprotocols it offers: a browser's
 * WebSocket can set neither headers nor a body, so a token also travels as a
 * `token.<value>` subprotocol or a `?token=` query parameter. Nothing here
 * checks a token; `tokens.ts` does.
 *
 * @module
 */

import { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX, V1_SUBPROTOCOL } from "../protocol/v1.ts";

// The subprotocol names are the wire protocol's (lib/protocol/v1.ts); re-exported for this folder.
export { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX, V1_SUBPROTOCOL };

/** The subprotocols a client offered, parsed (browsers join with ", ", Node's ws with ","). */
export function offeredProtocols(request: Request): string[] {
  const header = request.headers.get("sec-websocket-protocol");
  if (!header) return [];
  return header.split(",").map((p) => p.trim()).filter(Boolean);
}

/**
 * The token a client presented, as a browser can: a `token.<value>`
 * subprotocol among `protocols` (see {@linkcode offeredProtocols}; pass none
 * for plain HTTP), a `token` query parameter, or `Authorization: Bearer`, in
 * that order: the first one present is the one checked, even when it is wrong.
 */
export function presentedToken(request: Request, protocols: readonly string[]): string | undefined {
  const fromProtocol = protocols.find((p) =>
    p.startsWith(TOKEN_PROTOCOL_PREFIX) && p.length > TOKEN_PROTOCOL_PREFIX.length
  );
  if (fromProtocol) return fromProtocol.slice(TOKEN_PROTOCOL_PREFIX.length);
  const fromQuery = new URL(request.url).searchParams.get("token");
  if (fromQuery) return fromQuery;
  return bearerToken(request);
}

/**
 * The token of an `Authorization: Bearer <token>` header (scheme in any case,
 * the token trimmed), or undefined without one. The one bearer parser: client
 * tokens and the metrics token are read alike.
 */
export function bearerToken(request: Request): string | undefined {
  const authorization = request.headers.get("authorization");
  if (!authorization) return undefined;
  return /^Bearer\s+(.+)$/i.exec(authorization)?.[1].trim();
}
