/**
 * Lets go of a server websocket once it has closed, working around a Deno
 * 2.9 defect: a socket upgraded with `idleTimeout` that ends without a close
 * frame from the peer (a bare FIN, an RST, or a close the gateway started)
 * stays referenced by its idle timer for half the idle timeout, and with it
 * everything reachable from it. At a few thousand connections a second that
 * is tens of MiB held for 20 s (tests/memory_test.ts).
 *
 * @module
 */

interface DenoCore {
  cancelTimer?: (timer: unknown) => void;
}

/** Deno's internal timer cancel, or undefined when this Deno does not offer it (then nothing is done). */
const cancelTimer: ((timer: unknown) => void) | undefined = (() => {
  try {
    const internal = (Deno as unknown as { internal?: symbol }).internal;
    if (internal === undefined) return undefined;
    const core = (Deno as unknown as Record<symbol, { core?: DenoCore } | undefined>)[internal]?.core;
    return typeof core?.cancelTimer === "function" ? core.cancelTimer.bind(core) : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * Drops the socket's event handlers (and so the session state they hold) and
 * cancels Deno's idle timer if it is still armed. Call it from the socket's
 * close handler; safe on any Deno (it does what it can).
 */
export function releaseClosedSocket(socket: WebSocket): void {
  socket.onopen =
    socket.onmessage =
    socket.onclose =
    socket.onerror =
      null;
  if (!cancelTimer) return;
  const slot = Object.getOwnPropertySymbols(socket).find((s) => s.description === "[[idleTimeoutTimeout]]");
  if (slot === undefined) return;
  const record = socket as unknown as Record<symbol, unknown>;
  const timer = record[slot];
  if (timer === undefined || timer === null) return;
  try {
    cancelTimer(timer);
    record[slot] = undefined;
  } catch {
    // Already fired or cancelled.
  }
}
