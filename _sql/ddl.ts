// Schema statements: create, drop, truncate and look up tables and databases. Column types are
// used as given but checked for anything that could end the column list or the statement.
// Pure.
import { ValidationError } from "../errors.ts";
import { describeValue, isPlainObject } from "../_serialize.ts";
import type { CreateTableOptions, DropTableOptions } from "../_options.ts";
import { quoteIdentifier, quoteTableName, splitTableName } from "./identifiers.ts";
import type { Dialect, Statement } from "./types.ts";

/** Rejects what could end the column list or the statement; string literals are skipped. */
function checkColumnType(table: string, column: string, type: unknown): string {
  const fail = (detail: string) =>
    new ValidationError(
      `Cannot build CREATE TABLE for ${describeValue(table)}: type of column ${
        describeValue(column)
      } ${detail}`,
      { field: "columns" },
    );
  if (typeof type !== "string") throw fail(`must be a string, got ${describeValue(type)}`);
  if (type.trim() === "") throw fail("is empty");
  for (const token of [";", "\0", "--", "/*"]) {
    if (type.includes(token)) throw fail(`contains ${describeValue(token)}`);
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
 * import { buildCreateTable } from "./ddl.ts";
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
    throw new ValidationError(`Cannot build CREATE TABLE for ${describeValue(name)}: no columns`, {
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
 * import { buildDropTable } from "./ddl.ts";
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
 * import { buildCreateDatabase } from "./ddl.ts";
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
 * import { buildDatabaseExists } from "./ddl.ts";
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
 * import { buildDropDatabase } from "./ddl.ts";
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
 * import { buildTableExists } from "./ddl.ts";
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
 * import { buildTruncate } from "./ddl.ts";
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
