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
 * Importing this module starts nothing; constructing a `Database` starts its worker (with
 * `connect: false`, its first call does).
 * Each `Database` serves the one thread that uses it; several threads may each own one.
 *
 * The methods of {@linkcode Queryable} are generated from `AsyncQueryable`'s by
 * `scripts/async_to_sync.ts` (`deno task sync`); each is one call across the bridge.
 *
 * @example Connect, write and read
 * ```ts
 * import { Database } from "@manticore/cockroachdb/database";
 *
 * using db = new Database(Deno.env.get("DATABASE_URL")!);
 * db.createTable("users", { id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()", name: "TEXT" });
 * const ada = db.insert("users", { name: "Ada" });
 * console.log(db.select("users", { where: { id: ada.id } })); // [{ id: "…", name: "Ada" }]
 * db.dropTable("users");
 * ```
 *
 * @module
 */
import { describeTarget, resolveConfig, type ResolvedConfig } from "./_config.ts";
import type {
  BatchInsertOptions,
  BatchStatement,
  BatchUpdateOptions,
  CallOptions,
  CreateTableOptions,
  DatabaseOptions,
  DropTableOptions,
  StreamOptions,
  TransactionOptions,
  UpsertOptions,
} from "./_options.ts";
import { transactionSettings } from "./_retry.ts";
import type { Dialect, OrderBy, Row, SelectOptions, Where, WhereOperators } from "./_sql.ts";
import { Queryable } from "./_queryable.ts";
import { BridgeClient, type Channel } from "./_bridge_client.ts";
import type { PoolStats } from "./_observe.ts";
import { grantBridgeRequests, grantSyncObserver } from "./_internal.ts";
import { ValidationError } from "./errors.ts";
import { savepointOutcome } from "./_link.ts";
import { checkCallback, nestedOptions } from "./_checks.ts";

export { Queryable };

export type {
  Int8Mode,
  IsolationLevel,
  LoadBalanceHosts,
  Notice,
  QueryEvent,
  RetryInfo,
  RetryOptions,
  SslMode,
} from "./_options.ts";
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
  /**
   * Connect in the constructor (start the worker, open `minConnections`); with `false`, the
   * first call does.
   * @default {true}
   */
  readonly connect?: boolean;
}

/** A synchronous transaction's callback returned a promise: its work would run unawaited. */
function refusePromise<T>(value: T, what: string): T {
  if (!isThenable(value)) return value;
  Promise.resolve(value).catch(() => {});
  throw new ValidationError(`Cannot run transaction: the callback returned a promise; ${what}`, {
    field: "fn",
  });
}

const DEFAULT_BRIDGE_TIMEOUT = 10_000;

let newTransaction: (channel: Channel) => Transaction;

/**
 * The handle a {@linkcode Database.transaction} callback receives: `execute`, `queryOne` and
 * every CRUD helper, all on the transaction's one connection. It cannot be used after the
 * callback returns.
 *
 * @example
 * ```ts
 * import { Database } from "@manticore/cockroachdb";
 *
 * using db = new Database(Deno.env.get("DATABASE_URL")!);
 * db.createTable("accounts", { id: "INT PRIMARY KEY", balance: "DECIMAL NOT NULL" });
 * db.batchInsert("accounts", [{ id: 1, balance: "100" }, { id: 2, balance: "100" }]);
 * db.transaction((tx) => {
 *   tx.update("accounts", { balance: "90" }, { id: 1 });
 *   tx.update("accounts", { balance: "110" }, { id: 2 });
 * });
 * console.log(db.select("accounts", { orderBy: "id" }));
 * // [{ id: 1, balance: "90" }, { id: 2, balance: "110" }]
 * db.dropTable("accounts");
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
   * ```ts
   * import { Database, UniqueViolationError } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("orders", { id: "INT PRIMARY KEY" });
   * db.createTable("coupons_used", { code: "TEXT PRIMARY KEY", order_id: "INT NOT NULL" });
   * db.insert("coupons_used", { code: "WELCOME", order_id: 1 });
   *
   * db.transaction((tx) => {
   *   tx.insert("orders", { id: 2 });
   *   try {
   *     tx.transaction((inner) => inner.insert("coupons_used", { code: "WELCOME", order_id: 2 }));
   *   } catch (error) {
   *     if (!(error instanceof UniqueViolationError)) throw error; // used already: no discount
   *   }
   * });
   * console.log(db.count("orders")); // 1: the order is kept
   * db.dropTable("orders");
   * db.dropTable("coupons_used");
   * ```
   * @param fn The work, given this handle.
   * @param options Accepted for the same call on a database or a transaction; the retry
   * options and `timeout` are the outermost transaction's.
   * @returns `fn`'s value.
   * @throws {ValidationError} for `isolation`, `readOnly` or `asOfSystemTime`, which only the
   * outermost transaction sets, or when `fn` returns a promise.
   */
  transaction<T>(fn: (tx: Transaction) => T, options?: TransactionOptions): T {
    checkCallback(fn);
    nestedOptions(options, "transaction");
    const link = this.#channel.link;
    if (link === undefined) throw new TypeError("Cannot nest a transaction outside one");
    const name = `manticore_sp_${++this.#savepoints}`;
    // Taken by the worker with the next request of the transaction (_link.ts).
    link.push({ op: "savepoint", name });
    let value: T;
    try {
      value = refusePromise(fn(this), "Transaction.transaction() takes a synchronous callback");
    } catch (error) {
      // The worker keeps the failure for the outermost transaction when the attempt met a
      // retryable error before.
      link.push({ op: "savepointEnd", name, outcome: savepointOutcome(error) });
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
 * ```ts
 * import { Database } from "@manticore/cockroachdb";
 *
 * using db = new Database(); // DATABASE_URL, then PGHOST, PGPORT, …: connects now
 * // With `connect: false` nothing connects before the first statement (or `connect()`).
 * using bank = new Database({ host: "localhost", port: 26257, database: "bank", connect: false });
 * using fromUrl = Database.fromUrl("postgresql://root@localhost:26257/bank", { connect: false });
 * console.log(String(db)); // Database(postgresql://root@…), never the password
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = Database.fromUrl(Deno.env.get("DATABASE_URL")!, { applicationName: "billing" });
   * const sql = "SELECT current_setting('application_name') AS name";
   * console.log(db.queryOne(sql)); // { name: "billing" }
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!, { connect: false }); // no worker yet
   * db.connect(); // starts the worker, opens the pool, checks the server
   * console.log(db.serverVersion); // "PostgreSQL 15.…", or "CockroachDB CCL v…"
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * const db = new Database(Deno.env.get("DATABASE_URL")!);
   * try {
   *   db.execute("SELECT 1");
   * } finally {
   *   db.close(); // what `using db = …` does at the end of its scope
   * }
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.execute("SELECT 1");
   * const { used, idle, retries } = db.stats();
   * console.log(used, idle, retries); // 0 2 {}: connecting opened minConnections
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("accounts", { id: "INT PRIMARY KEY", balance: "DECIMAL NOT NULL" });
   * db.batchInsert("accounts", [{ id: 1, balance: "100" }, { id: 2, balance: "0" }]);
   *
   * db.transaction((tx) => {
   *   tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", [10, 1]);
   *   tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", [10, 2]);
   * });
   * console.log(db.select("accounts", { orderBy: "id" }));
   * // [{ id: 1, balance: "90" }, { id: 2, balance: "10" }]
   * db.dropTable("accounts");
   * ```
   * @param fn The work; it may run more than once.
   * @param options Retries, deadline, `timeout`, isolation, read-only, `asOfSystemTime`,
   * `onRetry`.
   * @returns The callback's value.
   * @throws {TransactionRetryError} when retries run out.
   * @throws {AmbiguousCommitError} when the commit's outcome is unknown.
   * @throws {ValidationError} when `fn` is not a function or returns a promise.
   */
  transaction<T>(fn: (tx: Transaction) => T, options?: TransactionOptions): T {
    checkCallback(fn);
    const settings = transactionSettings(options, this.#config.retry);
    return this.#client.transaction(settings, (channel) => {
      return refusePromise(
        fn(newTransaction(channel)),
        "Database.transaction() takes a synchronous callback (use AsyncDatabase for asynchronous work)",
      );
    });
  }
}
