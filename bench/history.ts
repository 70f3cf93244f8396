/**
 * The `history` scenario: the history stream (`--history stream`) against the
 * memory history, in one run. Replies/s and latency through each backend (the
 * stream backend reads live replies from the stream with acks; the memory
 * backend from the gateway's own queue without), and the time a `resume` of
 * 10,000 missed replies takes with each.
 *
 * @module
 */

import { connect } from "amqplib";
import { GatewayProcess } from "./gateway.ts";
import { Publisher } from "./publisher.ts";
import type { BenchContext, Metrics } from "./scenarios.ts";
import { round } from "./stats.ts";

/** The history backends compared. */
export const BACKENDS = ["memory", "stream"] as const;
/** A history backend. */
export type Backend = typeof BACKENDS[number];

let instance = 0;

/** A stream name of its own for one gateway of this harness run. */
export function benchStream(ctx: BenchContext, label: string): string {
  return `clu-ws-bench-${ctx.runId}-${label}-${++instance}.history`;
}

/** The gateway flags of a backend (a fresh stream for `stream`). */
export function backendArgs(backend: Backend, stream: string): string[] {
  return backend === "stream" ? ["--history", "stream", "--history-stream", stream] : [];
}

/** Deletes a benchmark stream (after its case); never throws. */
export async function deleteBenchStream(ctx: BenchContext, stream: string): Promise<void> {
  const connection = await connect(ctx.amqpUrl).catch(() => undefined);
  if (!connection) return;
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(stream);
  } catch {
    // Never declared (memory backend), or gone.
  } finally {
    await connection.close().catch(() => {});
  }
}

/** One v1 websocket: frames as they come, with a way to await one. */
class V1Socket {
  readonly frames: Array<Record<string, unknown>> = [];
  readonly #socket: WebSocket;
  #wake: (() => void) | undefined;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const data = JSON.parse(String(event.data));
      for (const frame of Array.isArray(data) ? data : [data]) this.frames.push(frame);
      this.#wake?.();
    };
    socket.onclose = () => this.#wake?.();
  }

  static open(url: string): Promise<V1Socket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, ["clu-ws.v1"]);
      socket.onopen = () => resolve(new V1Socket(socket));
      socket.onerror = () => reject(new Error(`websocket to ${url} failed`));
    });
  }

  send(frame: unknown): void {
    this.#socket.send(JSON.stringify(frame));
  }

  /** Resolves with the index of the first frame from `from` on that matches, within `timeoutMs`. */
  async until(
    match: (frame: Record<string, unknown>) => boolean,
    from = 0,
    timeoutMs = 120_000,
  ): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (let i = from;; i++) {
      while (i >= this.frames.length) {
        if (this.#socket.readyState === WebSocket.CLOSED) throw new Error("the gateway closed the socket");
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new Error(`no matching frame within ${timeoutMs} ms (${this.frames.length} frames)`);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (match(this.frames[i])) return i;
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#socket.readyState === WebSocket.CLOSED) return resolve();
      this.#socket.addEventListener("close", () => resolve());
      this.#socket.close();
    });
  }
}

/**
 * A client that was away while `missed` replies were published comes back and
 * resumes: the time from its `resume` to `resumed`, with what was replayed.
 */
export async function resumeLatency(
  ctx: BenchContext,
  backend: Backend,
  missed: number,
  extraArgs: string[] = [],
): Promise<Metrics> {
  const label = `resume-${backend}`;
  const exchange = `clu-ws-bench-${ctx.runId}-${label}-${++instance}`;
  const stream = benchStream(ctx, label);
  const gateway = await GatewayProcess.start({
    bundle: ctx.bundle,
    amqpUrl: ctx.amqpUrl,
    exchange,
    name: exchange,
    args: [...backendArgs(backend, stream), ...extraArgs, ...ctx.gatewayArgs],
  });
  const publisher = await Publisher.open(ctx.amqpUrl, exchange);
  const health = async () => (await (await fetch(gateway.url.replace(/^ws/, "http") + "healthz")).json());
  try {
    const away = await V1Socket.open(gateway.url);
    const welcome = away.frames[await away.until((f) => f["clu-ws"] === "welcome")];
    await away.close();
    const published = await publisher.burst(missed);
    // Until the gateway has read them all: the resume then replays the whole 10,000 (seq, not time, decides).
    const readAllBy = performance.now() + 120_000;
    while ((await health()).seq < Number(welcome.seq) + missed && performance.now() < readAllBy) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const back = await V1Socket.open(gateway.url);
    try {
      const hello = await back.until((f) => f["clu-ws"] === "welcome");
      const started = performance.now();
      back.send({ "clu-ws": "resume", id: 1, epoch: welcome.epoch, seq: welcome.seq });
      const end = await back.until((f) => f["clu-ws"] === "resumed" || f["clu-ws"] === "gap", hello + 1);
      const ms = performance.now() - started;
      const answer = back.frames[end];
      const replayed = back.frames.slice(hello + 1, end).filter((f) => !("clu-ws" in f)).length;
      return {
        backend,
        missed,
        publish_msgs_s: round(published.rate),
        answer: String(answer["clu-ws"]),
        replayed,
        resume_ms: round(ms, 1),
        replayed_per_s: round(replayed / (ms / 1000)),
        gateway_rss: gateway.rss(),
      };
    } finally {
      await back.close();
    }
  } finally {
    await publisher.close();
    await gateway.stop();
    await deleteBenchStream(ctx, stream);
  }
}
