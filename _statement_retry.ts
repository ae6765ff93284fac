// When a statement sent outside a transaction (through the pool, not on a reserved connection)
// is sent again after it failed. Pure: the driver asks, and sleeps and resends as answered.
//
// A single statement outside a transaction runs in an implicit transaction of its own. When the
// server answers it with a serialization failure (40001) or a deadlock (40P01), that transaction
// rolled back: running it again is safe, as the transaction runner does for explicit ones.
// CockroachDB retries such statements itself while it can (before it sent any result); a 40001
// that reaches the client is one it could not retry. Text with several statements is not
// retried: one of them may be a COMMIT of its own.
import { backoffDelay } from "./_retry.ts";
import { errorCode, isFatal, RETRYABLE_CODES } from "./_errors.ts";
import { splitStatements } from "./_sql_scan.ts";
import { TransactionRetryError } from "./errors.ts";

/** The pool's settings for resending statements. */
export interface StatementRetrySettings {
  /** Resend on 40001/40P01 (the `retryStatements` option). */
  readonly enabled: boolean;
  /** Resends after a conflict, at most. */
  readonly maxRetries: number;
  readonly initialBackoff: number;
  readonly maxBackoff: number;
}

/** What to do after attempt `attempt` (1-based) of a statement failed with `error`. */
export type StatementDecision =
  | { readonly retry: true; readonly delayMs: number }
  | { readonly retry: false; readonly error: unknown };

// Texts already known to be one statement (or not), so that a hot statement is split once.
const single = new Map<string, boolean>();

function isSingleStatement(text: string): boolean {
  let answer = single.get(text);
  if (answer === undefined) {
    answer = splitStatements(text).length === 1;
    if (single.size >= 256) single.clear();
    single.set(text, answer);
  }
  return answer;
}

/** Decides whether a statement that failed outside a transaction is sent again. */
export function decideStatementRetry(
  error: unknown,
  attempt: number,
  text: string,
  settings: StatementRetrySettings,
  random: () => number = Math.random,
): StatementDecision {
  const code = errorCode(error);
  const conflict = code !== undefined && RETRYABLE_CODES.has(code) && !isFatal(error);
  if (!conflict || !settings.enabled || !isSingleStatement(text)) return { retry: false, error };
  if (attempt > settings.maxRetries) {
    return {
      retry: false,
      error: new TransactionRetryError(
        `Cannot run statement: still failing with ${code} after ${attempt} attempts`,
        { attempts: attempt, cause: error, code },
      ),
    };
  }
  return {
    retry: true,
    delayMs: backoffDelay(attempt, settings.initialBackoff, settings.maxBackoff, random),
  };
}
