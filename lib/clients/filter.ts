/**
 * Subscription filters (clu-ws v1): which replies a client wants, by sender
 * (globs), message code (case-insensitive), routing key (AMQP topic patterns)
 * and "only replies to my commands". Compiled once per `subscribe`, so the
 * per-reply check is a few comparisons and no JSON work.
 *
 * @module
 */

import {
  compileGlobs,
  type GlobList,
  globListProblem,
  MAX_CLIENT_GLOBS,
  wildcardMatch,
} from "../protocol/glob.ts";

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

/** A subscription as the client asked for it (echoed back in `subscribed`). */
export interface FilterSpec {
  /** Globs on `headers.sender`. */
  actors?: string[];
  /** Message codes, compared case-insensitively. */
  codes?: string[];
  /** AMQP topic patterns on the routing key. */
  keys?: string[];
  /** Only replies to this connection's own commands. */
  mine?: boolean;
}

/** A compiled filter; `mine` asks the caller whether a command id is the client's own. */
export interface ReplyFilter {
  /** The subscription as given. */
  readonly spec: FilterSpec;
  /** Whether the reply is wanted. */
  matches(meta: ReplyMeta, isMine: (commandId: string) => boolean): boolean;
}

/**
 * Validates and compiles a `subscribe` request.
 *
 * @returns the filter, or a message saying which field is wrong.
 */
export function compileFilter(fields: Record<string, unknown>): ReplyFilter | string {
  const spec: FilterSpec = {};
  for (const key of ["actors", "codes", "keys"] as const) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
      return `"${key}" must be a list of non-empty strings`;
    }
    // Every reply is tested against every pattern, so a client's lists are kept short.
    const problem = globListProblem(value, MAX_CLIENT_GLOBS);
    if (problem) return `"${key}" ${problem}; subscribe to fewer, shorter patterns`;
    spec[key] = value as string[];
  }
  if (fields.mine !== undefined && typeof fields.mine !== "boolean") return `"mine" must be true or false`;
  if (fields.mine === true) spec.mine = true;
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
