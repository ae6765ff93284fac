// When a statement sent outside a transaction (through the pool, not on a reserved connection)
// is sent again after it failed, and when its fate is unknown. Pure: the driver reports what it
// saw, and sleeps and resends as answered. The rule and its sources: docs/retry-safety.md.
//
// A conflict: a single statement outside a transaction runs in an implicit transaction of its
// own. When the server answers it with a serialization failure (40001) or a deadlock (40P01),
// that transaction rolled back: running it again is safe, as the transaction runner does for
// explicit ones. CockroachDB retries such statements itself while it can (before it sent any
// result); a 40001 that reaches the client is one it could not retry. Text with several
// statements is not retried: one of them may be a COMMIT of its own.
//
// A lost connection: the statement is sent again only when it provably never ran — it was never
// written, it was still queued behind another statement's ReadyForQuery, or the server ended
// the session (a 57P error) before any answer to it and it is plain DML, which cannot commit by
// itself. Anything else may have committed: AmbiguousCommitError, never a resend.
import { backoffDelay } from "./_retry.ts";
import { errorCode, isConnectionLoss, isFatal, RETRYABLE_CODES } from "./_errors.ts";
import { splitStatements, SqlScanner } from "./_sql_scan.ts";
import { AmbiguousCommitError, TransactionRetryError } from "./errors.ts";

/** The pool's settings for resending statements. */
export interface StatementRetrySettings {
  /** Resend on 40001/40P01 and after a loss that provably came first (`retryStatements`). */
  readonly enabled: boolean;
  /** Resends at most, conflicts and losses together. */
  readonly maxRetries: number;
  readonly initialBackoff: number;
  readonly maxBackoff: number;
}

/** What the driver saw of a statement whose connection was lost (the vendored patch 0013). */
export interface LossObservation {
  /** Its bytes were handed to the socket. */
  readonly written: boolean;
  /** A message answering it arrived after that. */
  readonly answered: boolean;
  /** It was still queued behind another statement's ReadyForQuery. */
  readonly pipelined: boolean;
  /** The SQLSTATE of the server's session-end error that came before the close, if any. */
  readonly endedBy: string | undefined;
}

/** What a lost statement's fate is, by the rule of docs/retry-safety.md. */
type LossFate = "never-ran" | "unknown";

/** What to do after attempt `attempt` (1-based) of a statement failed with `error`. */
export type StatementDecision =
  | { readonly retry: true; readonly delayMs: number }
  | { readonly retry: false; readonly error: unknown };

// Driver codes of a connection that ended after it was made.
const LOST_AFTER_CONNECT: ReadonlySet<string> = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
]);

// The driver's code is the error's, or its cause's when the server said why it ended.
function lostAfterConnect(error: unknown): boolean {
  const cause = (error as { cause?: unknown }).cause;
  return LOST_AFTER_CONNECT.has(errorCode(error) ?? "") ||
    LOST_AFTER_CONNECT.has(errorCode(cause) ?? "");
}

// Facts about texts, so that a hot statement is read once.
const facts = new Map<string, { single: boolean; dml: boolean }>();

const DML = new Set([
  "select",
  "insert",
  "update",
  "delete",
  "upsert",
  "merge",
  "with",
  "values",
  "table",
]);

function factsOf(text: string): { single: boolean; dml: boolean } {
  let known = facts.get(text);
  if (known === undefined) {
    const single = splitStatements(text).length === 1;
    known = { single, dml: single && DML.has(firstWord(text)) };
    if (facts.size >= 256) facts.clear();
    facts.set(text, known);
  }
  return known;
}

// The first keyword, past spaces, comments and opening parentheses.
function firstWord(text: string): string {
  const scanner = new SqlScanner(text);
  while (scanner.next()) {
    const kind = scanner.kind;
    if (kind === "space" || kind === "comment") continue;
    const token = text.slice(scanner.start, scanner.end);
    if (kind === "other" && token === "(") continue;
    return kind === "word" ? token.toLowerCase() : "";
  }
  return "";
}

/** The fate of a statement that failed with a lost connection, by what the driver saw. */
function lossFate(text: string, seen: LossObservation): LossFate {
  if (!seen.written || seen.pipelined) return "never-ran";
  if (!seen.answered && seen.endedBy?.startsWith("57P") && factsOf(text).dml) return "never-ran";
  return "unknown";
}

/**
 * Decides whether a statement that failed outside a transaction is sent again. `seen` is what
 * the driver saw of it, when its connection was lost.
 */
export function decideStatementRetry(
  error: unknown,
  attempt: number,
  text: string,
  settings: StatementRetrySettings,
  seen?: LossObservation,
  random: () => number = Math.random,
): StatementDecision {
  // A connection that could not be made (refused, timed out, the server's own refusal at
  // start-up) is the connection layer's to fail over; only a statement on a connection that was
  // made and then ended is judged here.
  if (seen !== undefined && isConnectionLoss(error) && lostAfterConnect(error)) {
    if (lossFate(text, seen) === "unknown") {
      return {
        retry: false,
        error: new AmbiguousCommitError(
          `Cannot tell whether the statement committed: ${(error as Error).message}`,
          { cause: error },
        ),
      };
    }
    // It never ran: the caller gets the ConnectionError (which then means "not applied") when
    // resends are off or spent.
    if (!settings.enabled || attempt > settings.maxRetries) return { retry: false, error };
    return { retry: true, delayMs: 0 };
  }
  const code = errorCode(error);
  const conflict = code !== undefined && RETRYABLE_CODES.has(code) && !isFatal(error);
  if (!conflict || !settings.enabled || !factsOf(text).single) return { retry: false, error };
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
