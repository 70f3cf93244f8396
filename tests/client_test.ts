// The client module (web/client.ts, served as /client.js) used from Deno,
// end to end: the gateway process, the real RabbitMQ, a CLU-style actor, and
// a TCP proxy between the client and the gateway to force disconnects. Waits
// are for events; the only timed waits are windows in which something must
// NOT happen.

import assert from "node:assert/strict";
import { bytesToHex, sha256 } from "../lib/access/tokens.ts";
import {
  type ClientOptions,
  CluClient,
  CommandError,
  type ConnectionState,
  type Frame,
  type GapInfo,
  type Welcome,
} from "../web/client.ts";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { WsClient } from "./helpers/ws_client.ts";
import { type SilentActor, startSilentActor } from "./helpers/actor.ts";
import { publishReplyTo } from "./helpers/actor.ts";

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RUN = crypto.randomUUID().slice(0, 8);
let actorCount = 0;
/** Fast reconnects for tests. */
const FAST: ClientOptions = { minDelayMs: 100, maxDelayMs: 400 };

/** An actor name of its own for each test (actors' command queues are exclusive and not per exchange). */
function actorName(label: string): string {
  return `client-${RUN}-${label}-${++actorCount}`;
}

/** Resolves after `ms`: only for windows in which something must not happen, never to synchronise. */
function quietWindow(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Collects values an event gives and awaits conditions on them. */
class Recorder<T> {
  readonly items: T[] = [];
  #waiters: Array<() => void> = [];

  /** Records a value (pass it as the listener). */
  readonly push = (item: T): void => {
    this.items.push(item);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  };

  /** Resolves once `check` holds for the values so far, or rejects after `timeoutMs`. */
  async until(what: string, check: (items: T[]) => boolean, timeoutMs = 20_000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.items)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; got ${
            JSON.stringify(this.items.slice(-20)).slice(0, 1500)
          }`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return this.items;
  }
}

/** Closes a client and waits until its socket is closed. */
async function closeClient(client: CluClient): Promise<void> {
  if (client.state === "closed") {
    client.close();
    return;
  }
  const closed = new Promise<void>((resolve) => {
    const off = client.on("connection", (state) => {
      if (state === "closed") {
        off();
        resolve();
      }
    });
  });
  client.close();
  await closed;
}

/** Publishes a reply on the exchange as if `sender` had sent it (no command). */
function publishAs(actor: TestActor, sender: string, body: Record<string, unknown>): Promise<void> {
  return actor.publishRaw("reply.broadcast", JSON.stringify(body), {
    headers: { command_id: null, commander_id: null, internal: false, message_code: "i", sender },
    timestamp: Math.floor(Date.now() / 1000),
  });
}

interface World {
  exchange: string;
  gateway: GatewayProcess;
  actor: TestActor;
  /** A raw v1 client connected directly: it sees what the gateway has received. */
  observer: WsClient;
  /** A client module instance (connected, unless `wait` is false), closed with the world. */
  connect(url?: string, options?: ClientOptions, wait?: boolean): Promise<CluClient>;
  /** A proxy to the gateway (up), taken down with the world; its websocket URL. */
  proxy(): { proxy: TcpProxy; url: string };
  silent(): Promise<SilentActor>;
}

async function withWorld(
  label: string,
  options: { args?: string[]; env?: Record<string, string>; observerToken?: string },
  body: (world: World) => Promise<void>,
): Promise<void> {
  const exchange = uniqueExchange(label);
  await using gateway = await startGateway({ exchange, args: options.args, env: options.env });
  const actor = await startActor(exchange, actorName(label));
  const observer = await WsClient.connect(gateway.url(), {
    protocols: ["clu-ws.v1", ...(options.observerToken ? [`token.${options.observerToken}`] : [])],
  });
  const clients: CluClient[] = [];
  const proxies: TcpProxy[] = [];
  const silents: SilentActor[] = [];
  const world: World = {
    exchange,
    gateway,
    actor,
    observer,
    async connect(url = gateway.url(), clientOptions = {}, wait = true) {
      if (!wait) {
        const client = new CluClient(url, clientOptions);
        clients.push(client);
        return client;
      }
      const client = await CluClient.connect(url, clientOptions);
      clients.push(client);
      return client;
    },
    proxy() {
      const proxy = TcpProxy.reserve(gateway.port);
      proxy.up();
      proxies.push(proxy);
      return { proxy, url: `ws://127.0.0.1:${proxy.port}/` };
    },
    async silent() {
      const silent = await startSilentActor(exchange, actorName(`${label}-silent`));
      silents.push(silent);
      return silent;
    },
  };
  try {
    await body(world);
  } finally {
    await Promise.all(clients.map(closeClient));
    await Promise.all(proxies.map((p) => p.down()));
    await observer.close();
    await Promise.all(silents.map((s) => s.close()));
    await actor.close();
  }
}

/** Waits until the observer has the reply whose body matches; resolves with its position. */
async function seen(observer: WsClient, what: string, match: (body: Record<string, unknown>) => boolean) {
  const frame = await observer.next(what, (f) => !("clu-ws" in f) && match(f.body));
  return (frame as unknown as { seq: number }).seq;
}

/** The `n` of the broadcasts a recorder of replies holds, in order. */
function numbers(replies: Recorder<Frame>): number[] {
  return replies.items.filter((f) => typeof f.body?.n === "number").map((f) => f.body.n as number);
}

/** Whether states went closed → connecting (→ closed → connecting …) → open, ending open. */
function assertReconnectStates(states: ConnectionState[]): void {
  assert.equal(states[0], "closed", `${states}`);
  assert.equal(states.at(-1), "open", `${states}`);
  assert.equal(states.filter((s) => s === "open").length, 1, `${states}`);
  for (let i = 1; i < states.length; i++) {
    const expected = states[i - 1] === "closed" ? ["connecting"] : ["closed", "open"];
    assert.ok(expected.includes(states[i]), `${states[i - 1]} → ${states[i]} in ${states}`);
  }
}

// ---------------------------------------------------------------------------------------------------------

Deno.test("client: CluClient.connect resolves once the gateway has welcomed it", async () => {
  await withWorld("connect", {}, async ({ exchange, gateway, connect }) => {
    const client = await connect();
    assert.equal(client.state, "open");
    const welcome = client.welcome!;
    assert.equal(welcome.version, 1);
    assert.equal(typeof welcome.epoch, "string");
    assert.equal(welcome.seq, 0);
    assert.equal(welcome.name, gateway.name);
    assert.equal(welcome.exchange, exchange);
    assert.equal(welcome.broker, "up");
    assert.equal(welcome.role, "command");
    assert.equal(client.lastSeq, 0);

    // With the constructor, the events tell the same.
    const other = await connect(gateway.url(), {}, false);
    const welcomes = new Recorder<Welcome>();
    const states = new Recorder<ConnectionState>();
    const brokers = new Recorder<string>();
    other.on("welcome", welcomes.push);
    other.on("connection", states.push);
    other.on("broker", brokers.push);
    await welcomes.until("the welcome event", (w) => w.length === 1);
    assert.equal(welcomes.items[0].epoch, welcome.epoch);
    assert.deepEqual(states.items, ["open"]);
    assert.deepEqual(brokers.items, ["up"]);

    // Without reconnects, a gateway that is not there is an error.
    const nobody = TcpProxy.reserve(gateway.port);
    await assert.rejects(
      CluClient.connect(`ws://127.0.0.1:${nobody.port}/`, { reconnect: false }),
      /connection closed/,
    );
  });
});

Deno.test("client: command() resolves with the replies on :, and rejects with CommandError on f and on timeout", async () => {
  await withWorld("command", {}, async ({ actor, connect, silent }) => {
    const client = await connect();
    const status = await client.command(actor.name, "status");
    assert.equal(status.status, "done");
    assert.equal(status.code, ":");
    assert.equal(status.consumer, actor.name);
    assert.match(status.commandId, UUID4);
    assert.deepEqual(status.replies.map((f) => f.headers.message_code), [">", "i", ":"]);
    assert.deepEqual(status.replies[1].body, { temperature: 12.5, dome: "open" });
    assert.ok(status.replies.every((f) => typeof f.seq === "number"));
    assert.ok(status.elapsedMs >= 0);

    const pong = await client.command(actor.name, "ping", { commandId: "my-ping" });
    assert.equal(pong.commandId, "my-ping");
    assert.deepEqual(pong.replies.at(-1)!.body, { text: "Pong." });

    const failure = await client.command(actor.name, "fail").then(
      () => assert.fail("fail resolved"),
      (err) => err,
    );
    assert.ok(failure instanceof CommandError, String(failure));
    assert.equal(failure.name, "CommandError");
    assert.equal(failure.result.status, "failed");
    assert.equal(failure.result.code, "f");
    assert.equal(failure.result.error, "failed on purpose");
    assert.deepEqual(failure.result.replies.map((f: Frame) => f.headers.message_code), [">", "f"]);
    assert.match(failure.message, /failed: failed on purpose/);

    await assert.rejects(
      client.command(`ghost-${RUN}`, "status"),
      (err) => err instanceof CommandError && err.result.status === "failed",
    );

    const quiet = await silent();
    const started = performance.now();
    const timedOut = await client.command(quiet.name, "wait", { timeout: 1 }).then(
      () => assert.fail("resolved"),
      (err) => err,
    );
    const waited = performance.now() - started;
    assert.ok(timedOut instanceof CommandError);
    assert.equal(timedOut.result.status, "timeout");
    assert.equal(timedOut.result.code, null);
    assert.match(timedOut.message, /timed out/);
    assert.ok(
      waited >= 900 && waited < 5_000,
      `the gateway's timeout ended it after ${Math.round(waited)} ms`,
    );

    // The connection is still good.
    assert.equal((await client.command(actor.name, "ping")).status, "done");
  });
});

const WATCHER = "watcher-token-0123456789";
const OPERATOR = "operator-token-0123456789";

Deno.test("client: tokens, and commands refused by the gateway (--deny-actor, a watch token) reject with CommandError", async () => {
  const tokens = JSON.stringify({
    tokens: [
      { name: "dashboard", role: "watch", sha256: bytesToHex(await sha256(WATCHER)) },
      { name: "ops", role: "command", sha256: bytesToHex(await sha256(OPERATOR)) },
    ],
  });
  await withWorld(
    "deny",
    { args: ["--deny-actor", "lvm.*"], env: { CLU_WS_TOKENS: tokens }, observerToken: WATCHER },
    async ({ actor, gateway, connect }) => {
      const operator = await connect(gateway.url(), { token: OPERATOR });
      assert.equal(operator.welcome!.role, "command");
      const denied = await operator.command("lvm.ecp", "open").then(() => assert.fail("resolved"), (e) => e);
      assert.ok(denied instanceof CommandError, String(denied));
      assert.equal(denied.result.status, "failed");
      assert.equal(denied.result.consumer, "lvm.ecp");
      assert.equal(
        denied.result.error,
        "actor 'lvm.ecp' is denied by --deny-actor 'lvm.*'; the command was not sent",
      );
      assert.match(denied.message, /denied by --deny-actor/);
      assert.equal((await operator.command(actor.name, "ping")).status, "done");

      const watcher = await connect(gateway.url(), { token: WATCHER });
      assert.equal(watcher.welcome!.role, "watch");
      await assert.rejects(
        watcher.command(actor.name, "ping"),
        (err) => err instanceof CommandError && /may only watch/.test(String(err.result.error)),
      );
      await assert.rejects(CluClient.connect(gateway.url(), { reconnect: false }), /connection closed/);
    },
  );
});

Deno.test("client: watch() gets the value from the gateway's state, then live updates", async () => {
  await withWorld("watch", {}, async ({ actor, gateway, observer, connect }) => {
    await actor.broadcast({ temperature: 10, dome: "closed" });
    await seen(observer, "the first broadcast", (b) => b.temperature === 10);
    const client = await connect();
    const temperatures = new Recorder<[unknown, Frame | undefined]>();
    client.watch(actor.name, "temperature", (value, frame) => temperatures.push([value, frame]));
    await temperatures.until("the value from the state", (t) => t.length === 1);
    assert.deepEqual(temperatures.items[0], [10, undefined], "from the snapshot, with no frame");

    await actor.broadcast({ temperature: 11 });
    await temperatures.until("a live update", (t) => t.length === 2);
    const [value, frame] = temperatures.items[1];
    assert.equal(value, 11);
    assert.equal(frame?.headers.sender, actor.name);
    assert.equal(typeof frame?.seq, "number");

    await actor.broadcast({ dome: "open" });
    await actor.broadcast({ temperature: 12 });
    await temperatures.until("the next update", (t) => t.length === 3);
    assert.equal(temperatures.items[2][0], 12, "replies without the keyword are not given");

    const domes = new Recorder<unknown>();
    const stop = client.watch(actor.name, "dome", domes.push);
    await domes.until("dome from the state", (d) => d.length === 1);
    assert.deepEqual(domes.items, ["open"]);
    stop();
    // Replies to commands update watchers too.
    await client.command(actor.name, "status");
    await temperatures.until("the status reply", (t) => t.at(-1)![0] === 12.5);
    assert.deepEqual(domes.items, ["open"], "a stopped watcher is not called");

    // Watchers set before the connection is up are fed once it is.
    const early = await connect(gateway.url(), {}, false);
    const values = new Recorder<unknown>();
    early.watch(actor.name, "temperature", values.push);
    await values.until("the value from the state", (v) => v.length === 1);
    assert.deepEqual(values.items, [12.5]);
    // A keyword nobody has sent is not called until it is.
    const nothing = new Recorder<unknown>();
    client.watch(actor.name, "humidity", nothing.push);
    await actor.broadcast({ humidity: 40 });
    await nothing.until("the first humidity", (v) => v.length === 1);
    assert.deepEqual(nothing.items, [40]);
  });
});

Deno.test("client: a watcher is not given the same value twice when the state answer comes after the live reply", async () => {
  await withWorld("watchdup", {}, async ({ actor, observer, connect, proxy }) => {
    const { proxy: cut, url } = proxy();
    const client = await connect(url, FAST);
    const temperatures = new Recorder<unknown>();
    // The watcher's state request waits in the proxy while a reply is received and queued ahead of its answer.
    cut.stall();
    client.watch(actor.name, "temperature", temperatures.push);
    await actor.broadcast({ temperature: 1 });
    await seen(observer, "temperature 1", (b) => b.temperature === 1);
    cut.resume();
    // Answered after the watcher's own state request: once here, the watcher has had its answer.
    await client.actorState([actor.name]);
    await temperatures.until("1", (t) => t.includes(1));
    await actor.broadcast({ temperature: 2 });
    await temperatures.until("2", (t) => t.includes(2));
    assert.deepEqual(
      temperatures.items,
      [1, 2],
      "the state at the live reply's position repeats nothing new",
    );
  });
});

Deno.test("client: on('reply') sees replies; subscribe() narrows them and {} widens them again", async () => {
  await withWorld("subscribe", {}, async ({ actor, connect }) => {
    const client = await connect();
    const replies = new Recorder<Frame>();
    const off = client.on("reply", replies.push);
    const markers = () => replies.items.map((f) => f.body.marker ?? `${f.headers.sender}:${f.body.skip}`);

    await publishAs(actor, "lvm.ecp", { marker: "a" });
    await replies.until("a", () => markers().includes("a"));
    assert.equal(replies.items[0].headers.sender, "lvm.ecp");
    assert.equal(replies.items[0].seq, 1);

    await client.subscribe({ actors: [actor.name] });
    await publishAs(actor, "lvm.ecp", { skip: 1 });
    await actor.broadcast({ marker: "b" });
    await replies.until("b", () => markers().includes("b"));

    await client.subscribe({});
    await publishAs(actor, "lvm.ecp", { marker: "c" });
    await replies.until("c", () => markers().includes("c"));
    assert.deepEqual(markers(), ["a", "b", "c"], "lvm.ecp's reply was filtered out by the gateway");

    off();
    const other = new Recorder<Frame>();
    client.on("reply", other.push);
    await actor.broadcast({ marker: "d" });
    await other.until("d", (f) => f.some((x) => x.body.marker === "d"));
    assert.deepEqual(markers(), ["a", "b", "c"], "a removed listener is not called");
  });
});

Deno.test("client: command() still resolves when the subscription leaves out its replies", async () => {
  await withWorld("narrowcmd", {}, async ({ actor, connect }) => {
    const client = await connect();
    await client.subscribe({ codes: ["i"] });
    // The gateway still says how the command ended (the tracked command's done frame).
    const result = await client.command(actor.name, "ping", { timeout: 3 });
    assert.equal(result.status, "done");
  });
});

Deno.test("client: after a forced disconnect it reconnects by itself and gets every reply once, in order", async () => {
  await withWorld("reconnect", {}, async ({ gateway, actor, observer, connect, proxy, silent }) => {
    const { proxy: cut, url } = proxy();
    const quiet = await silent();
    const client = await connect(url, FAST);
    const epoch = client.welcome!.epoch;
    // The subscription is kept across reconnects, and the replay follows it.
    await client.subscribe({ actors: [actor.name, quiet.name] });
    const states = new Recorder<ConnectionState>();
    const replies = new Recorder<Frame>();
    const welcomes = new Recorder<Welcome>();
    const gaps = new Recorder<GapInfo>();
    client.on("connection", states.push);
    client.on("reply", replies.push);
    client.on("welcome", welcomes.push);
    client.on("gap", gaps.push);

    let n = 0;
    for (let i = 0; i < 3; i++) await actor.broadcast({ n: ++n });
    await replies.until("the first three", () => numbers(replies).length === 3);
    // A command in flight across the disconnect.
    const pending = client.command(quiet.name, "wait", { commandId: "across", timeout: 60 });
    await until("the silent actor to get the command", () => quiet.received.includes("across"));

    await cut.down();
    await states.until("closed", (s) => s.includes("closed"));
    for (let i = 0; i < 10; i++) {
      await actor.broadcast({ n: ++n });
      if (i % 4 === 0) await publishAs(actor, "someone-else", { n: -1 });
    }
    await publishReplyTo(actor, gateway, quiet.name, "across", ":", { done: "while away" });
    await seen(observer, "the last reply while away", (b) => b.done === "while away");
    // It keeps trying while the gateway cannot be reached.
    await states.until("a reconnect attempt", (s) => s.includes("connecting"));

    cut.up();
    await welcomes.until("the welcome after the reconnect", (w) => w.length === 1);
    assert.equal(welcomes.items[0].epoch, epoch);
    const result = await pending;
    assert.equal(result.status, "done", "the command's end was replayed");
    assert.deepEqual(result.replies.at(-1)!.body, { done: "while away" });

    for (let i = 0; i < 3; i++) await actor.broadcast({ n: ++n });
    await replies.until("the live ones", () => numbers(replies).at(-1) === n);
    assert.deepEqual(
      numbers(replies),
      Array.from({ length: n }, (_, i) => i + 1),
      "nothing missing or twice",
    );
    assert.ok(replies.items.every((f) => f.headers.sender !== "someone-else"), "the subscription was kept");
    const seqs = replies.items.map((f) => f.seq!);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `positions in order: ${seqs}`);
    assert.equal(client.lastSeq, seqs.at(-1));
    assertReconnectStates(states.items);
    assert.equal(client.state, "open");
    assert.deepEqual(gaps.items, []);
  });
});

Deno.test("client: a live reply that overtakes the replay on a reconnect is given once, in order", async () => {
  await withWorld("overtake", {}, async ({ actor, observer, connect, proxy }) => {
    const { proxy: cut, url } = proxy();
    const client = await connect(url, FAST);
    const replies = new Recorder<Frame>();
    const states = new Recorder<ConnectionState>();
    const welcomes = new Recorder<Welcome>();
    client.on("reply", replies.push);
    client.on("connection", states.push);
    client.on("welcome", welcomes.push);
    for (let n = 1; n <= 2; n++) await actor.broadcast({ n });
    await replies.until("two", () => numbers(replies).length === 2);
    await cut.down();
    await states.until("closed", (s) => s.includes("closed"));
    for (let n = 3; n <= 4; n++) await actor.broadcast({ n });
    await seen(observer, "n=4", (b) => b.n === 4);
    // Once the welcome is in, hold the bytes: the resume waits while a live reply queues up ahead of its answer.
    let held = false;
    client.on("connection", (state) => {
      if (state === "open" && !held) {
        held = true;
        cut.stall();
      }
    });
    cut.up();
    await states.until("open", (s) => s.at(-1) === "open");
    await actor.broadcast({ n: 5 });
    await seen(observer, "n=5", (b) => b.n === 5);
    cut.resume();
    await welcomes.until("the welcome after the resume", (w) => w.length === 1);
    await actor.broadcast({ n: 6 });
    await replies.until("n=6", () => numbers(replies).at(-1) === 6);
    assert.deepEqual(numbers(replies), [1, 2, 3, 4, 5, 6]);
  });
});

Deno.test("client: replies flowing all through a disconnect and reconnect arrive exactly once, in order", async () => {
  await withWorld("flowing", {}, async ({ actor, observer, connect, proxy }) => {
    const { proxy: cut, url } = proxy();
    const client = await connect(url, FAST);
    const replies = new Recorder<Frame>();
    const states = new Recorder<ConnectionState>();
    const welcomes = new Recorder<Welcome>();
    client.on("reply", replies.push);
    client.on("connection", states.push);
    client.on("welcome", welcomes.push);

    let published = 0;
    let running = true;
    const publisher = (async () => {
      while (running) {
        await actor.broadcast({ n: ++published });
        await quietWindow(3); // pacing, so the test does not flood two shared cores
      }
    })();
    try {
      await replies.until("replies flowing", () => numbers(replies).length >= 20);
      await cut.down();
      await states.until("closed", (s) => s.includes("closed"));
      const atCut = published;
      await seen(observer, "20 more while away", (b) => (b.n as number) >= atCut + 20);
      cut.up();
      await welcomes.until("the welcome after the reconnect", (w) => w.length === 1);
      const atWelcome = published;
      await replies.until("20 more live", () => (numbers(replies).at(-1) ?? 0) >= atWelcome + 20);
    } finally {
      running = false;
      await publisher;
    }
    await replies.until("the last one", () => numbers(replies).at(-1) === published);
    const got = numbers(replies);
    const expected = Array.from({ length: published }, (_, i) => i + 1);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      const missing = expected.filter((n) => !got.includes(n));
      const twice = got.filter((n, i) => got.indexOf(n) !== i);
      assert.fail(`missing ${missing.slice(0, 20)}; twice ${twice.slice(0, 20)}; ${got.length}/${published}`);
    }
    assertReconnectStates(states.items);
  });
});

Deno.test("client: a gap longer than the history emits gap and refreshes watchers from the state", async () => {
  await withWorld("gap", { args: ["--history-size", "2"] }, async ({ actor, observer, connect, proxy }) => {
    const { proxy: cut, url } = proxy();
    const client = await connect(url, FAST, false);
    const temperatures = new Recorder<unknown>();
    const replies = new Recorder<Frame>();
    const gaps = new Recorder<GapInfo>();
    const welcomes = new Recorder<Welcome>();
    client.watch(actor.name, "temperature", temperatures.push);
    client.on("reply", replies.push);
    client.on("gap", gaps.push);
    client.on("welcome", welcomes.push);
    // The welcome event comes once the watchers have been fed from the state.
    await welcomes.until("the first welcome", (w) => w.length === 1);
    const epoch = client.welcome!.epoch;

    await actor.broadcast({ temperature: 1 });
    await temperatures.until("1", (t) => t.includes(1));
    const states = new Recorder<ConnectionState>();
    client.on("connection", states.push);
    await cut.down();
    await states.until("closed", (s) => s.includes("closed"));
    for (let t = 2; t <= 6; t++) await actor.broadcast({ temperature: t });
    await seen(observer, "the last while away", (b) => b.temperature === 6);
    cut.up();

    await gaps.until("the gap", (g) => g.length === 1);
    assert.equal(gaps.items[0].epoch, epoch);
    assert.match(gaps.items[0].reason, /no longer kept/);
    await temperatures.until("the value from the state", (t) => t.at(-1) === 6);
    await welcomes.until("the welcome", (w) => w.length === 2);
    assert.deepEqual(
      replies.items.map((f) => f.body.temperature),
      [1],
      "nothing replayed: the replies while away are lost, and said to be",
    );
    assert.deepEqual(temperatures.items, [1, 6], "the watcher jumped to the current value");

    await actor.broadcast({ temperature: 7 });
    await temperatures.until("live again", (t) => t.at(-1) === 7);
    assert.deepEqual(replies.items.map((f) => f.body.temperature), [1, 7]);
  });
});

Deno.test("client: after a gateway restart (another epoch) it emits gap, refreshes watchers and takes the new positions", async () => {
  const exchange = uniqueExchange("restart");
  const first = await startGateway({ exchange });
  const port = first.port;
  const actor = await startActor(exchange, actorName("restart"));
  let second: GatewayProcess | undefined;
  let client: CluClient | undefined;
  try {
    client = new CluClient(first.url(), FAST);
    const replies = new Recorder<Frame>();
    const gaps = new Recorder<GapInfo>();
    const temperatures = new Recorder<unknown>();
    const states = new Recorder<ConnectionState>();
    const welcomes = new Recorder<Welcome>();
    client.on("reply", replies.push);
    client.on("gap", gaps.push);
    client.on("connection", states.push);
    client.on("welcome", welcomes.push);
    client.watch(actor.name, "temperature", temperatures.push);
    await welcomes.until("the welcome", (w) => w.length === 1);
    const epoch = client.welcome!.epoch;
    for (let t = 1; t <= 5; t++) await actor.broadcast({ temperature: t });
    await temperatures.until("five values", (t) => t.length === 5);
    const before = client.lastSeq;
    assert.equal(before, 5);

    await first.stop();
    await states.until("closed", (s) => s.includes("closed"));
    second = await startGateway({ exchange, args: ["--port", String(port)] });
    assert.equal(second.port, port);
    await gaps.until("the gap", (g) => g.length === 1);
    assert.notEqual(gaps.items[0].epoch, epoch);
    assert.equal(client.welcome!.epoch, gaps.items[0].epoch);

    // New positions start again from 1: they are not taken for replies already seen.
    await actor.broadcast({ temperature: 99 });
    await temperatures.until("the first value after the restart", (t) => t.at(-1) === 99);
    assert.equal(replies.items.at(-1)!.body.temperature, 99);
    assert.equal(replies.items.at(-1)!.seq, 1);
    assert.equal(client.lastSeq, 1);
  } finally {
    if (client) await closeClient(client);
    await actor.close();
    await first[Symbol.asyncDispose]();
    await second?.[Symbol.asyncDispose]();
  }
});

Deno.test("client: after a gateway restart, a reply that arrives while the subscription is re-sent is not dropped", async () => {
  const exchange = uniqueExchange("restartsub");
  const first = await startGateway({ exchange });
  const port = first.port;
  const actor = await startActor(exchange, actorName("restartsub"));
  await using proxy = TcpProxy.reserve(port);
  proxy.up();
  let second: GatewayProcess | undefined;
  let observer: WsClient | undefined;
  let client: CluClient | undefined;
  try {
    client = await CluClient.connect(`ws://127.0.0.1:${proxy.port}/`, FAST);
    await client.subscribe({ actors: [actor.name] });
    const replies = new Recorder<Frame>();
    const gaps = new Recorder<GapInfo>();
    const welcomes = new Recorder<Welcome>();
    client.on("reply", replies.push);
    client.on("gap", gaps.push);
    client.on("welcome", welcomes.push);
    for (let n = 1; n <= 5; n++) await actor.broadcast({ n });
    await replies.until("five replies", (r) => r.length === 5);
    assert.equal(client.lastSeq, 5);

    const states = new Recorder<ConnectionState>();
    client.on("connection", states.push);
    await first.stop();
    await states.until("closed", (s) => s.includes("closed"));
    // When the new gateway's welcome arrives, hold the bytes both ways: the client's subscribe
    // waits in the proxy while a live reply is queued behind the welcome.
    let held = false;
    client.on("connection", (state) => {
      if (state === "open" && !held) {
        held = true;
        proxy.stall();
      }
    });
    second = await startGateway({ exchange, args: ["--port", String(port)] });
    observer = await WsClient.connect(second.url(), { protocols: ["clu-ws.v1"] });
    await states.until("open", (s) => s.at(-1) === "open");
    await actor.broadcast({ marker: "while subscribing" });
    await seen(observer, "the live reply", (b) => b.marker === "while subscribing");
    proxy.resume();
    await welcomes.until("the welcome", (w) => w.length === 1);
    assert.equal(gaps.items.length, 1, "the restart is a gap");
    await actor.broadcast({ marker: "after" });
    await replies.until("the next reply", (r) => r.some((f) => f.body.marker === "after"));
    assert.deepEqual(
      replies.items.slice(5).map((f) => `${f.body.marker} @${f.seq}`),
      ["while subscribing @1", "after @2"],
      "a live reply of the new epoch (seq 1, below the old position 5) must not be taken for one already seen",
    );
  } finally {
    proxy.resume();
    if (client) await closeClient(client);
    await observer?.close();
    await actor.close();
    await first[Symbol.asyncDispose]();
    await second?.[Symbol.asyncDispose]();
  }
});

Deno.test("client: close() stops reconnecting and rejects pending commands", async () => {
  await withWorld("close", {}, async ({ actor, connect, proxy, silent }) => {
    const quiet = await silent();
    // Closed while connected.
    const client = await connect(undefined, FAST);
    const pending = client.command(quiet.name, "wait", { timeout: 60 });
    await until("the silent actor to get it", () => quiet.received.length === 1);
    const states = new Recorder<ConnectionState>();
    client.on("connection", states.push);
    client.close();
    await assert.rejects(
      pending,
      (err) =>
        err instanceof CommandError && err.result.status === "failed" && /closed/.test(err.result.error!),
    );
    await states.until("closed", (s) => s.includes("closed"));
    await assert.rejects(client.command(actor.name, "ping"), CommandError);

    // Closed while it is trying to reconnect.
    const { proxy: cut, url } = proxy();
    const retrying = await connect(url, FAST);
    const retryStates = new Recorder<ConnectionState>();
    retrying.on("connection", retryStates.push);
    const inFlight = retrying.command(quiet.name, "wait", { timeout: 60 });
    await until("the silent actor to get the second", () => quiet.received.length === 2);
    await cut.down();
    await retryStates.until("a reconnect attempt", (s) => s.includes("connecting"));
    await retryStates.until("closed again", (s) => s.at(-1) === "closed");
    retrying.close();
    await assert.rejects(inFlight, CommandError);
    // If an attempt had just begun, its socket closes now.
    await retryStates.until("closed", (s) => s.at(-1) === "closed" && retrying.state === "closed");
    const attempts = retryStates.items.length;
    cut.up();
    const accepted = cut.accepted;
    // Several times the longest reconnect delay (400 ms): no attempt may come.
    await quietWindow(1_500);
    assert.equal(cut.accepted, accepted, "no connection after close()");
    assert.equal(retryStates.items.length, attempts, `no state change after close(): ${retryStates.items}`);
    assert.equal(retrying.state, "closed");

    // And all three states in all: the first client stayed closed.
    assert.deepEqual(states.items, ["closed"]);
    assert.equal(client.state, "closed");
  });
});
