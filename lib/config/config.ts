/**
 * The gateway's configuration: CLU-compatible defaults, command-line flags and
 * `CLU_WS_*` environment variables, validated into one {@linkcode Config}.
 *
 * Pure apart from reading a password file through an injectable function, so
 * every rule here is unit-tested without I/O.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parse as parseToml } from "smol-toml";
import { globListProblem, MAX_CONFIG_GLOBS } from "../protocol/glob.ts";

/** Log levels accepted by `--log-level`, most verbose first. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
/** A log level accepted by `--log-level`. */
export type LogLevelName = typeof LOG_LEVELS[number];
/** Log formats accepted by `--log-format`. */
export const LOG_FORMATS = ["text", "json"] as const;
/** A log format accepted by `--log-format`. */
export type LogFormat = typeof LOG_FORMATS[number];

/** How to reach RabbitMQ; the password is kept apart from anything printable. */
export interface BrokerConfig {
  /** `amqp` or `amqps` (TLS). */
  protocol: "amqp" | "amqps";
  /** Broker host name or address. */
  hostname: string;
  /** Broker port. */
  port: number;
  /** AMQP user name. */
  username: string;
  /** AMQP password: never log it; use {@linkcode brokerDisplayUrl}. */
  password: string;
  /** AMQP virtual host. */
  vhost: string;
  /** AMQP heartbeat in seconds (0 disables). */
  heartbeat: number;
}

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
  /** TLS certificate and key (PEM text), when the gateway serves wss://. */
  tls?: { cert: string; key: string };
  /** Warnings found while parsing (e.g. a password on the command line). */
  warnings: string[];
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

/** What to do with a client whose outgoing buffer is over budget. */
export type SlowClientPolicy = "close" | "drop";

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
  /** Seconds a client has to send an HTTP request's head (and body), e.g. the upgrade request. */
  headerTimeoutSeconds: number;
  /** Connections at once that are not websockets (yet): HTTP requests, handshakes in progress. */
  maxPending: number;
}

/** The limits used when none are given. */
export const DEFAULT_LIMITS: Readonly<Limits> = {
  clientBufferBytes: 1024 * 1024,
  slowClient: "close",
  maxMessageBytes: 64 * 1024,
  maxClients: 10_000,
  commandRate: 20,
  commandBurst: 40,
  idleTimeoutSeconds: 40,
  historySize: 10_000,
  historyAgeSeconds: 600,
  // 8 MiB: ~8,000 replies of 1 KB. With 20 clients, a stalled one and a flood of 30,000 such replies the
  // gateway's RSS peaks under +64 MiB with it (tests/memory_test.ts); the buffer is allocated once at this size.
  historyBytes: 8 * 1024 * 1024,
  headerTimeoutSeconds: 10,
  maxPending: 1000,
};

/** What the command line asked for besides running the gateway. */
export type CliRequest =
  | { kind: "run"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version" };

/** A configuration error: the message says what is wrong and how to fix it. */
export class ConfigError extends Error {
  /** Builds an error whose message is shown to the user as is. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

interface OptionSpec {
  /** Long flag without dashes; also the option's key in a config file. */
  flag: string;
  short?: string;
  env?: string;
  boolean?: boolean;
  /** May be given several times (flags), comma-separated (env) or as a list (file). */
  multiple?: boolean;
  /** A secret: no command-line flag, only the environment or a config file. */
  noFlag?: boolean;
  /** Default as shown in --help. */
  shown?: string;
  help: string;
}

/** Every option, in --help order: the single source for flags, env and help. */
const OPTIONS: readonly OptionSpec[] = [
  {
    flag: "port",
    short: "p",
    env: "CLU_WS_PORT",
    shown: "9876",
    help: "port for websocket clients (0 picks a free one)",
  },
  {
    flag: "host",
    env: "CLU_WS_HOST",
    shown: "0.0.0.0",
    help: "address to listen on",
  },
  {
    flag: "rabbitmq-host",
    short: "H",
    env: "CLU_WS_RABBITMQ_HOST",
    shown: "localhost",
    help: "RabbitMQ host",
  },
  {
    flag: "rabbitmq-port",
    short: "P",
    env: "CLU_WS_RABBITMQ_PORT",
    shown: "5672",
    help: "RabbitMQ port",
  },
  {
    flag: "url",
    env: "CLU_WS_URL",
    multiple: true,
    help:
      "RabbitMQ URL, amqp://user:pass@host:port/vhost or amqps://…; overrides host, port, user, password and vhost it names; several (repeated, or comma-separated) are a cluster's nodes, tried in turn",
  },
  { flag: "user", env: "CLU_WS_USER", shown: "guest", help: "RabbitMQ user" },
  {
    flag: "password",
    env: "CLU_WS_PASSWORD",
    shown: "guest",
    help: "RabbitMQ password (prefer the variable or --password-file)",
  },
  {
    flag: "password-file",
    env: "CLU_WS_PASSWORD_FILE",
    help: "file whose first line is the RabbitMQ password",
  },
  { flag: "vhost", env: "CLU_WS_VHOST", shown: "/", help: "RabbitMQ vhost" },
  {
    flag: "exchange",
    env: "CLU_WS_EXCHANGE",
    shown: "sdss_exchange",
    help: "CLU topic exchange",
  },
  {
    flag: "name",
    env: "CLU_WS_NAME",
    shown: "amqp-client-<12 hex>",
    help: "the gateway's AMQP client name",
  },
  {
    flag: "heartbeat",
    env: "CLU_WS_HEARTBEAT",
    shown: "5",
    help: "AMQP heartbeat in seconds; a dead broker is noticed within about twice this (0 disables)",
  },
  {
    flag: "log-level",
    env: "CLU_WS_LOG_LEVEL",
    shown: "info",
    help: LOG_LEVELS.join("|"),
  },
  {
    flag: "log-format",
    env: "CLU_WS_LOG_FORMAT",
    shown: "text",
    help: "text (for terminals) | json (one object per line, for services)",
  },
  {
    flag: "client-buffer",
    env: "CLU_WS_CLIENT_BUFFER",
    shown: "1MiB",
    help: "outgoing bytes a client may have waiting before the slow-client policy applies",
  },
  {
    flag: "slow-client",
    env: "CLU_WS_SLOW_CLIENT",
    shown: "close",
    help: "close: disconnect a client over its buffer (1008) | drop: skip its frames, then tell it how many",
  },
  {
    flag: "max-message-size",
    env: "CLU_WS_MAX_MESSAGE_SIZE",
    shown: "64KiB",
    help: "largest frame a client may send; larger closes it with 1009",
  },
  {
    flag: "max-clients",
    env: "CLU_WS_MAX_CLIENTS",
    shown: "10000",
    help: "websocket clients at once; one more gets HTTP 503",
  },
  {
    flag: "command-rate",
    env: "CLU_WS_COMMAND_RATE",
    shown: "20",
    help: "commands per second each client may send on average (0: no limit)",
  },
  {
    flag: "command-burst",
    env: "CLU_WS_COMMAND_BURST",
    shown: "40",
    help: "commands a client may send at once above the rate",
  },
  {
    flag: "idle-timeout",
    env: "CLU_WS_IDLE_TIMEOUT",
    shown: "40",
    help:
      "seconds: a silent client is pinged after half of it and dropped at the end without a pong (0: never)",
  },
  {
    flag: "header-timeout",
    env: "CLU_WS_HEADER_TIMEOUT",
    shown: "10",
    help:
      "seconds a client has to send an HTTP request (the websocket handshake included); a slower one gets 408 and is closed (1 to 30)",
  },
  {
    flag: "max-pending",
    env: "CLU_WS_MAX_PENDING",
    shown: "1000",
    help:
      "connections at once that are not websockets (HTTP requests, handshakes in progress); more are closed on arrival",
  },
  {
    flag: "history-size",
    env: "CLU_WS_HISTORY_SIZE",
    shown: "10000",
    help: "replies kept for clients that reconnect and resume (clu-ws v1; 0 keeps none)",
  },
  {
    flag: "history-age",
    env: "CLU_WS_HISTORY_AGE",
    shown: "600",
    help: "seconds a reply is kept for resuming clients",
  },
  {
    flag: "history-bytes",
    env: "CLU_WS_HISTORY_BYTES",
    shown: "8MiB",
    help:
      "memory for replies kept for resuming clients (each counts its frame plus 32 bytes; the oldest go first; 0 keeps none)",
  },
  {
    flag: "config",
    env: "CLU_WS_CONFIG",
    help: "a TOML or JSON file with any of these options by their long names (flags > env > file)",
  },
  {
    flag: "tokens-file",
    env: "CLU_WS_TOKENS_FILE",
    help:
      "access tokens with roles (TOML or JSON, reloaded on SIGHUP); without it anyone may watch and command",
  },
  {
    flag: "tokens",
    env: "CLU_WS_TOKENS",
    noFlag: true,
    help: "access tokens as a JSON document, instead of --tokens-file",
  },
  {
    flag: "allow-origin",
    env: "CLU_WS_ALLOW_ORIGIN",
    multiple: true,
    help:
      "browser origins allowed to connect, exact or with a wildcard host (https://*.example.org); others get 403",
  },
  {
    flag: "public-url",
    env: "CLU_WS_PUBLIC_URL",
    multiple: true,
    help:
      "the address browsers use to open this gateway (https://gw.example.org:9876): its console may connect; setting it refuses other origins, as --allow-origin does",
  },
  {
    flag: "read-only",
    env: "CLU_WS_READ_ONLY",
    boolean: true,
    help: "refuse every command (clients only watch)",
  },
  {
    flag: "allow-actor",
    env: "CLU_WS_ALLOW_ACTOR",
    multiple: true,
    help: "only these actors may be commanded (globs; a dotted name needs its prefixes too: lvm,lvm.*)",
  },
  {
    flag: "deny-actor",
    env: "CLU_WS_DENY_ACTOR",
    multiple: true,
    help: "these actors may never be commanded (globs); beats --allow-actor",
  },
  { flag: "tls-cert", env: "CLU_WS_TLS_CERT", help: "PEM certificate (chain): serve wss:// and https://" },
  { flag: "tls-key", env: "CLU_WS_TLS_KEY", help: "PEM private key for --tls-cert" },
  {
    flag: "metrics-token",
    env: "CLU_WS_METRICS_TOKEN",
    noFlag: true,
    help: "a bearer token that /metrics and /healthz then require",
  },
  { flag: "version", short: "V", boolean: true, help: "print the version and exit" },
  { flag: "help", short: "h", boolean: true, help: "print this help and exit" },
];

/** The `--help` text: every option with its default and its variable. */
export function helpText(): string {
  const rows = OPTIONS.map((o) => {
    const flags = o.noFlag
      ? `    (${o.flag}: env or file)`
      : (o.short ? `-${o.short}, ` : "    ") + `--${o.flag}` + (o.boolean ? "" : " <value>") +
        (o.multiple ? " …" : "");
    const extra = [
      o.shown ? `default ${o.shown}` : "",
      o.env ? `env ${o.env}` : "",
    ].filter(Boolean).join("; ");
    return `  ${flags.padEnd(30)} ${o.help}${extra ? ` [${extra}]` : ""}`;
  });
  return [
    "clu-ws: a websocket gateway to a CLU actor system over RabbitMQ",
    "",
    "Usage: clu-ws [options]",
    "",
    "Options (flags win over environment variables, which win over a --config file, which wins over defaults):",
    ...rows,
    "",
  ].join("\n");
}

/** Options for {@linkcode parseCli}. */
export interface ParseCliOptions {
  /** Reads a password file; defaults to `Deno.readTextFileSync`. */
  readTextFile?: (path: string) => string;
  /** Random source for the default client name (tests pin it). */
  randomHex?: (length: number) => string;
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

  const warnings: string[] = [];
  const readTextFile = options.readTextFile ?? Deno.readTextFileSync;
  const configPath = typeof flags.config === "string"
    ? { value: flags.config, source: "--config" }
    : env.CLU_WS_CONFIG
    ? { value: env.CLU_WS_CONFIG, source: "CLU_WS_CONFIG" }
    : undefined;
  const file = configPath ? readConfigFile(configPath, readTextFile) : {};

  /** The raw value and where it came from: flag, then environment, then config file. */
  function pick(flag: string): Picked | undefined {
    const spec = OPTIONS.find((o) => o.flag === flag)!;
    const fromFlag = flags[flag];
    if (typeof fromFlag === "string") return { value: fromFlag, source: `--${flag}`, layer: 0 };
    if (Array.isArray(fromFlag)) return { value: fromFlag.join(","), source: `--${flag}`, layer: 0 };
    if (fromFlag === true) return { value: "true", source: `--${flag}`, layer: 0 };
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== "") return { value: fromEnv, source: spec.env!, layer: 1 };
    if (Object.hasOwn(file, flag)) {
      return { value: file[flag], source: `${configPath!.value}: ${flag}`, layer: 2 };
    }
    return undefined;
  }

  const port = parsePort(pick("port"), 9876);
  const host = pick("host")?.value ?? "0.0.0.0";

  let password = "guest";
  const passwordFile = pick("password-file");
  const passwordOption = pick("password");
  // Flags beat variables beat the config file; at the same level a password beats a password file.
  if (passwordOption && (!passwordFile || passwordOption.layer <= passwordFile.layer)) {
    password = passwordOption.value;
    if (passwordOption.source === "--password") {
      warnings.push(
        "--password on the command line is visible to every user of this machine (ps); use CLU_WS_PASSWORD or --password-file instead",
      );
    }
  } else if (passwordFile) {
    password = readPasswordFile(passwordFile, readTextFile);
  }

  let broker: BrokerConfig = {
    protocol: "amqp",
    hostname: pick("rabbitmq-host")?.value ?? "localhost",
    port: parsePort(pick("rabbitmq-port"), 5672, { allowZero: false }),
    username: pick("user")?.value ?? "guest",
    password,
    vhost: pick("vhost")?.value ?? "/",
    heartbeat: parseHeartbeat(pick("heartbeat")),
  };
  const url = pick("url");
  let brokers = [broker];
  if (url) {
    const separate = broker;
    const urls = parseList(url);
    // A part given on its own at a higher level (flag over env over file) beats the URL's.
    const higher = (...flags: string[]) => flags.some((f) => (pick(f)?.layer ?? 3) < url.layer);
    brokers = urls.map((one) => {
      const merged = applyBrokerUrl(separate, { ...url, value: one });
      if (urls.length === 1 && higher("rabbitmq-host")) merged.hostname = separate.hostname;
      if (urls.length === 1 && higher("rabbitmq-port")) merged.port = separate.port;
      if (higher("user")) merged.username = separate.username;
      if (higher("password", "password-file")) merged.password = separate.password;
      if (higher("vhost")) merged.vhost = separate.vhost;
      return merged;
    });
    broker = brokers[0];
    if (url.layer === 0 && urls.some((one) => new URL(one).password)) {
      warnings.push(
        "a password in --url is visible to every user of this machine (ps); use CLU_WS_URL, CLU_WS_PASSWORD or --password-file instead",
      );
    }
  }

  const exchange = pick("exchange")?.value ?? "sdss_exchange";
  if (!/^[A-Za-z0-9_.:-]{1,127}$/.test(exchange)) {
    throw new ConfigError(
      `${
        pick("exchange")!.source
      }: exchange name '${exchange}' is not valid; use 1 to 127 letters, digits, '-', '_', '.' or ':'`,
    );
  }

  const randomHex = options.randomHex ?? defaultRandomHex;
  const namePick = pick("name");
  const name = namePick?.value ?? `amqp-client-${randomHex(12)}`;
  if (!/^[^\s#*]{1,200}$/.test(name)) {
    throw new ConfigError(
      `${
        namePick!.source
      }: client name '${name}' is not valid; use 1 to 200 characters without spaces, '#' or '*'`,
    );
  }

  return {
    kind: "run",
    config: {
      host,
      port,
      broker,
      brokers,
      exchange,
      name,
      logLevel: parseChoice(pick("log-level"), LOG_LEVELS, "info"),
      logFormat: parseChoice(pick("log-format"), LOG_FORMATS, "text"),
      limits: {
        clientBufferBytes: parseSize(pick("client-buffer"), DEFAULT_LIMITS.clientBufferBytes, { min: 1024 }),
        slowClient: parseChoice(pick("slow-client"), ["close", "drop"] as const, DEFAULT_LIMITS.slowClient),
        maxMessageBytes: parseSize(pick("max-message-size"), DEFAULT_LIMITS.maxMessageBytes, { min: 256 }),
        maxClients: parseCount(pick("max-clients"), DEFAULT_LIMITS.maxClients, { min: 1 }),
        commandRate: parseCount(pick("command-rate"), DEFAULT_LIMITS.commandRate, { min: 0 }),
        commandBurst: parseCount(pick("command-burst"), DEFAULT_LIMITS.commandBurst, { min: 1 }),
        idleTimeoutSeconds: parseCount(pick("idle-timeout"), DEFAULT_LIMITS.idleTimeoutSeconds, {
          min: 0,
          max: 86_400,
        }),
        historySize: parseCount(pick("history-size"), DEFAULT_LIMITS.historySize, { min: 0, max: 1_000_000 }),
        historyAgeSeconds: parseCount(pick("history-age"), DEFAULT_LIMITS.historyAgeSeconds, {
          min: 1,
          max: 86_400,
        }),
        historyBytes: parseSize(pick("history-bytes"), DEFAULT_LIMITS.historyBytes, { min: 0 }),
        headerTimeoutSeconds: parseCount(pick("header-timeout"), DEFAULT_LIMITS.headerTimeoutSeconds, {
          min: 1,
          max: 30,
        }),
        maxPending: parseCount(pick("max-pending"), DEFAULT_LIMITS.maxPending, { min: 1 }),
      },
      access: {
        tokensFile: pick("tokens-file")?.value,
        tokensText: pick("tokens") && { text: pick("tokens")!.value, source: pick("tokens")!.source },
        allowOrigins: [
          ...new Set([
            ...parseList(pick("allow-origin")).map((o) => checkOriginPattern(o, pick("allow-origin")!)),
            // The gateway's own public address is one more allowed origin: a name listed by the
            // operator, which a DNS rebinding page cannot forge (lib/policy.ts).
            ...parseList(pick("public-url")).map((u) => publicOrigin(u, pick("public-url")!)),
          ]),
        ],
        readOnly: parseBoolean(pick("read-only")),
        allowActors: parseGlobs(pick("allow-actor")),
        denyActors: parseGlobs(pick("deny-actor")),
        metricsToken: pick("metrics-token")?.value || undefined,
      },
      tls: readTls(pick("tls-cert"), pick("tls-key"), readTextFile),
      warnings,
    },
  };
}

/** A raw option value, where it came from, and its precedence (0 flag, 1 env, 2 file). */
interface Picked {
  value: string;
  source: string;
  layer: number;
}

/** Reads a TOML or JSON config file into option strings, rejecting unknown keys. */
function readConfigFile(
  path: { value: string; source: string },
  readTextFile: (path: string) => string,
): Record<string, string> {
  let text: string;
  try {
    text = readTextFile(path.value);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`${path.source}: cannot read config file '${path.value}' (${why})`);
  }
  let data: Record<string, unknown>;
  try {
    data = path.value.endsWith(".json") ? JSON.parse(text) : parseToml(text);
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new ConfigError(
      `${path.value}: not valid ${path.value.endsWith(".json") ? "JSON" : "TOML"} (${why})`,
    );
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`${path.value}: the config file must hold a table of options`);
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(data)) {
    const spec = OPTIONS.find((o) => o.flag === key);
    if (!spec || key === "config" || key === "help" || key === "version") {
      throw new ConfigError(
        `${path.value}: unknown option '${key}'; the keys are the long flag names (see --help)`,
      );
    }
    if (Array.isArray(value) && spec.multiple) {
      if (!value.every((item) => typeof item === "string")) {
        throw new ConfigError(`${path.value}: option '${key}' must be a list of strings`);
      }
      out[key] = value.join(",");
    } else if (["string", "number", "boolean"].includes(typeof value)) {
      out[key] = String(value);
    } else if (key === "tokens" && value !== null && typeof value === "object") {
      out[key] = JSON.stringify(value);
    } else {
      throw new ConfigError(
        `${path.value}: option '${key}' must be a ${spec.multiple ? "list or " : ""}single value`,
      );
    }
  }
  return out;
}

function parseList(picked: Picked | undefined): string[] {
  if (!picked) return [];
  return picked.value.split(",").map((item) => item.trim()).filter(Boolean);
}

/** A list of actor globs, bounded in number and length (each command is checked against every one). */
function parseGlobs(picked: Picked | undefined): string[] {
  const globs = parseList(picked);
  const problem = globListProblem(globs, MAX_CONFIG_GLOBS);
  if (problem) throw new ConfigError(`${picked!.source}: the list ${problem}; use fewer or shorter globs`);
  return globs;
}

function parseBoolean(picked: Picked | undefined): boolean {
  if (!picked) return false;
  const value = picked.value.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off", ""].includes(value)) return false;
  throw new ConfigError(`${picked.source}: '${picked.value}' is not true or false`);
}

/** Origins are `scheme://host[:port]`, optionally with `*.` before the host. */
function checkOriginPattern(pattern: string, picked: Picked): string {
  if (!/^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d+)?$/i.test(pattern)) {
    throw new ConfigError(
      `${picked.source}: '${pattern}' is not an origin; use e.g. https://ops.example.org or https://*.example.org`,
    );
  }
  return pattern.toLowerCase();
}

/** The scheme of the page's origin for each accepted `--public-url` scheme. */
const PUBLIC_URL_SCHEMES: Record<string, string> = {
  "http:": "http:",
  "https:": "https:",
  "ws:": "http:",
  "wss:": "https:",
};

/**
 * The origin (`scheme://host[:port]`, as browsers send it) of a `--public-url`:
 * an http(s) URL, or ws(s) for the same address; a path is allowed (a reverse
 * proxy's prefix) and ignored.
 */
function publicOrigin(value: string, picked: Picked): string {
  const fix = "use the address browsers open the console at, e.g. https://gw.example.org:9876";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${picked.source}: '${value}' is not a URL; ${fix}`);
  }
  const scheme = PUBLIC_URL_SCHEMES[url.protocol];
  if (!scheme) {
    throw new ConfigError(`${picked.source}: '${value}' is not an http:// or https:// URL; ${fix}`);
  }
  if (!url.hostname || url.hostname.includes("*") || url.username || url.password || url.search || url.hash) {
    throw new ConfigError(
      `${picked.source}: '${value}' must name one host, without wildcards, user, query or fragment; ${fix}`,
    );
  }
  // Through an http(s) URL the port is dropped when it is the scheme's default, as browsers do in Origin.
  return new URL(`${scheme}//${url.host}`).origin;
}

function readTls(
  cert: Picked | undefined,
  key: Picked | undefined,
  readTextFile: (path: string) => string,
): { cert: string; key: string } | undefined {
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

/**
 * The broker URL with the password replaced by `***`: the only form of it that
 * may be logged or shown.
 */
export function brokerDisplayUrl(broker: BrokerConfig): string {
  const vhost = broker.vhost === "/" ? "" : encodeURIComponent(broker.vhost);
  const user = encodeURIComponent(broker.username);
  return `${broker.protocol}://${user}:***@${hostForUrl(broker.hostname)}:${broker.port}/${vhost}`;
}

function hostForUrl(hostname: string): string {
  return hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
}

function parseFlags(args: readonly string[]): Record<string, string | boolean | string[] | undefined> {
  const spec: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const o of OPTIONS) {
    if (o.noFlag) continue;
    spec[o.flag] = {
      type: o.boolean ? "boolean" : "string",
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  try {
    const { values } = parseArgs({
      args: [...args],
      options: spec,
      strict: true,
      allowPositionals: false,
    });
    return values as Record<string, string | boolean | string[] | undefined>;
  } catch (err) {
    throw new ConfigError(describeParseArgsError(err));
  }
}

function describeParseArgsError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string }).code;
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${quoted ?? ""}; run with --help to list the options`.replace(
        "  ",
        " ",
      );
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${quoted ?? ""}; options take the form --name value (see --help)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return `${message.replace(/\.$/, "")}; see --help`;
    default:
      return `${message}; see --help`;
  }
}

function parsePort(
  picked: { value: string; source: string } | undefined,
  fallback: number,
  { allowZero = true } = {},
): number {
  if (!picked) return fallback;
  const min = allowZero ? 0 : 1;
  const n = Number(picked.value);
  if (!/^\d+$/.test(picked.value.trim()) || !Number.isInteger(n) || n < min || n > 65535) {
    throw new ConfigError(
      `${picked.source}: '${picked.value}' is not a port; use a whole number from ${min} to 65535`,
    );
  }
  return n;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** A byte size such as `65536`, `64KiB`, `1MiB` or `1.5MB`. */
function parseSize(
  picked: { value: string; source: string } | undefined,
  fallback: number,
  { min = 0 } = {},
): number {
  if (!picked) return fallback;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(picked.value);
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isFinite(bytes) || bytes < min || bytes > 2 ** 31) {
    throw new ConfigError(
      `${picked.source}: '${picked.value}' is not a size; use bytes or a unit, e.g. 65536, 64KiB, 1MiB (at least ${min} bytes)`,
    );
  }
  return bytes;
}

/** A whole number within bounds. */
function parseCount(
  picked: { value: string; source: string } | undefined,
  fallback: number,
  { min = 0, max = 10_000_000 } = {},
): number {
  if (!picked) return fallback;
  const n = Number(picked.value);
  if (!/^\s*\d+\s*$/.test(picked.value) || n < min || n > max) {
    throw new ConfigError(
      `${picked.source}: '${picked.value}' is not a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

function parseHeartbeat(picked: { value: string; source: string } | undefined): number {
  if (!picked) return 5;
  const n = Number(picked.value);
  if (!/^\d+$/.test(picked.value.trim()) || n > 3600) {
    throw new ConfigError(
      `${picked.source}: '${picked.value}' is not a heartbeat; use whole seconds from 0 (off) to 3600`,
    );
  }
  return n;
}

function parseChoice<T extends string>(
  picked: { value: string; source: string } | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  if (!picked) return fallback;
  const value = picked.value.toLowerCase();
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(
    `${picked.source}: '${picked.value}' is not one of ${choices.join(", ")}`,
  );
}

function readPasswordFile(
  picked: { value: string; source: string },
  readTextFile: (path: string) => string,
): string {
  let text: string;
  try {
    text = readTextFile(picked.value);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ConfigError(
      `${picked.source}: cannot read password file '${picked.value}' (${why}); check the path and its permissions`,
    );
  }
  const line = text.split(/\r?\n/, 1)[0];
  if (!line) {
    throw new ConfigError(
      `${picked.source}: password file '${picked.value}' is empty; put the password on its first line`,
    );
  }
  return line;
}

function applyBrokerUrl(
  broker: BrokerConfig,
  picked: { value: string; source: string },
): BrokerConfig {
  let url: URL;
  try {
    url = new URL(picked.value);
  } catch {
    throw new ConfigError(
      `${picked.source}: not a URL; use amqp://user:password@host:port/vhost or amqps://…`,
    );
  }
  const protocol = url.protocol.replace(/:$/, "");
  if (protocol !== "amqp" && protocol !== "amqps") {
    throw new ConfigError(
      `${picked.source}: unsupported scheme '${protocol}:'; use amqp:// or amqps://`,
    );
  }
  if (!url.hostname) {
    throw new ConfigError(`${picked.source}: the URL names no host; use amqp://host:5672/`);
  }
  let heartbeat = broker.heartbeat;
  for (const [key, value] of url.searchParams) {
    if (key !== "heartbeat") {
      throw new ConfigError(
        `${picked.source}: URL parameter '${key}' is not supported; only 'heartbeat' is (or use --heartbeat)`,
      );
    }
    heartbeat = parseHeartbeat({ value, source: `${picked.source} heartbeat` });
  }
  function decode(text: string, part: string): string {
    try {
      return decodeURIComponent(text);
    } catch {
      throw new ConfigError(`${picked.source}: the URL's ${part} has a malformed %-escape; write % as %25`);
    }
  }
  let vhost = broker.vhost;
  if (url.pathname.length > 1) {
    vhost = decode(url.pathname.slice(1), "vhost");
  } else if (url.pathname === "/") {
    vhost = "/";
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : protocol === "amqps" ? 5671 : 5672;
  if (port === 0) throw new ConfigError(`${picked.source}: port 0 is not a broker port; use 1 to 65535`);
  return {
    protocol,
    hostname,
    port,
    username: url.username ? decode(url.username, "user name") : broker.username,
    password: url.password ? decode(url.password, "password") : broker.password,
    vhost,
    heartbeat,
  };
}

function defaultRandomHex(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(length / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, length);
}
