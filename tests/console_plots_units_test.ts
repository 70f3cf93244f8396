// The plots' pure parts on their own, without a browser (web/console/plot_data.ts, plot_units.ts): which
// series a value makes, reading a value from a body, the URL form, joining the gateway's history with live
// points, and the unit found in a keyword schema. console_plots_test.ts drives the same code in Chromium.

import assert from "node:assert/strict";
import {
  numericSeriesNames,
  parsePlotParam,
  parseSeriesName,
  plotParam,
  PlotPoints,
  seriesValue,
} from "../web/console/plot_data.ts";
import { unitInSchema } from "../web/console/plot_units.ts";

Deno.test("plots: a number makes one series, an array one per numeric element (the first 16), others none", () => {
  assert.deepEqual(numericSeriesNames("t", 1.5), ["t"]);
  assert.deepEqual(numericSeriesNames("p", [1, "a", 3, null]), ["p[0]", "p[2]"]);
  assert.equal(numericSeriesNames("p", Array(100).fill(1)).length, 16);
  for (const value of ["1", true, null, { x: 1 }, [[1]], Infinity]) {
    assert.deepEqual(numericSeriesNames("k", value), []);
  }
});

Deno.test("plots: a series' value is read from a body only when it is a finite number there", () => {
  assert.equal(seriesValue({ t: 3 }, parseSeriesName("t")!), 3);
  assert.equal(seriesValue({ p: [1, 2] }, parseSeriesName("p[1]")!), 2);
  assert.equal(seriesValue({ p: [1, 2] }, parseSeriesName("p[5]")!), undefined);
  assert.equal(seriesValue({ p: 7 }, parseSeriesName("p[0]")!), undefined);
  assert.equal(seriesValue({ t: "3" }, parseSeriesName("t")!), undefined);
  assert.equal(seriesValue({}, parseSeriesName("toString")!), undefined, "not inherited properties");
  assert.equal(seriesValue([3], parseSeriesName("0")!), undefined);
});

Deno.test("plots: the URL form splits at the first colon and refuses what is not a series", () => {
  assert.deepEqual(parsePlotParam("lvm.ecp:position[1]"), { actor: "lvm.ecp", series: "position[1]" });
  assert.deepEqual(parsePlotParam("a:b:c"), { actor: "a", series: "b:c" });
  assert.equal(plotParam({ actor: "a", series: "b" }), "a:b");
  for (const bad of ["", "nocolon", ":x", "a:", `a:${"k".repeat(300)}`]) {
    assert.equal(parsePlotParam(bad), undefined, bad);
  }
});

Deno.test("plots: the gateway's history replaces the live points it holds; later live points stay, in order", () => {
  const points = new PlotPoints(100);
  points.push(5_000, 50, 5); // live, received before the history's answer
  points.push(6_000, 60, 6);
  points.setHistory([1_000, 2_000, 5_000], [10, 20, 50], 5); // the history is as of seq 5
  assert.deepEqual(points.ys, [10, 20, 50, 60]);
  assert.deepEqual(points.xs, [1, 2, 5, 6], "seconds");
  points.push(5_500, 55, 7); // a clock slightly behind: not before the last point
  assert.deepEqual(points.xs.at(-1), 6);
  points.forgetPositions(); // a gap: a new epoch's history replaces everything held
  points.setHistory([9_000], [90], 1);
  assert.deepEqual(points.ys, [90]);
  const bounded = new PlotPoints(3);
  for (let i = 0; i < 10; i++) bounded.push(i * 1000, i, i);
  assert.deepEqual(bounded.ys, [7, 8, 9], "the newest are kept");
});

Deno.test("plots: the unit comes from the keyword schema (an object or CLU's JSON text); a bad one means none", () => {
  const schema = {
    properties: {
      temperature: { type: "number", unit: "degC" },
      position: { type: "array", items: { type: "number", unit: "deg" } },
      pair: { type: "array", items: [{ unit: "s" }, { unit: "m" }] },
      both: { type: "array", unit: "mm", items: { unit: "ignored" } },
      plain: { type: "number" },
    },
  };
  assert.equal(unitInSchema(schema, parseSeriesName("temperature")!), "degC");
  assert.equal(
    unitInSchema(JSON.stringify(schema), parseSeriesName("temperature")!),
    "degC",
    "as CLU sends it",
  );
  assert.equal(unitInSchema(schema, parseSeriesName("position[1]")!), "deg");
  assert.equal(unitInSchema(schema, parseSeriesName("pair[1]")!), "m");
  assert.equal(unitInSchema(schema, parseSeriesName("both[0]")!), "mm");
  assert.equal(unitInSchema(schema, parseSeriesName("plain")!), undefined);
  assert.equal(unitInSchema("{not json", parseSeriesName("x")!), undefined);
  assert.equal(
    unitInSchema({ properties: { x: { unit: "u".repeat(500) } } }, parseSeriesName("x")!)?.length,
    32,
  );
});
