/**
 * Who may command what: the gateway-wide rules (`--read-only`, `--allow-actor`,
 * `--deny-actor`) and the client's token. A denial names the rule that denied.
 *
 * @module
 */

import type { TokenEntry } from "./tokens.ts";
import { compileGlobs, type GlobList } from "../protocol/glob.ts";

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
 * The actors a command to `consumer` reaches: every dot-prefix of it by whole
 * words (`lvm.sp1.ieb` → `lvm`, `lvm.sp1`, `lvm.sp1.ieb`), because a CLU
 * actor binds `command.<actor>.#` and `#` matches zero or more words.
 */
export function reachedActors(consumer: string): string[] {
  const words = consumer.split(".");
  return words.map((_, i) => words.slice(0, i + 1).join("."));
}

/**
 * Why `token` (undefined when the gateway has no tokens) may not command
 * `consumer`, or undefined when it may.
 *
 * A command to `consumer` is delivered to every actor whose name is a
 * dot-prefix of it ({@linkcode reachedActors}), so it is sent only when every
 * such actor passes every rule: none matches `--deny-actor`, each matches
 * `--allow-actor` (when set) and the token's `actors` (when it has a list).
 * The consumer itself is checked first, so the plainest reason is given.
 */
export function commandDenial(
  rules: CommandRules,
  token: TokenEntry | undefined,
  consumer: string,
): string | undefined {
  if (rules.readOnly) return "clu-ws is read-only (--read-only); the command was not sent";
  if (token && token.role !== "command") {
    return `token '${token.name}' may only watch (role "watch"); the command was not sent`;
  }
  const reached = reachedActors(consumer);
  // The consumer first, then its prefixes from the shortest.
  const order = [consumer, ...reached.slice(0, -1)];
  /** The reason's subject: the actor itself, or why a prefix of it counts. */
  const about = (actor: string) =>
    actor === consumer
      ? `actor '${actor}'`
      : `a command to '${consumer}' is also delivered to actor '${actor}' if it runs (CLU actors bind command.<name>.#); actor '${actor}'`;
  for (const actor of order) {
    const denied = rules.deny.match(actor);
    if (denied !== undefined) {
      return `${about(actor)} is denied by --deny-actor '${denied}'; the command was not sent`;
    }
  }
  if (rules.allow.patterns.length > 0) {
    for (const actor of order) {
      if (rules.allow.match(actor) !== undefined) continue;
      return `${about(actor)} is not allowed by --allow-actor (${
        rules.allow.patterns.join(", ")
      }); the command was not sent`;
    }
  }
  const granted = token?.actors;
  if (token && granted) {
    for (const actor of order) {
      if (granted.match(actor) !== undefined) continue;
      const may = granted.patterns.length === 0
        ? "it may command no actor: its actors list is empty"
        : `it may command ${granted.patterns.join(", ")}`;
      if (actor === consumer) {
        return `token '${token.name}' may not command actor '${actor}' (${may}); the command was not sent`;
      }
      return `a command to '${consumer}' is also delivered to actor '${actor}' if it runs (CLU actors bind command.<name>.#); token '${token.name}' may not command '${actor}' (${may}); the command was not sent`;
    }
  }
  return undefined;
}
