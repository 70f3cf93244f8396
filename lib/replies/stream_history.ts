/**
 * The history on a RabbitMQ stream (`--history stream`): every gateway of an
 * exchange reads its replies from one stream, so a reply's position (`seq`,
 * its offset plus one) is the same on every gateway and across restarts, and
 * the epoch names the stream. A client's `resume` is answered from the
 * stream, on any gateway.
 *
 * The hand-over from replay to live: the moment a client asks to resume, it
 * leaves the live fan-out ({@linkcode Hub.hold}); a reader of its own reads
 * the stream from the client's position and sends it every reply before the
 * live position (the next offset the live consumer will deliver); when the
 * two meet, in one synchronous step, the client rejoins the fan-out and gets
 * `resumed`. Replies that arrived live meanwhile reached it through the
 * replay, since they are in the stream: nothing is missed, nothing sent
 * twice, and the order is the stream's.
 *
 * Bounds: at most `--history-replays` readers at once (others wait their
 * turn, one per client); each reads `REPLAY_PREFETCH` messages ahead and
 * acknowledges only what its client's socket took, pausing while more than
 * half of its budget waits; a client further behind than
 * `--history-max-replay` positions gets `gap`. A resume that cannot read the
 * stream (the link down for 10 s, a reader lost) closes the socket with 1013:
 * nothing is lost yet, and the client asks again after reconnecting.
 *
 * @module
 */

import type { AmqpMessageLike } from "../protocol/clu.ts";
import type { StreamHistoryConfig } from "../config/config.ts";
import type { Client, Hub } from "../clients/hub.ts";
import { encodeError, encodeGap, encodeResumed, type RequestId } from "../protocol/v1.ts";
import { CLOSE_TRY_AGAIN, replayFromStream, type StreamSource } from "./stream_replay.ts";
import { logger } from "../log.ts";

export { CLOSE_TRY_AGAIN, REPLAY_PREFETCH, type StreamSource } from "./stream_replay.ts";

const log = logger("history");

/** Close code for v1 clients when the stream started over (RFC 6455 "service restart"). */
export const CLOSE_RESTART = 1012;
/** How long a v1 welcome waits for the live position (link up, the stream's end read) before `seq` 0 (ms). */
const WELCOME_WAIT_MS = 3_000;
/** How long a resume waits for the stream to be readable (link up, end known) before a 1013 close (ms). */
const READY_TIMEOUT_MS = 10_000;

/** What the stream history delivers live replies through. */
export interface LiveReceiver {
  /** Takes one reply all the way (replies.ts), at position `seq`. */
  receive(message: AmqpMessageLike, seq: number): void;
}

/** A resume request, validated. */
export interface ResumeArgs {
  /** Echoed in the answer. */
  id: RequestId;
  /** The client's epoch. */
  epoch: string;
  /** The last position it received. */
  seq: number;
  /** Instead of `seq`: the replies since this time (ms since 1970). */
  since?: number;
}

/** Options for {@linkcode StreamHistory}. */
export interface StreamHistoryOptions<G> {
  /** The stream's settings. */
  config: StreamHistoryConfig;
  /** The clients. */
  hub: Hub<G>;
  /** The live path for each reply read. */
  replies: LiveReceiver;
  /** The broker link. */
  source: StreamSource;
}

/** The epoch of a history stream: its name, the same on every gateway and across restarts. */
export function streamEpoch(name: string): string {
  return `stream:${name}`;
}

/** Resumes from a RabbitMQ stream, and the live position in it. */
export class StreamHistory<G> {
  readonly #options: StreamHistoryOptions<G>;
  readonly #epoch: string;
  /** The next offset the live consumer will deliver; undefined until the first message (or marker) is read. */
  #liveNext: number | undefined;
  /** Since when every reply is read live (the live position known); for resumes by time. */
  #readingSince: number | undefined;
  /** When the last reply was read live. */
  #lastLiveAt: number | undefined;
  /** Wakes whoever waits for the stream to become readable, or for the live position to move. */
  #waiters = new Set<() => void>();
  #running = 0;
  /** Replays waiting for a reader slot, first come first served. */
  readonly #queue: Array<() => void> = [];
  /** Clients with a resume in progress (one each). */
  readonly #resuming = new WeakSet<Client<G>>();

  /** A stream history; nothing is read until the link reads the stream. */
  constructor(options: StreamHistoryOptions<G>) {
    this.#options = options;
    this.#epoch = streamEpoch(options.config.name);
  }

  /** The epoch: the stream's name. */
  get epoch(): string {
    return this.#epoch;
  }

  /** The newest position read live (the live offset), 0 until the stream's end is known. */
  get latestSeq(): number {
    return this.#liveNext ?? 0;
  }

  /**
   * Undefined when the live position is known; else a promise that resolves
   * once it is, or after `timeoutMs`.
   */
  positionKnown(timeoutMs = WELCOME_WAIT_MS): Promise<void> | undefined {
    if (this.#liveNext !== undefined) return undefined;
    const deadline = Date.now() + timeoutMs;
    return (async () => {
      while (this.#liveNext === undefined && Date.now() < deadline) {
        await this.#nextWake(Math.max(1, deadline - Date.now()));
      }
    })();
  }

  /** Replays running now. */
  get replaying(): number {
    return this.#running;
  }

  /** Where the live consumer should start on link up: after the last message read, or the stream's end. */
  from(): number | undefined {
    return this.#liveNext;
  }

  /** A reply read live at `offset`. */
  live(message: AmqpMessageLike, offset: number): void {
    // A reconnected consumer starts at a chunk's start: what came before was delivered already.
    if (this.#liveNext !== undefined && offset < this.#liveNext) return;
    this.#known();
    this.#liveNext = offset + 1;
    this.#lastLiveAt = Date.now();
    this.#options.replies.receive(message, offset + 1);
    this.#wake();
  }

  /** A marker read live at `offset`: the end is known (and moves past it). */
  marker(offset: number): void {
    if (this.#liveNext !== undefined && offset < this.#liveNext) return;
    this.#known();
    this.#liveNext = offset + 1;
    this.#wake();
  }

  /** The live position becomes known: from now on, every reply is read live. */
  #known(): void {
    if (this.#liveNext === undefined) this.#readingSince = Date.now();
  }

  /**
   * The stream started over (deleted and declared again) at `offset`: the
   * live position is forgotten (the next link reads from the new end), and
   * v1 clients are closed with 1012 so that they reconnect; those that resume
   * from the old positions get `gap`.
   */
  restart(offset: number): void {
    this.#liveNext = undefined;
    this.#readingSince = undefined;
    const clients = [...this.#options.hub.clients()].filter((client) => client.v1);
    for (const client of clients) {
      client.outbox.close(CLOSE_RESTART, `the history stream started over at ${offset}; reconnect`);
    }
    this.#wake();
  }

  /** The link's state changed: waiters look again. */
  linkChanged(): void {
    this.#wake();
  }

  #wake(): void {
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Resolves at the next wake-up, or after `ms`. */
  #nextWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  /**
   * Answers a `resume`: a `gap` at once when nothing can be replayed, else
   * takes the client out of the live fan-out now and replays to it from the
   * stream in the background, ending with `resumed`.
   */
  resume(client: Client<G>, args: ResumeArgs): void {
    const { hub } = this.#options;
    if (args.epoch !== this.#epoch) {
      return this.#gap(client, args.id, `another epoch (${args.epoch}); nothing can be replayed from it`);
    }
    if (this.#resuming.has(client)) {
      // Not a gap: nothing is lost, the resume in progress goes on.
      return hub.send(
        client,
        encodeError({
          id: args.id,
          error: "a resume is already in progress on this connection; wait for its answer",
        }),
      );
    }
    if (args.since === undefined && this.#liveNext !== undefined && args.seq === this.#liveNext) {
      // Nothing missed: answered at once.
      return hub.send(client, encodeResumed({ id: args.id, from: args.seq, to: args.seq, count: 0 }));
    }
    const live = this.#liveNext;
    if (
      args.since !== undefined && live !== undefined && this.#readingSince !== undefined &&
      args.since >= this.#readingSince && args.since > (this.#lastLiveAt ?? -Infinity)
    ) {
      // Read live all along, and nothing since then: answered at once, without reading the stream.
      return hub.send(client, encodeResumed({ id: args.id, from: live, to: live, count: 0 }));
    }
    this.#resuming.add(client);
    hub.hold(client);
    this.#replay(client, args).catch((err) => {
      log.error("replay to client {client} failed: {error} (please report it)", {
        client: client.id,
        error: String(err),
      });
      this.#end(client, () => client.outbox.close(CLOSE_TRY_AGAIN, "the replay failed; reconnect to resume"));
    });
  }

  /** Releases the client into the live fan-out and tells it how the resume ended, in one step. */
  #end(client: Client<G>, answer: () => void): void {
    this.#resuming.delete(client);
    this.#options.hub.release(client);
    answer();
  }

  #gap(client: Client<G>, id: RequestId, reason: string, oldest = 0): void {
    const latest = this.latestSeq;
    this.#options.hub.send(client, encodeGap({ id, reason, epoch: this.#epoch, oldest, latest }));
  }

  async #replay(client: Client<G>, { id, seq, since }: ResumeArgs): Promise<void> {
    const { config, source } = this.#options;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((!source.up || this.#liveNext === undefined) && Date.now() < deadline && client.outbox.open) {
      await this.#nextWake(Math.max(1, deadline - Date.now()));
    }
    if (!client.outbox.open) return this.#end(client, () => {});
    if (!source.up || this.#liveNext === undefined) {
      // Not a gap: nothing is lost yet. The client reconnects and asks again (the client module does).
      return this.#end(client, () =>
        client.outbox.close(
          CLOSE_TRY_AGAIN,
          "the history stream cannot be read now (RabbitMQ link down); reconnect to resume",
        ));
    }
    if (since === undefined && seq > this.#liveNext) {
      return this.#end(
        client,
        () => this.#gap(client, id, `seq ${seq} is ahead of the stream's end (${this.#liveNext})`),
      );
    }
    if (since === undefined && this.#liveNext - seq > config.maxReplay) {
      return this.#end(client, () =>
        this.#gap(
          client,
          id,
          `${
            this.#liveNext! - seq
          } replies were missed; a resume replays at most ${config.maxReplay} (--history-max-replay)`,
        ));
    }
    await this.#slot();
    try {
      await replayFromStream({
        hub: this.#options.hub,
        source,
        config,
        client,
        id,
        seq,
        since,
        liveNext: () => this.#liveNext!,
        nextWake: (ms) => this.#nextWake(ms),
        end: (answer) => this.#end(client, answer),
        gap: (reason, oldest) => this.#gap(client, id, reason, oldest),
      });
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  /** Waits for a reader slot (at most `--history-replays` at once). */
  async #slot(): Promise<void> {
    if (this.#running >= this.#options.config.replays) {
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    }
    this.#running++;
  }
}
