/**
 * What the command bar knows of the text being typed, given the actor's
 * command tree (`command_model.ts`): which command it names, what comes next
 * (subcommands, options, choices) for completion, and what is wrong with it
 * (a wrong choice, a missing argument, an unknown command or option, a value
 * that is not a number), as click would say it. Pure: no DOM.
 *
 * The text is split into words as CLU splits a command (white space, with
 * single or double quotes around a word that has spaces); the last word is
 * the one being typed unless the text ends with a space.
 *
 * @module
 */

import type { CommandSpec, ParamSpec } from "./command_model.ts";
import { argumentLabel } from "./command_model.ts";

/** One word of the command text and where it is. */
export interface Word {
  /** The word, quotes removed. */
  value: string;
  /** Index of its first character in the text. */
  start: number;
  /** Index just past its last character. */
  end: number;
}

/** A candidate for the word being typed. */
export interface Candidate {
  /** The text that completes the word. */
  value: string;
  /** What it is. */
  kind: "command" | "option" | "choice";
  /** Its help, if any. */
  help?: string;
}

/** Something wrong with the command as typed. */
export interface Problem {
  /** `missing` (an argument or an option's value not given yet) or `wrong` (anything else). */
  kind: "missing" | "wrong";
  /** What is wrong, as click would put it. */
  message: string;
}

/** Everything the bar shows for a command text. */
export interface Analysis {
  /** The words. */
  words: Word[];
  /** The command or group the words name, and its path (`["lamps", "on"]`). */
  command: CommandSpec;
  /** The path of subcommand names. */
  path: string[];
  /** The word being typed ("" after a space). */
  current: string;
  /** Where the word being typed starts in the text. */
  currentStart: number;
  /** Candidates for the word being typed, filtered by what is typed of it. */
  candidates: Candidate[];
  /** The parameter the word being typed is for, if known. */
  focus?: ParamSpec;
  /** What is wrong, in order. */
  problems: Problem[];
}

/** Candidates listed at most. */
export const MAX_CANDIDATES = 50;

/** Splits a command text into words, as a shell would (quotes group, and are removed). */
export function splitWords(text: string): Word[] {
  const words: Word[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i])) i++;
    if (i >= text.length) break;
    const start = i;
    let value = "";
    while (i < text.length && !/\s/.test(text[i])) {
      const quote = text[i];
      if (quote === '"' || quote === "'") {
        const close = text.indexOf(quote, i + 1);
        const stop = close < 0 ? text.length : close;
        value += text.slice(i + 1, stop);
        i = close < 0 ? text.length : close + 1;
      } else {
        value += quote;
        i++;
      }
    }
    words.push({ value, start, end: i });
  }
  return words;
}

function visible<T extends { hidden: boolean }>(items: Iterable<T>): T[] {
  return [...items].filter((item) => !item.hidden);
}

function sameChoice(param: ParamSpec, a: string, b: string): boolean {
  return param.caseSensitive ? a === b : a.toLowerCase() === b.toLowerCase();
}

function startsWith(param: ParamSpec | undefined, value: string, prefix: string): boolean {
  return param && !param.caseSensitive
    ? value.toLowerCase().startsWith(prefix.toLowerCase())
    : value.startsWith(prefix);
}

/** Why `value` does not fit `param` (click's words), or undefined when it does. */
export function valueProblem(param: ParamSpec, value: string): string | undefined {
  const label = param.kind === "argument" ? argumentLabel(param).replace(/^\[|\]$/g, "") : param.opts[0];
  if (param.choices) {
    if (param.choices.some((choice) => sameChoice(param, choice, value))) return undefined;
    return `Invalid value for '${label}': '${value}' is not one of ${
      param.choices.map((c) => `'${c}'`).join(", ")
    }.`;
  }
  if (param.type === "float" && (value.trim() === "" || !Number.isFinite(Number(value)))) {
    return `Invalid value for '${label}': '${value}' is not a valid float.`;
  }
  if (param.type === "integer" && !/^[-+]?\d+$/.test(value)) {
    return `Invalid value for '${label}': '${value}' is not a valid integer.`;
  }
  return undefined;
}

/** Whether a word being typed may still become a good value for `param` (`al` of `alt`, `1e` of `1e3`). */
function couldBecome(param: ParamSpec, word: string): boolean {
  if (param.choices) return param.choices.some((choice) => startsWith(param, choice, word));
  if (param.type === "float") return /^[-+]?(\d+\.?\d*|\.\d*)?([eE][-+]?\d*)?$/.test(word);
  if (param.type === "integer") return /^[-+]?\d*$/.test(word);
  return true;
}

/** Whether a word is an option's name rather than a value (a negative number is a value). */
function looksLikeOption(word: string): boolean {
  return word.startsWith("-") && word !== "-" && !/^-\d/.test(word);
}

/** The analysis of `text` against the command tree `root` (the cursor is at the end of the text). */
export function analyze(root: CommandSpec, text: string): Analysis {
  const words = splitWords(text);
  const typing = text !== "" && !/\s$/.test(text) && words.length > 0;
  const current = typing ? words[words.length - 1].value : "";
  const currentStart = typing ? words[words.length - 1].start : text.length;
  const last = typing ? words.length - 1 : words.length;
  const problems: Problem[] = [];
  const candidates: Candidate[] = [];
  let command = root;
  const path: string[] = [];
  let i = 0;
  // Subcommands first: each word that names one of the group's commands goes one level down (not the
  // word being typed: `mo` may become `move` or `mount`).
  while (command.commands && i < words.length && i !== last) {
    const word = words[i].value;
    if (looksLikeOption(word)) break;
    const sub = command.commands.get(word);
    if (!sub) break;
    command = sub;
    path.push(word);
    i++;
  }
  const result = (focus?: ParamSpec): Analysis => ({
    words,
    command,
    path,
    current,
    currentStart,
    candidates: candidates.slice(0, MAX_CANDIDATES),
    focus,
    problems,
  });
  if (command.commands) {
    const subs = visible(command.commands.values());
    if (i === last) {
      for (const sub of subs) {
        if (sub.name.startsWith(current)) {
          candidates.push({ value: sub.name, kind: "command", help: sub.help });
        }
      }
      if (!typing && path.length > 0) problems.push({ kind: "missing", message: "Missing command." });
      return result();
    }
    if (i < words.length && !looksLikeOption(words[i].value)) {
      problems.push({ kind: "wrong", message: `No such command '${words[i].value}'.` });
      return result();
    }
  }
  return parseParams(command, words.slice(i), { typing, current, problems, candidates, result });
}

interface ParseState {
  typing: boolean;
  current: string;
  problems: Problem[];
  candidates: Candidate[];
  result: (focus?: ParamSpec) => Analysis;
}

/** Assigns the words after the command's name to its options and arguments, and finds what comes next. */
function parseParams(command: CommandSpec, words: Word[], state: ParseState): Analysis {
  const { typing, current, problems, candidates } = state;
  const args = command.params.filter((p) => p.kind === "argument");
  const options = command.params.filter((p) => p.kind === "option");
  const used = new Set<ParamSpec>();
  let argIndex = 0;
  let argTaken = 0;
  let pending: ParamSpec | undefined;
  let onlyArgs = false;
  let focus: ParamSpec | undefined;
  for (let j = 0; j < words.length; j++) {
    const word = words[j].value;
    const isCurrent = typing && j === words.length - 1;
    if (pending) {
      focus = pending;
      const problem = valueProblem(pending, word);
      const partial = isCurrent && couldBecome(pending, word);
      if (problem && !partial) problems.push({ kind: "wrong", message: problem });
      pending = undefined;
      continue;
    }
    if (!onlyArgs && word === "--") {
      onlyArgs = true;
      continue;
    }
    if (!onlyArgs && looksLikeOption(word)) {
      const [name, inline] = word.includes("=")
        ? [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)]
        : [word, undefined];
      const option = options.find((o) => o.opts.includes(name) || o.secondary.includes(name));
      focus = option;
      if (!option) {
        const partial = isCurrent && options.some((o) => o.opts.some((opt) => opt.startsWith(word)));
        if (!partial) problems.push({ kind: "wrong", message: `No such option: ${name}` });
        continue;
      }
      used.add(option);
      if (option.flag) continue;
      if (inline !== undefined) {
        const problem = valueProblem(option, inline);
        if (problem && !isCurrent) problems.push({ kind: "wrong", message: problem });
      } else if (!isCurrent) {
        pending = option;
      }
      continue;
    }
    const arg = args[argIndex];
    focus = arg;
    if (!arg) {
      if (!isCurrent) problems.push({ kind: "wrong", message: `Got unexpected extra argument (${word})` });
      continue;
    }
    const problem = valueProblem(arg, word);
    const partial = isCurrent && couldBecome(arg, word);
    if (problem && !partial) problems.push({ kind: "wrong", message: problem });
    argTaken++;
    if (arg.nargs !== -1 && argTaken >= Math.max(1, arg.nargs)) {
      argIndex++;
      argTaken = 0;
    }
  }
  // What comes next: the value of an option, an option, or the next argument.
  const addOptions = () => {
    for (const option of visible(options)) {
      if (used.has(option) && !option.multiple) continue;
      for (
        const name of [option.opts.find((o) => o.startsWith("--")) ?? option.opts[0], ...option.secondary]
      ) {
        if (name.startsWith(current)) candidates.push({ value: name, kind: "option", help: option.help });
      }
    }
  };
  const addChoices = (param: ParamSpec) => {
    for (const choice of param.choices ?? []) {
      if (startsWith(param, choice, current)) {
        candidates.push({ value: choice, kind: "choice", help: param.help });
      }
    }
  };
  const next = args[argIndex];
  if (pending) {
    focus = pending;
    addChoices(pending);
    problems.push({ kind: "missing", message: `Option '${pending.opts[0]}' requires an argument.` });
  } else if (typing && looksLikeOption(current)) {
    addOptions();
  } else if (typing) {
    if (focus?.kind === "argument") addChoices(focus);
    else if (focus?.kind === "option" && !focus.flag) addChoices(focus);
  } else {
    if (next) {
      focus = next;
      addChoices(next);
    }
    addOptions();
  }
  // Arguments not given yet (the one being typed counts as given).
  const missing = args.slice(argIndex).filter((arg, k) => arg.required && !(k === 0 && argTaken > 0));
  for (const arg of missing) {
    problems.push({ kind: "missing", message: `Missing argument '${argumentLabel(arg)}'.` });
  }
  return state.result(focus);
}

/** What is wrong with `text` sent as it is: every word is complete, none is still being typed. */
export function problemsOnSend(root: CommandSpec, text: string): Problem[] {
  return analyze(root, `${text.trim()} `).problems;
}

/**
 * The text with the word being typed replaced by `candidate`, followed by a
 * space (a word with white space is quoted).
 */
export function complete(text: string, analysis: Analysis, candidate: string): string {
  const word = /\s/.test(candidate) ? `"${candidate}"` : candidate;
  return `${text.slice(0, analysis.currentStart)}${word} `;
}

/** The longest text every candidate starts with (what Tab can fill in when there are several). */
export function commonPrefix(candidates: readonly Candidate[]): string {
  if (candidates.length === 0) return "";
  let prefix = candidates[0].value;
  for (const { value } of candidates) {
    while (!value.startsWith(prefix)) prefix = prefix.slice(0, -1);
  }
  return prefix;
}
