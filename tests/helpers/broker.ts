/**
 * The real-broker fixture: checks that RabbitMQ is there (a loud failure with
 * the command that starts it otherwise), and gives every test its own
 * exchange name so runs and tests never see each other's traffic.
 *
 * @module
 */

import { type ChannelModel, connect } from "amqplib";

/** Where the tests' RabbitMQ listens. */
export const AMQP_URL = Deno.env.get("CLU_WS_TEST_AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";

const RUN_ID = crypto.randomUUID().slice(0, 8);
let counter = 0;

/** A fresh exchange name, unique to this test run and this call. */
export function uniqueExchange(label = "t"): string {
  return `clu-ws-test-${RUN_ID}-${label}-${++counter}`;
}

/**
 * Connects to the test broker, or throws an error that says how to start it.
 * Tests never skip when the broker is missing: they fail, loudly.
 */
export async function connectBroker(): Promise<ChannelModel> {
  try {
    return await connect(AMQP_URL);
  } catch (err) {
    throw new Error(
      `RabbitMQ is not reachable at ${AMQP_URL.replace(/:[^:@/]*@/, ":***@")} (${
        err instanceof Error ? err.message : err
      }). The tests need a real broker: start it with \`rabbitmq-server -detached\` ` +
        "(install it with `apt-get install rabbitmq-server`), wait for port 5672, and run them again.",
    );
  }
}

/** Resolves when `ms` have passed; for deadlines only, never for synchronisation. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes; for
 * state that has no event to await (a process's port, a broker's queue list).
 */
export async function until<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 15_000, intervalMs = 50 } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    await delay(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (${lastError})` : ""}`);
}
