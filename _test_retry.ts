// Test support for the transaction protocol's tests (_retry*_test.ts): the statements it sends,
// server and connection errors, and `drive()`, which runs `transactionSteps()` against a script
// of the server's answers and records every step.
import {
  buildBegin,
  type SessionState,
  transactionSettings,
  type TransactionStep,
  transactionSteps,
} from "./_retry.ts";
import type { TransactionOptions } from "./_options.ts";
import type { Dialect } from "./_sql.ts";
import { ConnectionError, DatabaseError } from "./errors.ts";

export const SAVEPOINT = "cockroach_restart";
export const PG_BEGIN = "BEGIN";
export const CRDB_BEGIN = `BEGIN; SAVEPOINT ${SAVEPOINT}`;
export const RELEASE = `RELEASE SAVEPOINT ${SAVEPOINT}`;
export const ROLLBACK_TO = `ROLLBACK TO SAVEPOINT ${SAVEPOINT}`;
/** The callback's first statement, carrying PostgreSQL's deferred BEGIN. */
export const PG_FIRST = `callback (${PG_BEGIN})`;
/** The callback's first statement, carrying CockroachDB's deferred BEGIN and savepoint. */
export const CRDB_FIRST = `callback (${CRDB_BEGIN})`;
/** RELEASE and COMMIT, one write. */
export const RELEASE_COMMIT = `${RELEASE} + COMMIT`;

export function serverError(code: string, message = `server said ${code}`): DatabaseError {
  return new DatabaseError(`Cannot execute query: ${message}`, { code, severity: "ERROR" });
}

export function lostError(): ConnectionError {
  return new ConnectionError('Connection to "h:1" lost: the server closed it', {
    code: "CONNECTION_CLOSED",
  });
}

/** What the scripted driver answers; each hook sees the attempt (1-based: callbacks run so far). */
export interface Script {
  /**
   * Answer to a statement sent (the deferred ones included): a command tag, or throw. Default:
   * the statement's verb.
   */
  query?(text: string, attempt: number): string;
  /** The callback: a value, or throw. It runs after its first statement was answered. */
  callback?(attempt: number): unknown;
  /** The callback sends no statement: the deferred BEGIN stays unsent. */
  silent?(attempt: number): boolean;
  /** The callback catches its first statement's failure (a deferred BEGIN's) and goes on. */
  swallows?(attempt: number): boolean;
  /** Overrides of the answer to `state`. */
  state?(attempt: number): Partial<SessionState>;
  /** Answer to `reserve`: nothing, or throw. */
  reserve?(count: number): void;
}

export interface Run<T> {
  /**
   * Every step: `reserve`, `callback`, `state`, `release`, `sleep <ms>`, or what was sent, a
   * chain as `A + B` (a callback whose first statement carried deferred ones as
   * `callback (A; B)`).
   */
  readonly log: string[];
  readonly value?: T;
  readonly error?: unknown;
}

/** Drives the state machine the way the async database does, with scripted answers. */
export function drive<T>(
  script: Script,
  options: TransactionOptions = {},
  dialect: Dialect = "postgres",
  now?: () => number,
): Run<T> {
  const settings = transactionSettings({ initialBackoff: 0, ...options });
  const steps = transactionSteps<T>(settings, dialect, now);
  const log: string[] = [];
  let attempt = 0;
  let reserves = 0;
  // The performer's link: deferred statements, the failure of one, the connection's status.
  let pending: string[] = [];
  let deferredError: unknown;
  let status: "I" | "T" | "E" = "I";
  // Sends the deferred statements, then `text` if any; the first failure ends the chain.
  const send = (text: string | undefined): string | undefined => {
    const deferred = pending;
    pending = [];
    let tag: string | undefined;
    for (const [i, t] of [...deferred, ...(text === undefined ? [] : [text])].entries()) {
      try {
        tag = script.query?.(t, attempt) ?? t.split(/[ ;]/)[0];
      } catch (error) {
        if (i < deferred.length) deferredError ??= error;
        status = t === PG_BEGIN || t.startsWith("BEGIN ") || t.startsWith("COMMIT") ||
            t === "ROLLBACK"
          ? "I"
          : "E";
        throw error;
      }
      if (t.startsWith("BEGIN")) status = "T";
      if (t === "COMMIT" || t === "ROLLBACK") status = "I";
    }
    return tag;
  };
  let input: { value?: unknown; error?: unknown } = {};
  for (let guard = 0; guard < 1000; guard++) {
    let next: IteratorResult<TransactionStep, T>;
    try {
      next = "error" in input ? steps.throw(input.error) : steps.next(input.value);
    } catch (error) {
      return { log, error };
    }
    if (next.done) return { log, value: next.value };
    const step = next.value;
    try {
      switch (step.kind) {
        case "reserve":
          log.push("reserve");
          pending = [];
          status = "I";
          script.reserve?.(++reserves);
          input = { value: undefined };
          break;
        case "defer":
          deferredError = undefined;
          pending.push(...step.texts);
          input = { value: undefined };
          break;
        case "discard":
          pending = [];
          deferredError = undefined;
          input = { value: undefined };
          break;
        case "query": {
          log.push([...pending, step.text].join(" + "));
          input = { value: send(step.text) };
          break;
        }
        case "callback": {
          attempt++;
          const silent = script.silent?.(attempt) ?? false;
          log.push(
            silent || pending.length === 0 ? "callback" : `callback (${pending.join("; ")})`,
          );
          if (!silent && pending.length > 0) {
            try {
              send(undefined);
            } catch (error) {
              if (!(script.swallows?.(attempt) ?? false)) throw error;
            }
          }
          input = { value: script.callback?.(attempt) };
          break;
        }
        case "state":
          log.push("state");
          input = {
            value: {
              lost: false,
              sawRetryable: false,
              deferredError,
              deferredUnsent: pending.length > 0,
              status,
              ...script.state?.(attempt),
            } satisfies SessionState,
          };
          break;
        case "sleep":
          log.push(`sleep ${step.ms}`);
          input = { value: undefined };
          break;
        case "release":
          log.push("release");
          input = { value: undefined };
          break;
      }
    } catch (error) {
      input = { error };
    }
  }
  throw new Error("The state machine did not finish within 1000 steps");
}

/** buildBegin()'s statements as one text. */
export function beginText(options: TransactionOptions, dialect: Dialect): string {
  return buildBegin(options, dialect).join("; ");
}

/** Runs `fn` with `Math.random` answering `value`. */
export function withRandom<T>(value: number, fn: () => T): T {
  const saved = Math.random;
  Math.random = () => value;
  try {
    return fn();
  } finally {
    Math.random = saved;
  }
}
