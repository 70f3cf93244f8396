/**
 * A token bucket: `rate` tokens a second up to `burst`, so a client may send a
 * burst of commands at once but not more than `rate` a second on average.
 *
 * @module
 */

/** One client's command allowance. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  /** A full bucket; `rate` 0 means unlimited. */
  constructor(rate: number, burst: number, now: number = performance.now()) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes one token if there is one; `now` in milliseconds. */
  take(now: number = performance.now()): boolean {
    if (this.#rate === 0) return true;
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
