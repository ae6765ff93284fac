/**
 * Tables: CRUD bound to one table, declared with a schema or attached to an existing one.
 *
 * - {@linkcode AsyncTable} over an `AsyncDatabase` (or its transaction handle): created on
 *   `initialize()` or on first use.
 * - {@linkcode Table} over the synchronous `Database` (or its transaction handle): created in
 *   its constructor.
 * - The error classes, as in `@manticore/cockroachdb/crud/exceptions`.
 *
 * @example Declare, create and use a table
 * ```ts
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 * import { AsyncTable, RecordNotFoundError } from "@manticore/cockroachdb/crud";
 *
 * interface Tea {
 *   id: string;
 *   name: string;
 *   price: string;
 * }
 *
 * class Teas extends AsyncTable<Tea> {
 *   static override tableName = "teas";
 *   static override schema = {
 *     id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
 *     name: "TEXT NOT NULL",
 *     price: "DECIMAL(10,2) NOT NULL",
 *   };
 * }
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * const teas = new Teas(db);
 * await teas.create({ name: "Sencha", price: "12.99" });
 * await teas.create({ name: "Gyokuro", price: "34.50" });
 * console.log(await teas.list({ where: { price: { lt: "20" } }, orderBy: "name" }));
 * // [{ id: "…", name: "Sencha", price: "12.99" }]
 * try {
 *   await teas.read("00000000-0000-4000-8000-000000000000");
 * } catch (error) {
 *   if (!(error instanceof RecordNotFoundError)) throw error; // no such tea
 * }
 * await teas.drop();
 * ```
 *
 * @module
 */
export { AsyncTable, type AsyncTableOptions } from "./async_table.ts";
export { Table, type TableOptions } from "./table.ts";
export type {
  InitializeOptions,
  ListOptions,
  RecordId,
  TableBatchUpdateOptions,
  TableSchema,
  TableSettings,
  TableUpsertOptions,
} from "./_table_common.ts";
export type { OrderBy, Row, Where, WhereOperators } from "../_sql.ts";
export {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  type DatabaseErrorOptions,
  MigrationError,
  type MigrationErrorOptions,
  RecordNotFoundError,
  type ServerErrorFields,
  TableNotFoundError,
  TableNotInitializedError,
  TransactionRetryError,
  type TransactionRetryErrorOptions,
  UniqueViolationError,
  ValidationError,
  type ValidationErrorOptions,
} from "./exceptions.ts";
