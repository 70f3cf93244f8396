/**
 * Small statistics and formatting helpers shared by the harness and its
 * child processes.
 *
 * @module
 */

/** Latency percentiles in ms. */
export type Percentiles = {
  /** Samples. */
  count: number;
  /** Arithmetic mean. */
  mean: number;
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** Largest sample. */
  max: number;
};

/** Percentiles of `samples` (sorted in place), nearest-rank; NaN for none. */
export function percentiles(samples: Float64Array): Percentiles {
  const n = samples.length;
  if (n === 0) return { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
  samples.sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += samples[i];
  const at = (q: number) => samples[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
  return {
    count: n,
    mean: round(sum / n, 3),
    p50: round(at(0.5), 3),
    p90: round(at(0.9), 3),
    p99: round(at(0.99), 3),
    p999: round(at(0.999), 3),
    max: round(samples[n - 1], 3),
  };
}

/** The median of the finite numbers in `values`, NaN if there are none. */
export function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

/** `value` rounded to `digits` decimals. */
export function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * The per-field median of several runs' results: numbers become medians
 * (counts of failures the worst run's), nested objects are merged the same
 * way, anything else is taken from the first run.
 */
export function medianOf<T>(runs: readonly T[]): T {
  if (runs.length === 1) return runs[0];
  const first = runs[0];
  if (typeof first === "number") return median(runs as readonly number[]) as T;
  if (first === null || typeof first !== "object" || Array.isArray(first)) return first;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(first)) {
    const values = runs.map((run) => (run as Record<string, unknown>)[key]);
    // A loss in one run must not disappear in a median: counts of things gone wrong take the worst run.
    out[key] = WORST_OF_RUNS.has(key) && values.every((v) => typeof v === "number")
      ? Math.max(...(values as number[]))
      : medianOf(values);
  }
  return out as T;
}

/** Fields that {@linkcode medianOf} reduces to their maximum: counts of things that went wrong. */
export const WORST_OF_RUNS: ReadonlySet<string> = new Set([
  "lost",
  "duplicates",
  "out_of_order",
  "unexpected",
  "invalid_frames",
  "closed_early",
  "failed",
  "unanswered",
  "gateway_slow_closes",
  "broker_blocked_ms",
  "gateway_link_trouble",
]);

/** A number for humans: thousands separated, `digits` decimals. */
export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Bytes for humans, in KiB or MiB. */
export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "n/a";
  const sign = bytes < 0 ? "-" : "";
  const abs = Math.abs(bytes);
  if (abs >= 1024 * 1024) return `${sign}${fmt(abs / 1024 / 1024, 1)} MiB`;
  return `${sign}${fmt(abs / 1024, 1)} KiB`;
}

/** Wall-clock time now in ms since the epoch, with sub-millisecond precision, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Least, median and greatest of per-client rates (msgs/s), sorted ascending; NaN for none. */
export function rateSummary(sorted: readonly number[]): { min: number; median: number; max: number } {
  return {
    min: round(sorted[0] ?? NaN, 1),
    median: round(sorted[Math.floor(sorted.length / 2)] ?? NaN, 1),
    max: round(sorted[sorted.length - 1] ?? NaN, 1),
  };
}
