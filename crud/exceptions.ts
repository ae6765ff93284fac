/**
 * The error classes of `@manticore/cockroachdb`, at their public path.
 *
 * The classes live in the package's root module `errors.ts`; this module re-exports them so
 * that `@manticore/cockroachdb/crud/exceptions` (the path of the original library) stays the
 * place users import them from. `@manticore/cockroachdb` and `@manticore/cockroachdb/crud`
 * export the same classes.
 *
 * Every class sets `name`, accepts `ErrorOptions` (`cause`) and carries a readonly `code`:
 * the SQLSTATE for errors the server reported, a stable UPPER_SNAKE string otherwise.
 *
 * @example Catching a unique violation
 * ```ts
 * import { UniqueViolationError } from "@manticore/cockroachdb/crud/exceptions";
 *
 * const err = new UniqueViolationError("Cannot insert into \"users\": duplicate key", {
 *   constraint: "users_email_key",
 * });
 * console.log(err instanceof UniqueViolationError, err.code, err.constraint);
 * ```
 *
 * @module
 */
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
} from "../errors.ts";
