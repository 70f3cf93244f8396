/**
 * The gateway asks each actor, once, for its commands and keywords:
 * `get-command-model`, `get_schema` and `help`, one after the other, when it
 * first hears from the actor, and again only when the actor changes (its
 * `version` keyword changes, or it comes back after a command to it was
 * unroutable) or after a backoff when it did not answer. Clients never cause
 * these commands: they read what the gateway learnt (`describe`, the HTTP API).
 *
 * The gateway asks only actors its own command rules let it command
 * (`--read-only`, `--allow-actor`, `--deny-actor`, with the dot-prefix rule),
 * at most {@linkcode DEFAULT_CONCURRENCY} actors at a time, each command with
 * a timeout; answers over `--introspection-max-bytes` are refused before they
 * are parsed, and what is kept is bounded by `--introspection-cache-bytes`
 * and {@linkcode DEFAULT_MAX_ACTORS} actors.
 *
 * These commands do not go through the command lifecycle and never enter the
 * ledger; their replies are taken off the reply path ({@linkcode Introspector.claim})
 * before clients, the history or the actors' state see them.
 *
 * @module
 */

import type { Publisher } from "../commands/lifecycle.ts";
import {
  type AmqpMessageLike,
  type GatewayIdentity,
  isFailedRouting,
  newMessageId,
} from "../protocol/clu.ts";
import { INTROSPECTION_ID_PREFIX } from "../protocol/clu_input.ts";
import { logger } from "../log.ts";
import {
  commandableName,
  extractAnswer,
  failureText,
  INTROSPECTION_COMMANDS,
  type IntrospectionCommand,
} from "./answers.ts";
import { Catalog, type Description, descriptionJson, type Entry } from "./catalog.ts";

const log = logger("introspection");

/** Actors asked at the same time at most. */
export const DEFAULT_CONCURRENCY = 4;
/** Actors whose answers (or state) are kept at most: as many as the actors' state keeps. */
export const DEFAULT_MAX_ACTORS = 1000;
/** First wait before asking again an actor whose command was unroutable (no queue); it doubles likewise. */
export const MIN_UNROUTABLE_BACKOFF_MS = 10_000;
/** First wait before asking again an actor that did not answer; it doubles up to {@linkcode MAX_BACKOFF_MS}. */
export const MIN_BACKOFF_MS = 60_000;
/** Longest wait before asking again an actor that does not answer. */
export const MAX_BACKOFF_MS = 3_600_000;

/** Options for the {@linkcode Introspector} constructor. */
export interface IntrospectorOptions {
  /** Ask actors at all (`--introspection on`). */
  enabled: boolean;
  /** The broker link. */
  publisher: Publisher;
  /** The gateway's name (its commander id and replies queue). */
  identity: GatewayIdentity;
  /** Why the gateway itself may not command `actor` (its own command rules), or undefined. */
  denial(actor: string): string | undefined;
  /** How long each command may take to end (ms). */
  timeoutMs: number;
  /** Largest reply body taken, in bytes; a larger one is refused unparsed. */
  maxAnswerBytes: number;
  /** Bytes of answers kept over all actors. */
  cacheBytes: number;
  /** Actors kept at most (default {@linkcode DEFAULT_MAX_ACTORS}). */
  maxActors?: number;
  /** Actors asked at the same time (default {@linkcode DEFAULT_CONCURRENCY}). */
  concurrency?: number;
  /** The clock in ms (tests). */
  now?: () => number;
}

/** How one introspection command ended. */
type Asked =
  | { kind: "answer"; body: string }
  | { kind: "failed"; error: string }
  | { kind: "too-big"; bytes: number }
  | { kind: "timeout" }
  | { kind: "unroutable" }
  | { kind: "not-sent"; reason: string }
  | { kind: "stopped" };

interface PendingAsk {
  readonly actor: string;
  readonly command: IntrospectionCommand;
  readonly finish: (asked: Asked) => void;
}

const decoder = new TextDecoder();

/** A header value as text (amqplib may hand strings over as bytes). */
function headerText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  return undefined;
}

/**
 * Whether `message` answers a gateway's introspection command (its command id
 * has {@linkcode INTROSPECTION_ID_PREFIX}): no client's, whichever gateway asked.
 */
export function isIntrospectionReply(message: AmqpMessageLike): boolean {
  return headerText(message.properties.headers?.command_id)?.startsWith(INTROSPECTION_ID_PREFIX) ?? false;
}

/** The `version` keyword of a reply body, as text, if it has one. */
function versionOf(body: unknown): string | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  const version = (body as Record<string, unknown>).version;
  if (version === undefined || version === null) return undefined;
  return typeof version === "string" ? version.slice(0, 200) : JSON.stringify(version)?.slice(0, 200);
}

/** Asks actors for their commands and keeps the answers; see the module's documentation. */
export class Introspector {
  readonly #options: IntrospectorOptions;
  readonly #catalog: Catalog;
  readonly #pending = new Map<string, PendingAsk>();
  readonly #queue: Entry[] = [];
  /** Every introspection command id starts with this, made fresh each run: no client can guess it. */
  readonly #prefix = `${INTROSPECTION_ID_PREFIX}${crypto.randomUUID().slice(0, 8)}-`;
  readonly #concurrency: number;
  readonly #now: () => number;
  #counter = 0;
  #running = 0;
  #stopped = false;

  /** An introspector that has asked nobody yet. */
  constructor(options: IntrospectorOptions) {
    this.#options = options;
    this.#concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    this.#now = options.now ?? (() => Date.now());
    this.#catalog = new Catalog({
      maxActors: Math.max(1, options.maxActors ?? DEFAULT_MAX_ACTORS),
      maxBytes: options.cacheBytes,
      onEvict: (actor, why) => log.info("forgot the commands of {actor}: {why}", { actor, why }),
    });
  }

  /** Introspection commands waiting for their end now. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Takes a reply off the reply path when it answers an introspection command
   * (its command id starts with {@linkcode INTROSPECTION_ID_PREFIX}, which
   * clients may not use), so that no client, history or state sees it: one of
   * this gateway's (by its command id and commander id, late ones too) or of
   * another gateway on the exchange. A body over `--introspection-max-bytes`
   * is refused unparsed.
   */
  claim(message: AmqpMessageLike): boolean {
    if (!isIntrospectionReply(message)) return false;
    const headers = message.properties.headers!;
    const commandId = headerText(headers.command_id)!;
    // Another gateway's question (several on one exchange): no client of ours asked for it either.
    if (!commandId.startsWith(this.#prefix)) return true;
    const pending = this.#pending.get(commandId);
    if (!pending) return true;
    // A command to `a.b` also reaches actor `a` (it binds command.a.#): only the actor asked answers it.
    if (headerText(headers.sender) !== pending.actor) return true;
    if (headerText(headers.commander_id) !== `${this.#options.identity.name}.${pending.actor}`) return true;
    const code = String(headerText(headers.message_code) ?? "").toLowerCase();
    if (code !== ":" && code !== "f" && code !== "!") return true;
    const bytes = message.content.byteLength;
    if (bytes > this.#options.maxAnswerBytes) {
      pending.finish({ kind: "too-big", bytes });
    } else if (code === ":") {
      pending.finish({ kind: "answer", body: decoder.decode(message.content) });
    } else {
      pending.finish({ kind: "failed", error: failureText(decoder.decode(message.content)) });
    }
    return true;
  }

  /**
   * A reply (not one of ours) from `sender`: asks a new actor, or asks again
   * one that changed (a new `version`), came back after it was gone, or is due
   * after a backoff. A failed-routing reply says the actor it names is gone.
   */
  seen(sender: string, code: string, body: unknown): void {
    if (!this.#options.enabled || this.#stopped || !sender) return;
    if (isFailedRouting(sender, code, body)) {
      const entry = this.#catalog.get(sender);
      if (entry) entry.gone = true;
      return;
    }
    const version = versionOf(body);
    let entry = this.#catalog.get(sender);
    if (!entry) {
      if (!commandableName(sender)) return;
      const denial = this.#options.denial(sender);
      entry = this.#catalog.add(
        sender,
        denial ? "denied" : "queued",
        denial &&
          `clu-ws does not ask it for its commands: ${denial.replace(/; the command was not sent$/, "")}`,
      );
      if (!entry) return;
      entry.version = version;
      if (!denial) this.#enqueue(entry);
      return;
    }
    if (entry.state === "denied") return;
    let due = false;
    if (version !== undefined) {
      due = entry.version !== undefined && entry.version !== version;
      entry.version = version;
    }
    if (entry.state === "queued" || entry.state === "asking") return;
    const retryDue = this.#now() >= (entry.retryAt ?? 0);
    if (entry.gone && retryDue) due = true;
    if (entry.state === "retry" && retryDue) due = true;
    if (!due) return;
    entry.gone = false;
    this.#enqueue(entry);
  }

  /** What clients are told about `actor`. */
  describe(actor: string): Description {
    if (!this.#options.enabled) {
      return { status: "none", reason: "introspection is off on this gateway (--introspection off)" };
    }
    return this.#catalog.describe(actor);
  }

  /** {@linkcode Introspector.describe} as JSON text: `{"actor", "status", "model", "schema", "help", "reason"?}`. */
  describeJson(actor: string): string {
    return descriptionJson(actor, this.describe(actor));
  }

  /** The link was lost, and with it the queue replies come back through: pending commands end unanswered. */
  linkLost(): void {
    for (const pending of [...this.#pending.values()]) {
      pending.finish({ kind: "not-sent", reason: "the RabbitMQ link was lost before the actor answered" });
    }
  }

  /** Stops asking: pending commands end, queued actors are dropped, no timer is left. */
  stop(): void {
    this.#stopped = true;
    this.#queue.length = 0;
    for (const pending of [...this.#pending.values()]) pending.finish({ kind: "stopped" });
  }

  #enqueue(entry: Entry): void {
    entry.state = "queued";
    this.#queue.push(entry);
    this.#pump();
  }

  #pump(): void {
    while (!this.#stopped && this.#running < this.#concurrency && this.#queue.length > 0) {
      const entry = this.#queue.shift()!;
      if (this.#catalog.get(entry.actor) !== entry || entry.state !== "queued") continue;
      this.#running++;
      void this.#round(entry).catch((err) => {
        log.error("asking {actor} for its commands failed: {error}", {
          actor: entry.actor,
          error: err instanceof Error ? err.stack ?? err.message : String(err),
        });
        entry.state = "retry";
        entry.retryAt = this.#now() + MAX_BACKOFF_MS;
      }).finally(() => {
        this.#running--;
        this.#pump();
      });
    }
  }

  /** Asks one actor the three commands in turn and keeps what it answered. */
  async #round(entry: Entry): Promise<void> {
    entry.state = "asking";
    const parts: { model?: string; schema?: string; help?: string } = {};
    let reason: string | undefined;
    for (const command of INTROSPECTION_COMMANDS) {
      const asked = await this.#ask(entry.actor, command);
      if (asked.kind === "stopped") return;
      const first = command === INTROSPECTION_COMMANDS[0];
      const why = this.#why(command, asked);
      if (asked.kind === "answer") {
        const extracted = extractAnswer(command, asked.body);
        if (extracted.ok) parts[partOf(command)] = extracted.json;
        else if (first) reason = extracted.reason;
      } else if (asked.kind === "failed" || asked.kind === "too-big") {
        if (first) reason = why;
      } else if (first) {
        // No answer at all (or the actor is gone): the other two would go the same way.
        return this.#unanswered(entry, asked, why);
      }
      if (asked.kind === "too-big") {
        log.warn(
          "the answer of {actor} to {command} is {bytes} bytes, over --introspection-max-bytes ({limit}); not kept",
          {
            actor: entry.actor,
            command,
            bytes: asked.bytes,
            limit: this.#options.maxAnswerBytes,
          },
        );
      }
    }
    this.#catalog.store(entry, parts, reason);
    log.info("asked {actor} for its commands: model {model}, schema {schema}, help {help}", {
      actor: entry.actor,
      model: parts.model === undefined ? `none (${reason})` : `${parts.model.length} bytes`,
      schema: parts.schema === undefined ? "none" : `${parts.schema.length} bytes`,
      help: parts.help === undefined ? "none" : `${parts.help.length} bytes`,
    });
  }

  /** The first command got no answer: the actor is gone, the link is down, or it is silent (backoff). */
  #unanswered(entry: Entry, asked: Asked, why: string): void {
    entry.state = "retry";
    if (asked.kind === "timeout" || asked.kind === "unroutable") {
      // Unroutable too: a sender of replies with no command queue (a script, a stand-in) would otherwise
      // be asked again with each of its replies.
      entry.failures++;
      const first = asked.kind === "timeout" ? MIN_BACKOFF_MS : MIN_UNROUTABLE_BACKOFF_MS;
      const wait = Math.min(first * 2 ** (entry.failures - 1), MAX_BACKOFF_MS);
      entry.retryAt = this.#now() + wait;
      entry.reason = `${why}; asked again when it is next heard from, after ${wait / 1000} s`;
    } else {
      entry.retryAt = 0;
      entry.reason = `${why}; asked again when it is next heard from`;
    }
    log.info("{actor} did not answer get-command-model: {why}", { actor: entry.actor, why: entry.reason });
  }

  #why(command: IntrospectionCommand, asked: Asked): string {
    switch (asked.kind) {
      case "failed":
        return `it answered ${command} with f (${asked.error}): it has no click command parser`;
      case "too-big":
        return `its answer to ${command} (${asked.bytes} bytes) is over --introspection-max-bytes (${this.#options.maxAnswerBytes})`;
      case "timeout":
        return `no answer to ${command} within ${this.#options.timeoutMs / 1000} s`;
      case "unroutable":
        return "no actor of that name took the command (not running)";
      case "not-sent":
        return `the command was not sent: ${asked.reason}`;
      default:
        return "";
    }
  }

  /** Sends one introspection command and resolves with how it ended; never rejects. */
  async #ask(actor: string, command: IntrospectionCommand): Promise<Asked> {
    if (this.#stopped) return { kind: "stopped" };
    const { identity, publisher, timeoutMs } = this.#options;
    const commandId = `${this.#prefix}${++this.#counter}`;
    const { promise, resolve } = Promise.withResolvers<Asked>();
    const timer = setTimeout(() => finish({ kind: "timeout" }), timeoutMs);
    const finish = (asked: Asked) => {
      if (this.#pending.get(commandId)?.finish !== finish) return;
      this.#pending.delete(commandId);
      clearTimeout(timer);
      resolve(asked);
    };
    // Registered before publishing: a quick actor may answer before the broker's confirm arrives.
    this.#pending.set(commandId, { actor, command, finish });
    const outcome = await publisher.publish(
      `command.${actor}`,
      JSON.stringify({ command_string: command }),
      {
        headers: {
          command_id: commandId,
          commander_id: `${identity.name}.${actor}`,
          internal: true,
          write_to_log: true,
        },
        messageId: newMessageId(),
        correlationId: commandId,
        replyTo: `${identity.name}_replies`,
        mandatory: true,
      },
    );
    if (!outcome.ok) finish({ kind: "not-sent", reason: outcome.reason });
    else if (outcome.returned) finish({ kind: "unroutable" });
    return await promise;
  }
}

function partOf(command: IntrospectionCommand): "model" | "schema" | "help" {
  return command === "get-command-model" ? "model" : command === "get_schema" ? "schema" : "help";
}
