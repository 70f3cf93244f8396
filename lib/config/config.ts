/**
 * The gateway's configuration: CLU-compatible defaults, command-line flags,
 * `CLU_WS_*` environment variables and a config file, validated into one
 * {@linkcode Config}. The entry point every caller imports; the parts live
 * beside it: the option table (options.ts), the layering and argv (layers.ts),
 * the config file (config_file.ts), value parsers (parsers.ts), the brokers
 * (broker_urls.ts) and the help text (help.ts).
 *
 * Pure apart from reading files through an injectable function, so every rule
 * here is unit-tested without I/O.
 *
 * @module
 */

import { type BrokerConfig, parseBrokers } from "./broker_urls.ts";
import { ConfigError } from "./config_error.ts";
import { readConfigFile } from "./config_file.ts";
import { helpText } from "./help.ts";
import { Layers, type LayerSources, parseFlags, type Picked } from "./layers.ts";
import {
  HISTORY_BACKENDS,
  INTROSPECTION_MODES,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevelName,
  SLOW_CLIENT_POLICIES,
} from "./options.ts";
import type { SlowClientPolicy } from "./options.ts";
import {
  parseBoolean,
  parseChoice,
  parseClientName,
  parseCount,
  parseExchange,
  parseGlobs,
  parseOriginPatterns,
  parsePort,
  parsePublicOrigins,
  parseSize,
} from "./parsers.ts";

export { type BrokerConfig, brokerDisplayUrl } from "./broker_urls.ts";
export { ConfigError } from "./config_error.ts";
export { helpText } from "./help.ts";
export {
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevelName,
  type SlowClientPolicy,
} from "./options.ts";

/** Everything the gateway needs to run. */
export interface Config {
  /** Address the websocket server listens on. */
  host: string;
  /** Port the websocket server listens on (0 picks a free one). */
  port: number;
  /** The RabbitMQ link (the first of `brokers`). */
  broker: BrokerConfig;
  /** Every broker node to try, in order (one unless several URLs are given). */
  brokers: BrokerConfig[];
  /** The CLU topic exchange. */
  exchange: string;
  /** The gateway's AMQP client name (`<name>_replies`, `<name>.<consumer>`). */
  name: string;
  /** Lowest level that is logged. */
  logLevel: LogLevelName;
  /** `text` for terminals, `json` (one object per line) for services. */
  logFormat: LogFormat;
  /** Limits that protect the gateway and its clients from one client. */
  limits: Limits;
  /** Who may connect and what they may command. */
  access: AccessConfig;
  /** Whether and how the gateway asks actors for their commands (lib/introspection/). */
  introspection: IntrospectionConfig;
  /** Where `resume` reads from: undefined keeps it in memory (`--history memory`). */
  stream?: StreamHistoryConfig;
  /** TLS certificate and key (PEM text), when the gateway serves wss://. */
  tls?: { cert: string; key: string };
  /** Warnings found while parsing (e.g. a password on the command line). */
  warnings: string[];
}

/** `--history stream`: the RabbitMQ stream every gateway of the exchange shares for `resume`. */
export interface StreamHistoryConfig {
  /** The stream's (queue's) name. */
  name: string;
  /** Retention by age, as RabbitMQ's `x-max-age` takes it (`24h`, `7D`). */
  maxAge: string;
  /** Retention by size on disk (`x-max-length-bytes`). */
  maxBytes: number;
  /** Segment size (`x-stream-max-segment-size-bytes`): retention drops whole segments. */
  segmentBytes: number;
  /** Replies one resume replays at most. */
  maxReplay: number;
  /** Resumes reading from the stream at once. */
  replays: number;
}

/** Where access tokens come from, and the gateway-wide command rules. */
export interface AccessConfig {
  /** A tokens file (TOML or JSON), reloaded on SIGHUP. */
  tokensFile?: string;
  /** Tokens as a JSON document, from CLU_WS_TOKENS or the config file. */
  tokensText?: { text: string; source: string };
  /**
   * Allowed browser origins: `--allow-origin` patterns (exact or wildcard) and
   * the origins of `--public-url`; empty allows any.
   */
  allowOrigins: string[];
  /** Refuse every command. */
  readOnly: boolean;
  /** Actor globs that may be commanded; empty allows any. */
  allowActors: string[];
  /** Actor globs that may never be commanded. */
  denyActors: string[];
  /** Bearer token for /metrics and /healthz. */
  metricsToken?: string;
}

/** The gateway's own questions to actors: `get-command-model`, `get_schema`, `help`. */
export interface IntrospectionConfig {
  /** Ask at all (`--introspection on`). */
  enabled: boolean;
  /** Seconds each command may take. */
  timeoutSeconds: number;
  /** Largest answer kept, in bytes. */
  maxAnswerBytes: number;
  /** Bytes of answers kept over all actors. */
  cacheBytes: number;
}

/** Per-client limits. */
export interface Limits {
  /** Outgoing bytes a client may have waiting. */
  clientBufferBytes: number;
  /** What happens to a client over its buffer. */
  slowClient: SlowClientPolicy;
  /** Largest frame a client may send, in bytes. */
  maxMessageBytes: number;
  /** Clients connected at once. */
  maxClients: number;
  /** Commands per second per client (0: unlimited). */
  commandRate: number;
  /** Commands a client may send at once. */
  commandBurst: number;
  /** Seconds of silence before a client is dropped (pinged at half); 0 never. */
  idleTimeoutSeconds: number;
  /** Replies kept for resuming clients. */
  historySize: number;
  /** Seconds a reply is kept for resuming clients. */
  historyAgeSeconds: number;
  /** Bytes of replies kept for resuming clients (frames and filter fields, plus a fixed overhead each). */
  historyBytes: number;
  /** Points kept per numeric keyword series, for plots. */
  seriesPoints: number;
  /** Seconds a numeric keyword's point is kept. */
  seriesAgeSeconds: number;
  /** Numeric keyword series kept in all. */
  seriesCount: number;
  /** Seconds a client has to send an HTTP request's head (and body), e.g. the upgrade request. */
  headerTimeoutSeconds: number;
  /** Connections at once that are not websockets (yet): HTTP requests, handshakes in progress. */
  maxPending: number;
}

/** The limits used when none are given: the option table's defaults, parsed. */
export const DEFAULT_LIMITS: Readonly<Limits> = parseLimits(new Layers());

/** What the command line asked for besides running the gateway. */
export type CliRequest =
  | { kind: "run"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version" };

/** Options for {@linkcode parseCli}. */
export interface ParseCliOptions {
  /** Reads a password file; defaults to `Deno.readTextFileSync`. */
  readTextFile?: (path: string) => string;
  /** Random source for the default client name (tests pin it). */
  randomHex?: (length: number) => string;
}

/** Options for {@linkcode buildConfig}. */
export interface BuildConfigOptions extends ParseCliOptions {
  /** False when `flags` are a program's options rather than argv (no warnings about `ps`). */
  argv?: boolean;
}

/**
 * Turns argv and the environment into what to do.
 *
 * @throws {ConfigError} on an unknown flag or a bad value; the message names
 *   the flag or variable and the accepted values.
 */
export function parseCli(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  options: ParseCliOptions = {},
): CliRequest {
  const flags = parseFlags(args);
  if (flags.help) return { kind: "help", text: helpText() };
  if (flags.version) return { kind: "version" };
  return { kind: "run", config: buildConfig({ flags, env }, options) };
}

/**
 * The configuration from options given as flags would be (long names, text or
 * lists) and, for the command line, the environment: the config file they
 * name is read, then every option is parsed and checked. The CLI and
 * programs that embed the gateway both start here, so they share every
 * default, bound and message.
 *
 * @throws {ConfigError} naming the option, as {@linkcode parseCli} does.
 */
export function buildConfig(
  sources: Pick<LayerSources, "flags" | "env">,
  options: BuildConfigOptions = {},
): Config {
  const readTextFile = options.readTextFile ?? Deno.readTextFileSync;
  // The file's own path comes from the layers above it: --config, then CLU_WS_CONFIG.
  const configPath = new Layers(sources).pick("config");
  const file = configPath && { path: configPath.value, values: readConfigFile(configPath, readTextFile) };
  const layers = new Layers({ ...sources, file });

  // Parsed in this order so that, of several bad values, the same one is reported first every time.
  const warnings: string[] = [];
  const port = parsePort(layers.get("port"));
  const host = layers.get("host").value;
  const brokers = parseBrokers(layers, { readTextFile, warnings, argv: options.argv });
  const exchange = parseExchange(layers.get("exchange"));
  const randomHex = options.randomHex ?? defaultRandomHex;
  const namePick = layers.pick("name");
  const name = namePick ? parseClientName(namePick) : `amqp-client-${randomHex(12)}`;
  const tokens = layers.pick("tokens");

  return {
    host,
    port,
    broker: brokers[0],
    brokers,
    exchange,
    name,
    logLevel: parseChoice(layers.get("log-level"), LOG_LEVELS),
    logFormat: parseChoice(layers.get("log-format"), LOG_FORMATS),
    limits: parseLimits(layers),
    access: {
      tokensFile: layers.pick("tokens-file")?.value,
      tokensText: tokens && { text: tokens.value, source: tokens.source },
      allowOrigins: [
        ...new Set([
          ...parseOriginPatterns(layers.pick("allow-origin")),
          // The gateway's own public address is one more allowed origin: a name listed by the
          // operator, which a DNS rebinding page cannot forge (lib/access/).
          ...parsePublicOrigins(layers.pick("public-url")),
        ]),
      ],
      readOnly: parseBoolean(layers.pick("read-only")),
      allowActors: parseGlobs(layers.pick("allow-actor")),
      denyActors: parseGlobs(layers.pick("deny-actor")),
      metricsToken: layers.pick("metrics-token")?.value || undefined,
    },
    introspection: {
      enabled: parseChoice(layers.get("introspection"), INTROSPECTION_MODES) === "on",
      timeoutSeconds: parseCount(layers.get("introspection-timeout"), { min: 1, max: 300 }),
      maxAnswerBytes: parseSize(layers.get("introspection-max-bytes"), { min: 1024 }),
      cacheBytes: parseSize(layers.get("introspection-cache-bytes"), { min: 0 }),
    },
    stream: parseStreamHistory(layers, exchange),
    tls: readTls(layers, readTextFile),
    warnings,
  };
}

/** The secrets a configuration holds (RabbitMQ passwords, the metrics token), which logs must never show. */
export function configSecrets(config: Config): string[] {
  return [...config.brokers.map((b) => b.password), config.access.metricsToken ?? ""].filter(Boolean);
}

/** The per-client limits, each option within the bounds the gateway is tested at. */
function parseLimits(layers: Layers): Limits {
  return {
    clientBufferBytes: parseSize(layers.get("client-buffer"), { min: 1024 }),
    slowClient: parseChoice(layers.get("slow-client"), SLOW_CLIENT_POLICIES),
    maxMessageBytes: parseSize(layers.get("max-message-size"), { min: 256 }),
    maxClients: parseCount(layers.get("max-clients"), { min: 1 }),
    commandRate: parseCount(layers.get("command-rate"), { min: 0 }),
    commandBurst: parseCount(layers.get("command-burst"), { min: 1 }),
    idleTimeoutSeconds: parseCount(layers.get("idle-timeout"), { min: 0, max: 86_400 }),
    historySize: parseCount(layers.get("history-size"), { min: 0, max: 1_000_000 }),
    historyAgeSeconds: parseCount(layers.get("history-age"), { min: 1, max: 86_400 }),
    historyBytes: parseSize(layers.get("history-bytes"), { min: 0 }),
    seriesPoints: parseCount(layers.get("series-points"), { min: 0, max: 100_000 }),
    seriesAgeSeconds: parseCount(layers.get("series-age"), { min: 1, max: 7 * 86_400 }),
    seriesCount: parseCount(layers.get("series-count"), { min: 0, max: 100_000 }),
    headerTimeoutSeconds: parseCount(layers.get("header-timeout"), { min: 1, max: 30 }),
    maxPending: parseCount(layers.get("max-pending"), { min: 1 }),
  };
}

/** The `--history stream` settings, or undefined for the memory history. */
function parseStreamHistory(layers: Layers, exchange: string): StreamHistoryConfig | undefined {
  if (parseChoice(layers.get("history"), HISTORY_BACKENDS) === "memory") return undefined;
  const named = layers.pick("history-stream");
  const name = named ? parseQueueName(named) : `${exchange}.history`;
  const age = layers.get("history-max-age");
  // RabbitMQ's own syntax, passed as is: a stream declared by hand with `7D` matches `--history-max-age 7D`.
  if (!/^[1-9]\d{0,8}[YMDhms]$/.test(age.value)) {
    throw new ConfigError(
      `${age.source}: '${age.value}' is not a RabbitMQ stream age; use a number and one of Y, M, D, h, m, s, e.g. 24h or 7D`,
    );
  }
  return {
    name,
    maxAge: age.value,
    // Below ~256 KiB RabbitMQ 3.10's retention can leave a stream that delivers nothing to readers.
    maxBytes: parseSize(layers.get("history-max-bytes"), { min: 256 * 1024 }),
    segmentBytes: parseSize(layers.get("history-segment-bytes"), { min: 4096 }),
    maxReplay: parseCount(layers.get("history-max-replay"), { min: 1, max: 10_000_000 }),
    replays: parseCount(layers.get("history-replays"), { min: 1, max: 1000 }),
  };
}

/** A queue name RabbitMQ accepts and that cannot be mistaken for a server-named one. */
function parseQueueName(raw: Picked): string {
  if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(raw.value) || raw.value.startsWith("amq.")) {
    throw new ConfigError(
      `${raw.source}: stream name '${raw.value}' is not valid; use 1 to 200 letters, digits, '-', '_', '.' or ':' (not starting with amq.)`,
    );
  }
  return raw.value;
}

/** The TLS certificate and key, read from the files named; both or neither. */
function readTls(
  layers: Layers,
  readTextFile: (path: string) => string,
): { cert: string; key: string } | undefined {
  const cert = layers.pick("tls-cert");
  const key = layers.pick("tls-key");
  if (!cert && !key) return undefined;
  if (!cert || !key) {
    throw new ConfigError(`${(cert ?? key)!.source} needs its pair: give both --tls-cert and --tls-key`);
  }
  const read = (picked: Picked, what: string) => {
    try {
      return readTextFile(picked.value);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new ConfigError(`${picked.source}: cannot read TLS ${what} '${picked.value}' (${why})`);
    }
  };
  return { cert: read(cert, "certificate"), key: read(key, "key") };
}

function defaultRandomHex(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(length / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, length);
}
