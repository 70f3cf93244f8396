/**
 * Access control at the door and on every command: browser origin, access
 * token (from a file reloaded on SIGHUP, or the environment), and the command
 * rules. Refusals are HTTP answers before the upgrade; denied commands get a
 * reason naming the rule.
 *
 * @module
 */

import {
  authenticate,
  offeredProtocols,
  parseTokens,
  presentedToken,
  SUBPROTOCOL,
  type TokenEntry,
  TokensError,
  type TokenSet,
} from "./auth.ts";
import type { AccessConfig } from "./config.ts";
import { logger } from "./log.ts";
import { commandDenial, type CommandRules, commandRules, originAllowed } from "./policy.ts";
import type { Admission } from "./server.ts";

const log = logger("access");

/** The subprotocol that opts a connection into clu-ws v1 (docs/protocol.md). */
export const V1_SUBPROTOCOL = "clu-ws.v1";

/** What an admitted client carries: its token, when the gateway uses tokens. */
export interface Grant {
  /** The client's token entry, or undefined on an open gateway. */
  token?: TokenEntry;
}

/** The gateway's access rules. */
export class Access {
  readonly #config: AccessConfig;
  readonly #rules: CommandRules;
  #tokens: TokenSet | undefined;

  /** Rules from the configuration; call {@linkcode Access.load} before use. */
  constructor(config: AccessConfig) {
    this.#config = config;
    this.#rules = commandRules({
      readOnly: config.readOnly,
      allow: config.allowActors,
      deny: config.denyActors,
    });
  }

  /** Whether clients need a token. */
  get usesTokens(): boolean {
    return this.#tokens !== undefined;
  }

  /**
   * Reads the tokens (file or document).
   *
   * @throws {TokensError} when they cannot be used; the gateway must not start open by mistake.
   */
  async load(): Promise<void> {
    const { tokensFile, tokensText } = this.#config;
    if (tokensFile) {
      this.#tokens = await parseTokens(await readTokensFile(tokensFile), tokensFile);
    } else if (tokensText) {
      this.#tokens = await parseTokens(tokensText.text, tokensText.source);
    }
    for (const warning of this.#tokens?.warnings ?? []) log.warn(warning);
    if (this.#tokens) log.info("{count} access tokens loaded", { count: this.#tokens.entries.length });
  }

  /** Re-reads the tokens file (SIGHUP); on any error the tokens in use stay. */
  async reload(): Promise<void> {
    if (!this.#config.tokensFile) {
      log.info("SIGHUP: no --tokens-file to reload");
      return;
    }
    try {
      await this.load();
    } catch (err) {
      log.error("SIGHUP: kept the tokens in use; {error}", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** Admits or refuses an upgrade: origin first (403), then the token (401). */
  async admit(request: Request, peer: string): Promise<Admission<Grant> | Response> {
    const refusedOrigin = this.#originRefusal(request, peer);
    if (refusedOrigin) return refusedOrigin;
    const protocols = offeredProtocols(request);
    // A browser fails the connection unless one of its offered subprotocols is answered.
    const protocol = protocols.find((p) => p === V1_SUBPROTOCOL) ??
      protocols.find((p) => p === SUBPROTOCOL) ??
      protocols[0];
    if (!this.#tokens) return { protocol, grant: {} };
    const presented = presentedToken(request, protocols);
    const token = presented === undefined ? undefined : await authenticate(this.#tokens, presented);
    if (!token) {
      log.warn("refused a client from {peer}: {why}", {
        peer,
        why: presented === undefined ? "no token" : "unknown token",
      });
      return new Response(
        'a valid token is required: offer the subprotocols ["clu-ws", "token.<token>"], add ?token=<token>, or send Authorization: Bearer <token>\n',
        { status: 401, headers: { "www-authenticate": 'Bearer realm="clu-ws"' } },
      );
    }
    return { protocol, grant: { token } };
  }

  /**
   * Authenticates a plain HTTP request (`Authorization: Bearer` or `?token=`),
   * or refuses it: 403 from a browser origin that is not allowed, 401 without a valid token.
   */
  async authorizeHttp(request: Request, peer: string): Promise<Grant | Response> {
    const refusedOrigin = this.#originRefusal(request, peer);
    if (refusedOrigin) return refusedOrigin;
    if (!this.#tokens) return {};
    const presented = presentedToken(request, []);
    const token = presented === undefined ? undefined : await authenticate(this.#tokens, presented);
    if (token) return { token };
    log.warn("refused an HTTP request from {peer}: {why}", {
      peer,
      why: presented ? "unknown token" : "no token",
    });
    return new Response(
      JSON.stringify({ error: "a valid token is required: Authorization: Bearer <token>" }),
      {
        status: 401,
        headers: { "content-type": "application/json", "www-authenticate": 'Bearer realm="clu-ws"' },
      },
    );
  }

  /**
   * A 403 for a browser request from an origin that is not allowed
   * (`--allow-origin`, `--public-url`); see {@linkcode originAllowed} for why
   * the `Host` header alone never vouches for a DNS name.
   */
  #originRefusal(request: Request, peer: string): Response | undefined {
    const allowed = this.#config.allowOrigins;
    const host = request.headers.get("host");
    let origin = request.headers.get("origin");
    if (origin === null) {
      // Browsers send no Origin on a same-origin GET, so a DNS rebinding page's fetch("/actors") would
      // pass as a script. Sec-Fetch-Site, which the browser sets and no page can, gives it away; the
      // page's origin is then the Host it sent, with either scheme.
      if (allowed.length === 0 || request.headers.get("sec-fetch-site") !== "same-origin") return undefined;
      if (host !== null && ["http:", "https:"].some((s) => originAllowed(`${s}//${host}`, host, allowed))) {
        return undefined;
      }
      origin = `http(s)://${host}`;
    } else if (originAllowed(origin, host, allowed)) {
      return undefined;
    }
    log.warn("refused a client from {peer}: origin {origin} is not allowed (--allow-origin, --public-url)", {
      peer,
      origin,
    });
    return new Response(
      `origin ${origin} is not allowed to connect: list it with --allow-origin, or give the address ` +
        "browsers use to open this gateway with --public-url\n",
      { status: 403 },
    );
  }

  /** Why this client may not command `actor`, or undefined. */
  commandDenial(grant: Grant, actor: string): string | undefined {
    return commandDenial(this.#rules, grant.token, actor);
  }

  /** Refuses `/healthz` and `/metrics` without the metrics token, when one is set. */
  guardOps(request: Request): Response | undefined {
    const expected = this.#config.metricsToken;
    if (!expected) return undefined;
    const presented = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim() ?? "";
    if (constantTimeEqual(presented, expected)) return undefined;
    return new Response("this endpoint needs Authorization: Bearer <metrics token>\n", {
      status: 401,
      headers: { "www-authenticate": 'Bearer realm="clu-ws metrics"' },
    });
  }
}

async function readTokensFile(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new TokensError(`cannot read tokens file '${path}' (${err instanceof Error ? err.message : err})`);
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
