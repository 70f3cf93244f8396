/**
 * How to reach RabbitMQ: the broker options and `--url` (one URL, or several
 * for a cluster's nodes) merged by precedence, the password's sources, and the
 * one printable form of a broker address.
 *
 * @module
 */

import { ConfigError } from "./config_error.ts";
import { LAYERS, type Layers } from "./layers.ts";
import type { OptionName } from "./options.ts";
import { parseHeartbeat, parseList, parsePort, type RawValue } from "./parsers.ts";

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

/** Options for {@linkcode parseBrokers}. */
export interface ParseBrokersOptions {
  /** Reads a password file. */
  readTextFile: (path: string) => string;
  /** Collects warnings (a password on the command line). */
  warnings: string[];
  /** False when the flag layer holds a program's options, not argv: no one can read those with `ps`. */
  argv?: boolean;
}

/**
 * Every broker node to try, in order: one from the separate options, or one
 * per `--url`, each URL's parts beaten by a part given on its own at a higher
 * layer (flag over variable over file).
 *
 * @throws {ConfigError} on a bad port, heartbeat, URL or password file.
 */
export function parseBrokers(layers: Layers, options: ParseBrokersOptions): BrokerConfig[] {
  const passwordOption = layers.get("password");
  const passwordFile = layers.pick("password-file");
  let password: string;
  // Flags beat variables beat the config file beat the default; at the same layer a password beats a password file.
  if (passwordFile && passwordFile.layer < passwordOption.layer) {
    password = readPasswordFile(passwordFile, options.readTextFile);
  } else {
    password = passwordOption.value;
    if (passwordOption.source === "--password" && options.argv !== false) {
      options.warnings.push(
        "--password on the command line is visible to every user of this machine (ps); use CLU_WS_PASSWORD or --password-file instead",
      );
    }
  }

  const separate: BrokerConfig = {
    protocol: "amqp",
    hostname: layers.get("rabbitmq-host").value,
    port: parsePort(layers.get("rabbitmq-port"), { allowZero: false }),
    username: layers.get("user").value,
    password,
    vhost: layers.get("vhost").value,
    heartbeat: parseHeartbeat(layers.get("heartbeat")),
  };
  const url = layers.pick("url");
  if (!url) return [separate];
  const urls = parseList(url);
  const higher = (...names: OptionName[]) =>
    names.some((name) => (layers.pick(name)?.layer ?? LAYERS.default) < url.layer);
  const brokers = urls.map((one) => {
    const merged = applyBrokerUrl(separate, { ...url, value: one });
    // Several URLs name several nodes: a lone --rabbitmq-host or --rabbitmq-port cannot stand for all of them.
    if (urls.length === 1 && higher("rabbitmq-host")) merged.hostname = separate.hostname;
    if (urls.length === 1 && higher("rabbitmq-port")) merged.port = separate.port;
    if (higher("user")) merged.username = separate.username;
    if (higher("password", "password-file")) merged.password = separate.password;
    if (higher("vhost")) merged.vhost = separate.vhost;
    return merged;
  });
  if (url.layer === LAYERS.flag && options.argv !== false && urls.some((one) => new URL(one).password)) {
    options.warnings.push(
      "a password in --url is visible to every user of this machine (ps); use CLU_WS_URL, CLU_WS_PASSWORD or --password-file instead",
    );
  }
  return brokers;
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

/** The first line of a password file, so a trailing newline is not part of the password. */
function readPasswordFile(raw: RawValue, readTextFile: (path: string) => string): string {
  let text: string;
  try {
    text = readTextFile(raw.value);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ConfigError(
      `${raw.source}: cannot read password file '${raw.value}' (${why}); check the path and its permissions`,
    );
  }
  const line = text.split(/\r?\n/, 1)[0];
  if (!line) {
    throw new ConfigError(
      `${raw.source}: password file '${raw.value}' is empty; put the password on its first line`,
    );
  }
  return line;
}

/** One broker from `base` with what a URL names put over it (its `%`-escapes decoded). */
function applyBrokerUrl(base: BrokerConfig, raw: RawValue): BrokerConfig {
  let url: URL;
  try {
    url = new URL(raw.value);
  } catch {
    throw new ConfigError(`${raw.source}: not a URL; use amqp://user:password@host:port/vhost or amqps://…`);
  }
  const protocol = url.protocol.replace(/:$/, "");
  if (protocol !== "amqp" && protocol !== "amqps") {
    throw new ConfigError(`${raw.source}: unsupported scheme '${protocol}:'; use amqp:// or amqps://`);
  }
  if (!url.hostname) {
    throw new ConfigError(`${raw.source}: the URL names no host; use amqp://host:5672/`);
  }
  let heartbeat = base.heartbeat;
  for (const [key, value] of url.searchParams) {
    if (key !== "heartbeat") {
      throw new ConfigError(
        `${raw.source}: URL parameter '${key}' is not supported; only 'heartbeat' is (or use --heartbeat)`,
      );
    }
    heartbeat = parseHeartbeat({ value, source: `${raw.source} heartbeat` });
  }
  function decode(text: string, part: string): string {
    try {
      return decodeURIComponent(text);
    } catch {
      throw new ConfigError(`${raw.source}: the URL's ${part} has a malformed %-escape; write % as %25`);
    }
  }
  let vhost = base.vhost;
  if (url.pathname.length > 1) {
    vhost = decode(url.pathname.slice(1), "vhost");
  } else if (url.pathname === "/") {
    vhost = "/";
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : protocol === "amqps" ? 5671 : 5672;
  if (port === 0) throw new ConfigError(`${raw.source}: port 0 is not a broker port; use 1 to 65535`);
  return {
    protocol,
    hostname,
    port,
    username: url.username ? decode(url.username, "user name") : base.username,
    password: url.password ? decode(url.password, "password") : base.password,
    vhost,
    heartbeat,
  };
}
