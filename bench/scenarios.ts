/**
 * The benchmark scenarios. Each run starts a fresh gateway process, measures
 * one thing from outside it, and returns flat metrics (numbers where they can
 * be, so that several runs reduce to per-field medians).
 *
 * @module
 */

import { startActor } from "./actor.ts";
import { Child, type ChildEvent } from "./child.ts";
import type { CeilingJob } from "./ceiling.ts";
import type { ClientsJob } from "./clients.ts";
import { GatewayProcess } from "./gateway.ts";
import { formatProfile, summarizeProfile } from "./profile.ts";
import { CpuMeter, type CpuReading, openFds, peakRssBytes } from "./proc.ts";
import { Publisher } from "./publisher.ts";
import { Receivers } from "./receivers.ts";
import { percentiles, round, sleep } from "./stats.ts";

/** What every scenario needs to know. */
export interface BenchContext {
  /** The RabbitMQ URL. */
  amqpUrl: string;
  /** The gateway bundle to run. */
  bundle: string;
  /** A short id of this harness run (exchange and queue names). */
  runId: string;
  /** RabbitMQ's pid, for its CPU time. */
  brokerPid: number | undefined;
  /** Extra flags for every gateway. */
  gatewayArgs: string[];
  /** Write a CPU profile of every gateway here (and summarise it). */
  profileDir: string | undefined;
  /** Prints a line of the readable report. */
  say: (line: string) => void;
}

/** One run's metrics: nested records of numbers (and a few strings). */
export type Metrics = { [key: string]: number | string | boolean | null | Metrics | number[] | string[] };

let instance = 0;

function uniqueName(ctx: BenchContext, label: string): string {
  return `clu-ws-bench-${ctx.runId}-${label}-${++instance}`;
}

/** CPU figures of a run, in ms and as shares of the wall time. */
function cpuMetrics(reading: CpuReading): Metrics {
  const ours = Object.values(reading.cpu_ms).filter(Number.isFinite).reduce((a, b) => a + b, 0);
  const cpu: Metrics = {};
  for (const [name, ms] of Object.entries(reading.cpu_ms)) cpu[`${name}_ms`] = round(ms);
  // Kernel time shows the cost of the system calls (one socket write per frame) apart from JavaScript.
  if (reading.system_ms.gateway !== undefined) cpu.gateway_system_ms = round(reading.system_ms.gateway);
  // Where in the gateway: the JavaScript thread, or Deno's Rust runtime threads (socket I/O), or V8's helpers.
  for (const [group, ms] of Object.entries(reading.threads_ms)) cpu[`gateway_thread_${group}_ms`] = round(ms);
  return {
    wall_ms: round(reading.wall_ms),
    ...cpu,
    // The kernel's packet processing (loopback too) is charged to no process: report it apart.
    interrupts_ms: round(reading.machine_interrupts_ms),
    // CPU the hypervisor gave to other virtual machines while we wanted it (a shared VM's disturbance).
    steal_ms: round(reading.machine_steal_ms),
    // Busy time of processes that are not part of this benchmark: other people's work disturbing it.
    other_ms: round(Math.max(0, reading.machine_busy_ms - reading.machine_interrupts_ms - ours)),
    machine_busy_percent: round((reading.machine_busy_ms / reading.machine_total_ms) * 100, 1),
  };
}

/** Samples a process's RSS high-water mark; VmHWM is exact, this only needs the start. */
function rssWatch(pid: number): { start: number; peak: () => number } {
  const start = peakRssBytes(pid);
  return { start, peak: () => peakRssBytes(pid) };
}

/** Runs `body` against a fresh gateway; stops it (and reports its profile) afterwards. */
async function withGateway(
  ctx: BenchContext,
  label: string,
  args: string[],
  body: (gateway: GatewayProcess, exchange: string) => Promise<Metrics>,
  { inspect = false } = {},
): Promise<Metrics> {
  const exchange = uniqueName(ctx, label);
  const profileDir = ctx.profileDir ? `${ctx.profileDir}/${exchange}` : undefined;
  if (profileDir) Deno.mkdirSync(profileDir, { recursive: true });
  const gateway = await GatewayProcess.start({
    bundle: ctx.bundle,
    amqpUrl: ctx.amqpUrl,
    exchange,
    name: exchange,
    args: [...args, ...ctx.gatewayArgs],
    cpuProfDir: profileDir,
    inspect,
  });
  let result: Metrics;
  try {
    result = await body(gateway, exchange);
  } finally {
    await gateway.stop();
  }
  if (profileDir) {
    const file = [...Deno.readDirSync(profileDir)].find((e) => e.name.endsWith(".cpuprofile"));
    if (file) {
      const path = `${profileDir}/${file.name}`;
      ctx.say(`    CPU profile of the gateway (${label}): ${path}`);
      ctx.say(formatProfile(summarizeProfile(path, ctx.bundle)));
      return { ...result, profile: path };
    }
  }
  return result;
}

/** Starts a clients child and waits until its sockets are open. */
async function startClients(job: ClientsJob): Promise<{ child: Child; ready: ChildEvent }> {
  const child = new Child("clients.ts", job);
  try {
    const ready = await child.waitFor("ready", { timeoutMs: 120_000 });
    return { child, ready };
  } catch (err) {
    await child.close({ graceMs: 0 });
    throw err;
  }
}

/** Waits for a child's result: until `patienceMs` after `since`, then asks for it. */
async function resultOf(child: Child, patienceMs: number): Promise<ChildEvent> {
  try {
    return await child.waitFor("result", { timeoutMs: patienceMs });
  } catch {
    await child.tell("stop");
    return await child.waitFor("result", { timeoutMs: 30_000 });
  }
}

/** The fields of a receive result that every delivery scenario reports. */
function deliveryMetrics(result: ChildEvent): Metrics {
  const rate = result.rate_per_client as Metrics;
  return {
    received: result.received as number,
    lost: result.lost as number,
    duplicates: result.duplicates as number,
    out_of_order: result.out_of_order as number,
    invalid_frames: (result.invalid_frames as number) ?? 0,
    closed_early: (result.closed_early as number) ?? 0,
    per_client_msgs_s: rate.median,
    slowest_client_msgs_s: rate.min,
    aggregate_frames_s: result.aggregate_per_s as number,
    latency_ms: result.latency_ms as Metrics,
    // Where the tail is: the worst latency in the worst 100 ms slots of publish time ("at s: ms").
    worst_moments: ((result.worst_moments ?? []) as Array<{ at_s: number; max_ms: number }>)
      .map((w) => `${w.at_s} s: ${w.max_ms} ms`).join(", "),
  };
}

/**
 * Signs that something outside the benchmark interfered (e.g. a test raising
 * a memory alarm on the shared broker, or stopping it): such a run's numbers
 * are not the gateway's.
 */
function disturbances(publisher: Publisher, gateway?: GatewayProcess): Metrics {
  const linkTrouble = gateway?.matching(/RabbitMQ link lost|blocks publishes|cannot reach RabbitMQ/).length ??
    0;
  return { broker_blocked_ms: round(publisher.blockedMs), gateway_link_trouble: linkTrouble };
}

// ---------------------------------------------------------------- ceiling

/**
 * Most warm-up replies before a burst. A few thousand left V8 still compiling the reply path during the
 * measured burst: at K=1, 2,000 warm-up replies gave 19–25 µs/frame with the V8 helper threads at 6–8 % of a
 * core, 20,000 gave 15–17 µs/frame at 3–4 % (same bundle, same hour). The ceiling consumer gets the same.
 */
const MAX_WARMUP_REPLIES = 20_000;

/** Warm-up replies before a burst of `n` to `clients` clients: up to 200,000 frames in all. */
function burstWarmup(n: number, clients: number): number {
  return Math.min(MAX_WARMUP_REPLIES, n, Math.ceil(200_000 / Math.max(1, clients)));
}

/** A bare amqplib consumer (prefetch 1000, no acks) fed like the gateway: the reply path's limit. */
export async function ceiling(ctx: BenchContext, n: number): Promise<Metrics> {
  const exchange = uniqueName(ctx, "ceiling");
  const job: CeilingJob = { url: ctx.amqpUrl, exchange, expect: n };
  const child = new Child("ceiling.ts", job);
  try {
    await child.waitFor("ready");
    const publisher = await Publisher.open(ctx.amqpUrl, exchange);
    try {
      // Warmed up as the gateways are (warm-up bodies carry no bench_seq: the consumer does not count them).
      await publisher.warmup(burstWarmup(n, 1));
      await sleep(500);
      const meter = new CpuMeter({ consumer: child.pid, broker: ctx.brokerPid, harness: Deno.pid });
      const published = await publisher.burst(n);
      const result = await resultOf(child, 30_000);
      const cpu = cpuMetrics(meter.read());
      return {
        messages: n,
        publish_msgs_s: round(published.rate),
        ...deliveryMetrics(result),
        cpu,
        consumer_us_per_msg: round(((cpu.consumer_ms as number) * 1000) / (result.received as number), 2),
        ...disturbances(publisher),
      };
    } finally {
      await publisher.close();
    }
  } finally {
    await child.close();
  }
}

// ---------------------------------------------------------------- fanout and latency

/** Options for {@linkcode delivery}. */
export interface DeliveryOptions {
  /** Clients that read. */
  clients: number;
  /** As fast as possible: this many messages. */
  messages?: number;
  /** Or at a fixed rate (msgs/s) … */
  rate?: number;
  /** … for this long (s). */
  seconds?: number;
  /** Peers that stop reading after the handshake. */
  stalled?: number;
  /** Extra gateway flags. */
  gatewayArgs?: string[];
  /** Opt the clients in to batched delivery (clu-ws v1). */
  batch?: boolean;
  /** Reply body size, bytes (default 200). */
  bodyBytes?: number;
  /** A label for names and profiles. */
  label: string;
}

/**
 * K clients receive N replies, published either as fast as the broker takes
 * them or at a fixed rate: throughput, loss, order, latency, and who used the
 * CPU.
 */
export function delivery(ctx: BenchContext, options: DeliveryOptions): Promise<Metrics> {
  const steady = options.rate !== undefined;
  const n = steady ? Math.round(options.rate! * options.seconds!) : options.messages!;
  return withGateway(ctx, options.label, options.gatewayArgs ?? [], async (gateway, exchange) => {
    const publisher = await Publisher.open(ctx.amqpUrl, exchange, { bodyBytes: options.bodyBytes });
    const receivers = await Receivers.start({
      mode: "receive",
      url: gateway.url,
      clients: options.clients,
      expect: n,
      batch: options.batch,
    });
    const { ready } = receivers;
    const stalled = options.stalled
      ? new Child("stalled_peer.ts", { port: gateway.port, count: options.stalled })
      : undefined;
    try {
      await stalled?.waitFor("ready");
      // Warm the gateway up (1 s at the rate, or a short burst), and let the clients drain it.
      if (steady) await publisher.warmup(Math.round(options.rate!), options.rate!);
      else await publisher.warmup(burstWarmup(n, options.clients));
      await sleep(500);
      const rss = rssWatch(gateway.pid);
      const rssBefore = gateway.rss();
      const meter = new CpuMeter({
        gateway: gateway.pid,
        broker: ctx.brokerPid,
        clients: receivers.pids,
        harness: Deno.pid,
      }, { threadsOf: "gateway" });
      const published = steady
        ? await publisher.steady(options.rate!, options.seconds!)
        : await publisher.burst(n);
      const result = await receivers.result(30_000 + options.clients * 20);
      const cpu = cpuMetrics(meter.read());
      const frames = result.received as number;
      const slowCloses = gateway.matching(/too slow/);
      const skipped = gateway.matching(/caught up|skipped/).length;
      return {
        clients: options.clients,
        client_processes: receivers.pids.length,
        messages: n,
        connect_ms: ready.ms as number,
        publish_msgs_s: round(published.rate),
        ...deliveryMetrics(result),
        cpu,
        gateway_us_per_frame: round(((cpu.gateway_ms as number) * 1000) / frames, 2),
        gateway_rss_before: rssBefore,
        gateway_rss_peak: rss.peak(),
        gateway_rss_growth: rss.peak() - rssBefore,
        gateway_slow_closes: slowCloses.length,
        stalled_buffered_at_close: slowCloses.length ? Number(slowCloses[0].buffered) : 0,
        gateway_catch_up_notices: skipped,
        ...disturbances(publisher, gateway),
      };
    } finally {
      await stalled?.close();
      await receivers.close();
      await publisher.close();
    }
  });
}

// ---------------------------------------------------------------- idle

/** C idle connections on a fresh gateway: resident memory per connection. */
export function idle(ctx: BenchContext, connections: number, { inspect = false } = {}): Promise<Metrics> {
  const args = ["--max-clients", String(connections + 100)];
  return withGateway(ctx, `idle${connections}`, args, async (gateway) => {
    await sleep(500);
    const heapBefore = inspect ? await gateway.heap() : undefined;
    const rssBefore = gateway.rss();
    const fdsBefore = openFds(gateway.pid);
    const { child, ready } = await startClients({ mode: "idle", url: gateway.url, clients: connections });
    try {
      await sleep(1500);
      const health = await gateway.health();
      const heapAfter = inspect ? await gateway.heap() : undefined;
      const rssAfter = gateway.rss();
      const fds = openFds(gateway.pid) - fdsBefore;
      const perConnection = (rssAfter - rssBefore) / connections;
      const metrics: Metrics = {
        connections,
        connected: ready.connected as number,
        failed: ready.failed as number,
        connect_ms: ready.ms as number,
        connect_per_s: round(((ready.connected as number) * 1000) / (ready.ms as number)),
        gateway_clients: Number(health.clients),
        gateway_fds_added: fds,
        rss_before: rssBefore,
        rss_after: rssAfter,
        rss_per_connection: round(perConnection),
        rss_peak: peakRssBytes(gateway.pid),
      };
      if (heapBefore && heapAfter) {
        const heapPer = (heapAfter.used - heapBefore.used) / connections;
        metrics.heap_used_before = heapBefore.used;
        metrics.heap_used_after = heapAfter.used;
        metrics.heap_per_connection = round(heapPer);
        metrics.outside_heap_per_connection = round(perConnection - heapPer);
      }
      return metrics;
    } finally {
      await child.close({ graceMs: 5000 });
    }
  }, { inspect });
}

// ---------------------------------------------------------------- commands

/** Options for {@linkcode commands}. */
export interface CommandsOptions {
  /** Clients sending. */
  clients: number;
  /** Closed loop: commands in flight per client. */
  window: number;
  /** Open loop timed to the `:` reply: commands per second in total. */
  rate: number;
  /** Open loop timed to the broker's confirm: commands per second in total. */
  confirmRate: number;
  /** Seconds per phase. */
  seconds: number;
  /**
   * Seconds of the same traffic before each phase, not measured: the gateway's JIT compiles its hot
   * paths under the first seconds of a new kind of traffic (half the V8 helper threads' CPU of a cold
   * 5 s phase), which is the gateway starting up, not what a command costs it.
   */
  warmupSeconds: number;
  /** Only the confirmed phase (the commands target), e.g. to profile it alone. */
  confirmedOnly?: boolean;
}

/**
 * Commands through the gateway (`--command-rate 0`) to a consuming actor:
 * - `max`: closed loop, a window in flight per client, each timed to its `:`
 *   reply: the most the whole round trip sustains;
 * - `fixed`: a fixed rate, timed to the `:` reply;
 * - `confirmed`: a fixed rate of clu-ws v1 commands with `"ack": true`,
 *   timed to the gateway's `published` frame (sent when RabbitMQ confirmed
 *   the command), to an actor that only consumes; the actor also times each
 *   command's arrival from the client's send.
 */
export function commands(ctx: BenchContext, options: CommandsOptions): Promise<Metrics> {
  return withGateway(ctx, "commands", ["--command-rate", "0"], async (gateway, exchange) => {
    const actor = await startActor(ctx.amqpUrl, exchange, `benchactor${instance}`);
    try {
      const phase = async (
        mode: { window?: number; rate?: number; until?: "published" },
      ): Promise<Metrics> => {
        actor.replying = mode.until !== "published";
        if (options.warmupSeconds > 0) await run(mode, options.warmupSeconds);
        return await run(mode, options.seconds);
      };
      const run = async (
        mode: { window?: number; rate?: number; until?: "published" },
        seconds: number,
      ): Promise<Metrics> => {
        const { child } = await startClients({
          mode: "commands",
          url: gateway.url,
          clients: options.clients,
          consumer: actor.name,
          seconds,
          ...mode,
        });
        try {
          actor.takeArrivals();
          const meter = new CpuMeter({
            gateway: gateway.pid,
            broker: ctx.brokerPid,
            clients: child.pid,
            harness_actor: Deno.pid,
          }, { threadsOf: "gateway" });
          await child.tell("go");
          const result = await child.waitFor("result", { timeoutMs: seconds * 1000 + 30_000 });
          const cpu = cpuMetrics(meter.read());
          const arrivals = actor.takeArrivals();
          const completed = result.completed as number;
          return {
            clients: options.clients,
            ...mode,
            sent: result.sent as number,
            sent_per_s: result.sent_per_s as number,
            completed,
            failed: result.failed as number,
            unanswered: result.outstanding as number,
            commands_s: result.rate as number,
            latency_ms: result.latency_ms as Metrics,
            arrived_at_actor: arrivals.count,
            to_actor_ms: percentiles(Float64Array.from(arrivals.latencies)),
            cpu,
            gateway_us_per_command: round(((cpu.gateway_ms as number) * 1000) / completed, 1),
          };
        } finally {
          await child.close();
        }
      };
      const skipped = "not measured (--commands-confirmed-only)";
      const max = options.confirmedOnly ? skipped : await phase({ window: options.window });
      const fixed = options.confirmedOnly ? skipped : await phase({ rate: options.rate });
      let confirmed: Metrics | string;
      try {
        confirmed = await phase({ rate: options.confirmRate, until: "published" });
      } catch (err) {
        confirmed = `not measured: ${err instanceof Error ? err.message.split("\n")[0] : err}`;
      }
      return { max, fixed, confirmed, log_lines: { ...gateway.levels } };
    } finally {
      await actor.close();
    }
  });
}

// ---------------------------------------------------------------- startup

/** Time from spawning the gateway to its first accepted websocket. */
export async function startup(ctx: BenchContext): Promise<Metrics> {
  const exchange = uniqueName(ctx, "startup");
  const gateway = await GatewayProcess.start({
    bundle: ctx.bundle,
    amqpUrl: ctx.amqpUrl,
    exchange,
    name: exchange,
    args: ctx.gatewayArgs,
    waitForBroker: false,
  });
  try {
    const socket = new WebSocket(gateway.url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("the websocket did not open"));
    });
    const openMs = performance.now() - gateway.spawnedAt;
    socket.close();
    await gateway.linkUp();
    return {
      first_websocket_ms: round(openMs, 1),
      listening_ms: round(gateway.times.listening_ms, 1),
      link_up_ms: round(gateway.times.link_up_ms, 1),
    };
  } finally {
    await gateway.stop();
  }
}

/** How long `deno run` takes to start and exit with an empty program: the runtime's own share of startup. */
export async function denoBaselineMs(): Promise<number> {
  const file = await Deno.makeTempFile({ suffix: ".js" });
  try {
    const started = performance.now();
    await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", file],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return round(performance.now() - started, 1);
  } finally {
    await Deno.remove(file);
  }
}
