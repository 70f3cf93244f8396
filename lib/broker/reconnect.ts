/**
 * When the link tries again after a loss or a failed attempt: which broker
 * next (a cluster's nodes in turn), how long to wait (exponential backoff
 * with jitter), and how that wait is cut short when the broker's TCP port
 * opens again.
 *
 * @module
 */

import type { BrokerConfig } from "../config/config.ts";
import { logger } from "../log.ts";

const log = logger("broker");

/** While waiting out a reconnect delay, how often the broker's TCP port is probed (ms). */
export const PROBE_INTERVAL_MS = 500;
/** Right after the broker's port opens, how soon a failed attempt is retried (ms)… */
export const QUICK_RETRY_MS = 250;
/** …and how many times, before the backoff applies again. */
export const QUICK_RETRIES = 12;

/** Options for {@linkcode ReconnectSchedule}. */
export interface BackoffOptions {
  /** First reconnect delay (ms); doubles up to `maxDelayMs`. */
  initialDelayMs?: number;
  /** Longest reconnect delay (ms). */
  maxDelayMs?: number;
}

/** Which broker to try and how long to wait before trying it. */
export class ReconnectSchedule {
  readonly #count: number;
  readonly #options: BackoffOptions;
  #index = 0;
  #attempt = 0;
  #quickRetries = 0;

  /** A schedule over `brokers` brokers (at least one), starting with the first, at once. */
  constructor(brokers: number, options: BackoffOptions = {}) {
    this.#count = brokers;
    this.#options = options;
  }

  /** The index of the broker to try next. */
  get index(): number {
    return this.#index;
  }

  /** Attempts since the link was last up (for the log). */
  get attempt(): number {
    return this.#attempt;
  }

  /** The link came up: the next loss starts the backoff over. */
  up(): void {
    this.#attempt = 0;
    this.#quickRetries = 0;
  }

  /**
   * The delay before the next attempt, after an attempt failed (`failed`) or
   * the link was lost; moves to the next broker unless a quick retry is due.
   */
  next(failed: boolean): number {
    if (failed && this.#quickRetries > 0) {
      // The port opened a moment ago: a starting broker accepts TCP before its AMQP side logs anyone
      // in, which follows within seconds. Going back to a backoff grown during the outage would cost
      // that many seconds of silence for nothing; so the same broker again, soon.
      this.#quickRetries--;
      return QUICK_RETRY_MS;
    }
    this.#quickRetries = 0;
    this.#index = (this.#index + 1) % this.#count;
    this.#attempt++;
    const initial = this.#options.initialDelayMs ?? 500;
    const max = this.#options.maxDelayMs ?? 30_000;
    const base = Math.min(max / 1.3, initial * 2 ** (this.#attempt - 1));
    return Math.round(base * (0.7 + Math.random() * 0.6));
  }

  /** The next broker's port just opened: the next failures retry it soon, a few times. */
  portOpened(): void {
    this.#quickRetries = QUICK_RETRIES;
  }
}

/** Options for {@linkcode waitForBroker}. */
export interface WaitOptions {
  /** The attempt just made to this broker was refused at the TCP level (its port counts as seen closed). */
  refusedBefore: boolean;
  /** Ends the wait at once (the link is closing). */
  signal: AbortSignal;
}

/**
 * Waits `ms` before the next connection attempt, or less: while it waits it
 * probes the broker's TCP port (connect, close) every
 * {@linkcode PROBE_INTERVAL_MS}, and resolves `true` as soon as the port goes
 * from refusing to accepting. Why: the backoff grows while a broker is down
 * (to 16 s after 20 s), so a broker back after a short outage would wait out
 * the rest of a long delay; a TCP probe costs the broker next to nothing,
 * unlike an AMQP login, so the backoff (its ceiling, its jitter) still paces
 * the full attempts against a broker that stays down. A port that accepts
 * from the first probe on (a broker that refuses the login) does not cut the
 * wait: only the change does.
 */
export async function waitForBroker(
  ms: number,
  broker: BrokerConfig,
  options: WaitOptions,
): Promise<boolean> {
  const { signal } = options;
  const deadline = Date.now() + ms;
  if (ms <= PROBE_INTERVAL_MS) {
    await sleep(ms, signal);
    return false;
  }
  let refused = options.refusedBefore;
  while (!signal.aborted) {
    const accepting = await probePort(broker.hostname, broker.port, PROBE_INTERVAL_MS);
    if (signal.aborted) return false;
    if (accepting && refused) return true;
    if (!accepting && !refused) {
      refused = true;
      log.debug("RabbitMQ's port at {host}:{port} refuses connections; connecting as soon as it accepts", {
        host: broker.hostname,
        port: broker.port,
      });
    }
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(PROBE_INTERVAL_MS, left), signal);
  }
  return false;
}

/**
 * Whether `hostname:port` accepts a TCP connection within `timeoutMs`; the
 * connection is closed at once (a late one too).
 */
async function probePort(hostname: string, port: number, timeoutMs: number): Promise<boolean> {
  const connecting = Deno.connect({ hostname, port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<undefined>((resolve) =>
    timer = setTimeout(() => resolve(undefined), timeoutMs)
  );
  try {
    const conn = await Promise.race([connecting, timedOut]);
    if (conn === undefined) {
      connecting.then((late) => late.close(), () => {});
      return false;
    }
    conn.close();
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Waits `ms`, or less if `signal` aborts meanwhile; leaves no timer or listener behind. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
