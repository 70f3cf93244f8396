/**
 * The websocket load generator, run as its own process so that its event loop
 * is neither the gateway's nor the publisher's. Started by the harness with
 * one JSON argument (a {@linkcode ClientsJob}); prints JSON lines on stdout:
 * `ready` once every socket is open, then `result`; reads orders on stdin:
 * `go` (start sending commands), `stop` (report now).
 *
 * Modes:
 * - `receive`: K clients count the benchmark replies they get, check loss,
 *   duplicates and order by sequence number, and measure publish → receive
 *   latency.
 * - `idle`: C clients connect and do nothing.
 * - `commands`: K clients send commands to an actor through the gateway,
 *   closed-loop (a window of commands in flight each) or at a fixed total
 *   rate, and time each command to its `:` reply.
 *
 * @module
 */

import { V1_SUBPROTOCOL } from "../lib/protocol/v1.ts";
import { percentiles, rateSummary, round } from "./stats.ts";
import { BENCH_ROUTING_KEY, BENCH_SENDER, scanBodies } from "./wire.ts";

/** Receive benchmark replies. */
export interface ReceiveJob {
  /** The mode. */
  mode: "receive";
  /** The gateway's websocket URL. */
  url: string;
  /** Opt in to batched delivery (clu-ws v1: subprotocol `clu-ws.v1`, then `options` `batch: true`). */
  batch?: boolean;
  /** Clients that read. */
  clients: number;
  /** Replies each client should get. */
  expect: number;
  /** Sockets opened at once while connecting. */
  concurrency?: number;
  /**
   * Also report each client's rate and every latency sample (`raw`), so that the harness can merge the
   * results of several clients processes exactly.
   */
  raw?: boolean;
}

/** Hold idle connections. */
export interface IdleJob {
  /** The mode. */
  mode: "idle";
  /** The gateway's websocket URL. */
  url: string;
  /** Connections to open. */
  clients: number;
  /** Sockets opened at once while connecting. */
  concurrency?: number;
}

/** Send commands and time their replies. */
export interface CommandsJob {
  /** The mode. */
  mode: "commands";
  /** The gateway's websocket URL. */
  url: string;
  /** Clients sending commands. */
  clients: number;
  /** The actor to command. */
  consumer: string;
  /** Closed loop: commands in flight per client. */
  window?: number;
  /** Open loop: commands per second, all clients together. */
  rate?: number;
  /**
   * What ends a command: its `:` reply (default), or the gateway's
   * `{"clu-ws": "published"}` acknowledgement, sent once RabbitMQ confirmed it
   * (clu-ws v1, `"ack": true`).
   */
  until?: "reply" | "published";
  /** How long to send, seconds. */
  seconds: number;
  /** Sockets opened at once while connecting. */
  concurrency?: number;
}

/** A job for this process. */
export type ClientsJob = ReceiveJob | IdleJob | CommandsJob;

const encoder = new TextEncoder();

/** The websocket subprotocol of clu-ws's own dialect (docs/protocol.md). */
export const V1_PROTOCOL: string = V1_SUBPROTOCOL;

function emit(event: Record<string, unknown>): void {
  const bytes = encoder.encode(`${JSON.stringify(event)}\n`);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** Reads orders from stdin and calls `on` for each; resolves at end of input. */
async function orders(on: (order: string) => void): Promise<void> {
  let buffer = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      on(buffer.slice(0, newline).trim());
      buffer = buffer.slice(newline + 1);
    }
  }
}

/** Opens `count` websockets, `concurrency` at a time; `setup` wires each before it opens. */
async function openSockets(
  url: string,
  count: number,
  { concurrency = 200, protocols = [] as string[], setup = (_socket: WebSocket, _index: number) => {} } = {},
): Promise<{ sockets: WebSocket[]; failed: number; ms: number }> {
  const started = performance.now();
  const sockets: WebSocket[] = [];
  let failed = 0;
  let lastError = "";
  for (let base = 0; base < count; base += concurrency) {
    const batch: Promise<void>[] = [];
    for (let i = base; i < Math.min(count, base + concurrency); i++) {
      const socket = protocols.length ? new WebSocket(url, protocols) : new WebSocket(url);
      setup(socket, i);
      sockets.push(socket);
      batch.push(
        new Promise<void>((resolve) => {
          socket.addEventListener("open", () => resolve(), { once: true });
          socket.addEventListener("close", (event) => {
            if (socket.readyState !== WebSocket.OPEN) {
              failed++;
              lastError = `closed ${event.code} ${event.reason}`;
            }
            resolve();
          }, { once: true });
        }),
      );
    }
    await Promise.all(batch);
  }
  if (failed > 0) {
    emit({ event: "warning", message: `${failed} of ${count} sockets did not open: ${lastError}` });
  }
  return { sockets, failed, ms: performance.now() - started };
}

/** Whether `frame` (the first one a client got) is a CLU frame of a benchmark reply. */
function validFrame(frame: string): boolean {
  try {
    const parsed = JSON.parse(frame);
    const one = Array.isArray(parsed) ? parsed[0] : parsed;
    return one?.headers?.sender === BENCH_SENDER && one.headers.message_code === "i" &&
      one.routing_key === BENCH_ROUTING_KEY && typeof one.exchange === "string" &&
      typeof one.message_id === "string" && typeof one.timestamp === "string" &&
      typeof one.body?.bench_seq === "number";
  } catch {
    return false;
  }
}

async function receive(job: ReceiveJob): Promise<void> {
  const k = job.clients;
  const n = job.expect;
  const unique = new Uint32Array(k);
  const duplicates = new Uint32Array(k);
  const outOfOrder = new Uint32Array(k);
  const unexpected = new Uint32Array(k);
  const lastSeq = new Int32Array(k).fill(-1);
  const lastRecv = new Float64Array(k);
  const firstRecv = new Float64Array(k);
  const frames = new Uint32Array(k);
  const seen = new Uint8Array(k * n);
  const latency = new Float64Array(k * n);
  let samples = 0;
  let firstSent = Infinity;
  let invalid = 0;
  let otherFrames = 0;
  let finished = 0;
  const closedEarly: number[] = [];
  let reported = false;
  const startedAt = performance.now();

  function report(reason: string): void {
    if (reported) return;
    reported = true;
    let totalUnique = 0;
    let lastAll = 0;
    const rates: number[] = [];
    for (let i = 0; i < k; i++) {
      totalUnique += unique[i];
      if (lastRecv[i] > lastAll) lastAll = lastRecv[i];
      if (unique[i] > 0) rates.push((unique[i] * 1000) / (lastRecv[i] - firstSent));
    }
    rates.sort((a, b) => a - b);
    const sum = (a: Uint32Array) => a.reduce((x, y) => x + y, 0);
    const lat = percentiles(latency.subarray(0, samples));
    emit({
      event: "result",
      reason,
      clients: k,
      expect: n,
      frames: sum(frames),
      received: totalUnique,
      lost: k * n - totalUnique,
      duplicates: sum(duplicates),
      out_of_order: sum(outOfOrder),
      unexpected: sum(unexpected),
      invalid_frames: invalid,
      other_frames: otherFrames,
      closed_early: closedEarly.length,
      close_codes: [...new Set(closedEarly)],
      complete_clients: Array.from(unique).filter((u) => u === n).length,
      first_sent_ms: firstSent,
      span_ms: round(lastAll - firstSent, 3),
      rate_per_client: rateSummary(rates),
      aggregate_per_s: round((totalUnique * 1000) / (lastAll - firstSent), 1),
      latency_ms: lat,
      worst_moments: [...worst].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([slot, ms]) => ({
        at_s: round((slot * 100 - firstSent) / 1000, 1),
        max_ms: round(ms, 1),
      })),
      waited_ms: round(performance.now() - startedAt),
      ...(job.raw
        ? {
          raw: {
            rates,
            last_recv_ms: lastAll,
            latency: Array.from(latency.subarray(0, samples), (ms) => round(ms, 3)),
            worst: [...worst],
          },
        }
        : {}),
    });
  }

  function finish(): void {
    if (++finished === k) report("complete");
  }

  const validated = new Uint8Array(k);
  // The worst latency per 100 ms of publish time: tells one long stall from a spread of slow frames.
  const worst = new Map<number, number>();
  let optionsAnswers = 0;
  const allAnswered = Promise.withResolvers<void>();
  const { sockets, failed, ms } = await openSockets(job.url, k, {
    concurrency: job.concurrency,
    protocols: job.batch ? [V1_PROTOCOL] : [],
    setup(socket, i) {
      const base = i * n;
      socket.onmessage = (event) => {
        const now = performance.timeOrigin + performance.now();
        const text = event.data as string;
        if (typeof text !== "string") {
          otherFrames++;
          return;
        }
        frames[i]++;
        if (text.startsWith('{"clu-ws":"options"')) {
          if (++optionsAnswers === k) allAnswered.resolve();
          return;
        }
        const found = scanBodies(text, (seq, sent) => {
          if (seq >= n) {
            unexpected[i]++;
            return;
          }
          if (seen[base + seq]) {
            duplicates[i]++;
            return;
          }
          seen[base + seq] = 1;
          if (seq < lastSeq[i]) outOfOrder[i]++;
          else lastSeq[i] = seq;
          if (sent < firstSent) firstSent = sent;
          if (unique[i] === 0) firstRecv[i] = now;
          lastRecv[i] = now;
          if (samples < latency.length) latency[samples++] = now - sent;
          const slot = Math.floor(sent / 100);
          if (!(worst.get(slot)! >= now - sent)) worst.set(slot, now - sent);
          if (++unique[i] === n) finish();
        });
        if (found === 0) otherFrames++;
        else if (!validated[i]) {
          validated[i] = 1;
          if (!validFrame(text)) invalid++;
        }
      };
      socket.onclose = (event) => {
        if (unique[i] < n) {
          closedEarly.push(event.code);
          finish();
        }
      };
    },
  });
  let batched = 0;
  if (job.batch) {
    // Opt in on every socket that speaks clu-ws v1, and wait for every answer.
    const v1 = sockets.filter((s) => s.readyState === WebSocket.OPEN && s.protocol === V1_PROTOCOL);
    if (v1.length < k) {
      throw new Error(
        `the gateway does not offer batched delivery: it did not answer the ${V1_PROTOCOL} subprotocol`,
      );
    }
    for (const socket of v1) socket.send(JSON.stringify({ "clu-ws": "options", id: 1, batch: true }));
    await allAnswered.promise;
    batched = v1.length;
  }
  emit({ event: "ready", connected: sockets.length - failed, failed, batched, ms: round(ms) });
  if (k === 0) report("complete");
  await orders((order) => {
    if (order === "stop") report("stopped");
  });
}

async function idle(job: IdleJob): Promise<void> {
  const { sockets, failed, ms } = await openSockets(job.url, job.clients, { concurrency: job.concurrency });
  let closed = 0;
  for (const socket of sockets) socket.addEventListener("close", () => closed++);
  emit({ event: "ready", connected: sockets.length - failed, failed, ms: round(ms) });
  await orders((order) => {
    if (order === "stop") emit({ event: "result", open: sockets.length - failed - closed, closed });
  });
}

async function commands(job: CommandsJob): Promise<void> {
  const k = job.clients;
  const sentAt = Array.from({ length: k }, () => new Map<string, number>());
  const nextId = new Uint32Array(k);
  const latency: number[] = [];
  let sent = 0;
  let completed = 0;
  let completedInTime = 0;
  let failed = 0;
  let frames = 0;
  let sending = false;
  let firstSend = 0;
  let stopSendingAt = 0;
  let lastDone = 0;
  const failures = new Map<string, number>();
  let sockets: WebSocket[] = [];

  const consumer = JSON.stringify(job.consumer);
  const acked = job.until === "published";
  const extra = acked ? `,"ack":true` : "";
  function send(i: number): void {
    const id = `k${i}-${nextId[i]++}`;
    sentAt[i].set(id, performance.now());
    // The send time rides in the command text, so the actor can time the trip too.
    const text = `ping ${(performance.timeOrigin + performance.now()).toFixed(3)}`;
    sockets[i].send(`{"consumer":${consumer},"command_string":"${text}","command_id":"${id}"${extra}}`);
    sent++;
  }

  function done(i: number, id: string, ok: boolean, text: string): void {
    const started = sentAt[i].get(id);
    if (started === undefined) return; // Another client's command, or already done.
    const now = performance.now();
    sentAt[i].delete(id);
    if (ok) {
      completed++;
      if (now <= stopSendingAt) completedInTime++;
      latency.push(now - started);
    } else {
      failed++;
      const why = /"error":"([^"]{0,80})/.exec(text)?.[1] ?? "?";
      failures.set(why, (failures.get(why) ?? 0) + 1);
    }
    lastDone = now;
    if (job.window && sending && now < stopSendingAt) send(i);
  }

  function onFrame(i: number, text: string): void {
    frames++;
    if (text.startsWith('{"clu-ws":')) {
      // v1 control frames are few and small: parse them.
      const control = JSON.parse(text);
      if (acked && control["clu-ws"] === "published") done(i, String(control.command_id), true, text);
      return;
    }
    const at = text.indexOf('"command_id":"k');
    if (at < 0) return;
    const idStart = at + 14;
    const id = text.slice(idStart, text.indexOf('"', idStart));
    const code = text.charAt(text.indexOf('"message_code":"') + 16);
    if (code === "f") done(i, id, false, text);
    else if (code === ":" && !acked) done(i, id, true, text);
  }

  const opened = await openSockets(job.url, k, {
    concurrency: job.concurrency,
    protocols: acked ? [V1_PROTOCOL] : [],
    setup(socket, i) {
      socket.onmessage = (event) => onFrame(i, String(event.data));
    },
  });
  sockets = opened.sockets;
  if (acked && sockets.some((socket) => socket.protocol !== V1_PROTOCOL)) {
    throw new Error(`the gateway does not offer command acknowledgements (the ${V1_PROTOCOL} subprotocol)`);
  }
  emit({
    event: "ready",
    connected: sockets.length - opened.failed,
    failed: opened.failed,
    ms: round(opened.ms),
  });

  function outstanding(): number {
    return sentAt.reduce((sum, m) => sum + m.size, 0);
  }

  let reported = false;
  function report(reason: string): void {
    if (reported) return;
    reported = true;
    const sendingMs = stopSendingAt - firstSend;
    emit({
      event: "result",
      reason,
      clients: k,
      sent,
      completed,
      failed,
      failures: Object.fromEntries(failures),
      outstanding: outstanding(),
      frames,
      seconds: round(sendingMs / 1000, 3),
      rate: round((completedInTime * 1000) / sendingMs, 1),
      sent_per_s: round((sent * 1000) / sendingMs, 1),
      drain_ms: round(Math.max(0, lastDone - stopSendingAt)),
      latency_ms: percentiles(Float64Array.from(latency)),
    });
  }

  async function run(): Promise<void> {
    sending = true;
    firstSend = performance.now();
    stopSendingAt = firstSend + job.seconds * 1000;
    if (job.window) {
      for (let i = 0; i < k; i++) for (let w = 0; w < job.window; w++) send(i);
    } else {
      const interval = 1000 / (job.rate ?? 1000);
      let due = 0;
      while (performance.now() < stopSendingAt) {
        const target = Math.floor((performance.now() - firstSend) / interval) + 1;
        while (due < target) send(due++ % k);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    while (performance.now() < stopSendingAt) await new Promise((r) => setTimeout(r, 20));
    sending = false;
    // Let the commands in flight come back (at most 5 s).
    const deadline = performance.now() + 5000;
    while (outstanding() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    report("complete");
  }

  await orders((order) => {
    if (order === "go") run().catch((err) => emit({ event: "error", message: String(err) }));
    if (order === "stop") report("stopped");
  });
}

if (import.meta.main) {
  const job = JSON.parse(Deno.args[0]) as ClientsJob;
  const run = job.mode === "receive" ? receive(job) : job.mode === "idle" ? idle(job) : commands(job);
  run.then(
    () => Deno.exit(0),
    (err) => {
      emit({ event: "error", message: err instanceof Error ? err.message : String(err) });
      Deno.exit(1);
    },
  );
}
