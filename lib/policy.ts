/**
 * Who may command what: the gateway-wide rules (`--read-only`, `--allow-actor`,
 * `--deny-actor`) and the client's token. A denial names the rule that denied.
 *
 * @module
 */

import type { TokenEntry } from "./auth.ts";
import { compileGlobs, type GlobList } from "./glob.ts";

/** The gateway-wide command rules. */
export interface CommandRules {
  /** Refuse every command. */
  readOnly: boolean;
  /** Only these actors (empty: all). */
  allow: GlobList;
  /** Never these actors. */
  deny: GlobList;
}

/** Builds the rules from the configured globs. */
export function commandRules(options: { readOnly: boolean; allow: string[]; deny: string[] }): CommandRules {
  return { readOnly: options.readOnly, allow: compileGlobs(options.allow), deny: compileGlobs(options.deny) };
}

/**
 * Why `token` (undefined when the gateway has no tokens) may not command
 * `actor`, or undefined when it may.
 */
export function commandDenial(
  rules: CommandRules,
  token: TokenEntry | undefined,
  actor: string,
): string | undefined {
  if (rules.readOnly) return "clu-ws is read-only (--read-only); the command was not sent";
  if (token && token.role !== "command") {
    return `token '${token.name}' may only watch (role "watch"); the command was not sent`;
  }
  const denied = rules.deny.match(actor);
  if (denied !== undefined) {
    return `actor '${actor}' is denied by --deny-actor '${denied}'; the command was not sent`;
  }
  if (rules.allow.patterns.length > 0 && rules.allow.match(actor) === undefined) {
    return `actor '${actor}' is not allowed by --allow-actor (${
      rules.allow.patterns.join(", ")
    }); the command was not sent`;
  }
  if (token && token.actors.patterns.length > 0 && token.actors.match(actor) === undefined) {
    return `token '${token.name}' may not command actor '${actor}' (it may command ${
      token.actors.patterns.join(", ")
    }); the command was not sent`;
  }
  return undefined;
}

/**
 * Whether a browser `origin` may connect, given the request's `Host` header
 * and the allowed origins (`--allow-origin` patterns and the `--public-url`
 * origins). With none, every origin may (CLU's behaviour). Otherwise only an
 * allowed origin passes, and the gateway's own origin when `Host` names it by
 * an IP address or `localhost`.
 *
 * `Host` is not proof of anything when it is a DNS name: a page on a DNS
 * rebinding domain (`evil.test` resolving to the gateway) sends
 * `Host: evil.test:9876` and `Origin: http://evil.test:9876`, a perfect match.
 * An IP literal or `localhost` cannot be rebound, so a page whose origin is
 * exactly that host was loaded from this very address and port: the console.
 */
export function originAllowed(origin: string, host: string | null, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (
    host !== null && (url.protocol === "http:" || url.protocol === "https:") &&
    url.host === host.toLowerCase() && cannotBeRebound(url.hostname)
  ) {
    return true;
  }
  const normalized = `${url.protocol}//${url.host}`;
  return allowed.map(withoutDefaultPort).some((pattern) => {
    if (!pattern.includes("*.")) return pattern === normalized;
    const [scheme, rest] = pattern.split("//");
    return scheme === url.protocol && url.host.endsWith(rest.slice(1)) && url.host.length > rest.length - 1;
  });
}

/**
 * Whether a URL host name (as `URL` normalizes it) is one that no DNS answer
 * can point elsewhere: an IPv4 or bracketed IPv6 literal, or `localhost`
 * (browsers resolve it to loopback themselves).
 */
function cannotBeRebound(hostname: string): boolean {
  return hostname === "localhost" || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) ||
    /^\[[0-9a-f:.]+\]$/.test(hostname);
}

/** Browsers leave the scheme's default port out of Origin, so patterns must too. */
function withoutDefaultPort(pattern: string): string {
  return pattern.replace(/^(https:\/\/.*):443$/, "$1").replace(/^(http:\/\/.*):80$/, "$1");
}
