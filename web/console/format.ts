/**
 * What the console shows, as text: the message codes and their meaning, keyword
 * values as CLU prints them, clock times, "12 s ago" and elapsed times, and the
 * stream's entries made from frames. Pure: no DOM, so Deno tests it directly.
 *
 * @module
 */

import type { Frame } from "../client.ts";

/** Longest text shown for one keyword value in the compact body. */
const VALUE_CHARS = 160;

/** One message code, what it means and the style class of its rows. */
export interface CodeInfo {
  /** The CLU message code (`:`, `f`, `i`, …). */
  code: string;
  /** What it means, in a word or two. */
  meaning: string;
  /** Style class suffix (`c-<kind>`). */
  kind: string;
}

/** The message codes, what they mean and the style class of each, in the order of the filter boxes. */
export const CODES: ReadonlyArray<CodeInfo> = [
  { code: ">", meaning: "running", kind: "running" },
  { code: ":", meaning: "done", kind: "done" },
  { code: "f", meaning: "failed", kind: "failed" },
  { code: "!", meaning: "failed (fatal)", kind: "failed" },
  { code: "e", meaning: "error", kind: "error" },
  { code: "w", meaning: "warning", kind: "warning" },
  { code: "i", meaning: "info", kind: "info" },
  { code: "d", meaning: "debug", kind: "debug" },
];
const CODE_INFO = new Map(CODES.map((c) => [c.code, c]));

/** One line of the stream: a reply, or a note from the console itself (connection lost, gap). */
export interface Entry {
  /** The reply, absent for notes. */
  frame?: Frame;
  /** The console's own text, absent for replies. */
  note?: string;
  /** Message code, lower case ("" for notes). */
  code: string;
  /** The sender ("" for notes and replies without one). */
  actor: string;
  /** The command id as text ("" when none). */
  commandId: string;
  /** When the console received it (ms since the epoch). */
  at: number;
  /** Lower-case text searched by the free-text filter, made on first use. */
  hay?: string;
}

/** The stream entry for a reply, received now. */
export function entryOf(frame: Frame): Entry {
  const id = frame.headers.command_id;
  return {
    frame,
    code: String(frame.headers.message_code ?? "").toLowerCase(),
    actor: typeof frame.headers.sender === "string" ? frame.headers.sender : "",
    commandId: id === undefined || id === null ? "" : String(id),
    at: Date.now(),
  };
}

/** The stream entry for a note of the console's own, made now. */
export function noteEntry(text: string): Entry {
  return { note: text, code: "", actor: "", commandId: "", at: Date.now() };
}

/** `value` as JSON, or as `String(value)` when JSON cannot hold it (a cycle, a BigInt). */
export function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return String(value);
  }
}

/** A keyword value as CLU prints it: strings quoted, lists comma-separated, the rest as JSON; cut at `limit`. */
export function formatValue(value: unknown, limit: number = VALUE_CHARS): string {
  const text = Array.isArray(value) ? value.map(jsonText).join(",") : jsonText(value);
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

/** The style class suffix for a (lower-case) message code: "other" when unknown. */
export function kindOf(code: string): string {
  return CODE_INFO.get(code)?.kind ?? "other";
}

/** What a (lower-case) message code means: "other" when unknown. */
export function meaningOf(code: string): string {
  return CODE_INFO.get(code)?.meaning ?? "other";
}

/** When an entry happened: the reply's timestamp when it has a valid one, else when it arrived. */
export function timeOf(entry: Entry): Date {
  const stamp = entry.frame?.timestamp;
  if (stamp) {
    const date = new Date(stamp);
    if (!Number.isNaN(date.getTime())) return date;
  }
  return new Date(entry.at);
}

/** HH:MM:SS in UTC, from the reply's timestamp when it has one. */
export function clock(entry: Entry): string {
  return timeOf(entry).toISOString().slice(11, 19);
}

/** "now", "12 s ago", "5 min ago", "3 h ago", "2 d ago": how long before `now` the time `ms` was. */
export function ago(ms: number, now: number = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 2) return "now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** Elapsed time: "84 ms", "1.24 s", "12.5 s", "2 min 5 s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** A fresh command id: a UUID, or 32 random hex digits where `randomUUID` is missing (plain http). */
export function newCommandId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
