/**
 * clu-ws command line: flags and environment → config → the same gateway a
 * program gets from `mod.ts`; the process-wide parts live here and only here:
 * logging to stderr, handlers for unexpected errors, SIGINT and SIGTERM (a
 * graceful stop), SIGHUP (reload tokens), and exit codes.
 *
 * @module
 */

import { TokensError } from "./lib/access/tokens.ts";
import { ConfigError, configSecrets, parseCli } from "./lib/config/config.ts";
import { runGateway } from "./lib/gateway.ts";
import { exposeGarbageCollector, SurgeCollector } from "./lib/surge_gc.ts";
import { flushLogs, logger, setupLogging } from "./lib/log.ts";
import { VERSION } from "./lib/version.ts";

/** Exit code for a bad command line or configuration. */
const EXIT_USAGE = 2;
/** The whole stop, from signal to exit, stays under this (ms). */
const STOP_DEADLINE_MS = 1800;
/** New connections that count as a surge, collected after once it is over. */
const SURGE_CONNECTIONS = 500;
/** How long without a new connection ends a surge (ms). */
const SURGE_QUIET_MS = 500;

async function main(): Promise<number> {
  let request;
  try {
    request = parseCli(Deno.args, Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`clu-ws: ${err.message}`);
      return EXIT_USAGE;
    }
    throw err;
  }
  if (request.kind === "help") {
    console.log(request.text);
    return 0;
  }
  if (request.kind === "version") {
    console.log(`clu-ws ${VERSION}`);
    return 0;
  }
  const { config } = request;
  setupLogging({ level: config.logLevel, format: config.logFormat, secrets: configSecrets(config) });
  const log = logger("main");

  // A gateway serving a night's observing must not die of one unexpected error.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    log.error("unhandled promise rejection (please report it): {error}", {
      error: String(event.reason?.stack ?? event.reason),
    });
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    log.error("uncaught error (please report it): {error}", {
      error: String(event.error?.stack ?? event.message),
    });
  });

  let gateway;
  try {
    gateway = await runGateway(config);
  } catch (err) {
    if (err instanceof TokensError) {
      log.error("{error}", { error: err.message });
      return EXIT_USAGE;
    }
    const why = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: unknown }).code;
    if (
      err instanceof Deno.errors.AddrInUse || err instanceof Deno.errors.PermissionDenied ||
      code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL"
    ) {
      log.error("cannot listen on {host}:{port} ({error}); choose another --port or --host", {
        host: config.host,
        port: config.port,
        error: why,
      });
    } else if (config.tls) {
      log.error(
        "cannot start the server with --tls-cert/--tls-key ({error}); check that they are a PEM certificate and its key",
        {
          error: why,
        },
      );
    } else {
      log.error("cannot start the gateway ({error})", { error: why });
    }
    return 1;
  }

  // Memory back after a reconnect storm (see lib/surge_gc.ts); the CLI owns its V8 flags.
  const collect = exposeGarbageCollector();
  if (collect) {
    const surges = new SurgeCollector({
      minConnections: SURGE_CONNECTIONS,
      quietMs: SURGE_QUIET_MS,
      collect,
    });
    gateway.on("clients", (count) => surges.clients(count));
  }

  const stopped = Promise.withResolvers<number>();
  let stopping = false;
  function onSignal(signal: Deno.Signal): void {
    if (stopping) return;
    stopping = true;
    log.info("{signal} received; stopping", { signal });
    const deadline = setTimeout(() => {
      log.warn("stop took longer than {ms} ms; exiting now", { ms: STOP_DEADLINE_MS });
      stopped.resolve(0);
    }, STOP_DEADLINE_MS);
    gateway!.stop().then(
      () => stopped.resolve(0),
      (err: unknown) => {
        log.error("error while stopping: {error}", { error: String(err) });
        stopped.resolve(0);
      },
    ).finally(() => clearTimeout(deadline));
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => onSignal(signal));
  }
  gateway.failed.then((err) => {
    if (stopping) return;
    log.error("{error}; exiting with status 1 so that the supervisor restarts clu-ws", {
      error: err.message,
    });
    stopped.resolve(1);
  });
  Deno.addSignalListener("SIGHUP", () => {
    log.info("SIGHUP received; reloading the tokens file");
    gateway!.reloadTokens();
  });
  return await stopped.promise;
}

if (import.meta.main) {
  const status = await main();
  flushLogs();
  Deno.exit(status);
}
