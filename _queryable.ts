// `Queryable`: the raw SQL and CRUD surface of the synchronous `Database` and `Transaction`, each
// method one call through the bridge (`Channel`). Exported by `database.ts`. Its methods are
// generated from `AsyncQueryable`'s (`_async_queryable.ts`) by `scripts/async_to_sync.ts`: the
// region between the markers is rewritten by `deno task sync`, and the compiler checks below that
// the two surfaces stay equal.
import type {
  BatchInsertOptions,
  BatchStatement,
  BatchUpdateOptions,
  CallOptions,
  CreateTableOptions,
  DropTableOptions,
  StreamOptions,
  TransactionOptions,
  UpsertOptions,
} from "./_options.ts";
import type { Row, SelectOptions, Where } from "./_sql.ts";
import type { AsyncQueryable } from "./_async_queryable.ts";
import type { Channel } from "./_bridge_client.ts";

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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.execute("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)"); // []
   * db.execute("INSERT INTO notes VALUES ($1, $2)", [1, "hello"]);
   * const rows = db.execute<{ body: string }>("SELECT body FROM notes WHERE id = $1", [1]);
   * console.log(rows); // [{ body: "hello" }]
   * db.execute("DROP TABLE notes");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.execute("CREATE TABLE users (id INT PRIMARY KEY, name TEXT)");
   * db.execute("INSERT INTO users VALUES (1, 'Ada')");
   * const user = db.queryOne<{ name: string }>("SELECT name FROM users WHERE id = $1", [1]);
   * console.log(user); // { name: "Ada" }
   * console.log(db.queryOne("SELECT name FROM users WHERE id = $1", [2])); // null
   * db.execute("DROP TABLE users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createDatabase("bank");
   * db.createDatabase("bank"); // there already: nothing happens
   * db.dropDatabase("bank");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createDatabase("archive");
   * db.dropDatabase("archive");
   * db.dropDatabase("archive"); // gone already: nothing happens
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT NOT NULL" });
   * db.createTable("users", { id: "INT PRIMARY KEY" }); // there already: nothing happens
   * console.log(db.select("users")); // []
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("authors", { id: "INT PRIMARY KEY" });
   * db.createTable("books", { id: "INT PRIMARY KEY", author_id: "INT REFERENCES authors" });
   * db.dropTable("authors", { cascade: true }); // and the foreign key of books
   * db.dropTable("books");
   * db.dropTable("books"); // gone already: nothing happens
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * console.log(db.tableExists("users")); // false
   * db.createTable("users", { id: "INT PRIMARY KEY" });
   * console.log(db.tableExists("users")); // true
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT NOT NULL" });
   * const user = db.insert("users", { id: 1, name: "Ada" });
   * console.log(user); // { id: 1, name: "Ada" }
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT", age: "INT" });
   * db.batchInsert("users", [
   *   { id: 1, name: "Grace", age: 85 },
   *   { id: 2, name: "Tim", age: 12 },
   *   { id: 3, name: "Ada", age: 36 },
   * ]);
   * const adults = db.select("users", {
   *   columns: ["name"],
   *   where: { age: { gte: 18 } },
   *   orderBy: "name",
   *   limit: 10,
   * });
   * console.log(adults); // [{ name: "Ada" }, { name: "Grace" }]
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT" });
   * db.insert("users", { id: 1, name: "Ada" });
   * console.log(db.selectOne("users", { where: { name: "Ada" } })); // { id: 1, name: "Ada" }
   * console.log(db.selectOne("users", { where: { name: "Bob" } })); // null
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT" });
   * db.insert("users", { id: 1, name: "Ada" });
   * const rows = db.update("users", { name: "Ada L." }, { id: 1 });
   * console.log(rows); // [{ id: 1, name: "Ada L." }]
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY" });
   * db.batchInsert("users", [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]);
   * const removed = db.delete("users", { id: [1, 2, 3] });
   * console.log(removed); // 3
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("accounts", { id: "INT PRIMARY KEY", balance: "DECIMAL NOT NULL" });
   * db.upsert("accounts", { id: 1, balance: "100" }); // inserts
   * const account = db.upsert("accounts", { id: 1, balance: "150" }); // updates
   * console.log(account); // { id: 1, balance: "150" }
   * db.dropTable("accounts");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT" });
   * const rows = db.batchInsert("users", [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * console.log(rows); // [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("events", { id: "INT PRIMARY KEY", kind: "TEXT" });
   * const events = Array.from({ length: 5000 }, (_, id) => ({ id, kind: "click" }));
   * const count = db.batchInsert("events", events, { returning: false });
   * console.log(count); // 5000
   * db.dropTable("events");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("accounts", { id: "INT PRIMARY KEY", balance: "DECIMAL NOT NULL" });
   * db.insert("accounts", { id: 1, balance: "5" });
   * db.batchUpsert("accounts", [{ id: 1, balance: "10" }, { id: 2, balance: "20" }]);
   * console.log(db.select("accounts", { orderBy: "id" }));
   * // [{ id: 1, balance: "10" }, { id: 2, balance: "20" }]
   * db.dropTable("accounts");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT" });
   * db.batchInsert("users", [{ id: 1, name: "a" }, { id: 2, name: "b" }]);
   * const rows = db.batchUpdate("users", [{ id: 1, name: "A" }, { id: 2, name: "B" }]);
   * console.log(rows); // [{ id: 1, name: "A" }, { id: 2, name: "B" }]
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("users", { id: "INT PRIMARY KEY", age: "INT" });
   * db.batchInsert("users", [{ id: 1, age: 36 }, { id: 2, age: 12 }, { id: 3, age: 85 }]);
   * console.log(db.count("users", { age: { gte: 18 } })); // 2
   * console.log(db.count("users")); // 3
   * db.dropTable("users");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("accounts", { id: "INT PRIMARY KEY", balance: "DECIMAL NOT NULL" });
   * db.batchInsert("accounts", [{ id: 1, balance: "100" }, { id: 2, balance: "0" }]);
   * const debit = "UPDATE accounts SET balance = balance - $1 WHERE id = $2 RETURNING *";
   * const credit = "UPDATE accounts SET balance = balance + $1 WHERE id = $2 RETURNING *";
   * const [debited, credited] = db.batch([
   *   { sql: debit, params: [10, 1] },
   *   { sql: credit, params: [10, 2] },
   * ]);
   * console.log(debited, credited); // [{ id: 1, balance: "90" }] [{ id: 2, balance: "10" }]
   * db.dropTable("accounts");
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
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * db.createTable("events", { id: "INT PRIMARY KEY", kind: "TEXT" });
   * const kinds = ["click", "view", "view"];
   * const events = Array.from({ length: 1200 }, (_, id) => ({ id, kind: kinds[id % 3] }));
   * db.batchInsert("events", events, { returning: false });
   * let clicks = 0;
   * const sql = "SELECT kind FROM events ORDER BY id";
   * for (const event of db.stream<{ kind: string }>(sql, [], { batchSize: 500 })) {
   *   if (event.kind === "click") clicks++; // 500 rows a round trip
   * }
   * console.log(clicks); // 400
   * db.dropTable("events");
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
