/**
 * Actor-name globs for access rules, subscriptions and the console: `*`
 * matches any run of characters (dots included, so `lvm.*` covers
 * `lvm.sp1.ieb`), `?` one character; everything else matches itself.
 *
 * Globs come from clients and links, so they are hostile input. They are
 * matched without regular expressions: a backtracking `.*` per star made
 * `"*".repeat(24) + "Z"` take seconds, and 40 stars hours. The matcher here
 * is the iterative two-pointer wildcard match, which never takes more than
 * O(length of name × length of pattern) steps, and patterns are bounded in
 * length and number ({@linkcode globListProblem}).
 *
 * No Deno APIs: the browser console imports this module too.
 *
 * @module
 */

/** Longest glob accepted, in UTF-8 bytes: an actor name is part of a routing key, which AMQP caps at 255. */
export const MAX_GLOB_BYTES = 255;
/** Most globs a client may send in one list (v1 `subscribe` and `state`). */
export const MAX_CLIENT_GLOBS = 64;
/** Most globs an operator may configure in one list (`--allow-actor`, `--deny-actor`, a token's `actors`). */
export const MAX_CONFIG_GLOBS = 1000;

/**
 * Whether `subject` matches `pattern`, element by element: `many` in the
 * pattern matches any run of elements (none included), `one` exactly one
 * element, anything else an equal element.
 *
 * Works on strings (characters) and on arrays of words (AMQP topics, where
 * `#` is many and `*` one). Iterative two-pointer match: on a mismatch it
 * only ever retries from the most recent `many`, which is enough because a
 * later `many` can absorb anything an earlier one could. Worst case
 * O(subject.length × pattern.length); no recursion, no regular expression.
 */
export function wildcardMatch(
  pattern: ArrayLike<string>,
  subject: ArrayLike<string>,
  many: string,
  one: string,
): boolean {
  let p = 0;
  let s = 0;
  let star = -1; // index in pattern of the last `many` seen
  let resume = 0; // index in subject where that `many` stopped absorbing
  while (s < subject.length) {
    if (p < pattern.length && pattern[p] === many) {
      star = p++;
      resume = s;
    } else if (p < pattern.length && (pattern[p] === one || pattern[p] === subject[s])) {
      p++;
      s++;
    } else if (star >= 0) {
      // Let the last `many` absorb one more element and try again after it.
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === many) p++;
  return p === pattern.length;
}

/** Whether `name` matches the glob `pattern` (`*` any run of characters, `?` one). */
export function globMatch(pattern: string, name: string): boolean {
  return compileGlob(pattern)(name);
}

/**
 * A glob compiled once for many names: runs of `*` collapse into one (they
 * match the same), and a name shorter than the pattern's fixed characters is
 * refused before any matching.
 */
function compileGlob(pattern: string): (name: string) => boolean {
  const collapsed = pattern.replace(/\*{2,}/g, "*");
  if (!collapsed.includes("*")) {
    if (!collapsed.includes("?")) return (name) => name === collapsed;
    return (name) => name.length === collapsed.length && wildcardMatch(collapsed, name, "*", "?");
  }
  if (collapsed === "*") return () => true;
  const fixed = collapsed.length - (collapsed.match(/\*/g)?.length ?? 0);
  return (name) => name.length >= fixed && wildcardMatch(collapsed, name, "*", "?");
}

/** Compiled globs that remember their source text, for messages. */
export interface GlobList {
  /** The patterns as written. */
  readonly patterns: readonly string[];
  /** The first pattern that matches `name`, or undefined. */
  match(name: string): string | undefined;
}

/**
 * Compiles patterns once; matching is then a linear-time wildcard match per
 * pattern. Check hostile lists with {@linkcode globListProblem} first.
 */
export function compileGlobs(patterns: readonly string[]): GlobList {
  const compiled = patterns.map((pattern) => ({ pattern, test: compileGlob(pattern) }));
  return {
    patterns,
    match(name: string): string | undefined {
      return compiled.find((c) => c.test(name))?.pattern;
    },
  };
}

const encoder = new TextEncoder();

/**
 * What is wrong with a list of globs, as words to append to the list's name
 * (e.g. `"actors" ` + problem), or undefined when it is a list of at most
 * `maxCount` non-empty strings of at most {@linkcode MAX_GLOB_BYTES} bytes each.
 */
export function globListProblem(value: unknown, maxCount: number): string | undefined {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
    return "must be a list of actor names or globs";
  }
  if (value.length > maxCount) {
    return `has ${value.length} entries; at most ${maxCount} are accepted`;
  }
  for (const [i, glob] of (value as string[]).entries()) {
    // Cheap test first: a string can take up to 3 bytes per UTF-16 unit.
    if (glob.length * 3 > MAX_GLOB_BYTES && encoder.encode(glob).length > MAX_GLOB_BYTES) {
      return `entry #${
        i + 1
      } is longer than ${MAX_GLOB_BYTES} bytes (the longest routing key a name fits in)`;
    }
  }
  return undefined;
}
