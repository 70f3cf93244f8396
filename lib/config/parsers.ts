/**
 * Value parsers: one option's raw text (from a flag, a variable, the config
 * file or the table's default) into a checked value. Pure; each error names
 * where the value came from and what to write instead.
 *
 * @module
 */

import { globListProblem, MAX_CONFIG_GLOBS } from "../protocol/glob.ts";
import { ConfigError } from "./config_error.ts";

/** An option's raw text and where it came from (`--port`, `CLU_WS_PORT`, `gw.toml: port`). */
export interface RawValue {
  /** The text as given. */
  value: string;
  /** Where it was given, as error messages name it. */
  source: string;
}

/** A TCP port; `allowZero` (the default) accepts 0, "pick a free one". */
export function parsePort(raw: RawValue, { allowZero = true }: { allowZero?: boolean } = {}): number {
  const min = allowZero ? 0 : 1;
  const n = Number(raw.value);
  if (!/^\d+$/.test(raw.value.trim()) || !Number.isInteger(n) || n < min || n > 65535) {
    throw new ConfigError(
      `${raw.source}: '${raw.value}' is not a port; use a whole number from ${min} to 65535`,
    );
  }
  return n;
}

/** Bytes per unit; a bare k, m or g is binary, as in `64k`. */
const SIZE_UNITS: Readonly<Record<string, number>> = {
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

/** A byte size such as `65536`, `64KiB`, `1MiB` or `1.5MB`, from `min` up to 2 GiB. */
export function parseSize(raw: RawValue, { min = 0 }: { min?: number } = {}): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw.value);
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isFinite(bytes) || bytes < min || bytes > 2 ** 31) {
    throw new ConfigError(
      `${raw.source}: '${raw.value}' is not a size; use bytes or a unit, e.g. 65536, 64KiB, 1MiB (at least ${min} bytes)`,
    );
  }
  return bytes;
}

/** A whole number from `min` (default 0) to `max` (default 10,000,000). */
export function parseCount(
  raw: RawValue,
  { min = 0, max = 10_000_000 }: { min?: number; max?: number } = {},
): number {
  const n = Number(raw.value);
  if (!/^\s*\d+\s*$/.test(raw.value) || n < min || n > max) {
    throw new ConfigError(`${raw.source}: '${raw.value}' is not a whole number from ${min} to ${max}`);
  }
  return n;
}

/** An AMQP heartbeat: whole seconds from 0 (off) to an hour. */
export function parseHeartbeat(raw: RawValue): number {
  const n = Number(raw.value);
  if (!/^\d+$/.test(raw.value.trim()) || n > 3600) {
    throw new ConfigError(
      `${raw.source}: '${raw.value}' is not a heartbeat; use whole seconds from 0 (off) to 3600`,
    );
  }
  return n;
}

/** One of `choices`, in any letter case. */
export function parseChoice<T extends string>(raw: RawValue, choices: readonly T[]): T {
  const value = raw.value.toLowerCase();
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(`${raw.source}: '${raw.value}' is not one of ${choices.join(", ")}`);
}

/** A switch: 1/true/yes/on or 0/false/no/off (or empty); not given is false. */
export function parseBoolean(raw: RawValue | undefined): boolean {
  if (!raw) return false;
  const value = raw.value.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off", ""].includes(value)) return false;
  throw new ConfigError(`${raw.source}: '${raw.value}' is not true or false`);
}

/** A comma-separated list, items trimmed, empty items dropped; not given is empty. */
export function parseList(raw: RawValue | undefined): string[] {
  if (!raw) return [];
  return raw.value.split(",").map((item) => item.trim()).filter(Boolean);
}

/** A list of actor globs, bounded in number and length (each command is checked against every one). */
export function parseGlobs(raw: RawValue | undefined): string[] {
  const globs = parseList(raw);
  const problem = globListProblem(globs, MAX_CONFIG_GLOBS);
  if (problem) throw new ConfigError(`${raw!.source}: the list ${problem}; use fewer or shorter globs`);
  return globs;
}

/** A list of origin patterns, `scheme://host[:port]` with an optional `*.` before the host; lower-cased. */
export function parseOriginPatterns(raw: RawValue | undefined): string[] {
  return parseList(raw).map((pattern) => {
    if (!/^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d+)?$/i.test(pattern)) {
      throw new ConfigError(
        `${
          raw!.source
        }: '${pattern}' is not an origin; use e.g. https://ops.example.org or https://*.example.org`,
      );
    }
    return pattern.toLowerCase();
  });
}

/** The scheme of the page's origin for each accepted `--public-url` scheme. */
const PUBLIC_URL_SCHEMES: Readonly<Record<string, string>> = {
  "http:": "http:",
  "https:": "https:",
  "ws:": "http:",
  "wss:": "https:",
};

/**
 * The origins (`scheme://host[:port]`, as browsers send them) of a list of
 * public URLs: http(s) URLs, or ws(s) for the same address; a path is allowed
 * (a reverse proxy's prefix) and ignored.
 */
export function parsePublicOrigins(raw: RawValue | undefined): string[] {
  const fix = "use the address browsers open the console at, e.g. https://gw.example.org:9876";
  return parseList(raw).map((value) => {
    const source = raw!.source;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ConfigError(`${source}: '${value}' is not a URL; ${fix}`);
    }
    const scheme = PUBLIC_URL_SCHEMES[url.protocol];
    if (!scheme) {
      throw new ConfigError(`${source}: '${value}' is not an http:// or https:// URL; ${fix}`);
    }
    if (
      !url.hostname || url.hostname.includes("*") || url.username || url.password || url.search || url.hash
    ) {
      throw new ConfigError(
        `${source}: '${value}' must name one host, without wildcards, user, query or fragment; ${fix}`,
      );
    }
    // Through an http(s) URL the port is dropped when it is the scheme's default, as browsers do in Origin.
    return new URL(`${scheme}//${url.host}`).origin;
  });
}

/** A RabbitMQ exchange name. */
export function parseExchange(raw: RawValue): string {
  if (!/^[A-Za-z0-9_.:-]{1,127}$/.test(raw.value)) {
    throw new ConfigError(
      `${raw.source}: exchange name '${raw.value}' is not valid; use 1 to 127 letters, digits, '-', '_', '.' or ':'`,
    );
  }
  return raw.value;
}

/** The gateway's AMQP client name: it becomes part of queue names and routing keys. */
export function parseClientName(raw: RawValue): string {
  if (!/^[^\s#*]{1,200}$/.test(raw.value)) {
    throw new ConfigError(
      `${raw.source}: client name '${raw.value}' is not valid; use 1 to 200 characters without spaces, '#' or '*'`,
    );
  }
  return raw.value;
}
