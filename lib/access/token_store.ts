/**
 * The tokens in force: read at start from `--tokens-file` or `CLU_WS_TOKENS`,
 * re-read from the file on SIGHUP, and looked up by digest at every decision,
 * so that a reload applies to open sessions at once.
 *
 * @module
 */

import {
  authenticate,
  bytesToHex,
  parseTokens,
  type TokenEntry,
  TokensError,
  type TokenSet,
} from "./tokens.ts";
import type { AccessConfig } from "../config/config.ts";
import { logger } from "../log.ts";

const log = logger("access");

/** Where the tokens come from: a file (reloadable) or a document; neither means no tokens. */
export type TokenSource = Pick<AccessConfig, "tokensFile" | "tokensText">;

/** The tokens in force, and their reload. */
export class TokenStore {
  readonly #source: TokenSource;
  #tokens: TokenSet | undefined;
  /** The entries of `#tokens` by digest (hex). */
  #byDigest = new Map<string, TokenEntry>();
  readonly #reloadListeners: Array<() => void> = [];
  /** The end of the last reload requested: reloads run one after another. */
  #reloads: Promise<void> = Promise.resolve();
  /** A reload requested and not started yet; it reads the file when it starts. */
  #nextReload: Promise<void> | undefined;

  /** A store for `source`; call {@linkcode TokenStore.load} before use. */
  constructor(source: TokenSource) {
    this.#source = source;
  }

  /** Whether tokens were loaded, so that clients need one. */
  get inUse(): boolean {
    return this.#tokens !== undefined;
  }

  /**
   * Reads the tokens (file or document).
   *
   * @throws {TokensError} when they cannot be used; the gateway must not start open by mistake.
   */
  async load(): Promise<void> {
    const { tokensFile, tokensText } = this.#source;
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
   * The entry of a presented token among the tokens in force, or undefined
   * (also when no tokens are in use); compared in constant time.
   */
  authenticate(presented: string): Promise<TokenEntry | undefined> {
    return this.#tokens ? authenticate(this.#tokens, presented) : Promise.resolve(undefined);
  }

  /** The entry in force whose digest (hex) is `digest`, or undefined when there is none (any more). */
  entry(digest: string): TokenEntry | undefined {
    return this.#byDigest.get(digest);
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
    const file = this.#source.tokensFile;
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
