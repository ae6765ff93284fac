/**
 * `Database`: the synchronous twin of `AsyncDatabase` — the same raw SQL, CRUD
 * helpers, streaming and retrying transactions, returning values instead of promises.
 *
 * It works without FFI: each `Database` starts one worker (a `node:worker_threads` worker,
 * unreferenced so that it never keeps the process alive) that owns an `AsyncDatabase`. A call
 * writes its request into a `SharedArrayBuffer`, wakes the worker and blocks the calling thread
 * (a brief spin, then `Atomics.wait`) until the answer is there. Values keep their types across
 * the bridge (`bigint`, `Date`, `Uint8Array`, parsed JSON, `null`, numeric strings) and errors
 * keep their classes, codes and causes.
 *
 * Importing this module starts nothing; constructing a `Database` starts its worker.
 * Each `Database` serves the one thread that uses it; several threads may each own one.
 *
 * The methods of {@linkcode Queryable} are generated from `AsyncQueryable`'s by
 * `scripts/async_to_sync.ts` (`deno task sync`); each is one call across the bridge.
 *
 * @example Connect, write and read
 * ```ts ignore
 * import { Database } from "@manticore/cockroachdb/database";
 *
 * using db = new Database("postgresql://root@localhost:26257/defaultdb");
 * db.createTable("users", { id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()", name: "TEXT" });
 * const ada = db.insert("users", { name: "Ada" });
 * console.log(db.select("users", { where: { id: ada.id } }));
 * ```
 *
 * @module
 */
import {
  type DatabaseOptions,
  describeTarget,
  resolveConfig,
  type ResolvedConfig,
  type TransactionOptions,
} from "./_config.ts";
import { transactionSettings } from "./_retry.ts";
import type {
  BatchInsertOptions,
  BatchStatement,
  BatchUpdateOptions,
  CallOptions,
  CreateTableOptions,
  DropTableOptions,
  StreamOptions,
  UpsertOptions,
} from "./_options.ts";
import type { Dialect, OrderBy, Row, SelectOptions, Where, WhereOperators } from "./_sql.ts";
import type { AsyncQueryable } from "./async_database.ts";
import { BridgeClient, type Channel } from "./_bridge_client.ts";
import type { PoolStats } from "./_observe.ts";
import { grantBridgeRequests, grantSyncObserver } from "./_internal.ts";
import { ValidationError } from "./errors.ts";
import { isRetryable } from "./_errors.ts";
import { nestedOptions } from "./_checks.ts";

export type {
  Int8Mode,
  IsolationLevel,
  LoadBalanceHosts,
  Notice,
  QueryEvent,
  RetryInfo,
  RetryOptions,
  SslMode,
} from "./_config.ts";
export type { PoolStats } from "./_observe.ts";
export type {
  BatchInsertOptions,
  BatchStatement,
  BatchUpdateOptions,
  CallOptions,
  CreateTableOptions,
  DatabaseOptions,
  Dialect,
  DropTableOptions,
  OrderBy,
  Row,
  SelectOptions,
  StreamOptions,
  TransactionOptions,
  UpsertOptions,
  Where,
  WhereOperators,
};

/** Options of {@linkcode Database}: those of `AsyncDatabase`, and the bridge's. */
export interface SyncDatabaseOptions extends DatabaseOptions {
  /**
   * Milliseconds the calling thread waits for a sign of life from the worker before it gives
   * up with `ConnectionError` and ends the worker. The worker signs of life ten times a second
   * while its event loop runs, so a long query is never cut short: only a worker that crashed,
   * stopped, or is stuck in synchronous code is. Starting the worker may take up to this long,
   * or `connectTimeout`, whichever is longer.
   * @default {10000}
   */
  readonly bridgeTimeout?: number;
}

const DEFAULT_BRIDGE_TIMEOUT = 10_000;

/**
 * The raw SQL and CRUD surface shared by {@linkcode Database} and its transaction handle
 * {@linkcode Transaction}: the synchronous twin of `AsyncQueryable`. Not constructed directly.
 *
 * Each method runs its `AsyncQueryable` namesake in the database's worker and blocks until the
 * answer is there. Besides the errors each method documents, any of them throws
 * `ConnectionError` when the worker cannot be reached (codes `WORKER_CRASHED`,
 * `WORKER_TIMEOUT`).
 */
export abstract class Queryable {
  readonly #channel: Channel;

  /** @ignore */
  protected constructor(channel: Channel) {
    this.#channel = channel;
  }

  // #region generated from AsyncQueryable by scripts/async_to_sync.ts
  // Do not edit by hand: change AsyncQueryable and run `deno task sync`.

  /**
   * Runs SQL and returns its rows (`[]` for statements without rows). Placeholders are
   * `$1 … $n`; without params the text may hold several statements (the last one's rows are
   * returned).
   *
   * @example
   * ```ts ignore
   * const rows = db.execute<{ n: number }>("SELECT $1::int AS n", [1]);
   * ```
   * @param sql The statement text.
   * @param params The bind parameters.
   * @param options `signal` and `timeout` (milliseconds): abort the statement.
   * @returns The rows.
   * @throws {DatabaseError} with the SQLSTATE in `code` when the server refuses the statement
   * (`57014` or `ABORTED` when it was aborted).
   * @throws {ConnectionError} when the server cannot be reached.
   */
  execute<T = Row>(
    sql: string,
    params?: readonly unknown[],
    options?: CallOptions,
  ): T[] {
    return this.#channel.invoke("execute", [sql, params, options]) as T[];
  }

  /**
   * Runs SQL and returns its first row, or `null`.
   *
   * @example
   * ```ts ignore
   * const user = db.queryOne("SELECT * FROM users WHERE id = $1", [id]);
   * ```
   * @param sql The statement text.
   * @param params The bind parameters.
   * @param options `signal` and `timeout` (milliseconds): abort the statement.
   * @returns The first row or `null`.
   * @throws {DatabaseError} when the server refuses the statement.
   */
  queryOne<T = Row>(
    sql: string,
    params?: readonly unknown[],
    options?: CallOptions,
  ): T | null {
    return this.#channel.invoke("queryOne", [sql, params, options]) as T | null;
  }

  /**
   * `CREATE DATABASE IF NOT EXISTS`.
   *
   * @example
   * ```ts ignore
   * db.createDatabase("bank");
   * ```
   * @param name The database name.
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  createDatabase(name: string, options?: CallOptions): void {
    this.#channel.invoke("createDatabase", [name, options]);
  }

  /**
   * `DROP DATABASE IF EXISTS`.
   *
   * @example
   * ```ts ignore
   * db.dropDatabase("bank");
   * ```
   * @param name The database name.
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  dropDatabase(name: string, options?: CallOptions): void {
    this.#channel.invoke("dropDatabase", [name, options]);
  }

  /**
   * Creates a table; column names are quoted, type strings used as given, order kept.
   *
   * @example
   * ```ts ignore
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT NOT NULL" });
   * ```
   * @param name The table name (`table` or `schema.table`).
   * @param columns Column name → SQL type (with constraints and defaults).
   * @param options `ifNotExists` (default true), `signal`, `timeout`.
   * @throws {ValidationError} when a name cannot be an identifier.
   */
  createTable(
    name: string,
    columns: Readonly<Record<string, string>>,
    options?: CreateTableOptions,
  ): void {
    this.#channel.invoke("createTable", [name, columns, options]);
  }

  /**
   * Drops a table.
   *
   * @example
   * ```ts ignore
   * db.dropTable("users", { cascade: true });
   * ```
   * @param name The table name.
   * @param options `ifExists` (default true), `cascade` (default false), `signal`, `timeout`.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  dropTable(name: string, options?: DropTableOptions): void {
    this.#channel.invoke("dropTable", [name, options]);
  }

  /**
   * Whether a table exists (default schema `public`).
   *
   * @example
   * ```ts ignore
   * if (!db.tableExists("users")) console.log("not yet");
   * ```
   * @param name The table name (`table` or `schema.table`).
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns True when the table exists.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  tableExists(name: string, options?: CallOptions): boolean {
    return this.#channel.invoke("tableExists", [name, options]);
  }

  /**
   * Inserts one row and returns it; `{}` inserts `DEFAULT VALUES`.
   *
   * @example
   * ```ts ignore
   * const user = db.insert("users", { id: 1, name: "Ada" });
   * ```
   * @param table The table name.
   * @param data Column → value; `undefined` values are left out.
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns The inserted row.
   * @throws {UniqueViolationError} on a duplicate key.
   */
  insert<T = Row>(table: string, data: Row, options?: CallOptions): T {
    return this.#channel.invoke("insert", [table, data, options]) as T;
  }

  /**
   * Selects rows.
   *
   * @example
   * ```ts ignore
   * const rows = db.select("users", { where: { age: { gte: 18 } }, orderBy: "name", limit: 10 });
   * ```
   * @param table The table name.
   * @param options `columns`, `where`, `orderBy`, `limit`, `offset`, `signal`, `timeout`.
   * @returns The rows.
   * @throws {ValidationError} when an option is malformed.
   */
  select<T = Row>(table: string, options?: SelectOptions & CallOptions): T[] {
    return this.#channel.invoke("select", [table, options]) as T[];
  }

  /**
   * Selects the first matching row, or `null`.
   *
   * @example
   * ```ts ignore
   * const ada = db.selectOne("users", { where: { name: "Ada" } });
   * ```
   * @param table The table name.
   * @param options As for `select`; `limit` is 1.
   * @returns The row or `null`.
   * @throws {ValidationError} when an option is malformed.
   */
  selectOne<T = Row>(
    table: string,
    options?: SelectOptions & CallOptions,
  ): T | null {
    return this.#channel.invoke("selectOne", [table, options]) as T | null;
  }

  /**
   * Updates matching rows and returns every updated row.
   *
   * @example
   * ```ts ignore
   * const rows = db.update("users", { name: "Ada L." }, { id: 1 });
   * ```
   * @param table The table name.
   * @param data Column → new value (not empty).
   * @param where Conditions (not empty).
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns The updated rows.
   * @throws {ValidationError} when `data` or `where` is empty.
   */
  update<T = Row>(
    table: string,
    data: Row,
    where: Where,
    options?: CallOptions,
  ): T[] {
    return this.#channel.invoke("update", [table, data, where, options]) as T[];
  }

  /**
   * Deletes matching rows.
   *
   * @example
   * ```ts ignore
   * const removed = db.delete("users", { id: [1, 2, 3] });
   * ```
   * @param table The table name.
   * @param where Conditions (not empty; use `TRUNCATE` to empty a table).
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns The number of rows deleted.
   * @throws {ValidationError} when `where` is empty.
   */
  delete(table: string, where: Where, options?: CallOptions): number {
    return this.#channel.invoke("delete", [table, where, options]);
  }

  /**
   * Inserts a row, or updates it when it conflicts: `UPSERT` on CockroachDB, `INSERT … ON
   * CONFLICT … DO UPDATE` otherwise (on the primary key unless `conflictColumns` is given).
   *
   * @example
   * ```ts ignore
   * db.upsert("accounts", { id: 1, balance: "100" });
   * ```
   * @param table The table name.
   * @param data Column → value.
   * @param options `conflictColumns`, `signal`, `timeout`.
   * @returns The inserted or updated row.
   * @throws {ValidationError} when the table has no primary key and no `conflictColumns`.
   */
  upsert<T = Row>(table: string, data: Row, options?: UpsertOptions): T {
    return this.#channel.invoke("upsert", [table, data, options]) as T;
  }

  /**
   * Inserts many rows, one round trip per chunk, all in one transaction. Every record must have
   * the same keys.
   *
   * @example
   * ```ts ignore
   * const rows = db.batchInsert("users", [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * ```
   * @param table The table name.
   * @param records The rows.
   * @param options `returning` (default true), `chunkSize`, `signal`, `timeout`.
   * @returns The inserted rows, in input order.
   * @throws {ValidationError} when records have differing keys.
   */
  batchInsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: BatchInsertOptions & { readonly returning?: true },
  ): T[];
  /**
   * Inserts many rows without returning them (may use `COPY`).
   *
   * @example
   * ```ts ignore
   * const count = db.batchInsert("events", events, { returning: false });
   * ```
   * @param table The table name.
   * @param records The rows.
   * @param options `returning: false`, `chunkSize`, `signal`, `timeout`.
   * @returns The number of rows inserted.
   * @throws {ValidationError} when records have differing keys.
   */
  batchInsert(
    table: string,
    records: readonly Row[],
    options: BatchInsertOptions & { readonly returning: false },
  ): number;
  batchInsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: BatchInsertOptions,
  ): T[] | number {
    return this.#channel.invoke(
      "batchInsert",
      [table, records, options] as Parameters<AsyncQueryable["batchInsert"]>,
    ) as T[] | number;
  }

  /**
   * Upserts many rows (see `upsert`), one round trip per chunk, in one transaction.
   *
   * @example
   * ```ts ignore
   * db.batchUpsert("accounts", [{ id: 1, balance: "10" }, { id: 2, balance: "20" }]);
   * ```
   * @param table The table name.
   * @param records The rows.
   * @param options `conflictColumns`, `chunkSize`, `signal`, `timeout`.
   * @returns The rows, in input order.
   * @throws {ValidationError} when records have differing keys.
   */
  batchUpsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: UpsertOptions,
  ): T[] {
    return this.#channel.invoke("batchUpsert", [table, records, options]) as T[];
  }

  /**
   * Updates many rows by key, in one transaction.
   *
   * @example
   * ```ts ignore
   * db.batchUpdate("users", [{ id: 1, name: "A" }, { id: 2, name: "B" }]);
   * ```
   * @param table The table name.
   * @param records Each record holds the key column and the columns to set.
   * @param options `keyColumn` (default `"id"`), `signal`, `timeout`.
   * @returns The updated rows, in input order (a key that matches nothing adds no row).
   * @throws {ValidationError} when a record lacks the key or has nothing to set.
   */
  batchUpdate<T = Row>(
    table: string,
    records: readonly Row[],
    options?: BatchUpdateOptions,
  ): T[] {
    return this.#channel.invoke("batchUpdate", [table, records, options]) as T[];
  }

  /**
   * Counts rows.
   *
   * @example
   * ```ts ignore
   * const adults = db.count("users", { age: { gte: 18 } });
   * ```
   * @param table The table name.
   * @param where Conditions.
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns The number of matching rows.
   * @throws {ValidationError} when `where` is malformed.
   */
  count(table: string, where?: Where, options?: CallOptions): number {
    return this.#channel.invoke("count", [table, where, options]);
  }

  /**
   * Runs the statements as one transaction, sent to the server together: one round trip when
   * the pool has seen each statement before (it knows their parameter types), two otherwise.
   * Returns one array of rows per statement. A failure rolls back the whole batch and names the
   * statement: the error is that statement's own (`UniqueViolationError` for a duplicate key, …)
   * with its index in `statementIndex`. A serialization failure (`40001`, `40P01`) sends the
   * batch again, whole, under the retry options; a connection lost once the batch was written
   * may have committed it: `AmbiguousCommitError` (unless `idempotent: true`). On a transaction
   * handle the batch runs under a savepoint of the transaction: a failure rolls back the batch
   * only, and a serialization failure is the transaction's to retry.
   *
   * @example A transfer in one round trip
   * ```ts ignore
   * const [debited, credited] = db.batch([
   *   { sql: "UPDATE accounts SET balance = balance - $1 WHERE id = $2 RETURNING *", params: [10, 1] },
   *   { sql: "UPDATE accounts SET balance = balance + $1 WHERE id = $2 RETURNING *", params: [10, 2] },
   * ]);
   * ```
   * @param statements `{ sql, params? }`: one statement each.
   * @param options Retries, deadline, isolation, read-only, `asOfSystemTime`, `idempotent`,
   * `onRetry`, `signal` and `timeout`; on a transaction handle only `signal` and `timeout` (the
   * rest is the transaction's).
   * @returns The rows of each statement, in order.
   * @throws {DatabaseError} the failed statement's error (or its subclass), with `statementIndex`.
   * @throws {TransactionRetryError} when retries run out.
   * @throws {AmbiguousCommitError} when the commit's outcome is unknown.
   * @throws {ValidationError} when a statement is not `{ sql, params? }` holding one statement.
   */
  batch<T = Row>(
    statements: readonly BatchStatement[],
    options?: TransactionOptions,
  ): T[][] {
    return this.#channel.invoke("batch", [statements, options]) as T[][];
  }

  /**
   * Streams the rows of a query through a SQL cursor (`DECLARE … CURSOR` in a transaction),
   * `batchSize` rows per round trip: memory stays bounded whatever the result size. Breaking
   * out of the loop closes the cursor; a stream that is neither finished nor broken out of
   * holds a connection until the database is closed.
   *
   * @example
   * ```ts ignore
   * for (const row of db.stream("SELECT * FROM events ORDER BY id", [], { batchSize: 500 })) {
   *   console.log(row);
   * }
   * ```
   * @param sql A `SELECT` (or `VALUES`) statement.
   * @param params The bind parameters.
   * @param options `batchSize` (default 1000), `signal`, `timeout` (an aborted stream closes its
   * cursor and gives its connection back).
   * @returns An iterable of rows.
   * @throws {ValidationError} when `batchSize` is not a positive integer.
   */
  *stream<T = Row>(
    sql: string,
    params?: readonly unknown[],
    options?: StreamOptions,
  ): Generator<T, void, undefined> {
    yield* this.#channel.stream<T>(sql, params, options);
  }
  // #endregion generated
}

// The compiler keeps the twins' surfaces equal: every public method of `Queryable` has the
// parameters of its `AsyncQueryable` namesake and returns what that one resolves to (an
// `AsyncGenerator` becoming a `Generator`). A method on one side only, or a signature edited on
// one side only, fails `deno check` with the method's name in the message.
type Synced<R> = R extends Promise<infer V> ? V
  : R extends AsyncGenerator<infer Y, infer Return, infer Next> ? Generator<Y, Return, Next>
  : R;
type ParametersOf<F> = F extends (...args: infer P) => unknown ? P : never;
type ReturnOf<F> = F extends (...args: never) => infer R ? R : never;
type Same<A, B> = (<G>() => G extends A ? 1 : 2) extends (<G>() => G extends B ? 1 : 2) ? true
  : false;
type MethodsOf<T> = { [K in keyof T]: T[K] extends (...args: never) => unknown ? K : never }[
  keyof T
];
type Unsynced<Async, Sync> = {
  [K in MethodsOf<Async> | MethodsOf<Sync>]: K extends keyof Async & keyof Sync
    ? Same<ParametersOf<Sync[K]>, ParametersOf<Async[K]>> extends true
      ? Same<ReturnOf<Sync[K]>, Synced<ReturnOf<Async[K]>>> extends true ? never : K
    : K
    : K;
}[MethodsOf<Async> | MethodsOf<Sync>];
({}) satisfies { [K in Unsynced<AsyncQueryable, Queryable>]: "differs between the twins" };

let newTransaction: (channel: Channel) => Transaction;

/**
 * The handle a {@linkcode Database.transaction} callback receives: `execute`, `queryOne` and
 * every CRUD helper, all on the transaction's one connection. It cannot be used after the
 * callback returns.
 *
 * @example
 * ```ts ignore
 * db.transaction((tx) => {
 *   tx.update("accounts", { balance: "90" }, { id: 1 });
 *   tx.update("accounts", { balance: "110" }, { id: 2 });
 * });
 * ```
 */
export class Transaction extends Queryable {
  readonly #channel: Channel;
  #savepoints = 0;

  private constructor(channel: Channel) {
    super(channel);
    this.#channel = channel;
  }

  /**
   * Runs `fn` under a savepoint of this transaction and returns its value: if `fn` throws, what
   * it did is rolled back (to the savepoint) and its error re-thrown, and the transaction goes
   * on. The savepoint travels with `fn`'s first statement and its release with the next
   * statement of the transaction (or its `COMMIT`): no round trip of their own. A serialization
   * failure is not rolled back to the savepoint: the outermost transaction runs again, whole.
   * The callback must be synchronous.
   *
   * @example Try something, go on without it if it fails
   * ```ts ignore
   * db.transaction((tx) => {
   *   tx.insert("orders", order);
   *   try {
   *     tx.transaction((inner) => inner.insert("coupons_used", { order: order.id, code }));
   *   } catch (error) {
   *     if (!(error instanceof UniqueViolationError)) throw error;
   *   }
   * });
   * ```
   * @param fn The work, given this handle.
   * @param options Accepted for the same call on a database or a transaction; the retry
   * options and `timeout` are the outermost transaction's.
   * @returns `fn`'s value.
   * @throws {ValidationError} for `isolation`, `readOnly` or `asOfSystemTime`, which only the
   * outermost transaction sets, or when `fn` returns a promise.
   */
  transaction<T>(fn: (tx: Transaction) => T, options?: TransactionOptions): T {
    if (typeof fn !== "function") {
      throw new ValidationError("Cannot run transaction: the callback must be a function", {
        field: "fn",
      });
    }
    nestedOptions(options, "transaction");
    const link = this.#channel.link;
    if (link === undefined) throw new TypeError("Cannot nest a transaction outside one");
    const name = `manticore_sp_${++this.#savepoints}`;
    // Taken by the worker with the next request of the transaction (_link.ts).
    link.push({ op: "savepoint", name });
    let value: T;
    try {
      value = fn(this);
      if (isThenable(value)) {
        Promise.resolve(value).catch(() => {});
        throw new ValidationError(
          "Cannot run transaction: the callback returned a promise; Transaction.transaction() takes a synchronous callback",
          { field: "fn" },
        );
      }
    } catch (error) {
      // The worker keeps the failure for the outermost transaction when the attempt met a
      // retryable error before.
      link.push({ op: "savepointEnd", name, outcome: isRetryable(error) ? "keep" : "rollback" });
      throw error;
    }
    link.push({ op: "savepointEnd", name, outcome: "release" });
    return value;
  }

  static {
    newTransaction = (channel) => new Transaction(channel);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * A synchronous client: every method blocks until its result is there. Connects in the
 * constructor (unless `connect: false`); `close()` ends the worker and its pool, and every
 * later call fails with `ConnectionError`.
 *
 * While a transaction callback runs, the worker keeps serving: a call on the database (not on
 * the transaction handle) inside the callback runs on another connection of the pool. When the
 * thread's own open transactions and streams hold every connection, such a call throws
 * `ConnectionError` (code `POOL_EXHAUSTED`) instead of waiting forever.
 *
 * The worker is unreferenced: a program that forgets `close()` still exits when its main
 * module is done (its connections then simply drop). A worker that crashes, fails to load, or
 * gives no sign of life for `bridgeTimeout` milliseconds makes the call throw `ConnectionError`
 * (codes `WORKER_CRASHED`, `WORKER_TIMEOUT`); the next call starts a new worker. Loaded from a
 * local copy of the package, the worker needs read access to the package's directory (the
 * constructor asks for it, or throws `ConnectionError` with code `WORKER_PERMISSION`).
 *
 * @example Options, URL and environment
 * ```ts ignore
 * import { Database } from "@manticore/cockroachdb";
 *
 * using db = new Database({ host: "localhost", port: 26257, database: "bank" });
 * const fromUrl = Database.fromUrl("postgresql://root@localhost:26257/bank", { connect: false });
 * fromUrl.close();
 * ```
 */
export class Database extends Queryable implements Disposable {
  readonly #config: ResolvedConfig;
  readonly #client: BridgeClient;

  /**
   * A database from options; `DATABASE_URL`, the `PG*` variables and the defaults fill the
   * rest. Connects at once unless `connect: false`.
   *
   * @param options Connection options, and `connect` and `bridgeTimeout`.
   * @throws {ConnectionError} naming host and port when it cannot connect within `connectTimeout`.
   * @throws {ValidationError} when an option is invalid.
   */
  constructor(options?: SyncDatabaseOptions);
  /**
   * A database from a URL; explicit options win over it. Connects at once unless
   * `connect: false`.
   *
   * @param url A `postgresql://` URL.
   * @param options Connection options, which win over the URL.
   * @throws {ConnectionError} naming host and port when it cannot connect within `connectTimeout`.
   * @throws {ValidationError} when the URL or an option is invalid.
   */
  constructor(url: string, options?: SyncDatabaseOptions);
  constructor(urlOrOptions?: string | SyncDatabaseOptions, options?: SyncDatabaseOptions) {
    const url = typeof urlOrOptions === "string" ? urlOrOptions : undefined;
    const given: SyncDatabaseOptions =
      (typeof urlOrOptions === "string" ? options : urlOrOptions ?? options) ?? {};
    const config = resolveConfig(url, given);
    const {
      bridgeTimeout = DEFAULT_BRIDGE_TIMEOUT,
      connect = true,
      onNotice,
      onQuery,
      ...rest
    } = given;
    if (typeof bridgeTimeout !== "number" || !(bridgeTimeout > 0)) {
      throw new ValidationError(
        `Cannot use bridgeTimeout ${bridgeTimeout}: expected milliseconds above 0`,
        { field: "bridgeTimeout" },
      );
    }
    const client = new BridgeClient({
      config,
      url,
      workerOptions: rest as Record<string, unknown>,
      bridgeTimeout,
      // A function cannot cross to the worker: the worker forwards its events to this thread.
      onNotice,
      onQuery,
    });
    super(client.channel);
    this.#config = config;
    this.#client = client;
    if (connect) {
      try {
        this.connect();
      } catch (error) {
        this.close();
        throw error;
      }
    }
  }

  static {
    grantBridgeRequests((db, request) => db.#client.use().call(request));
    grantSyncObserver((db) => db.#client.observer);
  }

  /**
   * Same as `new Database(url, options)`.
   *
   * @example
   * ```ts ignore
   * using db = Database.fromUrl("postgresql://root@localhost:26257/defaultdb");
   * ```
   * @param url A `postgresql://` URL.
   * @param options Connection options, which win over the URL.
   * @returns A database, connected unless `connect: false`.
   * @throws {ConnectionError} when it cannot connect.
   */
  static fromUrl(url: string, options?: SyncDatabaseOptions): Database {
    return new Database(url, options);
  }

  /**
   * Starts the worker, opens the pool and checks the server (idempotent). Called by the
   * constructor, and lazily on first use after `connect: false`.
   *
   * @example
   * ```ts ignore
   * const db = new Database({ connect: false });
   * db.connect();
   * ```
   * @throws {ConnectionError} naming host and port, within `connectTimeout`.
   */
  connect(): void {
    this.#client.connected();
  }

  /**
   * Closes the pool and ends the worker (idempotent). Afterwards every call fails with
   * `ConnectionError` (code `CONNECTION_CLOSED`); make a new `Database` to connect again.
   *
   * @example
   * ```ts ignore
   * db.close();
   * ```
   */
  close(): void {
    this.#client.close();
  }

  /** Closes the database: `using db = new Database(…)`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * The server's version as it reports it when a connection starts ("" before the first one):
   * CockroachDB's build string (`CockroachDB CCL v…`, as `version()` gives it), or
   * `PostgreSQL <version>`.
   */
  get serverVersion(): string {
    return this.#client.version;
  }

  /**
   * The pool's numbers now (the pool is in the worker), with the retries of this thread's
   * transactions: see `AsyncDatabase.stats()`.
   *
   * @example
   * ```ts ignore
   * const { used, idle, retries } = db.stats();
   * ```
   * @returns The numbers.
   */
  stats(): PoolStats {
    return this.#client.stats();
  }

  /**
   * `Database(postgresql://user@host:port/database)`, never with the password.
   *
   * @returns The description.
   */
  override toString(): string {
    return `Database(${describeTarget(this.#config)})`;
  }

  /**
   * Shown by `Deno.inspect` and `console.log`: no password.
   *
   * @returns The description.
   */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /**
   * Runs `fn` in a transaction and returns its value after a successful commit. The callback
   * runs on the calling thread; the worker keeps the transaction's connection. Serialization
   * failures (SQLSTATE `40001`, and PostgreSQL's `40P01`) run it again after a blocking,
   * capped exponential backoff with full jitter; a throw rolls back and re-throws the
   * callback's own error. The callback must be synchronous.
   *
   * `BEGIN` (with its options, and CockroachDB's retry savepoint) travels with the callback's
   * first statement and `RELEASE` with `COMMIT`: a transaction of N statements costs N + 1
   * round trips. A `BEGIN` that fails fails the transaction with its own error, and nothing
   * sent with it runs. A callback that sends nothing sends no `BEGIN` and no `COMMIT`.
   *
   * @example A transfer
   * ```ts ignore
   * db.transaction((tx) => {
   *   tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", [from]);
   *   tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = $1", [to]);
   * });
   * ```
   * @param fn The work; it may run more than once.
   * @param options Retries, deadline, isolation, read-only, `asOfSystemTime`, `onRetry`.
   * @returns The callback's value.
   * @throws {TransactionRetryError} when retries run out.
   * @throws {AmbiguousCommitError} when the commit's outcome is unknown.
   * @throws {ValidationError} when `fn` is not a function or returns a promise.
   */
  transaction<T>(fn: (tx: Transaction) => T, options?: TransactionOptions): T {
    if (typeof fn !== "function") {
      throw new ValidationError("Cannot run transaction: the callback must be a function", {
        field: "fn",
      });
    }
    const settings = transactionSettings(options, this.#config.retry);
    return this.#client.transaction(settings, (channel) => {
      const value = fn(newTransaction(channel));
      if (isThenable(value)) {
        Promise.resolve(value).catch(() => {});
        throw new ValidationError(
          "Cannot run transaction: the callback returned a promise; Database.transaction() takes a synchronous callback (use AsyncDatabase for asynchronous work)",
          { field: "fn" },
        );
      }
      return value;
    });
  }
}
