/**
 * What the gateway says once at start-up: where it listens, and, at warn
 * level, a set-up that works but may not be what the operator meant (who can
 * reach the actors without a token, an open-files limit too low for the
 * client limits).
 *
 * @module
 */

import type { Config } from "./config/config.ts";
import { logger } from "./log.ts";
import { VERSION } from "./version.ts";

const log = logger("gateway");

/** Logs the line that says the gateway is up: its version, URL and name. */
export function logListening(config: Config, address: { hostname: string; port: number }): void {
  const { hostname, port } = address;
  log.info("clu-ws {version} listening on {scheme}://{host}:{port}/ as {name}", {
    version: VERSION,
    scheme: config.tls ? "wss" : "ws",
    host: hostname.includes(":") ? `[${hostname}]` : hostname,
    port,
    name: config.name,
  });
}

/** Options for {@linkcode warnAtStartup}. */
export interface StartupWarningOptions {
  /** The port the server listens on (the one bound, when 0 was asked). */
  port: number;
  /** Whether access tokens are required (a tokens file is configured). */
  usesTokens: boolean;
}

/** Logs every start-up warning that applies to `config`. */
export function warnAtStartup(config: Config, options: StartupWarningOptions): void {
  warnIfOpen(config, options.usesTokens, options.port);
  warnIfTooFewDescriptors(config.limits.maxClients + config.limits.maxPending);
}

/**
 * Says who can reach the actors without a token: anyone who reaches the port
 * (when it is not loopback), and any web page a user opens, through that
 * user's browser, on the same machine too (the browser is the one that
 * connects), unless origins are restricted or commands refused.
 */
function warnIfOpen(config: Config, usesTokens: boolean, port: number): void {
  if (usesTokens) return;
  const exposed = !isLoopback(config.host);
  const byWebPages = !config.access.readOnly && config.access.allowOrigins.length === 0;
  if (exposed && byWebPages) {
    log.warn(
      "no access tokens: anyone who reaches port {port} can watch and command every actor, and so can any web page a user opens, through that user's browser (websocket and POST /commands); set --tokens-file, and --allow-origin or --public-url to refuse other web pages",
      { port },
    );
  } else if (exposed) {
    log.warn(
      "no access tokens: anyone who reaches port {port} can watch {what} every actor; set --tokens-file",
      { port, what: config.access.readOnly ? "(but not command)" : "and command" },
    );
  } else if (byWebPages) {
    log.warn(
      "no access tokens and no --allow-origin: any web page a user of this machine opens can command every actor through that user's browser and port {port} (websocket and POST /commands); set --allow-origin or --public-url to refuse other web pages, or --tokens-file",
      { port },
    );
  }
}

/** Descriptors the process holds besides its clients (runtime, broker link, listener), with a margin. */
const FIXED_DESCRIPTORS = 64;

/** Warns when the open-files limit cannot hold `connections` clients and pending connections. */
function warnIfTooFewDescriptors(connections: number): void {
  let limit: number;
  try {
    const line = /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
    if (!line) return;
    limit = Number(line[1]);
  } catch {
    return; // Not Linux, or /proc hidden: nothing to check against.
  }
  if (limit >= connections + FIXED_DESCRIPTORS) return;
  log.warn(
    "the open-files limit ({limit}) allows about {clients} connections, fewer than --max-clients plus --max-pending ({connections}); raise it (LimitNOFILE= in the systemd unit, ulimit -n) or lower those options",
    { limit, clients: Math.max(0, limit - FIXED_DESCRIPTORS), connections },
  );
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
