/**
 * The plain-HTTP API for scripts and cron: `POST /commands` runs a command and
 * answers when it ends; `GET /actors` and `GET /actors/<name>` read the
 * actors' keyword state, `GET /actors/<name>/series` their numbers' recent
 * points; `GET /actors/<name>/model`, `/schema` and `/help` what the actor
 * answered to the gateway's introspection. Same tokens and command rules as
 * websockets.
 *
 * @module
 */

import type { ActorState } from "../replies/actor_state.ts";
import type { Grant } from "../access/admission.ts";
import type { CommandLifecycle, Recipient, Told } from "../commands/lifecycle.ts";
import { type ClientCommand, parseClientCommand } from "../protocol/clu_input.ts";
import { TokenBucket } from "../commands/rate_limit.ts";
import type { CommandOutcome } from "../commands/lifecycle.ts";
import type { KeywordSeries } from "../replies/keyword_series.ts";
import { answerSeriesRequest, SERIES_SUFFIX } from "./series_api.ts";
import type { Description } from "../introspection/catalog.ts";

/** What the API needs from the gateway. */
export interface HttpApiContext {
  /** Runs each command and tells its sender. */
  commands: CommandLifecycle;
  /** The broker link's state: a command that failed while it is down is answered 503, not 502. */
  brokerState(): string;
  /** The actors' keywords. */
  state: ActorState;
  /** The numeric keywords' recent points (`GET /actors/<name>/series`). */
  series?: KeywordSeries;
  /** Authenticates a plain HTTP request (bearer or ?token=), or refuses it. */
  authorize(request: Request): Promise<Grant | Response>;
  /** Per-caller rate limits. */
  allowances: HttpAllowances;
  /** What the gateway learnt of an actor's commands and keywords. */
  describe(actor: string): Description;
}

/** The parts of an actor's introspection served at `/actors/<name>/<part>`. */
const PARTS = ["model", "schema", "help"] as const;

const DEFAULT_TIMEOUT_SECONDS = 30;
/** Largest `POST /commands` body read; a command is a few hundred bytes. */
export const MAX_COMMAND_BODY_BYTES = 64 * 1024;
/** Callers remembered for rate limiting; the oldest is forgotten beyond this. */
const MAX_ALLOWANCES = 10_000;

/** Per-caller command allowances for the HTTP API: by token name, or by address on an open gateway. */
export class HttpAllowances {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #rate: number;
  readonly #burst: number;

  /** Allowances of `rate` commands a second with bursts of `burst`. */
  constructor(rate: number, burst: number) {
    this.#rate = rate;
    this.#burst = burst;
  }

  /** The allowance of the caller with this token (or from this host). */
  of(grant: Grant, peer: string): TokenBucket {
    const key = grant.name !== undefined ? `token:${grant.name}` : `host:${peer.replace(/:\d+$/, "")}`;
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.#rate, this.#burst);
      this.#buckets.set(key, bucket);
      if (this.#buckets.size > MAX_ALLOWANCES) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    return bucket;
  }
}

/** A `POST /commands` request waiting for its command's end; the status of a failure is set when it is told. */
interface PendingResponse {
  /** Resolved once, with the answer. */
  readonly answer: PromiseWithResolvers<Response>;
  /** The broker link's state, read when a failure is told. */
  readonly brokerState: () => string;
  /** The status a gateway failure imposes on the end that follows it. */
  status?: number;
}

/** The status of a command refused by a rule or the rate; other failures are 502 (503 with the link down). */
const FAILURE_STATUS: Partial<Record<CommandOutcome, number>> = {
  denied: 403,
  rate_limited: 429,
  unroutable: 502,
};

/**
 * How an HTTP caller is told: nothing until the end, which becomes the
 * response; a refusal is 409; a failure before publication sets the status
 * (403 denied, 429 over the rate, 503 with the broker link down, else 502).
 */
const httpRecipient: Recipient<PendingResponse> = {
  tell(to: PendingResponse, command: ClientCommand, told: Told): void {
    if (told.kind === "refused") {
      to.answer.resolve(problem(409, told.reason));
    } else if (told.kind === "failed") {
      to.status = FAILURE_STATUS[told.outcome] ?? (to.brokerState() === "up" ? 502 : 503);
    } else if (told.kind === "ended") {
      const { end, frames } = told;
      const status = to.status ?? (end.status === "done" ? 200 : end.status === "timeout" ? 504 : 502);
      to.answer.resolve(
        new Response(
          `{"command_id":${JSON.stringify(command.commandId)},"consumer":${
            JSON.stringify(command.consumer)
          },"status":"${end.status}","code":${JSON.stringify(end.code)},"elapsed_ms":${end.elapsedMs}${
            end.error ? `,"error":${JSON.stringify(end.error)}` : ""
          },"replies":[${frames.join(",")}]}`,
          { status, headers: { "content-type": "application/json" } },
        ),
      );
    }
  },
};

/** Answers an API request, or undefined when the path is not the API's. */
export async function handleApi(
  context: HttpApiContext,
  request: Request,
  peer: string,
): Promise<Response | undefined> {
  const { pathname } = new URL(request.url);
  if (pathname !== "/commands" && pathname !== "/actors" && !pathname.startsWith("/actors/")) {
    return undefined;
  }
  const grant = await context.authorize(request);
  if (grant instanceof Response) return grant;
  if (pathname === "/commands") {
    if (request.method !== "POST") {
      return problem(405, 'use POST with {"consumer", "command_string", "timeout"?}');
    }
    return await runCommand(context, request, peer, grant);
  }
  if (request.method !== "GET") return problem(405, "use GET");
  if (pathname === "/actors") return Response.json({ actors: context.state.list() });
  if (pathname.endsWith(SERIES_SUFFIX)) {
    let seriesOf: string;
    try {
      seriesOf = decodeURIComponent(pathname.slice("/actors/".length, -SERIES_SUFFIX.length));
    } catch {
      return problem(400, "the actor name in the path is not valid percent-encoding");
    }
    return answerSeriesRequest(context, seriesOf, new URL(request.url));
  }
  // `/actors/<name>/model`: a name with a slash of its own is given percent-encoded (%2F).
  const rest = pathname.slice("/actors/".length);
  const slash = rest.indexOf("/");
  const part = slash >= 0 ? PARTS.find((p) => p === rest.slice(slash + 1)) : undefined;
  let name: string;
  try {
    name = decodeURIComponent(part ? rest.slice(0, slash) : rest);
  } catch {
    return problem(400, "the actor name in the path is not valid percent-encoding");
  }
  if (part) return introspectionPart(context, name, part);
  const json = context.state.actorJson(name);
  if (json === undefined) return problem(404, `no reply from an actor named '${name}' has been seen`);
  return new Response(`{"name":${JSON.stringify(name)},${json.slice(1)}`, {
    headers: { "content-type": "application/json" },
  });
}

/** `GET /actors/<name>/<part>`: the part as the actor answered it, or 404 saying why there is none. */
function introspectionPart(context: HttpApiContext, name: string, part: typeof PARTS[number]): Response {
  const description = context.describe(name);
  const json = description[part];
  if (json !== undefined) return new Response(json, { headers: { "content-type": "application/json" } });
  const why = part === "model" || description.status !== "ready"
    ? description.reason ?? description.status
    : `the actor did not answer ${part === "schema" ? "get_schema" : "help"} with one`;
  return Response.json({ error: `no ${part} of actor '${name}': ${why}`, status: description.status }, {
    status: 404,
  });
}

async function runCommand(
  context: HttpApiContext,
  request: Request,
  peer: string,
  grant: Grant,
): Promise<Response> {
  const text = await readCapped(request, MAX_COMMAND_BODY_BYTES);
  if (text === undefined) {
    return problem(413, "the request body is over 64 KiB; send one command per request");
  }
  const parsed = parseClientCommand(text);
  if (parsed.kind === "error") return problem(400, parsed.error);
  if (parsed.kind === "control") return problem(400, "send a command, not a control frame");
  const pending: PendingResponse = { answer: Promise.withResolvers(), brokerState: context.brokerState };
  await context.commands.run(parsed, {
    grant,
    allowance: context.allowances.of(grant, peer),
    client: "http",
    peer,
    to: pending,
    recipient: httpRecipient,
  }, { track: { timeoutSeconds: parsed.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS, collect: true } });
  return await pending.answer.promise;
}

/**
 * The body as text, or undefined when it is over `limit` bytes: refused by its
 * Content-Length before a byte is read, or as soon as the bytes read pass the
 * limit (chunked bodies), so a huge body never sits in memory.
 */
async function readCapped(request: Request, limit: number): Promise<string | undefined> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) {
    await request.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

function problem(status: number, error: string): Response {
  return Response.json({ error }, { status });
}
