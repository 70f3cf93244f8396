/**
 * Subscription filters (clu-ws v1): which replies a client wants, by sender
 * (globs), message code (case-insensitive), routing key (AMQP topic patterns)
 * and "only replies to my commands". Compiled once per `subscribe`, so the
 * per-reply check is a few comparisons and no JSON work.
 *
 * @module
 */

import { compileGlobs, type GlobList } from "./glob.ts";

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
  actors?: string[];
  codes?: string[];
  keys?: string[];
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
    if (
      !Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "") || value.length > 1000
    ) {
      return `"${key}" must be a list of non-empty strings`;
    }
    spec[key] = value as string[];
  }
  if (fields.mine !== undefined && typeof fields.mine !== "boolean") return `"mine" must be true or false`;
  if (fields.mine === true) spec.mine = true;
  const actors: GlobList | undefined = spec.actors && compileGlobs(spec.actors);
  const codes = spec.codes && new Set(spec.codes.map((c) => c.toLowerCase()));
  const keys = spec.keys?.map(topicToRegExp);
  return {
    spec,
    matches(meta, isMine) {
      if (actors && actors.match(meta.sender) === undefined) return false;
      if (codes && !codes.has(meta.code.toLowerCase())) return false;
      if (keys && !keys.some((k) => k.test(meta.routingKey))) return false;
      if (spec.mine && (meta.commandId === undefined || !isMine(meta.commandId))) return false;
      return true;
    },
  };
}

/** An AMQP topic pattern: words split on dots, `*` one word, `#` zero or more words. */
export function topicToRegExp(pattern: string): RegExp {
  const words = pattern.split(".");
  if (words.length === 1 && words[0] === "#") return /^.*$/s;
  let source = "";
  let needDot = false;
  words.forEach((word, i) => {
    if (word === "#" && i === 0) {
      // Leading words, each with its dot, so the next word needs none.
      source += "(?:[^.]*\\.)*";
      needDot = false;
      return;
    }
    if (word === "#") {
      source += "(?:\\.[^.]*)*";
    } else {
      source += (needDot ? "\\." : "") +
        (word === "*" ? "[^.]*" : word.replace(/[.+^${}()|[\]\\?*/-]/g, "\\$&"));
    }
    needDot = true;
  });
  return new RegExp(`^${source}$`);
}
