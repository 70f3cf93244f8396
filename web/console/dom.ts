/// <reference lib="dom" />
/**
 * DOM and storage helpers shared by the console's panels: finding the page's
 * elements, making elements whose text is always text (never parsed as HTML),
 * and storage that private browsing may refuse.
 *
 * @module
 */

/** The page's element with `id`; throws if web/console.html has none (the page and the code disagree). */
export function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the console page has no #${id}; web/console.html and console.ts disagree`);
  return element as T;
}

/** Makes an element with a class and, optionally, text (always as text, never HTML). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

/** Which storage: kept across visits (`local`) or for this tab only (`session`). */
export type StorageKind = "local" | "session";

/** A stored value, or null when there is none or storage is refused (the console works without it). */
export function load(storage: StorageKind, key: string): string | null {
  try {
    return (storage === "local" ? localStorage : sessionStorage).getItem(key);
  } catch {
    return null;
  }
}

/** Stores `value` (null removes it); silently keeps nothing when storage is refused. */
export function save(storage: StorageKind, key: string, value: string | null): void {
  try {
    const store = storage === "local" ? localStorage : sessionStorage;
    if (value === null) store.removeItem(key);
    else store.setItem(key, value);
  } catch {
    // Not kept; nothing else breaks.
  }
}
