// One statement on a session of the pool: its values checked before anything is sent, the
// vendored driver's options, an abort, the server's types read when a statement first meets one,
// stale parameter types and cached plans answered by one more send; COPY; and the pool's resend
// loop for a statement that failed where docs/retry-safety.md says sending it again is safe.
import { Buffer } from "node:buffer";
import type { DriverHooks, QueryOptions, QueryResult } from "./_driver.ts";
import {
  type CopyQuery,
  type PgConnection,
  type PgResult,
  type postgresTypes,
  type ReservedSql,
  type Sql,
  toResult,
} from "./_driver_pg.ts";
import { type PoolTypes, signatureOf, STALE_TYPE_CODES, UNKNOWN_TYPE } from "./_driver_types.ts";
import { isConnectionLoss, isServerError, toDatabaseError } from "./_errors.ts";
import {
  decideStatementRetry,
  type LossObservation,
  type StatementRetrySettings,
} from "./_statement_retry.ts";
import { DatabaseError, ValidationError } from "./errors.ts";

/** What a statement of the pool works with, and the pool's counts it keeps. */
export interface StatementPool {
  readonly sql: Sql;
  /** The hosts, for error messages. */
  readonly hostPorts: string;
  /** `host:port` of the host at `index`. */
  hostPort(index: number): string;
  readonly types: PoolTypes;
  readonly hooks: DriverHooks;
  /** When a statement of the pool is sent again (docs/retry-safety.md). */
  readonly retry: StatementRetrySettings;
  /** Statements and reserved connections of ours not yet settled (see `end()`). */
  inFlight: number;
  /** Set by `end()`: nothing is sent again once the pool is closing. */
  ending: boolean;
}

/** How a chain member is sent (the vendored driver's query options, patch 0019). */
export interface ChainOptions extends QueryOptions {
  /** `false`: sent without its Sync; the chain goes on with the next statement. */
  readonly sync?: false;
  /** Shared by the members: set to the failure that ends the chain. */
  readonly chain: { failed?: unknown };
}

const SIMPLE = Object.freeze({ simple: true, prepare: false });
const EXTENDED_PREPARED = Object.freeze({ simple: false, prepare: true });
const EXTENDED = Object.freeze({ simple: false, prepare: false });

// Values that would not arrive as given are refused before anything is sent: a string with a
// lone surrogate (it would be stored with U+FFFD in its place) and an invalid Date. postgres.js
// also types an array parameter by its first element (an array of bigints is sent as one int8,
// so `= ANY($1)` fails); an array is sent untyped and the server names its type.
export function prepareParams(
  s: { typed: (value: unknown, type: number) => unknown },
  params: readonly unknown[],
): readonly unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p === undefined) {
      throw badParam(i, "the value is undefined (use null for NULL)");
    } else if (typeof p === "boolean") {
      // postgres.js types a boolean as bool, which a json/jsonb column refuses; untyped, the
      // server names the type and the matching serializer is used.
      (out ??= [...params])[i] = s.typed(p, 0);
    } else if (typeof p === "number") {
      // String(-0) is "0": send the sign.
      if (Object.is(p, -0)) (out ??= [...params])[i] = "-0";
    } else if (typeof p === "string") {
      if (!p.isWellFormed()) throw badParam(i, "the string holds a lone surrogate");
    } else if (p instanceof Date) {
      if (Number.isNaN(p.getTime())) throw badParam(i, "the Date is invalid");
    } else if (Array.isArray(p)) {
      checkElements(p, i);
      (out ??= [...params])[i] = s.typed(p, 0);
    }
  }
  return out ?? params;
}

function checkElements(values: readonly unknown[], i: number): void {
  for (const v of values) {
    if (typeof v === "string" && !v.isWellFormed()) {
      throw badParam(i, "an element holds a lone surrogate");
    }
    if (v instanceof Date && Number.isNaN(v.getTime())) {
      throw badParam(i, "an element is an invalid Date");
    }
    if (Array.isArray(v)) checkElements(v, i);
  }
}

function badParam(i: number, why: string): ValidationError {
  return new ValidationError(`Cannot send parameter $${i + 1}: ${why}`, { field: "params" });
}

// A statement the server cancelled (57014), or one postgres.js took out of its queue.
function isCancel(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { code?: unknown }).code === "57014";
}

/** The error of a call whose signal aborted it: `57014` once sent, `ABORTED` before. */
export function aborted(signal: AbortSignal, sent: boolean): DatabaseError {
  const reason = signal.reason;
  const why = reason instanceof Error ? reason.message : String(reason);
  return new DatabaseError(
    sent
      ? `Cannot execute query: cancelled on abort (${why})`
      : `Cannot execute query: aborted before it was sent (${why})`,
    { code: sent ? "57014" : "ABORTED", cause: reason },
  );
}

function isCachedPlanError(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { code?: unknown }).code === "0A000" &&
    /cached plan must not change result type/i.test(String((error as Error).message));
}

// The result, with the connection's host:port when asked (the vendored driver notes which
// host ran the query).
function answer(
  pool: StatementPool,
  result: PgResult | PgResult[],
  options: QueryOptions | undefined,
  pending: Promise<PgResult>,
): QueryResult {
  if (!options?.host) return toResult(result);
  const index = (pending as unknown as { hostIndex?: number }).hostIndex ?? 0;
  return { ...toResult(result), host: pool.hostPort(index) };
}

/**
 * Sends one statement on `s` (the pool, or a reserved connection): `onexecute` is told the
 * connection that runs it, `observe` what the driver saw of it when its connection was lost;
 * `ready` are its values, when the caller checked them already (a chain).
 */
export function run(
  pool: StatementPool,
  s: Sql | ReservedSql,
  text: string,
  params: readonly unknown[],
  options: QueryOptions | ChainOptions | undefined,
  onexecute?: (c: PgConnection) => boolean,
  observe?: (seen: LossObservation) => void,
  ready?: readonly unknown[],
): Promise<QueryResult> {
  const simple = options?.simple ?? params.length === 0;
  const signal = options?.signal;
  if (signal?.aborted) return Promise.reject(aborted(signal, false));
  const chain = options !== undefined && "chain" in options ? options : undefined;
  // Shared option objects (postgres.js copies them); a fresh one only with `onexecute` or in a
  // chain.
  const base = simple ? SIMPLE : (options?.prepare ?? true) ? EXTENDED_PREPARED : EXTENDED;
  const queryOptions = chain !== undefined
    ? { ...base, onexecute, chain: chain.chain, ...(chain.sync === false ? { sync: false } : {}) }
    : onexecute
    ? { ...base, onexecute }
    : base;
  let pending: Promise<PgResult>;
  try {
    pending = s.unsafe(
      text,
      (ready ?? prepareParams(s, params)) as unknown[] as postgresTypes.ParameterOrJSON<never>[],
      queryOptions,
    ) as unknown as Promise<PgResult>;
  } catch (error) {
    return Promise.reject(toDatabaseError(error, pool.hostPorts));
  }
  // An abort cancels the statement: postgres.js sends a cancel request when it runs, and takes
  // it out of its queue when it has not been sent.
  // (The listener is made only for a statement that has a signal.)
  const cancel = signal === undefined
    ? undefined
    : () => void (pending as unknown as { cancel(): unknown }).cancel();
  if (cancel !== undefined) signal?.addEventListener("abort", cancel, { once: true });
  // `.then` rather than an async function: one promise and one await less per statement.
  pool.inFlight++;
  return pending.then((result) => {
    pool.inFlight--;
    if (cancel !== undefined) signal?.removeEventListener("abort", cancel);
    const unknown = pool.types.unknownColumns(result);
    if (unknown !== undefined) {
      return pool.types.parseUnknown(s, result, unknown).then((read) =>
        answer(pool, read, options, pending)
      );
    }
    return options?.host ? answer(pool, result, options, pending) : toResult(result);
  }, async (error) => {
    pool.inFlight--;
    if (cancel !== undefined) signal?.removeEventListener("abort", cancel);
    const knownTypes = (pending as unknown as { knownTypes?: boolean }).knownTypes === true;
    if (knownTypes && STALE_TYPE_CODES.has((error as { code?: string })?.code ?? "")) {
      // Parsed with the types the pool kept, which may be stale: forgotten, so that the next
      // run describes it. Parse failed, so nothing of it ran: the pool sends it again.
      pool.types.statementTypes.delete(signatureOf(text, ready ?? prepareParams(s, params)));
      if (s === pool.sql && chain === undefined) {
        return run(pool, s, text, params, options, onexecute, observe);
      }
    }
    if ((error as { code?: unknown })?.code === UNKNOWN_TYPE && chain === undefined) {
      // Refused before anything of it was written: read the types, then send it again.
      await pool.types.readTypes(s, [(error as unknown as { type: number }).type]).catch(
        (failure) => {
          throw toDatabaseError(failure, pool.hostPorts);
        },
      );
      return run(pool, s, text, params, options, onexecute, observe);
    }
    if (signal?.aborted && isCancel(error)) {
      throw aborted(signal, (pending as unknown as { written?: boolean }).written === true);
    }
    // What the vendored driver saw of the statement (patch 0013), for the rule of
    // docs/retry-safety.md.
    if (observe !== undefined && isConnectionLoss(error)) {
      const q = pending as unknown as {
        written?: boolean;
        answered?: boolean;
        pipelined?: boolean;
      };
      const cause = (error as { cause?: unknown }).cause;
      observe({
        written: q.written === true,
        answered: q.answered === true,
        pipelined: q.pipelined === true,
        endedBy: isServerError(cause) ? (cause as { code: string }).code : undefined,
      });
    }
    // (Not in a chain: the statements sent with it decide what may run after it.)
    if (isCachedPlanError(error) && !simple && chain === undefined) {
      // A schema change invalidated the prepared statement; run it once unprepared.
      try {
        return toResult(
          await s.unsafe(text, params as unknown[] as postgresTypes.ParameterOrJSON<never>[], {
            prepare: false,
          }) as unknown as PgResult,
        );
      } catch (again) {
        throw toDatabaseError(again, pool.hostPorts);
      }
    }
    throw toDatabaseError(error, pool.hostPorts);
  });
}

/** Runs `COPY … FROM STDIN` on `s` with the given text-format data. */
export async function copy(
  pool: StatementPool,
  s: Sql | ReservedSql,
  text: string,
  data: string,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted) throw aborted(signal, false);
  let cancel: (() => void) | undefined;
  try {
    // postgres.js 3.4.9 resolves the COPY query with its stream and then drops a server
    // error that arrives after the data (a duplicate key, a bad value): the stream never
    // finishes. The error still reaches the query's reject function, so it is caught there.
    const query = s.unsafe(text) as unknown as CopyQuery;
    cancel = () => void (query as unknown as { cancel(): unknown }).cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    let fail: (error: unknown) => void = () => {};
    const failed = new Promise<never>((_, reject) => fail = reject);
    const reject = query.reject;
    query.reject = (error: unknown) => {
      fail(error);
      return reject(error);
    };
    const writable = await query.writable();
    await Promise.race([
      failed,
      new Promise<void>((resolve, reject) => {
        writable.once("error", reject);
        writable.once("finish", resolve);
        writable.end(Buffer.from(data, "utf8"));
      }),
    ]);
  } catch (error) {
    if (signal?.aborted && isCancel(error)) throw aborted(signal, true);
    throw toDatabaseError(error, pool.hostPorts);
  } finally {
    if (cancel) signal?.removeEventListener("abort", cancel);
  }
}

/**
 * A statement of the pool, sent again while the rules of _statement_retry.ts say it is safe.
 * The first attempt costs nothing extra: the loop starts in the rejection handler.
 */
export function pooled(
  pool: StatementPool,
  text: string,
  params: readonly unknown[],
  options: QueryOptions | undefined,
  attempt: number,
): Promise<QueryResult> {
  let seen: LossObservation | undefined;
  const sent = run(pool, pool.sql, text, params, options, undefined, (s) => seen = s);
  return (attempt === 1 ? sent : sent.then((r) => ({ ...r, attempts: attempt }))).catch(
    (error) => {
      const decision = pool.ending
        ? { retry: false as const, error }
        : decideStatementRetry(error, attempt, text, pool.retry, seen);
      if (!decision.retry) throw decision.error;
      if (options?.signal?.aborted) throw error;
      pool.hooks.resent?.((error as { code?: string }).code ?? "UNKNOWN");
      return new Promise<void>((resolve) => setTimeout(resolve, decision.delayMs)).then(() =>
        pooled(pool, text, params, options, attempt + 1)
      );
    },
  );
}
