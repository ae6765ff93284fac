// The statements of one row or one set of rows: `SELECT`, `INSERT`, `UPDATE`, `DELETE`,
// `count(*)` and the upsert (`UPSERT`, or `INSERT … ON CONFLICT … DO UPDATE`, by dialect and
// arguments). Values are bound, names quoted, and the text depends only on the statement's
// shape; the most used shapes are cached. Pure.
import { ValidationError } from "../errors.ts";
import { describeValue, isPlainObject } from "../_serialize.ts";
import { TextCache } from "./cache.ts";
import { quoteColumns, quoteIdentifier, quoteTableName } from "./identifiers.ts";
import type { Dialect, Row, SelectOptions, Statement, Where } from "./types.ts";
import { buildOrderBy, buildWhere } from "./where.ts";

/**
 * What {@linkcode buildUpsert} and the `upsert` of `buildBatchInsert` build: the caller's
 * `UpsertOptions` (`_options.ts`) resolved against the server's dialect.
 */
export interface UpsertPlan {
  /**
   * The columns of the unique constraint that decides "existing row". Required on PostgreSQL;
   * without it CockroachDB uses `UPSERT`, which matches on the primary key.
   *
   * @default {undefined}
   */
  readonly conflictColumns?: readonly string[];
  /** The server family. */
  readonly dialect: Dialect;
}

const shapeCache = new TextCache(1024);

/** The keys of `data` whose value is not `undefined`, in order. */
export function definedKeys(data: Row): string[] {
  const keys: string[] = [];
  for (const key of Object.keys(data)) if (data[key] !== undefined) keys.push(key);
  return keys;
}

// `$start, $start+1, …`, `count` of them.
function placeholders(start: number, count: number): string {
  let text = "";
  for (let i = 0; i < count; i++) text += i === 0 ? `$${start + i}` : `, $${start + i}`;
  return text;
}

function checkCount(value: unknown, field: string, table: string): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(
      `Cannot build SELECT for ${
        describeValue(table)
      }: ${field} must be a non-negative integer, got ${describeValue(value)}`,
      { field },
    );
  }
}

/**
 * Builds `SELECT * | "a", "b" FROM "t" [WHERE …] [ORDER BY …] [LIMIT $n] [OFFSET $n]`.
 *
 * @example
 * ```ts
 * import { buildSelect } from "./dml.ts";
 *
 * const { text, params } = buildSelect("users", { where: { active: true }, limit: 10 });
 * console.log(text); // SELECT * FROM "users" WHERE "active" = $1 LIMIT $2
 * console.log(params); // [ true, 10 ]
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param options Columns, conditions, order, limit and offset.
 * @returns The statement.
 * @throws {ValidationError} On a bad name, an empty `columns`, a bad `where`/`orderBy`, or a
 * `limit`/`offset` that is not a non-negative safe integer.
 */
export function buildSelect(table: string, options: SelectOptions = {}): Statement {
  const quotedTable = quoteTableName(table);
  const { columns, where, orderBy, limit, offset } = options;
  let list = "*";
  if (columns !== undefined) {
    if (!Array.isArray(columns) || columns.length === 0) {
      throw new ValidationError(
        `Cannot build SELECT for ${describeValue(table)}: columns must be a non-empty array`,
        { field: "columns" },
      );
    }
    list = quoteColumns(columns, "columns");
  }
  const params: unknown[] = [];
  let text = `SELECT ${list} FROM ${quotedTable}${buildWhere(where, params)}${
    buildOrderBy(orderBy)
  }`;
  if (limit !== undefined) {
    checkCount(limit, "limit", table);
    params.push(limit);
    text += ` LIMIT $${params.length}`;
  }
  if (offset !== undefined) {
    checkCount(offset, "offset", table);
    params.push(offset);
    text += ` OFFSET $${params.length}`;
  }
  return { text, params };
}

function checkData(data: unknown, action: string, table: string): asserts data is Row {
  if (!isPlainObject(data)) {
    throw new ValidationError(
      `Cannot build ${action} for ${describeValue(table)}: data must be an object, got ${
        describeValue(data)
      }`,
      { field: "data" },
    );
  }
}

/**
 * Builds `INSERT INTO "t" ("a", "b") VALUES ($1, $2) RETURNING *`.
 *
 * Keys whose value is `undefined` are skipped, so the column takes its default; `{}` (or only
 * `undefined` values) gives `INSERT INTO "t" DEFAULT VALUES RETURNING *`.
 *
 * @example
 * ```ts
 * import { buildInsert } from "./dml.ts";
 *
 * console.log(buildInsert("users", { name: "Ada", email: undefined }).text);
 * // INSERT INTO "users" ("name") VALUES ($1) RETURNING *
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param data The column values.
 * @returns The statement.
 * @throws {ValidationError} On a bad table name (field `table`) or column name (field `data`).
 */
export function buildInsert(table: string, data: Row): Statement {
  checkData(data, "INSERT", table);
  const columns = definedKeys(data);
  const params = columns.map((column) => data[column]);
  const key = JSON.stringify(["insert", table, ...columns]);
  const cached = shapeCache.get(key);
  if (cached !== undefined) return { text: cached, params };
  const quotedTable = quoteTableName(table);
  const text = columns.length === 0
    ? `INSERT INTO ${quotedTable} DEFAULT VALUES RETURNING *`
    : `INSERT INTO ${quotedTable} (${quoteColumns(columns, "data")}) VALUES (${
      placeholders(1, columns.length)
    }) RETURNING *`;
  return { text: shapeCache.remember(key, text), params };
}

/** `"a" = $start, "b" = $start+1, …` for the `SET` of an `UPDATE`. */
export function setList(columns: readonly string[], start: number): string {
  let text = "";
  for (let i = 0; i < columns.length; i++) {
    const item = `${quoteIdentifier(columns[i]!, "data")} = $${start + i}`;
    text += i === 0 ? item : `, ${item}`;
  }
  return text;
}

function requireWhere(where: Where | undefined, action: string, table: string): void {
  if (
    where === undefined || where === null ||
    (isPlainObject(where) && Object.keys(where).length === 0)
  ) {
    throw new ValidationError(
      `Cannot build ${action} for ${describeValue(table)}: where is empty`,
      {
        field: "where",
      },
    );
  }
}

/**
 * Builds `UPDATE "t" SET "a" = $1, … WHERE … RETURNING *`; the data values come first.
 *
 * Keys of `data` whose value is `undefined` are skipped.
 *
 * @example
 * ```ts
 * import { buildUpdate } from "./dml.ts";
 *
 * console.log(buildUpdate("users", { name: "Ada" }, { id: 7 }).text);
 * // UPDATE "users" SET "name" = $1 WHERE "id" = $2 RETURNING *
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param data The new column values.
 * @param where The rows to update; must not be empty.
 * @returns The statement.
 * @throws {ValidationError} If `data` has nothing to set (field `data`), `where` is empty or
 * absent (field `where`), or a name is invalid.
 */
export function buildUpdate(table: string, data: Row, where: Where): Statement {
  const quotedTable = quoteTableName(table);
  checkData(data, "UPDATE", table);
  const columns = definedKeys(data);
  if (columns.length === 0) {
    throw new ValidationError(`Cannot build UPDATE for ${describeValue(table)}: data is empty`, {
      field: "data",
    });
  }
  requireWhere(where, "UPDATE", table);
  const params: unknown[] = columns.map((column) => data[column]);
  const text = `UPDATE ${quotedTable} SET ${setList(columns, 1)}${
    buildWhere(where, params)
  } RETURNING *`;
  return { text, params };
}

/**
 * Builds `DELETE FROM "t" WHERE …` (no `RETURNING`: the count comes from the command tag).
 *
 * @example
 * ```ts
 * import { buildDelete } from "./dml.ts";
 *
 * console.log(buildDelete("users", { id: [1, 2] }).text); // DELETE FROM "users" WHERE "id" = ANY($1)
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param where The rows to delete; must not be empty (truncate the table to empty it).
 * @returns The statement.
 * @throws {ValidationError} If `where` is empty or absent (field `where`) or a name is invalid.
 */
export function buildDelete(table: string, where: Where): Statement {
  const quotedTable = quoteTableName(table);
  requireWhere(where, "DELETE", table);
  const params: unknown[] = [];
  return { text: `DELETE FROM ${quotedTable}${buildWhere(where, params)}`, params };
}

/**
 * Builds `SELECT count(*) AS "count" FROM "t" [WHERE …]`.
 *
 * @example
 * ```ts
 * import { buildCount } from "./dml.ts";
 *
 * console.log(buildCount("users").text); // SELECT count(*) AS "count" FROM "users"
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param where The rows to count.
 * @returns The statement.
 * @throws {ValidationError} On a bad name or `where`.
 */
export function buildCount(table: string, where?: Where): Statement {
  const params: unknown[] = [];
  const text = `SELECT count(*) AS "count" FROM ${quoteTableName(table)}${
    buildWhere(where, params)
  }`;
  return { text, params };
}

/** The statement an upsert is: CockroachDB's `UPSERT` without conflict columns, else `INSERT`. */
export function upsertVerb(plan: UpsertPlan): "UPSERT" | "INSERT" {
  return plan.conflictColumns === undefined && plan.dialect === "cockroach" ? "UPSERT" : "INSERT";
}

/** `INSERT INTO "t" ("a", "b") VALUES` or `UPSERT INTO …`, and the tail after the values. */
export function upsertParts(
  table: string,
  columns: readonly string[],
  options: UpsertPlan | undefined,
  action: string,
  field: string,
): { readonly head: string; readonly tail: string } {
  const quotedTable = quoteTableName(table);
  const list = quoteColumns(columns, field);
  if (options === undefined) {
    return { head: `INSERT INTO ${quotedTable} (${list}) VALUES`, tail: "" };
  }
  const { conflictColumns, dialect } = options;
  if (dialect !== "postgres" && dialect !== "cockroach") {
    throw new ValidationError(
      `Cannot build ${action} for ${
        describeValue(table)
      }: dialect must be "postgres" or "cockroach", got ${describeValue(dialect)}`,
      { field: "dialect" },
    );
  }
  if (conflictColumns === undefined) {
    if (dialect === "cockroach") {
      return { head: `UPSERT INTO ${quotedTable} (${list}) VALUES`, tail: "" };
    }
    throw new ValidationError(
      `Cannot build ${action} for ${
        describeValue(table)
      }: conflictColumns is required on PostgreSQL`,
      { field: "conflictColumns" },
    );
  }
  if (!Array.isArray(conflictColumns) || conflictColumns.length === 0) {
    throw new ValidationError(
      `Cannot build ${action} for ${
        describeValue(table)
      }: conflictColumns must be a non-empty array`,
      { field: "conflictColumns" },
    );
  }
  const seen = new Set<string>();
  for (const column of conflictColumns) {
    quoteIdentifier(column, "conflictColumns");
    if (seen.has(column)) {
      throw new ValidationError(
        `Cannot build ${action} for ${describeValue(table)}: conflict column ${
          describeValue(column)
        } is repeated`,
        { field: "conflictColumns" },
      );
    }
    if (!columns.includes(column)) {
      throw new ValidationError(
        `Cannot build ${action} for ${describeValue(table)}: conflict column ${
          describeValue(column)
        } is not in the ${field}`,
        { field: "conflictColumns" },
      );
    }
    seen.add(column);
  }
  const updated = columns.filter((column) => !seen.has(column));
  // With nothing else to set, a no-op assignment still makes DO UPDATE return the existing row
  // (DO NOTHING would return no row).
  if (updated.length === 0) updated.push(conflictColumns[0]);
  const set = updated.map((column) => {
    const quoted = quoteIdentifier(column, field);
    return `${quoted} = EXCLUDED.${quoted}`;
  }).join(", ");
  return {
    head: `INSERT INTO ${quotedTable} (${list}) VALUES`,
    tail: ` ON CONFLICT (${quoteColumns(conflictColumns, "conflictColumns")}) DO UPDATE SET ${set}`,
  };
}

/**
 * Builds an upsert of one row that returns the row: CockroachDB's
 * `UPSERT INTO "t" (…) VALUES (…) RETURNING *` when no conflict columns are given, otherwise
 * `INSERT INTO "t" (…) VALUES (…) ON CONFLICT (…) DO UPDATE SET "a" = EXCLUDED."a", … RETURNING *`.
 *
 * Keys whose value is `undefined` are skipped. When every column is a conflict column, the first
 * one is set to itself, so that `RETURNING` still yields the existing row.
 *
 * @example
 * ```ts
 * import { buildUpsert } from "./dml.ts";
 *
 * const { text } = buildUpsert("users", { id: 1, name: "Ada" }, {
 *   conflictColumns: ["id"],
 *   dialect: "postgres",
 * });
 * console.log(text);
 * // INSERT INTO "users" ("id", "name") VALUES ($1, $2) ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name" RETURNING *
 * ```
 *
 * @param table The table, optionally `schema.table`.
 * @param data The column values; must not be empty.
 * @param options The conflict columns and the dialect.
 * @returns The statement.
 * @throws {ValidationError} If `data` is empty (field `data`), conflict columns are missing on
 * PostgreSQL, empty, repeated or not keys of `data` (field `conflictColumns`), or a name is
 * invalid.
 */
export function buildUpsert(table: string, data: Row, options: UpsertPlan): Statement {
  checkData(data, "UPSERT", table);
  const columns = definedKeys(data);
  if (columns.length === 0) {
    throw new ValidationError(`Cannot build UPSERT for ${describeValue(table)}: data is empty`, {
      field: "data",
    });
  }
  const params = columns.map((column) => data[column]);
  const key = JSON.stringify([
    "upsert",
    options?.dialect,
    options?.conflictColumns ?? null,
    table,
    ...columns,
  ]);
  const cached = shapeCache.get(key);
  if (cached !== undefined) return { text: cached, params };
  if (!isPlainObject(options)) {
    throw new ValidationError(
      `Cannot build UPSERT for ${describeValue(table)}: options are required`,
      {
        field: "options",
      },
    );
  }
  const { head, tail } = upsertParts(table, columns, options, "UPSERT", "data");
  const text = `${head} (${placeholders(1, columns.length)})${tail} RETURNING *`;
  return { text: shapeCache.remember(key, text), params };
}
