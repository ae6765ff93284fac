// What `Table` and `AsyncTable` share: their option types, the resolution of constructor
// arguments (explicit name or the subclass's `static tableName`), id checks and the mapping of
// "relation does not exist" to `TableNotInitializedError`. Pure: no I/O.
import { quoteIdentifier, quoteTableName } from "../_sql.ts";
import type { OrderBy, Row, Where } from "../_sql.ts";
import { describeValue, isPlainObject } from "../_serialize.ts";
import { TableNotFoundError, TableNotInitializedError, ValidationError } from "../errors.ts";

/** Column names to SQL type strings (constraints and defaults included), in column order. */
export type TableSchema = Readonly<Record<string, string>>;

/** A primary key value: a UUID or other text, an integer, or an `INT8` as bigint. */
export type RecordId = string | number | bigint;

/** The settings of a table object, shared by `Table` and `AsyncTable`. */
export interface TableSettings {
  /**
   * The columns to create the table with (`CREATE TABLE IF NOT EXISTS`). Without one, the
   * table object attaches to an existing table.
   *
   * @default {the class's `static schema`}
   */
  readonly schema?: TableSchema;
  /**
   * Create the table with `IF NOT EXISTS`; with `false`, creating a table that exists throws
   * `DatabaseError`.
   *
   * @default {true}
   */
  readonly ifNotExists?: boolean;
  /**
   * The primary key column, used by `read`, `get`, `getMany`, `update`, `delete`, `exists`
   * and as the default key of `batchUpdate`.
   *
   * @default {"id"}
   */
  readonly primaryKey?: string;
}

/** Options of `initialize()`. */
export interface InitializeOptions {
  /**
   * The columns to create the table with; it is not stored on the table object.
   *
   * @default {the table's schema}
   */
  readonly schema?: TableSchema;
  /**
   * Create the table with `IF NOT EXISTS`; with `false`, a table that exists throws
   * `DatabaseError`.
   *
   * @default {the table's `ifNotExists` setting}
   */
  readonly ifNotExists?: boolean;
}

/** Options of `list()`. `T` is the table's row type: `where` and `orderBy` name its columns. */
export interface ListOptions<T = Row> {
  /**
   * The rows to return (see `Where`).
   *
   * @default {every row}
   */
  readonly where?: Where<T>;
  /**
   * The order of the rows (see `OrderBy`).
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

/** Options of a table's `upsert()`. `T` is the table's row type. */
export interface TableUpsertOptions<T = Row> {
  /**
   * The columns of the unique constraint that decides "existing row".
   *
   * @default {the table's primary key}
   */
  readonly conflictColumns?: readonly (keyof T & string)[];
}

/** Options of a table's `batchUpdate()`. `T` is the table's row type. */
export interface TableBatchUpdateOptions<T = Row> {
  /**
   * The column that identifies each record.
   *
   * @default {the table's primary key}
   */
  readonly keyColumn?: keyof T & string;
}

/** The `static` members a table class may declare, read by the constructor. */
export interface TableStatics {
  readonly tableName: string | undefined;
  readonly schema: TableSchema | undefined;
}

/**
 * Set by `withTransaction()` on the options of the table it builds: the table is known to exist,
 * so the new object neither checks nor creates it. Module-private, so callers cannot set it.
 */
export const KNOWN_TO_EXIST: unique symbol = Symbol("knownToExist");

/** The resolved constructor arguments of a table object. */
export interface ResolvedTable<D> {
  readonly name: string;
  readonly db: D;
  readonly schema: TableSchema | undefined;
  readonly ifNotExists: boolean;
  readonly primaryKey: string;
  readonly knownToExist: boolean;
}

/**
 * Resolves `(name, { db, … })` or `(db, { … })` with the class's statics.
 *
 * @throws {TypeError} When there is no name, or no database of the expected kind.
 * @throws {ValidationError} When the name or the primary key is not a valid identifier.
 */
export function resolveTable<D>(
  statics: TableStatics,
  nameOrDb: unknown,
  options: (TableSettings & { readonly db?: unknown }) | undefined,
  isDb: (value: unknown) => value is D,
  expected: string,
): ResolvedTable<D> {
  const explicitName = typeof nameOrDb === "string";
  const name = explicitName ? nameOrDb : statics.tableName;
  if (typeof name !== "string") {
    throw new TypeError(
      "Cannot create table object: pass a table name or declare a static tableName",
    );
  }
  quoteTableName(name, "name");
  const db = explicitName ? options?.db : nameOrDb;
  if (!isDb(db)) {
    throw new TypeError(`Cannot create table object "${name}": db must be ${expected}`);
  }
  const primaryKey = options?.primaryKey ?? "id";
  quoteIdentifier(primaryKey, "primaryKey");
  const schema = options?.schema ?? statics.schema;
  if (schema !== undefined && (typeof schema !== "object" || schema === null)) {
    throw new TypeError(`Cannot create table object "${name}": schema must be an object`);
  }
  return {
    name,
    db,
    schema,
    ifNotExists: options?.ifNotExists ?? true,
    primaryKey,
    knownToExist: (options as Record<symbol, unknown> | undefined)?.[KNOWN_TO_EXIST] === true,
  };
}

/**
 * The `where` that selects one id.
 *
 * @throws {ValidationError} (field `id`) For `null`, `undefined`, a boolean, an array or a plain
 * object: each would widen the filter (`IS NULL`, `IN`, operators) instead of naming one row.
 */
export function byId(table: string, primaryKey: string, id: unknown, action: string): Where {
  const plain = Array.isArray(id) || isPlainObject(id);
  if (id === null || id === undefined || typeof id === "boolean" || plain) {
    throw new ValidationError(
      `Cannot ${action} in table "${table}": expected one id, got ${describeValue(id)}`,
      { field: "id" },
    );
  }
  return { [primaryKey]: id };
}

/**
 * @throws {ValidationError} (field `ids`) When `ids` is not an array or holds an invalid id.
 */
export function checkIds(table: string, ids: unknown): asserts ids is readonly RecordId[] {
  if (!Array.isArray(ids)) {
    throw new ValidationError(
      `Cannot get records from table "${table}": ids must be an array, got ${describeValue(ids)}`,
      { field: "ids" },
    );
  }
  for (const id of ids) byId(table, "id", id, "get records");
}

/**
 * The error to throw for `error` raised while using `table`: a `TableNotFoundError` about this
 * very table (it was dropped, or never created) becomes `TableNotInitializedError` naming it,
 * with the server's error as `cause`; anything else is returned as is.
 */
export function tableError(table: string, error: unknown): unknown {
  if (!(error instanceof TableNotFoundError)) return error;
  const unqualified = table.slice(table.indexOf(".") + 1);
  return error.tableName === table || error.tableName === unqualified
    ? new TableNotInitializedError(table, { cause: error })
    : error;
}
