/// <reference lib="dom" />
/**
 * The plots panel: numeric keywords (or numeric elements of array keywords)
 * plotted over time, several at once, one small plot each with its unit. A
 * plot starts from the gateway's recent history of the keyword (v1 `series`)
 * and continues live from the replies; it follows the theme. The plots open
 * are kept in the URL (`?plot=actor:keyword`), so a link or a reload opens
 * them again, with their recent past.
 *
 * Drawn by uPlot (bundled, MIT): each plot's card holds its uPlot instance as
 * `uplot` (its `data` is what is drawn) and the colours it was given as
 * `data-line-color`, `data-axis-color` and `data-grid-color`.
 *
 * @module
 */

import uPlot from "uplot";
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import type { CluClient, Frame } from "../client.ts";
import { byId, el } from "./dom.ts";
import {
  MAX_PLOT_POINTS,
  MAX_PLOTS,
  parsePlotParam,
  parseSeriesName,
  type PlotKey,
  plotParam,
  PlotPoints,
  type SeriesName,
  seriesValue,
} from "./plot_data.ts";
import { unitInSchema } from "./plot_units.ts";
import type { Descriptions } from "./descriptions.ts";

const PLOT_HEIGHT = 150;

/** A plot's card, with its uPlot instance for whoever wants to read what is drawn. */
export interface PlotCard extends HTMLElement {
  /** The uPlot instance drawing it now (a new one after a theme change). */
  uplot?: uPlot;
}

interface Plot {
  key: PlotKey;
  name: SeriesName;
  points: PlotPoints;
  unit?: string;
  card: PlotCard;
  canvas: HTMLElement;
  last: HTMLElement;
  unitLabel: HTMLElement;
  chart?: uPlot;
  /** The user zoomed in (dragged across it): live points must not reset the time range; a double-click does. */
  zoomed: boolean;
}

/** Options for {@linkcode createPlots}. */
export interface PlotsOptions {
  /** The client, while there is one. */
  client: () => CluClient | undefined;
  /** Called when the plotted set changes (the actors panel shows which keywords are plotted). */
  onChange: () => void;
  /** A note for the stream. */
  note: (text: string) => void;
  /** The actors' keyword schemas (units), as the gateway learnt them; no units without it. */
  descriptions?: Descriptions;
}

/** The plots panel. */
export interface Plots {
  /** Whether `actor`'s series `series` is plotted. */
  has(actor: string, series: string): boolean;
  /** Plots it, or stops plotting it. */
  toggle(actor: string, series: string): void;
  /** Feeds a reply to the plots of its sender. */
  fromReply(frame: Frame): void;
  /** After a welcome: each plot's recent past from the gateway (and its unit, if not known yet). */
  load(client: CluClient): void;
  /** After a gap, positions may restart: every point held counts as history. */
  forgetPositions(): void;
}

/** The plots panel, opening the plots the URL names. */
export function createPlots(options: PlotsOptions): Plots {
  const area = byId("plots-area");
  const list = byId("plots");
  const plots = new Map<string, Plot>();
  const byActor = new Map<string, Set<Plot>>();
  const dirty = new Set<Plot>();
  let frameRequested = false;
  /** The gateway's clock minus this browser's (ms), from the last `series` answer: live points line up with the history. */
  let clockOffset = 0;
  // A schema that arrives later (the gateway was still asking the actor) brings the units then.
  options.descriptions?.onChange((actor) => {
    const schema = options.descriptions?.get(actor)?.schema;
    for (const plot of plots.values()) {
      if (plot.key.actor === actor) showUnit(plot, unitInSchema(schema, plot.name));
    }
  });

  const style = document.createElement("style");
  style.textContent = uplotCss;
  document.head.append(style);

  function colors(): { line: string; axis: string; grid: string } {
    const css = getComputedStyle(document.documentElement);
    const read = (name: string) => css.getPropertyValue(name).trim();
    return { line: read("--accent"), axis: read("--muted"), grid: read("--line") };
  }

  function draw(plot: Plot): void {
    plot.chart?.destroy();
    const { line, axis, grid } = colors();
    const font = `11px ${getComputedStyle(document.body).getPropertyValue("--mono") || "monospace"}`;
    const axisStyle = {
      stroke: axis,
      font,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
    };
    plot.chart = new uPlot(
      {
        width: Math.max(200, plot.canvas.clientWidth || 320),
        height: PLOT_HEIGHT,
        // The stream's times are UTC: so are the plots'.
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
        legend: { show: false },
        cursor: { drag: { x: true, y: false } },
        hooks: {
          setScale: [(u, key) => {
            if (key === "x") plot.zoomed = isZoomed(u);
          }],
        },
        scales: { x: { time: true } },
        axes: [
          // Room for "HH:MM:SS" between ticks.
          {
            ...axisStyle,
            space: 80,
            values: (u: uPlot, splits: number[]) =>
              utcTicks(splits, (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0)),
          },
          { ...axisStyle, size: 56, label: plot.unit, labelFont: font, labelSize: 16 },
        ],
        series: [{}, { label: plot.key.series, stroke: line, width: 1.5, points: { size: 4, fill: line } }],
      },
      [plot.points.xs, plot.points.ys],
      plot.canvas,
    );
    plot.card.uplot = plot.chart;
    Object.assign(plot.card.dataset, { lineColor: line, axisColor: axis, gridColor: grid });
  }

  function schedule(plot: Plot): void {
    dirty.add(plot);
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      for (const each of dirty) {
        each.chart?.setData([each.points.xs, each.points.ys], !each.zoomed);
        const value = each.points.ys.at(-1);
        each.last.textContent = value === undefined ? "no points yet" : String(value);
        each.card.dataset.points = String(each.points.length);
      }
      dirty.clear();
    });
  }

  function showUnit(plot: Plot, unit: string | undefined): void {
    if (!unit || unit === plot.unit || plots.get(plotParam(plot.key)) !== plot) return;
    plot.unit = unit;
    plot.unitLabel.textContent = `[${unit}]`;
    plot.card.dataset.unit = unit;
    draw(plot);
  }

  async function loadHistory(plot: Plot, client: CluClient): Promise<void> {
    showUnit(plot, unitInSchema(options.descriptions?.get(plot.key.actor)?.schema, plot.name));
    try {
      const answer = await client.series(plot.key.actor, [plot.key.series], { points: MAX_PLOT_POINTS });
      if (Number.isFinite(answer.now)) clockOffset = answer.now - Date.now();
      const points = answer.series[plot.key.series];
      if (plots.get(plotParam(plot.key)) !== plot) return; // closed (or closed and opened again) meanwhile
      plot.points.setHistory(points?.t ?? [], points?.v ?? [], answer.seq);
      plot.card.dataset.loaded = "true";
      schedule(plot);
    } catch {
      // Disconnected (the next welcome asks again), or a gateway without `series`: live points only.
      plot.card.dataset.loaded = "live-only";
    }
  }

  function open(key: PlotKey, name: SeriesName, loadNow = true): void {
    const card = el("figure", "plot") as PlotCard;
    Object.assign(card.dataset, { actor: key.actor, series: key.series, points: "0" });
    const caption = el("figcaption");
    const title = el("span", "plot-title", `${key.actor} · ${key.series}`);
    title.title = title.textContent!;
    const unitLabel = el("span", "plot-unit");
    const last = el("span", "plot-last", "no points yet");
    const close = el("button", "plot-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", `stop plotting ${key.series} of ${key.actor}`);
    caption.append(title, unitLabel, last, close);
    const canvas = el("div", "plot-canvas");
    card.append(caption, canvas);
    list.append(card);
    area.hidden = false;
    const plot: Plot = { key, name, points: new PlotPoints(), card, canvas, last, unitLabel, zoomed: false };
    plots.set(plotParam(key), plot);
    let mine = byActor.get(key.actor);
    if (!mine) byActor.set(key.actor, mine = new Set());
    mine.add(plot);
    close.addEventListener("click", () => toggle(key.actor, key.series));
    draw(plot);
    resizer.observe(canvas);
    const client = loadNow ? options.client() : undefined;
    if (client?.welcome) loadHistory(plot, client);
  }

  function closePlot(plot: Plot): void {
    plots.delete(plotParam(plot.key));
    byActor.get(plot.key.actor)?.delete(plot);
    if (byActor.get(plot.key.actor)?.size === 0) byActor.delete(plot.key.actor);
    dirty.delete(plot);
    resizer.unobserve(plot.canvas);
    plot.chart?.destroy();
    plot.card.remove();
    area.hidden = plots.size === 0;
  }

  function toggle(actor: string, series: string): void {
    const key = { actor, series };
    const known = plots.get(plotParam(key));
    const name = parseSeriesName(series);
    if (known) closePlot(known);
    else if (!name) return;
    else if (plots.size >= MAX_PLOTS) {
      options.note(`At most ${MAX_PLOTS} plots at once: close one to plot ${series} of ${actor}.`);
      return;
    } else open(key, name);
    keepInUrl();
    options.onChange();
  }

  function keepInUrl(): void {
    const params = new URLSearchParams(location.search);
    params.delete("plot");
    for (const plot of plots.values()) params.append("plot", plotParam(plot.key));
    const query = params.toString();
    history.replaceState(
      history.state,
      "",
      `${location.pathname}${query ? `?${query}` : ""}${location.hash}`,
    );
  }

  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      for (const plot of plots.values()) {
        if (plot.canvas === entry.target && plot.chart) {
          plot.chart.setSize({ width: Math.max(200, entry.contentRect.width), height: PLOT_HEIGHT });
        }
      }
    }
  });
  // Night mode changes the page's colours: redraw every plot with the new ones.
  new MutationObserver(() => {
    for (const plot of plots.values()) draw(plot);
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

  for (const text of new URLSearchParams(location.search).getAll("plot").slice(0, MAX_PLOTS)) {
    const key = parsePlotParam(text);
    const name = key && parseSeriesName(key.series);
    // The connection is not made yet: its welcome loads these.
    if (key && name && !plots.has(plotParam(key))) open(key, name, false);
  }

  return {
    has: (actor, series) => plots.has(plotParam({ actor, series })),
    toggle,
    fromReply(frame) {
      const sender = frame.headers.sender;
      const mine = typeof sender === "string" ? byActor.get(sender) : undefined;
      if (!mine || frame.seq === undefined) return;
      const now = Date.now();
      for (const plot of mine) {
        const value = seriesValue(frame.body, plot.name);
        if (value === undefined) continue;
        plot.points.push(now + clockOffset, value, frame.seq);
        schedule(plot);
      }
    },
    load(client) {
      for (const plot of plots.values()) loadHistory(plot, client);
    },
    forgetPositions() {
      for (const plot of plots.values()) plot.points.forgetPositions();
    },
  };
}

/**
 * Time ticks in UTC on a 24-hour clock, like the stream's: `HH:MM` when the
 * axis spans five minutes and more, `HH:MM:SS` over seconds, `SS.mmm` within
 * three seconds (`span`, in seconds).
 */
function utcTicks(splits: number[], span: number): string[] {
  const [start, end] = span >= 300 ? [11, 16] : span >= 3 ? [11, 19] : [17, 23];
  return splits.map((s) => new Date(s * 1000).toISOString().slice(start, end));
}

/** Whether the time axis shows less than all the points (the user zoomed in). */
function isZoomed(u: uPlot): boolean {
  const xs = u.data[0];
  const { min, max } = u.scales.x;
  if (xs.length < 2 || min === undefined || max === undefined) return false;
  return min > xs[0] || max < xs[xs.length - 1];
}
