// What the CRUD helpers of `AsyncQueryable` refuse before anything is sent: SQL that is not a
// string, parameters that do not match its placeholders, records that are not objects; and what
// a helper's statement is sent with (its signal, its name for the telemetry).
import type { CallOptions } from "./_options.ts";
import type { QueryCall } from "./_observe.ts";
import type { Row } from "./_sql.ts";
import { highestPlaceholder, splitStatements } from "./_sql_scan.ts";
import { ValidationError } from "./errors.ts";

// Placeholder counts by statement text: a hot statement is scanned once.
const placeholderCounts = new Map<string, number>();

function placeholders(sql: string): number {
  let count = placeholderCounts.get(sql);
  if (count === undefined) {
    count = highestPlaceholder(sql);
    if (placeholderCounts.size >= 1024) placeholderCounts.clear();
    placeholderCounts.set(sql, count);
  }
  return count;
}

export function checkSql(sql: unknown, params: unknown): void {
  if (typeof sql !== "string" || sql.trim() === "") {
    throw new ValidationError("Cannot execute query: SQL must be a non-empty string", {
      field: "sql",
    });
  }
  if (params !== undefined && !Array.isArray(params)) {
    throw new ValidationError("Cannot execute query: params must be an array", {
      field: "params",
    });
  }
  // Without parameters the text goes by the simple protocol, where "$1" can be legitimate
  // (PREPARE, a BEGIN ATOMIC body) and a missing one is the server's clear 42P02.
  const given = params === undefined ? 0 : params.length;
  if (given === 0) return;
  const expected = placeholders(sql);
  if (expected !== given) {
    const range = expected === 0 ? "" : expected === 1 ? " ($1)" : ` ($1 … $${expected})`;
    throw new ValidationError(
      `Cannot execute query: the SQL expects ${
        plural(expected, "parameter")
      }${range} but ${given} ${given === 1 ? "was" : "were"} given`,
      { field: "params" },
    );
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

export function checkRecord(data: unknown, field: string): asserts data is Row {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ValidationError(`Cannot use ${field}: expected an object of column values`, {
      field,
    });
  }
}

export function checkRecords(records: unknown, field = "records"): asserts records is Row[] {
  if (!Array.isArray(records)) {
    throw new ValidationError(`Cannot use ${field}: expected an array of objects`, { field });
  }
  records.forEach((r, i) => checkRecord(r, `${field}[${i}]`));
}

/** Refuses a `timeout` that is not a finite number of milliseconds above 0. */
export function checkTimeout(timeout: unknown): asserts timeout is number | undefined {
  if (
    timeout !== undefined &&
    (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0)
  ) {
    throw new ValidationError(
      `Cannot use timeout ${String(timeout)}: expected milliseconds above 0`,
      { field: "timeout" },
    );
  }
}

/**
 * The one signal of a call's `signal` and `timeout` (validated), or `undefined` when it has
 * neither. An already-aborted signal is returned as it is: the call fails before sending.
 */
export function callSignal(
  options: { readonly signal?: unknown; readonly timeout?: unknown } | undefined,
  outer?: AbortSignal,
): AbortSignal | undefined {
  // The common call has no options: no list to build and filter per statement.
  if (options === undefined) return outer;
  const signal = options.signal;
  const timeout = options.timeout;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ValidationError("Cannot use signal: expected an AbortSignal", { field: "signal" });
  }
  checkTimeout(timeout);
  const signals: AbortSignal[] = [];
  if (outer !== undefined) signals.push(outer);
  if (signal !== undefined) signals.push(signal);
  if (timeout !== undefined) signals.push(AbortSignal.timeout(timeout));
  return signals.length <= 1 ? signals[0] : AbortSignal.any(signals);
}

/** How a helper's statement is sent: what aborts it, and what it is for the telemetry. */
export function helperCall(
  options: CallOptions | undefined,
  operation?: string,
  collection?: string,
): QueryCall | undefined {
  const signal = callSignal(options);
  if (operation === undefined) return signal === undefined ? undefined : { signal };
  return {
    operation,
    ...(collection === undefined ? {} : { collection }),
    ...(signal === undefined ? {} : { signal }),
  };
}

/**
 * Checks the statements of a `batch()`: an array of `{ sql, params? }`, each one statement
 * (several in one text would need the simple protocol, which a batch cannot use).
 */
export function checkBatch(statements: unknown): void {
  if (!Array.isArray(statements)) {
    throw new ValidationError("Cannot run batch: statements must be an array of { sql, params }", {
      field: "statements",
    });
  }
  for (const [i, statement] of statements.entries()) {
    if (typeof statement !== "object" || statement === null) {
      throw new ValidationError(
        `Cannot run batch: statement ${i} must be an object { sql, params }`,
        { field: "statements", statementIndex: i },
      );
    }
    const { sql, params } = statement as { sql?: unknown; params?: unknown };
    try {
      checkSql(sql, params);
    } catch (error) {
      const message = (error as Error).message;
      throw new ValidationError(
        `Cannot run batch: statement ${i}: ${message.slice(message.indexOf(": ") + 2)}`,
        { field: "statements", statementIndex: i, cause: error },
      );
    }
    if (splitStatements(sql as string).length !== 1) {
      throw new ValidationError(
        `Cannot run batch: statement ${i} holds ${
          splitStatements(sql as string).length
        } statements; give each its own entry`,
        { field: "statements", statementIndex: i },
      );
    }
  }
}

/**
 * Refuses the transaction options a savepoint inside a transaction cannot honour (its isolation,
 * read-only mode and read time are the outermost transaction's).
 */
export function nestedOptions(
  options: {
    readonly isolation?: unknown;
    readonly readOnly?: unknown;
    readonly asOfSystemTime?: unknown;
  } | undefined,
  what: string,
): void {
  for (const field of ["isolation", "readOnly", "asOfSystemTime"] as const) {
    if (options?.[field] !== undefined) {
      throw new ValidationError(
        `Cannot use ${field} for a nested ${what}: it is the outermost transaction's`,
        { field },
      );
    }
  }
}

/** Refuses a `transaction()` callback that is not a function, before anything is sent. */
export function checkCallback(fn: unknown): void {
  if (typeof fn !== "function") {
    throw new ValidationError("Cannot run transaction: the callback must be a function", {
      field: "fn",
    });
  }
}
