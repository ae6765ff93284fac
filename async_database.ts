/**
 * `AsyncDatabase`: a pooled CockroachDB (and PostgreSQL) client with raw SQL, CRUD helpers,
 * streaming, and transactions that retry serialization failures with CockroachDB's
 * client-side protocol.
 *
 * Importing this module reads no file, reads no environment variable and starts nothing: it
 * works on Deno Deploy with `--allow-net --allow-env`.
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
  createDriver,
  type Driver,
  loadTls,
  type QueryOptions,
  type QueryResult,
  type ReservedSession,
  type Session,
} from "./_driver.ts";
import { isRetryable, toDatabaseError } from "./_errors.ts";
import { registerInternals } from "./_internal.ts";
import { type SessionState, transactionSettings, transactionSteps } from "./_retry.ts";
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
  quoteTableName,
  type Row,
  type SelectOptions,
  type Where,
  type WhereOperators,
} from "./_sql.ts";
import { jsonText } from "./_serialize.ts";
import { highestPlaceholder } from "./_sql_scan.ts";
import { ConnectionError, DatabaseError, ValidationError } from "./crud/exceptions.ts";

export type {
  DatabaseOptions,
  Dialect,
  OrderBy,
  Row,
  SelectOptions,
  TransactionOptions,
  Where,
  WhereOperators,
};
export type {
  Int8Mode,
  IsolationLevel,
  Notice,
  RetryInfo,
  RetryOptions,
  SslMode,
} from "./_config.ts";

/** Options of `createTable`. */
export interface CreateTableOptions {
  /**
   * Add `IF NOT EXISTS`.
   * @default {true}
   */
  readonly ifNotExists?: boolean;
}

/** Options of `dropTable`. */
export interface DropTableOptions {
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
export interface UpsertOptions {
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
export interface BatchInsertOptions {
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
export interface BatchUpdateOptions {
  /**
   * The column that identifies each record.
   * @default {"id"}
   */
  readonly keyColumn?: string;
}

/** Options of `stream`. */
export interface StreamOptions {
  /**
   * Rows fetched from the cursor per round trip.
   * @default {1000}
   */
  readonly batchSize?: number;
}

/** What an `AsyncQueryable` needs from the connection it runs on. */
interface Runner {
  query(text: string, params?: readonly unknown[], prepare?: boolean): Promise<QueryResult>;
  copyIn(text: string, data: string): Promise<void>;
  dialect(): Promise<Dialect>;
  /** Runs `fn` inside one transaction (the transaction itself, on a transaction handle). */
  atomically<T>(fn: (q: AsyncQueryable) => Promise<T>): Promise<T>;
  /** A connection for a cursor, and whether the cursor needs its own transaction. */
  cursorSession(): Promise<{ session: Session; own: boolean; release(): void }>;
  primaryKeys: Map<string, readonly string[]>;
}

const runners = new WeakMap<AsyncQueryable, Runner>();
const PREPARED: QueryOptions = Object.freeze({ prepare: true });
const UNPREPARED: QueryOptions = Object.freeze({ prepare: false });
let cursorCounter = 0;

function runnerOf(q: AsyncQueryable): Runner {
  return runners.get(q) as Runner;
}

// Placeholder counts by statement text: a hot statement is scanned once.
const placeholderCounts = new Map<string, number>();

function placeholders(sql: string): number {
  let count = placeholderCounts.get(sql);
  if (count === undefined) {
    count = highestPlaceholder(sql);
    if (placeholderCounts.size >= 1024) placeholderCounts.clear();
    placeholderCounts.set(sql, count);
  }
  return count;
}

function checkSql(sql: unknown, params: unknown): void {
  if (typeof sql !== "string" || sql.trim() === "") {
    throw new ValidationError("Cannot execute query: SQL must be a non-empty string", {
      field: "sql",
    });
  }
  if (params !== undefined && !Array.isArray(params)) {
    throw new ValidationError("Cannot execute query: params must be an array", {
      field: "params",
    });
  }
  // Without parameters the text goes by the simple protocol, where "$1" can be legitimate
  // (PREPARE, a BEGIN ATOMIC body) and a missing one is the server's clear 42P02.
  const given = params === undefined ? 0 : params.length;
  if (given === 0) return;
  const expected = placeholders(sql);
  if (expected !== given) {
    const range = expected === 0 ? "" : expected === 1 ? " ($1)" : ` ($1 … $${expected})`;
    throw new ValidationError(
      `Cannot execute query: the SQL expects ${
        plural(expected, "parameter")
      }${range} but ${given} ${given === 1 ? "was" : "were"} given`,
      { field: "params" },
    );
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function checkRecord(data: unknown, field: string): asserts data is Row {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ValidationError(`Cannot use ${field}: expected an object of column values`, {
      field,
    });
  }
}

function checkRecords(records: unknown, field = "records"): asserts records is Row[] {
  if (!Array.isArray(records)) {
    throw new ValidationError(`Cannot use ${field}: expected an array of objects`, { field });
  }
  records.forEach((r, i) => checkRecord(r, `${field}[${i}]`));
}

/**
 * The raw SQL and CRUD surface shared by {@linkcode AsyncDatabase} and its transaction handle
 * {@linkcode AsyncTransaction}. Not constructed directly.
 */
export abstract class AsyncQueryable {
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
   * @returns The rows.
   * @throws {DatabaseError} with the SQLSTATE in `code` when the server refuses the statement.
   */
  async execute<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    checkSql(sql, params);
    return (await runnerOf(this).query(sql, params ?? [])).rows as T[];
  }

  /**
   * Runs SQL and returns its first row, or `null`.
   * @param sql The statement text.
   * @param params The bind parameters.
   * @returns The first row or `null`.
   */
  async queryOne<T = Row>(sql: string, params?: readonly unknown[]): Promise<T | null> {
    checkSql(sql, params);
    const { rows } = await runnerOf(this).query(sql, params ?? []);
    return rows.length === 0 ? null : rows[0] as T;
  }

  /**
   * `CREATE DATABASE IF NOT EXISTS`.
   * @param name The database name.
   */
  async createDatabase(name: string): Promise<void> {
    const runner = runnerOf(this);
    const dialect = await runner.dialect();
    if (dialect === "cockroach") {
      await runner.query(buildCreateDatabase(name));
      return;
    }
    // PostgreSQL has no CREATE DATABASE IF NOT EXISTS.
    const exists = buildDatabaseExists(name);
    if ((await runner.query(exists.text, exists.params)).rows[0]?.exists === true) return;
    try {
      await runner.query(buildCreateDatabase(name, { dialect }));
    } catch (error) {
      if (!(error instanceof DatabaseError && error.code === "42P04")) throw error;
    }
  }

  /**
   * `DROP DATABASE IF EXISTS`.
   * @param name The database name.
   */
  async dropDatabase(name: string): Promise<void> {
    await runnerOf(this).query(buildDropDatabase(name));
  }

  /**
   * Creates a table; column names are quoted, type strings used as given, order kept.
   * @param name The table name (`table` or `schema.table`).
   * @param columns Column name → SQL type (with constraints and defaults).
   * @param options `ifNotExists` (default true).
   */
  async createTable(
    name: string,
    columns: Readonly<Record<string, string>>,
    options?: CreateTableOptions,
  ): Promise<void> {
    await runnerOf(this).query(buildCreateTable(name, columns, options));
  }

  /**
   * Drops a table.
   * @param name The table name.
   * @param options `ifExists` (default true), `cascade` (default false).
   */
  async dropTable(name: string, options?: DropTableOptions): Promise<void> {
    await runnerOf(this).query(buildDropTable(name, options));
  }

  /**
   * Whether a table exists (default schema `public`).
   * @param name The table name (`table` or `schema.table`).
   * @returns True when the table exists.
   */
  async tableExists(name: string): Promise<boolean> {
    const { text, params } = buildTableExists(name);
    const { rows } = await runnerOf(this).query(text, params);
    return rows[0]?.exists === true;
  }

  /**
   * Inserts one row and returns it; `{}` inserts `DEFAULT VALUES`.
   * @param table The table name.
   * @param data Column → value; `undefined` values are left out.
   * @returns The inserted row.
   * @throws {UniqueViolationError} on a duplicate key.
   */
  async insert<T = Row>(table: string, data: Row): Promise<T> {
    checkRecord(data, "data");
    const { text, params } = buildInsert(table, data);
    return (await runnerOf(this).query(text, params)).rows[0] as T;
  }

  /**
   * Selects rows.
   * @param table The table name.
   * @param options `columns`, `where`, `orderBy`, `limit`, `offset`.
   * @returns The rows.
   */
  async select<T = Row>(table: string, options?: SelectOptions): Promise<T[]> {
    const { text, params } = buildSelect(table, options);
    return (await runnerOf(this).query(text, params)).rows as T[];
  }

  /**
   * Selects the first matching row, or `null`.
   * @param table The table name.
   * @param options As for `select`; `limit` is 1.
   * @returns The row or `null`.
   */
  async selectOne<T = Row>(table: string, options?: SelectOptions): Promise<T | null> {
    const rows = await this.select<T>(table, { ...options, limit: 1 });
    return rows.length === 0 ? null : rows[0];
  }

  /**
   * Updates matching rows and returns every updated row.
   * @param table The table name.
   * @param data Column → new value (not empty).
   * @param where Conditions (not empty).
   * @returns The updated rows.
   * @throws {ValidationError} when `data` or `where` is empty.
   */
  async update<T = Row>(table: string, data: Row, where: Where): Promise<T[]> {
    checkRecord(data, "data");
    const { text, params } = buildUpdate(table, data, where);
    return (await runnerOf(this).query(text, params)).rows as T[];
  }

  /**
   * Deletes matching rows.
   * @param table The table name.
   * @param where Conditions (not empty; use `TRUNCATE` to empty a table).
   * @returns The number of rows deleted.
   * @throws {ValidationError} when `where` is empty.
   */
  async delete(table: string, where: Where): Promise<number> {
    const { text, params } = buildDelete(table, where);
    return (await runnerOf(this).query(text, params)).count;
  }

  /**
   * Inserts a row, or updates it when it conflicts: `UPSERT` on CockroachDB, `INSERT … ON
   * CONFLICT … DO UPDATE` otherwise (on the primary key unless `conflictColumns` is given).
   * @param table The table name.
   * @param data Column → value.
   * @param options `conflictColumns`.
   * @returns The inserted or updated row.
   */
  async upsert<T = Row>(table: string, data: Row, options?: UpsertOptions): Promise<T> {
    checkRecord(data, "data");
    const runner = runnerOf(this);
    const upsert = await upsertPlan(runner, table, options);
    const { text, params } = buildUpsert(table, data, upsert);
    return (await runner.query(text, params)).rows[0] as T;
  }

  /**
   * Inserts many rows, one round trip per chunk, all in one transaction. Every record must have
   * the same keys.
   * @param table The table name.
   * @param records The rows.
   * @param options `returning` (default true): rows in input order, or the count (may use `COPY`).
   * @returns The inserted rows, or their count with `returning: false`.
   * @throws {ValidationError} when records have differing keys.
   */
  batchInsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: BatchInsertOptions & { readonly returning?: true },
  ): Promise<T[]>;
  /**
   * Inserts many rows without returning them (may use `COPY`).
   * @param table The table name.
   * @param records The rows.
   * @param options `returning: false`, `chunkSize`.
   * @returns The number of rows inserted.
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
    const runner = runnerOf(this);
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
        await runner.copyIn(buildCopyFrom(table, columns), data);
        return records.length;
      }
    }
    const statements = buildBatchInsert(table, records, {
      returning,
      chunkSize: options?.chunkSize,
    });
    const results = await runStatements(runner, statements);
    return returning
      ? results.flatMap((r) => r.rows) as T[]
      : results.reduce((n, r) => n + r.count, 0);
  }

  /**
   * Upserts many rows (see `upsert`), one round trip per chunk, in one transaction.
   * @param table The table name.
   * @param records The rows.
   * @param options `conflictColumns`, `chunkSize`.
   * @returns The rows, in input order.
   */
  async batchUpsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: UpsertOptions,
  ): Promise<T[]> {
    checkRecords(records);
    if (records.length === 0) return [];
    const runner = runnerOf(this);
    const upsert = await upsertPlan(runner, table, options);
    const statements = buildBatchInsert(table, records, {
      returning: true,
      chunkSize: options?.chunkSize,
      upsert,
    });
    return (await runStatements(runner, statements)).flatMap((r) => r.rows) as T[];
  }

  /**
   * Updates many rows by key, in one transaction.
   * @param table The table name.
   * @param records Each record holds the key column and the columns to set.
   * @param options `keyColumn` (default `"id"`).
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
    return (await runStatements(runnerOf(this), statements)).flatMap((r) => r.rows) as T[];
  }

  /**
   * Counts rows.
   * @param table The table name.
   * @param where Conditions.
   * @returns The number of matching rows.
   */
  async count(table: string, where?: Where): Promise<number> {
    const { text, params } = buildCount(table, where);
    const { rows } = await runnerOf(this).query(text, params);
    return Number(rows[0]?.count ?? 0);
  }

  /**
   * Streams the rows of a query through a SQL cursor (`DECLARE … CURSOR` in a transaction),
   * `batchSize` rows per round trip: memory stays bounded whatever the result size.
   * Breaking out of the loop closes the cursor.
   *
   * @example
   * ```ts ignore
   * for await (const row of db.stream("SELECT * FROM events ORDER BY id", [], { batchSize: 500 })) {
   *   console.log(row);
   * }
   * ```
   * @param sql A `SELECT` (or `VALUES`) statement.
   * @param params The bind parameters.
   * @param options `batchSize` (default 1000).
   * @returns An async iterable of rows.
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
    const { session, own, release } = await runnerOf(this).cursorSession();
    const cursor = quoteIdentifier(`manticore_cursor_${++cursorCounter}`);
    let open = false;
    let failed = false;
    try {
      if (own) await session.query("BEGIN", [], { simple: true });
      open = own;
      await session.query(
        `DECLARE ${cursor} NO SCROLL CURSOR FOR ${sql}`,
        params ?? [],
        { prepare: false },
      );
      const fetch = `FETCH ${batchSize} FROM ${cursor}`;
      for (;;) {
        const { rows } = await session.query(fetch, [], { simple: true });
        for (const row of rows) yield row as T;
        if (rows.length < batchSize) break;
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      try {
        if (own) {
          if (open) await session.query(failed ? "ROLLBACK" : "COMMIT", [], { simple: true });
        } else if (!failed) {
          await session.query(`CLOSE ${cursor}`, [], { simple: true });
        }
      } finally {
        release();
      }
    }
  }
}

async function upsertPlan(
  runner: Runner,
  table: string,
  options: UpsertOptions | undefined,
): Promise<{ conflictColumns?: readonly string[]; dialect: Dialect }> {
  const dialect = await runner.dialect();
  if (options?.conflictColumns !== undefined || dialect === "cockroach") {
    return { conflictColumns: options?.conflictColumns, dialect };
  }
  return { conflictColumns: await primaryKey(runner, table), dialect };
}

async function primaryKey(runner: Runner, table: string): Promise<readonly string[]> {
  const quoted = quoteTableName(table);
  const cached = runner.primaryKeys.get(quoted);
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
  runner.primaryKeys.set(quoted, key);
  return key;
}

// The json/jsonb columns of a table, cached with the primary keys (under a "json:" key).
async function jsonColumns(runner: Runner, table: string): Promise<readonly string[]> {
  const key = `json:${quoteTableName(table)}`;
  const cached = runner.primaryKeys.get(key);
  if (cached) return cached;
  const { rows } = await runner.query(
    `SELECT attname AS "name" FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
        AND atttypid IN ('json'::regtype, 'jsonb'::regtype)`,
    [quoteTableName(table)],
  );
  const names = rows.map((r) => String(r.name));
  runner.primaryKeys.set(key, names);
  return names;
}

function jsonEncoded(record: Row, json: ReadonlySet<string>): Row {
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

// One statement runs as is; several run in one transaction, sent together so they pipeline.
function runStatements(
  runner: Runner,
  statements: readonly { text: string; params: unknown[] }[],
): Promise<QueryResult[]> {
  if (statements.length === 1) {
    return runner.query(statements[0].text, statements[0].params).then((r) => [r]);
  }
  return runner.atomically((q) => {
    const inner = runnerOf(q);
    return Promise.all(statements.map((s) => inner.query(s.text, s.params)));
  });
}

/** Per-attempt state of one transaction, shared by its handle and the runner. */
interface TransactionContext {
  readonly session: ReservedSession;
  sawRetryable: boolean;
  closed: boolean;
}

/**
 * The handle a `transaction()` callback receives: `execute`, `queryOne` and every CRUD helper,
 * all on the transaction's one connection. It cannot be used after the callback returns.
 */
export class AsyncTransaction extends AsyncQueryable {
  /** @param context Internal: created by `AsyncDatabase.transaction()`. */
  private constructor() {
    super();
  }

  /** @internal Builds the handle for one attempt. */
  static create(
    context: TransactionContext,
    dialect: Dialect,
    primaryKeys: Map<string, readonly string[]>,
  ): AsyncTransaction {
    const tx = new AsyncTransaction();
    const check = (): void => {
      if (context.closed) {
        throw new DatabaseError("Cannot use transaction: it has already ended", {
          code: "TRANSACTION_CLOSED",
        });
      }
    };
    let savepoints = 0;
    const query = async (text: string, params: readonly unknown[] = [], prepare = true) => {
      check();
      try {
        return await context.session.query(text, params, params.length ? { prepare } : undefined);
      } catch (error) {
        if (isRetryable(error)) context.sawRetryable = true;
        throw error;
      }
    };
    runners.set(tx, {
      query,
      async copyIn(text, data) {
        check();
        await context.session.copyIn(text, data);
      },
      dialect: () => Promise.resolve(dialect),
      // Inside a transaction, a batch of several statements runs under a savepoint: a chunk
      // refused by the client (which does not abort the transaction, as a server error would)
      // takes the chunks already sent with it, so a caught refusal leaves no half batch.
      atomically: async (fn) => {
        const name = `manticore_batch_${++savepoints}`;
        await query(`SAVEPOINT ${name}`);
        try {
          const result = await fn(tx);
          await query(`RELEASE SAVEPOINT ${name}`);
          return result;
        } catch (error) {
          // After a serialization failure CockroachDB allows only its restart savepoint: the
          // runner's retry undoes the attempt then.
          await query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => {});
          throw error;
        }
      },
      cursorSession: () => {
        check();
        return Promise.resolve({ session: context.session, own: false, release: () => {} });
      },
      primaryKeys,
    });
    return tx;
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
  #driver: Driver | undefined;
  #connecting: Promise<Driver> | undefined;
  /** The close() in progress, for a second close() to wait on. */
  #ending: Promise<void> | undefined;
  /** The connect in progress, with its driver once made, so that close() can end it. */
  #opening: { driver?: Driver } | undefined;
  /** Set by close(): every later call fails. */
  #closed = false;
  #dialect: Dialect | undefined;
  #version = "";
  readonly #primaryKeys = new Map<string, readonly string[]>();

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
    super();
    this.#config = typeof urlOrOptions === "string"
      ? resolveConfig(urlOrOptions, options)
      : resolveConfig(undefined, urlOrOptions ?? options);
    runners.set(this, {
      // Not async: once connected, a statement goes to the driver without an extra promise.
      query: (text, params = [], prepare = true) => {
        const options = params.length === 0 ? undefined : prepare ? PREPARED : UNPREPARED;
        const driver = this.#driver;
        return driver
          ? driver.query(text, params, options)
          : this.#connect().then((d) => d.query(text, params, options));
      },
      copyIn: async (text, data) => {
        const driver = this.#driver ?? await this.#connect();
        await driver.copyIn(text, data);
      },
      dialect: () => this.#getDialect(),
      atomically: (fn) => this.transaction((tx) => fn(tx)),
      cursorSession: async () => {
        const session = await this.#reserve();
        return { session, own: true, release: () => session.release() };
      },
      primaryKeys: this.#primaryKeys,
    });
    registerInternals(this, {
      config: this.#config,
      dialect: () => this.#getDialect(),
      reserve: () => this.#reserve(),
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
  async connect(): Promise<void> {
    if (this.#driver === undefined) await this.#connect();
  }

  /**
   * Closes the pool (idempotent), waiting for statements in flight. Afterwards every call
   * fails with `ConnectionError` (code `CONNECTION_CLOSED`); make a new `AsyncDatabase` to
   * connect again.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const driver = this.#driver;
    const connecting = this.#connecting;
    const opening = this.#opening;
    this.#driver = undefined;
    this.#connecting = undefined;
    this.#opening = undefined;
    const ending = driver ? driver.end() : connecting
      // A connect in progress is ended too (its server may never answer): its callers get a
      // ConnectionError, and a driver it completes with is closed, not kept.
      ? Promise.all([opening?.driver?.end(0), connecting.catch(() => {})]).then(() => {})
      : undefined;
    if (ending === undefined) {
      // Nothing left to close: a close() still in progress is waited for.
      await this.#ending;
      return;
    }
    this.#ending = ending.catch(() => {});
    await ending;
  }

  /** Closes the pool: `await using db = new AsyncDatabase(…)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The server's `version()` string, once connected ("" before). */
  get serverVersion(): string {
    return this.#version;
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
   * @example A transfer
   * ```ts ignore
   * await db.transaction(async (tx) => {
   *   await tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", [from]);
   *   await tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = $1", [to]);
   * });
   * ```
   * @param fn The work; it may run more than once.
   * @param options Retries, deadline, isolation, read-only, `asOfSystemTime`, `onRetry`.
   * @returns The callback's value.
   * @throws {TransactionRetryError} when retries run out.
   * @throws {AmbiguousCommitError} when the commit's outcome is unknown.
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
    const dialect = await this.#getDialect();
    const steps = transactionSteps<T>(settings, dialect);
    let session: ReservedSession | undefined;
    let context: TransactionContext | undefined;
    let input: { value?: unknown; error?: unknown } = {};
    for (;;) {
      const next = "error" in input ? steps.throw(input.error) : steps.next(input.value);
      if (next.done) return next.value;
      const step = next.value;
      try {
        switch (step.kind) {
          case "reserve":
            session?.release();
            session = undefined;
            session = await this.#reserve();
            input = { value: undefined };
            break;
          case "query": {
            const result = await (session as ReservedSession).query(step.text, [], {
              simple: true,
            });
            input = { value: result.command };
            break;
          }
          case "callback": {
            context = { session: session as ReservedSession, sawRetryable: false, closed: false };
            const tx = AsyncTransaction.create(context, dialect, this.#primaryKeys);
            try {
              input = { value: await fn(tx) };
            } finally {
              context.closed = true;
            }
            break;
          }
          case "sleep":
            await new Promise((resolve) => setTimeout(resolve, step.ms));
            input = { value: undefined };
            break;
          case "state":
            input = {
              value: {
                lost: session?.lost ?? true,
                sawRetryable: context?.sawRetryable ?? false,
              } satisfies SessionState,
            };
            break;
          case "release":
            session?.release();
            session = undefined;
            input = { value: undefined };
            break;
        }
      } catch (error) {
        input = { error };
      }
    }
  }

  async #reserve(): Promise<ReservedSession> {
    const driver = this.#driver ?? await this.#connect();
    return driver.reserve();
  }

  async #getDialect(): Promise<Dialect> {
    if (this.#dialect === undefined || this.#driver === undefined) await this.connect();
    return this.#dialect as Dialect;
  }

  #connect(): Promise<Driver> {
    if (this.#closed) {
      return Promise.reject(
        new ConnectionError(
          `Cannot use the database "${describeTarget(this.#config)}": it is closed`,
          { code: "CONNECTION_CLOSED" },
        ),
      );
    }
    if (this.#connecting) return this.#connecting;
    const attempt: { driver?: Driver } = {};
    const connecting: Promise<Driver> = this.#open(attempt).then(
      async (driver) => {
        if (this.#connecting !== connecting) {
          // close() ran while this connect was in progress.
          await driver.end(0).catch(() => {});
          throw new ConnectionError(
            `Cannot connect to "${hostList(this.#config)}": the database was closed meanwhile`,
            { code: "CONNECTION_CLOSED" },
          );
        }
        this.#opening = undefined;
        this.#driver = driver;
        return driver;
      },
      (error) => {
        if (this.#connecting === connecting) {
          this.#connecting = undefined;
          this.#opening = undefined;
        }
        throw error;
      },
    );
    this.#connecting = connecting;
    this.#opening = attempt;
    return connecting;
  }

  async #open(attempt: { driver?: Driver }): Promise<Driver> {
    const config = this.#config;
    const target = hostList(config);
    const tls = await loadTls(config);
    const driver = createDriver(config, tls);
    attempt.driver = driver;
    try {
      const { rows } = await driver.query("SELECT version() AS version", [], { simple: true });
      this.#version = String(rows[0]?.version ?? "");
      this.#dialect = this.#version.includes("CockroachDB") ? "cockroach" : "postgres";
      // Warm the pool to minConnections: concurrent statements open concurrent connections.
      if (config.minConnections > 1) {
        await Promise.all(
          Array.from(
            { length: config.minConnections - 1 },
            () => driver.query("SELECT 1", [], { simple: true }),
          ),
        );
      }
      return driver;
    } catch (error) {
      await driver.end(0).catch(() => {});
      const e = toDatabaseError(error, target);
      if (e instanceof ConnectionError) throw e;
      throw new ConnectionError(`Cannot connect to "${target}": ${reason(e)}`, {
        cause: e,
        code: e instanceof DatabaseError ? e.code : "CONNECTION_ERROR",
      });
    }
  }
}

function hostList(config: ResolvedConfig): string {
  return config.hosts.map((h, i) => `${h}:${config.ports[i]}`).join(",");
}

function reason(error: Error): string {
  const message = error.message;
  const colon = message.indexOf(": ");
  return colon >= 0 && message.startsWith("Cannot ") ? message.slice(colon + 2) : message;
}
