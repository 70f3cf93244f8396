// Stopping under load: SIGTERM while an AMQP publisher floods reply.broadcast
// and websocket clients send commands as fast as they are answered. The
// gateway must exit 0 in time, say goodbye (1001) to its clients, and leave a
// log in which every command it took has exactly one outcome; a command it
// failed while the client was still connected must have reached that client
// as an `f` frame.
//
// What is deterministic and what is not: Deno (2.9.6) drops a websocket at once
// when a data frame arrives after its own close frame went out, and the unread
// data makes the kernel reset the connection, which can discard the close frame
// and the last frames before it. So a client still sending while the gateway
// closes it may see an abnormal close (code 0 in Deno, 1006 in browsers). The
// test runs "steady" clients, which stop sending and have every command answered
// just before the signal (1001 is certain for them), and "noisy" clients, which
// send through the shutdown (commands arrive while it stops; their close code is
// reported, and their frames are checked only when their close was clean).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { startActor } from "./helpers/actor.ts";
import { connectBroker, uniqueExchange, until } from "./helpers/broker.ts";
import { type LogRecord, startGateway } from "./helpers/gateway_process.ts";
import type { Frame } from "./helpers/ws_client.ts";
import { ActorWatch } from "./helpers/actor_watch.ts";

/** Actor queues are per broker, not per exchange: a name of this run's own. */
const ACTOR = `testactor-${crypto.randomUUID().slice(0, 8)}`;
/** Clients that go quiet (every command answered) just before the signal. */
const STEADY = 3;
/** Clients that keep sending until their socket closes. */
const NOISY = 2;
/** Commands each client keeps unanswered. */
const WINDOW = 16;
/** Broadcasts published between two waits for the broker's confirms. */
const FLOOD_BATCH = 50;
const OUTCOMES = ["published", "unroutable", "failed"];

/** Rejects with `what` if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A websocket client that sends `ping` commands with ids `<prefix>-<n>`, keeping
 * {@linkcode WINDOW} of them unanswered, until its socket closes. Broadcasts are
 * counted, not kept; frames about its own commands are kept by command id.
 */
class TrafficClient {
  readonly prefix: string;
  readonly closed: Promise<CloseEvent>;
  /** Ids sent, in order. */
  readonly sent = new Set<string>();
  /** Every `f` frame about one of its commands, by command id. */
  readonly failed = new Map<string, Frame[]>();
  /** Ids answered with `:`. */
  readonly done = new Set<string>();
  /** Broadcasts received. */
  broadcasts = 0;
  /** The close event, once closed. */
  closeEvent: CloseEvent | undefined;
  readonly #socket: WebSocket;
  #quiet = false;
  #outstanding = 0;
  #next = 0;

  private constructor(socket: WebSocket, prefix: string) {
    this.#socket = socket;
    this.prefix = prefix;
    this.closed = new Promise((resolve) =>
      socket.addEventListener("close", (event) => {
        this.closeEvent = event;
        resolve(event);
      }, { once: true })
    );
    socket.addEventListener("message", (event) => this.#onMessage(event.data));
  }

  static connect(url: string, prefix: string): Promise<TrafficClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const client = new TrafficClient(socket, prefix);
      socket.addEventListener("open", () => resolve(client), { once: true });
      socket.addEventListener("error", () => reject(new Error(`client ${prefix} failed to open`)), {
        once: true,
      });
    });
  }

  /** Commands answered (`:` or `f`). */
  get answered(): number {
    return this.done.size + this.failed.size;
  }

  /** Commands sent and not yet answered. */
  get outstanding(): number {
    return this.#outstanding;
  }

  start(): void {
    this.#pump();
  }

  /** Stops sending new commands. */
  quiet(): void {
    this.#quiet = true;
  }

  #pump(): void {
    while (!this.#quiet && this.#socket.readyState === WebSocket.OPEN && this.#outstanding < WINDOW) {
      const id = `${this.prefix}-${++this.#next}`;
      this.#socket.send(JSON.stringify({ consumer: ACTOR, command_string: "ping", command_id: id }));
      this.sent.add(id);
      this.#outstanding++;
    }
  }

  #onMessage(data: unknown): void {
    if (typeof data !== "string") throw new Error(`client ${this.prefix} got a binary frame`);
    if (data.includes('"routing_key":"reply.broadcast"')) {
      this.broadcasts++;
      return;
    }
    const frame: Frame = JSON.parse(data);
    const id = frame.headers.command_id;
    if (typeof id !== "string" || !this.sent.has(id)) return;
    const code = frame.headers.message_code;
    if (code !== ":" && code !== "f") return;
    const first = !this.done.has(id) && !this.failed.has(id);
    if (code === ":") this.done.add(id);
    else this.failed.set(id, [...(this.failed.get(id) ?? []), frame]);
    if (first) {
      this.#outstanding--;
      this.#pump();
    }
  }

  async close(): Promise<void> {
    if (this.#socket.readyState !== WebSocket.CLOSED) this.#socket.close();
    await this.closed;
  }
}

/** Publishes CLU-shaped broadcasts to `reply.broadcast` as fast as the broker confirms them. */
class Flood {
  published = 0;
  error: unknown;
  readonly #connection: ChannelModel;
  readonly #channel: ConfirmChannel;
  readonly #exchange: string;
  #stopped = false;
  #running: Promise<void> = Promise.resolve();

  private constructor(connection: ChannelModel, channel: ConfirmChannel, exchange: string) {
    this.#connection = connection;
    this.#channel = channel;
    this.#exchange = exchange;
  }

  static async start(exchange: string): Promise<Flood> {
    const connection = await connectBroker();
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    const flood = new Flood(connection, channel, exchange);
    flood.#running = flood.#run().catch((err) => {
      flood.error = err;
    });
    return flood;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      for (let i = 0; i < FLOOD_BATCH; i++) {
        const seq = this.published++;
        this.#channel.publish(
          this.#exchange,
          "reply.broadcast",
          Buffer.from(JSON.stringify({ seq, text: "flood" })),
          {
            contentType: "text/json",
            timestamp: Math.floor(Date.now() / 1000),
            messageId: crypto.randomUUID().replaceAll("-", ""),
            headers: {
              message_code: "i",
              sender: ACTOR,
              command_id: null,
              commander_id: null,
              internal: false,
            },
          },
        );
      }
      await this.#channel.waitForConfirms();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
    await this.#connection.close().catch(() => {});
  }
}

/** The outcome records: "command {commandId} to {consumer} from client {client}: {outcome}". */
function outcomeRecords(logs: LogRecord[]): Array<{ record: LogRecord; index: number }> {
  return logs.flatMap((record, index) =>
    typeof record.commandId === "string" && typeof record.outcome === "string" &&
      /^command /.test(record.message)
      ? [{ record, index }]
      : []
  );
}

/** The message as LogTape renders it, with string values quoted or not. */
function renderedEither(parts: TemplateStringsArray, ...values: unknown[]): string[] {
  const render = (quote: boolean) =>
    parts.reduce(
      (text, part, i) =>
        text + part +
        (i < values.length
          ? (quote && typeof values[i] === "string" ? JSON.stringify(values[i]) : String(values[i]))
          : ""),
      "",
    );
  return [render(true), render(false)];
}

Deno.test("SIGTERM under full traffic: exit 0 within 2 s, 1001 for clients, one outcome per command", async () => {
  const exchange = uniqueExchange("sigterm");
  await using gateway = await startGateway({
    exchange,
    args: ["--log-level", "info", "--command-rate", "0"],
  });
  const actor = await startActor(exchange, ACTOR);
  let watch: ActorWatch | undefined;
  let flood: Flood | undefined;
  const steady: TrafficClient[] = [];
  const noisy: TrafficClient[] = [];
  const clients = () => [...steady, ...noisy];
  try {
    watch = await ActorWatch.start(exchange, ACTOR);
    flood = await Flood.start(exchange);
    for (let k = 0; k < STEADY; k++) steady.push(await TrafficClient.connect(gateway.url(), `s${k}`));
    for (let k = 0; k < NOISY; k++) noisy.push(await TrafficClient.connect(gateway.url(), `n${k}`));
    for (const client of clients()) client.start();
    const trafficStarted = performance.now();
    await until(
      "full traffic: every client has commands answered and broadcasts arriving",
      () => clients().every((c) => c.answered >= 100 && c.broadcasts >= 500),
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    for (const client of steady) client.quiet();
    await until("the steady clients' commands all answered", () => steady.every((c) => c.outstanding === 0), {
      timeoutMs: 15_000,
      intervalMs: 10,
    });
    const trafficSeconds = (performance.now() - trafficStarted) / 1000;
    const publishedBefore = flood.published;
    const answeredBefore = clients().reduce((sum, c) => sum + c.answered, 0);
    const receivedBefore = actor.received.length;
    const doneBefore = clients().flatMap((c) => [...c.done]);

    const { code, ms } = await gateway.stop("SIGTERM");
    await within(Promise.all(clients().map((c) => c.closed)), 10_000, "every client closed");
    await flood.stop();
    const logs = gateway.logs;

    const outcomes = outcomeRecords(logs);
    const byOutcome = (o: string) => outcomes.filter(({ record }) => record.outcome === o).length;
    const disconnects = logs.filter((r) => /^client \d+ from .* disconnected/.test(r.message));
    const codes = (group: TrafficClient[]) =>
      group.map((c) => `${c.prefix}:${c.closeEvent?.code}${c.closeEvent?.wasClean ? "" : " (not clean)"}`)
        .join(", ");
    console.log(
      `SIGTERM under traffic: stopped in ${ms.toFixed(0)} ms (exit ${code}); before the signal, in ${
        trafficSeconds.toFixed(2)
      } s: ${answeredBefore} commands answered, ${receivedBefore} reached the actor, ${publishedBefore} broadcasts published; ` +
        `in all ${
          clients().reduce((sum, c) => sum + c.sent.size, 0)
        } commands sent, ${outcomes.length} outcomes logged ` +
        `(${byOutcome("published")} published, ${byOutcome("failed")} failed, ${
          byOutcome("unroutable")
        } unroutable), ` +
        `${clients().reduce((sum, c) => sum + c.broadcasts, 0)} broadcasts received; ` +
        `${disconnects.length} of ${STEADY + NOISY} disconnects logged; close codes: steady ${
          codes(steady)
        }; noisy ${codes(noisy)}`,
    );

    assert.equal(flood.error, undefined, `the flood publisher kept publishing: ${flood.error}`);
    assert.equal(code, 0, gateway.dump());
    assert.ok(ms < 2000, `the gateway took ${ms.toFixed(0)} ms to stop`);
    for (const client of steady) {
      assert.equal(
        client.closeEvent?.code,
        1001,
        `steady client ${client.prefix} closed with ${client.closeEvent?.code} ${client.closeEvent?.reason}`,
      );
      assert.match(client.closeEvent?.reason ?? "", /shutting down/);
    }
    assert.ok(logs.some((r) => r.message === "stopped"), `the log says "stopped":\n${gateway.dump()}`);
    assert.deepEqual(gateway.otherLines, [], "the gateway wrote only JSON log lines");

    // Every outcome is well formed, about a command a client sent, and the only one for it.
    const seen = new Map<string, LogRecord>();
    const gatewayClientOf = new Map<string, unknown>();
    const outcomesOfClient = new Map<unknown, number>();
    for (const { record } of outcomes) {
      const id = String(record.commandId);
      assert.ok(
        renderedEither`command ${id} to ${record.consumer} from client ${record.client}: ${record.outcome}`
          .includes(record.message),
        `outcome message: ${record.message}`,
      );
      assert.ok(OUTCOMES.includes(String(record.outcome)), `outcome of ${id}: ${record.outcome}`);
      assert.equal(record.consumer, ACTOR);
      assert.ok(!seen.has(id), `command ${id} has two outcomes: ${seen.get(id)?.outcome}, ${record.outcome}`);
      seen.set(id, record);
      const owner = clients().find((c) => c.sent.has(id));
      assert.ok(owner, `command ${id} was sent by a client`);
      // One websocket client is one gateway client.
      const known = gatewayClientOf.get(owner.prefix);
      assert.ok(known === undefined || known === record.client, `${owner.prefix} is one gateway client`);
      gatewayClientOf.set(owner.prefix, record.client);
      outcomesOfClient.set(record.client, (outcomesOfClient.get(record.client) ?? 0) + 1);
    }
    for (const id of doneBefore) {
      assert.equal(seen.get(id)?.outcome, "published", `command ${id}, answered before the signal`);
    }

    // What the gateway logged as received has its outcome: the command count in each
    // disconnect line, and every command the actor got or a client saw answered.
    for (const record of disconnects) {
      assert.equal(
        record.commands,
        outcomesOfClient.get(record.client) ?? 0,
        `client ${record.client}: ${record.commands} commands received, ${
          outcomesOfClient.get(record.client) ?? 0
        } outcomes logged`,
      );
    }
    await watch.settle(actor);
    for (const command of actor.received) {
      const id = String(command.headers.command_id);
      if (id.startsWith("settle-")) continue;
      assert.ok(seen.has(id), `command ${id} reached the actor and has an outcome in the log`);
      assert.notEqual(seen.get(id)?.outcome, "unroutable", `command ${id} reached the actor`);
    }
    for (const client of clients()) {
      for (const id of client.done) assert.ok(seen.has(id), `command ${id} was answered and has an outcome`);
      for (const [id, frames] of client.failed) {
        assert.equal(
          seen.get(id)?.outcome,
          "failed",
          `command ${id} got an f frame: ${JSON.stringify(frames)}`,
        );
      }
    }

    // A command failed before the clients were closed: its client was connected, so
    // the f frame went out before the close frame, and a client that got the close
    // frame (a clean close) got it.
    const clientsClosing = logs.findIndex((r) => /RabbitMQ link closed/.test(r.message));
    assert.ok(
      clientsClosing >= 0,
      `the log says when the link closed (just before the clients):\n${gateway.dump()}`,
    );
    let failedWhileOpen = 0;
    let checked = 0;
    let arrivedAnyway = 0;
    for (const { record, index } of outcomes) {
      if (record.outcome !== "failed" || index > clientsClosing) continue;
      failedWhileOpen++;
      const id = String(record.commandId);
      const owner = clients().find((c) => c.sent.has(id))!;
      if (owner.closeEvent?.code !== 1001 || !owner.closeEvent.wasClean) {
        if (owner.failed.has(id)) arrivedAnyway++;
        continue;
      }
      checked++;
      const frames = owner.failed.get(id) ?? [];
      assert.equal(
        frames.length,
        1,
        `command ${id} failed (${record.reason}) while ${owner.prefix} was connected`,
      );
      const [frame] = frames;
      assert.equal(frame.headers.sender, gateway.name);
      assert.equal(frame.headers.message_code, "f");
      assert.equal(frame.body.error, record.reason, `the f frame for ${id} says why`);
    }
    console.log(
      `${failedWhileOpen} commands failed while their client was connected: ${checked} from clients closed ` +
        `cleanly, each of which got its f frame; of the other ${
          failedWhileOpen - checked
        }, ${arrivedAnyway} f frames arrived`,
    );
  } finally {
    await flood?.stop();
    await Promise.all(clients().map((c) => c.close()));
    await watch?.settle(actor).catch(() => {});
    await watch?.close();
    await actor.close();
  }
});
