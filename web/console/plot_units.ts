/**
 * A plotted keyword's unit, from the actor's keyword schema (the gateway's v1
 * `describe`, read through `descriptions.ts`): `schema.properties[keyword].unit`
 * (CLU actors may give `unit` and `description` in their schema). No schema,
 * or none for the keyword: no unit.
 *
 * @module
 */

import type { SeriesName } from "./plot_data.ts";

/** The longest unit shown; a longer one is cut (it comes from an actor). */
const MAX_UNIT_LENGTH = 32;

/**
 * The unit a JSON schema (an object, or its JSON text as CLU sends it) gives
 * `name`: the keyword's own `unit`, else for an array element its `items`' unit
 * (one schema for all, or one per position).
 */
export function unitInSchema(schema: unknown, name: SeriesName): string | undefined {
  if (typeof schema === "string" && schema.length < 1_000_000) {
    try {
      schema = JSON.parse(schema);
    } catch {
      return undefined;
    }
  }
  const property = field(field(schema, "properties"), name.keyword);
  let unit = field(property, "unit");
  if (unit === undefined && name.element !== undefined) {
    const items = field(property, "items");
    unit = field(Array.isArray(items) ? items[name.element] : items, "unit");
  }
  return typeof unit === "string" && unit.trim() ? unit.trim().slice(0, MAX_UNIT_LENGTH) : undefined;
}

function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === "object" && !Array.isArray(value) && Object.hasOwn(value, key)
    ? (value as Record<string, unknown>)[key]
    : undefined;
}
