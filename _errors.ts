// The one place where driver and server failures become this package's error classes.
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  type DatabaseErrorOptions,
  TableNotFoundError,
  UniqueViolationError,
  ValidationError,
} from "./errors.ts";

/** SQLSTATEs after which the transaction is run again. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(["40001", "40P01"]);

// Driver-side codes that mean the connection is gone (postgres.js and Node's net).
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
]);

interface DriverErrorShape {
  readonly message?: string;
  readonly code?: unknown;
  readonly severity?: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly constraint_name?: string;
  readonly table_name?: string;
  readonly column_name?: string;
  readonly name?: string;
}

function isObject(value: unknown): value is DriverErrorShape {
  return typeof value === "object" && value !== null;
}

/** True for an error a server sent (it carries a severity and a five-character SQLSTATE). */
export function isServerError(error: unknown): boolean {
  return isObject(error) && typeof error.severity === "string" &&
    typeof error.code === "string" && error.code.length === 5;
}

/** The SQLSTATE or driver code of any error, or `undefined`. */
export function errorCode(error: unknown): string | undefined {
  if (error instanceof DatabaseError) return error.code;
  if (isObject(error) && typeof error.code === "string") return error.code;
  return undefined;
}

/** True for a server error after which the server ends the session (`FATAL`, `PANIC`). */
export function isFatal(error: unknown): boolean {
  if (!isObject(error)) return false;
  const severity = error.severity ?? (error as { severity_local?: string }).severity_local;
  return severity === "FATAL" || severity === "PANIC";
}

/** True for a server error that ended the session (`FATAL` in class `08` or `57P`). */
export function isSessionEnded(error: unknown): boolean {
  const code = errorCode(error);
  return isFatal(error) && code !== undefined && (code.startsWith("08") || code.startsWith("57P"));
}

/**
 * True when the error means the connection is gone: the driver saw it close, or the server
 * reported an error after which it ends the session (`FATAL`: `57P01` admin shutdown, a class
 * `08` protocol failure, …). A server error of severity `ERROR` leaves the connection usable,
 * whatever its class: `08P01` for a bind with the wrong number of parameters is one.
 */
export function isConnectionLoss(error: unknown): boolean {
  if (error instanceof ConnectionError) return true;
  if (error instanceof DatabaseError) {
    return error.severity === undefined ? CONNECTION_CODES.has(error.code) : isFatal(error);
  }
  if (isServerError(error)) return isFatal(error);
  const code = errorCode(error);
  return code !== undefined && CONNECTION_CODES.has(code);
}

// Codes of a connect that failed because the node is away (down, restarting, draining,
// unreachable for now), as opposed to one refused for good (credentials, certificates, a
// database that does not exist, a client that was closed).
const NODE_AWAY_CODES: ReadonlySet<string> = new Set([
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up or shutting down
]);

/** True when a connect failed because the node is away for now (see `NODE_AWAY_CODES`). */
export function isNodeAway(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && NODE_AWAY_CODES.has(code);
}

/** True when the transaction should be run again. */
export function isRetryable(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

function tableFromMessage(message: string): string {
  const match = /relation "([^"]+)" does not exist/.exec(message);
  return match?.[1] ?? "";
}

/**
 * Turns a driver or server error into this package's error classes. Errors already of this
 * package, and `RangeError`s (raised by the `int8: "number"` parser), pass through unchanged.
 */
export function toDatabaseError(error: unknown, target: string): Error {
  if (error instanceof DatabaseError || error instanceof RangeError) return error;
  if (!isObject(error)) {
    return new DatabaseError(`Cannot execute query: ${String(error)}`, { cause: error });
  }
  const message = String(error.message ?? error);
  if (isServerError(error)) {
    const code = error.code as string;
    const options: DatabaseErrorOptions = {
      cause: error,
      code,
      severity: error.severity,
      detail: error.detail,
      hint: error.hint,
      constraint: error.constraint_name,
      table: error.table_name,
      column: error.column_name,
    };
    if (code === "23505") {
      return new UniqueViolationError(`Cannot write row: ${message}`, options);
    }
    if (code === "42P01") {
      return new TableNotFoundError(error.table_name ?? tableFromMessage(message), {
        ...options,
        message: `Cannot execute query: ${message}`,
      });
    }
    if (code === "40003") {
      return new AmbiguousCommitError(
        `Cannot tell whether the transaction committed: ${message}`,
        options,
      );
    }
    // The session ended (an administrator, a crash, a shutdown): the connection is gone. Other
    // FATAL errors (authentication, an unknown database) are refusals, reported as such.
    if (isSessionEnded(error)) {
      return new ConnectionError(`Connection to "${target}" lost: ${message}`, options);
    }
    return new DatabaseError(`Cannot execute query: ${message}`, options);
  }
  const code = typeof error.code === "string" ? error.code : undefined;
  if (code === "CHAIN_SKIPPED") {
    // Not run: a statement sent before it in the same write failed; that failure is the cause.
    const failure = (error as { cause?: unknown }).cause;
    return new DatabaseError(
      "Cannot execute query: not run, a statement sent before it in the same write failed",
      { cause: failure === undefined ? error : toDatabaseError(failure, target), code },
    );
  }
  // The connection closed after the server said why (the vendored driver keeps that word as the
  // cause): the server's reason and SQLSTATE are the error's.
  const said = (error as { cause?: unknown }).cause;
  if (code !== undefined && isConnectionLoss(error) && isServerError(said)) {
    const server = said as DriverErrorShape;
    return new ConnectionError(`Connection to "${target}" lost: ${server.message}`, {
      cause: error,
      code: server.code as string,
      severity: server.severity,
    });
  }
  if (code !== undefined && isConnectionLoss(error)) {
    const what = code === "CONNECT_TIMEOUT"
      ? "connect timeout"
      : code === "ECONNREFUSED"
      ? "connection refused"
      : code === "CONNECTION_CLOSED" || code === "CONNECTION_DESTROYED" ||
          code === "CONNECTION_ENDED"
      ? "connection closed"
      : message;
    const text = code.startsWith("CONNECTION_")
      ? `Connection to "${target}" lost: ${what}`
      : `Cannot connect to "${target}": ${what}`;
    return new ConnectionError(text, { cause: error, code });
  }
  if (error instanceof Error && /certificate|self.signed|TLS|SSL/i.test(message)) {
    return new ConnectionError(`Cannot connect to "${target}": ${message}`, {
      cause: error,
      code: code ?? "TLS_ERROR",
    });
  }
  return new DatabaseError(`Cannot execute query: ${message}`, { cause: error, code });
}

/**
 * The error of a batch whose statement `index` failed with `error`: the same class (so that
 * `instanceof UniqueViolationError` still tells a duplicate key), the same code and server
 * fields, `statementIndex` set, the message naming the statement, and `error` as the cause.
 */
export function batchError(error: unknown, index: number): unknown {
  if (!(error instanceof DatabaseError)) return error;
  const detail = error.message.startsWith("Cannot ") && error.message.includes(": ")
    ? error.message.slice(error.message.indexOf(": ") + 2)
    : error.message;
  const message = `Cannot run batch: statement ${index} failed: ${detail}`;
  const options: DatabaseErrorOptions = {
    cause: error,
    code: error.code,
    detail: error.detail,
    hint: error.hint,
    constraint: error.constraint,
    table: error.table,
    column: error.column,
    severity: error.severity,
    statementIndex: index,
  };
  if (error instanceof UniqueViolationError) return new UniqueViolationError(message, options);
  if (error instanceof TableNotFoundError) {
    return new TableNotFoundError(error.tableName, { ...options, message });
  }
  if (error instanceof ValidationError) {
    return new ValidationError(message, { ...options, field: error.field });
  }
  if (error instanceof AmbiguousCommitError) return new AmbiguousCommitError(message, options);
  if (error instanceof ConnectionError) return new ConnectionError(message, options);
  return new DatabaseError(message, options);
}
