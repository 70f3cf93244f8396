/**
 * Validation of the clu-ws v1 control frames a client sends (subscribe,
 * resume, state, options): each becomes a typed request of `v1.ts`, or an
 * error that says which field is wrong and what to send. Pure and
 * browser-safe.
 *
 * @module
 */

import type { RequestId, Subscription } from "./v1.ts";
import { globListProblem, MAX_CLIENT_GLOBS } from "./glob.ts";
import { CONTROL_KEY } from "./clu_input.ts";
import { parseSeriesQuery, type SeriesQuery } from "./v1_series.ts";

/** A client control frame, validated: what to do, and the id to echo. */
export type ClientControl =
  | { op: "subscribe"; id: RequestId; subscription: Subscription }
  | { op: "resume"; id: RequestId; epoch: string; seq: number; since?: number }
  | { op: "state"; id: RequestId; actors: string[] | undefined }
  | { op: "options"; id: RequestId; batch: boolean | undefined }
  | ({ op: "series"; id: RequestId } & SeriesQuery)
  | { op: "describe"; id: RequestId; actor: string }
  | { op: "error"; id: RequestId; error: string };

/**
 * Validates a control frame's fields (a JSON object with {@linkcode CONTROL_KEY}).
 *
 * @returns the operation, or `op: "error"` with what was wrong, for an `error` frame.
 */
export function parseControl(fields: Record<string, unknown>): ClientControl {
  const id = fields.id ?? null;
  const error = (message: string): ClientControl => ({ op: "error", id, error: message });
  switch (fields[CONTROL_KEY]) {
    case "subscribe": {
      const subscription = parseSubscription(fields);
      return typeof subscription === "string" ? error(subscription) : { op: "subscribe", id, subscription };
    }
    case "resume": {
      const { epoch, seq, since } = fields;
      if (typeof epoch === "string" && seq === undefined && since !== undefined) {
        if (typeof since !== "number" || !Number.isSafeInteger(since) || since < 0) {
          return error(`resume "since" must be a time in ms since 1970 (a whole number)`);
        }
        return { op: "resume", id, epoch, seq: 0, since };
      }
      if (typeof epoch !== "string" || typeof seq !== "number" || !Number.isInteger(seq) || seq < 0) {
        return error(
          `resume needs "epoch" (text) and "seq" (a whole number) from the frames received, or "epoch" and "since" (ms since 1970)`,
        );
      }
      return { op: "resume", id, epoch, seq };
    }
    case "state": {
      const actors = fields.actors;
      const problem = actors === undefined ? undefined : globListProblem(actors, MAX_CLIENT_GLOBS);
      if (problem) return error(`"actors" ${problem}`);
      return { op: "state", id, actors: actors as string[] | undefined };
    }
    case "options": {
      const batch = fields.batch;
      if (batch !== undefined && typeof batch !== "boolean") return error(`"batch" must be true or false`);
      return { op: "options", id, batch };
    }
    case "series": {
      const query = parseSeriesQuery(fields);
      return typeof query === "string" ? error(query) : { op: "series", id, ...query };
    }
    case "describe": {
      const actor = fields.actor;
      if (typeof actor !== "string" || actor === "" || new TextEncoder().encode(actor).length > 255) {
        return error(`describe needs "actor": an actor's name (1 to 255 bytes), e.g. {"actor": "lvmecp"}`);
      }
      return { op: "describe", id, actor };
    }
    default:
      return error(
        `unknown operation ${
          JSON.stringify(fields[CONTROL_KEY])
        }; use subscribe, resume, state, options, series or describe (docs/protocol.md)`,
      );
  }
}

/**
 * Validates the fields of a `subscribe` request.
 *
 * @returns the subscription (only the fields given), or a message saying which field is wrong.
 */
export function parseSubscription(fields: Record<string, unknown>): Subscription | string {
  const subscription: Subscription = {};
  for (const key of ["actors", "codes", "keys"] as const) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
      return `"${key}" must be a list of non-empty strings`;
    }
    // Every reply is tested against every pattern, so a client's lists are kept short.
    const problem = globListProblem(value, MAX_CLIENT_GLOBS);
    if (problem) return `"${key}" ${problem}; subscribe to fewer, shorter patterns`;
    subscription[key] = value as string[];
  }
  if (fields.mine !== undefined && typeof fields.mine !== "boolean") return `"mine" must be true or false`;
  if (fields.mine === true) subscription.mine = true;
  return subscription;
}
