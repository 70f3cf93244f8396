/**
 * A keyword's description and unit, from an actor's keyword schema (what it
 * answered to `get_schema`: a JSON schema whose `properties[keyword]` CLU
 * actors may give a `description` and a `unit`). Pure, and defensive: the
 * schema comes from an actor, so only strings are taken, and clipped.
 *
 * @module
 */

/** What the actors panel shows beside a keyword. */
export interface KeywordInfo {
  /** What the keyword means. */
  description?: string;
  /** Its unit (`degC`). */
  unit?: string;
}

/** Longest description shown. */
const MAX_DESCRIPTION = 300;
/** Longest unit shown. */
const MAX_UNIT = 32;

/** The description and unit of `keyword` in `schema`; empty when the schema has neither. */
export function keywordInfo(schema: unknown, keyword: string): KeywordInfo {
  if (schema === null || typeof schema !== "object") return {};
  const properties = (schema as { properties?: unknown }).properties;
  if (properties === null || typeof properties !== "object" || Array.isArray(properties)) return {};
  if (!Object.hasOwn(properties, keyword)) return {};
  const property = (properties as Record<string, unknown>)[keyword];
  if (property === null || typeof property !== "object") return {};
  const { description, unit } = property as { description?: unknown; unit?: unknown };
  const info: KeywordInfo = {};
  if (typeof description === "string" && description.trim()) {
    info.description = description.trim().slice(0, MAX_DESCRIPTION);
  }
  if (typeof unit === "string" && unit.trim()) info.unit = unit.trim().slice(0, MAX_UNIT);
  return info;
}
