/**
 * `deno task bench`: the clu-ws benchmark harness. Builds the gateway bundle,
 * runs each scenario against fresh gateway processes with load generators in
 * their own processes, and prints a readable summary and one JSON line per
 * case, then the issue's targets next to what was measured.
 *
 * Usage: `deno run --allow-all bench/main.ts [scenario ...] [--quick] [--runs N]
 * [--gateway dist/clu-ws.js] [--versus bench/naive_gateway.ts] [--cpu-prof]
 * [--gateway-arg=--flag ...]`; see bench/README.md. With `--versus`, every
 * case runs the gateway under test and the reference gateway alternately (A,
 * B, A, B…), and the summary gives their ratios (issue 13's targets).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { connect } from "amqplib";
import { brokerPid, cpuCount, cpuModel, loadAverage, machineCpuMs, raiseFileLimit } from "./proc.ts";
import { buildBundle } from "./gateway.ts";
import {
  type BenchContext,
  ceiling,
  commands,
  type CommandsOptions,
  delivery,
  denoBaselineMs,
  idle,
  type Metrics,
  startup,
} from "./scenarios.ts";
import { fmt, fmtBytes, median, medianOf, round, sleep } from "./stats.ts";
import { backendArgs, BACKENDS, benchStream, deleteBenchStream, resumeLatency } from "./history.ts";

/** Every scenario, in the order a full run goes through them. */
export const SCENARIOS = [
  "ceiling",
  "fanout",
  "latency",
  "idle",
  "slow",
  "commands",
  "startup",
  "history",
] as const;
/** A scenario name. */
export type Scenario = typeof SCENARIOS[number];

/** Sizes of one benchmark run: the full run, or a quick smoke run. */
interface Plan {
  runs: number;
  ceilingMessages: number;
  fanout: Array<{ clients: number; messages: number }>;
  latency: { clients: number; rates: number[]; seconds: number };
  idle: number[];
  slow: { clients: number; rate: number; seconds: number; bodyBytes: number };
  commands: CommandsOptions;
  startupTries: number;
  /** The history backends side by side: fan-out, latency, and a resume of `missed` replies. */
  history: { clients: number; messages: number; rate: number; seconds: number; missed: number };
}

const FULL: Plan = {
  runs: 3,
  ceilingMessages: 30_000,
  fanout: [
    { clients: 1, messages: 30_000 },
    { clients: 10, messages: 20_000 },
    { clients: 100, messages: 5_000 },
    { clients: 1000, messages: 500 },
  ],
  latency: { clients: 100, rates: [200, 500], seconds: 10 },
  idle: [1000, 10_000],
  // 2 KB bodies, so that the stalled peer's kernel buffers (~3 MB) and its 1 MiB budget fill within the run.
  slow: { clients: 100, rate: 200, seconds: 15, bodyBytes: 2000 },
  commands: { clients: 4, window: 16, rate: 1000, confirmRate: 5000, seconds: 5, warmupSeconds: 3 },
  startupTries: 5,
  history: { clients: 10, messages: 20_000, rate: 500, seconds: 10, missed: 10_000 },
};

const QUICK: Plan = {
  runs: 1,
  ceilingMessages: 5000,
  fanout: [{ clients: 1, messages: 5000 }, { clients: 10, messages: 2000 }, { clients: 100, messages: 500 }],
  latency: { clients: 10, rates: [200], seconds: 3 },
  idle: [1000],
  slow: { clients: 10, rate: 200, seconds: 3, bodyBytes: 10_000 },
  commands: { clients: 4, window: 16, rate: 1000, confirmRate: 5000, seconds: 2, warmupSeconds: 1 },
  startupTries: 3,
  history: { clients: 10, messages: 5000, rate: 200, seconds: 3, missed: 10_000 },
};

/**
 * Gateway flags for `fanout`: the publisher outruns a load generator that shares two cores with the
 * gateway, so a client may fall a few MiB behind for a moment; with the default 1 MiB budget the
 * gateway would close it (1008), which is the `slow` scenario's subject, not this one's.
 */
const FANOUT_ARGS = ["--client-buffer", "64MiB"];

/** One case's results over all runs. */
interface CaseResult {
  scenario: Scenario;
  case: string;
  median: Metrics;
  runs: Metrics[];
  /** With `--versus`: the reference gateway's runs of the same case, alternated with these. */
  reference?: { median: Metrics; runs: Metrics[] };
  /** With `--versus`: the medians of the per-pair comparisons (see {@linkcode compare}). */
  ratios?: Metrics;
}

const results: CaseResult[] = [];

/**
 * The side-by-side mode (`--versus <gateway>`): `repeat` points the shared context at the gateway under
 * test and at the reference in turn, so that both see the same machine.
 */
interface Versus {
  ctx: BenchContext;
  bundle: string;
  reference: string;
}

let versus: Versus | undefined;

/**
 * One pair of runs (the gateway under test, the reference) compared the way issue 13 states its targets:
 * ratios of gateway CPU per frame, frames/s and idle RSS per connection, the difference of p99 latencies.
 */
function compare(a: Metrics, b: Metrics): Metrics {
  const out: Metrics = {};
  const ratio = (key: string, path: string) => {
    const value = num(a, path) / num(b, path);
    if (Number.isFinite(value)) out[key] = round(value, 3);
  };
  ratio("cpu_per_frame_ratio", "gateway_us_per_frame");
  ratio("frames_s_ratio", "aggregate_frames_s");
  ratio("rss_per_connection_ratio", "rss_per_connection");
  const p99 = num(a, "latency_ms.p99") - num(b, "latency_ms.p99");
  if (Number.isFinite(p99)) out.p99_diff_ms = round(p99, 2);
  return out;
}

function ratiosLine(r: Metrics): string {
  const parts: string[] = [];
  if (r.cpu_per_frame_ratio !== undefined) parts.push(`CPU/frame ${fmt(num(r, "cpu_per_frame_ratio"), 2)}×`);
  if (r.frames_s_ratio !== undefined) parts.push(`frames/s ${fmt(num(r, "frames_s_ratio"), 2)}×`);
  if (r.p99_diff_ms !== undefined) {
    parts.push(`p99 ${num(r, "p99_diff_ms") >= 0 ? "+" : ""}${fmt(num(r, "p99_diff_ms"), 2)} ms`);
  }
  if (r.rss_per_connection_ratio !== undefined) {
    parts.push(`RSS/connection ${fmt(num(r, "rss_per_connection_ratio"), 2)}×`);
  }
  return parts.join(", ");
}

function say(line = ""): void {
  console.log(line);
}

/**
 * Runs `once` `runs` times, prints its summary and JSON line, and keeps the result. With `--versus` (unless
 * `pair` is false), each run is a pair: the gateway under test, then the reference gateway.
 */
async function repeat(
  scenario: Scenario,
  label: string,
  runs: number,
  once: (run: number) => Promise<Metrics>,
  summary: (m: Metrics) => string,
  { pair = true }: { pair?: boolean } = {},
): Promise<CaseResult | undefined> {
  const paired = pair ? versus : undefined;
  if (paired) {
    try {
      return await repeatPaired(paired, scenario, label, runs, once, summary);
    } finally {
      paired.ctx.bundle = paired.bundle;
    }
  }
  const each: Metrics[] = [];
  for (let run = 1; run <= runs; run++) {
    let metrics: Metrics | undefined;
    try {
      metrics = await attempt(label, () => once(run));
    } catch (err) {
      // Something the gateway does not do (e.g. batched delivery in an older build or the naive gateway).
      say(`  ${label}: skipped: ${err instanceof Error ? err.message : err}`);
      return undefined;
    }
    if (!metrics) continue;
    each.push(metrics);
    if (runs > 1) say(`  ${label} run ${run}/${runs}: ${summary(metrics)}`);
  }
  if (!each.length) {
    say(`  ${label}: no run succeeded`);
    say(JSON.stringify({ scenario, case: label, runs: 0, error: "no run succeeded" }));
    return undefined;
  }
  const result: CaseResult = { scenario, case: label, median: medianOf(each), runs: each };
  say(`  ${label}${runs > 1 ? ` (median of ${runs})` : ""}: ${summary(result.median)}`);
  say(JSON.stringify({ scenario, case: label, runs: runs, median: result.median, each }));
  results.push(result);
  return result;
}

/** {@linkcode repeat} with `--versus`: A, B, A, B… and the medians of both plus their per-pair ratios. */
async function repeatPaired(
  paired: Versus,
  scenario: Scenario,
  label: string,
  runs: number,
  once: (run: number) => Promise<Metrics>,
  summary: (m: Metrics) => string,
): Promise<CaseResult | undefined> {
  const sides = [
    { name: "A", bundle: paired.bundle, each: [] as Array<Metrics | undefined>, skipped: "" },
    { name: "B", bundle: paired.reference, each: [] as Array<Metrics | undefined>, skipped: "" },
  ];
  for (let run = 1; run <= runs; run++) {
    for (const side of sides) {
      if (side.skipped) continue;
      paired.ctx.bundle = side.bundle;
      const tag = `${label} [${side.name}]`;
      let metrics: Metrics | undefined;
      try {
        metrics = await attempt(tag, () => once(run));
      } catch (err) {
        // Something this gateway does not do (batched delivery, v1 for the naive gateway).
        side.skipped = err instanceof Error ? err.message : String(err);
        say(`  ${tag}: skipped: ${side.skipped}`);
        if (side === sides[0]) return undefined;
        continue;
      }
      side.each[run - 1] = metrics;
      if (metrics && runs > 1) say(`  ${tag} run ${run}/${runs}: ${summary(metrics)}`);
    }
  }
  const [a, b] = sides.map((side) => side.each.filter((m): m is Metrics => m !== undefined));
  if (!a.length) {
    say(`  ${label}: no run succeeded`);
    say(JSON.stringify({ scenario, case: label, runs: 0, error: "no run succeeded" }));
    return undefined;
  }
  const result: CaseResult = { scenario, case: label, median: medianOf(a), runs: a };
  say(`  ${label} [A]${runs > 1 ? ` (median of ${a.length})` : ""}: ${summary(result.median)}`);
  say(
    JSON.stringify({ scenario, case: label, gateway: "A", runs: a.length, median: result.median, each: a }),
  );
  if (b.length) {
    result.reference = { median: medianOf(b), runs: b };
    say(`  ${label} [B]${runs > 1 ? ` (median of ${b.length})` : ""}: ${summary(result.reference.median)}`);
    say(
      JSON.stringify({
        scenario,
        case: label,
        gateway: "B",
        runs: b.length,
        median: result.reference.median,
        each: b,
      }),
    );
    // Ratios pair each run with the reference's run beside it, then take the median over the pairs.
    const pairs = sides[0].each.flatMap((m, i) => {
      const r = sides[1].each[i];
      return m && r ? [compare(m, r)] : [];
    });
    if (pairs.length) {
      result.ratios = medianOf(pairs);
      say(
        `  ${label} A/B (median of ${pairs.length} pair${pairs.length > 1 ? "s" : ""}): ${
          ratiosLine(result.ratios)
        }`,
      );
      say(
        JSON.stringify({
          scenario,
          case: label,
          comparison: "A/B",
          pairs: pairs.length,
          median: result.ratios,
          each: pairs,
        }),
      );
    }
  } else if (!sides[1].skipped) {
    say(`  ${label} [B]: no run succeeded`);
  }
  results.push(result);
  return result;
}

/**
 * Runs one measurement; when it fails (e.g. another engineer's test stopped
 * the shared broker), says so, waits for the broker and tries again, twice.
 */
async function attempt(label: string, once: () => Promise<Metrics>): Promise<Metrics | undefined> {
  for (let tries = 1;; tries++) {
    try {
      const metrics = await once();
      const trouble = disturbed(metrics);
      if (trouble && tries < 3) {
        say(`  ${label}: run disturbed${trouble}; trying again`);
        await waitForBroker();
        continue;
      }
      return metrics;
    } catch (err) {
      if (err instanceof Error && /does not offer/.test(err.message)) throw err;
      const why = err instanceof Error ? err.message.split("\n").slice(0, 6).join(" | ") : String(err);
      if (tries === 3) {
        say(`  ${label}: failed three times, giving up on this run: ${why}`);
        return undefined;
      }
      say(`  ${label}: run failed (${why}); waiting for RabbitMQ and trying again`);
      await waitForBroker();
    }
  }
}

/** Waits (up to a minute) until RabbitMQ accepts AMQP connections again. */
async function waitForBroker(): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    try {
      const connection = await connect(amqpUrlInUse);
      connection.on("error", () => {});
      await connection.close();
      await sleep(1000);
      return;
    } catch {
      await sleep(1000);
    }
  }
}

let amqpUrlInUse = "amqp://guest:guest@127.0.0.1:5672";

const num = (m: Metrics, path: string): number => {
  let value: unknown = m;
  for (const key of path.split(".")) value = (value as Metrics | undefined)?.[key];
  return typeof value === "number" ? value : NaN;
};

function cpuLine(m: Metrics): string {
  const cpu = m.cpu as Metrics;
  const wall = cpu.wall_ms as number;
  const share = (ms: number) => `${fmt((ms / wall) * 100)}%`;
  const parts = Object.entries(cpu)
    .filter(([k]) =>
      k.endsWith("_ms") && k !== "wall_ms" && (k === "gateway_ms" || !k.startsWith("gateway_"))
    )
    .map(([k, v]) =>
      `${k.replace(/_ms$/, "")} ${share(v as number)}` +
      (k === "gateway_ms" && cpu.gateway_system_ms !== undefined
        ? ` (${share(cpu.gateway_system_ms as number)} in the kernel; JS thread ${
          share(cpu.gateway_thread_main_ms as number)
        }, runtime threads ${share(cpu.gateway_thread_tokio_ms as number)}, V8 helpers ${
          share(cpu.gateway_thread_v8_workers_ms as number)
        })`
        : "")
    );
  return `CPU ${parts.join(", ")} (of one core; machine ${fmt(cpu.machine_busy_percent as number)}% busy)`;
}

/** A warning when something outside the benchmark interfered with a run. */
function disturbed(m: Metrics): string {
  const blocked = num(m, "broker_blocked_ms");
  const link = num(m, "gateway_link_trouble");
  if (!(blocked > 0) && !(link > 0)) return "";
  return ` — DISTURBED: the broker blocked publishes for ${fmt(blocked)} ms, ${link} gateway link warnings`;
}

function deliveryLine(m: Metrics): string {
  const lat = m.latency_ms as Metrics;
  return `${fmt(num(m, "per_client_msgs_s"))} msgs/s per client, ${
    fmt(num(m, "aggregate_frames_s"))
  } frames/s, ` +
    `lost ${m.lost}, dup ${m.duplicates}, reordered ${m.out_of_order}` +
    (num(m, "closed_early") > 0
      ? ` (${m.closed_early} clients closed early: ${m.gateway_slow_closes} too slow)`
      : "") +
    `, latency p50 ${fmt(lat.p50 as number, 2)} ` +
    `p99 ${fmt(lat.p99 as number, 2)} max ${fmt(lat.max as number, 1)} ms; ` +
    (m.gateway_us_per_frame !== undefined
      ? `gateway ${fmt(num(m, "gateway_us_per_frame"), 2)} µs/frame; `
      : "") +
    cpuLine(m) + disturbed(m);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      gateway: { type: "string" },
      versus: { type: "string" },
      "cpu-prof": { type: "boolean", default: false },
      "commands-confirmed-only": { type: "boolean", default: false },
      "gateway-arg": { type: "string", multiple: true, default: [] },
      "fanout-clients": { type: "string" },
      "amqp-url": { type: "string", default: Deno.env.get("CLU_WS_BENCH_AMQP_URL") ?? "" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    say(
      `usage: deno task bench [${SCENARIOS.join("|")} ...] [--quick] [--runs N] [--gateway <bundle.js>]\n` +
        `                       [--versus <reference gateway, e.g. bench/naive_gateway.ts>]\n` +
        `                       [--cpu-prof] [--gateway-arg=<flag> ...] [--amqp-url <url>]\n` +
        `                       [--commands-confirmed-only] [--fanout-clients K[,K...]]\n` +
        "See bench/README.md.",
    );
    return 0;
  }
  const unknown = positionals.filter((p) => !(SCENARIOS as readonly string[]).includes(p));
  if (unknown.length) {
    console.error(`bench: unknown scenario ${unknown.join(", ")}; choose from ${SCENARIOS.join(", ")}`);
    return 2;
  }
  const chosen: Scenario[] = positionals.length ? positionals as Scenario[] : [...SCENARIOS];
  // Side by side, idle is measured where issue 13 sets its targets: 5,000 and 10,000 connections.
  const sized = values.quick ? QUICK : values.versus ? { ...FULL, idle: [5000, 10_000] } : FULL;
  const plan = {
    ...sized,
    commands: { ...sized.commands, confirmedOnly: values["commands-confirmed-only"] },
  };
  if (values["fanout-clients"]) {
    // Only these fanout cases (e.g. `--fanout-clients 1` for K=1 experiments); the batched case needs K=100.
    const wanted = values["fanout-clients"].split(",").map(Number);
    const fanout = plan.fanout.filter((f) => wanted.includes(f.clients));
    if (fanout.length !== wanted.length) {
      console.error(
        `bench: --fanout-clients takes client counts of the plan (${
          plan.fanout.map((f) => f.clients).join(", ")
        }), not ${values["fanout-clients"]}`,
      );
      return 2;
    }
    plan.fanout = fanout;
  }
  const runs = values.runs ? Number(values.runs) : plan.runs;
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`bench: --runs must be a whole number ≥ 1, not ${values.runs}`);
    return 2;
  }
  const amqpUrl = values["amqp-url"] || amqpUrlInUse;
  amqpUrlInUse = amqpUrl;
  const runId = crypto.randomUUID().slice(0, 8);
  const benchDir = new URL("./", import.meta.url).pathname;
  const workDir = await Deno.makeTempDir({ prefix: "clu-ws-bench-" });
  let bundle = values.gateway;
  if (!bundle) {
    // A bundle of our own, so a test run rebuilding dist/ cannot swap the gateway mid-benchmark.
    bundle = `${workDir}/clu-ws.js`;
    await buildBundle(bundle);
  }
  const profileDir = values["cpu-prof"] ? `${benchDir}out/profiles/${runId}` : undefined;
  if (profileDir) {
    // Keep the profiled bundle beside its profiles: bench/profile.ts maps their lines to modules with it.
    Deno.mkdirSync(profileDir, { recursive: true });
    Deno.copyFileSync(bundle, `${profileDir}/clu-ws.js`);
    bundle = `${profileDir}/clu-ws.js`;
  }

  const needFds = chosen.includes("idle") ? Math.max(...plan.idle) + 1000 : 4096;
  const fileLimit = await raiseFileLimit(needFds);
  if (fileLimit < needFds) {
    console.error(
      `bench: the open-file limit is ${fileLimit}, the idle scenario needs ${needFds}; ` +
        `raise it (e.g. \`ulimit -n ${needFds}\`, or run as root so the harness can use prlimit)`,
    );
    return 2;
  }

  const ctx: BenchContext = {
    amqpUrl,
    bundle,
    runId,
    brokerPid: await brokerPid(Number(new URL(amqpUrl).port || 5672)),
    gatewayArgs: values["gateway-arg"] ?? [],
    profileDir,
    say,
  };
  if (values.versus) versus = { ctx, bundle, reference: values.versus };

  // Who else is using the machine: one second of machine-wide CPU before starting.
  const before = machineCpuMs();
  await sleep(1000);
  const after = machineCpuMs();
  const busyBefore = ((after.busy - before.busy) / (after.total - before.total)) * 100;
  const load = loadAverage();
  const commit = await gitDescribe();
  say(
    `clu-ws benchmark ${runId}: ${chosen.join(", ")}; ${runs} run(s) each${values.quick ? " (quick)" : ""}`,
  );
  say(
    `  machine: ${cpuCount()} × ${cpuModel()}, load average ${load.join(" ")}, ` +
      `${fmt(busyBefore)}% busy in the second before starting; Deno ${Deno.version.deno}; ` +
      `RabbitMQ pid ${ctx.brokerPid ?? "not found (its CPU is not reported)"}; open files ${fileLimit}`,
  );
  say(`  gateway: ${bundle} (${commit}); extra flags: ${ctx.gatewayArgs.join(" ") || "none"}`);
  if (versus) {
    say(
      `  side by side: A = the gateway above, B = ${versus.reference}, alternated A, B, A, B… in every case`,
    );
  }
  if (load[0] > 0.7 || busyBefore > 20) {
    say("  WARNING: the machine is busy with other work; the numbers below are disturbed by it");
  }
  say(
    JSON.stringify({
      scenario: "environment",
      run_id: runId,
      cpus: cpuCount(),
      cpu_model: cpuModel(),
      load_average: load,
      busy_percent_before: round(busyBefore, 1),
      deno: Deno.version.deno,
      gateway: commit,
      gateway_args: ctx.gatewayArgs,
      versus: versus?.reference ?? null,
      runs,
      quick: values.quick,
    }),
  );
  const started = performance.now();

  for (const scenario of chosen) {
    say();
    say(`== ${scenario}`);
    await SCENARIO_RUNNERS[scenario](ctx, plan, runs);
  }

  say();
  report(plan, runs);
  say(`\nfinished in ${fmt((performance.now() - started) / 1000)} s`);
  await Deno.remove(workDir, { recursive: true }).catch(() => {});
  return 0;
}

const SCENARIO_RUNNERS: Record<Scenario, (ctx: BenchContext, plan: Plan, runs: number) => Promise<void>> = {
  async ceiling(ctx, plan, runs) {
    say(
      `  a bare amqplib consumer (prefetch 1000, no acks) in its own process; ${plan.ceilingMessages} messages`,
    );
    await repeat(
      "ceiling",
      "ceiling",
      runs,
      () => ceiling(ctx, plan.ceilingMessages),
      (m) =>
        `${fmt(num(m, "per_client_msgs_s"))} msgs/s (publisher ${
          fmt(num(m, "publish_msgs_s"))
        }/s), lost ${m.lost}, ` +
        `latency p50 ${fmt(num(m, "latency_ms.p50"), 2)} p99 ${fmt(num(m, "latency_ms.p99"), 2)} ms; ` +
        `consumer ${fmt(num(m, "consumer_us_per_msg"), 2)} µs/msg; ${cpuLine(m)}${disturbed(m)}`,
      { pair: false }, // no gateway in it
    );
  },

  async fanout(ctx, plan, runs) {
    for (const { clients, messages } of plan.fanout) {
      if (clients === 1) {
        // The K=1 target is a share of the ceiling: each run is bracketed by a ceiling run just before and
        // one just after it, and measured against their mean, so that drift during the pair cancels. (With
        // one ceiling before each run, the ceilings themselves differed by position: in 10 A/B pairs of
        // the same two bundles, those right after an A run averaged 1.03–1.05× those after a B run, whichever
        // bundle was A, and the shares followed them.)
        await repeat(
          "fanout",
          "K=1",
          runs,
          async () => {
            const before = num(await ceiling(ctx, messages), "per_client_msgs_s");
            const metrics = await delivery(ctx, {
              clients,
              messages,
              gatewayArgs: FANOUT_ARGS,
              label: "fanout1",
            });
            const after = num(await ceiling(ctx, messages), "per_client_msgs_s");
            const bare = (before + after) / 2;
            return {
              ...metrics,
              ceiling_msgs_s: round(bare),
              ceiling_before_msgs_s: round(before),
              ceiling_after_msgs_s: round(after),
              share_of_ceiling: round(num(metrics, "per_client_msgs_s") / bare, 3),
            };
          },
          (m) =>
            `${deliveryLine(m)}; ${fmt(num(m, "share_of_ceiling") * 100)} % of the bracketing ceilings (${
              fmt(num(m, "ceiling_before_msgs_s"))
            } before, ${fmt(num(m, "ceiling_after_msgs_s"))} after)`,
        );
        continue;
      }
      await repeat(
        "fanout",
        `K=${clients}`,
        runs,
        () => delivery(ctx, { clients, messages, gatewayArgs: FANOUT_ARGS, label: `fanout${clients}` }),
        deliveryLine,
      );
    }
    // Batched delivery is measured at K=100 (or the plan's largest K), unless --fanout-clients left it out.
    const k100 = plan.fanout.find((f) => f.clients === 100) ?? plan.fanout[plan.fanout.length - 1];
    if (k100.clients === 1) return;
    await repeat(
      "fanout",
      `K=${k100.clients} batched`,
      runs,
      () =>
        delivery(ctx, {
          clients: k100.clients,
          messages: k100.messages * 4,
          batch: true,
          gatewayArgs: FANOUT_ARGS,
          label: `batched${k100.clients}`,
        }),
      deliveryLine,
    );
  },

  async latency(ctx, plan, runs) {
    const { clients, rates, seconds } = plan.latency;
    for (const rate of rates) {
      await repeat(
        "latency",
        `K=${clients} R=${rate}`,
        runs,
        () => delivery(ctx, { clients, rate, seconds, label: `latency${clients}r${rate}` }),
        deliveryLine,
      );
    }
  },

  async idle(ctx, plan, runs) {
    for (const connections of plan.idle) {
      await repeat(
        "idle",
        `C=${connections}`,
        runs,
        () => idle(ctx, connections),
        (m) =>
          `${fmtBytes(num(m, "rss_per_connection"))} RSS per connection (${
            fmtBytes(num(m, "rss_before"))
          } → ` +
          `${fmtBytes(num(m, "rss_after"))}), ${m.connected} connected in ${fmt(num(m, "connect_ms"))} ms, ` +
          `gateway reports ${m.gateway_clients} clients, +${m.gateway_fds_added} fds`,
      );
      // Where the bytes go: the same again with the inspector, once, reading V8's heap after a full GC.
      await repeat(
        "idle",
        `C=${connections} heap`,
        1,
        () => idle(ctx, connections, { inspect: true }),
        (m) =>
          `JS heap ${fmtBytes(num(m, "heap_per_connection"))} + outside the JS heap ` +
          `${fmtBytes(num(m, "outside_heap_per_connection"))} per connection (with the inspector attached; ` +
          `RSS ${fmtBytes(num(m, "rss_per_connection"))})`,
        { pair: false }, // where clu-ws's bytes go; bench/README.md has the naive gateway's
      );
    }
  },

  async slow(ctx, plan, runs) {
    const { clients, rate, seconds, bodyBytes } = plan.slow;
    const healthy = clients - 1;
    const line = (m: Metrics) =>
      `healthy p99 ${fmt(num(m, "latency_ms.p99"), 2)} ms, lost ${m.lost}, gateway RSS +${
        fmtBytes(num(m, "gateway_rss_growth"))
      } (peak ${fmtBytes(num(m, "gateway_rss_peak"))}), slow closes ${m.gateway_slow_closes}${
        m.stalled_buffered_at_close ? ` (${fmtBytes(num(m, "stalled_buffered_at_close"))} waiting)` : ""
      }, ` +
      `catch-up notices ${m.gateway_catch_up_notices}; ${cpuLine(m)}${disturbed(m)}`;
    say(
      `  ${healthy} healthy clients, ${rate} msgs/s of ${bodyBytes}-byte bodies for ${seconds} s; ` +
        "without, then with one peer that completes the handshake and never reads",
    );
    await repeat(
      "slow",
      `baseline K=${healthy}`,
      runs,
      () => delivery(ctx, { clients: healthy, rate, seconds, bodyBytes, label: "slowbase" }),
      line,
    );
    await repeat(
      "slow",
      `K=${healthy}+1 stalled, close`,
      runs,
      () => delivery(ctx, { clients: healthy, rate, seconds, bodyBytes, stalled: 1, label: "slowclose" }),
      line,
    );
    await repeat(
      "slow",
      `K=${healthy}+1 stalled, drop`,
      runs,
      () =>
        delivery(ctx, {
          clients: healthy,
          rate,
          seconds,
          stalled: 1,
          bodyBytes,
          gatewayArgs: ["--slow-client", "drop"],
          label: "slowdrop",
        }),
      line,
    );
  },

  async commands(ctx, plan, runs) {
    const c = plan.commands;
    say(
      `  ${c.clients} clients → gateway (--command-rate 0) → actor; ${c.seconds} s each after ${c.warmupSeconds} s of the same traffic unmeasured: closed loop with ${c.window} ` +
        `in flight per client, and ${c.rate}/s, timed to the ':' reply; ${c.confirmRate}/s with "ack": true ` +
        "(clu-ws v1), timed to the gateway's 'published' (the broker's confirm)",
    );
    await repeat("commands", `K=${c.clients}`, runs, () => commands(ctx, c), (m) => {
      const phase = (p: Metrics | string) =>
        typeof p === "string"
          ? p
          : `${fmt(num(p, "commands_s"))}/s, p50 ${fmt(num(p, "latency_ms.p50"), 2)} p99 ${
            fmt(num(p, "latency_ms.p99"), 2)
          } ms, failed ${p.failed}, unanswered ${p.unanswered}, gateway ${
            fmt(num(p, "gateway_us_per_command"))
          } µs/command`;
      return `round trip max: ${phase(m.max as Metrics | string)}; round trip at ${c.rate}/s: ${
        phase(m.fixed as Metrics | string)
      }; ` +
        `confirmed at ${c.confirmRate}/s: ${phase(m.confirmed as Metrics | string)}`;
    });
  },

  async history(ctx, plan, runs) {
    const h = plan.history;
    say(
      `  the memory history (live replies from the gateway's own queue, no acks) and the history stream ` +
        `(live replies read from the stream, prefetch ${2000} and batched acks), one after the other: ` +
        `K=${h.clients} as fast as possible (${h.messages} replies), K=${h.clients} at ${h.rate}/s for ${h.seconds} s, ` +
        `and a resume of ${h.missed} missed replies (--client-buffer 64MiB for both: the memory history ` +
        "replays in one go, which the default 1 MiB budget closes)",
    );
    for (const backend of BACKENDS) {
      const withStream = async (label: string, run: (args: string[]) => Promise<Metrics>) => {
        const stream = benchStream(ctx, label);
        try {
          return await run(backendArgs(backend, stream));
        } finally {
          await deleteBenchStream(ctx, stream);
        }
      };
      await repeat(
        "history",
        `${backend} K=${h.clients} burst`,
        runs,
        () =>
          withStream(`hist-${backend}`, (args) =>
            delivery(ctx, {
              clients: h.clients,
              messages: h.messages,
              gatewayArgs: [...FANOUT_ARGS, ...args],
              label: `hist-${backend}`,
            })),
        deliveryLine,
        { pair: false },
      );
      await repeat(
        "history",
        `${backend} K=${h.clients} R=${h.rate}`,
        runs,
        () =>
          withStream(`histlat-${backend}`, (args) =>
            delivery(ctx, {
              clients: h.clients,
              rate: h.rate,
              seconds: h.seconds,
              gatewayArgs: args,
              label: `histlat-${backend}`,
            })),
        deliveryLine,
        { pair: false },
      );
      await repeat(
        "history",
        `${backend} resume of ${h.missed}`,
        runs,
        // The memory backend replays in one go: with the default 1 MiB budget the client is closed (1008).
        () => resumeLatency(ctx, backend, h.missed, FANOUT_ARGS),
        (m) =>
          `${m.answer}: ${m.replayed} replayed in ${fmt(num(m, "resume_ms"), 1)} ms (${
            fmt(num(m, "replayed_per_s"))
          } replies/s), gateway RSS ${fmtBytes(num(m, "gateway_rss"))}`,
        { pair: false },
      );
    }
  },

  async startup(ctx, plan, runs) {
    const baseline = await denoBaselineMs();
    say(`  deno run of an empty program takes ${fmt(baseline)} ms (the runtime's own share)`);
    await repeat(
      "startup",
      "startup",
      runs * plan.startupTries,
      () => startup(ctx),
      (m) =>
        `first websocket accepted ${fmt(num(m, "first_websocket_ms"))} ms after spawn ` +
        `(listening ${fmt(num(m, "listening_ms"))} ms, RabbitMQ link up ${fmt(num(m, "link_up_ms"))} ms)`,
    );
  },
};

/**
 * Issue 13's targets, which are ratios against the reference gateway run beside clu-ws (`--versus`); they
 * take the place of issue 4's absolute K=100, latency and idle targets in the targets block.
 */
function versusRows(plan: Plan, add: (target: string, measured: string, met: boolean | null) => void): void {
  const find = (scenario: Scenario, label: string) =>
    results.find((r) => r.scenario === scenario && r.case === label);
  const both = (r: CaseResult, path: string, digits = 0) =>
    `${fmt(num(r.median, path), digits)} vs ${
      r.reference ? fmt(num(r.reference.median, path), digits) : "—"
    }`;
  const k100 = find("fanout", "K=100");
  if (k100) {
    const r = k100.ratios;
    add(
      "fanout K=100 CPU per frame ≤ 0.5× B",
      r
        ? `${fmt(num(r, "cpu_per_frame_ratio"), 2)}× (${both(k100, "gateway_us_per_frame", 2)} µs)`
        : "no B runs",
      r ? num(r, "cpu_per_frame_ratio") <= 0.5 : null,
    );
    add(
      "fanout K=100 frames/s ≥ 1.8× B",
      r ? `${fmt(num(r, "frames_s_ratio"), 2)}× (${both(k100, "aggregate_frames_s")} frames/s)` : "no B runs",
      r ? num(r, "frames_s_ratio") >= 1.8 : null,
    );
    const m = k100.median;
    add(
      "fanout K=100 no loss, duplicates or reordering",
      `lost ${m.lost}, duplicates ${m.duplicates}, reordered ${m.out_of_order} (worst of the A runs)`,
      m.lost === 0 && m.out_of_order === 0 && m.duplicates === 0,
    );
  }
  const lat = find("latency", `K=${plan.latency.clients} R=200`);
  if (lat) {
    const r = lat.ratios;
    add(
      `latency K=${plan.latency.clients} R=200 p99 ≤ B + 1 ms`,
      r
        ? `${num(r, "p99_diff_ms") >= 0 ? "+" : ""}${fmt(num(r, "p99_diff_ms"), 2)} ms (${
          both(lat, "latency_ms.p99", 2)
        } ms)`
        : "no B runs",
      r ? num(r, "p99_diff_ms") <= 1 : null,
    );
    add(
      `latency K=${plan.latency.clients} R=200 CPU per frame ≤ 1.3× B`,
      r
        ? `${fmt(num(r, "cpu_per_frame_ratio"), 2)}× (${both(lat, "gateway_us_per_frame", 2)} µs)`
        : "no B runs",
      r ? num(r, "cpu_per_frame_ratio") <= 1.3 : null,
    );
  }
  for (const connections of plan.idle) {
    const idle = find("idle", `C=${connections}`);
    if (!idle) continue;
    const r = idle.ratios;
    add(
      `idle C=${connections} RSS per connection ≤ 0.5× B`,
      r
        ? `${fmt(num(r, "rss_per_connection_ratio"), 2)}× (${
          fmtBytes(num(idle.median, "rss_per_connection"))
        } vs ${idle.reference ? fmtBytes(num(idle.reference.median, "rss_per_connection")) : "—"})`
        : "no B runs",
      r ? num(r, "rss_per_connection_ratio") <= 0.5 : null,
    );
  }
}

/** The issue's targets next to the measured medians. */
function report(plan: Plan, runs: number): void {
  const find = (scenario: Scenario, label: string) =>
    results.find((r) => r.scenario === scenario && r.case === label)?.median;
  const rows: Array<{ target: string; measured: string; met: boolean | null }> = [];
  const add = (target: string, measured: string, met: boolean | null) => rows.push({ target, measured, met });

  const k1 = find("fanout", "K=1");
  if (k1) {
    const ref = results.find((r) => r.scenario === "fanout" && r.case === "K=1")?.reference?.median;
    const share = num(k1, "share_of_ceiling");
    add(
      "fanout K=1 ≥ 90 % of the ceiling",
      `${fmt(num(k1, "per_client_msgs_s"))} vs ${fmt(num(k1, "ceiling_msgs_s"))} msgs/s: ${
        fmt(share * 100)
      } % ` +
        "(median of per-run shares, each run against the mean of a ceiling run before and one after it)" +
        (ref ? `; B ${fmt(num(ref, "share_of_ceiling") * 100)} % of its own` : ""),
      share >= 0.9,
    );
  }
  const k100 = find("fanout", "K=100");
  if (versus) versusRows(plan, add);
  if (k100 && !versus) {
    add(
      "fanout K=100 ≤ 4 µs gateway CPU per frame",
      `${fmt(num(k100, "gateway_us_per_frame"), 2)} µs`,
      num(k100, "gateway_us_per_frame") <= 4,
    );
    add(
      "fanout K=100 ≥ 120k frames/s",
      `${fmt(num(k100, "aggregate_frames_s"))} frames/s`,
      num(k100, "aggregate_frames_s") >= 120_000,
    );
    add(
      "fanout K=100 no loss, no reordering",
      `lost ${k100.lost}, reordered ${k100.out_of_order}, duplicates ${k100.duplicates}`,
      k100.lost === 0 && k100.out_of_order === 0 && k100.duplicates === 0,
    );
  }
  const batched = find("fanout", "K=100 batched");
  if (k100) {
    add(
      "batched K=100 ≥ 300k msgs/s, ≤ 1 µs each",
      batched
        ? `${fmt(num(batched, "aggregate_frames_s"))} msgs/s, ${
          fmt(num(batched, "gateway_us_per_frame"), 2)
        } µs`
        : "not measured: this gateway has no batched delivery",
      batched
        ? num(batched, "aggregate_frames_s") >= 300_000 && num(batched, "gateway_us_per_frame") <= 1
        : null,
    );
  }
  for (const [rate, limit] of versus ? [] : [[200, 4], [500, 15]]) {
    const lat = find("latency", `K=${plan.latency.clients} R=${rate}`);
    if (lat) {
      add(
        `latency K=${plan.latency.clients} R=${rate} p99 ≤ ${limit} ms`,
        `p99 ${fmt(num(lat, "latency_ms.p99"), 2)} ms`,
        num(lat, "latency_ms.p99") <= limit,
      );
    }
  }
  const idleMax = Math.max(...plan.idle);
  const idle10k = find("idle", `C=${idleMax}`);
  const heap10k = find("idle", `C=${idleMax} heap`);
  if (idle10k && !versus) {
    add(
      `idle C=${idleMax} ≤ 12 KiB RSS per connection`,
      `${fmtBytes(num(idle10k, "rss_per_connection"))}` +
        (heap10k
          ? ` (JS heap ${fmtBytes(num(heap10k, "heap_per_connection"))}, outside ${
            fmtBytes(num(heap10k, "outside_heap_per_connection"))
          })`
          : ""),
      num(idle10k, "rss_per_connection") <= 12 * 1024,
    );
  }
  const healthy = plan.slow.clients - 1;
  const base = find("slow", `baseline K=${healthy}`);
  const baseRuns = results.find((r) => r.scenario === "slow" && r.case === `baseline K=${healthy}`)?.runs ??
    [];
  const spread = (path: string) => {
    const values = baseRuns.map((m) => num(m, path)).filter(Number.isFinite);
    return values.length > 1 ? Math.max(...values) - Math.min(...values) : NaN;
  };
  for (const policy of ["close", "drop"]) {
    const stalled = find("slow", `K=${healthy}+1 stalled, ${policy}`);
    if (base && stalled) {
      const change = num(stalled, "latency_ms.p99") / num(base, "latency_ms.p99") - 1;
      const rss = num(stalled, "gateway_rss_growth") - num(base, "gateway_rss_growth");
      const noise = Number.isFinite(spread("latency_ms.p99"))
        ? `; between baseline runs p99 varied by ${fmt(spread("latency_ms.p99"), 2)} ms and RSS growth by ${
          fmtBytes(spread("gateway_rss_growth"))
        }`
        : "";
      add(
        `slow (${policy}): others' p99 up < 10 %, RSS ≤ the 1 MiB budget`,
        `p99 ${fmt(num(base, "latency_ms.p99"), 2)} → ${fmt(num(stalled, "latency_ms.p99"), 2)} ms ` +
          `(${change >= 0 ? "+" : ""}${fmt(change * 100)} %), RSS growth ${
            fmtBytes(rss)
          } over the baseline's` +
          (policy === "close"
            ? `, ${fmtBytes(num(stalled, "stalled_buffered_at_close"))} held at the close`
            : "") +
          noise,
        change < 0.1 && rss <= 1024 * 1024,
      );
    }
  }
  const cmd = find("commands", `K=${plan.commands.clients}`);
  if (cmd) {
    const confirmed = cmd.confirmed as Metrics | string;
    const max = cmd.max as Metrics;
    const roundTrip = `round trip to ':' at most ${fmt(num(max, "commands_s"))}/s (p99 ${
      fmt(num(max, "latency_ms.p99"), 1)
    } ms)`;
    if (typeof confirmed === "string") {
      add("commands ≥ 5,000/s confirmed, p99 ≤ 5 ms", `${confirmed}; ${roundTrip}`, null);
    } else {
      add(
        "commands ≥ 5,000/s confirmed, p99 ≤ 5 ms",
        `at ${fmt(plan.commands.confirmRate)}/s: ${fmt(num(confirmed, "commands_s"))}/s confirmed, p99 ${
          fmt(num(confirmed, "latency_ms.p99"), 2)
        } ms; ${roundTrip}`,
        plan.commands.confirmRate >= 5000 &&
          num(confirmed, "commands_s") >= 0.98 * plan.commands.confirmRate &&
          num(confirmed, "failed") === 0 && num(confirmed, "latency_ms.p99") <= 5,
      );
      add(
        "commands (issue 13): ≥ 5,000/s confirmed, p99 ≤ 50 ms, ≤ 70 µs gateway CPU each",
        `${fmt(num(confirmed, "commands_s"))}/s, p99 ${fmt(num(confirmed, "latency_ms.p99"), 1)} ms, ${
          fmt(num(confirmed, "gateway_us_per_command"))
        } µs`,
        plan.commands.confirmRate >= 5000 &&
          num(confirmed, "commands_s") >= 0.98 * plan.commands.confirmRate &&
          num(confirmed, "failed") === 0 && num(confirmed, "latency_ms.p99") <= 50 &&
          num(confirmed, "gateway_us_per_command") <= 70,
      );
    }
  }
  const start = results.find((r) => r.scenario === "startup");
  if (start) {
    const ms = median(start.runs.map((m) => num(m, "first_websocket_ms")));
    add("startup ≤ 300 ms to the first accepted websocket", `${fmt(ms)} ms`, ms <= 300);
  }
  if (!rows.length) return;
  say(`== targets (medians of ${runs} run${runs > 1 ? "s" : ""})`);
  if (plan === QUICK) {
    say("  (a --quick run: smaller sizes than the targets assume; a smoke test, not a verdict)");
  }
  const width = Math.max(...rows.map((r) => r.target.length));
  for (const row of rows) {
    const verdict = row.met === null ? "n/a " : row.met ? "MET " : "MISS";
    say(`  ${verdict}  ${row.target.padEnd(width)}  ${row.measured}`);
  }
  say(JSON.stringify({ scenario: "targets", runs, rows }));
}

async function gitDescribe(): Promise<string> {
  try {
    const root = new URL("../", import.meta.url).pathname;
    const git = (args: string[]) =>
      new Deno.Command("git", { args, cwd: root, stdout: "piped", stderr: "null" }).output();
    const head = new TextDecoder().decode((await git(["rev-parse", "--short", "HEAD"])).stdout).trim();
    const dirty = new TextDecoder().decode(
      (await git(["status", "--porcelain", "--", "main.ts", "lib"])).stdout,
    )
      .trim();
    return `commit ${head}${dirty ? " + uncommitted changes in main.ts/lib" : ""}`;
  } catch {
    return "commit unknown";
  }
}

if (import.meta.main) {
  // A broker stopped under us (another engineer's fault test) must cost a run, not the whole benchmark.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    console.error(`bench: unexpected error (the run it hit will fail or retry): ${event.reason}`);
  });
  Deno.exit(await main());
}
