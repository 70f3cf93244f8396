/**
 * The clu-ws client: one module for browsers (served by the gateway as
 * `/client.js`) and Deno. It speaks clu-ws v1 (docs/protocol.md): it
 * reconnects with backoff and resumes from the last position it saw, so
 * nothing is missed or seen twice; it runs commands and resolves when they end;
 * and it feeds keyword watchers from the gateway's state and then from live
 * replies.
 *
 * ```js
 * import { CluClient } from "/client.js";
 * const client = await CluClient.connect("wss://gateway:9876/", { token: "…" });
 * const status = await client.command("lvmecp", "status");   // resolves on ":", rejects on "f"
 * client.watch("lvmecp", "dome_status", (value) => console.log("dome", value));
 * client.on("reply", (frame) => console.log(frame.headers.sender, frame.body));
 * ```
 *
 * This file is the session: what each frame means and what a welcome sets
 * up. The socket and its backoff, the command promises, the watchers, the
 * stream position and the event plumbing each live in `web/client/`.
 *
 * @module
 */

import type {
  ClientControlFrame,
  DescribeFrame,
  ServerControlFrame,
  StateFrame,
  Subscription,
  Welcome,
} from "../lib/protocol/v1.ts";
import type { SeriesFrame } from "../lib/protocol/v1_series.ts";
import { type CommandResult, newCommandId, PendingCommands } from "./client/commands.ts";
import { Connection } from "./client/connection.ts";
import { Emitter } from "./client/emitter.ts";
import { StreamPosition } from "./client/position.ts";
import { Requests } from "./client/requests.ts";
import type { ClientOptions, ConnectionState, Events, Frame } from "./client/types.ts";
import { Watchers } from "./client/watchers.ts";

export type {
  ActorSnapshot,
  CommandStatus,
  DescribeFrame,
  KeywordState,
  RequestId,
  StateFrame,
  Subscription,
  Welcome,
} from "../lib/protocol/v1.ts";
export type { SeriesFrame, SeriesPoints } from "../lib/protocol/v1_series.ts";
export { CommandError, type CommandResult } from "./client/commands.ts";
export type { ClientOptions, ConnectionState, Events, Frame, GapInfo } from "./client/types.ts";

/** A clu-ws v1 connection that survives reconnects. */
export class CluClient {
  readonly #options: ClientOptions;
  readonly #events = new Emitter<Events>(["reply", "connection", "broker", "gap", "welcome"]);
  readonly #commands = new PendingCommands();
  readonly #requests = new Requests<ClientControlFrame, ServerControlFrame>();
  readonly #watchers = new Watchers();
  readonly #position = new StreamPosition();
  readonly #connection: Connection;
  #welcome: Welcome | undefined;
  #subscription: Subscription | undefined;
  #state: ConnectionState = "connecting";
  /** While {@linkcode CluClient.repliesSince} is answered: replies up to `upTo` are its, not live ones. */
  #collect: { upTo: number; frames: Frame[] } | undefined;
  #opened: PromiseWithResolvers<Welcome>;

  /** Starts connecting to `url` (ws:// or wss://); see {@linkcode CluClient.connect}. */
  constructor(url: string, options: ClientOptions = {}) {
    this.#options = options;
    this.#subscription = options.subscribe;
    this.#opened = Promise.withResolvers<Welcome>();
    this.#opened.promise.catch(() => {});
    this.#connection = new Connection(url, {
      ...options,
      events: {
        connecting: () => this.#setState("connecting"),
        failed: (error) => this.#opened.reject(error),
        message: (text) => this.#onMessage(text),
        lost: (event) => this.#onLost(event),
        ended: () => this.#commands.failAll("the connection closed"),
      },
    });
    this.#connection.open();
  }

  /** Connects and resolves once the gateway has welcomed this client. */
  static async connect(url: string, options: ClientOptions = {}): Promise<CluClient> {
    const client = new CluClient(url, options);
    try {
      await client.#opened.promise;
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** The gateway's welcome on the current connection, if connected. */
  get welcome(): Welcome | undefined {
    return this.#welcome;
  }

  /** The connection's state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The position of the newest reply received. */
  get lastSeq(): number {
    return this.#position.lastSeq;
  }

  /** Listens to `reply`, `connection`, `broker`, `gap` or `welcome`; returns the function that stops it. */
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#events.emit("connection", state);
  }

  #onLost(event: CloseEvent): void {
    this.#welcome = undefined;
    this.#position.dropHeld();
    this.#requests.failAll("connection lost");
    this.#setState("closed");
    // connect() settles on the first attempt; a client made with `new` keeps trying.
    this.#opened.reject(
      new Error(
        `connection closed before ${this.#connection.url} welcomed this client (${event.code}${
          event.reason ? ` ${event.reason}` : ""
        }): is it a clu-ws gateway, and is the token right?`,
      ),
    );
  }

  #onMessage(text: string): void {
    let data: Frame | ServerControlFrame | Frame[];
    try {
      data = JSON.parse(text);
    } catch {
      return;
    }
    for (const frame of Array.isArray(data) ? data : [data]) this.#onParsed(frame);
  }

  #onParsed(frame: Frame | ServerControlFrame): void {
    if ("clu-ws" in frame) {
      this.#onControl(frame as ServerControlFrame);
      return;
    }
    const reply = frame as Frame;
    const collect = this.#collect;
    if (collect && reply.seq !== undefined && reply.seq <= collect.upTo) {
      // Older than anything live: history for the caller (the gateway bounds how many).
      collect.frames.push(reply);
      return;
    }
    if (this.#position.holdReply(reply)) return;
    this.#deliver(reply);
  }

  /** A reply in order: dropped if seen already, else it feeds its command, the watchers and listeners. */
  #deliver(reply: Frame): void {
    if (!this.#position.advance(reply)) return;
    this.#commands.reply(reply);
    if (reply.seq !== undefined && reply.headers.sender) {
      this.#watchers.feed(reply.headers.sender, reply.body, { seq: reply.seq, frame: reply });
    }
    this.#events.emit("reply", reply);
  }

  #onControl(frame: ServerControlFrame): void {
    switch (frame["clu-ws"]) {
      case "welcome":
        this.#onWelcome(frame);
        return;
      case "broker":
        this.#events.emit("broker", String(frame.state));
        return;
      case "done":
        // After a resume, the held replies of that command come first.
        this.#position.holdSettle(() =>
          this.#commands.settle(String(frame.command_id), {
            status: frame.status,
            code: frame.code ?? null,
            error: frame.error,
          })
        );
        return;
      case "accepted":
      case "published":
        return;
    }
    this.#requests.answer(frame);
  }

  async #onWelcome(welcome: Welcome): Promise<void> {
    this.#welcome = welcome;
    this.#connection.resetBackoff();
    this.#setState("open");
    this.#events.emit("broker", welcome.broker);
    const position = this.#position;
    try {
      // Live replies may overtake the replay of a resume: hold them until it is answered.
      if (position.epoch === welcome.epoch) position.hold();
      if (this.#options.batch) await this.#request({ "clu-ws": "options", batch: true });
      if (position.epoch === undefined) {
        position.restart(welcome.epoch, welcome.seq);
        await this.#resubscribe();
        await this.#refreshWatchers();
      } else if (position.epoch === welcome.epoch) {
        await this.#resubscribe();
        const answer = await this.#request({
          "clu-ws": "resume",
          epoch: position.epoch,
          seq: position.lastSeq,
        });
        position.release((reply) => this.#deliver(reply));
        if (answer["clu-ws"] === "gap") await this.#afterGap(String(answer.reason), welcome);
      } else {
        // A new epoch: positions restart, so forget the old ones before anything else arrives.
        const previous = position.epoch;
        position.restart(welcome.epoch, welcome.seq);
        await this.#resubscribe();
        await this.#afterGap(`the gateway restarted (epoch ${previous} → ${welcome.epoch})`, welcome);
      }
    } catch {
      // The connection dropped while setting up; the next welcome starts over.
      position.stopHolding();
      return;
    }
    this.#events.emit("welcome", welcome);
    this.#opened.resolve(welcome);
  }

  async #resubscribe(): Promise<void> {
    if (this.#subscription) await this.#request({ "clu-ws": "subscribe", ...this.#subscription });
  }

  async #afterGap(reason: string, welcome: Welcome): Promise<void> {
    this.#position.restart(welcome.epoch, welcome.seq);
    this.#watchers.forgetPositions();
    this.#events.emit("gap", { reason, epoch: welcome.epoch });
    await this.#refreshWatchers();
  }

  async #refreshWatchers(): Promise<void> {
    const actors = this.#watchers.actors();
    if (actors.length === 0) return;
    this.#watchers.feedState(await this.actorState(actors));
  }

  #request(request: ClientControlFrame): Promise<ServerControlFrame> {
    return this.#requests.send(request, this.#connection);
  }

  /** Changes what this client receives (also after reconnects). */
  async subscribe(subscription: Subscription = {}): Promise<void> {
    this.#subscription = subscription;
    await this.#request({ "clu-ws": "subscribe", ...subscription });
  }

  /**
   * The replies since `since` (a Date, or ms since 1970), oldest first, from
   * the gateway's history stream (`--history stream`); e.g. "the last 10
   * minutes" on a fresh page. They come as this list, not as `reply` events;
   * live replies go on meanwhile. At most the gateway's `--history-max-replay`
   * newest. Rejects when the gateway has no history stream, or with the `gap`'s
   * reason.
   */
  async repliesSince(since: Date | number): Promise<Frame[]> {
    const epoch = this.#welcome?.epoch;
    if (epoch === undefined) throw new Error("not connected");
    if (this.#collect) throw new Error("repliesSince is already running");
    const collect = { upTo: this.#position.lastSeq, frames: [] as Frame[] };
    this.#collect = collect;
    try {
      const answer = await this.#request({ "clu-ws": "resume", epoch, since: Number(since) });
      if (answer["clu-ws"] === "gap") throw new Error(String(answer.reason));
      return collect.frames;
    } finally {
      this.#collect = undefined;
    }
  }

  /** The actors' latest keywords (all actors, or those matching the names or globs given). */
  async actorState(actors?: string[]): Promise<Pick<StateFrame, "seq" | "actors">> {
    const answer = await this.#request({ "clu-ws": "state", ...(actors ? { actors } : {}) });
    return answer as StateFrame;
  }

  /**
   * The recent points of `actor`'s numeric keywords, oldest first, from the
   * gateway's keyword history: a keyword gives all its series (`position` gives
   * `position[0]`, `position[1]`, …), `position[1]` one. Times are the
   * gateway's (ms); `now` is its clock when it answered, `seq` the position the
   * points are as of (replies after it bring newer ones).
   */
  async series(
    actor: string,
    keywords: string[],
    options: { since?: number; points?: number } = {},
  ): Promise<Pick<SeriesFrame, "seq" | "now" | "actor" | "series">> {
    return await this.#request({ "clu-ws": "series", actor, keywords, ...options }) as SeriesFrame;
  }

  /**
   * Sends a control operation this module has no method for (one a newer
   * gateway may offer) and resolves with the gateway's answer; rejects when the
   * gateway answers `error` (an operation it does not know, say) or the
   * connection is lost.
   */
  async request(operation: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    // The id is the module's own, to match the answer: a caller's `id` would break that.
    const { id: _ignored, ...rest } = fields;
    const frame = { ...rest, "clu-ws": operation } as unknown as ClientControlFrame;
    return await this.#request(frame) as unknown as Record<string, unknown>;
  }

  /**
   * What the gateway learnt of `actor`'s commands and keywords: its command
   * model, keyword schema and help (each null when unknown), and `status`
   * `pending` while the gateway is still asking it.
   */
  async describe(actor: string): Promise<Omit<DescribeFrame, "clu-ws" | "id">> {
    const { "clu-ws": _, id: _id, ...description } = await this.#request({
      "clu-ws": "describe",
      actor,
    }) as DescribeFrame;
    return description;
  }

  /**
   * Runs `commandString` on `actor`; resolves with its replies when it ends
   * with `:`, rejects with a {@linkcode CommandError} on `f`, `!`, a refusal
   * or the timeout (seconds).
   */
  command(
    actor: string,
    commandString: string,
    { timeout, commandId }: { timeout?: number; commandId?: string } = {},
  ): Promise<CommandResult> {
    const seconds = timeout ?? this.#options.commandTimeout ?? 30;
    const id = commandId ?? newCommandId();
    const promise = this.#commands.start(id, { consumer: actor, timeoutSeconds: seconds });
    const sent = this.#connection.send(JSON.stringify({
      consumer: actor,
      command_string: commandString,
      command_id: id,
      ack: true,
      track: true,
      timeout: seconds,
    }));
    if (!sent) {
      this.#commands.settle(id, { status: "failed", code: null, error: "not connected to the gateway" });
    }
    return promise;
  }

  /**
   * Calls `callback` with the latest value of `actor`'s `keyword`: first from
   * the gateway's state, then on every reply that carries it. Returns the
   * function that stops watching.
   */
  watch(actor: string, keyword: string, callback: (value: unknown, frame?: Frame) => void): () => void {
    const watcher = this.#watchers.add(actor, keyword, callback);
    if (this.#welcome) {
      this.actorState([actor]).then((snapshot) => {
        const kw = snapshot.actors[actor]?.keywords[keyword];
        if (kw && this.#watchers.has(watcher)) {
          this.#watchers.feed(actor, { [keyword]: kw.value }, { seq: snapshot.seq });
        }
      }).catch(() => {/* refreshed on the next welcome */});
    }
    return () => this.#watchers.delete(watcher);
  }

  /** Closes for good: no reconnect; commands still pending fail. */
  close(): void {
    const closing = this.#connection.close();
    this.#commands.failAll("the client was closed");
    if (!closing) this.#setState("closed");
  }
}
