// What a database tells about its work: the `onQuery` hook, OpenTelemetry spans and metrics
// (`_telemetry.ts`), and the counts of `stats()`. One observer per database; the runners call it
// around every statement and transaction. With no hook and no OpenTelemetry provider, a
// statement costs one check here.
import type { ResolvedConfig } from "./_config.ts";
import type { QueryEvent, RetryInfo } from "./_options.ts";
import type { DriverCounts, DriverHooks, QueryResult } from "./_driver.ts";
import { errorCode } from "./_errors.ts";
import type { Dialect } from "./_sql.ts";
import { dbSystemName, refreshTelemetry, telemetryEnabled, TelemetryTarget } from "./_telemetry.ts";
import {
  type MigrationInfo,
  type MigrationTelemetry,
  NOOP_MIGRATION,
  NOOP_TRANSACTION,
  startMigration,
  startTransaction,
  type StatementOperation,
  traceStatement,
  type TransactionTelemetry,
  withoutTelemetry,
} from "./_telemetry_spans.ts";
import { observePool, type PoolTelemetry } from "./_telemetry_pool.ts";

/** The numbers of `db.stats()`: the same the pool metrics report. */
export interface PoolStats {
  /** Open connections (`idle` + `used`). */
  readonly total: number;
  /** Open connections waiting for work. */
  readonly idle: number;
  /** Open connections running a statement, or held by a transaction or a stream. */
  readonly used: number;
  /** Requests waiting for a connection. */
  readonly pending: number;
  /** Connections opened since the database was made. */
  readonly opened: number;
  /** Connections closed since then (by the pool, or ended under it). */
  readonly closed: number;
  /**
   * Retries since then, by the SQLSTATE (or connection code) that caused them: transactions run
   * again, and statements the pool sent again.
   */
  readonly retries: Readonly<Record<string, number>>;
}

/** What a statement is, for the hook and the span. */
export interface StatementInfo extends Partial<StatementOperation> {
  /** In a transaction attempt after the first. */
  readonly retry?: boolean;
}

/** How one statement is sent: what it is, and what aborts it. */
export interface QueryCall extends StatementInfo {
  readonly signal?: AbortSignal;
}

/** The observer of one database. */
export class Observer {
  readonly #config: ResolvedConfig;
  #target: TelemetryTarget | undefined;
  #pool: PoolTelemetry | undefined;
  #counts: (() => DriverCounts) | undefined;
  readonly #retries: Record<string, number> = {};
  #closedBefore = { opened: 0, closed: 0 };
  /** Connection times (s) of the connect, which opens connections before the server is known. */
  #early: number[] = [];

  constructor(config: ResolvedConfig) {
    this.#config = config;
    refreshTelemetry();
  }

  /** Asks for each statement's host: only the hook reports it. */
  get wantsHost(): boolean {
    return this.#config.onQuery !== undefined;
  }

  /** What the driver tells: connection times, waits, resends. */
  driverHooks(): DriverHooks {
    return {
      connected: (ms) =>
        this.#pool ? this.#pool.connectionCreated(ms / 1000) : this.#early.push(ms / 1000),
      waited: (ms) => this.#pool?.connectionWaited(ms / 1000),
      resent: (code) => this.countRetry(code),
    };
  }

  /**
   * The pool is open and the server known: the spans and metrics get their attributes. Without
   * `counts` (the sync `Database`'s own thread, whose pool is in its worker) no pool metrics.
   */
  attach(dialect: Dialect, counts?: () => DriverCounts): void {
    const config = this.#config;
    this.#counts = counts;
    this.#target = new TelemetryTarget({
      system: dbSystemName(dialect),
      namespace: config.database,
      address: config.hosts[0] ?? "localhost",
      port: config.ports[0] ?? 26257,
    });
    this.#pool?.close();
    if (counts === undefined) return;
    this.#pool = observePool(this.#target, () => {
      const c = counts();
      return { idle: c.idle, used: c.used, pending: c.pending, max: c.max };
    });
    for (const seconds of this.#early.splice(0)) this.#pool.connectionCreated(seconds);
  }

  /** The pool is closed: its metrics stop, its last counts stay. */
  detach(): void {
    const counts = this.#counts?.();
    if (counts) this.#closedBefore = { opened: counts.opened, closed: counts.closed };
    this.#counts = undefined;
    this.#pool?.close();
    this.#pool = undefined;
  }

  /** One more retry caused by `code`. */
  countRetry(code: string): void {
    this.#retries[code] = (this.#retries[code] ?? 0) + 1;
  }

  /** The numbers of `db.stats()`. */
  stats(): PoolStats {
    const c = this.#counts?.();
    return {
      total: c ? c.idle + c.used : 0,
      idle: c?.idle ?? 0,
      used: c?.used ?? 0,
      pending: c?.pending ?? 0,
      opened: c?.opened ?? this.#closedBefore.opened,
      closed: c?.closed ?? this.#closedBefore.closed,
      retries: { ...this.#retries },
    };
  }

  /**
   * Runs one statement (`send` sends it) under its span, and tells the hook how it went.
   * Without a hook or telemetry it is `send()` itself.
   */
  statement(
    text: string,
    params: readonly unknown[],
    info: StatementInfo | undefined,
    send: () => Promise<QueryResult>,
  ): Promise<QueryResult> {
    const hook = this.#config.onQuery;
    const target = this.#target;
    const traced = target !== undefined && telemetryEnabled();
    if (hook === undefined && !traced) return send();
    const sending = traced
      ? traceStatement(target, text, params.length > 0, send, operationOf(info))
      : send();
    if (hook === undefined) return sending;
    const started = performance.now();
    const report = (result: QueryResult | undefined, error: unknown) => {
      const event: QueryEvent = {
        text,
        durationMs: performance.now() - started,
        retry: info?.retry === true || (result?.attempts ?? 1) > 1,
        ...(this.#config.logParameters ? { params } : {}),
        ...(result === undefined
          ? { error: error as Error }
          : { rowCount: result.rows.length, count: result.count }),
        ...(result?.host === undefined ? {} : { host: result.host }),
        ...(info?.operation === undefined ? {} : { operation: info.operation }),
        ...(info?.collection === undefined ? {} : { collection: info.collection }),
      };
      try {
        hook(event);
      } catch (failure) {
        // The hook's own failure is not the statement's.
        reportError(failure);
      }
    };
    return sending.then((result) => {
      report(result, undefined);
      return result;
    }, (error) => {
      report(undefined, error);
      throw error;
    });
  }

  /**
   * Runs a batch of statements sent by one call (`run` sends them) as one operation: one span
   * with `db.operation.batch.size`, the statements inside making none of their own. `text` (the
   * statements joined, for the span) is built only when a span is made.
   */
  batch<T>(text: () => string, info: StatementInfo, run: () => Promise<T>): Promise<T> {
    const target = this.#target;
    if (target === undefined || !telemetryEnabled()) return run();
    return traceStatement(target, text(), true, () => withoutTelemetry(run), operationOf(info));
  }

  /** The span of one `transaction()` call (a no-op without telemetry). */
  transaction(): TransactionTelemetry {
    const target = this.#target;
    return target === undefined ? NOOP_TRANSACTION : startTransaction(target);
  }

  /**
   * The `onRetry` a transaction's protocol runs with: each retry is recorded (the span event,
   * the metric and `stats()`), then the caller's `onRetry` runs.
   */
  retrying(
    telemetry: TransactionTelemetry,
    onRetry: ((info: RetryInfo) => void) | undefined,
  ): (info: RetryInfo) => void {
    return (info) => {
      telemetry.retry(info.attempt, info.delayMs, info.error);
      this.countRetry(errorCode(info.error) ?? "UNKNOWN");
      onRetry?.(info);
    };
  }

  /** The span of one migration applied or reverted. */
  migration(info: MigrationInfo): MigrationTelemetry {
    const target = this.#target;
    return target === undefined ? NOOP_MIGRATION : startMigration(target, info);
  }
}

/** The operation a span is named by, when the statement's caller gave one. */
function operationOf(info: StatementInfo | undefined): StatementOperation | undefined {
  if (info?.operation === undefined) return undefined;
  return {
    operation: info.operation,
    ...(info.collection === undefined ? {} : { collection: info.collection }),
    ...(info.batchSize === undefined ? {} : { batchSize: info.batchSize }),
  };
}
