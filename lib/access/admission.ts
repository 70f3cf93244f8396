/**
 * Access control at the door and on every command: browser origin
 * (`origins.ts`), then access token (`credentials.ts` says how it is
 * presented, `token_store.ts` holds the tokens in force), and the command
 * rules (`rules.ts`). Refusals are HTTP answers before the upgrade; denied
 * commands get a reason naming the rule.
 *
 * @module
 */

import { bytesToHex, constantTimeEqual, type Role, type TokenEntry } from "./tokens.ts";
import { TokenStore } from "./token_store.ts";
import { bearerToken, offeredProtocols, presentedToken, SUBPROTOCOL, V1_SUBPROTOCOL } from "./credentials.ts";
import { refusedOrigin } from "./origins.ts";
import { commandDenial, type CommandRules, commandRules } from "./rules.ts";
import type { AccessConfig } from "../config/config.ts";
import { logger } from "../log.ts";
import type { Admission } from "../http/server.ts";

const log = logger("access");
const encoder = new TextEncoder();

/**
 * What an admitted client carries: which token it presented, when the gateway
 * uses tokens. Not the token's entry: {@linkcode Access} looks that up by
 * digest at every decision, so a reload applies to open sessions at once and
 * the tokens file stays the one source of truth.
 */
export interface Grant {
  /** The token's SHA-256 in hex, the key to its current entry; undefined on an open gateway. */
  readonly digest?: string;
  /** The token's name when it was presented, for logs once the entry is gone. */
  readonly name?: string;
}

/** The gateway's access rules. */
export class Access {
  readonly #config: AccessConfig;
  readonly #rules: CommandRules;
  readonly #tokens: TokenStore;

  /** Rules from the configuration; call {@linkcode Access.load} before use. */
  constructor(config: AccessConfig) {
    this.#config = config;
    this.#rules = commandRules({
      readOnly: config.readOnly,
      allow: config.allowActors,
      deny: config.denyActors,
    });
    this.#tokens = new TokenStore(config);
  }

  /** Whether clients need a token. */
  get usesTokens(): boolean {
    return this.#tokens.inUse;
  }

  /**
   * Reads the tokens (file or document).
   *
   * @throws {TokensError} when they cannot be used; the gateway must not start open by mistake.
   */
  load(): Promise<void> {
    return this.#tokens.load();
  }

  /**
   * Calls `listener` (synchronously) after every reload that read a good file,
   * before the reload is logged as done: the sessions close the sockets of
   * removed tokens there.
   */
  onReload(listener: () => void): void {
    this.#tokens.onReload(listener);
  }

  /**
   * Re-reads the tokens file (SIGHUP); on any error the tokens in use stay.
   * Reloads never overlap and the last file read wins
   * ({@linkcode TokenStore.reload}). Never rejects.
   */
  reload(): Promise<void> {
    return this.#tokens.reload();
  }

  /** Admits or refuses an upgrade: origin first (403), then the token (401). */
  async admit(request: Request, peer: string): Promise<Admission<Grant> | Response> {
    const refusal = this.#originRefusal(request, peer);
    if (refusal) return refusal;
    const protocols = offeredProtocols(request);
    // A browser fails the connection unless one of its offered subprotocols is answered.
    const protocol = protocols.find((p) => p === V1_SUBPROTOCOL) ??
      protocols.find((p) => p === SUBPROTOCOL) ??
      protocols[0];
    if (!this.#tokens.inUse) return { protocol, grant: {} };
    const presented = presentedToken(request, protocols);
    const token = presented === undefined ? undefined : await this.#tokens.authenticate(presented);
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
    return { protocol, grant: grantOf(token) };
  }

  /**
   * Authenticates a plain HTTP request (`Authorization: Bearer` or `?token=`),
   * or refuses it: 403 from a browser origin that is not allowed, 401 without a valid token.
   */
  async authorizeHttp(request: Request, peer: string): Promise<Grant | Response> {
    const refusal = this.#originRefusal(request, peer);
    if (refusal) return refusal;
    if (!this.#tokens.inUse) return {};
    const presented = presentedToken(request, []);
    const token = presented === undefined ? undefined : await this.#tokens.authenticate(presented);
    if (token) return grantOf(token);
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
   * (`--allow-origin`, `--public-url`); see {@linkcode refusedOrigin}.
   */
  #originRefusal(request: Request, peer: string): Response | undefined {
    const origin = refusedOrigin(request, this.#config.allowOrigins);
    if (origin === undefined) return undefined;
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

  /** Why this client may not command `actor` under the tokens in force now, or undefined. */
  commandDenial(grant: Grant, actor: string): string | undefined {
    if (this.revoked(grant)) return `${revokedReason(grant)}; the command was not sent`;
    return commandDenial(this.#rules, this.tokenOf(grant), actor);
  }

  /**
   * Whether the client's token is no longer in the tokens in force (removed,
   * or its secret replaced under the same name): its sessions must end.
   */
  revoked(grant: Grant): boolean {
    return grant.digest !== undefined && this.#tokens.entry(grant.digest) === undefined;
  }

  /** What the client may do now: `watch` when read-only or its token only watches (or is gone). */
  role(grant: Grant): Role {
    if (this.#config.readOnly || this.revoked(grant)) return "watch";
    return this.tokenOf(grant)?.role ?? "command";
  }

  /** The client's token name for logs: its current name, or the one it had; undefined on an open gateway. */
  tokenName(grant: Grant): string | undefined {
    return this.tokenOf(grant)?.name ?? grant.name;
  }

  /**
   * The client's token entry in the tokens in force now; undefined on an open
   * gateway and also once revoked, so ask {@linkcode Access.revoked} before
   * reading "no entry" as "no tokens".
   */
  tokenOf(grant: Grant): TokenEntry | undefined {
    return grant.digest === undefined ? undefined : this.#tokens.entry(grant.digest);
  }

  /** Refuses `/healthz` and `/metrics` without the metrics token, when one is set. */
  guardOps(request: Request): Response | undefined {
    const expected = this.#config.metricsToken;
    if (!expected) return undefined;
    const presented = bearerToken(request) ?? "";
    if (constantTimeEqual(encoder.encode(presented), encoder.encode(expected))) return undefined;
    return new Response("this endpoint needs Authorization: Bearer <metrics token>\n", {
      status: 401,
      headers: { "www-authenticate": 'Bearer realm="clu-ws metrics"' },
    });
  }
}

/** Close code for the sockets of a revoked token (RFC 6455 "policy violation"). */
export const CLOSE_REVOKED = 1008;

/**
 * Why a revoked token's session ends, fit for a close frame (at most 123
 * bytes): token names are at most 64 ASCII characters, which leaves room.
 */
export function revokedReason(grant: Grant): string {
  return `token '${grant.name ?? "?"}' was revoked (tokens file reloaded)`;
}

function grantOf(token: TokenEntry): Grant {
  return { digest: bytesToHex(token.digest), name: token.name };
}
