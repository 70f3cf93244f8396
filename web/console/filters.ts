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

/** Options for {@linkcode Filters}. */
export interface FiltersOptions {
  /** Called when the filters change, to show the stream again through them. */
  onChange: () => void;
}

/** The filters form; {@linkcode Filters.matches} tests entries against what it holds. */
export class Filters {
  #form = byId<HTMLFormElement>("filters");
  #actor = byId<HTMLInputElement>("filter-actor");
  #codeSet = byId<HTMLFieldSetElement>("filter-codes");
  #text = byId<HTMLInputElement>("filter-text");
  #boxes = new Map<string, HTMLInputElement>();
  #filter: Filter = { include: [], exclude: [], codes: undefined, text: "" };
  #urlTimer: ReturnType<typeof setTimeout> | undefined;
  #onChange: () => void;

  /** Builds the code boxes and fills the form from the URL (without telling `onChange`). */
  constructor(options: FiltersOptions) {
    this.#onChange = options.onChange;
    this.#buildCodeBoxes();
    this.#fromUrl();
    this.#form.addEventListener("submit", (event) => event.preventDefault());
    this.#form.addEventListener("input", () => this.apply());
    byId<HTMLButtonElement>("filter-clear").addEventListener("click", () => {
      this.#actor.value = "";
      this.#text.value = "";
      for (const box of this.#boxes.values()) box.checked = true;
      this.apply();
    });
  }

  /** Whether `entry` passes the filters in force. */
  matches(entry: Entry): boolean {
    return matchesFilter(this.#filter, entry);
  }

  /** Shows only `actor`'s replies. */
  showActor(actor: string): void {
    this.#actor.value = actor;
    this.apply();
  }

  /** Shows only replies that contain `text` (a command id). */
  showText(text: string): void {
    this.#text.value = text;
    this.apply();
  }

  /** Puts the cursor in the free-text box. */
  focusText(): void {
    this.#text.focus();
  }

  /** Applies the form's filters to the stream and, a moment later, to the URL. */
  apply(): void {
    const form = this.#read();
    this.#filter = parseFilter(form);
    this.#onChange();
    clearTimeout(this.#urlTimer);
    this.#urlTimer = setTimeout(() => {
      const query = queryWithForm(location.search, form);
      history.replaceState(
        history.state,
        "",
        `${location.pathname}${query ? `?${query}` : ""}${location.hash}`,
      );
    }, 150);
  }

  #read(): FilterForm {
    const ticked = [...this.#boxes].filter(([, box]) => box.checked).map(([code]) => code);
    return { actor: this.#actor.value, codes: chosenCodes(ticked), text: this.#text.value };
  }

  #buildCodeBoxes(): void {
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
      this.#boxes.set(code, box);
      this.#codeSet.append(label);
    }
  }

  /** Reads the filters from the URL into the form. */
  #fromUrl(): void {
    const form = formFromQuery(location.search);
    this.#actor.value = form.actor;
    this.#text.value = form.text;
    for (const [code, box] of this.#boxes) box.checked = form.codes === undefined || form.codes.has(code);
    this.#filter = parseFilter(this.#read());
  }
}
