/**
 * The option table: every option once, with its flag, short flag, `CLU_WS_*`
 * variable, config-file key (the long flag name), default and `--help` line.
 * Flags, variables, the config file and the help text are all read off it.
 *
 * @module
 */

/** Log levels accepted by `--log-level`, most verbose first. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
/** A log level accepted by `--log-level`. */
export type LogLevelName = typeof LOG_LEVELS[number];
/** Log formats accepted by `--log-format`. */
export const LOG_FORMATS = ["text", "json"] as const;
/** A log format accepted by `--log-format`. */
export type LogFormat = typeof LOG_FORMATS[number];
/** Values of `--introspection`. */
export const INTROSPECTION_MODES = ["on", "off"] as const;
/** Whether the gateway asks actors for their commands. */
export type IntrospectionMode = typeof INTROSPECTION_MODES[number];
/** Policies accepted by `--slow-client`. */
export const SLOW_CLIENT_POLICIES = ["close", "drop"] as const;
/** What to do with a client whose outgoing buffer is over budget. */
export type SlowClientPolicy = typeof SLOW_CLIENT_POLICIES[number];

/** Backends accepted by `--history`. */
export const HISTORY_BACKENDS = ["memory", "stream"] as const;

/** One option: how it is spelled in each place it can be given, and how --help shows it. */
export interface OptionSpec {
  /** Long flag without dashes; also the option's key in a config file. */
  readonly flag: string;
  /** One-letter flag without its dash (`p` for `-p`). */
  readonly short?: string;
  /** The `CLU_WS_*` environment variable. */
  readonly env?: string;
  /** A switch: given alone on the command line, `true`/`false` elsewhere. */
  readonly boolean?: boolean;
  /** May be given several times (flags), comma-separated (env) or as a list (file). */
  readonly multiple?: boolean;
  /** A secret: no command-line flag, only the environment or a config file. */
  readonly noFlag?: boolean;
  /** Not a config-file key: the file itself, and requests only the command line makes. */
  readonly notInFile?: boolean;
  /** The value used when no flag, variable or file gives one; --help shows it. */
  readonly default?: string;
  /** What --help shows as the default when the real one is made at start (the client name). */
  readonly shown?: string;
  /** The option's line in --help. */
  readonly help: string;
}

/** Every option, in --help order: the single source for flags, env, the config file, defaults and help. */
export const OPTIONS = [
  {
    flag: "port",
    short: "p",
    env: "CLU_WS_PORT",
    default: "9876",
    help: "port for websocket clients (0 picks a free one)",
  },
  {
    flag: "host",
    env: "CLU_WS_HOST",
    default: "0.0.0.0",
    help: "address to listen on",
  },
  {
    flag: "rabbitmq-host",
    short: "H",
    env: "CLU_WS_RABBITMQ_HOST",
    default: "localhost",
    help: "RabbitMQ host",
  },
  {
    flag: "rabbitmq-port",
    short: "P",
    env: "CLU_WS_RABBITMQ_PORT",
    default: "5672",
    help: "RabbitMQ port",
  },
  {
    flag: "url",
    env: "CLU_WS_URL",
    multiple: true,
    help:
      "RabbitMQ URL, amqp://user:pass@host:port/vhost or amqps://…; overrides host, port, user, password and vhost it names; several (repeated, or comma-separated) are a cluster's nodes, tried in turn",
  },
  { flag: "user", env: "CLU_WS_USER", default: "guest", help: "RabbitMQ user" },
  {
    flag: "password",
    env: "CLU_WS_PASSWORD",
    default: "guest",
    help: "RabbitMQ password (prefer the variable or --password-file)",
  },
  {
    flag: "password-file",
    env: "CLU_WS_PASSWORD_FILE",
    help: "file whose first line is the RabbitMQ password",
  },
  { flag: "vhost", env: "CLU_WS_VHOST", default: "/", help: "RabbitMQ vhost" },
  {
    flag: "exchange",
    env: "CLU_WS_EXCHANGE",
    default: "sdss_exchange",
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
    default: "5",
    help: "AMQP heartbeat in seconds; a dead broker is noticed within about twice this (0 disables)",
  },
  {
    flag: "log-level",
    env: "CLU_WS_LOG_LEVEL",
    default: "info",
    help: LOG_LEVELS.join("|"),
  },
  {
    flag: "log-format",
    env: "CLU_WS_LOG_FORMAT",
    default: "text",
    help: "text (for terminals) | json (one object per line, for services)",
  },
  {
    flag: "client-buffer",
    env: "CLU_WS_CLIENT_BUFFER",
    default: "1MiB",
    help: "outgoing bytes a client may have waiting before the slow-client policy applies",
  },
  {
    flag: "slow-client",
    env: "CLU_WS_SLOW_CLIENT",
    default: "close",
    help: "close: disconnect a client over its buffer (1008) | drop: skip its frames, then tell it how many",
  },
  {
    flag: "max-message-size",
    env: "CLU_WS_MAX_MESSAGE_SIZE",
    default: "64KiB",
    help: "largest frame a client may send; larger closes it with 1009",
  },
  {
    flag: "max-clients",
    env: "CLU_WS_MAX_CLIENTS",
    default: "10000",
    help: "websocket clients at once; one more gets HTTP 503",
  },
  {
    flag: "command-rate",
    env: "CLU_WS_COMMAND_RATE",
    default: "20",
    help: "commands per second each client may send on average (0: no limit)",
  },
  {
    flag: "command-burst",
    env: "CLU_WS_COMMAND_BURST",
    default: "40",
    help: "commands a client may send at once above the rate",
  },
  {
    flag: "idle-timeout",
    env: "CLU_WS_IDLE_TIMEOUT",
    default: "40",
    help:
      "seconds: a silent client is pinged after half of it and dropped at the end without a pong (0: never)",
  },
  {
    flag: "header-timeout",
    env: "CLU_WS_HEADER_TIMEOUT",
    default: "10",
    help:
      "seconds a client has to send an HTTP request (the websocket handshake included); a slower one gets 408 and is closed (1 to 30)",
  },
  {
    flag: "max-pending",
    env: "CLU_WS_MAX_PENDING",
    default: "1000",
    help:
      "connections at once that are not websockets (HTTP requests, handshakes in progress); more are closed on arrival",
  },
  {
    flag: "history-size",
    env: "CLU_WS_HISTORY_SIZE",
    default: "10000",
    help: "replies kept for clients that reconnect and resume (clu-ws v1; 0 keeps none)",
  },
  {
    flag: "history-age",
    env: "CLU_WS_HISTORY_AGE",
    default: "600",
    help: "seconds a reply is kept for resuming clients",
  },
  {
    flag: "history-bytes",
    env: "CLU_WS_HISTORY_BYTES",
    // 8 MiB: ~8,000 replies of 1 KB. With 20 clients, a stalled one and a flood of 30,000 such replies the
    // gateway's RSS peaks under +64 MiB with it (tests/memory_test.ts); the buffer is allocated once at this size.
    default: "8MiB",
    help:
      "memory for replies kept for resuming clients (each counts its frame plus 32 bytes; the oldest go first; 0 keeps none)",
  },
  {
    flag: "series-points",
    env: "CLU_WS_SERIES_POINTS",
    default: "1000",
    help:
      "points kept per series (a numeric keyword, or an array keyword's numeric element) for plots (0 keeps none)",
  },
  {
    flag: "series-age",
    env: "CLU_WS_SERIES_AGE",
    default: "3600",
    help: "seconds a series' point is kept for plots",
  },
  {
    flag: "series-count",
    env: "CLU_WS_SERIES_COUNT",
    // 1,000 series × 1,000 points × 16 bytes: at most 16 MB of points, grown as keywords arrive.
    default: "1000",
    help: "series kept for plots in all; when full, those updated the longest ago go (0 keeps none)",
  },
  {
    flag: "history",
    env: "CLU_WS_HISTORY",
    default: "memory",
    help:
      "where resuming clients' replies come from: memory (this process, the default) or stream (a RabbitMQ stream shared by every gateway, surviving restarts; RabbitMQ 3.9 or later)",
  },
  {
    flag: "history-stream",
    env: "CLU_WS_HISTORY_STREAM",
    shown: "<exchange>.history",
    help: "with --history stream: the stream's name (every gateway of the exchange uses the same one)",
  },
  {
    flag: "history-max-age",
    env: "CLU_WS_HISTORY_MAX_AGE",
    default: "24h",
    help:
      "with --history stream: the stream's retention by age (RabbitMQ's x-max-age: a number and Y, M, D, h, m or s)",
  },
  {
    flag: "history-max-bytes",
    env: "CLU_WS_HISTORY_MAX_BYTES",
    default: "1GiB",
    help: "with --history stream: the stream's retention by size on disk (x-max-length-bytes)",
  },
  {
    flag: "history-segment-bytes",
    env: "CLU_WS_HISTORY_SEGMENT_BYTES",
    default: "64MiB",
    help:
      "with --history stream: the stream's segment size (x-stream-max-segment-size-bytes); retention drops whole segments, so the disk holds up to --history-max-bytes plus one segment",
  },
  {
    flag: "history-max-replay",
    env: "CLU_WS_HISTORY_MAX_REPLAY",
    default: "100000",
    help: "with --history stream: replies one resume replays at most; a client further behind gets a gap",
  },
  {
    flag: "history-replays",
    env: "CLU_WS_HISTORY_REPLAYS",
    default: "16",
    help: "with --history stream: resumes read from the stream at once; more wait their turn",
  },
  {
    flag: "config",
    env: "CLU_WS_CONFIG",
    notInFile: true,
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
  {
    flag: "introspection",
    env: "CLU_WS_INTROSPECTION",
    default: "on",
    help:
      "on: ask each actor the gateway may command, once, for its commands and keywords (get-command-model, get_schema, help), for the console's completion | off: never send an actor a command of the gateway's own",
  },
  {
    flag: "introspection-timeout",
    env: "CLU_WS_INTROSPECTION_TIMEOUT",
    default: "10",
    help: "seconds an actor has to answer each introspection command (1 to 300)",
  },
  {
    flag: "introspection-max-bytes",
    env: "CLU_WS_INTROSPECTION_MAX_BYTES",
    default: "1MiB",
    help: "largest answer to an introspection command that is kept; a larger one is refused unparsed",
  },
  {
    flag: "introspection-cache-bytes",
    env: "CLU_WS_INTROSPECTION_CACHE_BYTES",
    default: "32MiB",
    help: "memory for the actors' commands and keywords; the least recently used actor's go first",
  },
  { flag: "tls-cert", env: "CLU_WS_TLS_CERT", help: "PEM certificate (chain): serve wss:// and https://" },
  { flag: "tls-key", env: "CLU_WS_TLS_KEY", help: "PEM private key for --tls-cert" },
  {
    flag: "metrics-token",
    env: "CLU_WS_METRICS_TOKEN",
    noFlag: true,
    help: "a bearer token that /metrics and /healthz then require",
  },
  { flag: "version", short: "V", boolean: true, notInFile: true, help: "print the version and exit" },
  { flag: "help", short: "h", boolean: true, notInFile: true, help: "print this help and exit" },
] as const satisfies readonly OptionSpec[];

/** The long name of an option, as a flag without dashes and as a config-file key. */
export type OptionName = typeof OPTIONS[number]["flag"];

/** The options that have a default, so always have a value. */
export type DefaultedOption = Extract<typeof OPTIONS[number], { default: string }>["flag"];

/** The table entry of an option by its long name, or `undefined` for a name that is not an option. */
export function optionSpec(name: string): OptionSpec | undefined {
  return (OPTIONS as readonly OptionSpec[]).find((o) => o.flag === name);
}
