/**
 * Subscription filters (clu-ws v1): which replies a client wants, by sender
 * (globs), message code (case-insensitive), routing key (AMQP topic patterns)
 * and "only replies to my commands". Compiled once per `subscribe`, so the
 * per-reply check is a few comparisons and no JSON work.
 *
 * @module
 */

import { compileGlobs, type GlobList, wildcardMatch } from "../protocol/glob.ts";
import type { Subscription } from "../protocol/v1.ts";

/** What a filter looks at in a reply. */
export interface ReplyMeta {
  /** `headers.sender`. */
  sender: string;
  /** `headers.message_code`. */
  code: string;
  /** The AMQP routing key. */
  routingKey: string;
  /** `headers.command_id`, or undefined. */
  commandId: string | undefined;
}

/** A compiled filter; `mine` asks the caller whether a command id is the client's own. */
export interface ReplyFilter {
  /** The subscription as given. */
  readonly spec: Subscription;
  /** Whether the reply is wanted. */
  matches(meta: ReplyMeta, isMine: (commandId: string) => boolean): boolean;
}

/** Compiles a validated subscription (see `parseSubscription` in `protocol/v1.ts`). */
export function compileFilter(spec: Subscription): ReplyFilter {
  const actors: GlobList | undefined = spec.actors && compileGlobs(spec.actors);
  const codes = spec.codes && new Set(spec.codes.map((c) => c.toLowerCase()));
  const keys = spec.keys?.map(compileTopic);
  return {
    spec,
    matches(meta, isMine) {
      if (actors && actors.match(meta.sender) === undefined) return false;
      if (codes && !codes.has(meta.code.toLowerCase())) return false;
      if (keys && !keys.some((matches) => matches(meta.routingKey))) return false;
      if (spec.mine && (meta.commandId === undefined || !isMine(meta.commandId))) return false;
      return true;
    },
  };
}

/**
 * An AMQP topic pattern as a test on routing keys: words split on dots, `*`
 * one word, `#` zero or more words. Matched word by word with the same
 * linear-time wildcard match as globs, never with a regular expression
 * (`a.#.#.#…` would backtrack).
 */
export function compileTopic(pattern: string): (routingKey: string) => boolean {
  if (pattern === "#") return () => true;
  const words = pattern.split(".");
  return (routingKey) => wildcardMatch(words, routingKey.split("."), "#", "*");
}
