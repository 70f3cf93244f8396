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

/** Options for {@linkcode Stream}. */
export interface StreamOptions {
  /** Whether an entry passes the filters. */
  matches: (entry: Entry) => boolean;
  /** Called at the start of each render, to write other panels in the same frame (the actors). */
  beforeRender: () => void;
  /** Clicks on the rows (`{…}` and command ids). */
  onRowClick: (event: MouseEvent) => void;
}

/** The stream panel: rows, pause, scroll-back and the counts line. */
export class Stream {
  #stream = byId("stream");
  #empty = byId("empty");
  #counts = byId("counts");
  #jump = byId<HTMLButtonElement>("jump");
  #pause = byId<HTMLButtonElement>("pause");
  #matches: (entry: Entry) => boolean;
  #beforeRender: () => void;

  #buffer: Entry[] = [];
  /** Matching entries not yet on the page (paused, scrolled up, or waiting for the next frame). */
  #pending: Entry[] = [];
  /** How many matching entries arrived while the view was held (pending is trimmed; this is not). */
  #held = 0;
  #paused = false;
  /** Follow the newest row; false once the user scrolls up. */
  #stick = true;
  #lastScrollTop = 0;
  #frameRequested = false;
  /** Rows on the page (in the chunks of the stream). */
  #rowCount = 0;
  #lastRender = 0;
  #renderTimer: ReturnType<typeof setTimeout> | undefined;

  /** Listens to the stream's clicks, keys, scrolling and size, and to the pause and jump buttons. */
  constructor(options: StreamOptions) {
    this.#matches = options.matches;
    this.#beforeRender = options.beforeRender;
    this.#stream.addEventListener("click", options.onRowClick);
    this.#stream.addEventListener("keydown", (event) => this.#onKey(event));
    this.#stream.addEventListener("scroll", () => this.#onScroll(), { passive: true });
    // A stream that changes size (window, header wrapping) stays at the bottom if it was there.
    new ResizeObserver(() => {
      if (this.#stick) this.#scrollToEnd();
    }).observe(this.#stream);
    this.#jump.addEventListener("click", () => this.jumpToLatest());
    this.#pause.addEventListener("click", () => this.togglePause());
  }

  /** Asks for a render on the next animation frame, but not sooner than {@linkcode MIN_RENDER_MS} after the last. */
  schedule(): void {
    if (this.#frameRequested || this.#renderTimer !== undefined) return;
    const wait = this.#lastRender + MIN_RENDER_MS - performance.now();
    if (wait > 0) {
      this.#renderTimer = setTimeout(() => {
        this.#renderTimer = undefined;
        this.schedule();
      }, wait);
      return;
    }
    this.#frameRequested = true;
    requestAnimationFrame(() => {
      this.#frameRequested = false;
      this.#render();
    });
  }

  /** Keeps `entry` and, if it passes the filters, shows it with the next render. */
  add(entry: Entry): void {
    const buffer = this.#buffer;
    buffer.push(entry);
    if (buffer.length > MAX_BUFFER + 500) buffer.splice(0, buffer.length - MAX_BUFFER);
    if (!this.#matches(entry)) return;
    this.#pending.push(entry);
    this.#held++;
    if (this.#pending.length > MAX_ROWS + 500) this.#pending.splice(0, this.#pending.length - MAX_ROWS);
    this.schedule();
  }

  /** Adds a note of the console's own (connection lost, gap). */
  note(text: string): void {
    this.add(noteEntry(text));
  }

  /** Shows the newest matching entries again from the buffer (after a filter change). */
  rerender(): void {
    this.#stream.replaceChildren();
    this.#rowCount = 0;
    this.#pending = [];
    this.#held = 0;
    const entries: Entry[] = [];
    const buffer = this.#buffer;
    for (let i = buffer.length - 1; i >= 0 && entries.length < MAX_ROWS; i--) {
      if (this.#matches(buffer[i])) entries.push(buffer[i]);
    }
    entries.reverse();
    this.#stick = true;
    this.#appendRows(entries);
    this.#empty.hidden = entries.length > 0;
    this.#empty.textContent = buffer.length ? "No replies match the filters." : "Waiting for replies…";
    this.#updateCounts();
    this.#scrollToEnd();
  }

  /** Unpauses, follows the newest rows again and scrolls to them. */
  jumpToLatest(): void {
    this.#paused = false;
    this.#stick = true;
    this.#pause.setAttribute("aria-pressed", "false");
    this.#render();
    this.#scrollToEnd();
  }

  /** Pauses if running, runs if paused. */
  togglePause(): void {
    this.#setPaused(!this.#paused);
  }

  /** Brings the page up to date: actors, new rows (unless held), counts. */
  #render(): void {
    this.#lastRender = performance.now();
    // Every write first, then the one read that scrolling needs: one layout per render.
    this.#beforeRender();
    let added = false;
    if (!this.#paused && this.#stick && this.#pending.length) {
      const pending = this.#pending;
      const entries = pending.length > MAX_ROWS ? pending.slice(-MAX_ROWS) : pending;
      this.#pending = [];
      this.#held = 0;
      added = this.#appendRows(entries);
    }
    this.#updateCounts();
    if (added && this.#stick) this.#scrollToEnd();
  }

  #scrollToEnd(): void {
    this.#stream.scrollTop = this.#stream.scrollHeight;
    this.#lastScrollTop = this.#stream.scrollTop;
  }

  /** Adds rows for `entries` and drops the oldest beyond {@linkcode MAX_ROWS}; true if any were added. */
  #appendRows(entries: Entry[]): boolean {
    if (entries.length === 0) return false;
    const stream = this.#stream;
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
    this.#rowCount += entries.length;
    // Whole chunks go once the rest still holds MAX_ROWS - CHUNK_ROWS rows or more.
    while (stream.firstElementChild && stream.firstElementChild !== chunk) {
      const first = stream.firstElementChild;
      if (this.#rowCount - first.childElementCount < MAX_ROWS - CHUNK_ROWS && this.#rowCount <= MAX_ROWS) {
        break;
      }
      this.#rowCount -= first.childElementCount;
      first.remove();
    }
    this.#empty.hidden = true;
    return true;
  }

  /** Keys in the stream: ↑/↓/Home move between rows, Enter shows the JSON, c filters to the command. */
  #onKey(event: KeyboardEvent): void {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const focused = document.activeElement as HTMLElement | null;
    const row = focused && focused !== this.#stream ? focused.closest<HTMLElement>(".row, .note") : null;
    let next: HTMLElement | null | undefined;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      next = row
        ? adjacentRow(row, step)
        : this.#stream.lastElementChild?.lastElementChild as HTMLElement | null;
    } else if (event.key === "Home") {
      next = this.#stream.firstElementChild?.firstElementChild as HTMLElement | null;
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

  #atBottom(): boolean {
    const s = this.#stream;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 24;
  }

  /**
   * Follows the user's scrolling: back at the bottom follows the newest rows
   * again; scrolling up stops following. Only a move up counts as the user
   * leaving the bottom, not a layout change (a header that wraps, a resize)
   * that leaves the view short of it.
   */
  #onScroll(): void {
    const top = this.#stream.scrollTop;
    const movedUp = top < this.#lastScrollTop - 1;
    this.#lastScrollTop = top;
    if (this.#atBottom()) {
      if (this.#stick) return;
      this.#stick = true;
      this.schedule();
    } else if (this.#stick && movedUp) {
      this.#stick = false;
    } else return;
    this.#updateCounts();
  }

  #setPaused(value: boolean): void {
    this.#paused = value;
    this.#pause.setAttribute("aria-pressed", String(value));
    if (!value) {
      this.#stick = true;
      this.schedule();
    }
    this.#updateCounts();
  }

  #updateCounts(): void {
    const paused = this.#paused;
    const waiting = paused || !this.#stick ? this.#held : 0;
    this.#counts.textContent = `${this.#rowCount} shown${paused ? " · paused" : ""}${
      waiting ? ` · ${waiting} new` : ""
    }`;
    const showJump = paused || !this.#stick;
    this.#jump.hidden = !showJump;
    if (showJump) this.#jump.textContent = waiting ? `${waiting} new · jump to latest` : "Jump to latest";
  }
}

/** The row before or after `row` in the stream, across chunks. */
function adjacentRow(row: Element, step: 1 | -1): HTMLElement | null {
  const sibling = step > 0 ? row.nextElementSibling : row.previousElementSibling;
  if (sibling) return sibling as HTMLElement;
  const chunk = step > 0 ? row.parentElement?.nextElementSibling : row.parentElement?.previousElementSibling;
  return ((step > 0 ? chunk?.firstElementChild : chunk?.lastElementChild) ?? null) as HTMLElement | null;
}
