// The transaction runner as a pure state machine: a generator that yields the steps to take
// (reserve a connection, defer or send a statement, run the callback, sleep) and receives their
// results. BEGIN is deferred: it travels with the callback's first statement, and RELEASE with
// COMMIT, in one write with one Sync, so that a transaction of N statements costs N + 1 round
// trips (docs/round-trips.md).
// `runAsync` (`_steps.ts`) drives it for the async database and `runSync` for the sync one, each
// with its own performer of the steps, so the retry protocol is written once.
import type { Dialect } from "./_sql.ts";
import { checkRetry, RETRY_DEFAULTS } from "./_config.ts";
import type { RetryInfo, TransactionOptions } from "./_options.ts";
import { errorCode, isConnectionLoss, isNodeAway, isRetryable } from "./_errors.ts";
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  TransactionRetryError,
  ValidationError,
} from "./errors.ts";

/** One step the driver of the state machine performs. */
export type TransactionStep =
  /** Release the current connection (if any) and reserve a fresh one. */
  | { readonly kind: "reserve" }
  /**
   * Send one statement on the reserved connection, the deferred ones in front of it (one write,
   * one Sync); answer its command tag. A deferred statement's failure is thrown as itself.
   */
  | { readonly kind: "query"; readonly text: string }
  /**
   * Keep these statements to send in front of the next statement on the connection, whoever
   * sends it (the callback's first statement, or the next `query` step), without a Sync of their
   * own: if one fails, nothing after it runs. Answer nothing.
   */
  | { readonly kind: "defer"; readonly texts: readonly string[] }
  /** Drop the deferred statements not sent yet; answer nothing. */
  | { readonly kind: "discard" }
  /** Run the caller's callback on a new transaction handle; answer its value. */
  | { readonly kind: "callback" }
  /** Wait; answer nothing. */
  | { readonly kind: "sleep"; readonly ms: number }
  /** Answer the connection's state. */
  | { readonly kind: "state" }
  /** Release the connection (finally); answer nothing. */
  | { readonly kind: "release" };

/** What the driver answers to a `state` step. */
export interface SessionState {
  /** The connection was closed under the transaction. */
  readonly lost: boolean;
  /** A statement of the callback failed with a retryable SQLSTATE, even if the callback caught it. */
  readonly sawRetryable: boolean;
  /**
   * The last statement that failed with the connection provably never ran: it was never
   * written, was queued behind another, or the server ended the session (a 57P error) before
   * any answer to it (docs/retry-safety.md). A COMMIT met so did not commit.
   */
  readonly unsent?: boolean;
  /**
   * A deferred statement of the protocol (BEGIN, its savepoint, RELEASE) failed: its error.
   * After a failed BEGIN nothing of the callback ran.
   */
  readonly deferredError?: unknown;
  /** Deferred statements of the protocol are still waiting for a statement to carry them. */
  readonly deferredUnsent?: boolean;
  /** The transaction status of the connection's last ReadyForQuery: `I`, `T` or `E`. */
  readonly status?: "I" | "T" | "E";
}

const SAVEPOINT = "cockroach_restart";
const ISOLATION: Readonly<Record<string, string>> = {
  "serializable": "SERIALIZABLE",
  "repeatable read": "REPEATABLE READ",
  "read committed": "READ COMMITTED",
};

/** Checks `asOfSystemTime` and returns it as SQL: a known function call or a quoted literal. */
export function asOfSystemTimeSql(value: string): string {
  if (typeof value !== "string" || value.trim() === "" || value.includes("\0")) {
    throw new ValidationError("Cannot use asOfSystemTime: expected a non-empty string", {
      field: "asOfSystemTime",
    });
  }
  const v = value.trim();
  if (
    /^(follower_read_timestamp\(\)|with_(min_timestamp|max_staleness)\('[^'\\]*'(,\s*(true|false))?\))$/i
      .test(v)
  ) {
    return v;
  }
  return `'${v.replaceAll("'", "''")}'`;
}

/**
 * The statements that open a transaction for the options and server: `BEGIN`, and on
 * CockroachDB its retry savepoint (one statement each, for the extended protocol).
 */
export function buildBegin(
  options: TransactionOptions,
  dialect: Dialect,
): [string, ...string[]] {
  const modes: string[] = [];
  if (options.isolation !== undefined) {
    const level = ISOLATION[options.isolation];
    if (level === undefined) {
      throw new ValidationError(
        `Cannot use isolation "${options.isolation}": expected serializable, repeatable read or read committed`,
        { field: "isolation" },
      );
    }
    modes.push(`ISOLATION LEVEL ${level}`);
  }
  if (options.asOfSystemTime !== undefined) {
    if (dialect !== "cockroach") {
      throw new ValidationError("Cannot use asOfSystemTime: the server is not CockroachDB", {
        field: "asOfSystemTime",
      });
    }
    modes.push(`AS OF SYSTEM TIME ${asOfSystemTimeSql(options.asOfSystemTime)}`);
  } else if (options.readOnly) {
    modes.push("READ ONLY");
  }
  const begin = modes.length === 0 ? "BEGIN" : `BEGIN TRANSACTION ${modes.join(", ")}`;
  // PostgreSQL keeps the snapshot across ROLLBACK TO SAVEPOINT, so a retry there needs a new
  // transaction and the savepoint would only cost a statement.
  return dialect === "cockroach" ? [begin, `SAVEPOINT ${SAVEPOINT}`] : [begin];
}

/** Full-jitter capped exponential backoff before retry number `retry` (1-based). */
export function backoffDelay(
  retry: number,
  initialBackoff: number,
  maxBackoff: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxBackoff, initialBackoff * 2 ** Math.min(retry - 1, 30));
  return Math.floor(cap * random());
}

/** The options of one transaction, checked, with the database's defaults applied. */
export type TransactionSettings =
  & TransactionOptions
  & Required<Pick<TransactionOptions, "maxRetries" | "initialBackoff" | "maxBackoff">>;

/** Validated options of one transaction, with the database's defaults applied. */
export function transactionSettings(
  options: TransactionOptions | undefined,
  defaults: TransactionOptions = RETRY_DEFAULTS,
): TransactionSettings {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new ValidationError("Cannot run transaction: options must be an object", {
      field: "options",
    });
  }
  const merged = { ...RETRY_DEFAULTS, ...defaults };
  for (const [key, value] of Object.entries(options ?? {})) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  checkRetry(merged);
  if (merged.deadline !== undefined && !(merged.deadline > 0)) {
    throw new ValidationError(
      `Cannot use deadline ${merged.deadline}: expected milliseconds above 0`,
      {
        field: "deadline",
      },
    );
  }
  if (merged.onRetry !== undefined && typeof merged.onRetry !== "function") {
    throw new ValidationError("Cannot use onRetry: expected a function", { field: "onRetry" });
  }
  return merged as TransactionSettings;
}

/**
 * The retry budget, one rule for transactions and batches: after failed attempt `attempt`
 * (`elapsedMs` since the first began), the backoff before the next one, or the
 * `TransactionRetryError` to give up with (retries spent, or the deadline would pass).
 */
export function nextRetry(
  settings: TransactionSettings,
  attempt: number,
  elapsedMs: number,
  error: Error,
  what: {
    readonly action: string;
    readonly failing: string;
    /** The code of the error when retries are spent (default `40001`). */
    readonly code?: string;
  },
): number | TransactionRetryError {
  const code = errorCode(error);
  if (attempt > settings.maxRetries) {
    return new TransactionRetryError(
      `Cannot ${what.action}: still failing with ${what.failing} after ${attempt} attempts`,
      { attempts: attempt, cause: error, ...(what.code === undefined ? {} : { code: what.code }) },
    );
  }
  const delayMs = backoffDelay(attempt, settings.initialBackoff, settings.maxBackoff);
  if (settings.deadline !== undefined && elapsedMs + delayMs > settings.deadline) {
    return new TransactionRetryError(
      `Cannot ${what.action}: deadline of ${settings.deadline} ms passed after ${attempt} attempts`,
      { attempts: attempt, cause: error, code: code ?? "40001" },
    );
  }
  return delayMs;
}

/**
 * The transaction protocol. Yields steps; returns the callback's value after a successful
 * commit; throws the callback's own error unchanged, `TransactionRetryError` when retries run
 * out, `AmbiguousCommitError` when the commit's fate is unknown.
 */
export function* transactionSteps<T>(
  options: TransactionSettings,
  dialect: Dialect,
  now: () => number = () => performance.now(),
): Generator<TransactionStep, T, unknown> {
  const begin = buildBegin(options, dialect);
  const cockroach = dialect === "cockroach";
  const started = now();
  let attempt = 0;
  let value: T | undefined;
  let needReserve = true;
  let needBegin = true;
  let open = false;
  // The error of a COMMIT cut off in an earlier attempt (idempotent transactions run again).
  let ambiguous: Error | undefined;
  try {
    for (;;) {
      attempt++;
      // "released": CockroachDB answered RELEASE SAVEPOINT cockroach_restart, which commits.
      let phase: "begin" | "body" | "commit" | "released" = "begin";
      // BEGIN was deferred in this attempt: until a statement carries it, nothing is open.
      let beginDeferred = false;
      try {
        if (needReserve) {
          try {
            yield { kind: "reserve" };
          } catch (error) {
            // No connection could be had. On the first attempt that is not a conflict to retry:
            // the server is down or refuses. After a connection was lost it is the node that went
            // away with it (a restart, a drain): the attempt is retried within the budget, as the
            // loss was. Anything else (credentials, a closed client, a cancel) ends the loop.
            if (attempt === 1 || !isNodeAway(error)) throw new Passthrough(giveUp(error as Error));
            throw error;
          }
          needReserve = false;
          needBegin = true;
        }
        if (needBegin) {
          yield { kind: "defer", texts: begin };
          open = true;
          beginDeferred = true;
          needBegin = false;
        }
        phase = "body";
        value = (yield { kind: "callback" }) as T;
        const after = (yield { kind: "state" }) as SessionState;
        if (after.deferredError !== undefined) {
          // BEGIN (or its savepoint) failed: whatever the callback made of that, nothing of it
          // ran in the transaction, and the error is BEGIN's.
          phase = "begin";
          throw after.deferredError;
        }
        // The connection may have closed under a callback that sent nothing more or caught the
        // error: COMMIT was never sent, so this is a loss before commit, not an ambiguous one.
        if (after.lost) {
          throw new ConnectionError("Connection lost before COMMIT was sent", {
            code: "CONNECTION_CLOSED",
          });
        }
        if (beginDeferred && after.deferredUnsent) {
          // The callback sent nothing: no transaction was opened, and nothing is to commit.
          yield { kind: "discard" };
          open = false;
          return value;
        }
        beginDeferred = false;
        phase = "commit";
        // RELEASE travels with COMMIT (one write, one Sync): a RELEASE that fails leaves COMMIT
        // unrun and the transaction open, to be rolled back to the savepoint and run again.
        if (cockroach) yield { kind: "defer", texts: [`RELEASE SAVEPOINT ${SAVEPOINT}`] };
        const tag = (yield { kind: "query", text: "COMMIT" }) as string;
        // COMMIT ends the transaction block whatever it answers (a failed COMMIT rolls back):
        // no ROLLBACK follows it (the server would warn 25P01). Should a connection stay in a
        // transaction all the same, the pool closes it rather than take it back.
        open = false;
        if (tag !== "COMMIT") {
          // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK and no error.
          const state = (yield { kind: "state" }) as SessionState;
          const error = new DatabaseError(
            "Cannot commit transaction: the server rolled it back because a statement in it failed",
            { code: state.sawRetryable ? "40001" : "TRANSACTION_ROLLED_BACK" },
          );
          if (!state.sawRetryable) throw new Passthrough(error);
          throw error;
        }
        return value;
      } catch (caught) {
        if (caught instanceof Passthrough) throw caught.error;
        let error = caught as Error;
        const state = (yield { kind: "state" }) as SessionState;
        if (state.deferredError !== undefined && phase === "body") {
          // BEGIN (or its savepoint) failed: what the callback threw came from that.
          phase = "begin";
          error = state.deferredError as Error;
        }
        if (
          phase === "commit" && cockroach && state.deferredError === undefined &&
          !state.deferredUnsent
        ) {
          // The deferred statements all answered before COMMIT failed: RELEASE did, and on
          // CockroachDB RELEASE SAVEPOINT cockroach_restart is the commit.
          phase = "released";
        }
        if (beginDeferred && state.deferredUnsent) {
          // The callback failed before it sent anything: BEGIN never left.
          yield { kind: "discard" };
          open = false;
        }
        beginDeferred = false;
        const lost = state.lost || isConnectionLoss(error);
        const code = errorCode(error);
        if (!lost && state.status !== undefined && phase !== "body") {
          // What is open now: nothing after a failed BEGIN or a failed COMMIT; the transaction
          // after a failed savepoint, or a RELEASE that left COMMIT unrun.
          open = state.status !== "I";
        }
        if (phase === "released" && lost) {
          // CockroachDB's RELEASE SAVEPOINT cockroach_restart is the commit: it answered, so the
          // transaction committed; the COMMIT that followed only ends it.
          open = false;
          return value as T;
        }
        if (
          (phase === "commit" || phase === "released") && (lost || code === "40003") &&
          !(lost && state.unsent)
        ) {
          open = false;
          if (!options.idempotent) {
            if (error instanceof AmbiguousCommitError) throw error;
            throw new AmbiguousCommitError(
              `Cannot tell whether the transaction committed: ${error.message}`,
              { cause: error },
            );
          }
          ambiguous ??= error;
          needReserve = true;
        } else if (lost) {
          // Nothing was committed: the connection went away before COMMIT was sent, or the
          // server ended the session before it answered COMMIT (it then did not commit).
          open = false;
          needReserve = true;
        } else if (
          isRetryable(error) || (phase === "body" && state.sawRetryable && isAborted(code))
        ) {
          if (!open) {
            // Nothing is open: COMMIT ended the transaction, or BEGIN never ran.
            needBegin = true;
          } else if (cockroach) {
            try {
              yield { kind: "discard" };
              yield { kind: "query", text: `ROLLBACK TO SAVEPOINT ${SAVEPOINT}` };
            } catch {
              yield* rollback();
              needBegin = true;
            }
          } else {
            yield* rollback();
            needBegin = true;
          }
        } else {
          if (open) yield* rollback();
          throw error;
        }
        const next = nextRetry(options, attempt, now() - started, error, {
          action: "commit transaction",
          failing: code ?? "a retryable error",
        });
        if (next instanceof TransactionRetryError) {
          if (open) yield* rollback();
          throw giveUp(next);
        }
        const delayMs = next;
        options.onRetry?.({ attempt, delayMs, error } satisfies RetryInfo);
        if (delayMs > 0) yield { kind: "sleep", ms: delayMs };
      }
    }
  } finally {
    // Deferred statements never ride with ROLLBACK: one failing would leave it unrun.
    yield { kind: "discard" };
    if (open) {
      try {
        yield { kind: "query", text: "ROLLBACK" };
      } catch {
        // The connection is gone or dirty; the driver drops it on release.
      }
    }
    yield { kind: "release" };
  }

  /**
   * The error the loop ends with when it gives up. Once a COMMIT was cut off (an idempotent
   * transaction runs again after that), giving up leaves its fate unknown: the error says so.
   */
  function giveUp(error: Error): Error {
    if (ambiguous === undefined) return error;
    return new AmbiguousCommitError(
      `Cannot tell whether the transaction committed: a COMMIT was cut off (${ambiguous.message}), and running it again failed: ${error.message}`,
      { cause: error },
    );
  }

  function* rollback(): Generator<TransactionStep, void, unknown> {
    yield { kind: "discard" };
    try {
      yield { kind: "query", text: "ROLLBACK" };
    } catch {
      needReserve = true;
    }
    open = false;
  }
}

// 25P02: in failed transaction; a statement ran after a caught 40001 inside the callback.
function isAborted(code: string | undefined): boolean {
  return code === "25P02";
}

/** Wraps an error that leaves the loop as it is, without being classified. */
class Passthrough {
  constructor(readonly error: Error) {}
}
