/**
 * The stream's filters as data: actor words (globs, `!name` or `-name` to
 * leave out), message codes and free text; how they test an entry; and how
 * they are kept in the URL's query string (`?actor=lvm.*&codes=:fe&q=dome`).
 * Pure: no DOM, so Deno tests it directly.
 *
 * @module
 */

import { compileGlobs, MAX_CLIENT_GLOBS } from "../../lib/protocol/glob.ts";
import { CODES, type Entry, jsonText } from "./format.ts";

/** Whether an actor name matches one glob of the actor filter. */
export type ActorTest = (actor: string) => boolean;

/** The filters in force, ready to test entries. */
export interface Filter {
  /** Globs to include (empty: all). */
  include: ActorTest[];
  /** Globs to exclude (`!name`). */
  exclude: ActorTest[];
  /** Codes shown, or undefined for all. */
  codes: Set<string> | undefined;
  /** Lower-case free text, or "". */
  text: string;
}

/** The filters as the form holds them, and as the URL keeps them. */
export interface FilterForm {
  /** The actor words as typed. */
  actor: string;
  /** Codes ticked, or undefined when all are. */
  codes: Set<string> | undefined;
  /** The free text as typed. */
  text: string;
}

/** Most words the actor filter takes from a link: every reply is tested against each. */
export const MAX_FILTER_WORDS: number = MAX_CLIENT_GLOBS;

/**
 * A glob on actor names, matched as the gateway matches them (lib/protocol/glob.ts: `*` any run of
 * characters, dots included, `?` one character, in linear time), but ignoring case as this filter always
 * has. The pattern comes from the URL, so a crafted link must not be able to freeze the page: no regular
 * expression.
 */
function actorGlob(glob: string): ActorTest {
  const compiled = compileGlobs([glob.toLowerCase()]);
  return (actor) => compiled.match(actor.toLowerCase()) !== undefined;
}

/** The filter for what the form holds: actor words split on spaces and commas, at most {@linkcode MAX_FILTER_WORDS}. */
export function parseFilter(form: FilterForm): Filter {
  const include: ActorTest[] = [];
  const exclude: ActorTest[] = [];
  const words = form.actor.split(/[\s,]+/).filter((word) => word && word !== "!" && word !== "-");
  for (const word of words.slice(0, MAX_FILTER_WORDS)) {
    if (word.startsWith("!") || word.startsWith("-")) exclude.push(actorGlob(word.slice(1)));
    else include.push(actorGlob(word));
  }
  return { include, exclude, codes: form.codes, text: form.text.trim().toLowerCase() };
}

/** Whether `entry` passes `filter`; the console's own notes always do. */
export function matchesFilter(filter: Filter, entry: Entry): boolean {
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

/** The codes ticked out of all of {@linkcode CODES}, or undefined when all are. */
export function chosenCodes(ticked: Iterable<string>): Set<string> | undefined {
  const chosen = new Set(ticked);
  return chosen.size === CODES.length ? undefined : chosen;
}

/** The filters kept in a query string (`location.search`); a link without `codes` shows all codes. */
export function formFromQuery(search: string): FilterForm {
  const params = new URLSearchParams(search);
  const codes = params.get("codes");
  const ticked = CODES.map(({ code }) => code).filter((code) =>
    codes === null || codes.toLowerCase().includes(code)
  );
  return { actor: params.get("actor") ?? "", codes: chosenCodes(ticked), text: params.get("q") ?? "" };
}

/** `search` with the filters of `form` in it (the other parameters kept), without the leading "?". */
export function queryWithForm(search: string, form: FilterForm): string {
  const params = new URLSearchParams(search);
  setParam(params, "actor", form.actor.trim());
  setParam(params, "codes", form.codes ? [...form.codes].join("") : "");
  setParam(params, "q", form.text.trim());
  return params.toString();
}

function setParam(params: URLSearchParams, key: string, value: string): void {
  if (value) params.set(key, value);
  else params.delete(key);
}
