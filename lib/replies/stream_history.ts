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
 * `--history-max-replay` replies gets `gap`.
 *
 * @module
 */

import type { AmqpMessageLike } from "../protocol/clu.ts";
import type { StreamHistoryConfig } from "../config/config.ts";
import type { StreamReader, StreamReaderEvents } from "../broker/link.ts";
import type { Client, Hub } from "../clients/hub.ts";
import { encodeError, encodeGap, encodeResumed, type RequestId } from "../protocol/v1.ts";
import { isMarker } from "../broker/stream.ts";
import { decodeReply, v1ReplyFrame } from "./replies.ts";
import { logger } from "../log.ts";

const log = logger("history");

/** Messages a replay's reader may hold unacknowledged. */
export const REPLAY_PREFETCH = 500;
/** How long a resume waits for the stream to be readable (link up, end known) before `gap` (ms). */
const READY_TIMEOUT_MS = 10_000;
/** How long a replay waits for its next message before giving up (ms). */
const IDLE_TIMEOUT_MS = 15_000;
/** How often a paused replay looks whether its client's socket drained (ms). */
const DRAIN_CHECK_MS = 20;
/** Close code for a client whose replay was cut (RFC 6455 "try again later"): it reconnects and resumes. */
export const CLOSE_TRY_AGAIN = 1013;

/** What the stream history needs of the broker link. */
export interface StreamSource {
  /** Whether the link is up. */
  readonly up: boolean;
  /** Opens a reader of the stream at `offset`, or at the first chunk written since a time. */
  readStream(offset: number | Date, prefetch: number, events: StreamReaderEvents): Promise<StreamReader>;
  /** Appends a marker to the stream (readers skip it): a reader waiting at the end gets a message. */
  appendMarker(): void;
}

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
    this.#liveNext = offset + 1;
    this.#options.replies.receive(message, offset + 1);
    this.#wake();
  }

  /** A marker read live at `offset`: the end is known (and moves past it). */
  marker(offset: number): void {
    if (this.#liveNext !== undefined && offset < this.#liveNext) return;
    this.#liveNext = offset + 1;
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
      return this.#end(
        client,
        () => this.#gap(client, id, "the history stream cannot be read now (RabbitMQ link down)"),
      );
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
      await this.#read(client, id, seq, since);
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

  /**
   * Reads the stream from `seq` (an offset), or from the time `since`, and
   * sends the client what it missed, until live catches it.
   */
  async #read(client: Client<G>, id: RequestId, seq: number, since?: number): Promise<void> {
    const { hub, source, config } = this.#options;
    const inbox: Array<[AmqpMessageLike, number]> = [];
    let ended: string | undefined;
    let wake: (() => void) | undefined;
    const events: StreamReaderEvents = {
      message(message, offset) {
        inbox.push([message, offset]);
        wake?.();
      },
      ended(reason) {
        ended = reason;
        wake?.();
      },
    };
    let next = seq;
    /** The position the replay is after (the client's `seq`, or where `since` starts). */
    let from = seq;
    let count = 0;
    const finish = () =>
      this.#end(client, () => hub.send(client, encodeResumed({ id, from, to: next, count })));
    if (since === undefined && next >= this.#liveNext!) return finish();
    let reader: StreamReader;
    try {
      // From the last reply the client has (a message, never a hole: offsets have holes), so that a
      // later first offset means the retention took it.
      reader = await source.readStream(
        since === undefined ? Math.max(0, seq - 1) : new Date(since),
        REPLAY_PREFETCH,
        events,
      );
      // Nothing may have come since then: the marker is the message that ends the wait at the end.
      if (since !== undefined) source.appendMarker();
    } catch (err) {
      return this.#end(client, () => this.#gap(client, id, `the history stream cannot be read now (${err})`));
    }
    const startedAt = Date.now();
    let first = true;
    let pauses = 0;
    /** Bytes sent to the client since the last turn ended. */
    let unflushed = 0;
    try {
      while (true) {
        if (!client.outbox.open) return this.#end(client, () => {});
        if (next >= this.#liveNext!) return finish();
        if (inbox.length === 0) {
          if (ended !== undefined) {
            const why = ended;
            return this.#end(
              client,
              () => client.outbox.close(CLOSE_TRY_AGAIN, `replay cut: ${why}; reconnect to resume`),
            );
          }
          let timer: ReturnType<typeof setTimeout> | undefined;
          const idle = new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), IDLE_TIMEOUT_MS);
            wake = () => resolve(true);
          });
          // The live position may move past everything while the reader waits (e.g. markers only).
          const moved = this.#nextWake(IDLE_TIMEOUT_MS).then(() => true);
          const woke = await Promise.race([idle, moved]);
          clearTimeout(timer);
          wake = undefined;
          if (!woke) {
            return this.#end(
              client,
              () =>
                this.#gap(client, id, `the history stream delivered nothing for ${IDLE_TIMEOUT_MS / 1000} s`),
            );
          }
          continue;
        }
        const [message, offset] = inbox.shift()!;
        if (first && since !== undefined) {
          first = false;
          from = next = Math.min(offset, this.#liveNext!);
          if (this.#liveNext! - from > config.maxReplay) {
            // Too far back for one resume: the last --history-max-replay positions only.
            await reader.close();
            inbox.length = 0;
            from = next = this.#liveNext! - config.maxReplay;
            try {
              reader = await source.readStream(next, REPLAY_PREFETCH, events);
            } catch (err) {
              return this.#end(
                client,
                () => this.#gap(client, id, `the history stream cannot be read now (${err})`),
              );
            }
            continue;
          }
        }
        if (first) {
          first = false;
          // A stream reader starts at the first offset still kept: a later one than the client's last
          // reply (or than 0 for a client that has none) means the retention took what it missed.
          if (offset > Math.max(0, seq - 1)) {
            return this.#end(client, () =>
              this.#gap(
                client,
                id,
                `replies after ${seq} are no longer in the stream (its retention, --history-max-age and --history-max-bytes)`,
                offset + 1,
              ));
          }
        }
        // Not yet delivered live: the live consumer sends it once the client is back in the fan-out.
        if (offset >= this.#liveNext!) return finish();
        if (offset >= next) {
          next = offset + 1;
          // By time: a stream is positioned by chunks, so what its first chunk holds from before `since` is
          // left out by the reply's own timestamp (seconds), when it has one.
          const stamp = message.properties.timestamp;
          const before = since !== undefined && typeof stamp === "number" && stamp < Math.floor(since / 1000);
          if (!isMarker(message) && !before) {
            const decoded = decodeReply(message);
            if (decoded.kind === "reply") {
              const frame = v1ReplyFrame(offset + 1, decoded.reply.frame);
              const sent = hub.replay(client, [{ frame, meta: decoded.meta }]);
              count += sent;
              unflushed += sent * frame.length;
            }
          }
        }
        // Flow control: what the socket has not taken is not acknowledged, so the broker waits too.
        if (hub.backlogged(client, unflushed)) {
          // Writes of this turn are corked: let them reach the socket before its backlog is looked at.
          await new Promise((resolve) => setTimeout(resolve, 0));
          unflushed = 0;
        }
        if (hub.backlogged(client)) {
          if (pauses++ === 0) {
            log.debug("replay to client {client} paused at {seq}: {bytes} bytes wait for its socket", {
              client: client.id,
              seq: next,
              bytes: client.outbox.buffered,
            });
          }
          while (hub.backlogged(client) && client.outbox.open) {
            await new Promise((resolve) => setTimeout(resolve, DRAIN_CHECK_MS));
          }
        }
        reader.ack(message);
        if (next - from > 2 * config.maxReplay) {
          return this.#end(
            client,
            () =>
              client.outbox.close(
                CLOSE_TRY_AGAIN,
                "the replay could not catch up with live replies; reconnect to resume",
              ),
          );
        }
      }
    } finally {
      await reader.close();
      log.debug(
        "replayed {count} replies to client {client} from {from} to {to} in {ms} ms ({pauses} pauses)",
        {
          count,
          pauses,
          client: client.id,
          from,
          to: next,
          ms: Date.now() - startedAt,
        },
      );
    }
  }
}
