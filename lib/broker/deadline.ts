/**
 * Waiting with a bound: the stop path must finish in time whatever a peer does.
 *
 * @module
 */

/**
 * Waits for `promise` to settle or `ms` to pass, whichever is first; resolves
 * true if it settled in time. Never rejects, and leaves no timer behind.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
