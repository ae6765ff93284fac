// Statements for many records at once: the shared columns of a batch, multi-row `INSERT` (or
// upsert) chunks kept under the wire protocol's 65,534 bind parameters, and one `UPDATE` per
// record. Pure; the texts of recent chunk shapes are cached.
import { ValidationError } from "../errors.ts";
import { describeValue, isPlainObject } from "../_serialize.ts";
import { TextCache } from "./cache.ts";
import { definedKeys, setList, upsertParts, type UpsertPlan } from "./dml.ts";
import { quoteIdentifier, quoteTableName } from "./identifiers.ts";
import type { Row, Statement } from "./types.ts";

/** The most bind parameters one statement may carry (the wire protocol counts them in 16 bits). */
export const MAX_BIND_PARAMETERS = 65534;

/**
 * What {@linkcode buildBatchInsert} builds: the caller's `BatchInsertOptions` (`_options.ts`)
 * with the upsert, when there is one, resolved against the server's dialect.
 */
export interface BatchInsertPlan {
  /**
   * Whether each statement ends with `RETURNING *`.
   *
   * @default {true}
   */
  readonly returning?: boolean;
  /**
   * The most rows per statement; the bind-parameter limit may make chunks smaller.
   *
   * @default {as many as the bind-parameter limit allows}
   */
  readonly chunkSize?: number;
  /**
   * Turns each chunk into an upsert, as `buildUpsert` does for one row.
   *
   * @default {undefined}
   */
  readonly upsert?: UpsertPlan;
}

const batchCache = new TextCache(32);

/**
 * The columns of a batch: the first record's keys (those whose value is not `undefined`).
 * Every record must have the same key set, in any order.
 *
 * @example
 * ```ts
 * import { batchColumns } from "./batch.ts";
 *
 * console.log(batchColumns([{ a: 1, b: 2 }, { b: 3, a: 4 }])); // [ "a", "b" ]
 * ```
 *
 * @param records The records; at least one.
 * @param field The argument named in the error.
 * @returns The column names, in the first record's key order.
 * @throws {ValidationError} If there are no records, the first one has no keys, or a record's
 * keys differ (the message names the record's index and the differing keys).
 */
export function batchColumns(records: readonly Row[], field = "records"): string[] {
  if (!Array.isArray(records) || records.length === 0) {
    throw new ValidationError(`Cannot read batch columns: no records`, { field });
  }
  const first = records[0];
  if (!isPlainObject(first)) {
    throw new ValidationError(
      `Cannot read batch columns: record 0 must be an object, got ${describeValue(first)}`,
      { field },
    );
  }
  const columns = definedKeys(first);
  if (columns.length === 0) {
    throw new ValidationError(`Cannot read batch columns: record 0 has no keys`, { field });
  }
  const expected = new Set(columns);
  for (let i = 1; i < records.length; i++) {
    const record = records[i];
    if (!isPlainObject(record)) {
      throw new ValidationError(
        `Cannot read batch columns: record ${i} must be an object, got ${describeValue(record)}`,
        { field },
      );
    }
    let count = 0;
    let extra: string[] | undefined;
    for (const key of Object.keys(record)) {
      if (record[key] === undefined) continue;
      if (expected.has(key)) count++;
      else (extra ??= []).push(key);
    }
    if (extra !== undefined || count !== columns.length) {
      const missing = columns.filter((column) => record[column] === undefined);
      const parts: string[] = [];
      if (missing.length > 0) parts.push(`missing ${missing.map(describeValue).join(", ")}`);
      if (extra !== undefined) parts.push(`unexpected ${extra.map(describeValue).join(", ")}`);
      throw new ValidationError(
        `Cannot read batch columns: record ${i} has other keys than record 0: ${parts.join("; ")}`,
        { field },
      );
    }
  }
  return columns;
}

/**
 * Builds one multi-row `INSERT … VALUES ($1, $2), ($3, $4) [RETURNING *]` per chunk, rows in
 * input order, values read in the order of {@linkcode batchColumns} (records may list their keys
 * in any order). A chunk holds at most `floor(65534 / columns)` rows, and at most `chunkSize`.
 * With `upsert`, each chunk is an `UPSERT` or `INSERT … ON CONFLICT … DO UPDATE` as in
 * `buildUpsert`; on PostgreSQL two records of one chunk must not hit the same row.
 *
 * @example
 * ```ts
 * import { buildBatchInsert } from "./batch.ts";
 *
 * const [statement] = buildBatchInsert("t", [{ a: 1, b: 2 }, { b: 4, a: 3 }]);
 * console.log(statement?.text); // INSERT INTO "t" ("a", "b") VALUES ($1, $2), ($3, $4) RETURNING *
 * console.log(statement?.params); // [ 1, 2, 3, 4 ]
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param records The records; `[]` gives `[]`.
 * @param options `returning`, `chunkSize` and `upsert`.
 * @returns The statements, one per chunk.
 * @throws {ValidationError} If the records' keys differ (field `records`), `chunkSize` is not a
 * positive integer (field `chunkSize`), the upsert options are invalid, or a name is invalid.
 */
export function buildBatchInsert(
  table: string,
  records: readonly Row[],
  options: BatchInsertPlan = {},
): Statement[] {
  const { returning = true, chunkSize, upsert } = options;
  if (chunkSize !== undefined && (!Number.isSafeInteger(chunkSize) || chunkSize < 1)) {
    throw new ValidationError(
      `Cannot build batch INSERT for ${
        describeValue(table)
      }: chunkSize must be a positive integer, got ${describeValue(chunkSize)}`,
      { field: "chunkSize" },
    );
  }
  quoteTableName(table);
  if (Array.isArray(records) && records.length === 0) return [];
  const columns = batchColumns(records);
  const width = columns.length;
  const { head, tail } = upsertParts(table, columns, upsert, "batch INSERT", "records");
  const suffix = `${tail}${returning ? " RETURNING *" : ""}`;
  const perChunk = Math.min(Math.floor(MAX_BIND_PARAMETERS / width), chunkSize ?? Infinity);
  const shape = JSON.stringify([
    table,
    columns,
    returning,
    upsert?.dialect ?? null,
    upsert?.conflictColumns ?? null,
  ]);
  const statements: Statement[] = [];
  for (let start = 0; start < records.length; start += perChunk) {
    const end = Math.min(start + perChunk, records.length);
    const params: unknown[] = new Array((end - start) * width);
    let p = 0;
    // Index loops, not iterators: this runs for every value of the batch.
    for (let r = start; r < end; r++) {
      const record = records[r]!;
      for (let c = 0; c < width; c++) params[p++] = record[columns[c]!];
    }
    const key = `${end - start}:${shape}`;
    let text = batchCache.get(key);
    if (text === undefined) {
      text = batchCache.remember(key, `${head} ${valuesList(end - start, width)}${suffix}`);
    }
    statements.push({ text, params });
  }
  return statements;
}

function valuesList(rows: number, width: number): string {
  const parts: string[] = new Array(rows);
  let n = 1;
  for (let r = 0; r < rows; r++) {
    let row = "(";
    for (let c = 0; c < width; c++, n++) row += c === 0 ? `$${n}` : `, $${n}`;
    parts[r] = `${row})`;
  }
  return parts.join(", ");
}

/**
 * Builds one `UPDATE "t" SET … WHERE "key" = $n RETURNING *` per record, in input order.
 * Every record is validated before any statement is returned. Keys whose value is `undefined`
 * are skipped.
 *
 * @example
 * ```ts
 * import { buildBatchUpdate } from "./batch.ts";
 *
 * const [statement] = buildBatchUpdate("users", [{ id: 1, name: "Ada" }]);
 * console.log(statement?.text); // UPDATE "users" SET "name" = $1 WHERE "id" = $2 RETURNING *
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param records The records; `[]` gives `[]`.
 * @param keyColumn The column that identifies each record's row.
 * @returns The statements, one per record.
 * @throws {ValidationError} (field `records`) If a record lacks the key column (or holds `null`
 * there) or has nothing but the key; or on an invalid name.
 */
export function buildBatchUpdate(
  table: string,
  records: readonly Row[],
  keyColumn = "id",
): Statement[] {
  const quotedTable = quoteTableName(table);
  const quotedKey = quoteIdentifier(keyColumn, "keyColumn");
  if (!Array.isArray(records)) {
    throw new ValidationError(
      `Cannot build batch UPDATE for ${describeValue(table)}: records must be an array, got ${
        describeValue(records)
      }`,
      { field: "records" },
    );
  }
  const shapes: string[][] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    if (!isPlainObject(record)) {
      throw new ValidationError(
        `Cannot build batch UPDATE for ${
          describeValue(table)
        }: record ${i} must be an object, got ${describeValue(record)}`,
        { field: "records" },
      );
    }
    if (record[keyColumn] === undefined || record[keyColumn] === null) {
      throw new ValidationError(
        `Cannot build batch UPDATE for ${describeValue(table)}: record ${i} has no key column ${
          describeValue(keyColumn)
        }`,
        { field: "records" },
      );
    }
    const columns = definedKeys(record).filter((column) => column !== keyColumn);
    if (columns.length === 0) {
      throw new ValidationError(
        `Cannot build batch UPDATE for ${
          describeValue(table)
        }: record ${i} has nothing to set besides ${describeValue(keyColumn)}`,
        { field: "records" },
      );
    }
    for (const column of columns) quoteIdentifier(column, "records");
    shapes[i] = columns;
  }
  return shapes.map((columns, i) => {
    const record = records[i];
    const params = columns.map((column) => record[column]);
    params.push(record[keyColumn]);
    const text = `UPDATE ${quotedTable} SET ${
      setList(columns, 1)
    } WHERE ${quotedKey} = $${params.length} RETURNING *`;
    return { text, params };
  });
}
