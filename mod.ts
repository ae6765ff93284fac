/**
 * `@manticore/cockroachdb`: a Deno-first client for CockroachDB (and PostgreSQL).
 *
 * - {@linkcode AsyncDatabase}: pooled connections, raw SQL, CRUD helpers, streaming, and
 *   transactions that retry serialization failures with CockroachDB's savepoint protocol.
 * - {@linkcode Database}: the same API, synchronous, through a Worker bridge.
 * - {@linkcode AsyncTable} / {@linkcode Table}: CRUD bound to one table.
 * - {@linkcode AsyncMigration} / {@linkcode Migration}: versioned up/down SQL files with a
 *   lease lock and checksums.
 * - Typed errors carrying SQLSTATE codes.
 *
 * Importing this module reads no file and starts no worker (only constructing a `Database`
 * starts one): the async API runs on Deno Deploy.
 *
 * @example Quick tour
 * ```ts
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * await db.createTable("accounts", { id: "INT PRIMARY KEY", balance: "DECIMAL NOT NULL" });
 * await db.upsert("accounts", { id: 1, balance: "100" });
 * await db.transaction(async (tx) => {
 *   await tx.update("accounts", { balance: "90" }, { id: 1 });
 * });
 * console.log(await db.select("accounts")); // [{ id: 1, balance: "90" }]
 * await db.dropTable("accounts");
 * ```
 *
 * @module
 */
export {
  AsyncDatabase,
  AsyncQueryable,
  AsyncTransaction,
  type BatchInsertOptions,
  type BatchStatement,
  type BatchUpdateOptions,
  type CallOptions,
  type CreateTableOptions,
  type DatabaseOptions,
  type Dialect,
  type DropTableOptions,
  type Int8Mode,
  type IsolationLevel,
  type LoadBalanceHosts,
  type Notice,
  type OrderBy,
  type PoolStats,
  type QueryEvent,
  type RetryInfo,
  type RetryOptions,
  type Row,
  type SelectOptions,
  type SslMode,
  type StreamOptions,
  type TransactionOptions,
  type UpsertOptions,
  type Where,
  type WhereOperators,
} from "./async_database.ts";
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
} from "./errors.ts";
export { Database, Queryable, type SyncDatabaseOptions, Transaction } from "./database.ts";
export {
  AsyncTable,
  type AsyncTableOptions,
  type InitializeOptions,
  type ListOptions,
  type RecordId,
  Table,
  type TableBatchUpdateOptions,
  type TableOptions,
  type TableSchema,
  type TableSettings,
  type TableUpsertOptions,
} from "./crud/mod.ts";
export {
  AsyncMigration,
  type MigrateOptions,
  type MigrateResult,
  type MigrationDirection,
  type MigrationFile,
  type MigrationHistoryEntry,
  type MigrationOptions,
  type MigrationProgress,
  type MigrationRun,
  type MigrationState,
  type MigrationStatus,
  type PartialProgress,
  type RollbackOptions,
  type VerifyResult,
} from "./async_migration.ts";
export { Migration } from "./migration.ts";
