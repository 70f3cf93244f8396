/// <reference lib="dom" />
/**
 * What the gateway learnt of each actor's commands and keywords (clu-ws v1
 * `describe`), asked when the console needs it and kept for the page. Asking
 * costs the gateway a lookup, never a command to the actor: the gateway
 * asked each actor once itself. While the gateway is still asking an actor
 * (`pending`), the console asks again a few times; listeners hear when an
 * actor's description arrives or changes.
 *
 * @module
 */

import type { CluClient } from "../client.ts";
import { type CommandSpec, readModel } from "./command_model.ts";

/** One actor's description, as the console uses it. */
export interface Described {
  /** The command tree, when the actor has one (a CLU click actor). */
  model?: CommandSpec;
  /** The keyword schema, when the actor gave one. */
  schema?: Record<string, unknown>;
}

/** The descriptions of the actors the console asked about. */
export interface Descriptions {
  /** The description of `actor` known now (undefined while unknown); asks the gateway if it is due. */
  get(actor: string): Described | undefined;
  /** Calls `listener` with an actor's name when its description arrives or changes; returns the stop function. */
  onChange(listener: (actor: string) => void): () => void;
  /** Forgets everything (a new connection: the gateway may have restarted). */
  clear(): void;
}

/** Actors remembered at most. */
const MAX_ACTORS = 300;
/** How often a pending description is asked again, and how many times. */
const PENDING_RETRY_MS = 1500;
const PENDING_RETRIES = 8;
/** How long a "nothing known" answer stands before it is asked again. */
const NONE_TTL_MS = 30_000;

interface Entry {
  value?: Described;
  asking: boolean;
  askedAt: number;
  retries: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** Descriptions asked through `client()`'s connection. */
export function createDescriptions(client: () => CluClient | undefined): Descriptions {
  const records = new Map<string, Entry>();
  const listeners = new Set<(actor: string) => void>();

  function ask(actor: string, record: Entry): void {
    const connection = client();
    if (!connection || record.asking) return;
    record.asking = true;
    record.askedAt = Date.now();
    connection.describe(actor).then((answer) => {
      record.asking = false;
      if (records.get(actor) !== record) return;
      if (answer.status === "pending" && record.retries < PENDING_RETRIES) {
        record.retries++;
        record.timer = setTimeout(() => {
          record.timer = undefined;
          ask(actor, record);
        }, PENDING_RETRY_MS);
        return;
      }
      const model = answer.model ? readModel(answer.model) : undefined;
      const schema = answer.schema ?? undefined;
      const had = record.value;
      record.value = model || schema ? { model, schema } : undefined;
      if (had || record.value) { for (const listener of listeners) listener(actor); }
    }, () => {
      // The connection dropped: asked again when next needed.
      record.asking = false;
    });
  }

  return {
    get(actor) {
      if (!actor) return undefined;
      let record = records.get(actor);
      if (!record) {
        if (records.size >= MAX_ACTORS) {
          const [oldest, gone] = records.entries().next().value!;
          clearTimeout(gone.timer);
          records.delete(oldest);
        }
        record = { asking: false, askedAt: 0, retries: 0 };
        records.set(actor, record);
        ask(actor, record);
      } else if (!record.value && !record.timer && Date.now() - record.askedAt > NONE_TTL_MS) {
        record.retries = 0;
        ask(actor, record);
      }
      return record.value;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    clear() {
      for (const record of records.values()) clearTimeout(record.timer);
      records.clear();
    },
  };
}
