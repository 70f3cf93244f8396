/// <reference lib="dom" />
/**
 * The plot toggles next to numeric keywords in the actors panel: one button
 * for a number, one per numeric element for an array (`[0]`, `[1]`, …),
 * pressed while that series is plotted.
 *
 * @module
 */

import { el } from "./dom.ts";
import { numericSeriesNames } from "./plot_data.ts";

/** What the toggles need of the plots panel. */
export interface PlotToggles {
  /** Whether the series is plotted. */
  has(actor: string, series: string): boolean;
  /** Plots it, or stops plotting it. */
  toggle(actor: string, series: string): void;
}

/**
 * Fills `cell` (a span in the keyword's name cell) with the toggles for `keyword`'s `value`, only when the series
 * it makes changed (values change far more often than their shape).
 */
export function fillPlotCell(
  cell: HTMLElement,
  actor: string,
  keyword: string,
  value: unknown,
  plots: PlotToggles,
): void {
  const names = numericSeriesNames(keyword, value);
  const shape = names.join("\n");
  if (cell.dataset.series === shape) return;
  cell.dataset.series = shape;
  cell.replaceChildren(...names.map((series) => {
    const button = el("button", "plot-toggle", series === keyword ? "plot" : series.slice(keyword.length));
    button.type = "button";
    Object.assign(button.dataset, { actor, series });
    button.setAttribute("aria-label", `plot ${series} of ${actor}`);
    button.setAttribute("aria-pressed", String(plots.has(actor, series)));
    button.addEventListener("click", () => plots.toggle(actor, series));
    return button;
  }));
}

/** Sets every toggle under `root` to whether its series is plotted. */
export function refreshPlotToggles(root: ParentNode, plots: PlotToggles): void {
  for (const button of root.querySelectorAll<HTMLButtonElement>("button.plot-toggle")) {
    const { actor, series } = button.dataset;
    button.setAttribute("aria-pressed", String(plots.has(actor!, series!)));
  }
}
