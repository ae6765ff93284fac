// Identifiers: every table, column and database name the builders put in SQL is validated here
// (a string, not empty, no NUL byte or lone surrogate, at most 63 UTF-8 bytes) and
// double-quoted with `"` doubled, whatever it holds. `schema.table` names are split on their
// one dot. Pure, with caches of the quoted names.
import { ValidationError } from "../errors.ts";
import { describeValue } from "../_serialize.ts";
import { TextCache } from "./cache.ts";

/** PostgreSQL's `NAMEDATALEN - 1`: longer identifiers would be truncated silently. */
const MAX_IDENTIFIER_BYTES = 63;

const utf8 = new TextEncoder();

const identifierCache = new TextCache(4096);
const tableNameCache = new TextCache(1024);

/**
 * Quotes one identifier: `na"me` becomes `"na""me"`.
 *
 * Any string is accepted and quoted safely, hostile ones included, as long as it can be an
 * identifier at all.
 *
 * @example Quoting a hostile name
 * ```ts
 * import { quoteIdentifier } from "./identifiers.ts";
 *
 * console.log(quoteIdentifier('a"; DROP TABLE x; --')); // "a""; DROP TABLE x; --"
 * ```
 *
 * @param name The identifier.
 * @param field The argument named in the error.
 * @returns The quoted identifier.
 * @throws {ValidationError} If `name` is not a string, is empty, holds a NUL byte or a lone
 * surrogate, or is longer than 63 UTF-8 bytes.
 */
export function quoteIdentifier(name: string, field = "identifier"): string {
  if (typeof name === "string") {
    const cached = identifierCache.get(name);
    if (cached !== undefined) return cached;
  }
  if (typeof name !== "string") {
    throw new ValidationError(
      `Cannot use ${describeValue(name)} as an identifier: expected a string, got ${typeof name}`,
      { field },
    );
  }
  if (name.length === 0) {
    throw new ValidationError(`Cannot use "" as an identifier: empty`, { field });
  }
  if (name.includes("\0")) {
    throw new ValidationError(
      `Cannot use ${describeValue(name)} as an identifier: contains a NUL byte`,
      {
        field,
      },
    );
  }
  if (!name.isWellFormed()) {
    throw new ValidationError(
      `Cannot use ${describeValue(name)} as an identifier: contains a lone surrogate`,
      { field },
    );
  }
  const bytes = name.length * 3 <= MAX_IDENTIFIER_BYTES ? name.length : utf8.encode(name).length;
  if (bytes > MAX_IDENTIFIER_BYTES) {
    throw new ValidationError(
      `Cannot use ${
        describeValue(name)
      } as an identifier: longer than ${MAX_IDENTIFIER_BYTES} bytes (${bytes})`,
      { field },
    );
  }
  return identifierCache.remember(name, `"${name.replaceAll('"', '""')}"`);
}

/**
 * Splits a table name into its schema (if any) and table parts, validating both.
 *
 * @example
 * ```ts
 * import { splitTableName } from "./identifiers.ts";
 *
 * console.log(splitTableName("audit.events")); // { schema: "audit", table: "events" }
 * ```
 *
 * @param name `"table"` or `"schema.table"`.
 * @param field The argument named in the error.
 * @returns The schema (`undefined` when unqualified) and the table.
 * @throws {ValidationError} If the name holds more than one dot or a part is not a valid
 * identifier.
 */
export function splitTableName(
  name: string,
  field = "table",
): { readonly schema: string | undefined; readonly table: string } {
  if (typeof name !== "string") quoteIdentifier(name, field);
  const first = name.indexOf(".");
  if (first === -1) {
    quoteIdentifier(name, field);
    return { schema: undefined, table: name };
  }
  if (name.indexOf(".", first + 1) !== -1) {
    throw new ValidationError(
      `Cannot use ${describeValue(name)} as a table name: expected "table" or "schema.table"`,
      { field },
    );
  }
  const schema = name.slice(0, first);
  const table = name.slice(first + 1);
  quoteIdentifier(schema, field);
  quoteIdentifier(table, field);
  return { schema, table };
}

/**
 * Quotes a table name, optionally schema-qualified: `schema.t` becomes `"schema"."t"`.
 *
 * @example
 * ```ts
 * import { quoteTableName } from "./identifiers.ts";
 *
 * console.log(quoteTableName("audit.events")); // "audit"."events"
 * ```
 *
 * @param name `"table"` or `"schema.table"` (exactly one dot at most).
 * @param field The argument named in the error.
 * @returns The quoted name.
 * @throws {ValidationError} If the name holds more than one dot or a part is not a valid
 * identifier.
 */
export function quoteTableName(name: string, field = "table"): string {
  if (typeof name === "string") {
    const cached = tableNameCache.get(name);
    if (cached !== undefined) return cached;
  }
  const { schema, table } = splitTableName(name, field);
  const quoted = schema === undefined
    ? quoteIdentifier(table, field)
    : `${quoteIdentifier(schema, field)}.${quoteIdentifier(table, field)}`;
  return tableNameCache.remember(name, quoted);
}

/** Quotes a list of columns, comma-separated: `"a", "b"`. */
export function quoteColumns(columns: readonly string[], field: string): string {
  let text = "";
  for (let i = 0; i < columns.length; i++) {
    const quoted = quoteIdentifier(columns[i]!, field);
    text += i === 0 ? quoted : `, ${quoted}`;
  }
  return text;
}
