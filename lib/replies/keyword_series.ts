/**
 * The recent history of every numeric keyword, for plots: for each actor, each
 * keyword whose value is a number, and each numeric element of a keyword whose
 * value is an array (`position: [az, alt]` makes `position[0]` and
 * `position[1]`), the last points as (time, value) pairs.
 *
 * Bounded three ways, so that no actor, however hostile, grows it past
 * `maxSeries × maxPoints × 16` bytes of points: points per series (the oldest
 * go first) and their age, the number of series in all (when full, the series
 * updated the longest ago makes room) and per actor ({@linkcode SERIES_LIMITS}),
 * and the array elements taken per keyword. Each series is a ring of
 * interleaved float64 (time in ms, value) in one `Float64Array` that starts
 * small and doubles up to `maxPoints`, so keywords seen once cost little and a
 * point costs no allocation once its ring has grown.
 *
 * Fed from the reply path with the body already parsed for the actors' state
 * (`replies.ts`); nothing is parsed again.
 *
 * @module
 */

import { isFailedRouting } from "../protocol/clu.ts";
import { SERIES_LIMITS, type SeriesName } from "../protocol/v1_series.ts";

export { parseSeriesName, SERIES_LIMITS, type SeriesName } from "../protocol/v1_series.ts";

/** Bytes a point takes: its time and its value, two float64. */
export const BYTES_PER_POINT = 16;

/** A ring's first capacity, in points; it doubles as it fills, up to `maxPoints`. */
const INITIAL_POINTS = 16;

/** Options for {@linkcode KeywordSeries}. */
export interface KeywordSeriesOptions {
  /** Points kept per series (0 keeps none). */
  maxPoints: number;
  /** Seconds a point is kept. */
  maxAgeSeconds: number;
  /** Series kept in all (0 keeps none). */
  maxSeries: number;
}

/** One series: a ring of (time ms, value) pairs. */
class Ring {
  /** Updates of all series so far: the order of {@linkcode Ring.last}. */
  static updates = 0;
  /** Interleaved: time at 2i, value at 2i + 1. */
  data = new Float64Array(2 * INITIAL_POINTS);
  /** Index of the oldest point. */
  head = 0;
  /** Points held. */
  length = 0;
  /** When it was last updated, in updates of any series (a clock has ties within a millisecond). */
  last = 0;

  constructor(readonly actor: string, readonly keyword: string, readonly element: number) {}

  push(at: number, value: number, maxPoints: number, oldest: number): void {
    this.last = ++Ring.updates;
    this.dropBefore(oldest);
    let capacity = this.data.length / 2;
    if (this.length === capacity && capacity < maxPoints) {
      const grown = new Float64Array(2 * Math.min(capacity * 2, maxPoints));
      for (let i = 0; i < this.length; i++) {
        const from = 2 * ((this.head + i) % capacity);
        grown[2 * i] = this.data[from];
        grown[2 * i + 1] = this.data[from + 1];
      }
      this.data = grown;
      this.head = 0;
      capacity = grown.length / 2;
    }
    if (this.length === capacity) {
      // Full at maxPoints: the oldest point goes.
      this.head = (this.head + 1) % capacity;
      this.length--;
    }
    const slot = 2 * ((this.head + this.length) % capacity);
    this.data[slot] = at;
    this.data[slot + 1] = value;
    this.length++;
  }

  /** Forgets the points older than `oldest` (ms). */
  dropBefore(oldest: number): void {
    const capacity = this.data.length / 2;
    while (this.length > 0 && this.data[2 * this.head] < oldest) {
      this.head = (this.head + 1) % capacity;
      this.length--;
    }
  }

  /** The points at or after `since` (ms), as JSON `{"t":[…],"v":[…]}`, at most the `limit` newest. */
  json(since: number, limit: number): string {
    const capacity = this.data.length / 2;
    let first = 0;
    while (first < this.length && this.data[2 * ((this.head + first) % capacity)] < since) first++;
    first = Math.max(first, this.length - limit);
    const times: number[] = [];
    const values: number[] = [];
    for (let i = first; i < this.length; i++) {
      const slot = 2 * ((this.head + i) % capacity);
      times.push(this.data[slot]);
      values.push(this.data[slot + 1]);
    }
    return `{"t":[${times.join(",")}],"v":[${values.join(",")}]}`;
  }
}

/** One keyword's series: its number, or the numeric elements of its array. */
interface KeywordEntry {
  scalar?: Ring;
  elements?: Array<Ring | undefined>;
}

interface ActorEntry {
  keywords: Map<string, KeywordEntry>;
  series: number;
}

/** The store. */
export class KeywordSeries {
  readonly #actors = new Map<string, ActorEntry>();
  readonly #maxPoints: number;
  readonly #maxAgeMs: number;
  readonly #maxSeries: number;
  #series = 0;

  /** An empty store within these bounds. */
  constructor(options: KeywordSeriesOptions) {
    this.#maxPoints = Math.max(0, Math.floor(options.maxPoints));
    this.#maxAgeMs = Math.max(0, options.maxAgeSeconds) * 1000;
    this.#maxSeries = this.#maxPoints === 0 ? 0 : Math.max(0, Math.floor(options.maxSeries));
  }

  /** Series held now. */
  get size(): number {
    return this.#series;
  }

  /**
   * Records the numbers of a reply's body (an object): each top-level number,
   * and the first numeric elements of each top-level array, at `at` (ms). Other
   * values, and failed-routing replies (as the actors' state), are left out.
   */
  record(sender: string, code: string, body: unknown, at: number = Date.now()): void {
    if (this.#maxSeries === 0 || body === null || typeof body !== "object" || Array.isArray(body)) return;
    if (!sender || sender.length > SERIES_LIMITS.nameLength || isFailedRouting(sender, code, body)) return;
    const fields = body as Record<string, unknown>;
    const oldest = at - this.#maxAgeMs;
    for (const key in fields) {
      const value = fields[key];
      if (typeof value === "number") {
        if (Number.isFinite(value)) this.#ring(sender, key, -1)?.push(at, value, this.#maxPoints, oldest);
      } else if (Array.isArray(value)) {
        const count = Math.min(value.length, SERIES_LIMITS.elementsPerKeyword);
        for (let i = 0; i < count; i++) {
          const element = value[i];
          if (typeof element !== "number" || !Number.isFinite(element)) continue;
          this.#ring(sender, key, i)?.push(at, element, this.#maxPoints, oldest);
        }
      }
    }
  }

  /**
   * The points of `names` for `actor` newer than `since` (ms; the age bound
   * applies anyway), at most `limit` per series, as a JSON object text
   * `{"temperature":{"t":[ms…],"v":[…]},"position[0]":…}`: a keyword names
   * all its series, `position[1]` one element. Names with no series are left out,
   * and an answer holds at most 64 series (the first named), so that its size
   * stays within 64 × `maxPoints` points.
   */
  seriesJson(
    actor: string,
    names: readonly SeriesName[],
    options: { since?: number; limit?: number } = {},
    now: number = Date.now(),
  ): string {
    const record = this.#actors.get(actor);
    if (!record) return "{}";
    const since = Math.max(options.since ?? 0, now - this.#maxAgeMs);
    const limit = Math.max(0, options.limit ?? this.#maxPoints);
    const parts = new Map<string, string>();
    const add = (name: string, ring: Ring | undefined) => {
      if (!ring || parts.has(name) || parts.size >= SERIES_LIMITS.keywordsPerRequest) return;
      parts.set(name, `${JSON.stringify(name)}:${ring.json(since, limit)}`);
    };
    for (const { keyword, element } of names) {
      const entry = record.keywords.get(keyword);
      if (!entry) continue;
      if (element === undefined) {
        add(keyword, entry.scalar);
        entry.elements?.forEach((ring, i) => add(`${keyword}[${i}]`, ring));
      } else {
        add(`${keyword}[${element}]`, entry.elements?.[element]);
      }
    }
    return `{${[...parts.values()].join(",")}}`;
  }

  /** The series names held for `actor` (`temperature`, `position[0]`, …), sorted. */
  names(actor: string): string[] {
    const record = this.#actors.get(actor);
    if (!record) return [];
    const names: string[] = [];
    for (const [keyword, entry] of record.keywords) {
      if (entry.scalar) names.push(keyword);
      entry.elements?.forEach((ring, i) => ring && names.push(`${keyword}[${i}]`));
    }
    return names.sort();
  }

  /**
   * The series of `keyword` (`element` -1: its number, else that array element), made if the bounds allow:
   * not when the actor holds its share or the name is too long; when all are taken, the stalest goes.
   */
  #ring(sender: string, keyword: string, element: number): Ring | undefined {
    let actor = this.#actors.get(sender);
    let entry = actor?.keywords.get(keyword);
    const existing = element < 0 ? entry?.scalar : entry?.elements?.[element];
    if (existing) return existing;
    if (keyword.length > SERIES_LIMITS.nameLength || (actor && actor.series >= SERIES_LIMITS.perActor)) {
      return undefined;
    }
    if (this.#series >= this.#maxSeries) {
      // The stalest may be this actor's or this keyword's last series: look them up again after.
      this.#evictStalest();
      actor = this.#actors.get(sender);
      entry = actor?.keywords.get(keyword);
    }
    if (!actor) {
      actor = { keywords: new Map(), series: 0 };
      this.#actors.set(sender, actor);
    }
    if (!entry) {
      entry = {};
      actor.keywords.set(keyword, entry);
    }
    const ring = new Ring(sender, keyword, element);
    if (element < 0) entry.scalar = ring;
    else (entry.elements ??= [])[element] = ring;
    actor.series++;
    this.#series++;
    return ring;
  }

  /**
   * Forgets the series updated the longest ago: the stalest sixteenth of the
   * store (at least one), so that the scan and sort it takes happen once per
   * that many new series, not for each (a flood of new keywords stays cheap).
   */
  #evictStalest(): void {
    const rings: Ring[] = [];
    for (const actor of this.#actors.values()) {
      for (const entry of actor.keywords.values()) {
        if (entry.scalar) rings.push(entry.scalar);
        for (const ring of entry.elements ?? []) if (ring) rings.push(ring);
      }
    }
    rings.sort((a, b) => a.last - b.last);
    for (const stalest of rings.slice(0, Math.max(1, Math.floor(this.#maxSeries / 16)))) {
      const actor = this.#actors.get(stalest.actor)!;
      const entry = actor.keywords.get(stalest.keyword)!;
      if (stalest.element < 0) entry.scalar = undefined;
      else entry.elements![stalest.element] = undefined;
      actor.series--;
      this.#series--;
      if (!entry.scalar && !entry.elements?.some((ring) => ring)) actor.keywords.delete(stalest.keyword);
      if (actor.keywords.size === 0) this.#actors.delete(stalest.actor);
    }
  }
}
