/**
 * The plots' pure parts: which series a keyword's value makes (a number, or
 * the numeric elements of an array, as the gateway's keyword history keeps
 * them), reading a series' value from a reply body, a plot's name in the URL
 * (`?plot=actor:keyword`), and a plot's points: the gateway's recent history
 * joined with the live points that came after it, bounded.
 *
 * @module
 */

import { parseSeriesName, SERIES_LIMITS, type SeriesName } from "../../lib/protocol/v1_series.ts";

export { parseSeriesName, type SeriesName };

/** Points one plot keeps; the oldest go first. */
export const MAX_PLOT_POINTS = 10_000;
/** Plots open at once (more are refused with a note). */
export const MAX_PLOTS = 12;

/** A plotted series: an actor and a series name (`temperature`, `position[1]`). */
export interface PlotKey {
  /** The actor. */
  actor: string;
  /** The series: a keyword, or `keyword[i]` for an array's element. */
  series: string;
}

/** The series a keyword's value makes: `[keyword]` for a number, `keyword[i]` for each numeric element. */
export function numericSeriesNames(keyword: string, value: unknown): string[] {
  if (typeof value === "number") return Number.isFinite(value) ? [keyword] : [];
  if (!Array.isArray(value)) return [];
  const names: string[] = [];
  const count = Math.min(value.length, SERIES_LIMITS.elementsPerKeyword);
  for (let i = 0; i < count; i++) {
    if (typeof value[i] === "number" && Number.isFinite(value[i])) names.push(`${keyword}[${i}]`);
  }
  return names;
}

/** The value of `name` in a reply body, when it is a finite number there. */
export function seriesValue(body: unknown, name: SeriesName): number | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  if (!Object.hasOwn(body, name.keyword)) return undefined;
  let value = (body as Record<string, unknown>)[name.keyword];
  if (name.element !== undefined) value = Array.isArray(value) ? value[name.element] : undefined;
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** `actor:series`, a plot as the URL keeps it. */
export function plotParam(key: PlotKey): string {
  return `${key.actor}:${key.series}`;
}

/** Reads `actor:series` (split at the first colon); undefined when either part is missing or invalid. */
export function parsePlotParam(text: string): PlotKey | undefined {
  const at = text.indexOf(":");
  if (at <= 0 || at > SERIES_LIMITS.nameLength) return undefined;
  const key = { actor: text.slice(0, at), series: text.slice(at + 1) };
  return parseSeriesName(key.series) ? key : undefined;
}

/**
 * A plot's points, in time order: times in seconds (uPlot's unit) on the
 * gateway's clock, and values. Live points carry the position of their reply,
 * so that the gateway's history, which is as of a position, replaces exactly
 * the live points it already holds.
 */
export class PlotPoints {
  /** Times, seconds since the epoch (a new array after {@linkcode PlotPoints.setHistory}). */
  xs: number[] = [];
  /** Values. */
  ys: number[] = [];
  /** The position of each live point (-1 for the gateway's history). */
  #seqs: number[] = [];
  readonly #max: number;

  /** Empty, keeping at most `max` points. */
  constructor(max: number = MAX_PLOT_POINTS) {
    this.#max = max;
  }

  /** How many points there are. */
  get length(): number {
    return this.xs.length;
  }

  /** Adds a live point (time in ms); a time before the last one is taken as the last (clocks differ slightly). */
  push(ms: number, value: number, seq: number): void {
    const last = this.xs.at(-1);
    this.xs.push(last !== undefined && ms / 1000 < last ? last : ms / 1000);
    this.ys.push(value);
    this.#seqs.push(seq);
    this.#trim();
  }

  /**
   * Puts the gateway's history (times in ms, as of position `seq`) first and
   * keeps the live points after `seq`; earlier ones are in the history already.
   */
  setHistory(times: readonly number[], values: readonly number[], seq: number): void {
    const live = this.#seqs.flatMap((s, i) => s > seq ? [i] : []);
    const xs = [...times.map((t) => t / 1000), ...live.map((i) => this.xs[i])];
    const ys = [...values, ...live.map((i) => this.ys[i])];
    const seqs = [...times.map(() => -1), ...live.map((i) => this.#seqs[i])];
    for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) xs[i] = xs[i - 1];
    this.xs = xs;
    this.ys = ys;
    this.#seqs = seqs;
    this.#trim();
  }

  /** After a gap (positions may restart): every point held counts as history. */
  forgetPositions(): void {
    this.#seqs.fill(-1);
  }

  #trim(): void {
    const extra = this.xs.length - this.#max;
    if (extra <= 0) return;
    this.xs.splice(0, extra);
    this.ys.splice(0, extra);
    this.#seqs.splice(0, extra);
  }
}
