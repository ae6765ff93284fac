/**
 * The error classes of `@manticore/cockroachdb`.
 *
 * Every class sets `name`, accepts `ErrorOptions` (`cause`) and carries a readonly `code`:
 * the SQLSTATE for errors the server reported, a stable UPPER_SNAKE string otherwise.
 * Users import them from `@manticore/cockroachdb/crud/exceptions` (the public path, which
 * re-exports this module, with the module's example) or from the package root.
 *
 * @module
 */

/** Fields the server reports with an error, kept on every {@linkcode DatabaseError}. */
export interface ServerErrorFields {
  /** SQLSTATE or a stable UPPER_SNAKE code. */
  readonly code?: string;
  /** The server's `DETAIL` line. */
  readonly detail?: string;
  /** The server's `HINT` line. */
  readonly hint?: string;
  /** The constraint the server named, if any. */
  readonly constraint?: string;
  /** The table the server named, if any. */
  readonly table?: string;
  /** The column the server named, if any. */
  readonly column?: string;
  /** The server's severity (`ERROR`, `FATAL`, …). */
  readonly severity?: string;
}

/** Options accepted by every error class of this package. */
export interface DatabaseErrorOptions extends ErrorOptions, ServerErrorFields {
  /** The index (from 0) of the statement of a `batch()` that failed. */
  readonly statementIndex?: number;
}

/**
 * Any database failure; the base class of every other error of this package.
 *
 * @example Inspecting a server error
 * ```ts
 * import { DatabaseError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new DatabaseError("Cannot run query: syntax error", { code: "42601" });
 * console.log(err.code); // "42601"
 * ```
 */
export class DatabaseError extends Error {
  /** SQLSTATE for server errors, a stable UPPER_SNAKE string otherwise. */
  readonly code: string;
  /** The server's `DETAIL` line, if any. */
  readonly detail: string | undefined;
  /** The server's `HINT` line, if any. */
  readonly hint: string | undefined;
  /** The constraint the server named, if any. */
  readonly constraint: string | undefined;
  /** The table the server named, if any. */
  readonly table: string | undefined;
  /** The column the server named, if any. */
  readonly column: string | undefined;
  /** The server's severity, if the server reported the error. */
  readonly severity: string | undefined;
  /**
   * The index (from 0) of the statement that failed, when the error ends a `batch()` (which
   * then rolled back as a whole); `undefined` otherwise.
   */
  readonly statementIndex: number | undefined;

  /**
   * The message states what failed first, then the detail after a colon.
   *
   * @param message What failed, then the detail after a colon.
   * @param options The cause and the server's fields.
   */
  constructor(message: string, options?: DatabaseErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DatabaseError";
    this.code = options?.code ?? "DATABASE_ERROR";
    this.detail = options?.detail;
    this.hint = options?.hint;
    this.constraint = options?.constraint;
    this.table = options?.table;
    this.column = options?.column;
    this.severity = options?.severity;
    this.statementIndex = options?.statementIndex;
  }
}

/**
 * Cannot connect, connection lost, pool closed, or the sync bridge's worker is gone.
 *
 * @example
 * ```ts
 * import { ConnectionError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new ConnectionError('Cannot connect to "localhost:26257": connection refused');
 * console.log(err.code); // "CONNECTION_ERROR"
 * ```
 */
export class ConnectionError extends DatabaseError {
  /**
   * The message states what failed first, then the detail after a colon.
   *
   * @param message What failed, then the detail after a colon.
   * @param options The cause; `code` defaults to `CONNECTION_ERROR`.
   */
  constructor(message: string, options?: DatabaseErrorOptions) {
    super(message, { ...options, code: options?.code ?? "CONNECTION_ERROR" });
    this.name = "ConnectionError";
  }
}

/** Options of {@linkcode ValidationError}. */
export interface ValidationErrorOptions extends DatabaseErrorOptions {
  /** The argument or field that failed validation. */
  readonly field?: string;
}

/**
 * Bad identifiers, empty update or delete filters, mismatched batch records.
 *
 * @example
 * ```ts
 * import { ValidationError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new ValidationError("Invalid identifier: empty", { field: "table" });
 * console.log(err.code, err.field); // "VALIDATION_ERROR" "table"
 * ```
 */
export class ValidationError extends DatabaseError {
  /** The argument or field that failed validation, if known. */
  readonly field: string | undefined;

  /**
   * The message states what failed first, then the detail after a colon.
   *
   * @param message What failed, then the detail after a colon.
   * @param options The field that failed and the cause.
   */
  constructor(message: string, options?: ValidationErrorOptions) {
    super(message, { ...options, code: options?.code ?? "VALIDATION_ERROR" });
    this.name = "ValidationError";
    this.field = options?.field;
  }
}

/**
 * A table was used before it exists or before it was initialised.
 *
 * @example
 * ```ts
 * import { TableNotInitializedError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new TableNotInitializedError("users");
 * console.log(err.message); // Table "users" is not initialized: call initialize() or create it first
 * ```
 */
export class TableNotInitializedError extends DatabaseError {
  /** The table's name. */
  readonly tableName: string;

  /**
   * The message names the table.
   *
   * @param tableName The table's name.
   * @param options The cause.
   */
  constructor(tableName: string, options?: DatabaseErrorOptions) {
    super(
      `Table "${tableName}" is not initialized: call initialize() or create it first`,
      { ...options, code: options?.code ?? "TABLE_NOT_INITIALIZED" },
    );
    this.name = "TableNotInitializedError";
    this.tableName = tableName;
  }
}

/**
 * The server reported that a table does not exist (SQLSTATE `42P01`).
 *
 * @example
 * ```ts
 * import { TableNotFoundError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new TableNotFoundError("users");
 * console.log(err.code, err.tableName); // "42P01" "users"
 * ```
 */
export class TableNotFoundError extends DatabaseError {
  /** The table's name, as far as it is known. */
  readonly tableName: string;

  /**
   * The message names the table unless `options.message` is given.
   *
   * @param tableName The table's name.
   * @param options The cause and the server's fields; the message defaults to a sentence naming the table.
   */
  constructor(tableName: string, options?: DatabaseErrorOptions & { readonly message?: string }) {
    super(options?.message ?? `Table "${tableName}" does not exist`, {
      ...options,
      code: options?.code ?? "42P01",
    });
    this.name = "TableNotFoundError";
    this.tableName = tableName;
  }
}

/**
 * `read()` or `update()` of an id that is not in the table.
 *
 * @example
 * ```ts
 * import { RecordNotFoundError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new RecordNotFoundError("users", 42);
 * console.log(err.message); // Record 42 not found in table "users"
 * ```
 */
export class RecordNotFoundError extends DatabaseError {
  /** The table's name. */
  readonly tableName: string;
  /** The id that was not found. */
  readonly id: unknown;

  /**
   * The message names the id and the table.
   *
   * @param tableName The table's name.
   * @param id The id that was not found.
   * @param options The cause.
   */
  constructor(tableName: string, id: unknown, options?: DatabaseErrorOptions) {
    super(`Record ${formatId(id)} not found in table "${tableName}"`, {
      ...options,
      code: options?.code ?? "RECORD_NOT_FOUND",
    });
    this.name = "RecordNotFoundError";
    this.tableName = tableName;
    this.id = id;
  }
}

/**
 * A unique constraint was violated (SQLSTATE `23505`).
 *
 * @example
 * ```ts
 * import { UniqueViolationError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new UniqueViolationError("duplicate key", { constraint: "users_email_key" });
 * console.log(err.code, err.constraint); // "23505" "users_email_key"
 * ```
 */
export class UniqueViolationError extends DatabaseError {
  /**
   * The message states what failed first, then the detail after a colon.
   *
   * @param message What failed, then the detail after a colon.
   * @param options The constraint, the server's fields and the cause.
   */
  constructor(message: string, options?: DatabaseErrorOptions) {
    super(message, { ...options, code: options?.code ?? "23505" });
    this.name = "UniqueViolationError";
  }
}

/** Options of {@linkcode TransactionRetryError}. */
export interface TransactionRetryErrorOptions extends DatabaseErrorOptions {
  /** How many times the transaction was attempted. */
  readonly attempts: number;
}

/**
 * A transaction still failed with a retryable error (SQLSTATE `40001`) after `maxRetries`.
 *
 * @example
 * ```ts
 * import { TransactionRetryError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new TransactionRetryError("Cannot commit transaction: gave up", { attempts: 11 });
 * console.log(err.code, err.attempts); // "40001" 11
 * ```
 */
export class TransactionRetryError extends DatabaseError {
  /** How many times the transaction was attempted. */
  readonly attempts: number;

  /**
   * The message states what failed first, then the detail after a colon.
   *
   * @param message What failed, then the detail after a colon.
   * @param options The attempts made and the last cause.
   */
  constructor(message: string, options: TransactionRetryErrorOptions) {
    super(message, { ...options, code: options.code ?? "40001" });
    this.name = "TransactionRetryError";
    this.attempts = options.attempts;
  }
}

/**
 * The commit's outcome is unknown (SQLSTATE `40003`, or the connection was lost while `COMMIT`
 * was in flight). The transaction may or may not have been applied; it is never retried silently.
 *
 * @example
 * ```ts
 * import { AmbiguousCommitError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new AmbiguousCommitError("Cannot tell whether the transaction committed");
 * console.log(err.code); // "40003"
 * ```
 */
export class AmbiguousCommitError extends DatabaseError {
  /**
   * The message states what failed first, then the detail after a colon.
   *
   * @param message What failed, then the detail after a colon.
   * @param options The cause; `code` defaults to `40003`.
   */
  constructor(message: string, options?: DatabaseErrorOptions) {
    super(message, { ...options, code: options?.code ?? "40003" });
    this.name = "AmbiguousCommitError";
  }
}

/** Options of {@linkcode MigrationError}. */
export interface MigrationErrorOptions extends DatabaseErrorOptions {
  /** The migration's version, if one is concerned. */
  readonly version?: number;
  /** The migration file's path, if one is concerned. */
  readonly path?: string;
  /** The statement that failed, if known. */
  readonly statement?: string;
}

/**
 * A failed, unrevertable, modified or out-of-order migration.
 *
 * @example
 * ```ts
 * import { MigrationError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new MigrationError('Cannot revert "V2__add.sql": no down SQL', {
 *   version: 2,
 *   path: "migrations/V2__add.sql",
 * });
 * console.log(err.code, err.version); // "MIGRATION_ERROR" 2
 * ```
 */
export class MigrationError extends DatabaseError {
  /** The migration's version, if one is concerned. */
  readonly version: number | undefined;
  /** The migration file's path, if one is concerned. */
  readonly path: string | undefined;
  /** The statement that failed, if known. */
  readonly statement: string | undefined;

  /**
   * The message states what failed first, then the detail after a colon.
   *
   * @param message What failed, then the detail after a colon.
   * @param options The version, path, statement and cause.
   */
  constructor(message: string, options?: MigrationErrorOptions) {
    super(message, { ...options, code: options?.code ?? "MIGRATION_ERROR" });
    this.name = "MigrationError";
    this.version = options?.version;
    this.path = options?.path;
    this.statement = options?.statement;
  }
}

function formatId(id: unknown): string {
  if (typeof id === "string") return JSON.stringify(id);
  if (typeof id === "bigint") return `${id}`;
  try {
    return JSON.stringify(id) ?? String(id);
  } catch {
    return String(id);
  }
}
