/**
 * Actor-name globs for access rules: `*` matches any run of characters (dots
 * included, so `lvm.*` covers `lvm.sp1.ieb`), `?` one character; everything
 * else matches itself.
 *
 * @module
 */

/** Compiled globs that remember their source text, for messages. */
export interface GlobList {
  /** The patterns as written. */
  readonly patterns: readonly string[];
  /** The first pattern that matches `name`, or undefined. */
  match(name: string): string | undefined;
}

/** Compiles patterns once; matching is then a regular-expression test per pattern. */
export function compileGlobs(patterns: readonly string[]): GlobList {
  const compiled = patterns.map((pattern) => ({ pattern, regexp: globToRegExp(pattern) }));
  return {
    patterns,
    match(name: string): string | undefined {
      return compiled.find((c) => c.regexp.test(name))?.pattern;
    },
  };
}

function globToRegExp(pattern: string): RegExp {
  let source = "";
  for (const char of pattern) {
    if (char === "*") source += ".*";
    else if (char === "?") source += ".";
    else source += char.replace(/[.+^${}()|[\]\\/-]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "s");
}
