// `--history stream`: the history on a RabbitMQ stream, through real gateway processes, the real broker
// and raw v1 websocket clients. Each test has its own exchange and its own stream (deleted after it).
// A steady publisher numbers its replies, so a client's frames say exactly what it missed or got twice.

import assert from "node:assert/strict";
import { connectBroker, uniqueExchange, until } from "./helpers/broker.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { deleteStream, firstOffset, SteadyPublisher, streamArgs, uniqueStream } from "./helpers/stream.ts";
import { type Frame, WsClient } from "./helpers/ws_client.ts";
import { RawWebSocket } from "./helpers/raw_ws.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";

const V1 = ["clu-ws.v1"];
type Json = Record<string, unknown>;

function json(frame: Frame): Json {
  return frame as unknown as Json;
}

function control(kind: string, match: (frame: Json) => boolean = () => true): (frame: Frame) => boolean {
  return (frame) => json(frame)["clu-ws"] === kind && match(json(frame));
}

/** The numbered replies of `publisher` among `frames`. */
function numbered(frames: Frame[], publisher: SteadyPublisher): Frame[] {
  return frames.filter((f) => !("clu-ws" in f) && f.body?.run === publisher.run);
}

async function v1Client(gateway: GatewayProcess): Promise<WsClient> {
  const client = await WsClient.connect(gateway.url(), { protocols: V1 });
  await client.next("the welcome", control("welcome"));
  return client;
}

/** Waits until `client` has the reply numbered `n`. */
function upTo(client: WsClient, publisher: SteadyPublisher, n: number, timeoutMs = 20_000): Promise<Frame> {
  return client.next(`reply n=${n}`, (f) => f.body?.run === publisher.run && f.body?.n === n, { timeoutMs });
}

/**
 * One test's stream and exchange (unique names), its publisher and its
 * clients: disposing it closes the clients and the publisher, then deletes
 * the stream, whatever the test did.
 */
class StreamCase implements AsyncDisposable {
  readonly stream: string;
  readonly exchange: string;
  /** Clients to close at the end. */
  readonly clients: WsClient[] = [];
  readonly #publishers: SteadyPublisher[] = [];

  constructor(label: string) {
    this.stream = uniqueStream(label);
    this.exchange = uniqueExchange(`stream-${label}`);
  }

  /** A steady publisher on the exchange, closed at the end. */
  async publisher(): Promise<SteadyPublisher> {
    const publisher = await SteadyPublisher.open(this.exchange);
    this.#publishers.push(publisher);
    return publisher;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await Promise.all(this.clients.map((c) => c.close()));
      await Promise.all(this.#publishers.map((p) => p.close()));
    } finally {
      await deleteStream(this.stream);
    }
  }
}

/**
 * A new v1 client resumes from `seq` in `epoch`, which the stream no longer holds: it must be told `gap`
 * (for that epoch, saying why). The client joins `clients` (closed by the test).
 */
async function resumeIntoGap(
  gateway: GatewayProcess,
  clients: WsClient[],
  epoch: unknown,
  seq: number,
): Promise<{ back: WsClient; gap: Json }> {
  const back = await v1Client(gateway);
  clients.push(back);
  back.send({ "clu-ws": "resume", id: "old", epoch, seq });
  const gap = json(await back.next("gap", control("gap"), { timeoutMs: 20_000 }));
  assert.match(String(gap.reason), /no longer in the stream/);
  assert.equal(gap.epoch, epoch);
  return { back, gap };
}

/**
 * Asserts that a client's frames on its first connection (`before`) and on
 * its second (`after`, which resumed after `before`'s last) hold the replies
 * 1..last exactly once, in order, with growing seqs, from where the replay
 * starts. Replies that reached the second connection live between its welcome
 * and its `resume` come before that and are replayed too (docs/protocol.md: a
 * client holds what arrives before `resumed` and drops a seq it has seen, as
 * web/client.ts does): each of those must be in the replay.
 */
function assertExactlyOnce(before: Frame[], after: Frame[], last: number): void {
  const lastBefore = Number(before.at(-1)!.body.n);
  const start = after.findIndex((f) => f.body.n === lastBefore + 1);
  assert.ok(start >= 0, `the replay starts with n=${lastBefore + 1}`);
  const early = after.slice(0, start);
  const rest = after.slice(start);
  const ns = [...before, ...rest].map((f) => Number(f.body.n));
  const missing = Array.from({ length: last }, (_, i) => i + 1).filter((n) => !ns.includes(n));
  const twice = ns.filter((n, i) => ns.indexOf(n) !== i);
  assert.deepEqual({ missing, twice }, { missing: [], twice: [] }, "zero loss, zero duplicates");
  assert.deepEqual(ns, Array.from({ length: last }, (_, i) => i + 1), "in order");
  const seqs = [...before, ...rest].map((f) => Number(json(f).seq));
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), "seq grows");
  for (const f of early) {
    assert.ok(rest.some((r) => json(r).seq === json(f).seq), `early live n=${f.body.n} is in the replay`);
  }
}

Deno.test("--history stream: a stream declared with another retention or segment size stops the gateway, naming the option", async () => {
  // The stream's arguments as the options' defaults declare them (24h, 1 GiB, 64 MiB), then each one changed.
  const declared = {
    "x-queue-type": "stream",
    "x-max-age": "24h",
    "x-max-length-bytes": 1024 ** 3,
    "x-stream-max-segment-size-bytes": 64 * 1024 ** 2,
  };
  const cases: Array<
    { arg: keyof typeof declared; existing: string | number; option: string[]; text: RegExp }
  > = [
    {
      arg: "x-max-age",
      existing: "2h",
      option: ["--history-max-age", "24h"],
      text: /received '24h' but current is '2h'/,
    },
    {
      arg: "x-max-length-bytes",
      existing: 512 * 1024 ** 2,
      option: ["--history-max-bytes", "1GiB"],
      text: /received '1073741824' but current is '536870912'/,
    },
    {
      arg: "x-stream-max-segment-size-bytes",
      existing: 8 * 1024 ** 2,
      option: ["--history-segment-bytes", "64MiB"],
      text: /received '67108864' but current is '8388608'/,
    },
  ];
  const model = await connectBroker();
  try {
    for (const { arg, existing, option, text } of cases) {
      const stream = uniqueStream("mismatch");
      try {
        const channel = await model.createChannel();
        await channel.assertQueue(stream, { durable: true, arguments: { ...declared, [arg]: existing } });
        await channel.close();
        await using gateway = await startGateway({
          exchange: uniqueExchange("mismatch"),
          args: streamArgs(stream, option),
          waitForBroker: false,
        });
        const error = await gateway.waitForLog(`the stream error (${arg})`, (r) => r.level === "ERROR");
        assert.match(error.message, new RegExp(`history stream .* exists with another ${arg}`));
        assert.match(error.message, text);
        assert.match(error.message, new RegExp(`give ${option[0]} the stream's value`));
        const status = await until("the gateway to exit by itself", () => gateway.status);
        assert.equal(status.code, 1, `the gateway exits 1 by itself (${arg})`);
        // Nothing was redeclared: the stream keeps its value.
        const again = await model.createChannel();
        again.on("error", () => {});
        await assert.rejects(
          again.assertQueue(stream, { durable: true, arguments: declared }),
          new RegExp(`inequivalent arg '${arg}'`),
        );
      } finally {
        await deleteStream(stream);
      }
    }
  } finally {
    await model.close().catch(() => {});
  }
});

Deno.test("--history stream: resume on another gateway under a steady publish: zero loss, zero duplicates, order kept", async () => {
  await using t = new StreamCase("move");
  const { stream, exchange, clients } = t;
  await using a = await startGateway({ exchange, args: streamArgs(stream) });
  await using b = await startGateway({ exchange, args: streamArgs(stream) });
  const publisher = await t.publisher();
  const onA = await v1Client(a);
  const onB = await v1Client(b);
  clients.push(onA, onB);
  const welcomeA = json(onA.frames[0]);
  const welcomeB = json(onB.frames[0]);
  assert.equal(welcomeA.epoch, `stream:${stream}`, "the epoch names the stream");
  assert.equal(welcomeB.epoch, welcomeA.epoch, "the same epoch on every gateway");
  publisher.start(3);
  await upTo(onA, publisher, 30);
  await onA.close();
  const before = numbered(onA.frames, publisher);
  const lastSeq = Number(json(before.at(-1)!).seq);
  // Away while replies keep coming.
  await upTo(onB, publisher, before.length + 100);
  const back = await v1Client(b);
  clients.push(back);
  assert.equal(json(back.frames[0]).epoch, welcomeA.epoch);
  back.send({ "clu-ws": "resume", id: 1, epoch: welcomeA.epoch, seq: lastSeq });
  const resumed = json(await back.next("resumed", control("resumed")));
  assert.equal(resumed.from, lastSeq);
  assert.ok(Number(resumed.count) >= 100, `replayed ${resumed.count}`);
  // And live after the hand-over, still under the steady publish.
  await upTo(back, publisher, publisher.last + 50);
  const last = await publisher.stop();
  await upTo(back, publisher, last);
  await upTo(onB, publisher, last);
  const after = numbered(back.frames, publisher);
  assertExactlyOnce(before, after, last);
  // The same reply has the same seq on both gateways: the stream's offset plus one.
  const seqOnB = new Map(numbered(onB.frames, publisher).map((f) => [f.body.n, json(f).seq]));
  for (const f of [...before, ...after]) {
    assert.equal(json(f).seq, seqOnB.get(f.body.n), `seq of n=${f.body.n}`);
  }
});

Deno.test("--history stream: resume on a restarted gateway under a steady publish: zero loss, zero duplicates, order kept", async () => {
  await using t = new StreamCase("restart");
  const { stream, exchange, clients } = t;
  const publisher = await t.publisher();
  const first = await startGateway({ exchange, args: streamArgs(stream) });
  let lastSeq: number;
  let before: Frame[];
  let epoch: unknown;
  try {
    const client = await v1Client(first);
    clients.push(client);
    epoch = json(client.frames[0]).epoch;
    publisher.start(3);
    await upTo(client, publisher, 30);
    // The gateway stops (its clients are closed with 1001) while replies keep coming.
    assert.equal((await first.stop()).code, 0);
    await client.closed;
    before = numbered(client.frames, publisher);
    lastSeq = Number(json(before.at(-1)!).seq);
  } finally {
    await first[Symbol.asyncDispose]();
  }
  const publishedWhileDown = publisher.last;
  await using second = await startGateway({ exchange, args: streamArgs(stream) });
  const back = await v1Client(second);
  clients.push(back);
  assert.equal(json(back.frames[0]).epoch, epoch, "the epoch survives the restart");
  back.send({ "clu-ws": "resume", id: "r", epoch, seq: lastSeq });
  const resumed = json(await back.next("resumed", control("resumed")));
  assert.ok(
    Number(resumed.count) >= publishedWhileDown - before.length,
    `replayed ${resumed.count}: at least what was published while no gateway ran`,
  );
  await upTo(back, publisher, publisher.last + 50);
  const last = await publisher.stop();
  await upTo(back, publisher, last);
  assertExactlyOnce(before, numbered(back.frames, publisher), last);
});

Deno.test("--history stream: a client away longer than the retention, or further behind than --history-max-replay, gets gap", async () => {
  await using t = new StreamCase("gap");
  const { stream, exchange, clients } = t;
  // Small segments, so that the retention by size drops the oldest within a few hundred replies.
  const retention = ["--history-max-bytes", "256KiB", "--history-segment-bytes", "4KiB"];
  await using gateway = await startGateway({ exchange, args: streamArgs(stream, retention) });
  await using strict = await startGateway({
    exchange,
    args: streamArgs(stream, [...retention, "--history-max-replay", "10"]),
  });
  const publisher = await t.publisher();
  const observer = await v1Client(gateway);
  const strictObserver = await v1Client(strict);
  const away = await v1Client(gateway);
  clients.push(observer, strictObserver, away);
  const epoch = json(away.frames[0]).epoch;
  await publisher.burst(1);
  const oldSeq = Number(json(await upTo(away, publisher, 1)).seq);
  await away.close();
  await publisher.burst(600, 1000);
  // The burst has reached the gateway's live fan-out before the new client connects: what it gets after its
  // welcome would otherwise be the burst's live tail, not a replay.
  await upTo(observer, publisher, publisher.last);

  const { back, gap } = await resumeIntoGap(gateway, clients, epoch, oldSeq);
  assert.ok(Number(gap.oldest) > oldSeq + 1, `the stream now starts at ${gap.oldest}`);
  assert.equal(numbered(back.frames, publisher).length, 0, "nothing replayed");
  // Live again after the gap.
  await publisher.burst(1);
  await upTo(back, publisher, publisher.last);

  // The other gateway reads the stream on its own: it has the last reply before `behind` is welcomed.
  await upTo(strictObserver, publisher, publisher.last);
  const behind = await v1Client(strict);
  clients.push(behind);
  const latest = Number(json(behind.frames[0]).seq);
  behind.send({ "clu-ws": "resume", id: "far", epoch, seq: latest - 20 });
  const far = json(await behind.next("gap far", control("gap")));
  assert.match(
    String(far.reason),
    /20 replies were missed; a resume replays at most 10 \(--history-max-replay\)/,
  );
  behind.send({ "clu-ws": "resume", id: "near", epoch, seq: latest - 5 });
  const near = json(await behind.next("resumed near", control("resumed")));
  // Stream offsets have holes (RabbitMQ's own entries): what is replayed is every reply in the range.
  await upTo(observer, publisher, publisher.last);
  const inRange = numbered(observer.frames, publisher).filter((f) => Number(json(f).seq) > latest - 5);
  assert.deepEqual(
    numbered(behind.frames, publisher).map((f) => json(f).seq),
    inRange.map((f) => json(f).seq),
    "the replies after latest - 5, as a client connected all along got them",
  );
  assert.deepEqual(near, {
    "clu-ws": "resumed",
    id: "near",
    from: latest - 5,
    to: latest,
    count: inRange.length,
  });
  behind.send({ "clu-ws": "resume", id: "other", epoch: "another-epoch", seq: 1 });
  assert.match(
    String(json(await behind.next("gap other", control("gap", (f) => f.id === "other"))).reason),
    /another epoch/,
  );
  behind.send({ "clu-ws": "resume", id: "ahead", epoch, seq: latest + 1000 });
  assert.match(
    String(json(await behind.next("gap ahead", control("gap", (f) => f.id === "ahead"))).reason),
    /ahead/,
  );
});

Deno.test("--history stream: a client away longer than the age retention (--history-max-age) gets gap", async () => {
  await using t = new StreamCase("agegap");
  const { stream, exchange, clients } = t;
  // A short age and small segments; the size retention (1 GiB) plays no part. RabbitMQ applies the age each
  // time a segment fills and another starts (osiris evaluates retention then, not on a timer): it drops the
  // segments whose newest entry is older than the age, never the one being written.
  const retention = ["--history-max-age", "3s", "--history-segment-bytes", "4KiB"];
  await using gateway = await startGateway({ exchange, args: streamArgs(stream, retention) });
  const publisher = await t.publisher();
  const observer = await v1Client(gateway);
  const away = await v1Client(gateway);
  clients.push(observer, away);
  const epoch = json(away.frames[0]).epoch;
  await publisher.burst(1);
  const oldSeq = Number(json(await upTo(away, publisher, 1)).seq);
  await away.close();
  // Fill the segment that holds it (5 KB > 4 KiB): what comes next starts another, so this one ages from now.
  await publisher.burst(5, 1000);
  // Waiting out the age is what is tested: a segment's worth of replies every half second until the broker
  // has dropped the old one (its first offset is past the old reply's, seq = offset + 1). 3 s of age; the
  // deadline is ten times that.
  const first = await until("the age retention to drop the old reply's segment", async () => {
    await publisher.burst(5, 1000);
    const offset = await firstOffset(stream);
    return offset > oldSeq - 1 ? offset : undefined;
  }, { timeoutMs: 30_000, intervalMs: 500 });
  // The bursts have reached the gateway's live fan-out before the client comes back (see the size case).
  await upTo(observer, publisher, publisher.last);

  const { back, gap } = await resumeIntoGap(gateway, clients, epoch, oldSeq);
  assert.ok(
    Number(gap.oldest) >= first + 1,
    `the stream now starts at ${gap.oldest} (first offset ${first})`,
  );
  assert.equal(numbered(back.frames, publisher).length, 0, "nothing replayed");
  // Live again after the gap.
  await publisher.burst(1);
  await upTo(back, publisher, publisher.last);
});

Deno.test("--history stream: a replay goes at the client's pace (prefetch and its socket's budget), never over its budget", async () => {
  await using t = new StreamCase("pace");
  const { stream, exchange, clients } = t;
  const missed = 10_000;
  // A 64 KiB budget with the close policy: a replay that did not wait for the socket would be closed (1008).
  await using gateway = await startGateway({
    exchange,
    args: streamArgs(stream, ["--client-buffer", "64KiB"]),
  });
  const publisher = await t.publisher();
  const observer = await v1Client(gateway);
  clients.push(observer);
  const epoch = json(observer.frames[0]).epoch;
  await publisher.burst(1);
  const fromSeq = Number(json(await upTo(observer, publisher, 1)).seq);
  // Away: about 10 MB missed, far more than the budget and the kernel's socket buffers. The
  // observer stays, for one reply only: once it has it, the gateway has read the whole burst.
  observer.send({ "clu-ws": "subscribe", id: "z", codes: ["z"] });
  await observer.next("subscribed", control("subscribed"));
  await publisher.burst(missed, 1000);
  await publisher.mark("z");
  await observer.next("the mark after the burst", (f) => f.body?.mark === true, { timeoutMs: 60_000 });
  const raw = await RawWebSocket.connect(gateway.port, { protocols: V1 });
  try {
    await raw.readTextUntil((text) => text.includes('"welcome"'));
    const logsBefore = gateway.logs.length;
    await raw.sendFrame(
      1,
      new TextEncoder().encode(JSON.stringify({ "clu-ws": "resume", id: "pace", epoch, seq: fromSeq })),
    );
    // The client reads nothing until the gateway has paused its replay for it.
    const paused = await gateway.waitForLog(
      "the replay paused for the client",
      (r) => /replay to client .* paused/.test(r.message),
      { after: logsBefore, timeoutMs: 60_000 },
    );
    assert.ok(Number(paused.bytes) > 32 * 1024, `paused with ${paused.bytes} bytes waiting`);
    const texts = await raw.readTextUntil((text) => text.includes('"resumed"'), {
      timeoutMs: 120_000,
    });
    const frames = texts.map((t) => JSON.parse(t));
    const resumed = frames.find((f) => f["clu-ws"] === "resumed");
    assert.ok(resumed, "resumed");
    assert.deepEqual(
      frames.filter((f) => !("clu-ws" in f) && f.body.n !== undefined).map((f) => f.body.n),
      Array.from({ length: missed }, (_, i) => i + 2),
      "every missed reply once, in order",
    );
    assert.equal(resumed.from, fromSeq);
    assert.equal(resumed.count, missed + 1, "the burst and the mark, replayed");
    const done = await gateway.waitForLog(
      "the replay's summary",
      (r) => /replayed \d+ replies/.test(r.message),
      {
        after: logsBefore,
      },
    );
    console.log(
      `replay of ${missed} replies of ~1 KB to a client with a 64 KiB budget: ${done.ms} ms, ${done.pauses} pauses`,
    );
  } finally {
    raw.abort();
  }
});

Deno.test("--history stream: resume by time (since) replays what came since, then live; bounded by --history-max-replay", async () => {
  await using t = new StreamCase("since");
  const { stream, exchange, clients } = t;
  await using gateway = await startGateway({ exchange, args: streamArgs(stream) });
  await using strict = await startGateway({
    exchange,
    args: streamArgs(stream, ["--history-max-replay", "10"]),
  });
  const publisher = await t.publisher();
  const observer = await v1Client(gateway);
  clients.push(observer);
  await publisher.burst(20);
  const since = Date.now();
  await publisher.burst(20);
  // The gateway has read the last reply before the new client connects: otherwise the tail arrives live
  // after its welcome and again in its replay.
  await upTo(observer, publisher, 40);
  const fresh = await v1Client(gateway);
  clients.push(fresh);
  const epoch = json(fresh.frames[0]).epoch;
  fresh.send({ "clu-ws": "resume", id: "t", epoch, since });
  const resumed = json(await fresh.next("resumed", control("resumed")));
  const replayed = numbered(fresh.frames, publisher).map((f) => Number(f.body.n));
  // By chunk and by the replies' timestamps (seconds): at least every reply since, as a run up to the last.
  assert.ok(replayed.length >= 20 && replayed.length <= 40, `${replayed.length} replayed`);
  assert.deepEqual(replayed, Array.from({ length: replayed.length }, (_, i) => 41 - replayed.length + i));
  assert.equal(resumed.count, replayed.length);
  await publisher.burst(1);
  await upTo(fresh, publisher, 41);

  // Nothing since: answered at once (a marker ends the reader's wait), then live.
  const quiet = await v1Client(gateway);
  clients.push(quiet);
  quiet.send({ "clu-ws": "resume", id: "q", epoch, since: Date.now() + 60_000 });
  // 10 s: well inside the replay's 15 s idle timeout, which is what this tells apart from the marker.
  const none = json(await quiet.next("resumed", control("resumed"), { timeoutMs: 10_000 }));
  assert.equal(none.count, 0);
  await publisher.burst(1);
  await upTo(quiet, publisher, 42);

  // Nothing since, on a gateway that was not reading then: the stream is read, and the wait at its
  // end ends at once (a marker), not after the idle timeout.
  const quietSince = Date.now();
  await using late = await startGateway({ exchange, args: streamArgs(stream) });
  const lateClient = await v1Client(late);
  clients.push(lateClient);
  const asked = performance.now();
  lateClient.send({ "clu-ws": "resume", id: "l", epoch, since: quietSince });
  const lateAnswer = json(await lateClient.next("resumed", control("resumed"), { timeoutMs: 10_000 }));
  assert.ok(performance.now() - asked < 10_000, "answered before the replay's 15 s idle timeout");
  // Replies of the same second as `since` may come (timestamps are in seconds); none after it.
  assert.ok(numbered(lateClient.frames, publisher).every((f) => Number(f.body.n) <= 42), "nothing newer");
  assert.equal(lateAnswer.count, numbered(lateClient.frames, publisher).length);

  // Further back than --history-max-replay: the last ten positions only.
  const far = await v1Client(strict);
  clients.push(far);
  far.send({ "clu-ws": "resume", id: "f", epoch, since: 0 });
  const last = json(await far.next("resumed", control("resumed")));
  assert.equal(Number(last.to) - Number(last.from), 10);
  const tail = numbered(far.frames, publisher).map((f) => Number(f.body.n));
  assert.ok(tail.length >= 1 && tail.length <= 10 && tail.at(-1) === 42, `${tail}`);

  // The memory history has no times to resume from: a clear error.
  await using memory = await startGateway({ exchange });
  const plain = await v1Client(memory);
  clients.push(plain);
  plain.send({ "clu-ws": "resume", id: "m", epoch: json(plain.frames[0]).epoch, since: 0 });
  assert.match(
    String(json(await plain.next("error", control("error"))).error),
    /resume by time \("since"\) needs the history stream \(--history stream\)/,
  );
});

Deno.test("--history stream: a stream deleted under the gateway is declared again; positions start over, old ones get gap", async () => {
  await using t = new StreamCase("deleted");
  const { stream, exchange, clients } = t;
  await using gateway = await startGateway({ exchange, args: streamArgs(stream) });
  const publisher = await t.publisher();
  const before = await v1Client(gateway);
  clients.push(before);
  const epoch = json(before.frames[0]).epoch;
  await publisher.burst(50);
  const oldSeq = Number(json(await upTo(before, publisher, 50)).seq);
  const logsBefore = gateway.logs.length;
  await deleteStream(stream);
  // The gateway's consumer is cancelled; it declares the stream again and finds it starts over.
  const closed = await before.closed;
  assert.equal(closed.code, 1012);
  assert.match(closed.reason, /the history stream started over/);
  await gateway.waitForLog(
    "the restart logged",
    (r) => /was deleted and declared again; positions start over/.test(r.message),
    { after: logsBefore, timeoutMs: 30_000 },
  );
  await gateway.waitForLog("the link up again", (r) => /RabbitMQ link up/.test(r.message), {
    after: logsBefore,
    timeoutMs: 30_000,
  });
  const after = await v1Client(gateway);
  clients.push(after);
  // Reconnected at the new stream's end: live replies flow, with the new stream's positions.
  await until("a live reply on the new stream", async () => {
    await publisher.burst(1);
    return numbered(after.frames, publisher).length > 0;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  const fresh = numbered(after.frames, publisher);
  assert.ok(
    Number(json(fresh[0]).seq) < oldSeq,
    `new positions (${json(fresh[0]).seq}) below the old (${oldSeq})`,
  );
  after.send({ "clu-ws": "resume", id: "old", epoch, seq: oldSeq });
  assert.match(String(json(await after.next("gap", control("gap"))).reason), /ahead of the stream's end/);
});

Deno.test("--history stream: with the RabbitMQ link down a resume that needs the stream is closed with 1013; nothing is lost across the link's loss", async () => {
  await using t = new StreamCase("linkdown");
  const { stream, exchange, clients } = t;
  await using proxy = TcpProxy.reserve(5672);
  proxy.up();
  await using gateway = await startGateway({
    exchange,
    args: streamArgs(stream),
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
  });
  const publisher = await t.publisher();
  const observer = await v1Client(gateway);
  const away = await v1Client(gateway);
  clients.push(observer, away);
  const epoch = json(away.frames[0]).epoch;
  await publisher.burst(5);
  const lastSeq = Number(json(await upTo(away, publisher, 5)).seq);
  const seqOf3 = Number(json(numbered(away.frames, publisher)[2]).seq);
  await away.close();
  const logsBefore = gateway.logs.length;
  await proxy.down();
  await gateway.waitForLog("the link lost", (r) => /RabbitMQ link lost/.test(r.message), {
    after: logsBefore,
  });
  await publisher.burst(5);

  // Missed 4 and 5, which only the stream has: closed with "try again later", not a gap.
  const early = await v1Client(gateway);
  clients.push(early);
  early.send({ "clu-ws": "resume", id: "down", epoch, seq: seqOf3 });
  const closed = await early.closed;
  assert.equal(closed.code, 1013, "try again later: not a gap");
  assert.match(closed.reason, /RabbitMQ link down\); reconnect to resume/);
  // Missed nothing the gateway has read: resumed at once, and what comes meanwhile arrives live later.
  const current = await v1Client(gateway);
  clients.push(current);
  current.send({ "clu-ws": "resume", id: "now", epoch, seq: lastSeq });
  assert.equal(json(await current.next("resumed", control("resumed"))).count, 0);

  proxy.up();
  // The link reads on from where it was: live clients get what came while it was down.
  await upTo(observer, publisher, 10, 30_000);
  assert.deepEqual(numbered(observer.frames, publisher).map((f) => f.body.n), [
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
  ]);
  await upTo(current, publisher, 10);
  assert.deepEqual(numbered(current.frames, publisher).map((f) => f.body.n), [6, 7, 8, 9, 10]);
  const back = await v1Client(gateway);
  clients.push(back);
  back.send({ "clu-ws": "resume", id: "up", epoch, seq: seqOf3 });
  const resumed = json(await back.next("resumed", control("resumed")));
  assert.equal(resumed.count, 7);
  assert.deepEqual(numbered(back.frames, publisher).map((f) => f.body.n), [4, 5, 6, 7, 8, 9, 10]);
});

Deno.test("--history stream: --history-replays 1 makes resumes wait their turn; each still gets everything once", async () => {
  await using t = new StreamCase("turns");
  const { stream, exchange, clients } = t;
  await using gateway = await startGateway({
    exchange,
    args: streamArgs(stream, ["--history-replays", "1"]),
  });
  const publisher = await t.publisher();
  const first = await v1Client(gateway);
  clients.push(first);
  const epoch = json(first.frames[0]).epoch;
  await publisher.burst(1);
  const fromSeq = Number(json(await upTo(first, publisher, 1)).seq);
  await publisher.burst(2000);
  await upTo(first, publisher, 2001);
  const resumers = await Promise.all([v1Client(gateway), v1Client(gateway), v1Client(gateway)]);
  clients.push(...resumers);
  for (const [i, client] of resumers.entries()) {
    client.send({ "clu-ws": "resume", id: i, epoch, seq: fromSeq });
  }
  for (const client of resumers) {
    const resumed = json(await client.next("resumed", control("resumed"), { timeoutMs: 30_000 }));
    assert.equal(resumed.count, 2000);
    assert.deepEqual(
      numbered(client.frames, publisher).map((f) => Number(f.body.n)),
      Array.from({ length: 2000 }, (_, i) => i + 2),
    );
  }
  const summaries = await until(
    "the three replays' summaries",
    () => {
      const found = gateway.logs.filter((r) => /^replayed \d+ replies/.test(r.message));
      return found.length >= 3 ? found : undefined;
    },
  );
  assert.deepEqual(summaries.map((r) => r.count), [2000, 2000, 2000]);
  // One at a time: each read started once the one before had ended (log times are in ms).
  const spans = summaries.map((r) => ({ end: Date.parse(String(r["@timestamp"])), ms: Number(r.ms) }))
    .sort((a, b) => a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    assert.ok(
      spans[i].end - spans[i].ms >= spans[i - 1].end - 5,
      `replay ${i + 1} overlapped the one before`,
    );
  }
});

Deno.test("--history stream: a batching client (options batch) resumes under a steady publish: every reply once, in order", async () => {
  await using t = new StreamCase("batch");
  const { stream, exchange, clients } = t;
  /** The replies of `publisher` a client got, its batches (JSON arrays) unpacked. */
  const repliesOf = (client: WsClient, publisher: SteadyPublisher): Frame[] =>
    client.frames.flatMap((f) => (Array.isArray(f) ? f as Frame[] : [f])).filter((f) =>
      !("clu-ws" in f) && f.body?.run === publisher.run
    );
  const has = (client: WsClient, publisher: SteadyPublisher, n: number) =>
    until(`n=${n}`, () => repliesOf(client, publisher).some((f) => f.body.n === n), { timeoutMs: 30_000 });
  await using gateway = await startGateway({ exchange, args: streamArgs(stream) });
  const publisher = await t.publisher();
  // Two batching clients that follow the shared turn: one stays, one leaves and resumes.
  const stays = await v1Client(gateway);
  const away = await v1Client(gateway);
  clients.push(stays, away);
  for (const client of [stays, away]) {
    client.send({ "clu-ws": "options", id: "b", batch: true });
    await client.next("options", control("options"));
  }
  const epoch = json(away.frames[0]).epoch;
  publisher.start(2);
  await has(away, publisher, 30);
  await away.close();
  const before = repliesOf(away, publisher);
  const lastSeq = Number(json(before.at(-1)!).seq);
  await has(stays, publisher, Number(before.at(-1)!.body.n) + 100);
  const back = await v1Client(gateway);
  clients.push(back);
  back.send({ "clu-ws": "options", id: "b", batch: true });
  await back.next("options", control("options"));
  back.send({ "clu-ws": "resume", id: "r", epoch, seq: lastSeq });
  await back.next("resumed", control("resumed"), { timeoutMs: 30_000 });
  await has(back, publisher, publisher.last + 50);
  const last = await publisher.stop();
  await has(back, publisher, last);
  await has(stays, publisher, last);
  assertExactlyOnce(before, repliesOf(back, publisher), last);
  assert.deepEqual(
    repliesOf(stays, publisher).map((f) => f.body.n),
    Array.from({ length: last }, (_, i) => i + 1),
    "the client that stayed got every reply once, in order",
  );
});

Deno.test("--history stream: a v1 client of a gateway that has not read the stream's end yet is welcomed once it has, with a real position", async () => {
  await using t = new StreamCase("welcome");
  const { stream, exchange, clients } = t;
  await using proxy = TcpProxy.reserve(5672);
  await using first = await startGateway({ exchange, args: streamArgs(stream) });
  const publisher = await t.publisher();
  const observer = await v1Client(first);
  clients.push(observer);
  await publisher.burst(5);
  const seqOf5 = Number(json(await upTo(observer, publisher, 5)).seq);
  // A second gateway whose broker is not reachable yet.
  await using late = await startGateway({
    exchange,
    args: streamArgs(stream),
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}` },
    waitForBroker: false,
  });
  const early = await WsClient.connect(late.url(), { protocols: V1 });
  clients.push(early);
  assert.equal(early.frames.length, 0, "no welcome while the position is unknown");
  proxy.up();
  const welcome = json(await early.next("the welcome", control("welcome"), { timeoutMs: 20_000 }));
  assert.equal(
    json(early.frames[0])["clu-ws"],
    "welcome",
    `the welcome is the first frame: ${early.raw.slice(0, 3).join(" | ")}`,
  );
  assert.ok(
    Number(welcome.seq) >= seqOf5,
    `welcome seq ${welcome.seq}, after the replies already in the stream`,
  );
  assert.equal(welcome.broker, "up");
  await publisher.burst(1);
  const live = await upTo(early, publisher, 6);
  assert.ok(Number(json(live).seq) > Number(welcome.seq));
});
