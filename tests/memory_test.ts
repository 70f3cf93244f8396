// Memory and descriptors under load, measured from outside on the gateway
// process (its RSS and its open file descriptors in /proc), with the real
// broker and real sockets: a flood of ~1 KB replies to 20 clients while one
// stalled peer stops reading, and thousands of connect/close cycles ending in
// every way a client can leave (close frame, bare FIN, RST). Plus the
// history's byte bound as a unit.
//
// RSS is noisy (PITFALLS: a Deno process grows by tens of MiB while its heap
// warms up and gives little back at once), so the budgets are wide and each
// figure is printed for the record; descriptors are exact and must come back.

import assert from "node:assert/strict";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { flood, floodFromChild } from "./helpers/flood.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { RawWebSocket } from "./helpers/raw_ws.ts";
import { startActor } from "./helpers/actor.ts";
import { type Frame, WsClient } from "./helpers/ws_client.ts";
import { History, type HistoryEntry } from "../lib/replies/history.ts";

const MiB = 1024 * 1024;

/** Peak RSS since the last reset, in bytes (Linux `VmHWM`). */
function peakRss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
}

/** Resets the peak RSS of a process to its RSS now (`clear_refs` 5). */
function resetPeakRss(pid: number): void {
  Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
}

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

/**
 * A websocket client at the TCP level that only counts the frames it receives:
 * the flood would not fit in a test client's frame log, and a browser-style
 * client in this process could not keep up with 20 sockets' worth of frames,
 * so it would be closed as too slow. Reading big chunks and skipping payloads
 * by their length costs next to nothing per frame.
 */
class CountingClient {
  received = 0;
  closed = false;
  readonly #conn: Deno.TcpConn;
  readonly #reading: Promise<void>;
  #waiters: Array<() => void> = [];

  private constructor(conn: Deno.TcpConn, rest: Uint8Array) {
    this.#conn = conn;
    this.#reading = this.#read(rest);
  }

  static async open(port: number): Promise<CountingClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await conn.write(
      new TextEncoder().encode(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    let head = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    while (true) {
      const n = await conn.read(chunk);
      if (n === null) throw new Error("the gateway closed during the handshake");
      const joined = new Uint8Array(head.length + n);
      joined.set(head);
      joined.set(chunk.subarray(0, n), head.length);
      head = joined;
      const text = new TextDecoder().decode(head);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) continue;
      if (!text.startsWith("HTTP/1.1 101")) throw new Error(`upgrade refused: ${text.split("\r\n")[0]}`);
      return new CountingClient(conn, head.subarray(end + 4));
    }
  }

  async #read(first: Uint8Array): Promise<void> {
    const buffer = new Uint8Array(256 * 1024);
    let header: number[] = [];
    let skip = 0;
    const take = (bytes: Uint8Array) => {
      let i = 0;
      while (i < bytes.length) {
        if (skip > 0) {
          const step = Math.min(skip, bytes.length - i);
          skip -= step;
          i += step;
          continue;
        }
        header.push(bytes[i++]);
        if (header.length < 2) continue;
        const short = header[1] & 0x7f;
        const size = short === 126 ? 4 : short === 127 ? 10 : 2;
        if (header.length < size) continue;
        skip = short === 126
          ? (header[2] << 8) | header[3]
          : short === 127
          ? Number(new DataView(new Uint8Array(header).buffer).getBigUint64(2))
          : short;
        if ((header[0] & 0x0f) === 0x8) this.closed = true;
        else this.received++;
        header = [];
      }
    };
    try {
      take(first);
      while (true) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        take(buffer.subarray(0, n));
        this.#wake();
      }
    } catch {
      // Reset by the gateway.
    }
    this.closed = true;
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `count` frames have arrived; rejects if the gateway closes first or time runs out. */
  async waitFor(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received < count) {
      if (this.closed) throw new Error(`closed by the gateway after ${this.received} of ${count} frames`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.received} of ${count} frames within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Drops the connection (no close frame: the gateway's side of that is tested elsewhere). */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    await this.#reading;
  }
}

/** The gateway with info logs: debug logs a line per reply, which is not what is measured here. */
function startQuietGateway(exchange: string, args: string[] = []): Promise<GatewayProcess> {
  return startGateway({ exchange, args: ["--log-level", "info", ...args] });
}

/**
 * The flood scenario: 20 clients read everything, one raw peer completes the
 * handshake and never reads again, and `total` replies of ~1 KB are published
 * as fast as possible. Resolves with the gateway's peak RSS growth over its
 * RSS just before publishing.
 */
async function floodScenario(args: string[], total: number): Promise<{ growth: number; before: number }> {
  const exchange = uniqueExchange("flood");
  await using gateway = await startQuietGateway(exchange, args);
  const clients = await Promise.all(Array.from({ length: 20 }, () => CountingClient.open(gateway.port)));
  const stalled = await RawWebSocket.connect(gateway.port);
  try {
    // One reply through everything first, so every consumer is in place.
    await flood(exchange, 1, 1000);
    await Promise.all(clients.map((c) => c.waitFor(1, 10_000)));
    const before = gateway.rssBytes();
    // The kernel's peak (exact), and samples every 25 ms in case this kernel does not let us reset it.
    let hwm = true;
    try {
      resetPeakRss(gateway.pid);
    } catch {
      hwm = false;
    }
    let sampled = before;
    const sampler = setInterval(() => sampled = Math.max(sampled, gateway.rssBytes()), 25);
    try {
      await floodFromChild(exchange, total, 1000);
      await Promise.all(clients.map((c) => c.waitFor(1 + total, 120_000))).catch((err) => {
        throw new Error(`${err.message}; gateway log:\n${gateway.dump(10)}`);
      });
    } finally {
      clearInterval(sampler);
    }
    const growth = Math.max(sampled, hwm ? peakRss(gateway.pid) : 0) - before;
    // Log lines arrive through a pipe: the close's line is awaited before they are counted.
    await gateway.waitForLog("the slow close", (r) => /too slow/.test(r.message));
    const slowCloses = gateway.logs.filter((r) => /too slow/.test(r.message)).length;
    assert.equal(slowCloses, 1, "the stalled peer, and only it, was closed for being too slow");
    return { growth, before };
  } finally {
    stalled.abort();
    await Promise.all(clients.map((c) => c.close()));
  }
}

Deno.test("memory: 30,000 replies of ~1 KB to 20 clients and a stalled peer grow the gateway's RSS by less than 64 MiB", async () => {
  const { growth, before } = await floodScenario([], 30_000);
  console.log(
    `flood (defaults): RSS ${mib(before)} MiB before publishing, peak +${mib(growth)} MiB ` +
      `(30,000 replies of ~1 KB, 20 clients, 1 stalled peer)`,
  );
  assert.ok(
    growth < 64 * MiB,
    `the gateway's RSS peaked ${mib(growth)} MiB above its level before publishing`,
  );
});

/**
 * Opens a websocket at the TCP level and reads the handshake answer byte by
 * byte, so that whatever the gateway sends next stays unread.
 */
async function rawHandshake(port: number, protocol?: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const request =
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
    (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : "") + "\r\n";
  await conn.write(new TextEncoder().encode(request));
  let head = "";
  const one = new Uint8Array(1);
  while (!head.endsWith("\r\n\r\n")) {
    if (await conn.read(one) === null) throw new Error(`the gateway closed during the handshake: ${head}`);
    head += String.fromCharCode(one[0]);
  }
  if (!head.startsWith("HTTP/1.1 101")) throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
  return conn;
}

/** How a client leaves in {@linkcode cycle}. */
type Leaving = "close frame" | "FIN" | "RST";

/** One connection that ends the given way. */
async function cycle(port: number, leaving: Leaving): Promise<void> {
  if (leaving === "close frame") {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/`);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => socket.close(1000, "bye");
      socket.onclose = () => resolve();
      socket.onerror = () => reject(new Error("the websocket failed"));
    });
  } else if (leaving === "FIN") {
    // Nothing unread: closing sends FIN, and no close frame.
    (await rawHandshake(port)).close();
  } else {
    // Closing with the v1 welcome unread makes the kernel answer with RST. Reading its first bytes
    // first makes sure it has arrived.
    const conn = await rawHandshake(port, "clu-ws.v1");
    await conn.read(new Uint8Array(2));
    conn.close();
  }
}

/** `count` cycles, the three ways of leaving in turn, `parallel` at a time. */
async function cycles(port: number, count: number, parallel = 8): Promise<void> {
  const ways: Leaving[] = ["close frame", "FIN", "RST"];
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      const n = next++;
      await cycle(port, ways[n % ways.length]);
    }
  }));
}

const disconnected = (gateway: GatewayProcess) =>
  gateway.logs.filter((r) => /^client \S+ from .* disconnected/.test(r.message)).length;

/**
 * Resolves once the gateway has logged `closes` disconnections in all and its
 * descriptors are back to `fds` (or fewer); with the number open then.
 * (No `/healthz` here: its keep-alive connection would be a descriptor too.)
 */
async function settled(gateway: GatewayProcess, closes: number, fds: number): Promise<number> {
  await until(`${closes} disconnections logged`, () => disconnected(gateway) >= closes, { timeoutMs: 30_000 })
    .catch((err) => {
      throw new Error(`${err.message}: ${disconnected(gateway)}`);
    });
  let open = gateway.openFds();
  await until(`the gateway's descriptors back to ${fds}`, () => (open = gateway.openFds()) <= fds, {
    timeoutMs: 30_000,
  }).catch((err) => {
    throw new Error(`${err.message}: ${open} open`);
  });
  return open;
}

Deno.test("memory: 3,000 connect/close cycles (close frames, FIN, RST) leave descriptors where they were and RSS within 32 MiB", async () => {
  const exchange = uniqueExchange("cycles");
  await using gateway = await startQuietGateway(exchange);
  const total = 3000;
  const started = Date.now();
  // Warm-up: the same work twice, so that what is measured is what stays, not V8 growing its heap to
  // the working size of a few thousand connections a second (one round is not enough for that).
  const initialFds = gateway.openFds();
  const initialRss = gateway.rssBytes();
  for (let round = 1; round <= 2; round++) {
    await cycles(gateway.port, total);
    await settled(gateway, round * total, initialFds);
  }
  const fds = gateway.openFds();
  const rss = gateway.rssBytes();
  await cycles(gateway.port, total);
  const fdsAfter = await settled(gateway, 3 * total, fds);
  const rssAfter = gateway.rssBytes();
  console.log(
    `cycles: ${total} after a warm-up of 2 × ${total} (${Date.now() - started} ms in all): ` +
      `fds ${initialFds} at start, ${fds} after the warm-up, ${fdsAfter} after; RSS ${
        mib(initialRss)
      } MiB at start, ` +
      `${mib(rss)} after the warm-up, ${mib(rssAfter)} after (${rssAfter >= rss ? "+" : ""}${
        mib(rssAfter - rss)
      } MiB)`,
  );
  assert.equal(disconnected(gateway), 3 * total, "every connection was seen to close, once");
  assert.ok(fdsAfter <= fds, `${fdsAfter} descriptors open after the cycles, ${fds} before`);
  assert.ok(rssAfter - rss < 32 * MiB, `RSS grew by ${mib(rssAfter - rss)} MiB over ${total} cycles`);
});

/** A history entry whose v1 frame is `bytes` long (ASCII). */
function entry(seq: number, bytes: number, at = Date.now()): HistoryEntry {
  const head = `{"seq":${seq},"body":"`;
  return {
    seq,
    at,
    frame: `${head}${"x".repeat(bytes - head.length - 2)}"}`,
    meta: { sender: `actor-${seq}`, code: "i", routingKey: "reply.broadcast", commandId: undefined },
  };
}

Deno.test("history: the byte bound evicts the oldest entries first, and resume across them is a gap", () => {
  // Each entry counts its frame, its filter fields and the fixed overhead: about 1,100 bytes here.
  const history = new History({ maxEntries: 1000, maxAgeSeconds: 600, maxBytes: 10_000 });
  for (let seq = 1; seq <= 30; seq++) history.push(entry(seq, 1000));
  assert.ok(history.bytes <= 10_000, `${history.bytes} bytes counted`);
  assert.equal(history.size, 9, "as many 1 KB entries as fit in 10,000 bytes");
  assert.equal(history.oldest(), 22, "the newest ones are kept");
  const kept = history.after(21, 30)!;
  assert.deepEqual(kept.map((e) => e.seq), [22, 23, 24, 25, 26, 27, 28, 29, 30]);
  assert.deepEqual(
    kept.map((e) => e.frame),
    kept.map((e) => entry(e.seq, 1000).frame),
    "frames come back whole",
  );
  assert.equal(kept[0].meta.sender, "actor-22");
  assert.equal(history.after(20, 30), undefined, "seq 21 was evicted: a gap, not a silent skip");
  assert.equal(history.after(5, 30), undefined);
  assert.deepEqual(history.after(30, 30), [], "nothing missed, nothing to replay");

  // A larger reply pushes out as many of the oldest as it needs, in order.
  history.push(entry(31, 4000));
  assert.equal(history.oldest(), 26);
  assert.deepEqual(history.after(25, 31)!.map((e) => e.seq), [26, 27, 28, 29, 30, 31]);
  // One larger than the whole budget cannot be kept: everything before it is a gap too.
  history.push(entry(32, 20_000));
  assert.equal(history.size, 0);
  assert.equal(history.after(31, 32), undefined);
  history.push(entry(33, 1000));
  assert.deepEqual(history.after(32, 33)!.map((e) => e.seq), [33]);
});

Deno.test("history: entries of mixed sizes keep their text and filter fields across many wrap-arounds", () => {
  const history = new History({ maxEntries: 50, maxAgeSeconds: 600, maxBytes: 20_000 });
  const pushed: HistoryEntry[] = [];
  for (let seq = 1; seq <= 2000; seq++) {
    const one = entry(seq, 100 + ((seq * 7919) % 3000));
    // Non-ASCII text and a command id on some: UTF-8 lengths differ from string lengths.
    if (seq % 3 === 0) one.frame = one.frame.replace('"body":"', '"body":"é→✓ ');
    if (seq % 2 === 0) one.meta = { ...one.meta, commandId: `id-${seq}`, sender: `a\0"${seq}` };
    history.push(one);
    pushed.push(one);
    const oldest = history.oldest()!;
    assert.ok(history.bytes <= 20_000 && history.size <= 50, `bounds hold at ${seq}`);
    if (seq % 97 === 0 || seq === 2000) {
      const kept = history.after(oldest - 1, seq)!;
      assert.deepEqual(kept, pushed.slice(oldest - 1, seq), `entries ${oldest}..${seq}`);
    }
  }
});

Deno.test("history: large entries (past the shared encoding buffer) and small ones interleaved keep their text", () => {
  const history = new History({ maxEntries: 100, maxAgeSeconds: 600, maxBytes: 400_000 });
  const pushed: HistoryEntry[] = [];
  for (let seq = 1; seq <= 60; seq++) {
    // Every third entry is 20,000–40,000 characters, some of them three bytes each in UTF-8.
    const one = entry(seq, seq % 3 === 0 ? 20_000 + seq * 300 : 200 + seq);
    if (seq % 2 === 0) one.frame = one.frame.replace('"body":"', `"body":"${"✓".repeat(seq * 100)}`);
    history.push(one);
    pushed.push(one);
  }
  const oldest = history.oldest()!;
  assert.ok(oldest > 1, "the byte bound evicted the oldest");
  assert.deepEqual(history.after(oldest - 1, 60), pushed.slice(oldest - 1));
});

Deno.test("history: by count and by age as before", () => {
  const history = new History({ maxEntries: 3, maxAgeSeconds: 10, maxBytes: 1024 * 1024 });
  for (let seq = 1; seq <= 5; seq++) history.push(entry(seq, 100, 1000 * seq));
  assert.equal(history.size, 3);
  assert.deepEqual(history.after(2, 5, 5000)!.map((e) => e.seq), [3, 4, 5]);
  assert.equal(history.after(1, 5, 5000), undefined);
  assert.equal(history.oldest(14_500), 5, "older than ten seconds at 14.5 s: gone");
  const none = new History({ maxEntries: 100, maxAgeSeconds: 600, maxBytes: 0 });
  none.push(entry(1, 100));
  assert.equal(none.size, 0, "--history-bytes 0 keeps none");
});

Deno.test("history: through the gateway, --history-bytes bounds what resume replays; past it, a gap", async () => {
  const exchange = uniqueExchange("history-bytes");
  await using gateway = await startGateway({ exchange, args: ["--history-bytes", "8KiB"] });
  const actor = await startActor(exchange, `memory-${crypto.randomUUID().slice(0, 8)}`);
  const client = await WsClient.connect(gateway.url(), { protocols: ["clu-ws.v1"] });
  let back: WsClient | undefined;
  try {
    const fields = (f: Frame) => f as unknown as Record<string, unknown>;
    const welcome = fields(await client.next("the welcome", (f) => fields(f)["clu-ws"] === "welcome"));
    // About 1.3 KB each as a v1 frame, with text that is not ASCII: 8 KiB keeps the last six.
    const text = "ü→".repeat(300);
    for (let n = 1; n <= 20; n++) await actor.broadcast({ n, text });
    const last = fields(await client.next("n=20", (f) => f.body?.n === 20));
    const latest = Number(last.seq);
    const first = Number(fields(client.frames.find((f) => f.body?.n === 1)!).seq);
    // A client that was away for all of them.
    back = await WsClient.connect(gateway.url(), { protocols: ["clu-ws.v1"] });

    back.send({ "clu-ws": "resume", id: "r1", epoch: welcome.epoch, seq: first });
    const gap = fields(await back.next("gap", (f) => fields(f)["clu-ws"] === "gap"));
    assert.match(String(gap.reason), /no longer kept/);
    assert.equal(gap.latest, latest);
    const oldest = Number(gap.oldest);
    const kept = latest - oldest + 1;
    assert.ok(kept >= 4 && kept <= 6, `${kept} replies of ~1.3 KB kept in 8 KiB`);

    back.send({ "clu-ws": "resume", id: "r2", epoch: welcome.epoch, seq: oldest - 1 });
    const resumed = fields(await back.next("resumed", (f) => fields(f)["clu-ws"] === "resumed"));
    assert.equal(resumed.count, kept);
    const replayed = back.frames.filter((f) => typeof f.body?.n === "number");
    assert.deepEqual(replayed.map((f) => f.body.n), Array.from({ length: kept }, (_, i) => 21 - kept + i));
    const live = client.frames.filter((f) => typeof f.body?.n === "number").slice(-kept);
    assert.deepEqual(
      back.raw.filter((r) => r.includes('"n":')),
      client.raw.filter((r) => r.includes('"n":')).slice(-kept),
      "replayed frames are the live frames, byte for byte",
    );
    assert.equal(live.at(-1)?.body.text, text);
  } finally {
    await client.close();
    await back?.close();
    await actor.close();
  }
});
