/**
 * Unit tests for lib/access/credentials.ts: how a request presents a token.
 * tests/auth_test.ts covers offeredProtocols and the main presentedToken
 * cases; here the one bearer parser (which the metrics guard shares) and the
 * edges of the order subprotocol → query → bearer.
 */

import assert from "node:assert/strict";
import {
  bearerToken,
  offeredProtocols,
  presentedToken,
  SUBPROTOCOL,
  TOKEN_PROTOCOL_PREFIX,
  V1_SUBPROTOCOL,
} from "../lib/access/credentials.ts";

function request(query = "", headers: Record<string, string> = {}): Request {
  return new Request(`http://gw/${query}`, { headers });
}

/** What presentedToken finds in a websocket upgrade offering `protocols`. */
function fromUpgrade(
  protocols: string,
  query = "",
  headers: Record<string, string> = {},
): string | undefined {
  const req = request(query, { ...headers, "sec-websocket-protocol": protocols });
  return presentedToken(req, offeredProtocols(req));
}

Deno.test("credentials: the subprotocol names are the ones docs/protocol.md gives", () => {
  assert.equal(SUBPROTOCOL, "clu-ws");
  assert.equal(V1_SUBPROTOCOL, "clu-ws.v1");
  assert.equal(TOKEN_PROTOCOL_PREFIX, "token.");
});

Deno.test("credentials: bearerToken reads the scheme in any case and trims the token", () => {
  const bearer = (authorization: string) => bearerToken(request("", { authorization }));
  assert.equal(bearer("Bearer abc"), "abc");
  assert.equal(bearer("bearer abc"), "abc");
  assert.equal(bearer("BeArEr abc"), "abc");
  assert.equal(bearer("Bearer \t  abc  "), "abc");
  assert.equal(bearer("Bearer a b c"), "a b c", "inner spaces are part of the token");
  assert.equal(bearer("Bearer token.abc"), "token.abc");
});

Deno.test("credentials: bearerToken is undefined without a Bearer credential", () => {
  assert.equal(bearerToken(request()), undefined);
  for (const authorization of ["", "Bearer", "Bearer   ", "Bearerabc", "Basic dXNlcjpwdw==", "abc"]) {
    assert.equal(bearerToken(request("", { authorization })), undefined, JSON.stringify(authorization));
  }
  // Headers drop leading and trailing whitespace, so this arrives as "Bearer x".
  assert.equal(bearerToken(request("", { authorization: " Bearer x" })), "x");
});

Deno.test("credentials: bearerToken ignores the query and the subprotocols", () => {
  assert.equal(bearerToken(request("?token=q-secret")), undefined);
  assert.equal(
    bearerToken(request("", { "sec-websocket-protocol": "clu-ws, token.p-secret" })),
    undefined,
  );
});

Deno.test("credentials: a token subprotocol is taken after its prefix, and the first one wins", () => {
  assert.equal(fromUpgrade("clu-ws, token.abc"), "abc");
  assert.equal(fromUpgrade("token.a.b.c, clu-ws"), "a.b.c", "dots after the prefix are the token's");
  assert.equal(fromUpgrade("token.first, token.second"), "first");
  assert.equal(fromUpgrade("clu-ws.v1, token.abc"), "abc");
});

Deno.test("credentials: an empty or misspelled token subprotocol is no token", () => {
  assert.equal(fromUpgrade("clu-ws, token."), undefined);
  assert.equal(fromUpgrade("clu-ws, Token.abc"), undefined, "the prefix is case-sensitive");
  assert.equal(fromUpgrade("clu-ws, tokenabc"), undefined);
  // An empty one does not hide the next place a token may be.
  assert.equal(fromUpgrade("clu-ws, token.", "?token=q-secret"), "q-secret");
});

Deno.test("credentials: only the offered subprotocols passed in count (plain HTTP passes none)", () => {
  const req = request("", { "sec-websocket-protocol": "token.p-secret", authorization: "Bearer b-secret" });
  assert.equal(presentedToken(req, []), "b-secret");
});

Deno.test("credentials: an empty ?token= falls through to the bearer; the first token present is the one checked", () => {
  assert.equal(presentedToken(request("?token=", { authorization: "Bearer b-secret" }), []), "b-secret");
  assert.equal(presentedToken(request("?token=q&token=r"), []), "q", "the first query parameter");
  // A wrong token in an earlier place is not rescued by a right one later.
  assert.equal(fromUpgrade("token.wrong", "?token=right", { authorization: "Bearer right" }), "wrong");
  assert.equal(presentedToken(request("?token=wrong", { authorization: "Bearer right" }), []), "wrong");
});
