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
 * documentation is made here, then `deno task sync`.
 *
 * @example Connect, write and read
 * ```ts ignore
 * import { AsyncDatabase } from "@manticore/cockroachdb/async-database";
 *
 * await using db = new AsyncDatabase("postgresql://root@localhost:26257/defaultdb");
 * await db.createTable("users", { id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()", name: "TEXT" });
 * const ada = await db.insert("users", { name: "Ada" });
 * console.log(await db.select("users", { where: { id: ada.id } }));
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
import {
  callSignal,
  checkBatch,
  checkRecord,
  checkRecords,
  checkSql,
  nestedOptions,
} from "./_checks.ts";
import { batchError } from "./_errors.ts";
import { BatchFailure } from "./_link.ts";
import type { PoolStats, QueryCall } from "./_observe.ts";
import { grantDatabaseInternals } from "./_internal.ts";
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
import { Pool } from "./_pool.ts";
import { aborted } from "./_driver.ts";
import { transactionSettings } from "./_retry.ts";
import {
  attemptRunner,
  jsonColumns,
  jsonEncoded,
  poolRunner,
  type Runner,
  runStatements,
  type TableCache,
  transact,
  upsertPlan,
} from "./_runner.ts";
import {
  batchColumns,
  buildBatchInsert,
  buildBatchUpdate,
  buildCopyFrom,
  buildCount,
  buildCreateDatabase,
  buildCreateTable,
  buildDatabaseExists,
  buildDelete,
  buildDropDatabase,
  buildDropTable,
  buildInsert,
  buildSelect,
  buildTableExists,
  buildUpdate,
  buildUpsert,
  type Dialect,
  encodeCopyText,
  type OrderBy,
  quoteIdentifier,
  type Row,
  type SelectOptions,
  type Where,
  type WhereOperators,
} from "./_sql.ts";
import { DatabaseError, ValidationError } from "./errors.ts";

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
} from "./_config.ts";

let cursorCounter = 0;
const SIMPLE = Object.freeze({ simple: true });

/** How a helper's statement is sent: what aborts it, and what it is for the telemetry. */
function call(
  options: CallOptions | undefined,
  operation?: string,
  collection?: string,
): QueryCall | undefined {
  const signal = callSignal(options);
  if (operation === undefined) return signal === undefined ? undefined : { signal };
  return {
    operation,
    ...(collection === undefined ? {} : { collection }),
    ...(signal === undefined ? {} : { signal }),
  };
}

/**
 * The raw SQL and CRUD surface shared by {@linkcode AsyncDatabase} and its transaction handle
 * {@linkcode AsyncTransaction}. Not constructed directly.
 */
export abstract class AsyncQueryable {
  readonly #runner: Runner;

  /** @ignore */
  protected constructor(runner: Runner) {
    this.#runner = runner;
  }

  /**
   * Runs SQL and returns its rows (`[]` for statements without rows). Placeholders are
   * `$1 … $n`; without params the text may hold several statements (the last one's rows are
   * returned).
   *
   * @example
   * ```ts ignore
   * const rows = await db.execute<{ n: number }>("SELECT $1::int AS n", [1]);
   * ```
   * @param sql The statement text.
   * @param params The bind parameters.
   * @param options `signal` and `timeout` (milliseconds): abort the statement.
   * @returns The rows.
   * @throws {DatabaseError} with the SQLSTATE in `code` when the server refuses the statement
   * (`57014` or `ABORTED` when it was aborted).
   * @throws {ConnectionError} when the server cannot be reached.
   */
  async execute<T = Row>(
    sql: string,
    params?: readonly unknown[],
    options?: CallOptions,
  ): Promise<T[]> {
    checkSql(sql, params);
    return (await this.#runner.query(sql, params ?? [], call(options))).rows as T[];
  }

  /**
   * Runs SQL and returns its first row, or `null`.
   *
   * @example
   * ```ts ignore
   * const user = await db.queryOne("SELECT * FROM users WHERE id = $1", [id]);
   * ```
   * @param sql The statement text.
   * @param params The bind parameters.
   * @param options `signal` and `timeout` (milliseconds): abort the statement.
   * @returns The first row or `null`.
   * @throws {DatabaseError} when the server refuses the statement.
   */
  async queryOne<T = Row>(
    sql: string,
    params?: readonly unknown[],
    options?: CallOptions,
  ): Promise<T | null> {
    checkSql(sql, params);
    const { rows } = await this.#runner.query(sql, params ?? [], call(options));
    return rows.length === 0 ? null : rows[0] as T;
  }

  /**
   * `CREATE DATABASE IF NOT EXISTS`.
   *
   * @example
   * ```ts ignore
   * await db.createDatabase("bank");
   * ```
   * @param name The database name.
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  async createDatabase(name: string, options?: CallOptions): Promise<void> {
    const runner = this.#runner;
    const dialect = await runner.dialect();
    const c = call(options, "CREATE DATABASE");
    if (dialect === "cockroach") {
      await runner.query(buildCreateDatabase(name), [], c);
      return;
    }
    // PostgreSQL has no CREATE DATABASE IF NOT EXISTS.
    const exists = buildDatabaseExists(name);
    if ((await runner.query(exists.text, exists.params, c)).rows[0]?.exists === true) return;
    try {
      await runner.query(buildCreateDatabase(name, { dialect }), [], c);
    } catch (error) {
      if (!(error instanceof DatabaseError && error.code === "42P04")) throw error;
    }
  }

  /**
   * `DROP DATABASE IF EXISTS`.
   *
   * @example
   * ```ts ignore
   * await db.dropDatabase("bank");
   * ```
   * @param name The database name.
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  async dropDatabase(name: string, options?: CallOptions): Promise<void> {
    await this.#runner.query(buildDropDatabase(name), [], call(options, "DROP DATABASE"));
  }

  /**
   * Creates a table; column names are quoted, type strings used as given, order kept.
   *
   * @example
   * ```ts ignore
   * await db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT NOT NULL" });
   * ```
   * @param name The table name (`table` or `schema.table`).
   * @param columns Column name → SQL type (with constraints and defaults).
   * @param options `ifNotExists` (default true), `signal`, `timeout`.
   * @throws {ValidationError} when a name cannot be an identifier.
   */
  async createTable(
    name: string,
    columns: Readonly<Record<string, string>>,
    options?: CreateTableOptions,
  ): Promise<void> {
    await this.#runner.query(
      buildCreateTable(name, columns, options),
      [],
      call(options, "CREATE TABLE", name),
    );
  }

  /**
   * Drops a table.
   *
   * @example
   * ```ts ignore
   * await db.dropTable("users", { cascade: true });
   * ```
   * @param name The table name.
   * @param options `ifExists` (default true), `cascade` (default false), `signal`, `timeout`.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  async dropTable(name: string, options?: DropTableOptions): Promise<void> {
    await this.#runner.query(buildDropTable(name, options), [], call(options, "DROP TABLE", name));
  }

  /**
   * Whether a table exists (default schema `public`).
   *
   * @example
   * ```ts ignore
   * if (!(await db.tableExists("users"))) console.log("not yet");
   * ```
   * @param name The table name (`table` or `schema.table`).
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns True when the table exists.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  async tableExists(name: string, options?: CallOptions): Promise<boolean> {
    const { text, params } = buildTableExists(name);
    const { rows } = await this.#runner.query(text, params, call(options, "SELECT"));
    return rows[0]?.exists === true;
  }

  /**
   * Inserts one row and returns it; `{}` inserts `DEFAULT VALUES`.
   *
   * @example
   * ```ts ignore
   * const user = await db.insert("users", { id: 1, name: "Ada" });
   * ```
   * @param table The table name.
   * @param data Column → value; `undefined` values are left out.
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns The inserted row.
   * @throws {UniqueViolationError} on a duplicate key.
   */
  async insert<T = Row>(table: string, data: Row, options?: CallOptions): Promise<T> {
    checkRecord(data, "data");
    const { text, params } = buildInsert(table, data);
    return (await this.#runner.query(text, params, call(options, "INSERT", table))).rows[0] as T;
  }

  /**
   * Selects rows.
   *
   * @example
   * ```ts ignore
   * const rows = await db.select("users", { where: { age: { gte: 18 } }, orderBy: "name", limit: 10 });
   * ```
   * @param table The table name.
   * @param options `columns`, `where`, `orderBy`, `limit`, `offset`, `signal`, `timeout`.
   * @returns The rows.
   * @throws {ValidationError} when an option is malformed.
   */
  async select<T = Row>(table: string, options?: SelectOptions & CallOptions): Promise<T[]> {
    const { text, params } = buildSelect(table, options);
    return (await this.#runner.query(text, params, call(options, "SELECT", table))).rows as T[];
  }

  /**
   * Selects the first matching row, or `null`.
   *
   * @example
   * ```ts ignore
   * const ada = await db.selectOne("users", { where: { name: "Ada" } });
   * ```
   * @param table The table name.
   * @param options As for `select`; `limit` is 1.
   * @returns The row or `null`.
   * @throws {ValidationError} when an option is malformed.
   */
  async selectOne<T = Row>(
    table: string,
    options?: SelectOptions & CallOptions,
  ): Promise<T | null> {
    const rows = await this.select<T>(table, { ...options, limit: 1 });
    return rows.length === 0 ? null : rows[0];
  }

  /**
   * Updates matching rows and returns every updated row.
   *
   * @example
   * ```ts ignore
   * const rows = await db.update("users", { name: "Ada L." }, { id: 1 });
   * ```
   * @param table The table name.
   * @param data Column → new value (not empty).
   * @param where Conditions (not empty).
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns The updated rows.
   * @throws {ValidationError} when `data` or `where` is empty.
   */
  async update<T = Row>(
    table: string,
    data: Row,
    where: Where,
    options?: CallOptions,
  ): Promise<T[]> {
    checkRecord(data, "data");
    const { text, params } = buildUpdate(table, data, where);
    return (await this.#runner.query(text, params, call(options, "UPDATE", table))).rows as T[];
  }

  /**
   * Deletes matching rows.
   *
   * @example
   * ```ts ignore
   * const removed = await db.delete("users", { id: [1, 2, 3] });
   * ```
   * @param table The table name.
   * @param where Conditions (not empty; use `TRUNCATE` to empty a table).
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns The number of rows deleted.
   * @throws {ValidationError} when `where` is empty.
   */
  async delete(table: string, where: Where, options?: CallOptions): Promise<number> {
    const { text, params } = buildDelete(table, where);
    return (await this.#runner.query(text, params, call(options, "DELETE", table))).count;
  }

  /**
   * Inserts a row, or updates it when it conflicts: `UPSERT` on CockroachDB, `INSERT … ON
   * CONFLICT … DO UPDATE` otherwise (on the primary key unless `conflictColumns` is given).
   *
   * @example
   * ```ts ignore
   * await db.upsert("accounts", { id: 1, balance: "100" });
   * ```
   * @param table The table name.
   * @param data Column → value.
   * @param options `conflictColumns`, `signal`, `timeout`.
   * @returns The inserted or updated row.
   * @throws {ValidationError} when the table has no primary key and no `conflictColumns`.
   */
  async upsert<T = Row>(table: string, data: Row, options?: UpsertOptions): Promise<T> {
    checkRecord(data, "data");
    const runner = this.#runner;
    const upsert = await upsertPlan(runner, table, options);
    const { text, params } = buildUpsert(table, data, upsert);
    const operation = upsert.dialect === "cockroach" && options?.conflictColumns === undefined
      ? "UPSERT"
      : "INSERT";
    return (await runner.query(text, params, call(options, operation, table))).rows[0] as T;
  }

  /**
   * Inserts many rows, one round trip per chunk, all in one transaction. Every record must have
   * the same keys.
   *
   * @example
   * ```ts ignore
   * const rows = await db.batchInsert("users", [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
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
  ): Promise<T[]>;
  /**
   * Inserts many rows without returning them (may use `COPY`).
   *
   * @example
   * ```ts ignore
   * const count = await db.batchInsert("events", events, { returning: false });
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
  ): Promise<number>;
  async batchInsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: BatchInsertOptions,
  ): Promise<T[] | number> {
    checkRecords(records);
    const returning = options?.returning ?? true;
    if (records.length === 0) return returning ? [] : 0;
    const runner = this.#runner;
    if (!returning && options?.chunkSize === undefined) {
      const columns = batchColumns(records);
      // COPY reads a json/jsonb column's text as JSON: encode those values as JSON first, as
      // the INSERT path does (a string "123" must stay a string, true must not become "t").
      const json = new Set(await jsonColumns(runner, table));
      const data = encodeCopyText(
        json.size === 0 || !columns.some((c) => json.has(c))
          ? records
          : records.map((r) => jsonEncoded(r, json)),
        columns,
      );
      if (data !== null) {
        await runner.copyIn(buildCopyFrom(table, columns), data, call(options, "COPY", table));
        return records.length;
      }
    }
    const statements = buildBatchInsert(table, records, {
      returning,
      chunkSize: options?.chunkSize,
    });
    const results = await runStatements(runner, statements, call(options, "INSERT", table));
    return returning
      ? results.flatMap((r) => r.rows) as T[]
      : results.reduce((n, r) => n + r.count, 0);
  }

  /**
   * Upserts many rows (see `upsert`), one round trip per chunk, in one transaction.
   *
   * @example
   * ```ts ignore
   * await db.batchUpsert("accounts", [{ id: 1, balance: "10" }, { id: 2, balance: "20" }]);
   * ```
   * @param table The table name.
   * @param records The rows.
   * @param options `conflictColumns`, `chunkSize`, `signal`, `timeout`.
   * @returns The rows, in input order.
   * @throws {ValidationError} when records have differing keys.
   */
  async batchUpsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: UpsertOptions,
  ): Promise<T[]> {
    checkRecords(records);
    if (records.length === 0) return [];
    const runner = this.#runner;
    const upsert = await upsertPlan(runner, table, options);
    const statements = buildBatchInsert(table, records, {
      returning: true,
      chunkSize: options?.chunkSize,
      upsert,
    });
    const operation = upsert.dialect === "cockroach" && options?.conflictColumns === undefined
      ? "UPSERT"
      : "INSERT";
    return (await runStatements(runner, statements, call(options, operation, table)))
      .flatMap((r) => r.rows) as T[];
  }

  /**
   * Updates many rows by key, in one transaction.
   *
   * @example
   * ```ts ignore
   * await db.batchUpdate("users", [{ id: 1, name: "A" }, { id: 2, name: "B" }]);
   * ```
   * @param table The table name.
   * @param records Each record holds the key column and the columns to set.
   * @param options `keyColumn` (default `"id"`), `signal`, `timeout`.
   * @returns The updated rows, in input order (a key that matches nothing adds no row).
   * @throws {ValidationError} when a record lacks the key or has nothing to set.
   */
  async batchUpdate<T = Row>(
    table: string,
    records: readonly Row[],
    options?: BatchUpdateOptions,
  ): Promise<T[]> {
    checkRecords(records);
    if (records.length === 0) return [];
    const statements = buildBatchUpdate(table, records, options?.keyColumn ?? "id");
    return (await runStatements(this.#runner, statements, call(options, "UPDATE", table)))
      .flatMap((r) => r.rows) as T[];
  }

  /**
   * Counts rows.
   *
   * @example
   * ```ts ignore
   * const adults = await db.count("users", { age: { gte: 18 } });
   * ```
   * @param table The table name.
   * @param where Conditions.
   * @param options `signal` and `timeout` (milliseconds): abort the call.
   * @returns The number of matching rows.
   * @throws {ValidationError} when `where` is malformed.
   */
  async count(table: string, where?: Where, options?: CallOptions): Promise<number> {
    const { text, params } = buildCount(table, where);
    const { rows } = await this.#runner.query(text, params, call(options, "SELECT", table));
    return Number(rows[0]?.count ?? 0);
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
   * const [debited, credited] = await db.batch([
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
  async batch<T = Row>(
    statements: readonly BatchStatement[],
    options?: TransactionOptions,
  ): Promise<T[][]> {
    checkBatch(statements);
    if (statements.length === 0) return [];
    const members = statements.map((s) => ({ text: s.sql, params: s.params ?? [] }));
    const runner = this.#runner;
    // One operation for the telemetry, named BATCH, with the batch's size.
    const results = await runner.observer.batch(
      members.map((m) => m.text).join("; "),
      { operation: "", batchSize: members.length },
      () =>
        runner.batch(members, options).catch((failure) => {
          if (!(failure instanceof BatchFailure)) throw failure;
          throw failure.index >= 0 ? batchError(failure.error, failure.index) : failure.error;
        }),
    );
    return results.map((r) => r.rows as T[]);
  }

  /**
   * Streams the rows of a query through a SQL cursor (`DECLARE … CURSOR` in a transaction),
   * `batchSize` rows per round trip: memory stays bounded whatever the result size. Breaking
   * out of the loop closes the cursor; a stream that is neither finished nor broken out of
   * holds a connection until the database is closed.
   *
   * @example
   * ```ts ignore
   * for await (const row of db.stream("SELECT * FROM events ORDER BY id", [], { batchSize: 500 })) {
   *   console.log(row);
   * }
   * ```
   * @param sql A `SELECT` (or `VALUES`) statement.
   * @param params The bind parameters.
   * @param options `batchSize` (default 1000), `signal`, `timeout` (an aborted stream closes its
   * cursor and gives its connection back).
   * @returns An async iterable of rows.
   * @throws {ValidationError} when `batchSize` is not a positive integer.
   */
  async *stream<T = Row>(
    sql: string,
    params?: readonly unknown[],
    options?: StreamOptions,
  ): AsyncGenerator<T, void, undefined> {
    checkSql(sql, params);
    const batchSize = options?.batchSize ?? 1000;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new ValidationError(`Cannot stream: batchSize ${batchSize} is not a positive integer`, {
        field: "batchSize",
      });
    }
    const signal = callSignal(options);
    if (signal?.aborted) throw aborted(signal, false);
    const { session, own, release } = await this.#runner.cursorSession();
    const cursor = quoteIdentifier(`manticore_cursor_${++cursorCounter}`);
    const simple = signal === undefined ? SIMPLE : { simple: true, signal };
    let open = false;
    let failed = false;
    try {
      if (own) await session.query("BEGIN", [], simple);
      open = own;
      await session.query(
        `DECLARE ${cursor} NO SCROLL CURSOR FOR ${sql}`,
        params ?? [],
        { prepare: false, ...(signal === undefined ? {} : { signal }) },
      );
      const fetch = `FETCH ${batchSize} FROM ${cursor}`;
      for (;;) {
        const { rows } = await session.query(fetch, [], simple);
        for (const row of rows) yield row as T;
        if (rows.length < batchSize) break;
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      try {
        if (own) {
          if (open) await session.query(failed ? "ROLLBACK" : "COMMIT", [], SIMPLE);
        } else if (!failed) {
          await session.query(`CLOSE ${cursor}`, [], SIMPLE);
        }
      } finally {
        release();
      }
    }
  }
}

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
   * ```ts ignore
   * await db.transaction(async (tx) => {
   *   await tx.insert("orders", order);
   *   try {
   *     await tx.transaction((inner) => inner.insert("coupons_used", { order: order.id, code }));
   *   } catch (error) {
   *     if (!(error instanceof UniqueViolationError)) throw error;
   *   }
   * });
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
    if (typeof fn !== "function") {
      throw new ValidationError("Cannot run transaction: the callback must be a function", {
        field: "fn",
      });
    }
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
 * ```ts ignore
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 *
 * const db = new AsyncDatabase({ host: "localhost", port: 26257, database: "bank" });
 * const fromUrl = AsyncDatabase.fromUrl("postgresql://root@localhost:26257/bank?sslmode=disable");
 * const fromEnv = new AsyncDatabase(); // DATABASE_URL, then PGHOST, PGPORT, …
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
   * ```ts ignore
   * const { used, idle, pending, retries } = db.stats();
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
   * ```ts ignore
   * await db.transaction(async (tx) => {
   *   await tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", [from]);
   *   await tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = $1", [to]);
   * });
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
    if (typeof fn !== "function") {
      throw new ValidationError("Cannot run transaction: the callback must be a function", {
        field: "fn",
      });
    }
    const settings = transactionSettings(options, this.#config.retry);
    return await transact(this.#pool, this.#tables, settings, newTransaction, fn);
  }
}
