/**
 * The receiving clients of a delivery case, spread over one or more clients
 * processes (`clients.ts`), and their results merged into one as if a single
 * process had measured them.
 *
 * Why more than one: a clients process is one event loop; at K=100 on our
 * 2-core machines it reached 81–89 % of a core at about 530k frames/s while
 * the machine stayed 30 % idle and the gateway used a quarter of a core, so
 * the benchmark measured the load generator, not the gateway. With as many
 * processes as cores (two here) for 100 clients or more, the clients keep up.
 *
 * @module
 */

import { Child, type ChildEvent } from "./child.ts";
import type { ReceiveJob } from "./clients.ts";
import { percentiles, rateSummary, round } from "./stats.ts";

/** Clients from which the receivers are spread over several processes. */
export const SPREAD_FROM_CLIENTS = 100;

/** How many clients processes `clients` receiving clients get: one per core from {@linkcode SPREAD_FROM_CLIENTS}. */
export function receiverProcesses(clients: number): number {
  return clients >= SPREAD_FROM_CLIENTS ? Math.max(1, Math.min(navigator.hardwareConcurrency, 4)) : 1;
}

/** What each clients process reports besides its summary when asked for `raw` (see `clients.ts`). */
interface RawResult {
  rates: number[];
  last_recv_ms: number;
  latency: number[];
  worst: Array<[number, number]>;
}

/** Receiving clients in one or more processes. */
export class Receivers {
  readonly #children: Child[];
  /** The processes' `ready` events merged: connected, failed and batched summed, the slowest `ms`. */
  readonly ready: ChildEvent;

  private constructor(children: Child[], ready: ChildEvent) {
    this.#children = children;
    this.ready = ready;
  }

  /** Starts `processes` clients processes sharing `job.clients` between them; waits until all are ready. */
  static async start(job: ReceiveJob, processes = receiverProcesses(job.clients)): Promise<Receivers> {
    const count = Math.max(1, Math.min(processes, job.clients));
    const children: Child[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const clients = Math.floor(job.clients / count) + (i < job.clients % count ? 1 : 0);
        children.push(new Child("clients.ts", { ...job, clients, raw: count > 1 }));
      }
      const events = await Promise.all(children.map((c) => c.waitFor("ready", { timeoutMs: 120_000 })));
      const sum = (key: string) => events.reduce((total, e) => total + ((e[key] as number) ?? 0), 0);
      const ready: ChildEvent = {
        ...events[0],
        connected: sum("connected"),
        failed: sum("failed"),
        batched: sum("batched"),
        ms: Math.max(...events.map((e) => e.ms as number)),
      };
      return new Receivers(children, ready);
    } catch (err) {
      await Promise.all(children.map((c) => c.close({ graceMs: 0 })));
      throw err;
    }
  }

  /** The processes' pids (for the CPU meter). */
  get pids(): number[] {
    return this.#children.map((c) => c.pid);
  }

  /** The merged result: each process's, waited for until `patienceMs`, then asked for. */
  async result(patienceMs: number): Promise<ChildEvent> {
    const results = await Promise.all(this.#children.map(async (child) => {
      try {
        return await child.waitFor("result", { timeoutMs: patienceMs });
      } catch {
        await child.tell("stop");
        return await child.waitFor("result", { timeoutMs: 30_000 });
      }
    }));
    return results.length === 1 ? results[0] : merge(results);
  }

  /** Stops every process. */
  async close(): Promise<void> {
    await Promise.all(this.#children.map((c) => c.close()));
  }
}

/** Several processes' results as one: counts summed, rates and latencies over all clients and samples. */
export function merge(results: ChildEvent[]): ChildEvent {
  const sum = (key: string) => results.reduce((total, r) => total + ((r[key] as number) ?? 0), 0);
  const raws = results.map((r) => r.raw as RawResult);
  const firstSent = Math.min(...results.map((r) => r.first_sent_ms as number));
  const lastRecv = Math.max(...raws.map((raw) => raw.last_recv_ms));
  const rates = raws.flatMap((raw) => raw.rates).sort((a, b) => a - b);
  const latency = new Float64Array(raws.reduce((n, raw) => n + raw.latency.length, 0));
  let at = 0;
  for (const raw of raws) {
    latency.set(raw.latency, at);
    at += raw.latency.length;
  }
  const worst = new Map<number, number>();
  for (const raw of raws) {
    for (const [slot, ms] of raw.worst) if (!(worst.get(slot)! >= ms)) worst.set(slot, ms);
  }
  const received = sum("received");
  return {
    event: "result",
    reason: results.find((r) => r.reason !== "complete")?.reason ?? "complete",
    clients: sum("clients"),
    expect: results[0].expect,
    frames: sum("frames"),
    received,
    lost: sum("lost"),
    duplicates: sum("duplicates"),
    out_of_order: sum("out_of_order"),
    unexpected: sum("unexpected"),
    invalid_frames: sum("invalid_frames"),
    other_frames: sum("other_frames"),
    closed_early: sum("closed_early"),
    close_codes: [...new Set(results.flatMap((r) => r.close_codes as number[]))],
    complete_clients: sum("complete_clients"),
    first_sent_ms: firstSent,
    span_ms: round(lastRecv - firstSent, 3),
    rate_per_client: rateSummary(rates),
    aggregate_per_s: round((received * 1000) / (lastRecv - firstSent), 1),
    latency_ms: percentiles(latency),
    worst_moments: [...worst].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([slot, ms]) => ({
      at_s: round((slot * 100 - firstSent) / 1000, 1),
      max_ms: round(ms, 1),
    })),
    waited_ms: Math.max(...results.map((r) => r.waited_ms as number)),
    processes: results.length,
  };
}
