// What an `AsyncQueryable` runs on: the pool, or the connection of one transaction attempt
// (whose batches run under a savepoint), and the async transaction runner, which takes the steps
// of `_retry.ts` with awaits. Also the lookups the CRUD helpers cache per database: primary keys
// (for an upsert on PostgreSQL) and json columns (for COPY).
import type { TransactionOptions, UpsertOptions } from "./_options.ts";
import type { QueryResult, ReservedSession, Session } from "./_driver.ts";
import { isRetryable } from "./_errors.ts";
import type { TransactionContext } from "./_internal.ts";
import { type Pool, statementOptions } from "./_pool.ts";
import {
  type SessionState,
  type TransactionSettings,
  transactionSettings,
  transactionSteps,
} from "./_retry.ts";
import { type Dialect, quoteTableName, type Row, type UpsertPlan } from "./_sql.ts";
import { jsonText } from "./_serialize.ts";
import { runAsync, sleep } from "./_steps.ts";
import {
  applyLinkOp,
  BatchFailure,
  batchLinked,
  type BatchMember,
  flushLinked,
  type Link,
  newLink,
  type Observe,
  protocolPending,
  savepointOutcome,
  sendLinked,
} from "./_link.ts";
import { callSignal, nestedOptions } from "./_checks.ts";
import { poolBatch } from "./_batch.ts";
import { aborted } from "./_driver.ts";
import type { Observer, QueryCall } from "./_observe.ts";
import { DatabaseError, ValidationError } from "./errors.ts";

/** What an `AsyncQueryable` runs on: the pool, or the connection of one transaction attempt. */
export interface Runner {
  query(text: string, params?: readonly unknown[], call?: QueryCall): Promise<QueryResult>;
  copyIn(text: string, data: string, call?: QueryCall): Promise<void>;
  dialect(): Promise<Dialect>;
  /**
   * A connection for a cursor, and whether the cursor needs its own transaction; its statements
   * are observed like any other.
   */
  cursorSession(): Promise<{ session: Session; own: boolean; release(): void }>;
  /**
   * Runs the statements as one transaction, sent together (on a transaction handle, under a
   * savepoint of its transaction). Rejects with a `BatchFailure` (the failed statement's index
   * and error) when one of them failed: the batch was rolled back.
   */
  batch(
    members: readonly BatchMember[],
    options: TransactionOptions | undefined,
  ): Promise<QueryResult[]>;
  /**
   * Runs `fn` under a savepoint of the transaction (a transaction handle's runner only): its
   * first statement carries the savepoint; if it returns, the savepoint's release travels with
   * the next statement; if it throws, the rollback to it, unless the error is the outermost
   * transaction's to retry.
   */
  nest<T>(fn: () => Promise<T>): Promise<T>;
  readonly tables: TableCache;
  /** What the database tells about its work. */
  readonly observer: Observer;
}

/** What a database learnt about its tables, by quoted name: looked up once, shared by its handles. */
export interface TableCache {
  readonly primaryKeys: Map<string, readonly string[]>;
  /** The json and jsonb columns, which `COPY` needs encoded as JSON. */
  readonly jsonColumns: Map<string, readonly string[]>;
}

export async function upsertPlan(
  runner: Runner,
  table: string,
  options: UpsertOptions | undefined,
): Promise<UpsertPlan> {
  const dialect = await runner.dialect();
  if (options?.conflictColumns !== undefined || dialect === "cockroach") {
    return { conflictColumns: options?.conflictColumns, dialect };
  }
  return { conflictColumns: await primaryKey(runner, table), dialect };
}

async function primaryKey(runner: Runner, table: string): Promise<readonly string[]> {
  const quoted = quoteTableName(table);
  const cache = runner.tables.primaryKeys;
  const cached = cache.get(quoted);
  if (cached) return cached;
  const { rows } = await runner.query(
    `SELECT a.attname AS "name" FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = $1::regclass AND i.indisprimary
      ORDER BY array_position(i.indkey, a.attnum)`,
    [quoted],
  );
  if (rows.length === 0) {
    throw new ValidationError(
      `Cannot upsert into "${table}": it has no primary key, so conflictColumns are needed`,
      { field: "conflictColumns" },
    );
  }
  const key = rows.map((r) => String(r.name));
  cache.set(quoted, key);
  return key;
}

export async function jsonColumns(runner: Runner, table: string): Promise<readonly string[]> {
  const quoted = quoteTableName(table);
  const cache = runner.tables.jsonColumns;
  const cached = cache.get(quoted);
  if (cached) return cached;
  const { rows } = await runner.query(
    `SELECT attname AS "name" FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
        AND atttypid IN ('json'::regtype, 'jsonb'::regtype)`,
    [quoted],
  );
  const names = rows.map((r) => String(r.name));
  cache.set(quoted, names);
  return names;
}

export function jsonEncoded(record: Row, json: ReadonlySet<string>): Row {
  const out: Row = { ...record };
  for (const column of json) {
    const value = out[column];
    if (value === null || value === undefined) continue;
    try {
      out[column] = jsonText(value);
    } catch (error) {
      throw new ValidationError(
        `Cannot write column "${column}" as JSON: ${(error as Error).message}`,
        { field: column, cause: error },
      );
    }
  }
  return out;
}

// One statement runs as is; several run as a batch (one transaction, sent together; under a
// savepoint in a transaction, so that a chunk refused by the client takes the chunks sent with
// it), recorded as one batch operation. A failure is the failed statement's own error.
export function runStatements(
  runner: Runner,
  statements: readonly { text: string; params: unknown[] }[],
  call?: QueryCall,
): Promise<QueryResult[]> {
  const first = statements[0];
  if (statements.length === 1 && first !== undefined) {
    return runner.query(first.text, first.params, call).then((r) => [r]);
  }
  return runner.observer.batch(
    () => statements.map((s) => s.text).join("; "),
    { ...call, batchSize: statements.length },
    () =>
      runner.batch(statements, call?.signal === undefined ? undefined : { signal: call.signal })
        .catch((failure) => {
          throw failure instanceof BatchFailure ? failure.error : failure;
        }),
  );
}

/** The runner of a database: statements on any connection of its pool. */
export function poolRunner(pool: Pool, tables: TableCache, retry: TransactionOptions): Runner {
  const observer = pool.observer;
  return {
    query: (text, params, call) => pool.query(text, params, call),
    copyIn: (text, data, call) => pool.copyIn(text, data, call),
    dialect: () => pool.dialect(),
    cursorSession: async () => {
      const session = await pool.reserve();
      return {
        session: observed(session, observer, false),
        own: true,
        release: () => session.release(),
      };
    },
    batch: (members, options) => poolBatch(pool, members, transactionSettings(options, retry)),
    nest: () => Promise.reject(new TypeError("Cannot nest a transaction outside one")),
    tables,
    observer,
  };
}

/** A session whose statements go through the observer (hook, spans). */
function observed(session: Session, observer: Observer, retry: boolean): Session {
  return {
    query: (text, params = [], options) =>
      observer.statement(
        text,
        params,
        retry ? { retry } : undefined,
        () => session.query(text, params, options),
      ),
    copyIn: (text, data, signal) => session.copyIn(text, data, signal),
  };
}

/** The runner of one transaction attempt: statements on its connection until it ends. */
export function attemptRunner(
  context: TransactionContext,
  dialect: Dialect,
  tables: TableCache,
  observer: Observer,
): Runner {
  const check = (): void => {
    if (context.closed) {
      throw new DatabaseError("Cannot use transaction: it has already ended", {
        code: "TRANSACTION_CLOSED",
      });
    }
  };
  let savepoints = 0;
  let nested = 0;
  const retry = context.attempt > 1;
  // The deferred statements (BEGIN, …) are observed as statements of their own.
  const observeDeferred: Observe = (text, send) =>
    observer.statement(text, [], retry ? { retry } : undefined, send);
  // A statement's own signal (its `signal`/`timeout`) and the transaction's abort it alike.
  const signalOf = (call: QueryCall | undefined): AbortSignal | undefined =>
    call?.signal && context.signal
      ? AbortSignal.any([call.signal, context.signal])
      : call?.signal ?? context.signal;
  const markRetryable = (error: unknown): never => {
    if (isRetryable(error)) context.sawRetryable = true;
    throw error;
  };
  const query = async (text: string, params: readonly unknown[] = [], call?: QueryCall) => {
    check();
    const options = statementOptions(observer.wantsHost, params, signalOf(call));
    const info = retry ? { ...call, retry } : call;
    try {
      return await sendLinked(context.session, context.link, {
        text,
        params,
        ...(options === undefined ? {} : { options }),
        observe: (send) => observer.statement(text, params, info, send),
      }, observeDeferred);
    } catch (error) {
      return markRetryable(error);
    }
  };
  const runner: Runner = {
    query,
    async copyIn(text, data, call) {
      check();
      // COPY cannot join a chain: the deferred statements go first, alone.
      await flushLinked(context.session, context.link, observeDeferred);
      await observer.statement(
        text,
        [],
        retry ? { ...call, retry } : call,
        () =>
          context.session.copyIn(text, data, signalOf(call)).then(() => ({
            rows: [],
            command: "COPY",
            count: 0,
          })),
      ).catch(markRetryable);
    },
    dialect: () => Promise.resolve(dialect),
    batch: async (members, options) => {
      check();
      nestedOptions(options, "batch");
      const signal = callSignal(options, context.signal);
      const sendOptions = signal === undefined ? undefined : { signal };
      try {
        return await batchLinked(
          context.session,
          context.link,
          sendOptions === undefined
            ? members
            : members.map((m) => ({ ...m, options: sendOptions })),
          `manticore_batch_${++savepoints}`,
          {
            statement: (m, send) =>
              observer.statement(m.text, m.params, retry ? { retry } : undefined, send),
            deferred: observeDeferred,
            retryable: (error) => isRetryable(error) || context.sawRetryable,
          },
        );
      } catch (failure) {
        const error = (failure as { error?: unknown }).error ?? failure;
        if (isRetryable(error)) context.sawRetryable = true;
        throw failure;
      }
    },
    nest: async (fn) => {
      check();
      const name = `manticore_sp_${++nested}`;
      const link = context.link;
      applyLinkOp(link, { op: "savepoint", name });
      let value;
      try {
        value = await fn();
      } catch (error) {
        const outcome = savepointOutcome(error);
        applyLinkOp(link, { op: "savepointEnd", name, outcome }, context.sawRetryable);
        throw error;
      }
      applyLinkOp(link, { op: "savepointEnd", name, outcome: "release" });
      return value;
    },
    cursorSession: async () => {
      check();
      // The cursor's statements use the session directly: the deferred ones go first.
      await flushLinked(context.session, context.link, observeDeferred);
      return { session: observed(context.session, observer, retry), own: false, release: () => {} };
    },
    tables,
    observer,
  };
  return runner;
}

/**
 * A statement of the transaction protocol (COMMIT, ROLLBACK, a savepoint) on the transaction's
 * connection, the deferred statements in front of it; answers its command tag. The async runner
 * and the sync bridge's worker send them alike.
 */
export async function protocolQuery(
  session: ReservedSession,
  link: Link,
  text: string,
  observer: Observer,
): Promise<string> {
  const observe: Observe = (t, send) => observer.statement(t, [], undefined, send);
  const statement = {
    text,
    params: [],
    prepare: true,
    observe: (send: () => Promise<QueryResult>) => observe(text, send),
  };
  return (await sendLinked(session, link, statement, observe, true)).command;
}

/** What the transaction protocol reads of the connection between its steps. */
export function sessionState(
  session: ReservedSession | undefined,
  link: Link,
  sawRetryable: boolean,
): SessionState {
  return {
    lost: session?.lost ?? true,
    sawRetryable,
    unsent: session?.unsent ?? false,
    deferredError: link.failure,
    deferredUnsent: protocolPending(link),
    status: session?.status,
  };
}

/**
 * Runs `fn` in a transaction on a connection of `pool`: the protocol of `_retry.ts`, each step
 * taken here. `fn` gets the attempt's runner (the caller wraps it in its handle). The transaction
 * is one span (its statements its children), its retries are counted, and its `signal` or
 * `timeout` aborts it: the statement running is cancelled, nothing more is sent but the
 * rollback, and it is not retried.
 */
export async function transact<T>(
  pool: Pool,
  tables: TableCache,
  settings: TransactionSettings,
  fn: (runner: Runner) => Promise<T> | T,
): Promise<T> {
  const signal = callSignal(settings);
  if (signal?.aborted) throw aborted(signal, false);
  // asOfSystemTime is refused on PostgreSQL: a postgres reading is confirmed first.
  const dialect = await pool.dialect(settings.asOfSystemTime !== undefined);
  const observer = pool.observer;
  const telemetry = observer.transaction();
  const steps = transactionSteps<T>(
    { ...settings, onRetry: observer.retrying(telemetry, settings.onRetry) },
    dialect,
  );
  let session: ReservedSession | undefined;
  let context: TransactionContext | undefined;
  let link = newLink();
  let attempt = 0;
  // Nothing but the rollback is sent once the transaction is aborted.
  const stop = (): void => {
    if (signal?.aborted) throw aborted(signal, true);
  };
  try {
    const value = await telemetry.run(() =>
      runAsync(steps, async (step) => {
        switch (step.kind) {
          case "reserve":
            session?.release();
            session = undefined;
            link = newLink();
            stop();
            session = await pool.reserve();
            return undefined;
          case "defer":
            applyLinkOp(link, { op: "defer", texts: step.texts });
            return undefined;
          case "discard":
            applyLinkOp(link, { op: "discard" });
            return undefined;
          case "query":
            if (!step.text.startsWith("ROLLBACK")) stop();
            return await protocolQuery(session as ReservedSession, link, step.text, observer);
          case "callback": {
            stop();
            context = {
              session: session as ReservedSession,
              attempt: ++attempt,
              signal,
              sawRetryable: false,
              closed: false,
              link,
            };
            const runner = attemptRunner(context, dialect, tables, observer);
            try {
              return await fn(runner);
            } finally {
              context.closed = true;
              // Statements the callback left in flight carrying deferred ones settle first:
              // the outcome of BEGIN decides the attempt's.
              while (link.confirm !== undefined) await link.confirm.catch(() => {});
            }
          }
          case "sleep":
            await sleep(step.ms, signal);
            stop();
            return undefined;
          case "state":
            return sessionState(session, link, context?.sawRetryable ?? false);
          case "release":
            session?.release();
            session = undefined;
            return undefined;
        }
      })
    );
    telemetry.end();
    return value;
  } catch (error) {
    telemetry.end(error);
    throw error;
  }
}
