/**
 * Logging through LogTape: text lines for terminals, JSON lines for services,
 * written synchronously to stderr so nothing is lost when the process exits,
 * with every known secret masked in the final line as a last line of defence.
 *
 * @module
 */

import {
  configureSync,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";
import type { LogFormat, LogLevelName } from "./config/config.ts";

/** The root category of every clu-ws logger. */
export const LOG_CATEGORY = "clu-ws";

/** Options for {@linkcode setupLogging}. */
export interface LogOptions {
  /** Lowest level written. */
  level: LogLevelName;
  /** `text` or `json` lines. */
  format: LogFormat;
  /** Strings that must never appear in a log line (passwords, tokens). */
  secrets?: readonly string[];
  /** Where lines go; stderr unless given. */
  write?: (line: string) => void;
}

/** Configures LogTape for the process; safe to call again (it replaces the setup). */
export function setupLogging(options: LogOptions): void {
  const json = getJsonLinesFormatter({ properties: "flatten", message: "rendered" });
  // The JSON formatter quotes values inside the message; render it bare first, as the text lines do.
  const format = options.format === "json"
    ? (record: LogRecord) => json({ ...record, message: [renderBare(record.message)] })
    : getTextFormatter({ timestamp: "date-time-tz", value: "bare" });
  // "guest" is RabbitMQ's well-known default, not a secret; masking it would garble user names.
  const secrets = (options.secrets ?? []).filter((s) => s.length >= 3 && s !== "guest");
  const encoder = new TextEncoder();
  const write = options.write ?? ((line: string) => writeAllSync(encoder.encode(line)));
  function sink(record: LogRecord): void {
    let line = format(record);
    for (const secret of secrets) line = line.replaceAll(secret, "***");
    write(line);
  }
  resetSync();
  configureSync({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      { category: [LOG_CATEGORY], lowestLevel: options.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** A log message with its values as plain text: strings bare, anything else as JSON. */
function renderBare(parts: readonly unknown[]): string {
  return parts.map((part, i) => i % 2 === 0 || typeof part === "string" ? String(part) : JSON.stringify(part))
    .join("");
}

function writeAllSync(bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stderr.writeSync(bytes.subarray(offset));
}

/** Properties of a log message, or a function that builds them only when the level is enabled. */
export type LogProperties = Record<string, unknown> | (() => Record<string, unknown>);

/**
 * What the gateway logs through: LogTape's logger, narrowed to the calls used here so that the
 * library's own types stay out of this module's public surface.
 */
export interface Log {
  /** Detail for debugging, built lazily when properties are a function. */
  debug(message: string, properties?: LogProperties): void;
  /** Normal operation. */
  info(message: string, properties?: LogProperties): void;
  /** Something an operator should look at. */
  warn(message: string, properties?: LogProperties): void;
  /** Something failed. */
  error(message: string, properties?: LogProperties): void;
}

/** The logger for one part of the gateway, e.g. `logger("broker")`. */
export function logger(part: string): Log {
  return getLogger([LOG_CATEGORY, part]);
}
