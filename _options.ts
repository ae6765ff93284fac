// The options of the CRUD helpers, one set for `AsyncQueryable` and `Queryable` (re-exported by
// both entry points). `_sql/ddl.ts` builds from `CreateTableOptions` and `DropTableOptions` as
// they are; the upsert and batch builders take plans resolved from these against the server's
// dialect (`UpsertPlan`, `BatchInsertPlan` in `_sql/`).

/**
 * How to stop one call: every method takes these, as its last argument or inside its options.
 *
 * An aborted call rejects with `DatabaseError` whose `cause` is the signal's reason: code
 * `57014` when the server cancelled the statement it was running, `ABORTED` when nothing had
 * been sent. An aborted transaction rolls back and is not retried; an aborted stream closes its
 * cursor. The connection goes back to the pool usable.
 */
export interface CallOptions {
  /**
   * Aborts the call. Asynchronous API only: the synchronous `Database` blocks its thread, so it
   * takes `timeout` (a signal is refused with `ValidationError`).
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
  /**
   * Milliseconds the call may take; then it is aborted as by `signal` (the reason is a
   * `TimeoutError` `DOMException`).
   * @default {undefined} no limit
   */
  readonly timeout?: number;
}

/** Options of `createTable`. */
export interface CreateTableOptions extends CallOptions {
  /**
   * Add `IF NOT EXISTS`.
   * @default {true}
   */
  readonly ifNotExists?: boolean;
}

/** Options of `dropTable`. */
export interface DropTableOptions extends CallOptions {
  /**
   * Add `IF EXISTS`.
   * @default {true}
   */
  readonly ifExists?: boolean;
  /**
   * Add `CASCADE`.
   * @default {false}
   */
  readonly cascade?: boolean;
}

/** Options of `upsert` and `batchUpsert`. */
export interface UpsertOptions extends CallOptions {
  /**
   * The columns whose conflict turns the insert into an update. Without them, CockroachDB uses
   * `UPSERT` (the primary key) and PostgreSQL uses the table's primary key.
   * @default {undefined}
   */
  readonly conflictColumns?: readonly string[];
  /**
   * Most records per statement (`batchUpsert` only).
   * @default {as many as fit under 65,534 bind parameters}
   */
  readonly chunkSize?: number;
}

/** Options of `batchInsert`. */
export interface BatchInsertOptions extends CallOptions {
  /**
   * Return the inserted rows (in input order); `false` returns the count and may use `COPY`.
   * @default {true}
   */
  readonly returning?: boolean;
  /**
   * Most records per statement.
   * @default {as many as fit under 65,534 bind parameters}
   */
  readonly chunkSize?: number;
}

/** Options of `batchUpdate`. */
export interface BatchUpdateOptions extends CallOptions {
  /**
   * The column that identifies each record.
   * @default {"id"}
   */
  readonly keyColumn?: string;
}

/** Options of `stream`. */
export interface StreamOptions extends CallOptions {
  /**
   * Rows fetched from the cursor per round trip.
   * @default {1000}
   */
  readonly batchSize?: number;
}
