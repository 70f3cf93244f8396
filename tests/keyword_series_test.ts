// The keyword series store (lib/replies/keyword_series.ts) and the `series` request's validation on their
// own: what is kept (numbers, numeric array elements), what is not, and every bound.

import assert from "node:assert/strict";
import { KeywordSeries, parseSeriesName, SERIES_LIMITS } from "../lib/replies/keyword_series.ts";
import { parseSeriesQuery } from "../lib/protocol/v1_series.ts";
import { failedRoutingText } from "../lib/protocol/clu.ts";

type Points = Record<string, { t: number[]; v: number[] }>;

function read(store: KeywordSeries, actor: string, keywords: string[], now: number, limit?: number): Points {
  const names = keywords.map((k) => parseSeriesName(k)!);
  return JSON.parse(store.seriesJson(actor, names, { limit }, now));
}

const big = { maxPoints: 1000, maxAgeSeconds: 3600, maxSeries: 1000 };

Deno.test("keyword series: numbers and numeric array elements are kept, other values are not", () => {
  const store = new KeywordSeries(big);
  store.record("dome", "i", {
    temperature: 12.5,
    position: [180, 45.5, "parked", 3],
    status: "open",
    flag: true,
    nothing: null,
    nested: { x: 1 },
    grid: [[1, 2]],
    text: "12",
  }, 1000);
  store.record("dome", "i", { temperature: -3, position: [181, 46] }, 2000);
  assert.deepEqual(store.names("dome"), ["position[0]", "position[1]", "position[3]", "temperature"]);
  const points = read(store, "dome", ["temperature", "position"], 2000);
  assert.deepEqual(points.temperature, { t: [1000, 2000], v: [12.5, -3] });
  assert.deepEqual(points["position[0]"], { t: [1000, 2000], v: [180, 181] });
  assert.deepEqual(points["position[1]"], { t: [1000, 2000], v: [45.5, 46] });
  assert.deepEqual(points["position[3]"], { t: [1000], v: [3] });
  assert.deepEqual(Object.keys(read(store, "dome", ["position[1]"], 2000)), ["position[1]"], "one element");
  assert.deepEqual(read(store, "dome", ["status", "absent"], 2000), {}, "non-numeric and unknown: nothing");
  assert.deepEqual(read(store, "nobody", ["temperature"], 2000), {});
  assert.equal(store.size, 4);
});

Deno.test("keyword series: bodies that are not objects and failed-routing replies make nothing", () => {
  const store = new KeywordSeries(big);
  store.record("a", "i", [1, 2, 3], 1);
  store.record("a", "i", 42, 1);
  store.record("a", "i", null, 1);
  store.record("", "i", { x: 1 }, 1);
  store.record("ghost", "f", { error: failedRoutingText("ghost") }, 1);
  assert.equal(store.size, 0);
});

Deno.test("keyword series: points per series are bounded; the oldest go first, as the ring grows", () => {
  const store = new KeywordSeries({ ...big, maxPoints: 50 });
  for (let i = 0; i < 130; i++) store.record("a", "i", { x: i }, 1000 + i);
  const { x } = read(store, "a", ["x"], 1200);
  assert.equal(x.v.length, 50);
  assert.deepEqual(x.v, Array.from({ length: 50 }, (_, i) => 80 + i), "the 50 newest, in order");
  assert.deepEqual(read(store, "a", ["x"], 1200, 3).x.v, [127, 128, 129], "points: the newest N");
});

Deno.test("keyword series: points older than the age are dropped, on write and on read", () => {
  const store = new KeywordSeries({ ...big, maxAgeSeconds: 10 });
  store.record("a", "i", { x: 1, y: 1 }, 0);
  store.record("a", "i", { x: 2 }, 5_000);
  store.record("a", "i", { x: 3 }, 12_000);
  assert.deepEqual(read(store, "a", ["x"], 12_000).x.v, [2, 3], "0 is older than 10 s at 12 s");
  assert.deepEqual(read(store, "a", ["y"], 12_000).y.v, [], "y was not written since: dropped on read");
  assert.deepEqual(read(store, "a", ["x"], 20_000).x.v, [3]);
});

Deno.test("keyword series: the number of series is bounded; the one updated the longest ago makes room", () => {
  const store = new KeywordSeries({ ...big, maxSeries: 3 });
  store.record("a", "i", { x: 1 }, 1);
  store.record("b", "i", { y: 1 }, 2);
  store.record("c", "i", { z: 1 }, 3);
  store.record("a", "i", { x: 2 }, 4); // a.x is fresh again: b.y is the stalest
  store.record("d", "i", { w: 1 }, 5);
  assert.equal(store.size, 3);
  assert.deepEqual(store.names("b"), [], "b's series went");
  assert.deepEqual(store.names("a"), ["x"]);
  // The stalest may be the very keyword gaining a series: the new one still lands.
  const one = new KeywordSeries({ ...big, maxSeries: 1 });
  one.record("a", "i", { p: [1] }, 1);
  one.record("a", "i", { p: [1, 2] }, 2);
  assert.equal(one.size, 1);
  assert.deepEqual(
    read(one, "a", ["p"], 2),
    { "p[1]": { t: [2], v: [2] } },
    "p[1] took the place of p[0], its own keyword's other series",
  );
});

Deno.test("keyword series: a hostile actor cannot take more than its share, nor huge arrays, nor long names", () => {
  const store = new KeywordSeries({ ...big, maxSeries: 10_000 });
  store.record("good", "i", { temperature: 1 }, 1);
  const flood: Record<string, number> = {};
  for (let i = 0; i < 5000; i++) flood[`k${i}`] = i;
  store.record("evil", "i", flood, 2);
  store.record("evil", "i", { huge: Array.from({ length: 100_000 }, (_, i) => i) }, 3);
  store.record("evil2", "i", { huge: Array.from({ length: 100_000 }, (_, i) => i) }, 3);
  store.record("evil3", "i", { ["k".repeat(10_000)]: 1 }, 4);
  store.record("e".repeat(1000), "i", { x: 1 }, 4);
  assert.equal(store.names("evil").length, SERIES_LIMITS.perActor);
  assert.equal(store.names("evil2").length, SERIES_LIMITS.elementsPerKeyword);
  assert.deepEqual(store.names("evil3"), []);
  assert.equal(store.size, 1 + SERIES_LIMITS.perActor + SERIES_LIMITS.elementsPerKeyword);
  assert.deepEqual(store.names("good"), ["temperature"]);
});

Deno.test("keyword series: 0 points or 0 series keeps nothing", () => {
  for (const options of [{ ...big, maxPoints: 0 }, { ...big, maxSeries: 0 }]) {
    const store = new KeywordSeries(options);
    store.record("a", "i", { x: 1 }, 1);
    assert.equal(store.size, 0);
  }
});

Deno.test("series request: hostile or malformed fields get an error that says what to send", () => {
  const ok = parseSeriesQuery({ actor: "a", keywords: ["x", "p[2]"], since: 5, points: 10 });
  assert.deepEqual(ok, {
    actor: "a",
    names: [{ keyword: "x" }, { keyword: "p", element: 2 }],
    since: 5,
    points: 10,
  });
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ keywords: ["x"] }, /"actor"/],
    [{ actor: "a".repeat(300), keywords: ["x"] }, /"actor"/],
    [{ actor: "a" }, /"keywords": a list of 1 to 64/],
    [{ actor: "a", keywords: [] }, /"keywords"/],
    [{ actor: "a", keywords: Array(65).fill("x") }, /1 to 64/],
    [{ actor: "a", keywords: [3] }, /"keywords" holds 3/],
    [{ actor: "a", keywords: ["x".repeat(5000)] }, /1 to 255 characters/],
    [{ actor: "a", keywords: ["x"], since: -1 }, /"since"/],
    [{ actor: "a", keywords: ["x"], points: 1e9 }, /"points"/],
    [{ actor: "a", keywords: ["x"], points: 1.5 }, /"points"/],
  ];
  for (const [fields, pattern] of bad) {
    const problem = parseSeriesQuery(fields);
    assert.equal(typeof problem, "string", JSON.stringify(fields).slice(0, 60));
    assert.match(problem as string, pattern);
    assert.ok((problem as string).length < 400, "the error stays short whatever was sent");
  }
  assert.deepEqual(parseSeriesName("p[16]"), { keyword: "p[16]" }, "beyond the elements kept: a plain name");
});

Deno.test("keyword series: when full, the stalest sixteenth goes at once, so a flood of new series stays cheap", () => {
  const store = new KeywordSeries({ ...big, maxSeries: 32 });
  for (let i = 0; i < 32; i++) store.record("a", "i", { [`k${i}`]: i }, i);
  store.record("b", "i", { fresh: 1 }, 100);
  assert.equal(store.size, 31, "two (32 / 16) made room for one");
  assert.deepEqual(store.names("a").slice(0, 3), ["k10", "k11", "k12"], "k0 and k1, the stalest, went");
  assert.ok(!store.names("a").includes("k0") && !store.names("a").includes("k1"));

  // Senders that rotate names, each with as many new keywords as an actor may have: the default store.
  const flood = new KeywordSeries(big);
  const body: Record<string, number> = {};
  for (let k = 0; k < 256; k++) body[`k${k}`] = k;
  const started = performance.now();
  for (let sender = 0; sender < 400; sender++) flood.record(`evil${sender}`, "i", body, sender);
  const perSeries = (performance.now() - started) * 1000 / (400 * 256);
  assert.ok(flood.size <= 1000);
  console.log(`a flood of 102,400 new series into a full store: ${perSeries.toFixed(2)} µs per series`);
  assert.ok(perSeries < 50, `${perSeries} µs per new series`);
});

Deno.test("keyword series: an answer holds at most 64 series, however many the names cover", () => {
  const store = new KeywordSeries(big);
  const body: Record<string, number[]> = {};
  for (let k = 0; k < 8; k++) body[`a${k}`] = Array.from({ length: 16 }, (_, i) => i);
  store.record("x", "i", body, 1);
  assert.equal(store.size, 128);
  const names = Object.keys(body).map((k) => parseSeriesName(k)!);
  const answer = JSON.parse(store.seriesJson("x", names, {}, 1));
  assert.equal(Object.keys(answer).length, 64);
  assert.equal(Object.keys(answer)[0], "a0[0]", "the first named first");
});
