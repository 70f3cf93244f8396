/**
 * clu-ws as a library: the websocket gateway to a CLU actor system, started
 * from a program, as CLU's `await WebsocketServer().start()` is. Every option
 * of the `clu-ws` command line is available by its long name in camelCase,
 * with the same defaults, bounds and error messages.
 *
 * ```ts
 * import { startGateway } from "@clu-ws/clu-ws";
 *
 * // Port 9876, RabbitMQ at amqp://guest:guest@localhost:5672: every default of `clu-ws`.
 * const gateway = await startGateway({ port: 9876, exchange: "sdss_exchange" });
 * gateway.on("broker", (state) => console.log(`RabbitMQ link ${state}`));
 * gateway.on("clients", (count) => console.log(`${count} clients`));
 * Deno.addSignalListener("SIGINT", () => gateway.stop());
 * ```
 *
 * The gateway installs no signal handlers and no global error handlers, and
 * reads no `CLU_WS_*` variables: the program decides. It configures logging
 * only when `logLevel` or `logFormat` is given; otherwise the program may
 * configure LogTape itself (category `clu-ws`).
 *
 * @module
 */

import { buildConfig, configSecrets } from "./lib/config/config.ts";
import { type GatewayOptions, optionsAsFlags } from "./lib/config/program_options.ts";
import { type Gateway, runGateway } from "./lib/gateway.ts";
import { setupLogging } from "./lib/log.ts";

export { ConfigError } from "./lib/config/config_error.ts";
export { TokensError } from "./lib/access/tokens.ts";
export type { GatewayOptions, TokenOption } from "./lib/config/program_options.ts";
export type { Gateway } from "./lib/gateway.ts";
export type { GatewayEventMap, OnGatewayEvent } from "./lib/gateway_events.ts";
export type { LinkState } from "./lib/broker/link.ts";

/**
 * Starts a gateway: it serves websocket clients at once and connects to
 * RabbitMQ in the background (and again whenever the link is lost).
 *
 * @example Serve on a free port against one exchange, then stop
 * ```ts
 * import { startGateway } from "@clu-ws/clu-ws";
 *
 * const gateway = await startGateway({ port: 0, exchange: "sdss_exchange", readOnly: true });
 * console.log(`ws://localhost:${gateway.port}/`, gateway.brokerState, gateway.clients);
 * await gateway.stop();
 * ```
 *
 * @param options Any subset of the command line's options, by their long
 *   names in camelCase (`maxClients` for `--max-clients`).
 * @returns The running gateway: its port, broker state, client count, events, `reloadTokens()` and `stop()`.
 * @throws {ConfigError} for an unknown option or a bad value, with the message the command line prints.
 * @throws {TokensError} when the tokens given cannot be used.
 */
export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const config = buildConfig({ flags: optionsAsFlags(options) }, { argv: false });
  if (options.logLevel !== undefined || options.logFormat !== undefined) {
    setupLogging({ level: config.logLevel, format: config.logFormat, secrets: configSecrets(config) });
  }
  return await runGateway(config);
}
