/**
 * Internal, pure SQL text builders shared by every caller: `AsyncDatabase`, its transaction
 * handle, the sync `Database` (through its worker) and the tables.
 *
 * Rules every builder keeps:
 * - values are always bind parameters (`$1 … $n`), never interpolated;
 * - identifiers are always double-quoted, with `"` doubled, after validation;
 * - the text depends only on the statement's shape (table, columns, operators, which clauses
 *   are present), never on the values, so the driver's prepared-statement cache keeps hitting.
 *
 * A key whose value is `undefined` in `data` or in a batch record counts as absent (JavaScript's
 * usual meaning of an optional field). In `where`, `undefined` is refused wherever it appears (a
 * column's value, an operator's value, an element of an array): it is almost always a field the
 * caller forgot to fill, and reading it as `IS NULL` would make an UPDATE or DELETE hit the rows
 * where that column is null. `null` is the way to say `IS NULL`.
 *
 * @module
 */

import { ValidationError } from "./errors.ts";
import { isPlainObject, timestampText } from "./_serialize.ts";

/** A row or a record: column names to values. */
export type Row = Record<string, unknown>;

/** A SQL text with its bind parameters (`$1` is `params[0]`). */
export interface Statement {
  /** The SQL text, with `$n` placeholders. */
  readonly text: string;
  /** The values bound to the placeholders, in order. */
  readonly params: unknown[];
}

/** The server family, which decides between `UPSERT` and `INSERT … ON CONFLICT`. */
export type Dialect = "postgres" | "cockroach";

/**
 * The comparisons a `where` value may hold instead of a plain value; several are ANDed. `V` is
 * the column's type (without `null`): a table with a row type checks the operands against it.
 */
export interface WhereOperators<V = unknown> {
  /** `column > value`. */
  readonly gt?: V;
  /** `column >= value`. */
  readonly gte?: V;
  /** `column < value`. */
  readonly lt?: V;
  /** `column <= value`. */
  readonly lte?: V;
  /** `column <> value`; `null` means `IS NOT NULL`; an array means "none of these". */
  readonly ne?: V | null | readonly V[];
  /** `column = ANY(values)`; an empty array matches nothing. */
  readonly in?: readonly V[];
  /** `column LIKE pattern`; with a row type, only on a column whose type includes `string`. */
  readonly like?: unknown extends V ? string
    : [Extract<V, string>] extends [never] ? never
    : string;
}

/**
 * Conditions joined with `AND`, one per column: a plain value (`=`), `null` (`IS NULL`), an array
 * (`= ANY(…)`) or a {@linkcode WhereOperators} object. `undefined` anywhere in it is refused with
 * `ValidationError` (use `null` for `IS NULL`).
 *
 * `T` is the row type. With one, the keys are `T`'s columns and the values are checked against
 * the column's type; with the default `Row`, any key and value are accepted.
 *
 * @example A typed where
 * ```ts
 * import type { Where } from "./_sql.ts";
 *
 * interface Todo {
 *   id: number;
 *   title: string;
 *   due: Date | null;
 * }
 *
 * // A misspelt column ({ titel: … }) or a string bound for `due` would not compile.
 * const overdue: Where<Todo> = { due: { lt: new Date() }, title: { like: "%urgent%" } };
 * console.log(overdue);
 * ```
 */
export type Where<T = Row> = {
  readonly [K in keyof T]?: unknown extends T[K] ? unknown
    :
      | NonNullable<T[K]>
      | null
      | readonly NonNullable<T[K]>[]
      | WhereOperators<NonNullable<T[K]>>;
};

/**
 * `"col"`, `"col DESC"`, `"col ASC NULLS LAST"`, an array of those, a comma-separated list
 * (`"a ASC, b DESC"`), or `{ col: "asc" }`.
 *
 * `T` is the row type. With one, the object form's keys and the column of each single item are
 * checked against `T`'s columns (directions and `NULLS FIRST`/`NULLS LAST` in upper or lower
 * case); a comma-separated list is not checked, so write several columns as an array to have
 * each checked. With the default `Row`, any column is accepted (the server is the judge).
 */
export type OrderBy<T = Row> =
  | `${keyof T & string}${"" | ` ${"asc" | "desc" | "ASC" | "DESC"}`}${
    | ""
    | ` ${"NULLS FIRST" | "NULLS LAST" | "nulls first" | "nulls last"}`}`
  | `${string},${string}`
  | readonly (
    | `${keyof T & string}${"" | ` ${"asc" | "desc" | "ASC" | "DESC"}`}${
      | ""
      | ` ${"NULLS FIRST" | "NULLS LAST" | "nulls first" | "nulls last"}`}`
    | `${string},${string}`
  )[]
  | { readonly [K in keyof T]?: "asc" | "desc" | "ASC" | "DESC" };

/**
 * Options of {@linkcode buildSelect}. `T` is the row type: with one, `columns`, `where` and
 * `orderBy` name only `T`'s columns.
 */
export interface SelectOptions<T = Row> {
  /**
   * The columns to return.
   *
   * @default {all columns (`*`)}
   */
  readonly columns?: readonly (keyof T & string)[];
  /**
   * The rows to return.
   *
   * @default {every row}
   */
  readonly where?: Where<T>;
  /**
   * The order of the rows.
   *
   * @default {the server's order}
   */
  readonly orderBy?: OrderBy<T>;
  /**
   * The most rows to return; `0` returns none.
   *
   * @default {no limit}
   */
  readonly limit?: number;
  /**
   * The rows to skip first.
   *
   * @default {0}
   */
  readonly offset?: number;
}

/** Options of {@linkcode buildUpsert}, and the `upsert` option of {@linkcode buildBatchInsert}. */
export interface UpsertOptions {
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

/** Options of {@linkcode buildBatchInsert}. */
export interface BatchInsertOptions {
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
   * Turns each chunk into an upsert, as {@linkcode buildUpsert} does for one row.
   *
   * @default {undefined}
   */
  readonly upsert?: UpsertOptions;
}

/** Options of {@linkcode buildCreateTable}. */
export interface CreateTableOptions {
  /**
   * Adds `IF NOT EXISTS`.
   *
   * @default {true}
   */
  readonly ifNotExists?: boolean;
}

/** Options of {@linkcode buildDropTable}. */
export interface DropTableOptions {
  /**
   * Adds `IF EXISTS`.
   *
   * @default {true}
   */
  readonly ifExists?: boolean;
  /**
   * Adds `CASCADE`.
   *
   * @default {false}
   */
  readonly cascade?: boolean;
}

/** The most bind parameters one statement may carry (the wire protocol counts them in 16 bits). */
export const MAX_BIND_PARAMETERS = 65534;

/** PostgreSQL's `NAMEDATALEN - 1`: longer identifiers would be truncated silently. */
const MAX_IDENTIFIER_BYTES = 63;

const WHERE_OPERATORS: ReadonlySet<string> = new Set([
  "gt",
  "gte",
  "lt",
  "lte",
  "ne",
  "in",
  "like",
]);

const COMPARISONS: Readonly<Record<string, string>> = {
  gt: ">",
  gte: ">=",
  lt: "<",
  lte: "<=",
};

const ORDER_ITEM = /^([A-Za-z_][A-Za-z0-9_$]*)(?:\s+(asc|desc))?(?:\s+nulls\s+(first|last))?$/i;

const utf8 = new TextEncoder();

// Small FIFO caches: the text of a shape is rebuilt after eviction, so their bound only trades
// memory for speed. Keys are JSON arrays, which cannot collide the way joined strings could.
const identifierCache = new Map<string, string>();
const tableNameCache = new Map<string, string>();
const shapeCache = new Map<string, string>();
const batchCache = new Map<string, string>();

function remember(cache: Map<string, string>, limit: number, key: string, value: string): string {
  if (cache.size >= limit) cache.delete(cache.keys().next().value as string);
  cache.set(key, value);
  return value;
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return `an object (${Object.prototype.toString.call(value)})`;
  return String(value);
}

/** The keys of `data` whose value is not `undefined`, in order. */
function definedKeys(data: Row): string[] {
  const keys: string[] = [];
  for (const key of Object.keys(data)) if (data[key] !== undefined) keys.push(key);
  return keys;
}

function placeholders(start: number, count: number): string {
  let text = "";
  for (let i = 0; i < count; i++) text += i === 0 ? `$${start + i}` : `, $${start + i}`;
  return text;
}

/**
 * Quotes one identifier: `na"me` becomes `"na""me"`.
 *
 * Any string is accepted and quoted safely, hostile ones included, as long as it can be an
 * identifier at all.
 *
 * @example Quoting a hostile name
 * ```ts
 * import { quoteIdentifier } from "./_sql.ts";
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
      `Cannot use ${show(name)} as an identifier: expected a string, got ${typeof name}`,
      { field },
    );
  }
  if (name.length === 0) {
    throw new ValidationError(`Cannot use "" as an identifier: empty`, { field });
  }
  if (name.includes("\0")) {
    throw new ValidationError(`Cannot use ${show(name)} as an identifier: contains a NUL byte`, {
      field,
    });
  }
  if (!name.isWellFormed()) {
    throw new ValidationError(
      `Cannot use ${show(name)} as an identifier: contains a lone surrogate`,
      { field },
    );
  }
  const bytes = name.length * 3 <= MAX_IDENTIFIER_BYTES ? name.length : utf8.encode(name).length;
  if (bytes > MAX_IDENTIFIER_BYTES) {
    throw new ValidationError(
      `Cannot use ${
        show(name)
      } as an identifier: longer than ${MAX_IDENTIFIER_BYTES} bytes (${bytes})`,
      { field },
    );
  }
  return remember(identifierCache, 4096, name, `"${name.replaceAll('"', '""')}"`);
}

/**
 * Splits a table name into its schema (if any) and table parts, validating both.
 *
 * @example
 * ```ts
 * import { splitTableName } from "./_sql.ts";
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
      `Cannot use ${show(name)} as a table name: expected "table" or "schema.table"`,
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
 * import { quoteTableName } from "./_sql.ts";
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
  return remember(tableNameCache, 1024, name, quoted);
}

function quoteColumns(columns: readonly string[], field: string): string {
  let text = "";
  for (let i = 0; i < columns.length; i++) {
    text += i === 0
      ? quoteIdentifier(columns[i], field)
      : `, ${quoteIdentifier(columns[i], field)}`;
  }
  return text;
}

// `undefined` in a `where` is almost always a field the caller forgot to fill: refused, never
// read as NULL, so that a missing value cannot turn an UPDATE or DELETE onto other rows.
function undefinedInWhere(column: string, detail: string): ValidationError {
  return new ValidationError(`Cannot use where: ${show(column)}${detail}`, { field: column });
}

function checkElements(column: string, values: readonly unknown[], operator: string): void {
  for (let i = 0; i < values.length; i++) {
    // `=== undefined` also catches a hole in a sparse array.
    if (values[i] === undefined) {
      throw undefinedInWhere(column, `${operator} holds undefined at index ${i}`);
    }
  }
}

function operatorCondition(
  column: string,
  quoted: string,
  operator: string,
  value: unknown,
  params: unknown[],
): string {
  switch (operator) {
    case "ne":
      if (value === null) return `${quoted} IS NOT NULL`;
      if (Array.isArray(value)) {
        if (value.length === 0) return "TRUE";
        checkElements(column, value, ' operator "ne"');
        params.push(value);
        return `${quoted} <> ALL($${params.length})`;
      }
      params.push(value);
      return `${quoted} <> $${params.length}`;
    case "in":
      if (!Array.isArray(value)) {
        throw new ValidationError(
          `Cannot build WHERE for column ${show(column)}: "in" needs an array, got ${show(value)}`,
          { field: column },
        );
      }
      if (value.length === 0) return "FALSE";
      checkElements(column, value, ' operator "in"');
      params.push(value);
      return `${quoted} = ANY($${params.length})`;
    case "like":
      if (typeof value !== "string") {
        throw new ValidationError(
          `Cannot build WHERE for column ${show(column)}: "like" needs a string, got ${
            show(value)
          }`,
          { field: column },
        );
      }
      // A pattern ending in a lone escape character fails on the server only when a row is
      // compared; refuse it whatever the table holds.
      if (/(^|[^\\])(\\\\)*\\$/.test(value)) {
        throw new ValidationError(
          `Cannot build WHERE for column ${show(column)}: the "like" pattern ends with a lone "\\"`,
          { field: column },
        );
      }
      params.push(value);
      return `${quoted} LIKE $${params.length}`;
    default:
      // A comparison with NULL is never true: a null bound is a bug, not a filter.
      if (value === null) {
        throw new ValidationError(
          `Cannot build WHERE for column ${show(column)}: "${operator}" needs a value, got ${
            show(value)
          }`,
          { field: column },
        );
      }
      params.push(value);
      return `${quoted} ${COMPARISONS[operator]} $${params.length}`;
  }
}

/**
 * Builds a `WHERE` clause, appending its values to `params`.
 *
 * Per column: a plain value → `"c" = $n`; `null` → `"c" IS NULL`; an array → `"c" = ANY($n)`
 * (empty → `FALSE`); an operator object ({@linkcode WhereOperators}, every key an operator) →
 * the comparisons ANDed. `Date`, `Uint8Array`, bigint and other non-plain objects are plain
 * values. Conditions keep the key order. `undefined` as a column's value, an operator's value
 * or an array element is refused.
 *
 * @example
 * ```ts
 * import { buildWhere } from "./_sql.ts";
 *
 * const params: unknown[] = [];
 * console.log(buildWhere({ age: { gte: 18 }, deleted_at: null }, params));
 * // WHERE "age" >= $1 AND "deleted_at" IS NULL
 * ```
 *
 * @param where The conditions; `undefined` or `{}` gives `""`.
 * @param params The parameters so far; the clause's values are pushed onto it.
 * @returns `""` or `" WHERE …"`.
 * @throws {ValidationError} If a key is not a valid identifier (field `where`), a value is or
 * holds `undefined`, or an object value is not a valid operator object (field: the column).
 */
export function buildWhere(where: Where | undefined, params: unknown[]): string {
  if (where === undefined || where === null) return "";
  if (!isPlainObject(where)) {
    throw new ValidationError(`Cannot build WHERE: expected an object, got ${show(where)}`, {
      field: "where",
    });
  }
  let text = "";
  for (const column of Object.keys(where)) {
    const quoted = quoteIdentifier(column, "where");
    const value = where[column];
    let condition: string;
    if (value === undefined) {
      throw undefinedInWhere(column, " is undefined (use null for IS NULL)");
    } else if (value === null) {
      condition = `${quoted} IS NULL`;
    } else if (Array.isArray(value)) {
      if (value.length === 0) {
        condition = "FALSE";
      } else {
        checkElements(column, value, "");
        params.push(value);
        condition = `${quoted} = ANY($${params.length})`;
      }
    } else if (isPlainObject(value)) {
      const operators = Object.keys(value);
      if (operators.length === 0) {
        throw new ValidationError(
          `Cannot build WHERE for column ${show(column)}: operator object is empty`,
          { field: column },
        );
      }
      const unknown = operators.filter((key) => !WHERE_OPERATORS.has(key));
      if (unknown.length > 0) {
        throw new ValidationError(
          `Cannot build WHERE for column ${show(column)}: unknown operator ${
            unknown.map(show).join(", ")
          } (expected gt, gte, lt, lte, ne, in or like)`,
          { field: column },
        );
      }
      condition = "";
      for (const operator of operators) {
        const operand = value[operator];
        if (operand === undefined) {
          throw undefinedInWhere(
            column,
            ` operator "${operator}" is undefined${
              operator === "ne" ? " (use null for IS NOT NULL)" : ""
            }`,
          );
        }
        const part = operatorCondition(column, quoted, operator, operand, params);
        condition += condition === "" ? part : ` AND ${part}`;
      }
    } else {
      params.push(value);
      condition = `${quoted} = $${params.length}`;
    }
    text += text === "" ? ` WHERE ${condition}` : ` AND ${condition}`;
  }
  return text;
}

function orderByError(detail: string): ValidationError {
  return new ValidationError(`Cannot build ORDER BY: ${detail}`, { field: "orderBy" });
}

function orderItems(text: string, into: string[]): void {
  if (typeof text !== "string") throw orderByError(`expected a string, got ${show(text)}`);
  for (const raw of text.split(",")) {
    const item = raw.trim();
    const match = ORDER_ITEM.exec(item);
    if (match === null) {
      throw orderByError(
        item === ""
          ? `empty item in ${show(text)}`
          : `${
            show(item)
          } is not "column", "column ASC" or "column DESC" (optionally NULLS FIRST or NULLS LAST)`,
      );
    }
    let sql = quoteIdentifier(match[1], "orderBy");
    if (match[2] !== undefined) sql += ` ${match[2].toUpperCase()}`;
    if (match[3] !== undefined) sql += ` NULLS ${match[3].toUpperCase()}`;
    into.push(sql);
  }
}

/**
 * Builds an `ORDER BY` clause from a safe description; raw SQL is refused.
 *
 * String items are `column`, `column ASC|DESC` (any case), optionally followed by
 * `NULLS FIRST|LAST`, separated by commas; the column must match `[A-Za-z_][A-Za-z0-9_$]*`.
 * The object form takes any column name.
 *
 * @example
 * ```ts
 * import { buildOrderBy } from "./_sql.ts";
 *
 * console.log(buildOrderBy("name, created_at desc")); // ORDER BY "name", "created_at" DESC
 * console.log(buildOrderBy({ "Last Name": "asc" })); // ORDER BY "Last Name" ASC
 * ```
 *
 * @param orderBy The order; `undefined` gives `""`.
 * @returns `""` or `" ORDER BY …"`.
 * @throws {ValidationError} (field `orderBy`) If the order is empty or anything but columns
 * and directions.
 */
export function buildOrderBy(orderBy: OrderBy | undefined): string {
  if (orderBy === undefined) return "";
  const items: string[] = [];
  if (typeof orderBy === "string") {
    orderItems(orderBy, items);
  } else if (Array.isArray(orderBy)) {
    if (orderBy.length === 0) throw orderByError("empty array");
    for (const element of orderBy) orderItems(element, items);
  } else if (isPlainObject(orderBy)) {
    const columns = Object.keys(orderBy);
    if (columns.length === 0) throw orderByError("empty object");
    for (const column of columns) {
      const direction = (orderBy as Record<string, unknown>)[column];
      const upper = typeof direction === "string" ? direction.toUpperCase() : "";
      if (upper !== "ASC" && upper !== "DESC") {
        throw orderByError(
          `direction of column ${show(column)} must be "asc" or "desc", got ${show(direction)}`,
        );
      }
      items.push(`${quoteIdentifier(column, "orderBy")} ${upper}`);
    }
  } else {
    throw orderByError(`expected a string, an array or an object, got ${show(orderBy)}`);
  }
  return ` ORDER BY ${items.join(", ")}`;
}

function checkCount(value: unknown, field: string, table: string): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(
      `Cannot build SELECT for ${show(table)}: ${field} must be a non-negative integer, got ${
        show(value)
      }`,
      { field },
    );
  }
}

/**
 * Builds `SELECT * | "a", "b" FROM "t" [WHERE …] [ORDER BY …] [LIMIT $n] [OFFSET $n]`.
 *
 * @example
 * ```ts
 * import { buildSelect } from "./_sql.ts";
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
        `Cannot build SELECT for ${show(table)}: columns must be a non-empty array`,
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
      `Cannot build ${action} for ${show(table)}: data must be an object, got ${show(data)}`,
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
 * import { buildInsert } from "./_sql.ts";
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
  return { text: remember(shapeCache, 1024, key, text), params };
}

function setList(columns: readonly string[], start: number): string {
  let text = "";
  for (let i = 0; i < columns.length; i++) {
    const item = `${quoteIdentifier(columns[i], "data")} = $${start + i}`;
    text += i === 0 ? item : `, ${item}`;
  }
  return text;
}

function requireWhere(where: Where | undefined, action: string, table: string): void {
  if (
    where === undefined || where === null ||
    (isPlainObject(where) && Object.keys(where).length === 0)
  ) {
    throw new ValidationError(`Cannot build ${action} for ${show(table)}: where is empty`, {
      field: "where",
    });
  }
}

/**
 * Builds `UPDATE "t" SET "a" = $1, … WHERE … RETURNING *`; the data values come first.
 *
 * Keys of `data` whose value is `undefined` are skipped.
 *
 * @example
 * ```ts
 * import { buildUpdate } from "./_sql.ts";
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
    throw new ValidationError(`Cannot build UPDATE for ${show(table)}: data is empty`, {
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
 * import { buildDelete } from "./_sql.ts";
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
 * import { buildCount } from "./_sql.ts";
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

/** `INSERT INTO "t" ("a", "b") VALUES` or `UPSERT INTO …`, and the tail after the values. */
function upsertParts(
  table: string,
  columns: readonly string[],
  options: UpsertOptions | undefined,
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
      `Cannot build ${action} for ${show(table)}: dialect must be "postgres" or "cockroach", got ${
        show(dialect)
      }`,
      { field: "dialect" },
    );
  }
  if (conflictColumns === undefined) {
    if (dialect === "cockroach") {
      return { head: `UPSERT INTO ${quotedTable} (${list}) VALUES`, tail: "" };
    }
    throw new ValidationError(
      `Cannot build ${action} for ${show(table)}: conflictColumns is required on PostgreSQL`,
      { field: "conflictColumns" },
    );
  }
  if (!Array.isArray(conflictColumns) || conflictColumns.length === 0) {
    throw new ValidationError(
      `Cannot build ${action} for ${show(table)}: conflictColumns must be a non-empty array`,
      { field: "conflictColumns" },
    );
  }
  const seen = new Set<string>();
  for (const column of conflictColumns) {
    quoteIdentifier(column, "conflictColumns");
    if (seen.has(column)) {
      throw new ValidationError(
        `Cannot build ${action} for ${show(table)}: conflict column ${show(column)} is repeated`,
        { field: "conflictColumns" },
      );
    }
    if (!columns.includes(column)) {
      throw new ValidationError(
        `Cannot build ${action} for ${show(table)}: conflict column ${
          show(column)
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
 * import { buildUpsert } from "./_sql.ts";
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
export function buildUpsert(table: string, data: Row, options: UpsertOptions): Statement {
  checkData(data, "UPSERT", table);
  const columns = definedKeys(data);
  if (columns.length === 0) {
    throw new ValidationError(`Cannot build UPSERT for ${show(table)}: data is empty`, {
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
    throw new ValidationError(`Cannot build UPSERT for ${show(table)}: options are required`, {
      field: "options",
    });
  }
  const { head, tail } = upsertParts(table, columns, options, "UPSERT", "data");
  const text = `${head} (${placeholders(1, columns.length)})${tail} RETURNING *`;
  return { text: remember(shapeCache, 1024, key, text), params };
}

/**
 * The columns of a batch: the first record's keys (those whose value is not `undefined`).
 * Every record must have the same key set, in any order.
 *
 * @example
 * ```ts
 * import { batchColumns } from "./_sql.ts";
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
      `Cannot read batch columns: record 0 must be an object, got ${show(first)}`,
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
        `Cannot read batch columns: record ${i} must be an object, got ${show(record)}`,
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
      if (missing.length > 0) parts.push(`missing ${missing.map(show).join(", ")}`);
      if (extra !== undefined) parts.push(`unexpected ${extra.map(show).join(", ")}`);
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
 * {@linkcode buildUpsert}; on PostgreSQL two records of one chunk must not hit the same row.
 *
 * @example
 * ```ts
 * import { buildBatchInsert } from "./_sql.ts";
 *
 * const [statement] = buildBatchInsert("t", [{ a: 1, b: 2 }, { b: 4, a: 3 }]);
 * console.log(statement.text); // INSERT INTO "t" ("a", "b") VALUES ($1, $2), ($3, $4) RETURNING *
 * console.log(statement.params); // [ 1, 2, 3, 4 ]
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
  options: BatchInsertOptions = {},
): Statement[] {
  const { returning = true, chunkSize, upsert } = options;
  if (chunkSize !== undefined && (!Number.isSafeInteger(chunkSize) || chunkSize < 1)) {
    throw new ValidationError(
      `Cannot build batch INSERT for ${show(table)}: chunkSize must be a positive integer, got ${
        show(chunkSize)
      }`,
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
    for (let r = start; r < end; r++) {
      const record = records[r];
      for (let c = 0; c < width; c++) params[p++] = record[columns[c]];
    }
    const key = `${end - start}:${shape}`;
    let text = batchCache.get(key);
    if (text === undefined) {
      text = remember(batchCache, 32, key, `${head} ${valuesList(end - start, width)}${suffix}`);
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
 * import { buildBatchUpdate } from "./_sql.ts";
 *
 * const [statement] = buildBatchUpdate("users", [{ id: 1, name: "Ada" }]);
 * console.log(statement.text); // UPDATE "users" SET "name" = $1 WHERE "id" = $2 RETURNING *
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
      `Cannot build batch UPDATE for ${show(table)}: records must be an array, got ${
        show(records)
      }`,
      { field: "records" },
    );
  }
  const shapes: string[][] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    if (!isPlainObject(record)) {
      throw new ValidationError(
        `Cannot build batch UPDATE for ${show(table)}: record ${i} must be an object, got ${
          show(record)
        }`,
        { field: "records" },
      );
    }
    if (record[keyColumn] === undefined || record[keyColumn] === null) {
      throw new ValidationError(
        `Cannot build batch UPDATE for ${show(table)}: record ${i} has no key column ${
          show(keyColumn)
        }`,
        { field: "records" },
      );
    }
    const columns = definedKeys(record).filter((column) => column !== keyColumn);
    if (columns.length === 0) {
      throw new ValidationError(
        `Cannot build batch UPDATE for ${show(table)}: record ${i} has nothing to set besides ${
          show(keyColumn)
        }`,
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

/** Rejects what could end the column list or the statement; string literals are skipped. */
function checkColumnType(table: string, column: string, type: unknown): string {
  const fail = (detail: string) =>
    new ValidationError(
      `Cannot build CREATE TABLE for ${show(table)}: type of column ${show(column)} ${detail}`,
      { field: "columns" },
    );
  if (typeof type !== "string") throw fail(`must be a string, got ${show(type)}`);
  if (type.trim() === "") throw fail("is empty");
  for (const token of [";", "\0", "--", "/*"]) {
    if (type.includes(token)) throw fail(`contains ${show(token)}`);
  }
  let depth = 0;
  let quote: string | undefined;
  for (const char of type) {
    if (quote !== undefined) {
      // A doubled quote closes and reopens, which leaves the state as it was.
      if (char === quote) quote = undefined;
    } else if (char === "'" || char === '"') {
      quote = char;
    } else if (char === "(") {
      depth++;
    } else if (char === ")" && --depth < 0) {
      throw fail("closes a parenthesis it did not open");
    }
  }
  if (quote !== undefined) throw fail(`has an unterminated ${quote} quote`);
  if (depth !== 0) throw fail("has an unclosed parenthesis");
  return type;
}

/**
 * Builds `CREATE TABLE [IF NOT EXISTS] "t" ("c" TYPE, …)`, columns in key order.
 *
 * Type strings are used as given (they may hold constraints and defaults) but may not contain
 * `;`, `--`, `/*`, a NUL byte, or unbalanced parentheses or quotes.
 *
 * @example
 * ```ts
 * import { buildCreateTable } from "./_sql.ts";
 *
 * console.log(buildCreateTable("users", { id: "UUID PRIMARY KEY", name: "TEXT NOT NULL" }));
 * // CREATE TABLE IF NOT EXISTS "users" ("id" UUID PRIMARY KEY, "name" TEXT NOT NULL)
 * ```
 *
 * @param name The table, optionally `schema.table`.
 * @param columns Column names to type strings.
 * @param options `ifNotExists`.
 * @returns The SQL text.
 * @throws {ValidationError} (field `columns`) If there are no columns or a type is unsafe; or on
 * an invalid name.
 */
export function buildCreateTable(
  name: string,
  columns: Readonly<Record<string, string>>,
  options: CreateTableOptions = {},
): string {
  const quotedTable = quoteTableName(name);
  if (!isPlainObject(columns) || Object.keys(columns).length === 0) {
    throw new ValidationError(`Cannot build CREATE TABLE for ${show(name)}: no columns`, {
      field: "columns",
    });
  }
  const definitions = Object.keys(columns).map((column) =>
    `${quoteIdentifier(column, "columns")} ${checkColumnType(name, column, columns[column])}`
  );
  const ifNotExists = options.ifNotExists ?? true;
  return `CREATE TABLE ${ifNotExists ? "IF NOT EXISTS " : ""}${quotedTable} (${
    definitions.join(", ")
  })`;
}

/**
 * Builds `DROP TABLE [IF EXISTS] "t" [CASCADE]`.
 *
 * @example
 * ```ts
 * import { buildDropTable } from "./_sql.ts";
 *
 * console.log(buildDropTable("users", { cascade: true })); // DROP TABLE IF EXISTS "users" CASCADE
 * ```
 *
 * @param name The table, optionally `schema.table`.
 * @param options `ifExists` and `cascade`.
 * @returns The SQL text.
 * @throws {ValidationError} On an invalid name.
 */
export function buildDropTable(name: string, options: DropTableOptions = {}): string {
  const { ifExists = true, cascade = false } = options;
  return `DROP TABLE ${ifExists ? "IF EXISTS " : ""}${quoteTableName(name)}${
    cascade ? " CASCADE" : ""
  }`;
}

/** Options of {@linkcode buildCreateDatabase}. */
export interface CreateDatabaseOptions {
  /**
   * The server family. PostgreSQL has no `CREATE DATABASE IF NOT EXISTS`: for `"postgres"` the
   * clause is left out, and the caller checks {@linkcode buildDatabaseExists} first (and treats
   * SQLSTATE `42P04`, a concurrent creation, as success).
   *
   * @default {"cockroach"}
   */
  readonly dialect?: Dialect;
}

/**
 * Builds `CREATE DATABASE IF NOT EXISTS "name"` (`CREATE DATABASE "name"` for PostgreSQL).
 *
 * @example
 * ```ts
 * import { buildCreateDatabase } from "./_sql.ts";
 *
 * console.log(buildCreateDatabase("shop")); // CREATE DATABASE IF NOT EXISTS "shop"
 * console.log(buildCreateDatabase("shop", { dialect: "postgres" })); // CREATE DATABASE "shop"
 * ```
 *
 * @param name The database.
 * @param options The dialect.
 * @returns The SQL text.
 * @throws {ValidationError} (field `database`) On an invalid name.
 */
export function buildCreateDatabase(name: string, options: CreateDatabaseOptions = {}): string {
  const quoted = quoteIdentifier(name, "database");
  return options.dialect === "postgres"
    ? `CREATE DATABASE ${quoted}`
    : `CREATE DATABASE IF NOT EXISTS ${quoted}`;
}

/**
 * Builds a query returning one row `{ exists: boolean }`: whether the database exists
 * (`pg_database` answers on both servers).
 *
 * @example
 * ```ts
 * import { buildDatabaseExists } from "./_sql.ts";
 *
 * console.log(buildDatabaseExists("shop").params); // [ "shop" ]
 * ```
 *
 * @param name The database.
 * @returns The statement.
 * @throws {ValidationError} (field `database`) On an invalid name.
 */
export function buildDatabaseExists(name: string): Statement {
  quoteIdentifier(name, "database");
  return {
    text: `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists"`,
    params: [name],
  };
}

/**
 * Builds `DROP DATABASE IF EXISTS "name"`.
 *
 * @example
 * ```ts
 * import { buildDropDatabase } from "./_sql.ts";
 *
 * console.log(buildDropDatabase("shop")); // DROP DATABASE IF EXISTS "shop"
 * ```
 *
 * @param name The database.
 * @returns The SQL text.
 * @throws {ValidationError} (field `database`) On an invalid name.
 */
export function buildDropDatabase(name: string): string {
  return `DROP DATABASE IF EXISTS ${quoteIdentifier(name, "database")}`;
}

/**
 * Builds a query returning one row `{ exists: boolean }`; an unqualified name is looked up in
 * schema `public`.
 *
 * @example
 * ```ts
 * import { buildTableExists } from "./_sql.ts";
 *
 * console.log(buildTableExists("audit.events").params); // [ "audit", "events" ]
 * ```
 *
 * @param name The table, optionally `schema.table`.
 * @returns The statement.
 * @throws {ValidationError} On an invalid name.
 */
export function buildTableExists(name: string): Statement {
  const { schema, table } = splitTableName(name);
  return {
    text:
      `SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2) AS "exists"`,
    params: [schema ?? "public", table],
  };
}

/**
 * Builds `TRUNCATE TABLE "t"`.
 *
 * @example
 * ```ts
 * import { buildTruncate } from "./_sql.ts";
 *
 * console.log(buildTruncate("users")); // TRUNCATE TABLE "users"
 * ```
 *
 * @param name The table, optionally `schema.table`.
 * @returns The SQL text.
 * @throws {ValidationError} On an invalid name.
 */
export function buildTruncate(name: string): string {
  return `TRUNCATE TABLE ${quoteTableName(name)}`;
}

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
  return COPY_SPECIAL.test(text) ? text.replace(COPY_ESCAPE, (char) => COPY_ESCAPES[char]) : text;
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
        for (let i = 0; i < value.length; i++) hex += HEX[value[i]];
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
 * import { encodeCopyText } from "./_sql.ts";
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
  for (let r = 0; r < records.length; r++) {
    const record = records[r];
    let line = "";
    for (let c = 0; c < width; c++) {
      const value = copyValue(record[columns[c]]);
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
 * import { buildCopyFrom } from "./_sql.ts";
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
    throw new ValidationError(`Cannot build COPY for ${show(table)}: no columns`, {
      field: "columns",
    });
  }
  return `COPY ${quotedTable} (${quoteColumns(columns, "columns")}) FROM STDIN`;
}
