/// <reference lib="dom" />
/**
 * The live console that the gateway serves at `/`: the connection state, a
 * live stream of replies with filters kept in the URL, the actors and their
 * keywords, a command bar with each command's lifecycle, a token prompt and a
 * red-on-black night mode. Plain DOM, no framework: everything from the bus is
 * written with `textContent`, never parsed as HTML.
 *
 * The stream stays cheap at hundreds of replies per second: replies land in a
 * bounded buffer; rows are added in batches on an animation frame, at most
 * every {@linkcode MIN_RENDER_MS}; they live in chunks that lay out on their
 * own; the page keeps at most {@linkcode MAX_ROWS}; and nothing is added while
 * the user has paused or scrolled up to read.
 *
 * @module
 */

import { isFailedRouting } from "../lib/replies/actor_state.ts";
import { CluClient, CommandError, type CommandResult, type Frame, type Welcome } from "./client.ts";
import { compileGlobs, MAX_CLIENT_GLOBS } from "../lib/protocol/glob.ts";

/** Rows kept on the page. */
const MAX_ROWS = 2000;
/**
 * Rows per chunk: rows live in chunks that lay out and paint on their own
 * (`contain`, `content-visibility`), so adding rows re-lays out one chunk, not
 * two thousand rows, and the oldest go a chunk at a time.
 */
const CHUNK_ROWS = 100;
/** Replies kept in memory, so that a filter change can show what came before it. */
const MAX_BUFFER = 5000;
/** Commands kept in the commands panel. */
const MAX_COMMANDS = 50;
/** Commands remembered for the up arrow. */
const HISTORY_SIZE = 100;
/** Longest text shown for one keyword value in the compact body. */
const VALUE_CHARS = 160;
/**
 * Least time between two renders. Rows are added on an animation frame, but
 * not more often than this: at hundreds of replies a second, layout and paint
 * cost more per render than per row, and nobody reads faster anyway.
 */
const MIN_RENDER_MS = 100;
/** Keywords shown in a row's compact body before "…". */
const ROW_KEYWORDS = 24;

const THEME_KEY = "clu-ws.theme";
const TOKEN_KEY = "clu-ws.token";
const HISTORY_KEY = "clu-ws.history";

/** The message codes, what they mean and the style class of each. */
const CODES: ReadonlyArray<{ code: string; meaning: string; kind: string }> = [
  { code: ">", meaning: "running", kind: "running" },
  { code: ":", meaning: "done", kind: "done" },
  { code: "f", meaning: "failed", kind: "failed" },
  { code: "!", meaning: "failed (fatal)", kind: "failed" },
  { code: "e", meaning: "error", kind: "error" },
  { code: "w", meaning: "warning", kind: "warning" },
  { code: "i", meaning: "info", kind: "info" },
  { code: "d", meaning: "debug", kind: "debug" },
];
const CODE_INFO = new Map(CODES.map((c) => [c.code, c]));

/** One line of the stream: a reply, or a note from the console itself (connection lost, gap). */
interface Entry {
  frame?: Frame;
  note?: string;
  /** Message code, lower case ("" for notes). */
  code: string;
  actor: string;
  commandId: string;
  /** When the console received it (ms since the epoch). */
  at: number;
  /** Lower-case text searched by the free-text filter, made on first use. */
  hay?: string;
}

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

type CommandState = "sent" | "running" | "done" | "failed" | "timeout";

interface CommandView {
  id: string;
  started: number;
  state: CommandState;
  trail: string[];
  replies: Frame[];
  item: HTMLLIElement;
  stateEl: HTMLElement;
  elapsedEl: HTMLElement;
  trailEl: HTMLElement;
  errorEl: HTMLElement;
  toggle: HTMLButtonElement;
  repliesBox?: HTMLElement;
}

/** Whether an actor name matches one glob of the actor filter. */
type ActorTest = (actor: string) => boolean;

interface Filter {
  /** Globs to include (empty: all) and to exclude (`!name`). */
  include: ActorTest[];
  exclude: ActorTest[];
  /** Codes shown, or undefined for all. */
  codes: Set<string> | undefined;
  /** Lower-case free text, or "". */
  text: string;
}

// ---------------------------------------------------------------------------
// The page's elements.

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the console page has no #${id}; web/console.html and console.ts disagree`);
  return element as T;
}

const ui = {
  gatewayState: byId("gateway-state"),
  brokerState: byId("broker-state"),
  info: byId("info"),
  rate: byId("rate"),
  pause: byId<HTMLButtonElement>("pause"),
  night: byId<HTMLButtonElement>("night"),
  forgetToken: byId<HTMLButtonElement>("forget-token"),
  filters: byId<HTMLFormElement>("filters"),
  filterActor: byId<HTMLInputElement>("filter-actor"),
  filterCodes: byId<HTMLFieldSetElement>("filter-codes"),
  filterText: byId<HTMLInputElement>("filter-text"),
  filterClear: byId<HTMLButtonElement>("filter-clear"),
  counts: byId("counts"),
  stream: byId("stream"),
  empty: byId("empty"),
  jump: byId<HTMLButtonElement>("jump"),
  actors: byId<HTMLUListElement>("actors"),
  actorCount: byId("actor-count"),
  actorFind: byId<HTMLInputElement>("actor-find"),
  actorNames: byId<HTMLDataListElement>("actor-names"),
  commands: byId<HTMLOListElement>("commands"),
  commandBar: byId<HTMLFormElement>("command-bar"),
  commandFields: byId<HTMLFieldSetElement>("command-fields"),
  commandActor: byId<HTMLInputElement>("command-actor"),
  commandText: byId<HTMLInputElement>("command-text"),
  commandNote: byId("command-note"),
  tokenDialog: byId<HTMLDialogElement>("token-dialog"),
  tokenForm: byId<HTMLFormElement>("token-form"),
  tokenInput: byId<HTMLInputElement>("token-input"),
  tokenError: byId("token-error"),
};

/** Makes an element with a class and, optionally, text (always as text, never HTML). */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

// ---------------------------------------------------------------------------
// Small storage helpers: private browsing may refuse storage; the console works without it.

function load(storage: "local" | "session", key: string): string | null {
  try {
    return (storage === "local" ? localStorage : sessionStorage).getItem(key);
  } catch {
    return null;
  }
}

function save(storage: "local" | "session", key: string, value: string | null): void {
  try {
    const store = storage === "local" ? localStorage : sessionStorage;
    if (value === null) store.removeItem(key);
    else store.setItem(key, value);
  } catch {
    // Not kept; nothing else breaks.
  }
}

// ---------------------------------------------------------------------------
// Formatting.

function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return String(value);
  }
}

/** A keyword value as CLU prints it: strings quoted, lists comma-separated, the rest as JSON. */
function formatValue(value: unknown, limit = VALUE_CHARS): string {
  const text = Array.isArray(value) ? value.map(jsonText).join(",") : jsonText(value);
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

function kindOf(code: string): string {
  return CODE_INFO.get(code)?.kind ?? "other";
}

function meaningOf(code: string): string {
  return CODE_INFO.get(code)?.meaning ?? "other";
}

/** HH:MM:SS in UTC, from the reply's timestamp when it has one. */
function clock(entry: Entry): string {
  return timeOf(entry).toISOString().slice(11, 19);
}

function timeOf(entry: Entry): Date {
  const stamp = entry.frame?.timestamp;
  if (stamp) {
    const date = new Date(stamp);
    if (!Number.isNaN(date.getTime())) return date;
  }
  return new Date(entry.at);
}

/** "now", "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
function ago(ms: number): string {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 2) return "now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** Elapsed time: "84 ms", "1.24 s", "2 min 5 s". */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

function newCommandId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------------------
// Filters, kept in the URL's query string (`?actor=lvm.*&codes=:fe&q=dome`).

let filter: Filter = { include: [], exclude: [], codes: undefined, text: "" };

/**
 * A glob on actor names, matched as the gateway matches them (lib/glob.ts: `*` any run of characters,
 * dots included, `?` one character, in linear time), but ignoring case as this filter always has. The
 * pattern comes from the URL, so a crafted link must not be able to freeze the page: no regular expression.
 */
function actorGlob(glob: string): ActorTest {
  const compiled = compileGlobs([glob.toLowerCase()]);
  return (actor) => compiled.match(actor.toLowerCase()) !== undefined;
}

/** Most words the actor filter takes from a link: every reply is tested against each. */
const MAX_FILTER_WORDS = MAX_CLIENT_GLOBS;

function parseFilter(actorText: string, codes: Set<string> | undefined, text: string): Filter {
  const include: ActorTest[] = [];
  const exclude: ActorTest[] = [];
  const words = actorText.split(/[\s,]+/).filter((word) => word && word !== "!" && word !== "-");
  for (const word of words.slice(0, MAX_FILTER_WORDS)) {
    if (word.startsWith("!") || word.startsWith("-")) exclude.push(actorGlob(word.slice(1)));
    else include.push(actorGlob(word));
  }
  return { include, exclude, codes, text: text.trim().toLowerCase() };
}

function matches(entry: Entry): boolean {
  if (entry.note !== undefined) return true;
  if (filter.include.length && !filter.include.some((test) => test(entry.actor))) return false;
  if (filter.exclude.some((test) => test(entry.actor))) return false;
  if (filter.codes && !filter.codes.has(entry.code)) return false;
  if (filter.text) {
    entry.hay ??= `${entry.actor} ${entry.code} ${entry.commandId} ${jsonText(entry.frame?.body)}`
      .toLowerCase();
    if (!entry.hay.includes(filter.text)) return false;
  }
  return true;
}

const codeBoxes = new Map<string, HTMLInputElement>();

function buildCodeBoxes(): void {
  for (const { code, meaning, kind } of CODES) {
    const label = el("label", `code-box c-${kind}`);
    const box = el("input");
    box.type = "checkbox";
    box.checked = true;
    box.value = code;
    box.name = "codes";
    const glyph = el("span", "code", code);
    glyph.setAttribute("aria-hidden", "true");
    label.title = meaning;
    label.append(box, glyph, el("span", "visually-hidden", meaning));
    codeBoxes.set(code, box);
    ui.filterCodes.append(label);
  }
}

function selectedCodes(): Set<string> | undefined {
  const chosen = new Set([...codeBoxes].filter(([, box]) => box.checked).map(([code]) => code));
  return chosen.size === codeBoxes.size ? undefined : chosen;
}

/** Reads the filters from the URL into the form. */
function filtersFromUrl(): void {
  const params = new URLSearchParams(location.search);
  ui.filterActor.value = params.get("actor") ?? "";
  ui.filterText.value = params.get("q") ?? "";
  const codes = params.get("codes");
  for (const [code, box] of codeBoxes) box.checked = codes === null || codes.toLowerCase().includes(code);
  filter = parseFilter(ui.filterActor.value, selectedCodes(), ui.filterText.value);
}

let urlTimer: ReturnType<typeof setTimeout> | undefined;

/** Applies the form's filters to the stream and, a moment later, to the URL. */
function applyFilters(): void {
  const codes = selectedCodes();
  filter = parseFilter(ui.filterActor.value, codes, ui.filterText.value);
  rerender();
  clearTimeout(urlTimer);
  urlTimer = setTimeout(() => {
    const params = new URLSearchParams(location.search);
    setParam(params, "actor", ui.filterActor.value.trim());
    setParam(params, "codes", codes ? [...codes].join("") : "");
    setParam(params, "q", ui.filterText.value.trim());
    const query = params.toString();
    history.replaceState(
      history.state,
      "",
      `${location.pathname}${query ? `?${query}` : ""}${location.hash}`,
    );
  }, 150);
}

function setParam(params: URLSearchParams, key: string, value: string): void {
  if (value) params.set(key, value);
  else params.delete(key);
}

// ---------------------------------------------------------------------------
// The stream.

const buffer: Entry[] = [];
/** Matching entries not yet on the page (paused, scrolled up, or waiting for the next frame). */
let pending: Entry[] = [];
/** How many matching entries arrived while the view was held (pending is trimmed; this is not). */
let held = 0;
let paused = false;
/** Follow the newest row; false once the user scrolls up. */
let stick = true;
let lastScrollTop = 0;
let frameRequested = false;
/** Rows on the page (in the chunks of the stream). */
let rowCount = 0;
let lastRender = 0;
let renderTimer: ReturnType<typeof setTimeout> | undefined;
let received = 0;
const rowEntries = new WeakMap<Element, Entry>();

/** Asks for a render on the next animation frame, but not sooner than {@linkcode MIN_RENDER_MS} after the last. */
function schedule(): void {
  if (frameRequested || renderTimer !== undefined) return;
  const wait = lastRender + MIN_RENDER_MS - performance.now();
  if (wait > 0) {
    renderTimer = setTimeout(() => {
      renderTimer = undefined;
      schedule();
    }, wait);
    return;
  }
  frameRequested = true;
  requestAnimationFrame(flush);
}

function addEntry(entry: Entry): void {
  buffer.push(entry);
  if (buffer.length > MAX_BUFFER + 500) buffer.splice(0, buffer.length - MAX_BUFFER);
  if (!matches(entry)) return;
  pending.push(entry);
  held++;
  if (pending.length > MAX_ROWS + 500) pending.splice(0, pending.length - MAX_ROWS);
  schedule();
}

function note(text: string): void {
  addEntry({ note: text, code: "", actor: "", commandId: "", at: Date.now() });
}

function flush(): void {
  frameRequested = false;
  render();
}

/** Brings the page up to date: actors, new rows (unless held), counts. */
function render(): void {
  lastRender = performance.now();
  // Every write first, then the one read that scrolling needs: one layout per render.
  renderActors();
  let added = false;
  if (!paused && stick && pending.length) {
    const entries = pending.length > MAX_ROWS ? pending.slice(-MAX_ROWS) : pending;
    pending = [];
    held = 0;
    added = appendRows(entries);
  }
  updateCounts();
  if (added && stick) scrollToEnd();
}

function scrollToEnd(): void {
  ui.stream.scrollTop = ui.stream.scrollHeight;
  lastScrollTop = ui.stream.scrollTop;
}

/** Adds rows for `entries` and drops the oldest beyond {@linkcode MAX_ROWS}; true if any were added. */
function appendRows(entries: Entry[]): boolean {
  if (entries.length === 0) return false;
  let chunk = ui.stream.lastElementChild as HTMLElement | null;
  let room = chunk ? CHUNK_ROWS - chunk.childElementCount : 0;
  let fragment = document.createDocumentFragment();
  for (const entry of entries) {
    if (room === 0) {
      chunk?.append(fragment);
      chunk = ui.stream.appendChild(el("div", "chunk"));
      fragment = document.createDocumentFragment();
      room = CHUNK_ROWS;
    }
    fragment.append(rowFor(entry));
    room--;
  }
  chunk!.append(fragment);
  rowCount += entries.length;
  // Whole chunks go once the rest still holds MAX_ROWS - CHUNK_ROWS rows or more.
  while (ui.stream.firstElementChild && ui.stream.firstElementChild !== chunk) {
    const first = ui.stream.firstElementChild;
    if (rowCount - first.childElementCount < MAX_ROWS - CHUNK_ROWS && rowCount <= MAX_ROWS) break;
    rowCount -= first.childElementCount;
    first.remove();
  }
  ui.empty.hidden = true;
  return true;
}

/** Shows the newest matching entries again from the buffer (after a filter change). */
function rerender(): void {
  ui.stream.replaceChildren();
  rowCount = 0;
  pending = [];
  held = 0;
  const entries: Entry[] = [];
  for (let i = buffer.length - 1; i >= 0 && entries.length < MAX_ROWS; i--) {
    if (matches(buffer[i])) entries.push(buffer[i]);
  }
  entries.reverse();
  stick = true;
  appendRows(entries);
  ui.empty.hidden = entries.length > 0;
  ui.empty.textContent = buffer.length ? "No replies match the filters." : "Waiting for replies…";
  updateCounts();
  scrollToEnd();
}

/**
 * A row for `entry`. Rows of the stream are reached with the arrow keys (one
 * tab stop for the whole stream, not two per row): they and their buttons are
 * focusable but out of the tab order.
 */
function rowFor(entry: Entry, inStream = true): HTMLElement {
  if (entry.note !== undefined) {
    const row = el("div", "note", `${clock(entry)}  ${entry.note}`);
    row.dataset.note = "";
    if (inStream) row.tabIndex = -1;
    return row;
  }
  const frame = entry.frame!;
  const row = el("div", `row c-${kindOf(entry.code)}${frame.headers.internal ? " internal" : ""}`);
  row.dataset.actor = entry.actor;
  row.dataset.code = entry.code;
  if (entry.commandId) row.dataset.commandId = entry.commandId;
  rowEntries.set(row, entry);

  const time = el("span", "time", clock(entry));
  time.title = `${timeOf(entry).toISOString()}${frame.seq !== undefined ? ` · position ${frame.seq}` : ""}`;
  const code = el("span", "code", frame.headers.message_code);
  code.title = meaningOf(entry.code);
  const actor = el("span", "actor", entry.actor || "—");
  actor.title = entry.actor;
  let id: HTMLElement;
  if (entry.commandId) {
    id = el("button", "cid", entry.commandId);
    (id as HTMLButtonElement).type = "button";
    id.title = `command ${entry.commandId}: show only its replies`;
  } else {
    id = el("span", "cid-none");
  }
  const body = el("span", "body");
  fillBody(body, frame.body);
  const expand = el("button", "expand", "{…}");
  expand.type = "button";
  expand.setAttribute("aria-expanded", "false");
  expand.setAttribute("aria-label", "full JSON of this reply");
  row.append(time, code, actor, id, body, expand);
  if (inStream) {
    row.tabIndex = -1;
    id.tabIndex = -1;
    expand.tabIndex = -1;
  }
  return row;
}

/** The body as `keyword=value; …`, keywords in a dimmer style. */
function fillBody(target: HTMLElement, body: unknown): void {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    target.textContent = formatValue(body);
    return;
  }
  const keys = Object.keys(body);
  const parts: Node[] = [];
  for (const key of keys.slice(0, ROW_KEYWORDS)) {
    if (parts.length) parts.push(document.createTextNode("; "));
    parts.push(
      el("span", "k", key),
      document.createTextNode(`=${formatValue((body as Record<string, unknown>)[key])}`),
    );
  }
  if (keys.length > ROW_KEYWORDS) {
    parts.push(document.createTextNode(`; … ${keys.length - ROW_KEYWORDS} more`));
  }
  target.append(...parts);
}

function toggleJson(button: HTMLButtonElement): void {
  const row = button.closest(".row");
  const entry = row && rowEntries.get(row);
  if (!row || !entry?.frame) return;
  const open = row.querySelector(":scope > pre");
  if (open) {
    open.remove();
    row.classList.remove("expanded");
    button.setAttribute("aria-expanded", "false");
    return;
  }
  const pre = el("pre", undefined, JSON.stringify(entry.frame, null, 2));
  row.append(pre);
  row.classList.add("expanded");
  button.setAttribute("aria-expanded", "true");
}

/** Clicks on a row's command id (filter to it) and its `{…}` (full JSON). */
function onRowClick(event: MouseEvent): void {
  const target = event.target as HTMLElement;
  const button = target.closest("button");
  if (!button) return;
  if (button.classList.contains("expand")) toggleJson(button);
  else if (button.classList.contains("cid")) {
    ui.filterText.value = button.textContent ?? "";
    applyFilters();
  }
}

/** The row before or after `row` in the stream, across chunks. */
function adjacentRow(row: Element, step: 1 | -1): HTMLElement | null {
  const sibling = step > 0 ? row.nextElementSibling : row.previousElementSibling;
  if (sibling) return sibling as HTMLElement;
  const chunk = step > 0 ? row.parentElement?.nextElementSibling : row.parentElement?.previousElementSibling;
  return ((step > 0 ? chunk?.firstElementChild : chunk?.lastElementChild) ?? null) as HTMLElement | null;
}

/** Keys in the stream: ↑/↓/Home move between rows, Enter shows the JSON, c filters to the command. */
function onStreamKey(event: KeyboardEvent): void {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const focused = document.activeElement as HTMLElement | null;
  const row = focused && focused !== ui.stream ? focused.closest<HTMLElement>(".row, .note") : null;
  let next: HTMLElement | null | undefined;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const step = event.key === "ArrowDown" ? 1 : -1;
    next = row ? adjacentRow(row, step) : ui.stream.lastElementChild?.lastElementChild as HTMLElement | null;
  } else if (event.key === "Home") {
    next = ui.stream.firstElementChild?.firstElementChild as HTMLElement | null;
  } else if ((event.key === "Enter" || event.key === " ") && row) {
    const expand = row.querySelector<HTMLButtonElement>(":scope > .expand");
    if (expand) toggleJson(expand);
  } else if (event.key === "c" && row) {
    const id = row.querySelector<HTMLButtonElement>(":scope > .cid");
    if (id) id.click();
  } else return;
  event.preventDefault();
  next?.focus();
}

function atBottom(): boolean {
  const s = ui.stream;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 24;
}

/**
 * Follows the user's scrolling: back at the bottom follows the newest rows
 * again; scrolling up stops following. Only a move up counts as the user
 * leaving the bottom, not a layout change (a header that wraps, a resize)
 * that leaves the view short of it.
 */
function onScroll(): void {
  const top = ui.stream.scrollTop;
  const movedUp = top < lastScrollTop - 1;
  lastScrollTop = top;
  if (atBottom()) {
    if (stick) return;
    stick = true;
    schedule();
  } else if (stick && movedUp) {
    stick = false;
  } else return;
  updateCounts();
}

function jumpToLatest(): void {
  paused = false;
  stick = true;
  ui.pause.setAttribute("aria-pressed", "false");
  render();
  scrollToEnd();
}

function setPaused(value: boolean): void {
  paused = value;
  ui.pause.setAttribute("aria-pressed", String(paused));
  if (!paused) {
    stick = true;
    schedule();
  }
  updateCounts();
}

function updateCounts(): void {
  const rows = rowCount;
  const waiting = paused || !stick ? held : 0;
  ui.counts.textContent = `${rows} shown${paused ? " · paused" : ""}${waiting ? ` · ${waiting} new` : ""}`;
  const showJump = paused || !stick;
  ui.jump.hidden = !showJump;
  if (showJump) ui.jump.textContent = waiting ? `${waiting} new · jump to latest` : "Jump to latest";
}

// ---------------------------------------------------------------------------
// Actors.

const actors = new Map<string, ActorView>();
const dirtyActors = new Set<ActorView>();
let flashColor = "";
const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");

function actorView(name: string): ActorView {
  let view = actors.get(name);
  if (view) return view;
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
  view = { name, lastSeen: 0, keywords: new Map(), item, details, meta, rows: new Map(), changed: new Set() };
  const created = view;
  filterButton.addEventListener("click", () => {
    ui.filterActor.value = name;
    applyFilters();
  });
  commandButton.addEventListener("click", () => {
    ui.commandActor.value = name;
    ui.commandText.focus();
  });
  details.addEventListener("toggle", () => {
    if (details.open) buildKeywordTable(created);
    else {
      created.table?.parentElement?.remove();
      created.table = undefined;
      created.rows.clear();
    }
  });
  actors.set(name, view);
  // Keep the list sorted by name; new actors are rare next to replies.
  let before: Element | null = null;
  for (const other of ui.actors.children) {
    if ((other as HTMLElement).dataset.actor!.localeCompare(name) > 0) {
      before = other;
      break;
    }
  }
  ui.actors.insertBefore(item, before);
  const option = el("option");
  option.value = name;
  ui.actorNames.append(option);
  ui.actorCount.textContent = `(${actors.size})`;
  item.hidden = !matchesActorFind(name);
  return view;
}

function matchesActorFind(name: string): boolean {
  const query = ui.actorFind.value.trim().toLowerCase();
  return !query || name.toLowerCase().includes(query);
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

function setKeyword(view: ActorView, key: string, value: KeywordView): void {
  const current = view.keywords.get(key);
  if (current && current.seq > value.seq) return;
  view.keywords.set(key, value);
  view.changed.add(key);
  dirtyActors.add(view);
}

/** Updates the actors from a reply on the exchange (not from frames the gateway made for us). */
function actorsFromReply(frame: Frame): void {
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

async function loadActorState(current: CluClient): Promise<void> {
  try {
    const snapshot = await current.actorState();
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
    schedule();
  } catch {
    // The connection dropped; the next welcome asks again.
  }
}

function renderActors(): void {
  if (dirtyActors.size === 0) return;
  const flash = !reducedMotion.matches;
  for (const view of dirtyActors) {
    view.meta.textContent = `${view.keywords.size} kw · ${view.lastSeen ? ago(view.lastSeen) : "—"}`;
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
          row.cells[1].animate([{ backgroundColor: flashColor }, { backgroundColor: "transparent" }], {
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

function refreshLastSeen(): void {
  for (const view of actors.values()) {
    if (!view.item.hidden) {
      view.meta.textContent = `${view.keywords.size} kw · ${view.lastSeen ? ago(view.lastSeen) : "—"}`;
    }
  }
}

// ---------------------------------------------------------------------------
// Commands.

const commandViews = new Map<string, CommandView>();
let commandHistory: Array<{ actor: string; text: string }> = [];
let historyIndex = 0;
let draft: { actor: string; text: string } | undefined;
let ticker: ReturnType<typeof setInterval> | undefined;

function loadHistory(): void {
  try {
    const parsed = JSON.parse(load("local", HISTORY_KEY) ?? "[]");
    if (Array.isArray(parsed)) {
      commandHistory = parsed.filter((h) => typeof h?.actor === "string" && typeof h?.text === "string");
    }
  } catch {
    commandHistory = [];
  }
  historyIndex = commandHistory.length;
}

function remember(actor: string, text: string): void {
  const last = commandHistory.at(-1);
  if (!last || last.actor !== actor || last.text !== text) commandHistory.push({ actor, text });
  if (commandHistory.length > HISTORY_SIZE) commandHistory.splice(0, commandHistory.length - HISTORY_SIZE);
  historyIndex = commandHistory.length;
  draft = undefined;
  save("local", HISTORY_KEY, JSON.stringify(commandHistory));
}

function onCommandKey(event: KeyboardEvent): void {
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  if (historyIndex === commandHistory.length) {
    draft = { actor: ui.commandActor.value, text: ui.commandText.value };
  }
  historyIndex = event.key === "ArrowUp"
    ? Math.max(0, historyIndex - 1)
    : Math.min(commandHistory.length, historyIndex + 1);
  const shown = historyIndex < commandHistory.length ? commandHistory[historyIndex] : draft;
  if (!shown) return;
  ui.commandActor.value = shown.actor;
  ui.commandText.value = shown.text;
  const end = shown.text.length;
  ui.commandText.setSelectionRange(end, end);
}

function sendCommand(event: SubmitEvent): void {
  event.preventDefault();
  const actor = ui.commandActor.value.trim();
  const text = ui.commandText.value.trim();
  if (!actor || !text) return;
  remember(actor, text);
  ui.commandText.value = "";
  const view = commandView(newCommandId(), actor, text);
  if (!client) {
    finishCommand(view, undefined, "not connected to the gateway");
    return;
  }
  client.command(actor, text, { commandId: view.id }).then(
    (result) => finishCommand(view, result),
    (err) =>
      finishCommand(
        view,
        err instanceof CommandError ? err.result : undefined,
        err instanceof Error ? err.message : String(err),
      ),
  );
}

function commandView(id: string, actor: string, text: string): CommandView {
  const item = el("li", "command-item st-sent");
  item.dataset.commandId = id;
  item.dataset.state = "sent";
  const line = el("div", "command-line");
  const what = el("span", "what", `${actor} ${text}`);
  what.title = `${actor} ${text}\ncommand id ${id}`;
  const stateEl = el("span", "state", "sent");
  const elapsedEl = el("span", "elapsed", "0 ms");
  line.append(what, stateEl, elapsedEl);
  const trailEl = el("div", "trail", "sent");
  const errorEl = el("div", "command-error");
  errorEl.hidden = true;
  const toggle = el("button", "replies-toggle", "Replies (0)");
  toggle.type = "button";
  toggle.setAttribute("aria-expanded", "false");
  item.append(line, trailEl, errorEl, toggle);
  const view: CommandView = {
    id,
    started: performance.now(),
    state: "sent",
    trail: ["sent"],
    replies: [],
    item,
    stateEl,
    elapsedEl,
    trailEl,
    errorEl,
    toggle,
  };
  toggle.addEventListener("click", () => toggleReplies(view));
  commandViews.set(id, view);
  ui.commands.querySelector(".panel-empty")?.remove();
  ui.commands.prepend(item);
  while (ui.commands.childElementCount > MAX_COMMANDS) {
    const last = ui.commands.lastElementChild as HTMLElement;
    commandViews.delete(last.dataset.commandId ?? "");
    last.remove();
  }
  ticker ??= setInterval(tickCommands, 100);
  return view;
}

function setCommandState(view: CommandView, state: CommandState, elapsedMs: number): void {
  view.state = state;
  view.trail.push(`${state} ${duration(elapsedMs)}`);
  view.trailEl.textContent = view.trail.join(" → ");
  view.stateEl.textContent = state;
  view.item.className = `command-item st-${state}`;
  view.item.dataset.state = state;
  view.elapsedEl.textContent = duration(elapsedMs);
}

function finishCommand(view: CommandView, result: CommandResult | undefined, error?: string): void {
  const elapsed = result?.elapsedMs ?? performance.now() - view.started;
  setCommandState(view, result?.status ?? "failed", elapsed);
  if (result?.status !== "done") {
    const reason = result?.error ??
      (result?.replies.length ? jsonText(result.replies.at(-1)?.body) : undefined) ?? error ?? "failed";
    view.errorEl.textContent = reason;
    view.errorEl.hidden = false;
  }
}

function commandReply(frame: Frame): void {
  const id = frame.headers.command_id;
  if (id === undefined || id === null) return;
  const view = commandViews.get(String(id));
  if (!view) return;
  view.replies.push(frame);
  view.toggle.textContent = `Replies (${view.replies.length})`;
  if (view.repliesBox) view.repliesBox.append(rowFor(entryOf(frame), false));
  if (view.state === "sent" && frame.headers.message_code === ">") {
    setCommandState(view, "running", performance.now() - view.started);
  }
}

function toggleReplies(view: CommandView): void {
  if (view.repliesBox) {
    view.repliesBox.remove();
    view.repliesBox = undefined;
    view.toggle.setAttribute("aria-expanded", "false");
    return;
  }
  const box = el("div", "replies");
  box.addEventListener("click", onRowClick);
  for (const frame of view.replies) box.append(rowFor(entryOf(frame), false));
  view.repliesBox = box;
  view.item.append(box);
  view.toggle.setAttribute("aria-expanded", "true");
}

function tickCommands(): void {
  let running = 0;
  for (const view of commandViews.values()) {
    if (view.state !== "sent" && view.state !== "running") continue;
    running++;
    view.elapsedEl.textContent = duration(performance.now() - view.started);
  }
  if (running === 0) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

function setRole(role: Welcome["role"] | undefined): void {
  const watchOnly = role === "watch";
  ui.commandFields.disabled = watchOnly;
  ui.commandBar.dataset.role = role ?? "";
  if (watchOnly) ui.commandNote.textContent = "This access token may only watch: commands are off.";
}

// ---------------------------------------------------------------------------
// Connection, broker state and the token.

let client: CluClient | undefined;
let welcome: Welcome | undefined;
let token: string | undefined;
let everOpen = false;
let checkingToken = false;
let lastTokenCheck = -Infinity;
const stopListening: Array<() => void> = [];

const GATEWAY_LABELS: Record<string, string> = {
  connecting: "connecting…",
  open: "connected",
  closed: "disconnected, retrying",
};

function showGateway(state: string): void {
  ui.gatewayState.dataset.state = state;
  ui.gatewayState.textContent = `Gateway: ${GATEWAY_LABELS[state] ?? state}`;
  document.title = state === "open" ? "clu-ws console" : `clu-ws console (${GATEWAY_LABELS[state] ?? state})`;
  if (state !== "open") showBroker("unknown");
}

function showBroker(state: string): void {
  ui.brokerState.dataset.state = state;
  ui.brokerState.textContent = `RabbitMQ: ${state}`;
}

function entryOf(frame: Frame): Entry {
  const id = frame.headers.command_id;
  return {
    frame,
    code: String(frame.headers.message_code ?? "").toLowerCase(),
    actor: typeof frame.headers.sender === "string" ? frame.headers.sender : "",
    commandId: id === undefined || id === null ? "" : String(id),
    at: Date.now(),
  };
}

function connect(): void {
  for (const stop of stopListening.splice(0)) stop();
  client?.close();
  const url = new URL(".", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const current = new CluClient(url.href, token ? { token } : {});
  client = current;
  let lastBroker = "";
  stopListening.push(
    current.on("reply", (frame) => {
      received++;
      addEntry(entryOf(frame));
      actorsFromReply(frame);
      commandReply(frame);
      if (dirtyActors.size) schedule();
    }),
    current.on("connection", (state) => {
      showGateway(state);
      if (state === "closed") {
        const dropped = welcome !== undefined;
        if (everOpen && dropped) note("Connection to the gateway lost; reconnecting.");
        welcome = undefined;
        lastBroker = "";
        // A refused attempt (not a dropped connection) may be a token the gateway no longer takes.
        if (!dropped) recheckToken(current);
      }
    }),
    current.on("broker", (state) => {
      showBroker(state);
      if (lastBroker && state !== lastBroker) note(`RabbitMQ link ${state}.`);
      lastBroker = state;
    }),
    current.on("gap", (gap) => {
      // Positions may have restarted (a new epoch): what we hold is older than anything to come.
      for (const view of actors.values()) for (const kw of view.keywords.values()) kw.seq = -1;
      note(`Some replies were missed (${gap.reason}); actor state reloaded.`);
    }),
    current.on("welcome", (hello) => {
      if (everOpen && !welcome) note("Reconnected to the gateway.");
      everOpen = true;
      welcome = hello;
      ui.info.textContent = `${hello.exchange} · role ${hello.role}`;
      ui.info.title = `gateway ${hello.name}, epoch ${hello.epoch}`;
      setRole(hello.role);
      loadActorState(current);
    }),
  );
  showGateway(current.state);
}

/** `GET actors` with the token: 401 means the gateway wants a (different) token. */
async function probe(candidate: string | undefined): Promise<number> {
  try {
    const response = await fetch(new URL("actors", location.href), {
      headers: candidate ? { authorization: `Bearer ${candidate}` } : {},
      cache: "no-store",
    });
    await response.text();
    return response.status;
  } catch {
    return 0;
  }
}

/** Shows the token prompt until the gateway accepts a token. */
async function obtainToken(reason: string): Promise<void> {
  ui.tokenError.textContent = reason;
  ui.gatewayState.dataset.state = "connecting";
  ui.gatewayState.textContent = "Gateway: waiting for a token";
  if (!ui.tokenDialog.open) ui.tokenDialog.showModal();
  while (true) {
    ui.tokenInput.focus();
    const candidate = await new Promise<string>((resolve) => {
      ui.tokenForm.addEventListener("submit", (event) => {
        event.preventDefault();
        resolve(ui.tokenInput.value.trim());
      }, { once: true });
    });
    if (!candidate) continue;
    const status = await probe(candidate);
    if (status === 401) {
      ui.tokenError.textContent = "The gateway refused that token. Check it and try again.";
      ui.tokenInput.select();
      continue;
    }
    token = candidate;
    save("session", TOKEN_KEY, token);
    ui.tokenInput.value = "";
    ui.tokenError.textContent = "";
    ui.tokenDialog.close();
    ui.forgetToken.hidden = false;
    return;
  }
}

/** After a lost connection: if the token is no longer accepted, ask for another. */
async function recheckToken(current: CluClient): Promise<void> {
  if (checkingToken || performance.now() - lastTokenCheck < 5000) return;
  checkingToken = true;
  lastTokenCheck = performance.now();
  try {
    if (await probe(token) !== 401 || client !== current) return;
    current.close();
    token = undefined;
    save("session", TOKEN_KEY, null);
    ui.forgetToken.hidden = true;
    await obtainToken(everOpen ? "The gateway no longer accepts the token; give another." : "");
    connect();
  } finally {
    checkingToken = false;
  }
}

// ---------------------------------------------------------------------------
// Theme and keyboard.

function setNight(night: boolean): void {
  document.documentElement.dataset.theme = night ? "night" : "day";
  ui.night.setAttribute("aria-pressed", String(night));
  save("local", THEME_KEY, night ? "night" : "day");
  flashColor = getComputedStyle(document.documentElement).getPropertyValue("--flash").trim();
}

function onKey(event: KeyboardEvent): void {
  if (event.altKey || event.ctrlKey || event.metaKey || ui.tokenDialog.open) return;
  const target = event.target as HTMLElement;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  if (event.key === "/") {
    event.preventDefault();
    ui.filterText.focus();
  } else if (event.key === "p") {
    setPaused(!paused);
  } else if (event.key === "n") {
    setNight(ui.night.getAttribute("aria-pressed") !== "true");
  } else if (event.key === "End" && target.closest("button, summary") === null) {
    event.preventDefault();
    jumpToLatest();
  }
}

// ---------------------------------------------------------------------------
// Start.

async function main(): Promise<void> {
  setNight(load("local", THEME_KEY) === "night");
  document.documentElement.classList.remove("loading");
  buildCodeBoxes();
  filtersFromUrl();
  loadHistory();
  rerender();
  const commandsEmpty = el("li", "panel-empty", "Commands you send appear here.");
  ui.commands.append(commandsEmpty);

  ui.filters.addEventListener("submit", (event) => event.preventDefault());
  ui.filters.addEventListener("input", applyFilters);
  ui.filterClear.addEventListener("click", () => {
    ui.filterActor.value = "";
    ui.filterText.value = "";
    for (const box of codeBoxes.values()) box.checked = true;
    applyFilters();
  });
  ui.stream.addEventListener("click", onRowClick);
  ui.stream.addEventListener("keydown", onStreamKey);
  ui.stream.addEventListener("scroll", onScroll, { passive: true });
  // A stream that changes size (window, header wrapping) stays at the bottom if it was there.
  new ResizeObserver(() => {
    if (stick) scrollToEnd();
  }).observe(ui.stream);
  ui.jump.addEventListener("click", jumpToLatest);
  ui.pause.addEventListener("click", () => setPaused(!paused));
  ui.night.addEventListener("click", () => setNight(ui.night.getAttribute("aria-pressed") !== "true"));
  ui.forgetToken.addEventListener("click", () => {
    save("session", TOKEN_KEY, null);
    location.reload();
  });
  ui.actorFind.addEventListener("input", () => {
    for (const view of actors.values()) view.item.hidden = !matchesActorFind(view.name);
  });
  ui.commandBar.addEventListener("submit", sendCommand);
  ui.commandText.addEventListener("keydown", onCommandKey);
  ui.tokenDialog.addEventListener("cancel", (event) => event.preventDefault());
  document.addEventListener("keydown", onKey);
  setInterval(() => {
    ui.rate.textContent = `${received} msg/s`;
    received = 0;
    refreshLastSeen();
  }, 1000);

  token = load("session", TOKEN_KEY) ?? undefined;
  ui.forgetToken.hidden = token === undefined;
  if (await probe(token) === 401) {
    if (token) save("session", TOKEN_KEY, null);
    token = undefined;
    await obtainToken("");
  }
  connect();
}

main();
