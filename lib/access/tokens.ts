/**
 * Access tokens: who may connect, and whether they may only watch or also
 * command (and which actors). Tokens are kept as SHA-256 digests and compared
 * in constant time; a token is never logged, only its name.
 *
 * A tokens file (TOML or JSON) holds entries like
 * `{name = "ops", role = "command", actors = ["lvm.*"], sha256 = "<hex>"}`
 * under `tokens`; `token = "<plain text>"` is accepted in place of `sha256`
 * with a warning.
 *
 * This module is the token set as text makes it; the set in force, and its
 * reload on SIGHUP, is `token_store.ts`.
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import { compileGlobs, type GlobList, globListProblem, MAX_CONFIG_GLOBS } from "../protocol/glob.ts";
import type { Role } from "../protocol/v1.ts";

/** What a token allows: the v1 protocol's roles. */
export type { Role };

/** One access token as the gateway keeps it. */
export interface TokenEntry {
  /** A name for logs and denial messages. */
  name: string;
  /** `watch` (receive only) or `command`. */
  role: Role;
  /**
   * Actors it may command (globs), or undefined for every actor (no `actors`
   * key). An empty list grants none: an operator who wrote `actors = []`
   * meant to restrict, so it must not read as "all".
   */
  actors: GlobList | undefined;
  /** SHA-256 of the token. */
  digest: Uint8Array;
}

/** A parsed set of tokens and any warnings about it. */
export interface TokenSet {
  /** The tokens. */
  entries: TokenEntry[];
  /** Things the operator should fix (e.g. plain-text tokens). */
  warnings: string[];
}

/** A tokens file or document that cannot be used; the message names the source and the entry. */
export class TokensError extends Error {
  /** Builds an error whose message is shown to the operator as is. */
  constructor(message: string) {
    super(message);
    this.name = "TokensError";
  }
}

const ENTRY_KEYS = new Set(["name", "role", "actors", "sha256", "token"]);

/**
 * Parses tokens from TOML or JSON text (`source` names the file or variable in
 * errors). Accepts `{tokens: [...]}` or a bare list.
 *
 * @throws {TokensError} naming the entry and key that is wrong.
 */
export async function parseTokens(text: string, source: string): Promise<TokenSet> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (jsonError) {
    try {
      data = parseToml(text);
    } catch (tomlError) {
      const looksJson = /^\s*\{/.test(text) || /^\s*\[\s*[{\]]/.test(text);
      const why = ((looksJson ? jsonError : tomlError) as Error).message.split("\n")[0];
      throw new TokensError(`${source}: not valid ${looksJson ? "JSON" : "TOML"} (${why})`);
    }
  }
  const list = Array.isArray(data) ? data : (data as { tokens?: unknown })?.tokens;
  if (!Array.isArray(list)) {
    throw new TokensError(`${source}: expected a list of tokens under 'tokens' ([[tokens]] in TOML)`);
  }
  const entries: TokenEntry[] = [];
  const warnings: string[] = [];
  const names = new Set<string>();
  const digests = new Map<string, string>();
  for (const [i, raw] of list.entries()) {
    const where = `${source}: token #${i + 1}`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new TokensError(`${where} is not a table`);
    }
    const item = raw as Record<string, unknown>;
    for (const key of Object.keys(item)) {
      if (!ENTRY_KEYS.has(key)) {
        throw new TokensError(`${where}: unknown key '${key}'; use name, role, actors, sha256 (or token)`);
      }
    }
    const name = item.name;
    if (typeof name !== "string" || !/^[\w.@:-]{1,64}$/.test(name)) {
      throw new TokensError(`${where}: 'name' must be 1 to 64 letters, digits or . _ - @ :`);
    }
    if (names.has(name)) throw new TokensError(`${where}: the name '${name}' is used twice`);
    names.add(name);
    const role = item.role;
    if (role !== "watch" && role !== "command") {
      throw new TokensError(`${where} (${name}): 'role' must be "watch" or "command"`);
    }
    // JSON null reads as no list (every actor), as it always has.
    const actors = item.actors ?? undefined;
    if (actors !== undefined) {
      const problem = globListProblem(actors, MAX_CONFIG_GLOBS);
      if (problem) throw new TokensError(`${where} (${name}): 'actors' ${problem}`);
    }
    const actorList = actors as string[] | undefined;
    if (role === "watch" && actorList !== undefined && actorList.length > 0) {
      throw new TokensError(`${where} (${name}): 'actors' only applies to role "command"`);
    }
    if (role === "command" && actorList !== undefined && actorList.length === 0) {
      warnings.push(
        `${source}: token '${name}' has role command but actors = []: it may command no actor; remove 'actors' to grant all`,
      );
    }
    let digest: Uint8Array;
    if (typeof item.sha256 === "string") {
      if (item.token !== undefined) {
        throw new TokensError(`${where} (${name}): give sha256 or token, not both`);
      }
      if (!/^[0-9a-fA-F]{64}$/.test(item.sha256)) {
        throw new TokensError(
          `${where} (${name}): 'sha256' must be 64 hex digits (printf %s TOKEN | sha256sum)`,
        );
      }
      digest = hexToBytes(item.sha256);
    } else if (typeof item.token === "string") {
      if (item.token.length < 16) {
        throw new TokensError(`${where} (${name}): a token must be at least 16 characters long`);
      }
      digest = await sha256(item.token);
      warnings.push(
        `${where} (${name}) is stored in plain text; store sha256 = "${bytesToHex(digest)}" instead`,
      );
    } else {
      throw new TokensError(`${where} (${name}): give 'sha256' (the token's SHA-256 in hex) or 'token'`);
    }
    const hex = bytesToHex(digest);
    if (digests.has(hex)) {
      throw new TokensError(
        `${where} (${name}): the same token as '${digests.get(hex)}'; every token must differ`,
      );
    }
    digests.set(hex, name);
    const granted = actorList === undefined ? undefined : compileGlobs(actorList);
    entries.push({ name, role, actors: granted, digest });
  }
  return { entries, warnings };
}

/**
 * Finds the entry for a presented token, comparing digests in constant time
 * (every entry is compared, and every byte of each).
 */
export async function authenticate(tokens: TokenSet, presented: string): Promise<TokenEntry | undefined> {
  const digest = await sha256(presented);
  let found: TokenEntry | undefined;
  for (const entry of tokens.entries) {
    if (constantTimeEqual(entry.digest, digest)) found = entry;
  }
  return found;
}

/**
 * Whether two byte strings are equal, in a time that depends on their lengths
 * only, not on where they differ: the one comparison of secrets (token
 * digests here, the metrics token at the ops guard).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** SHA-256 of text. */
export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** Hex of bytes. */
export function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
