/**
 * The listener watchdog. Under Deno 2.9 a `node:http` listener that runs out
 * of file descriptors (EMFILE) stops accepting for good without an `error` or
 * `close` event, so a process that looks alive would serve no one. Every 2 s
 * the watchdog connects to its own port: an accepted probe means all is well;
 * no descriptor for the probe itself means clients wait until some close (it
 * says so, at most every 10 s); a probe not accepted twice in a row means the
 * listener died, so it is reopened. After 5 failed reopens in a row the
 * watchdog gives up and reports it, so the process can exit for its
 * supervisor to restart it.
 *
 * @module
 */

import net from "node:net";
import { logger } from "../log.ts";

const log = logger("server");

/** How often the watchdog checks that the listener still accepts (ms). */
const WATCHDOG_MS = 2000;
/** Reopening the listener is given up after this many failures in a row. */
const MAX_RELISTEN_FAILURES = 5;
/** At most one warning of a kind (out of descriptors, too many pending connections) per this many ms. */
export const WARN_EVERY_MS = 10_000;

/** Options for {@linkcode ListenerWatchdog}. */
export interface WatchdogOptions {
  /** The address the server listens on (as configured). */
  host: string;
  /** Connections open now that are not websockets, for the log. */
  pending: () => number;
}

/** Watches that a server's listener still accepts, and reopens it when it does not. */
export class ListenerWatchdog {
  readonly #server: net.Server;
  readonly #options: WatchdogOptions;
  readonly #probeHost: string;
  readonly #failed = Promise.withResolvers<Error>();
  /** Remote ports of the connections accepted since the probe began. */
  readonly #accepted = new Set<number>();
  #watching = false;
  #stopped = false;
  #relistenFailures = 0;
  #missed = 0;
  #lastFdWarning = 0;
  #port = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** A watchdog for `server`; it watches from {@linkcode ListenerWatchdog.start} on. */
  constructor(server: net.Server, options: WatchdogOptions) {
    this.#server = server;
    this.#options = options;
    this.#probeHost = probeAddress(options.host);
  }

  /** Starts watching, once the server listens on `port`. */
  start(port: number): void {
    this.#port = port;
    this.#timer ??= setInterval(() => void this.#watch(), WATCHDOG_MS);
  }

  /** Resolves with the reason if the listener ended for good and could not be reopened. */
  get failed(): Promise<Error> {
    return this.#failed.promise;
  }

  /** Call with every accepted connection: how the probe knows it was accepted. */
  accepted(socket: net.Socket): void {
    if (this.#watching && socket.remotePort !== undefined) this.#accepted.add(socket.remotePort);
  }

  /** Stops watching (the server is shutting down). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  async #watch(): Promise<void> {
    if (this.#watching || this.#stopped) return;
    this.#watching = true;
    this.#accepted.clear();
    const port = this.#port;
    try {
      const outcome = await probe(this.#probeHost, port, (local) => this.#accepted.has(local));
      if (outcome === "accepted" || this.#stopped) {
        this.#relistenFailures = 0;
        this.#missed = 0;
        return;
      }
      if (outcome === "no-descriptors") {
        if (Date.now() - this.#lastFdWarning > WARN_EVERY_MS) {
          this.#lastFdWarning = Date.now();
          log.error(
            "out of file descriptors ({pending} connections not upgraded, {fds} open): new clients wait until some close; raise LimitNOFILE / ulimit -n or lower --max-clients and --max-pending",
            { pending: this.#options.pending(), fds: openFds() },
          );
        }
        return;
      }
      // A busy event loop can be slow to see the probe: act on the second miss in a row only.
      if (++this.#missed < 2) return;
      this.#missed = 0;
      log.error("the listener stopped accepting connections ({outcome}); reopening it", { outcome });
      try {
        await relisten(this.#server, this.#options.host, port);
        this.#relistenFailures = 0;
        log.warn("the listener on port {port} accepts connections again", { port });
      } catch (err) {
        this.#relistenFailures++;
        log.error("could not reopen the listener (attempt {attempt} of {max}): {error}", {
          attempt: this.#relistenFailures,
          max: MAX_RELISTEN_FAILURES,
          error: err instanceof Error ? err.message : String(err),
        });
        if (this.#relistenFailures >= MAX_RELISTEN_FAILURES) {
          this.#failed.resolve(new Error(`the listener on port ${port} ended and could not be reopened`));
        }
      }
    } finally {
      this.#watching = false;
      this.#accepted.clear();
    }
  }
}

/**
 * Connects to the listener and waits for it to accept: "accepted", "no-descriptors"
 * when this process cannot even open the probe's socket, or "not accepted".
 */
function probe(
  host: string,
  port: number,
  accepted: (localPort: number) => boolean,
): Promise<"accepted" | "no-descriptors" | "not accepted" | "refused"> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let done = false;
    const finish = (outcome: "accepted" | "no-descriptors" | "not accepted" | "refused") => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poll);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish("not accepted"), WATCHDOG_MS / 2);
    let poll: ReturnType<typeof setInterval> | undefined;
    socket.on("error", (err: Error & { code?: string }) => {
      finish(err.code === "EMFILE" || err.code === "ENFILE" ? "no-descriptors" : "refused");
    });
    socket.on("connect", () => {
      const localPort = socket.localPort ?? -1;
      poll = setInterval(() => {
        if (accepted(localPort)) finish("accepted");
      }, 20);
    });
  });
}

function probeAddress(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "::1";
  return host;
}

function openFds(): number | string {
  try {
    let count = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) count++;
    return count;
  } catch {
    return "?";
  }
}

/** Listens on `host:port`; resolves with the bound address, rejects with the listen error. */
export function listen(server: net.Server, host: string, port: number): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen({ host, port }, () => {
      server.off("error", onError);
      resolve(server.address() as net.AddressInfo);
    });
  });
}

/** Closes the dead listening socket (connections stay) and listens again on the same port. */
async function relisten(server: net.Server, host: string, port: number): Promise<void> {
  server.close();
  await listen(server, host, port);
}
