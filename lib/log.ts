/**
 * Logging through LogTape: text lines for terminals, JSON lines for services,
 * with every known secret masked in the final line as a last line of defence.
 *
 * Lines go to stderr the way access logs do in busy servers: `debug` and
 * `info` lines are gathered and written together once the current turn of the
 * event loop is over (one `write` for all the command lines of a burst rather
 * than one each: at 5,000 commands/s that write was a tenth of the gateway's
 * CPU); a `warning` or `error` line writes what is gathered and itself at
 * once, so a failure is on disk before anything else happens. Whoever exits
 * the process calls {@linkcode flushLogs} first.
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
  const write = options.write;
  function sink(record: LogRecord): void {
    let line = format(record);
    for (const secret of secrets) line = line.replaceAll(secret, "***");
    if (write) write(line);
    else {stderrLines.add(
        line,
        record.level === "warning" || record.level === "error" || record.level === "fatal",
      );}
  }
  debugLines = options.level === "debug";
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

/** Most bytes gathered before they are written even within one turn. */
const MAX_GATHERED_BYTES = 64 * 1024;

/** Lines on their way to stderr: gathered during a turn, written together after it. */
class GatheredLines {
  readonly #encoder = new TextEncoder();
  #lines: string[] = [];
  #chars = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Adds a line; `now` writes it (and everything before it) at once. */
  add(line: string, now: boolean): void {
    this.#lines.push(line);
    this.#chars += line.length;
    if (now || this.#chars >= MAX_GATHERED_BYTES) {
      this.flush();
    } else if (this.#timer === undefined) {
      // A timer, not a microtask: the callbacks of one event-loop turn (many sockets' frames, the
      // broker's confirms) each end in a microtask checkpoint, so a microtask would write per line.
      this.#timer = setTimeout(() => this.flush(), 0);
    }
  }

  /** Writes every gathered line now. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#lines.length === 0) return;
    const text = this.#lines.length === 1 ? this.#lines[0] : this.#lines.join("");
    this.#lines = [];
    this.#chars = 0;
    writeAllSync(this.#encoder.encode(text));
  }
}

const stderrLines = new GatheredLines();

/** Whether debug lines are written; unknown (LogTape is asked) until {@linkcode setupLogging} runs. */
let debugLines: boolean | undefined;

/**
 * Whether `log.debug` would write anything: a plain flag when this module set
 * up logging, so that a hot path (one reply) pays no logger lookup for a line
 * that is off; LogTape's own answer when an embedding program configured it.
 */
export function debugEnabled(log: Log): boolean {
  return debugLines ?? (log as { isEnabledFor?: (level: "debug") => boolean }).isEnabledFor?.("debug") ??
    true;
}

/** Writes every log line still gathered to stderr; call it before the process exits. */
export function flushLogs(): void {
  stderrLines.flush();
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
