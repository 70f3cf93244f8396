/**
 * The clu-ws v1 `series` operation: the recent points of an actor's numeric
 * keywords, for plots (docs/protocol.md). Its request, its validation and its
 * answer's encoder, pure and browser-safe, apart from `v1.ts` so that the
 * operation is one module.
 *
 * @module
 */

/** Fixed bounds besides the options. */
export const SERIES_LIMITS = {
  /** Series one actor may hold; beyond, its new numeric keywords are not kept (others' are). */
  perActor: 256,
  /** Array elements taken per keyword (the first ones). */
  elementsPerKeyword: 16,
  /** Longest keyword or actor name kept, in characters. */
  nameLength: 255,
  /** Keywords (or `keyword[i]`) one request may ask for. */
  keywordsPerRequest: 64,
} as const;

/** A series name asked for: a keyword (all its series), or one element of an array keyword. */
export interface SeriesName {
  /** The keyword. */
  keyword: string;
  /** The array element, when one is named (`position[1]`). */
  element?: number;
}

/**
 * Reads `temperature` or `position[1]`.
 *
 * @returns the name, or undefined when it is not a keyword name within the bounds.
 */
export function parseSeriesName(text: string): SeriesName | undefined {
  if (text.length === 0 || text.length > SERIES_LIMITS.nameLength + 4) return undefined;
  const match = /^(.+)\[(\d{1,2})\]$/.exec(text);
  if (match && Number(match[2]) < SERIES_LIMITS.elementsPerKeyword) {
    return { keyword: match[1], element: Number(match[2]) };
  }
  return text.length > SERIES_LIMITS.nameLength ? undefined : { keyword: text };
}

/** `series`: the recent points of some numeric keywords of one actor. */
export interface SeriesRequest {
  /** The operation. */
  "clu-ws": "series";
  /** Echoed in the answer. */
  id?: unknown;
  /** The actor. */
  actor: string;
  /** Keywords (all their series) or array elements (`position[1]`); 1 to 64. */
  keywords: string[];
  /** Only points after this time (ms since the epoch). */
  since?: number;
  /** At most this many points per series, the newest. */
  points?: number;
}

/** The points of one series: times (ms since the epoch) and values, oldest first. */
export interface SeriesPoints {
  /** Times, ms since the epoch (when the gateway received each reply). */
  t: number[];
  /** Values. */
  v: number[];
}

/** `series`: the answer to `series`. */
export interface SeriesFrame {
  /** The frame's kind. */
  "clu-ws": "series";
  /** The request's id. */
  id: unknown;
  /** The position the points are as of: replies after it bring newer ones. */
  seq: number;
  /** The gateway's clock now (ms since the epoch), to line up a client's own clock with the points' times. */
  now: number;
  /** The actor. */
  actor: string;
  /** The series by name (`temperature`, `position[0]`); names without points are left out. */
  series: Record<string, SeriesPoints>;
}

/** A `series` request, validated. */
export interface SeriesQuery {
  /** The actor. */
  actor: string;
  /** The series asked for. */
  names: SeriesName[];
  /** Only points after this time (ms). */
  since?: number;
  /** At most this many points per series. */
  points?: number;
}

/** Most points per series one request may ask for. */
const MAX_POINTS = 100_000;

/**
 * Validates a `series` request's fields (or an HTTP query's, given as the same names).
 *
 * @returns the query, or what is wrong with it.
 */
export function parseSeriesQuery(fields: Record<string, unknown>): SeriesQuery | string {
  const { actor, keywords, since, points } = fields;
  if (typeof actor !== "string" || actor === "" || actor.length > SERIES_LIMITS.nameLength) {
    return `series needs "actor": an actor's name (1 to ${SERIES_LIMITS.nameLength} characters)`;
  }
  if (
    !Array.isArray(keywords) || keywords.length === 0 || keywords.length > SERIES_LIMITS.keywordsPerRequest
  ) {
    return `series needs "keywords": a list of 1 to ${SERIES_LIMITS.keywordsPerRequest} keyword names (or "name[i]" for an array's element)`;
  }
  const names: SeriesName[] = [];
  for (const keyword of keywords) {
    const name = typeof keyword === "string" ? parseSeriesName(keyword) : undefined;
    if (!name) {
      return `"keywords" holds ${
        JSON.stringify(keyword)?.slice(0, 80)
      }: each must be a keyword name of 1 to ${SERIES_LIMITS.nameLength} characters, or "name[i]" with i below ${SERIES_LIMITS.elementsPerKeyword}`;
    }
    names.push(name);
  }
  if (since !== undefined && (typeof since !== "number" || !Number.isFinite(since) || since < 0)) {
    return `"since" must be a time in ms since the epoch`;
  }
  if (
    points !== undefined &&
    (typeof points !== "number" || !Number.isInteger(points) || points < 1 || points > MAX_POINTS)
  ) {
    return `"points" must be a whole number from 1 to ${MAX_POINTS}`;
  }
  return { actor, names, since, points };
}

/**
 * `{"clu-ws": "series", "id": …, "seq": …, "now": …, "actor": …, "series": {…}}`,
 * splicing in the series as the store encoded them.
 */
export function encodeSeries(
  seriesJson: string,
  frame: { id: unknown; seq: number; now: number; actor: string },
): string {
  return `{"clu-ws":"series","id":${
    JSON.stringify(frame.id) ?? "null"
  },"seq":${frame.seq},"now":${frame.now},"actor":${JSON.stringify(frame.actor)},"series":${seriesJson}}`;
}
