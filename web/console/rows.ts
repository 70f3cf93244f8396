/// <reference lib="dom" />
/**
 * One reply as a row, in the stream and in a command's replies: time, code,
 * actor, command id (a button that filters to it), the body as
 * `keyword=value; …`, and `{…}` that expands the full JSON.
 *
 * @module
 */

import { el } from "./dom.ts";
import { clock, type Entry, formatValue, kindOf, meaningOf, timeOf } from "./format.ts";

/** Keywords shown in a row's compact body before "…". */
const ROW_KEYWORDS = 24;

/** The entry each row shows, for its full JSON. */
const rowEntries = new WeakMap<Element, Entry>();

/**
 * A row for `entry`. Rows of the stream are reached with the arrow keys (one
 * tab stop for the whole stream, not two per row): they and their buttons are
 * focusable but out of the tab order.
 */
export function rowFor(entry: Entry, inStream: boolean = true): HTMLElement {
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

/** Shows or hides the full JSON of the row that `button` (its `{…}`) belongs to. */
export function toggleJson(button: HTMLButtonElement): void {
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

/**
 * The click handler for a box of rows: a row's `{…}` shows its full JSON, its
 * command id is handed to `onCommandId` (which filters to it).
 */
export function rowClicks(onCommandId: (id: string) => void): (event: MouseEvent) => void {
  return (event) => {
    const target = event.target as HTMLElement;
    const button = target.closest("button");
    if (!button) return;
    if (button.classList.contains("expand")) toggleJson(button);
    else if (button.classList.contains("cid")) onCommandId(button.textContent ?? "");
  };
}
