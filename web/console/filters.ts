/// <reference lib="dom" />
/**
 * The filters panel: actor words, code boxes and free text, read from the URL
 * when the page opens and written back to it (a moment after the last change)
 * so that a link shows the same view.
 *
 * @module
 */

import { byId, el } from "./dom.ts";
import { CODES, type Entry } from "./format.ts";
import {
  chosenCodes,
  type Filter,
  type FilterForm,
  formFromQuery,
  matchesFilter,
  parseFilter,
  queryWithForm,
} from "./filter_query.ts";

/** Options for {@linkcode createFilters}. */
export interface FiltersOptions {
  /** Called when the filters change, to show the stream again through them. */
  onChange: () => void;
}

/** The filters form. */
export interface Filters {
  /** Whether `entry` passes the filters in force. */
  matches(entry: Entry): boolean;
  /** Shows only `actor`'s replies. */
  showActor(actor: string): void;
  /** Shows only replies that contain `text` (a command id). */
  showText(text: string): void;
  /** Puts the cursor in the free-text box. */
  focusText(): void;
}

/** Builds the code boxes, fills the form from the URL (without calling `onChange`) and listens to it. */
export function createFilters(options: FiltersOptions): Filters {
  const form = byId<HTMLFormElement>("filters");
  const actorInput = byId<HTMLInputElement>("filter-actor");
  const textInput = byId<HTMLInputElement>("filter-text");
  const boxes = new Map<string, HTMLInputElement>();
  let filter: Filter = { include: [], exclude: [], codes: undefined, text: "" };
  let urlTimer: ReturnType<typeof setTimeout> | undefined;

  function read(): FilterForm {
    const ticked = [...boxes].filter(([, box]) => box.checked).map(([code]) => code);
    return { actor: actorInput.value, codes: chosenCodes(ticked), text: textInput.value };
  }

  /** Applies the form's filters to the stream and, a moment later, to the URL. */
  function apply(): void {
    const shown = read();
    filter = parseFilter(shown);
    options.onChange();
    clearTimeout(urlTimer);
    urlTimer = setTimeout(() => {
      const query = queryWithForm(location.search, shown);
      history.replaceState(
        history.state,
        "",
        `${location.pathname}${query ? `?${query}` : ""}${location.hash}`,
      );
    }, 150);
  }

  const codeSet = byId<HTMLFieldSetElement>("filter-codes");
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
    boxes.set(code, box);
    codeSet.append(label);
  }

  // The filters from the URL, into the form.
  const linked = formFromQuery(location.search);
  actorInput.value = linked.actor;
  textInput.value = linked.text;
  for (const [code, box] of boxes) box.checked = linked.codes === undefined || linked.codes.has(code);
  filter = parseFilter(read());

  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("input", apply);
  byId<HTMLButtonElement>("filter-clear").addEventListener("click", () => {
    actorInput.value = "";
    textInput.value = "";
    for (const box of boxes.values()) box.checked = true;
    apply();
  });

  return {
    matches: (entry) => matchesFilter(filter, entry),
    showActor(actor) {
      actorInput.value = actor;
      apply();
    },
    showText(text) {
      textInput.value = text;
      apply();
    },
    focusText: () => textInput.focus(),
  };
}
