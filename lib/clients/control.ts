/**
 * The answers to a clu-ws v1 client's operations (docs/protocol.md):
 * `subscribe`, `resume`, `state`, `options`, `series` and `describe`, validated by `protocol/v1.ts`
 * and answered with its encoders.
 *
 * @module
 */

import type { ActorState } from "../replies/actor_state.ts";
import { compileFilter } from "./filter.ts";
import { compileGlobs } from "../protocol/glob.ts";
import {
  encodeDescribe,
  encodeError,
  encodeGap,
  encodeOptions,
  encodeResumed,
  encodeState,
  encodeSubscribed,
  type RequestId,
} from "../protocol/v1.ts";
import type { ClientControl } from "../protocol/v1_parse.ts";
import type { History } from "../replies/history.ts";
import type { Client, Hub } from "./hub.ts";
import { answerSeries } from "./series_answer.ts";
import type { KeywordSeries } from "../replies/keyword_series.ts";

/** What the operations read. */
export interface ControlContext<G> {
  /** The connected clients. */
  hub: Hub<G>;
  /** Recent replies for `resume`. */
  history: History;
  /** The actors' keywords for `state`. */
  state: ActorState;
  /** This run's epoch. */
  epoch: string;
  /** The newest reply's position. */
  latestSeq(): number;
  /** The numeric keywords' recent points for `series` (none kept when absent). */
  series?: KeywordSeries;
  /** What the gateway learnt of an actor's commands, as JSON text (`introspection/`). */
  describe(actor: string): string;
  /** Answers `resume` instead of the history (`--history stream`). */
  resumer?: Resumer<G>;
}

/** Who answers `resume` when the history is not in this process (the stream history). */
export interface Resumer<G> {
  /** Answers a client's `resume` (`resumed`, `gap` or `error`), now or later. */
  resume(client: Client<G>, args: { id: RequestId; epoch: string; seq: number; since?: number }): void;
}

/** A valid operation (errors are answered by the caller, who counts them). */
export type Operation = Exclude<ClientControl, { op: "error" }>;

/** Answers the operations of v1 clients. */
export class ControlOperations<G> {
  readonly #context: ControlContext<G>;

  /** Operations on a gateway's hub, history and state. */
  constructor(context: ControlContext<G>) {
    this.#context = context;
  }

  /** Answers a client's valid operation. */
  answer(client: Client<G>, operation: Operation): void {
    const { hub } = this.#context;
    const { id } = operation;
    switch (operation.op) {
      case "subscribe": {
        const { subscription } = operation;
        hub.setFilter(
          client,
          Object.keys(subscription).length === 0 ? undefined : compileFilter(subscription),
        );
        return hub.send(client, encodeSubscribed({ id, filter: subscription }));
      }
      case "resume":
        if (this.#context.resumer) return this.#context.resumer.resume(client, operation);
        if (operation.since !== undefined) {
          return hub.send(
            client,
            encodeError({
              id,
              error: `resume by time ("since") needs the history stream (--history stream)`,
            }),
          );
        }
        return this.#resume(client, operation);
      case "options":
        if (operation.batch !== undefined) hub.setBatch(client, operation.batch);
        return hub.send(client, encodeOptions({ id, batch: client.outbox.batching }));
      case "state": {
        const globs = operation.actors === undefined ? undefined : compileGlobs(operation.actors);
        const snapshot = this.#context.state.snapshotJson(globs);
        return hub.send(client, encodeState(snapshot, { id, seq: this.#context.latestSeq() }));
      }
      case "series":
        return hub.send(client, answerSeries(this.#context, operation));
      case "describe":
        return hub.send(client, encodeDescribe(this.#context.describe(operation.actor), { id }));
    }
  }

  /** Replays what the client missed after `seq`, or tells it of a gap. */
  #resume(
    client: Client<G>,
    { id, epoch: theirs, seq }: { id: RequestId; epoch: string; seq: number },
  ): void {
    const { epoch, history, hub } = this.#context;
    const latest = this.#context.latestSeq();
    const oldest = history.oldest() ?? latest + 1;
    const gap = (reason: string) => hub.send(client, encodeGap({ id, reason, epoch, oldest, latest }));
    if (theirs !== epoch) {
      return gap("the gateway restarted since (another epoch); nothing can be replayed");
    }
    if (seq > latest) return gap(`seq ${seq} is ahead of this gateway's latest (${latest})`);
    const entries = history.after(seq, latest);
    if (entries === undefined) {
      return gap(`replies after ${seq} are no longer kept (the history starts at ${oldest})`);
    }
    // Synchronous: no live reply can slip in between the replay and the answer.
    const count = hub.replay(client, entries);
    hub.send(client, encodeResumed({ id, from: seq, to: latest, count }));
  }
}
