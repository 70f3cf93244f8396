/// <reference lib="dom" />
/**
 * The actors panel: every actor heard on the exchange, sorted by name, with
 * when it was last heard and its latest keywords, which flash when they change.
 * It starts from the gateway's state on each welcome and follows live replies.
 *
 * @module
 */

import { isFailedRouting } from "../../lib/replies/actor_state.ts";
import type { CluClient, Frame } from "../client.ts";
import { byId, el } from "./dom.ts";
import { ago, formatValue, kindOf, meaningOf } from "./format.ts";

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
}

/** Options for {@linkcode Actors}. */
export interface ActorsOptions {
  /** The colour a changed keyword flashes with (it follows the theme). */
  flashColor: () => string;
  /** An actor's "Show only" button. */
  onShowOnly: (actor: string) => void;
  /** An actor's "Command" button. */
  onCommand: (actor: string) => void;
  /** Asks for a render (the panel is written in the stream's render, see {@linkcode Actors.render}). */
  requestRender: () => void;
}

/** The actors panel. Changes are gathered and written by {@linkcode Actors.render}, in the stream's frame. */
export class Actors {
  #list = byId<HTMLUListElement>("actors");
  #count = byId("actor-count");
  #find = byId<HTMLInputElement>("actor-find");
  #names = byId<HTMLDataListElement>("actor-names");
  #actors = new Map<string, ActorView>();
  #dirty = new Set<ActorView>();
  #reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");
  #options: ActorsOptions;

  /** Listens to the actor search box. */
  constructor(options: ActorsOptions) {
    this.#options = options;
    this.#find.addEventListener("input", () => {
      for (const view of this.#actors.values()) view.item.hidden = !this.#matchesFind(view.name);
    });
  }

  /** Whether changes wait for the next render. */
  get changed(): boolean {
    return this.#dirty.size > 0;
  }

  /** Updates the actors from a reply on the exchange (not from frames the gateway made for us). */
  fromReply(frame: Frame): void {
    const sender = frame.headers.sender;
    if (frame.seq === undefined || typeof sender !== "string" || !sender) return;
    // A failed-routing reply names whatever consumer was typed as its sender: it says nothing of an actor,
    // whichever gateway or CLU client published it (the gateway's state leaves it out the same way).
    if (isFailedRouting(sender, String(frame.headers.message_code), frame.body)) return;
    const view = this.#view(sender);
    const now = Date.now();
    view.lastSeen = now;
    this.#dirty.add(view);
    const body = frame.body;
    if (body === null || typeof body !== "object" || Array.isArray(body)) return;
    const code = String(frame.headers.message_code).toLowerCase();
    for (const [key, value] of Object.entries(body)) {
      this.#setKeyword(view, key, { value, seen: now, code, seq: frame.seq });
    }
  }

  /** Loads the gateway's actor state (after a welcome); a dropped connection asks again on the next one. */
  async load(client: CluClient): Promise<void> {
    try {
      const snapshot = await client.actorState();
      for (const [name, record] of Object.entries(snapshot.actors)) {
        const view = this.#view(name);
        view.lastSeen = Math.max(view.lastSeen, Date.parse(record.last_seen) || 0);
        this.#dirty.add(view);
        for (const [key, kw] of Object.entries(record.keywords)) {
          this.#setKeyword(view, key, {
            value: kw.value,
            seen: Date.parse(kw.seen) || Date.now(),
            code: String(kw.code).toLowerCase(),
            seq: snapshot.seq,
          });
        }
      }
      this.#options.requestRender();
    } catch {
      // The connection dropped; the next welcome asks again.
    }
  }

  /** After a gap, positions may have restarted (a new epoch): what we hold is older than anything to come. */
  forgetPositions(): void {
    for (const view of this.#actors.values()) for (const kw of view.keywords.values()) kw.seq = -1;
  }

  /** Writes the changes gathered since the last render. */
  render(): void {
    if (this.#dirty.size === 0) return;
    const flash = !this.#reducedMotion.matches;
    for (const view of this.#dirty) {
      view.meta.textContent = metaText(view);
      if (view.table) {
        if (view.table.querySelector("td.panel-empty") && view.changed.size) view.table.replaceChildren();
        for (const key of view.changed) {
          let row = view.rows.get(key);
          if (row) fillKeywordRow(view, key, row);
          else {
            row = keywordRow(view, key);
            view.table.append(row);
          }
          if (flash) {
            const flashColor = this.#options.flashColor();
            row.cells[1].animate([{ backgroundColor: flashColor }, { backgroundColor: "transparent" }], {
              duration: 1200,
              easing: "ease-out",
            });
          }
        }
      }
      view.changed.clear();
    }
    this.#dirty.clear();
  }

  /** Rewrites "… ago" of the actors shown. */
  refreshLastSeen(): void {
    for (const view of this.#actors.values()) {
      if (!view.item.hidden) view.meta.textContent = metaText(view);
    }
  }

  #view(name: string): ActorView {
    const known = this.#actors.get(name);
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
    filterButton.addEventListener("click", () => this.#options.onShowOnly(name));
    commandButton.addEventListener("click", () => this.#options.onCommand(name));
    details.addEventListener("toggle", () => {
      if (details.open) buildKeywordTable(view);
      else {
        view.table?.parentElement?.remove();
        view.table = undefined;
        view.rows.clear();
      }
    });
    this.#actors.set(name, view);
    // Keep the list sorted by name; new actors are rare next to replies.
    let before: Element | null = null;
    for (const other of this.#list.children) {
      if ((other as HTMLElement).dataset.actor!.localeCompare(name) > 0) {
        before = other;
        break;
      }
    }
    this.#list.insertBefore(item, before);
    const option = el("option");
    option.value = name;
    this.#names.append(option);
    this.#count.textContent = `(${this.#actors.size})`;
    item.hidden = !this.#matchesFind(name);
    return view;
  }

  #matchesFind(name: string): boolean {
    const query = this.#find.value.trim().toLowerCase();
    return !query || name.toLowerCase().includes(query);
  }

  #setKeyword(view: ActorView, key: string, value: KeywordView): void {
    const current = view.keywords.get(key);
    if (current && current.seq > value.seq) return;
    view.keywords.set(key, value);
    view.changed.add(key);
    this.#dirty.add(view);
  }
}

function metaText(view: ActorView): string {
  return `${view.keywords.size} kw · ${view.lastSeen ? ago(view.lastSeen) : "—"}`;
}

function buildKeywordTable(view: ActorView): void {
  const table = el("table", "keywords");
  const caption = el("caption", "visually-hidden", `${view.name} keywords`);
  const tbody = el("tbody");
  table.append(caption, tbody);
  view.table = tbody;
  view.rows.clear();
  const keys = [...view.keywords.keys()].sort((a, b) => a.localeCompare(b));
  for (const key of keys) tbody.append(keywordRow(view, key));
  if (keys.length === 0) {
    const row = el("tr");
    row.append(el("td", "panel-empty", "no keywords yet"));
    tbody.append(row);
  }
  view.details.append(table);
}

function keywordRow(view: ActorView, key: string): HTMLTableRowElement {
  const row = el("tr");
  row.dataset.keyword = key;
  const name = el("th", undefined, key);
  name.scope = "row";
  name.title = key;
  row.append(name, el("td"));
  view.rows.set(key, row);
  fillKeywordRow(view, key, row);
  return row;
}

function fillKeywordRow(view: ActorView, key: string, row: HTMLTableRowElement): void {
  const kw = view.keywords.get(key)!;
  const cell = row.cells[1];
  cell.textContent = formatValue(kw.value, 600);
  cell.className = `c-${kindOf(kw.code)}`;
  cell.title = `${meaningOf(kw.code)} · ${new Date(kw.seen).toISOString()}`;
}
