/**
 * `@manticore/cockroachdb`: a Deno-first client for CockroachDB (and PostgreSQL).
 *
 * - {@linkcode AsyncDatabase}: pooled connections, raw SQL, CRUD helpers, streaming, and
 *   transactions that retry serialization failures with CockroachDB's savepoint protocol.
 * - Typed errors carrying SQLSTATE codes.
 *
 * Importing this module reads no file and starts no worker: the async API runs on Deno Deploy.
 *
 * @example Quick tour
 * ```ts ignore
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * await db.createTable("accounts", { id: "INT PRIMARY KEY", balance: "DECIMAL NOT NULL" });
 * await db.upsert("accounts", { id: 1, balance: "100" });
 * await db.transaction(async (tx) => {
 *   await tx.update("accounts", { balance: "90" }, { id: 1 });
 * });
 * ```
 *
 * @module
 */
export {
  AsyncDatabase,
  AsyncQueryable,
  AsyncTransaction,
  type BatchInsertOptions,
  type BatchUpdateOptions,
  type CreateTableOptions,
  type DatabaseOptions,
  type Dialect,
  type DropTableOptions,
  type Int8Mode,
  type IsolationLevel,
  type OrderBy,
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
} from "./crud/exceptions.ts";
