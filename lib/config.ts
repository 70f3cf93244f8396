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
  /** The RabbitMQ link. */
  broker: BrokerConfig;
  /** The CLU topic exchange. */
  exchange: string;
  /** The gateway's AMQP client name (`<name>_replies`, `<name>.<consumer>`). */
  name: string;
  /** Lowest level that is logged. */
  logLevel: LogLevelName;
  /** `text` for terminals, `json` (one object per line) for services. */
  logFormat: LogFormat;
  /** Warnings found while parsing (e.g. a password on the command line). */
  warnings: string[];
}

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
  /** Long flag without dashes. */
  flag: string;
  short?: string;
  env?: string;
  boolean?: boolean;
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
    help:
      "RabbitMQ URL, amqp://user:pass@host:port/vhost or amqps://…; overrides host, port, user, password and vhost it names",
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
  { flag: "version", short: "V", boolean: true, help: "print the version and exit" },
  { flag: "help", short: "h", boolean: true, help: "print this help and exit" },
];

/** The `--help` text: every option with its default and its variable. */
export function helpText(): string {
  const rows = OPTIONS.map((o) => {
    const flags = (o.short ? `-${o.short}, ` : "    ") + `--${o.flag}` +
      (o.boolean ? "" : " <value>");
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
    "Options (flags win over environment variables, which win over defaults):",
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
  /** The raw value and where it came from, flag first, then environment. */
  function pick(flag: string): { value: string; source: string } | undefined {
    const spec = OPTIONS.find((o) => o.flag === flag)!;
    const fromFlag = flags[flag];
    if (typeof fromFlag === "string") {
      return { value: fromFlag, source: `--${flag}` };
    }
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== "") {
      return { value: fromEnv, source: spec.env! };
    }
    return undefined;
  }

  const port = parsePort(pick("port"), 9876);
  const host = pick("host")?.value ?? "0.0.0.0";

  const readTextFile = options.readTextFile ?? Deno.readTextFileSync;
  let password = "guest";
  const passwordFile = pick("password-file");
  const passwordOption = pick("password");
  if (passwordOption) {
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
  if (url) {
    broker = applyBrokerUrl(broker, url);
    if (url.source === "--url" && new URL(url.value).password) {
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
      exchange,
      name,
      logLevel: parseChoice(pick("log-level"), LOG_LEVELS, "info"),
      logFormat: parseChoice(pick("log-format"), LOG_FORMATS, "text"),
      warnings,
    },
  };
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

function parseFlags(args: readonly string[]): Record<string, string | boolean | undefined> {
  const spec: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const o of OPTIONS) {
    spec[o.flag] = { type: o.boolean ? "boolean" : "string", ...(o.short ? { short: o.short } : {}) };
  }
  try {
    const { values } = parseArgs({
      args: [...args],
      options: spec,
      strict: true,
      allowPositionals: false,
    });
    return values as Record<string, string | boolean | undefined>;
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
  let vhost = broker.vhost;
  if (url.pathname.length > 1) {
    vhost = decodeURIComponent(url.pathname.slice(1));
  } else if (url.pathname === "/") {
    vhost = "/";
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    protocol,
    hostname,
    port: url.port ? Number(url.port) : protocol === "amqps" ? 5671 : 5672,
    username: url.username ? decodeURIComponent(url.username) : broker.username,
    password: url.password ? decodeURIComponent(url.password) : broker.password,
    vhost,
    heartbeat,
  };
}

function defaultRandomHex(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(length / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, length);
}
