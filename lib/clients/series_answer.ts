/**
 * The answer to a clu-ws v1 `series` request: the recent points of an actor's
 * numeric keywords, read from the gateway's keyword series.
 *
 * @module
 */

import type { KeywordSeries } from "../replies/keyword_series.ts";
import { encodeSeries, type SeriesQuery } from "../protocol/v1_series.ts";
import type { RequestId } from "../protocol/v1.ts";

/** What a `series` answer reads. */
export interface SeriesContext {
  /** The store; absent, every answer is empty. */
  series?: KeywordSeries;
  /** The newest reply's position: the points are as of it. */
  latestSeq(): number;
}

/** The `series` frame answering `query` (an unknown actor or keyword gets no series, not an error). */
export function answerSeries(context: SeriesContext, query: SeriesQuery & { id: RequestId }): string {
  const now = Date.now();
  const json =
    context.series?.seriesJson(query.actor, query.names, { since: query.since, limit: query.points }, now) ??
      "{}";
  return encodeSeries(json, { id: query.id, seq: context.latestSeq(), now, actor: query.actor });
}
