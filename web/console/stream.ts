/// <reference lib="dom" />
/**
 * The live stream of replies. It stays cheap at hundreds of replies per
 * second: replies land in a bounded buffer; rows are added in batches on an
 * animation frame, at most every {@linkcode MIN_RENDER_MS}; they live in
 * chunks that lay out on their own; the page keeps at most
 * {@linkcode MAX_ROWS}; and nothing is added while the user has paused or
 * scrolled up to read.
 *
 * @module
 */

import { byId, el } from "./dom.ts";
import { type Entry, noteEntry } from "./format.ts";
import { rowFor, toggleJson } from "./rows.ts";

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
/**
 * Least time between two renders. Rows are added on an animation frame, but
 * not more often than this: at hundreds of replies a second, layout and paint
 * cost more per render than per row, and nobody reads faster anyway.
 */
const MIN_RENDER_MS = 100;

/** Options for {@linkcode createStream}. */
export interface StreamOptions {
  /** Whether an entry passes the filters. */
  matches: (entry: Entry) => boolean;
  /** Called at the start of each render, to write other panels in the same frame (the actors). */
  beforeRender: () => void;
  /** Clicks on the rows (`{…}` and command ids). */
  onRowClick: (event: MouseEvent) => void;
}

/** The stream panel: rows, pause, scroll-back and the counts line. */
export interface Stream {
  /** Asks for a render on the next animation frame, but not sooner than {@linkcode MIN_RENDER_MS} after the last. */
  schedule(): void;
  /** Keeps `entry` and, if it passes the filters, shows it with the next render. */
  add(entry: Entry): void;
  /** Adds a note of the console's own (connection lost, gap). */
  note(text: string): void;
  /**
   * Puts older replies (from the history stream) before everything kept, and
   * shows the newest matching again; those already kept are left out.
   *
   * @returns how many were added.
   */
  addHistory(entries: Entry[]): number;
  /** Shows the newest matching entries again from the buffer (after a filter change). */
  rerender(): void;
  /** Unpauses, follows the newest rows again and scrolls to them. */
  jumpToLatest(): void;
  /** Pauses if running, runs if paused. */
  togglePause(): void;
}

/** Listens to the stream's clicks, keys, scrolling and size, and to the pause and jump buttons. */
export function createStream(options: StreamOptions): Stream {
  const { matches, beforeRender } = options;
  const stream = byId("stream");
  const empty = byId("empty");
  const counts = byId("counts");
  const jump = byId<HTMLButtonElement>("jump");
  const pause = byId<HTMLButtonElement>("pause");

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

  function add(entry: Entry): void {
    buffer.push(entry);
    if (buffer.length > MAX_BUFFER + 500) buffer.splice(0, buffer.length - MAX_BUFFER);
    if (!matches(entry)) return;
    pending.push(entry);
    held++;
    if (pending.length > MAX_ROWS + 500) pending.splice(0, pending.length - MAX_ROWS);
    schedule();
  }

  function flush(): void {
    frameRequested = false;
    render();
  }

  function addHistory(entries: Entry[]): number {
    const kept = buffer.find((entry) => entry.frame?.seq !== undefined)?.frame?.seq ?? Infinity;
    const older = entries.filter((entry) => (entry.frame?.seq ?? 0) < kept).slice(-MAX_BUFFER);
    buffer.splice(0, 0, ...older);
    if (buffer.length > MAX_BUFFER + 500) buffer.splice(0, buffer.length - MAX_BUFFER);
    rerender();
    return older.length;
  }

  /** Brings the page up to date: actors, new rows (unless held), counts. */
  function render(): void {
    lastRender = performance.now();
    // Every write first, then the one read that scrolling needs: one layout per render.
    beforeRender();
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
    stream.scrollTop = stream.scrollHeight;
    lastScrollTop = stream.scrollTop;
  }

  /** Adds rows for `entries` and drops the oldest beyond {@linkcode MAX_ROWS}; true if any were added. */
  function appendRows(entries: Entry[]): boolean {
    if (entries.length === 0) return false;
    let chunk = stream.lastElementChild as HTMLElement | null;
    let room = chunk ? CHUNK_ROWS - chunk.childElementCount : 0;
    let fragment = document.createDocumentFragment();
    for (const entry of entries) {
      if (room === 0) {
        chunk?.append(fragment);
        chunk = stream.appendChild(el("div", "chunk"));
        fragment = document.createDocumentFragment();
        room = CHUNK_ROWS;
      }
      fragment.append(rowFor(entry));
      room--;
    }
    chunk!.append(fragment);
    rowCount += entries.length;
    // Whole chunks go once the rest still holds MAX_ROWS - CHUNK_ROWS rows or more.
    while (stream.firstElementChild && stream.firstElementChild !== chunk) {
      const first = stream.firstElementChild;
      if (rowCount - first.childElementCount < MAX_ROWS - CHUNK_ROWS && rowCount <= MAX_ROWS) break;
      rowCount -= first.childElementCount;
      first.remove();
    }
    empty.hidden = true;
    return true;
  }

  function rerender(): void {
    stream.replaceChildren();
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
    empty.hidden = entries.length > 0;
    empty.textContent = buffer.length ? "No replies match the filters." : "Waiting for replies…";
    updateCounts();
    scrollToEnd();
  }

  /** Keys in the stream: ↑/↓/Home move between rows, Enter shows the JSON, c filters to the command. */
  function onStreamKey(event: KeyboardEvent): void {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const focused = document.activeElement as HTMLElement | null;
    const row = focused && focused !== stream ? focused.closest<HTMLElement>(".row, .note") : null;
    let next: HTMLElement | null | undefined;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      next = row ? adjacentRow(row, step) : stream.lastElementChild?.lastElementChild as HTMLElement | null;
    } else if (event.key === "Home") {
      next = stream.firstElementChild?.firstElementChild as HTMLElement | null;
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
    return stream.scrollHeight - stream.scrollTop - stream.clientHeight < 24;
  }

  /**
   * Follows the user's scrolling: back at the bottom follows the newest rows
   * again; scrolling up stops following. Only a move up counts as the user
   * leaving the bottom, not a layout change (a header that wraps, a resize)
   * that leaves the view short of it.
   */
  function onScroll(): void {
    const top = stream.scrollTop;
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
    pause.setAttribute("aria-pressed", "false");
    render();
    scrollToEnd();
  }

  function setPaused(value: boolean): void {
    paused = value;
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      stick = true;
      schedule();
    }
    updateCounts();
  }

  function updateCounts(): void {
    const waiting = paused || !stick ? held : 0;
    counts.textContent = `${rowCount} shown${paused ? " · paused" : ""}${waiting ? ` · ${waiting} new` : ""}`;
    const showJump = paused || !stick;
    jump.hidden = !showJump;
    if (showJump) jump.textContent = waiting ? `${waiting} new · jump to latest` : "Jump to latest";
  }

  stream.addEventListener("click", options.onRowClick);
  stream.addEventListener("keydown", onStreamKey);
  stream.addEventListener("scroll", onScroll, { passive: true });
  // A stream that changes size (window, header wrapping) stays at the bottom if it was there.
  new ResizeObserver(() => {
    if (stick) scrollToEnd();
  }).observe(stream);
  jump.addEventListener("click", jumpToLatest);
  pause.addEventListener("click", () => setPaused(!paused));

  return {
    schedule,
    add,
    note: (text) => add(noteEntry(text)),
    addHistory,
    rerender,
    jumpToLatest,
    togglePause: () => setPaused(!paused),
  };
}

/** The row before or after `row` in the stream, across chunks. */
function adjacentRow(row: Element, step: 1 | -1): HTMLElement | null {
  const sibling = step > 0 ? row.nextElementSibling : row.previousElementSibling;
  if (sibling) return sibling as HTMLElement;
  const chunk = step > 0 ? row.parentElement?.nextElementSibling : row.parentElement?.previousElementSibling;
  return ((step > 0 ? chunk?.firstElementChild : chunk?.lastElementChild) ?? null) as HTMLElement | null;
}
