/**
 * The options of a gateway embedded in a program (`mod.ts`): the long flag
 * names in camelCase (`maxClients` for `--max-clients`), with plain values.
 * They enter the configuration where argv does, so a program gets every
 * default, bound and error message of the command line; the environment is
 * not read (a library reading `CLU_WS_*` behind a program's back would
 * surprise it).
 *
 * @module
 */

import { ConfigError } from "./config_error.ts";
import type { FlagValues } from "./layers.ts";
import {
  type IntrospectionMode,
  type LogFormat,
  type LogLevelName,
  type OptionName,
  optionSpec,
  type SlowClientPolicy,
} from "./options.ts";

/** One access token, as in a tokens file (see the README's "Access tokens"). */
export interface TokenOption {
  /** A name for logs and denials. */
  name: string;
  /** `watch` (receive only) or `command`. */
  role: "watch" | "command";
  /** Actors a command token may command (globs); all when absent, none when empty. */
  actors?: string[];
  /** The token's SHA-256 in hex. */
  sha256?: string;
  /** The token in plain text (at least 16 characters; logged as a warning). */
  token?: string;
}

/**
 * What {@linkcode startGateway} accepts: any subset of the command line's
 * options by their long names in camelCase. Sizes take a number of bytes or
 * text with a unit (`"1MiB"`); lists take an array or comma-separated text.
 */
export interface GatewayOptions {
  /** Websocket port (9876; 0 picks a free one). */
  port?: number;
  /** Address to listen on (`0.0.0.0`). */
  host?: string;
  /** RabbitMQ host (`localhost`). */
  rabbitmqHost?: string;
  /** RabbitMQ port (5672). */
  rabbitmqPort?: number;
  /** RabbitMQ URL(s), `amqp://user:pass@host:port/vhost`; several name the nodes of a cluster. */
  url?: string | string[];
  /** RabbitMQ user (`guest`). */
  user?: string;
  /** RabbitMQ password (`guest`). */
  password?: string;
  /** A file holding the RabbitMQ password. */
  passwordFile?: string;
  /** RabbitMQ vhost (`/`). */
  vhost?: string;
  /** The topic exchange (`sdss_exchange`). */
  exchange?: string;
  /** The gateway's AMQP client name (`amqp-client-<12 hex>`). */
  name?: string;
  /** AMQP heartbeat in seconds. */
  heartbeat?: number;
  /** Log level; setting it (or `logFormat`) makes the gateway configure LogTape for the process. */
  logLevel?: LogLevelName;
  /** `text` or `json` log lines; see `logLevel`. */
  logFormat?: LogFormat;
  /** Outgoing bytes a client may have waiting. */
  clientBuffer?: number | string;
  /** `close` or `drop` a client over its buffer. */
  slowClient?: SlowClientPolicy;
  /** Largest frame a client may send. */
  maxMessageSize?: number | string;
  /** Websocket clients at once. */
  maxClients?: number;
  /** Commands a second per client (0: no limit). */
  commandRate?: number;
  /** Burst of commands per client. */
  commandBurst?: number;
  /** Seconds of silence before a peer is pinged and dropped. */
  idleTimeout?: number;
  /** Seconds a client has to send a request's head. */
  headerTimeout?: number;
  /** Connections at once that are not websockets. */
  maxPending?: number;
  /** Replies kept for `resume`. */
  historySize?: number;
  /** Seconds replies are kept for `resume`. */
  historyAge?: number;
  /** Bytes of replies kept for `resume`. */
  historyBytes?: number | string;
  /** Points kept per numeric keyword (or array element) for plots. */
  seriesPoints?: number;
  /** Seconds a numeric keyword's point is kept. */
  seriesAge?: number;
  /** Numeric keyword series kept in all. */
  seriesCount?: number;
  /** `memory` (default) or `stream`: where `resume` reads from. */
  history?: "memory" | "stream";
  /** The history stream's name (`<exchange>.history`). */
  historyStream?: string;
  /** The history stream's retention by age (`24h`). */
  historyMaxAge?: string;
  /** The history stream's retention by size (`1GiB`). */
  historyMaxBytes?: number | string;
  /** The history stream's segment size (`64MiB`). */
  historySegmentBytes?: number | string;
  /** Replies one resume replays at most from the stream. */
  historyMaxReplay?: number;
  /** Resumes reading from the stream at once. */
  historyReplays?: number;
  /** A config file (TOML or JSON) whose options these override. */
  config?: string;
  /** A tokens file, re-read by `reloadTokens()`. */
  tokensFile?: string;
  /** Access tokens: a list, or the text of a tokens document. */
  tokens?: TokenOption[] | string;
  /** Browser origins allowed to connect. */
  allowOrigin?: string | string[];
  /** The addresses browsers open the gateway at. */
  publicUrl?: string | string[];
  /** Refuse every command. */
  readOnly?: boolean;
  /** Only these actors may be commanded (globs). */
  allowActor?: string | string[];
  /** These actors may never be commanded (globs). */
  denyActor?: string | string[];
  /** `on` (default): ask each actor once for its commands and keywords; `off`: never. */
  introspection?: IntrospectionMode;
  /** Seconds an actor has to answer each introspection command. */
  introspectionTimeout?: number;
  /** Largest answer to an introspection command that is kept. */
  introspectionMaxBytes?: number | string;
  /** Memory for the actors' commands and keywords. */
  introspectionCacheBytes?: number | string;
  /** PEM certificate file: serve wss:// and https://. */
  tlsCert?: string;
  /** PEM key file for `tlsCert`. */
  tlsKey?: string;
  /** A bearer token that `/metrics` and `/healthz` then require. */
  metricsToken?: string;
}

/** `max-clients` → `maxClients`. */
type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;
/** Options of the table that a program cannot set (or `never`): only what prints and exits. */
type Missing = Exclude<CamelCase<OptionName>, keyof GatewayOptions | "version" | "help">;
/** Keys of {@linkcode GatewayOptions} that are no option of the table (or `never`). */
type Extra = Exclude<keyof GatewayOptions, CamelCase<OptionName>>;
// A compile-time check that GatewayOptions and the option table name the same options: adding a flag
// without its camelCase key here (or the reverse) fails `deno check`, naming the option.
const _sameOptions: [Missing, Extra] extends [never, never] ? true : [Missing, Extra] = true;

/**
 * The options as the command line's flags would give them.
 *
 * @throws {ConfigError} for an unknown option or a value of the wrong kind, naming the option.
 */
export function optionsAsFlags(options: GatewayOptions): FlagValues {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new ConfigError(
      "startGateway takes an options object, e.g. { port: 9876, exchange: 'sdss_exchange' }",
    );
  }
  const flags: Record<string, string | boolean | string[]> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const spec = optionSpec(flag);
    if (!spec || spec.notInFile || key.includes("-")) {
      throw new ConfigError(
        `unknown option '${key}'; the options are the long flag names in camelCase, e.g. maxClients for --max-clients (clu-ws --help lists them)`,
      );
    }
    const wrong = (what: string) => new ConfigError(`--${flag} (option '${key}') must be ${what}`);
    if (spec.boolean) {
      if (typeof value !== "boolean") throw wrong("true or false");
      if (value) flags[flag] = true;
    } else if (flag === "tokens" && typeof value === "object" && value !== null) {
      flags[flag] = JSON.stringify(Array.isArray(value) ? { tokens: value } : value);
    } else if (Array.isArray(value)) {
      if (!spec.multiple || !value.every((item) => typeof item === "string")) {
        throw wrong(spec.multiple ? "a list of strings" : "a single value");
      }
      flags[flag] = value;
    } else if (typeof value === "string" || (typeof value === "number" && Number.isFinite(value))) {
      flags[flag] = String(value);
    } else {
      throw wrong(`a ${spec.multiple ? "string, a list of strings" : "string"} or a number`);
    }
  }
  return flags;
}
