/**
 * `GET /actors/<name>/series?keyword=…`: the recent points of an actor's
 * numeric keywords over HTTP, as the v1 `series` operation gives them. The
 * caller (`api.ts`) has already authorized the request as for `GET /actors/<name>`.
 *
 * @module
 */

import type { ActorState } from "../replies/actor_state.ts";
import type { KeywordSeries } from "../replies/keyword_series.ts";
import { parseSeriesQuery } from "../protocol/v1_series.ts";

/** The path suffix of the endpoint. */
export const SERIES_SUFFIX = "/series";

/** What the endpoint reads. */
export interface SeriesApiContext {
  /** The actors' keywords: an actor it does not know is 404, as for `GET /actors/<name>`. */
  state: ActorState;
  /** The numeric keywords' points; absent, every answer is empty. */
  series?: KeywordSeries;
}

/**
 * Answers `GET /actors/<name>/series` for the actor `name` (decoded):
 * `{"name", "now", "series": {"<keyword>": {"t": [ms…], "v": […]}}}`.
 * Query: `keyword` (1 to 64, repeated or comma-separated; `position[1]` for one
 * element), `since` (ms since the epoch) and `points` (the newest N per series).
 */
export function answerSeriesRequest(context: SeriesApiContext, name: string, url: URL): Response {
  const keywords = url.searchParams.getAll("keyword").flatMap((k) => k.split(",")).filter((k) => k !== "");
  const number = (key: string) => {
    const text = url.searchParams.get(key);
    return text === null || text === "" ? undefined : Number(text);
  };
  const query = parseSeriesQuery({ actor: name, keywords, since: number("since"), points: number("points") });
  if (typeof query === "string") {
    return Response.json({
      // The v1 field names become the query's: keyword (repeated or comma-separated), since, points.
      error: `${query.replaceAll('"keywords"', "keyword").replaceAll('"', "")}; e.g. ${
        SERIES_SUFFIX.slice(1)
      }?keyword=temperature&keyword=position`,
    }, { status: 400 });
  }
  if (context.state.actorJson(name) === undefined) {
    return Response.json({ error: `no reply from an actor named '${name}' has been seen` }, { status: 404 });
  }
  const now = Date.now();
  const json =
    context.series?.seriesJson(name, query.names, { since: query.since, limit: query.points }, now) ??
      "{}";
  return new Response(`{"name":${JSON.stringify(name)},"now":${now},"series":${json}}`, {
    headers: { "content-type": "application/json" },
  });
}
