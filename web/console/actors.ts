/// <reference lib="dom" />
/**
 * The actors panel: every actor heard on the exchange, sorted by name, with
 * when it was last heard and its latest keywords, which flash when they change,
 * each with its description and unit where the actor's keyword schema has
 * them. It starts from the gateway's state on each welcome and follows live
 * replies.
 *
 * @module
 */

import { isFailedRouting } from "../../lib/protocol/clu.ts";
import type { CluClient, Frame } from "../client.ts";
import type { Descriptions } from "./descriptions.ts";
import { byId, el } from "./dom.ts";
import { keywordInfo } from "./keyword_schema.ts";
import { ago, formatValue, kindOf, meaningOf } from "./format.ts";
import { fillPlotCell, type PlotToggles } from "./plot_buttons.ts";
import { FLASH_ANIMATION_ID } from "./theme.ts";

interface KeywordView {
  value: unknown;
  seen: number;
  code: string;
  /** Position it came from, so an older snapshot never overwrites a newer reply. */
  seq: number;
}

interface ActorView {
  name: string;
  lastSeen: number;
  keywords: Map<string, KeywordView>;
  item: HTMLLIElement;
  details: HTMLDetailsElement;
  meta: HTMLElement;
  table?: HTMLTableSectionElement;
  rows: Map<string, HTMLTableRowElement>;
  changed: Set<string>;
  /** The actor's keyword schema, once the gateway has it. */
  schema?: Record<string, unknown>;
}

/** Options for {@linkcode createActors}. */
export interface ActorsOptions {
  /** The colour a changed keyword flashes with (it follows the theme). */
  flashColor: () => string;
  /** An actor's "Show only" button. */
  onShowOnly: (actor: string) => void;
  /** An actor's "Command" button. */
  onCommand: (actor: string) => void;
  /** Asks for a render (the panel is written in the stream's render, see {@linkcode Actors.render}). */
  requestRender: () => void;
  /** The plots: numeric keywords get a toggle. */
  plots?: PlotToggles;
  /** The actors' keyword schemas, as the gateway learnt them. */
  descriptions: Descriptions;
}

/** The actors panel. Changes are gathered, and written by {@linkcode Actors.render} in the stream's frame. */
export interface Actors {
  /** Whether changes wait for the next render. */
  changed(): boolean;
  /** Updates the actors from a reply on the exchange (not from frames the gateway made for us). */
  fromReply(frame: Frame): void;
  /** Loads the gateway's actor state (after a welcome); a dropped connection asks again on the next one. */
  load(client: CluClient): Promise<void>;
  /** After a gap, positions may have restarted (a new epoch): what we hold is older than anything to come. */
  forgetPositions(): void;
  /** Writes the changes gathered since the last render. */
  render(): void;
  /** Rewrites "… ago" of the actors shown. */
  refreshLastSeen(): void;
}

/** The actors panel, listening to its search box. */
export function createActors(options: ActorsOptions): Actors {
  const list = byId<HTMLUListElement>("actors");
  const count = byId("actor-count");
  const find = byId<HTMLInputElement>("actor-find");
  const names = byId<HTMLDataListElement>("actor-names");
  const actors = new Map<string, ActorView>();
  const dirtyActors = new Set<ActorView>();
  const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");

  function actorView(name: string): ActorView {
    const known = actors.get(name);
    if (known) return known;
    const item = el("li", "actor-item");
    item.dataset.actor = name;
    const details = el("details");
    const summary = el("summary");
    const title = el("span", "actor-name", name);
    title.title = name;
    const meta = el("span", "actor-meta");
    summary.append(title, meta);
    const tools = el("div", "actor-tools");
    const filterButton = el("button", "actor-filter", "Show only");
    filterButton.type = "button";
    filterButton.setAttribute("aria-label", `show only ${name}'s replies`);
    const commandButton = el("button", "actor-command", "Command");
    commandButton.type = "button";
    commandButton.setAttribute("aria-label", `send a command to ${name}`);
    tools.append(filterButton, commandButton);
    details.append(summary, tools);
    item.append(details);
    const view: ActorView = {
      name,
      lastSeen: 0,
      keywords: new Map(),
      item,
      details,
      meta,
      rows: new Map(),
      changed: new Set(),
    };
    filterButton.addEventListener("click", () => options.onShowOnly(name));
    commandButton.addEventListener("click", () => options.onCommand(name));
    details.addEventListener("toggle", () => {
      if (details.open) {
        view.schema = options.descriptions.get(name)?.schema;
        buildKeywordTable(view, options.plots);
      } else {
        view.table?.parentElement?.remove();
        view.table = undefined;
        view.rows.clear();
      }
    });
    actors.set(name, view);
    // Keep the list sorted by name; new actors are rare next to replies.
    let before: Element | null = null;
    for (const other of list.children) {
      if ((other as HTMLElement).dataset.actor!.localeCompare(name) > 0) {
        before = other;
        break;
      }
    }
    list.insertBefore(item, before);
    const option = el("option");
    option.value = name;
    names.append(option);
    count.textContent = `(${actors.size})`;
    item.hidden = !matchesFind(name);
    return view;
  }

  function matchesFind(name: string): boolean {
    const query = find.value.trim().toLowerCase();
    return !query || name.toLowerCase().includes(query);
  }

  function setKeyword(view: ActorView, key: string, value: KeywordView): void {
    const current = view.keywords.get(key);
    if (current && current.seq > value.seq) return;
    view.keywords.set(key, value);
    view.changed.add(key);
    dirtyActors.add(view);
  }

  function fromReply(frame: Frame): void {
    const sender = frame.headers.sender;
    if (frame.seq === undefined || typeof sender !== "string" || !sender) return;
    // A failed-routing reply names whatever consumer was typed as its sender: it says nothing of an actor,
    // whichever gateway or CLU client published it (the gateway's state leaves it out the same way).
    if (isFailedRouting(sender, String(frame.headers.message_code), frame.body)) return;
    const view = actorView(sender);
    const now = Date.now();
    view.lastSeen = now;
    dirtyActors.add(view);
    const body = frame.body;
    if (body === null || typeof body !== "object" || Array.isArray(body)) return;
    const code = String(frame.headers.message_code).toLowerCase();
    for (const [key, value] of Object.entries(body)) {
      setKeyword(view, key, { value, seen: now, code, seq: frame.seq });
    }
  }

  async function load(client: CluClient): Promise<void> {
    try {
      const snapshot = await client.actorState();
      for (const [name, record] of Object.entries(snapshot.actors)) {
        const view = actorView(name);
        view.lastSeen = Math.max(view.lastSeen, Date.parse(record.last_seen) || 0);
        dirtyActors.add(view);
        for (const [key, kw] of Object.entries(record.keywords)) {
          setKeyword(view, key, {
            value: kw.value,
            seen: Date.parse(kw.seen) || Date.now(),
            code: String(kw.code).toLowerCase(),
            seq: snapshot.seq,
          });
        }
      }
      options.requestRender();
    } catch {
      // The connection dropped; the next welcome asks again.
    }
  }

  function render(): void {
    if (dirtyActors.size === 0) return;
    const flash = !reducedMotion.matches;
    const flashColor = options.flashColor();
    for (const view of dirtyActors) {
      view.meta.textContent = metaText(view);
      if (view.table) {
        if (view.table.querySelector("td.panel-empty") && view.changed.size) view.table.replaceChildren();
        for (const key of view.changed) {
          let row = view.rows.get(key);
          if (row) fillKeywordRow(view, key, row, options.plots);
          else {
            row = keywordRow(view, key, options.plots);
            view.table.append(row);
          }
          if (flash) {
            row.cells[1].animate([{ backgroundColor: flashColor }, { backgroundColor: "transparent" }], {
              id: FLASH_ANIMATION_ID,
              duration: 1200,
              easing: "ease-out",
            });
          }
        }
      }
      view.changed.clear();
    }
    dirtyActors.clear();
  }

  // A schema that arrives after the table was opened labels its rows then.
  options.descriptions.onChange((actor) => {
    const view = actors.get(actor);
    if (!view?.table) return;
    view.schema = options.descriptions.get(actor)?.schema;
    for (const [key, row] of view.rows) labelKeyword(view, key, row.cells[0] as HTMLTableCellElement);
  });

  find.addEventListener("input", () => {
    for (const view of actors.values()) view.item.hidden = !matchesFind(view.name);
  });

  return {
    changed: () => dirtyActors.size > 0,
    fromReply,
    load,
    forgetPositions() {
      for (const view of actors.values()) for (const kw of view.keywords.values()) kw.seq = -1;
    },
    render,
    refreshLastSeen() {
      for (const view of actors.values()) {
        if (!view.item.hidden) view.meta.textContent = metaText(view);
      }
    },
  };
}

/** "12 kw · 5 s ago": an actor's summary line. */
function metaText(view: ActorView): string {
  return `${view.keywords.size} kw · ${view.lastSeen ? ago(view.lastSeen) : "—"}`;
}

function buildKeywordTable(view: ActorView, plots?: PlotToggles): void {
  const table = el("table", "keywords");
  const caption = el("caption", "visually-hidden", `${view.name} keywords`);
  const tbody = el("tbody");
  table.append(caption, tbody);
  view.table = tbody;
  view.rows.clear();
  const keys = [...view.keywords.keys()].sort((a, b) => a.localeCompare(b));
  for (const key of keys) tbody.append(keywordRow(view, key, plots));
  if (keys.length === 0) {
    const row = el("tr");
    row.append(el("td", "panel-empty", "no keywords yet"));
    tbody.append(row);
  }
  view.details.append(table);
}

function keywordRow(view: ActorView, key: string, plots?: PlotToggles): HTMLTableRowElement {
  const row = el("tr");
  row.dataset.keyword = key;
  const name = el("th");
  name.scope = "row";
  labelKeyword(view, key, name);
  // The plot toggles float at the end of the name's cell: the value's cell stays text only.
  if (plots) name.prepend(el("span", "plot-cell"));
  row.append(name, el("td"));
  view.rows.set(key, row);
  fillKeywordRow(view, key, row, plots);
  return row;
}

/** A keyword's name, with its unit and description when the actor's schema has them (a plot toggle stays). */
function labelKeyword(view: ActorView, key: string, cell: HTMLTableCellElement): void {
  const { description, unit } = keywordInfo(view.schema, key);
  const toggles = cell.querySelector(":scope > .plot-cell");
  cell.replaceChildren(el("span", "kw-name", key));
  if (unit) cell.append(" ", el("span", "kw-unit", `[${unit}]`));
  if (description) cell.append(el("span", "kw-desc", description));
  if (toggles) cell.prepend(toggles);
  cell.title = description ? `${key}${unit ? ` [${unit}]` : ""}: ${description}` : key;
}

function fillKeywordRow(view: ActorView, key: string, row: HTMLTableRowElement, plots?: PlotToggles): void {
  const kw = view.keywords.get(key)!;
  const cell = row.cells[1];
  cell.textContent = formatValue(kw.value, 600);
  cell.className = `c-${kindOf(kw.code)}`;
  cell.title = `${meaningOf(kw.code)} · ${new Date(kw.seen).toISOString()}`;
  const toggles = row.cells[0].querySelector<HTMLElement>(".plot-cell");
  if (plots && toggles) fillPlotCell(toggles, view.name, key, kw.value, plots);
}
