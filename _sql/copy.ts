// `COPY … FROM STDIN` for `batchInsert` without `RETURNING`: the statement, and records encoded
// as COPY text (or `null` when a value cannot travel that way, and INSERT must carry the
// batch). Pure.
import { ValidationError } from "../errors.ts";
import { describeValue, timestampText } from "../_serialize.ts";
import { quoteColumns, quoteTableName } from "./identifiers.ts";
import type { Row } from "./types.ts";

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPE = /[\\\t\n\r]/g;
const COPY_ESCAPES: Readonly<Record<string, string>> = {
  "\\": "\\\\",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
};
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function copyEscape(text: string): string {
  // The pattern matches only the keys of COPY_ESCAPES.
  return COPY_SPECIAL.test(text) ? text.replace(COPY_ESCAPE, (char) => COPY_ESCAPES[char]!) : text;
}

/** One value in COPY text form, or `null` when COPY cannot carry it. */
function copyValue(value: unknown): string | null {
  switch (typeof value) {
    case "string":
      // A lone surrogate would be stored as U+FFFD: the INSERT path refuses it instead.
      return value.includes("\0") || !value.isWellFormed() ? null : copyEscape(value);
    case "number":
      // String(-0) is "0": keep the sign.
      return Number.isFinite(value) ? (Object.is(value, -0) ? "-0" : String(value)) : null;
    case "bigint":
      return String(value);
    case "boolean":
      // As the INSERT path writes it: a TEXT column gets "true", as a bool column reads it.
      return value ? "true" : "false";
    case "undefined":
      return "\\N";
    case "object": {
      if (value === null) return "\\N";
      if (value instanceof Date) {
        return Number.isNaN(value.getTime()) ? null : timestampText(value);
      }
      if (value instanceof Uint8Array) {
        let hex = "\\\\x";
        for (let i = 0; i < value.length; i++) hex += HEX[value[i]!];
        return hex;
      }
      // JSON columns arrive here already as text; any other object is for INSERT to refuse.
      return null;
    }
    default:
      return null;
  }
}

/**
 * Encodes records as PostgreSQL `COPY … FROM STDIN` text: one tab-separated, newline-terminated
 * line per record, `\N` for `null`/`undefined`, backslash, tab, newline and carriage return
 * escaped; booleans as `t`/`f`, dates as ISO 8601, `Uint8Array` as bytea hex, plain objects as
 * JSON.
 *
 * @example
 * ```ts
 * import { encodeCopyText } from "./copy.ts";
 *
 * console.log(JSON.stringify(encodeCopyText([{ a: "x\ty", b: null }], ["a", "b"])));
 * // "x\\ty\t\\N\n"
 * ```
 *
 * @param records The records.
 * @param columns The columns, in the order of the COPY column list.
 * @returns The COPY text, or `null` when a value cannot be carried (a string with a NUL byte, an
 * array, a non-finite number, or another unsupported type): the caller then uses INSERT.
 */
export function encodeCopyText(records: readonly Row[], columns: readonly string[]): string | null {
  const lines: string[] = new Array(records.length);
  const width = columns.length;
  // Index loops, not iterators: this runs for every value of the batch.
  for (let r = 0; r < records.length; r++) {
    const record = records[r]!;
    let line = "";
    for (let c = 0; c < width; c++) {
      const value = copyValue(record[columns[c]!]);
      if (value === null) return null;
      line += c === 0 ? value : `\t${value}`;
    }
    lines[r] = line;
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/**
 * Builds `COPY "t" ("a", "b") FROM STDIN` (text format).
 *
 * @example
 * ```ts
 * import { buildCopyFrom } from "./copy.ts";
 *
 * console.log(buildCopyFrom("users", ["id", "name"])); // COPY "users" ("id", "name") FROM STDIN
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param columns The columns, in the order of the COPY text.
 * @returns The SQL text.
 * @throws {ValidationError} If `columns` is empty (field `columns`) or a name is invalid.
 */
export function buildCopyFrom(table: string, columns: readonly string[]): string {
  const quotedTable = quoteTableName(table);
  if (!Array.isArray(columns) || columns.length === 0) {
    throw new ValidationError(`Cannot build COPY for ${describeValue(table)}: no columns`, {
      field: "columns",
    });
  }
  return `COPY ${quotedTable} (${quoteColumns(columns, "columns")}) FROM STDIN`;
}
