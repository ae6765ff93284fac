/**
 * `AsyncDatabase`: a pooled CockroachDB (and PostgreSQL) client with raw SQL, CRUD helpers,
 * streaming, and transactions that retry serialization failures with CockroachDB's
 * client-side protocol.
 *
 * Importing this module reads no file, reads no environment variable and starts nothing: it
 * works on Deno Deploy with `--allow-net --allow-env`.
 *
 * The public methods of {@linkcode AsyncQueryable} are the source of the synchronous
 * `Queryable`'s (`scripts/async_to_sync.ts` generates those): a change to a signature or its
 * documentation is made in `AsyncQueryable`'s module, then `deno task sync`.
 *
 * @example Connect, write and read
 * ```ts
 * import { AsyncDatabase } from "@manticore/cockroachdb/async-database";
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * await db.createTable("users", {
 *   id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
 *   name: "TEXT",
 * });
 * const ada = await db.insert("users", { name: "Ada" });
 * console.log(await db.select("users", { where: { id: ada.id } })); // [{ id: "…", name: "Ada" }]
 * await db.dropTable("users");
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
import { checkCallback, nestedOptions } from "./_checks.ts";
import type { PoolStats } from "./_observe.ts";
import { grantDatabaseInternals } from "./_internal.ts";
import { Pool } from "./_pool.ts";
import { transactionSettings } from "./_retry.ts";
import { attemptRunner, poolRunner, type Runner, type TableCache, transact } from "./_runner.ts";
import type { Dialect, OrderBy, Row, SelectOptions, Where, WhereOperators } from "./_sql.ts";
import { AsyncQueryable } from "./_async_queryable.ts";

export { AsyncQueryable };

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
  PoolStats,
  Row,
  SelectOptions,
  StreamOptions,
  TransactionOptions,
  UpsertOptions,
  Where,
  WhereOperators,
};
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

let newTransaction: (runner: Runner) => AsyncTransaction;

/**
 * The handle a `transaction()` callback receives: `execute`, `queryOne` and every CRUD helper,
 * all on the transaction's one connection, and `transaction()` to nest under a savepoint. It
 * cannot be used after the callback returns.
 */
export class AsyncTransaction extends AsyncQueryable {
  readonly #runner: Runner;

  private constructor(runner: Runner) {
    super(runner);
    this.#runner = runner;
  }

  /**
   * Runs `fn` under a savepoint of this transaction and returns its value: if `fn` throws, what
   * it did is rolled back (to the savepoint) and its error re-thrown, and the transaction goes
   * on. The savepoint travels with `fn`'s first statement and its release with the next
   * statement of the transaction (or its `COMMIT`): no round trip of their own. A serialization
   * failure is not rolled back to the savepoint: the outermost transaction runs again, whole.
   * Statements of the outer transaction should not run while `fn` does.
   *
   * @example Try something, go on without it if it fails
   * ```ts
   * import { AsyncDatabase, UniqueViolationError } from "@manticore/cockroachdb";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * await db.createTable("orders", { id: "INT PRIMARY KEY" });
   * await db.createTable("coupons_used", { code: "TEXT PRIMARY KEY", order_id: "INT NOT NULL" });
   * await db.insert("coupons_used", { code: "WELCOME", order_id: 1 });
   *
   * await db.transaction(async (tx) => {
   *   await tx.insert("orders", { id: 2 });
   *   try {
   *     await tx.transaction((inner) =>
   *       inner.insert("coupons_used", { code: "WELCOME", order_id: 2 })
   *     );
   *   } catch (error) {
   *     if (!(error instanceof UniqueViolationError)) throw error; // used already: no discount
   *   }
   * });
   * console.log(await db.count("orders")); // 1: the order is kept
   * await db.dropTable("orders");
   * await db.dropTable("coupons_used");
   * ```
   * @param fn The work, given this handle.
   * @param options Accepted for the same call on a database or a transaction; the retry
   * options, `signal` and `timeout` are the outermost transaction's.
   * @returns `fn`'s value.
   * @throws {ValidationError} for `isolation`, `readOnly` or `asOfSystemTime`, which only the
   * outermost transaction sets.
   */
  async transaction<T>(
    fn: (tx: AsyncTransaction) => Promise<T> | T,
    options?: TransactionOptions,
  ): Promise<T> {
    checkCallback(fn);
    nestedOptions(options, "transaction");
    return await this.#runner.nest(async () => await fn(this));
  }

  static {
    newTransaction = (runner) => new AsyncTransaction(runner);
  }
}

/**
 * A pooled client. Connects lazily on first use (or on `connect()`); `close()` ends the pool,
 * and every later call fails with `ConnectionError`.
 *
 * @example Options, URL and environment
 * ```ts
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 *
 * // Nothing connects before the first statement (or `connect()`).
 * await using bank = new AsyncDatabase({ host: "localhost", port: 26257, database: "bank" });
 * await using fromUrl = AsyncDatabase.fromUrl("postgresql://root@localhost:26257/bank");
 * await using fromEnv = new AsyncDatabase(); // DATABASE_URL, then PGHOST, PGPORT, …
 * await fromEnv.connect();
 * console.log(String(fromEnv)); // AsyncDatabase(postgresql://root@…), never the password
 * ```
 */
export class AsyncDatabase extends AsyncQueryable implements AsyncDisposable {
  readonly #config: ResolvedConfig;
  readonly #pool: Pool;
  readonly #tables: TableCache;

  /**
   * A database from options; `DATABASE_URL`, the `PG*` variables and the defaults fill the rest.
   * Nothing connects until `connect()` or the first statement.
   *
   * @param options Connection options; the environment and defaults fill the rest.
   */
  constructor(options?: DatabaseOptions);
  /**
   * A database from a URL; explicit options win over it. Nothing connects yet.
   *
   * @param url A `postgresql://` URL; explicit options win over it.
   * @param options Connection options.
   */
  constructor(url: string, options?: DatabaseOptions);
  constructor(urlOrOptions?: string | DatabaseOptions, options?: DatabaseOptions) {
    const config = typeof urlOrOptions === "string"
      ? resolveConfig(urlOrOptions, options)
      : resolveConfig(undefined, urlOrOptions ?? options);
    const pool = new Pool(config);
    const tables: TableCache = { primaryKeys: new Map(), jsonColumns: new Map() };
    super(poolRunner(pool, tables, config.retry));
    this.#config = config;
    this.#pool = pool;
    this.#tables = tables;
  }

  static {
    grantDatabaseInternals((db) => {
      const pool = db.#pool;
      const tables = db.#tables;
      return {
        config: db.#config,
        dialect: (confirm) => pool.dialect(confirm),
        reserve: () => pool.reserve(),
        transaction: (context, dialect) =>
          newTransaction(attemptRunner(context, dialect, tables, pool.observer)),
        observer: pool.observer,
      };
    });
  }

  /**
   * Same as `new AsyncDatabase(url, options)`.
   * @param url A `postgresql://` URL.
   * @param options Connection options, which win over the URL.
   * @returns A database, not yet connected.
   */
  static fromUrl(url: string, options?: DatabaseOptions): AsyncDatabase {
    return new AsyncDatabase(url, options);
  }

  /**
   * Opens the pool and checks the server (idempotent). Called lazily on first use.
   * @throws {ConnectionError} naming host and port, within `connectTimeout`.
   */
  connect(): Promise<void> {
    return this.#pool.connect();
  }

  /**
   * Closes the pool (idempotent), waiting for statements in flight. Afterwards every call
   * fails with `ConnectionError` (code `CONNECTION_CLOSED`); make a new `AsyncDatabase` to
   * connect again.
   */
  close(): Promise<void> {
    return this.#pool.close();
  }

  /** Closes the pool: `await using db = new AsyncDatabase(…)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * The server's version as it reports it when a connection starts ("" before the first one):
   * CockroachDB's build string (`CockroachDB CCL v…`, as `version()` gives it), or
   * `PostgreSQL <version>`.
   */
  get serverVersion(): string {
    return this.#pool.version;
  }

  /**
   * The pool's numbers now, the same the OpenTelemetry pool metrics report: connections open,
   * idle, used, requests waiting, connections opened and closed since the database was made,
   * and retries by the SQLSTATE that caused them.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * await db.execute("SELECT 1");
   * const { used, idle, pending, retries } = db.stats();
   * console.log(used, idle, pending, retries); // 0 1 0 {}
   * ```
   * @returns The numbers.
   */
  stats(): PoolStats {
    return this.#pool.observer.stats();
  }

  /** `AsyncDatabase(postgresql://user@host:port/database)`, never with the password. */
  override toString(): string {
    return `AsyncDatabase(${describeTarget(this.#config)})`;
  }

  /** Shown by `Deno.inspect` and `console.log`: no password. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /**
   * Runs `fn` in a transaction and returns its value after a successful commit. Serialization
   * failures (SQLSTATE `40001`, and PostgreSQL's `40P01`) run it again with capped exponential
   * backoff and full jitter; a throw rolls back and re-throws the callback's own error.
   *
   * `BEGIN` (with its options, and CockroachDB's retry savepoint) travels with the callback's
   * first statement and `RELEASE` with `COMMIT`: a transaction of N statements, each waiting
   * for the one before, costs N + 1 round trips. A `BEGIN` that fails fails the transaction with
   * its own error, and nothing sent with it runs. A callback that sends nothing sends no
   * `BEGIN` and no `COMMIT`.
   *
   * @example A transfer
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * await db.createTable("accounts", { id: "INT PRIMARY KEY", balance: "DECIMAL NOT NULL" });
   * await db.batchInsert("accounts", [{ id: 1, balance: "100" }, { id: 2, balance: "0" }]);
   *
   * await db.transaction(async (tx) => {
   *   await tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", [10, 1]);
   *   await tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", [10, 2]);
   * });
   * console.log(await db.select("accounts", { orderBy: "id" }));
   * // [{ id: 1, balance: "90" }, { id: 2, balance: "10" }]
   * await db.dropTable("accounts");
   * ```
   * @param fn The work; it may run more than once.
   * @param options Retries, deadline, isolation, read-only, `asOfSystemTime`, `onRetry`;
   * `signal` and `timeout` (milliseconds) abort it: it rolls back and is not retried.
   * @returns The callback's value.
   * @throws {TransactionRetryError} when retries run out.
   * @throws {AmbiguousCommitError} when the commit's outcome is unknown.
   * @throws {DatabaseError} with code `57014` or `ABORTED` when it was aborted.
   */
  async transaction<T>(
    fn: (tx: AsyncTransaction) => Promise<T> | T,
    options?: TransactionOptions,
  ): Promise<T> {
    checkCallback(fn);
    const settings = transactionSettings(options, this.#config.retry);
    return await transact(
      this.#pool,
      this.#tables,
      settings,
      (runner) => fn(newTransaction(runner)),
    );
  }
}
