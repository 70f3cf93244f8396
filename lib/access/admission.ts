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
  bytesToHex,
  offeredProtocols,
  parseTokens,
  presentedToken,
  type Role,
  SUBPROTOCOL,
  type TokenEntry,
  TokensError,
  type TokenSet,
} from "./tokens.ts";
import type { AccessConfig } from "../config/config.ts";
import { logger } from "../log.ts";
import { commandDenial, type CommandRules, commandRules, originAllowed } from "./rules.ts";
import type { Admission } from "../http/server.ts";
import { V1_SUBPROTOCOL } from "../protocol/v1.ts";

const log = logger("access");

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
  #tokens: TokenSet | undefined;
  /** The entries of `#tokens` by digest (hex): what a grant resolves to. */
  #byDigest = new Map<string, TokenEntry>();
  readonly #reloadListeners: Array<() => void> = [];
  /** The end of the last reload requested: reloads run one after another. */
  #reloads: Promise<void> = Promise.resolve();
  /** A reload requested and not started yet; it reads the file when it starts. */
  #nextReload: Promise<void> | undefined;

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
    let tokens: TokenSet | undefined;
    if (tokensFile) {
      tokens = await parseTokens(await readTokensFile(tokensFile), tokensFile);
    } else if (tokensText) {
      tokens = await parseTokens(tokensText.text, tokensText.source);
    }
    if (!tokens) return;
    // Both swapped together, after the last await: a decision never sees half of a file.
    this.#tokens = tokens;
    this.#byDigest = new Map(tokens.entries.map((entry) => [bytesToHex(entry.digest), entry]));
    for (const warning of tokens.warnings) log.warn(warning);
    log.info("{count} access tokens loaded", { count: tokens.entries.length });
  }

  /**
   * Calls `listener` (synchronously) after every reload that read a good file,
   * before the reload is logged as done: the sessions close the sockets of
   * removed tokens there.
   */
  onReload(listener: () => void): void {
    this.#reloadListeners.push(listener);
  }

  /**
   * Re-reads the tokens file (SIGHUP); on any error the tokens in use stay.
   * Reloads never overlap: one requested while another runs starts after it
   * and reads the file then, so the last file read wins; requests that arrive
   * while one is already waiting share it. Never rejects.
   */
  reload(): Promise<void> {
    if (this.#nextReload) {
      log.debug("a reload is already waiting to start; it will read the file then");
      return this.#nextReload;
    }
    const next = this.#reloads.then(() => {
      this.#nextReload = undefined;
      return this.#reloadOnce();
    }).catch((err) => {
      // Caught here so that the chain goes on: a rejected link would skip every later reload.
      log.error("SIGHUP: the reload failed unexpectedly (please report it): {error}", {
        error: err instanceof Error ? err.stack ?? err.message : String(err),
      });
    });
    this.#nextReload = next;
    this.#reloads = next;
    return next;
  }

  async #reloadOnce(): Promise<void> {
    const file = this.#config.tokensFile;
    if (!file) {
      log.info("SIGHUP: no --tokens-file to reload");
      return;
    }
    const before = this.#byDigest;
    try {
      await this.load();
    } catch (err) {
      log.error("SIGHUP: kept the tokens in use; {error}", {
        error: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    const removed = [...before].filter(([digest]) => !this.#byDigest.has(digest)).map(([, e]) => e.name);
    const added = [...this.#byDigest].filter(([digest]) => !before.has(digest)).length;
    const changed = [...this.#byDigest].filter(([digest, entry]) => {
      const old = before.get(digest);
      return old !== undefined && !sameEntry(old, entry);
    }).length;
    for (const listener of this.#reloadListeners) {
      try {
        listener();
      } catch (err) {
        log.error("SIGHUP: applying the reloaded tokens failed (please report it): {error}", {
          error: err instanceof Error ? err.stack ?? err.message : String(err),
        });
      }
    }
    log.info(
      "SIGHUP: reloaded {file}: {count} tokens, {added} added, {changed} changed, {removedCount} removed{names}",
      {
        file,
        count: this.#byDigest.size,
        added,
        changed,
        removedCount: removed.length,
        names: removed.length > 0 ? ` (${removed.join(", ")})` : "",
        removed,
      },
    );
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
    return { protocol, grant: grantOf(token) };
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
    return grant.digest !== undefined && !this.#byDigest.has(grant.digest);
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
    return grant.digest === undefined ? undefined : this.#byDigest.get(grant.digest);
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

function sameEntry(a: TokenEntry, b: TokenEntry): boolean {
  return a.name === b.name && a.role === b.role &&
    JSON.stringify(a.actors?.patterns ?? null) === JSON.stringify(b.actors?.patterns ?? null);
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
