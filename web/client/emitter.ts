/**
 * A small typed event emitter: a listener that throws is logged and does
 * not stop the others, so one bad callback in a page cannot starve the rest.
 *
 * @module
 */

/** Listeners per event, for an event map `E` (event name → what listeners are given). */
export class Emitter<E> {
  readonly #listeners: { [K in keyof E]: Set<(value: E[K]) => void> };

  /** Makes an emitter for exactly the `events` named; `on` with any other name throws. */
  constructor(events: readonly (keyof E)[]) {
    this.#listeners = Object.fromEntries(events.map((event) => [event, new Set()])) as {
      [K in keyof E]: Set<(value: E[K]) => void>;
    };
  }

  /** Adds `listener` to `event`; returns the function that removes it. */
  on<K extends keyof E>(event: K, listener: (value: E[K]) => void): () => void {
    this.#listeners[event].add(listener);
    return () => this.#listeners[event].delete(listener);
  }

  /** Calls every listener of `event` with `value`, in the order they were added. */
  emit<K extends keyof E>(event: K, value: E[K]): void {
    for (const listener of this.#listeners[event]) {
      try {
        listener(value);
      } catch (err) {
        console.error(`clu-ws client: a ${String(event)} listener threw`, err);
      }
    }
  }
}
