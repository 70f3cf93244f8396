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
  type Logger,
  type LogRecord,
  resetSync,
  sanitizeControlSequences,
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
    ? (record: LogRecord) =>
      plainJsonLine(record) ?? json({ ...record, message: [renderBare(record.message)] })
    : getTextFormatter({ timestamp: utcTimestamp, value: renderValue });
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
  // The sink turns a record into its line at once and keeps nothing: LogTape need not copy each record's
  // properties first in case a sink keeps them for later (its symbol for such sinks, from `Symbol.for`).
  Object.defineProperty(sink, IMMEDIATE_SINK, { value: true });
  debugLines = options.level === "debug";
  lowestRank = LEVELS.indexOf(options.level);
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

/**
 * A record's time as LogTape's `date-time-tz` renders it in UTC (`2026-12-04 23:30:00.123 +00`), with the
 * part up to the second built once per second: LogTape builds every field of it for each line, which was
 * a twentieth of the gateway's CPU per command at 5,000 commands/s.
 */
function utcTimestamp(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== stampSecond) {
    stampSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 19);
    stampPrefix = isoPrefix.replace("T", " ");
  }
  const fraction = ms - second * 1000;
  return `${stampPrefix}.${fraction < 10 ? "00" : fraction < 100 ? "0" : ""}${Math.floor(fraction)} +00`;
}

let stampSecond = NaN;
let stampPrefix = "";
let isoPrefix = "";

/**
 * The JSON line LogTape's formatter (`properties: "flatten"`) writes for a record whose properties are all
 * strings, numbers, booleans, null or undefined — every line of the hot paths — or undefined for any other
 * record, which LogTape formats. Its formatter passes every key through a replacer that looks for cycles
 * and errors; with plain values that replacer changes nothing, and it made a command's line cost 3×.
 */
function plainJsonLine(record: LogRecord): string | undefined {
  const properties = record.properties;
  for (const key in properties) {
    const value = properties[key];
    if (
      typeof value === "object" ? value !== null : typeof value !== "string" && typeof value !== "number" &&
        typeof value !== "boolean" && value !== undefined
    ) {
      return undefined;
    }
  }
  const milliseconds = utcTimestamp(record.timestamp).slice(20, 23);
  const line = JSON.stringify({
    "@timestamp": `${isoPrefix}.${milliseconds}Z`,
    level: record.level === "warning" ? "WARN" : record.level.toUpperCase(),
    message: renderBare(record.message),
    logger: record.category.join("."),
    ...properties,
  });
  // As LogTape does: C1 control characters, which JSON allows raw, escaped too.
  return `${
    line.replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  }\n`;
}

/** LogTape's mark for a sink that renders a record before returning (it then skips a copy of it). */
const IMMEDIATE_SINK = Symbol.for("LogTape.sinkSnapshotPolicy.immediate");

/**
 * A value inside a text line: strings as LogTape's `bare` option renders them (control sequences and
 * newlines escaped, so a value cannot forge a line), numbers and booleans as themselves, anything else
 * through `Deno.inspect` as LogTape does; it inspected numbers too, the costliest part of a command's line.
 */
function renderValue(value: unknown, inspect: (value: unknown) => string): string {
  switch (typeof value) {
    case "string":
      return sanitizeControlSequences(value, { sgr: "escape", newlines: "escape" });
    case "number":
    case "boolean":
      return String(value);
    default:
      return inspect(value);
  }
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
  return new TemplateLog(getLogger([LOG_CATEGORY, part]));
}

/** Levels from least to most severe, as LogTape names them. */
const LEVELS = ["debug", "info", "warning", "error"] as const;
type Level = typeof LEVELS[number];

/** The lowest level {@linkcode setupLogging} let through; -1 while LogTape is configured by someone else. */
let lowestRank = -1;

/** Most distinct message templates remembered; the gateway's own are constants, far fewer than this. */
const MAX_TEMPLATES = 512;

/** Each message template split once: text, property name, text, …, text. */
const templates = new Map<string, readonly string[] | null>();

/** A template's parts, or null when it holds more than plain `{name}` placeholders (LogTape parses those). */
function templateParts(template: string): readonly string[] | null {
  let parts = templates.get(template);
  if (parts !== undefined) return parts;
  const split = template.split(/\{([A-Za-z_][A-Za-z0-9_]*)\}/);
  parts = split.some((text, i) => i % 2 === 0 && (text.includes("{") || text.includes("}"))) ? null : split;
  if (templates.size < MAX_TEMPLATES) templates.set(template, parts);
  return parts;
}

/**
 * LogTape's logger, with each message template split into its parts once rather than on every line (the
 * parse was an eighth of a line's cost, and every command writes one): the record is built here and
 * handed to LogTape's `emit`, so sinks, levels and an embedding program's own configuration apply as
 * before. Templates with anything but plain `{name}` placeholders go through LogTape's own parser.
 */
class TemplateLog implements Log {
  readonly #logger: Logger;
  readonly #category: readonly string[];

  constructor(logger: Logger) {
    this.#logger = logger;
    this.#category = logger.category;
  }

  debug(message: string, properties?: LogProperties): void {
    this.#log("debug", message, properties);
  }

  info(message: string, properties?: LogProperties): void {
    this.#log("info", message, properties);
  }

  warn(message: string, properties?: LogProperties): void {
    this.#log("warning", message, properties);
  }

  error(message: string, properties?: LogProperties): void {
    this.#log("error", message, properties);
  }

  /** Whether a line at this level would be written (what {@linkcode debugEnabled} asks). */
  isEnabledFor(level: Level): boolean {
    return lowestRank >= 0 ? LEVELS.indexOf(level) >= lowestRank : this.#logger.isEnabledFor(level);
  }

  #log(level: Level, template: string, properties: LogProperties | undefined): void {
    if (!this.isEnabledFor(level)) return;
    const parts = templateParts(template);
    if (parts === null) {
      this.#logger[level === "warning" ? "warn" : level](template, properties ?? {});
      return;
    }
    const values = (typeof properties === "function" ? properties() : properties) ?? {};
    const message: unknown[] = parts.slice();
    for (let i = 1; i < message.length; i += 2) message[i] = values[parts[i]];
    const record: LogRecord = {
      category: this.#category,
      level,
      message,
      rawMessage: template,
      timestamp: Date.now(),
      properties: values,
    };
    // With `category` given, LogTape dispatches the record as it is (see `emit` in its logger).
    this.#logger.emit(record);
  }
}
