// Generated from crud/async_table.ts by scripts/async_to_sync.ts: do not edit by hand. Change the
// async source and run `deno task sync`; `deno task ok` fails while this file differs.
/**
 * `Table`: CRUD bound to one table, over a `Database` or a transaction handle.
 *
 * @example A declared table
 * ```ts
 * import { Database } from "@manticore/cockroachdb";
 * import { Table } from "@manticore/cockroachdb/crud";
 *
 * interface User {
 *   id: string;
 *   name: string;
 *   email: string;
 * }
 *
 * class Users extends Table<User> {
 *   static override tableName = "users";
 *   static override schema = {
 *     id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
 *     name: "TEXT NOT NULL",
 *     email: "TEXT UNIQUE",
 *   };
 * }
 *
 * using db = new Database(Deno.env.get("DATABASE_URL")!);
 * const users = new Users(db); // CREATE TABLE IF NOT EXISTS, before the first use
 * const ada = users.create({ name: "Ada", email: "ada@example.com" });
 * console.log(users.read(ada.id)); // { id: "…", name: "Ada", email: "ada@example.com" }
 * users.drop();
 * ```
 *
 * @module
 */
import { Queryable, type Row, Transaction, type Where } from "../database.ts";
import { buildTruncate } from "../_sql.ts";
import {
  byId,
  checkIds,
  type InitializeOptions,
  KNOWN_TO_EXIST,
  type ListOptions,
  type RecordId,
  resolveTable,
  type TableBatchUpdateOptions,
  tableError,
  type TableSchema,
  type TableSettings,
  type TableUpsertOptions,
} from "./_table_common.ts";
import { RecordNotFoundError, TableNotInitializedError } from "../errors.ts";

export type {
  InitializeOptions,
  ListOptions,
  RecordId,
  TableBatchUpdateOptions,
  TableSchema,
  TableSettings,
  TableUpsertOptions,
};

/** Options of `new Table(name, options)`: the database and the table's settings. */
export interface TableOptions extends TableSettings {
  /** The database, or a transaction handle, the table runs its statements on. */
  readonly db: Queryable;
}

interface TableClass<T> {
  readonly tableName: string | undefined;
  new (nameOrDb: string | Queryable, options?: TableOptions | TableSettings): T;
}

function isQueryable(value: unknown): value is Queryable {
  return value instanceof Queryable;
}

/**
 * CRUD bound to one table: every method is one call into the database's helpers, with the
 * table's name and primary key filled in. `T` is the row type: data (`create`, `update`, …)
 * is a `Partial<T>`, and the columns named in `where`, `orderBy`, `conflictColumns` and
 * `keyColumn` must be `T`'s, with operator values of the column's type, so a misspelt column
 * does not compile. Without a row type (`Row`), any name is accepted.
 *
 * With a schema (`options.schema` or a subclass's `static schema`) the table is created with
 * `CREATE TABLE IF NOT EXISTS` before its first use: a synchronous table object creates it in
 * its constructor, an asynchronous one on `initialize()` or on first use, whichever comes
 * first (concurrent first uses create it once). Without a schema the object attaches to an
 * existing table: its existence is checked once, on first use, and a missing table throws
 * {@linkcode TableNotInitializedError}. If the table disappears later (it is dropped), the
 * server's "does not exist" error is thrown as `TableNotInitializedError` too, and the next use
 * checks again (and, with a schema, creates the table again).
 *
 * @example Attach to an existing table
 * ```ts
 * import { Database } from "@manticore/cockroachdb";
 * import { Table } from "@manticore/cockroachdb/crud";
 *
 * using db = new Database(Deno.env.get("DATABASE_URL")!);
 * db.execute("CREATE TABLE events (id INT8 PRIMARY KEY, kind TEXT NOT NULL)");
 * db.execute("INSERT INTO events VALUES (1, 'login'), (2, 'logout'), (3, 'login')");
 *
 * const events = new Table<{ id: bigint; kind: string }>("events", { db });
 * console.log(events.list({ where: { kind: "login" }, orderBy: "id DESC", limit: 10 }));
 * // [{ id: 3n, kind: "login" }, { id: 1n, kind: "login" }]
 * events.drop();
 * ```
 *
 * @example In a transaction
 * ```ts
 * import { Database } from "@manticore/cockroachdb";
 * import { Table } from "@manticore/cockroachdb/crud";
 *
 * using db = new Database(Deno.env.get("DATABASE_URL")!);
 * const accounts = new Table<{ id: number; balance: string }>("accounts", {
 *   db,
 *   schema: { id: "INT4 PRIMARY KEY", balance: "DECIMAL(12,2) NOT NULL" },
 * });
 * accounts.batchCreate([{ id: 1, balance: "100.00" }, { id: 2, balance: "100.00" }]);
 *
 * db.transaction((tx) => {
 *   const inTx = accounts.withTransaction(tx);
 *   inTx.update(1, { balance: "90.00" });
 *   inTx.update(2, { balance: "110.00" });
 * });
 * console.log(accounts.list({ orderBy: "id" }));
 * // [{ id: 1, balance: "90.00" }, { id: 2, balance: "110.00" }]
 * accounts.drop();
 * ```
 */
export class Table<T extends object = Row> {
  /** The table name used by `new Subclass(db)`; subclasses override it. */
  static tableName: string | undefined = undefined;
  /** The columns a subclass's table is created with; compose with `{ ...Base.schema, … }`. */
  static schema: TableSchema | undefined = undefined;

  readonly #name: string;
  readonly #db: Queryable;
  readonly #schema: TableSchema | undefined;
  readonly #ifNotExists: boolean;
  readonly #primaryKey: string;
  #ready: boolean;

  /**
   * A table object for `name` on `options.db`. With a schema, a synchronous table object
   * creates the table here; an asynchronous one runs nothing until first use.
   *
   * @param name The table name (`table` or `schema.table`).
   * @param options The database, and `schema`, `ifNotExists`, `primaryKey`.
   * @throws {TypeError} When `options.db` is not a `Database` or `Transaction`.
   * @throws {ValidationError} When the name or primary key is not a valid identifier.
   * @throws {DatabaseError} (synchronous only) When the server refuses the schema (an invalid
   * type), or the table exists and `ifNotExists` is false.
   */
  constructor(name: string, options: TableOptions);
  /**
   * A table object for the subclass's `static tableName` on `db`. With a schema, a synchronous
   * table object creates the table here; an asynchronous one runs nothing until first use.
   *
   * @param db The database or transaction handle.
   * @param options `schema` (default: the class's), `ifNotExists`, `primaryKey`.
   * @throws {TypeError} When the class declares no `tableName` or `db` is not a database.
   * @throws {DatabaseError} (synchronous only) When the server refuses the schema.
   */
  constructor(db: Queryable, options?: TableSettings);
  constructor(nameOrDb: string | Queryable, options?: TableOptions | TableSettings) {
    const resolved = resolveTable(
      new.target,
      nameOrDb,
      options,
      isQueryable,
      "a Database or Transaction",
    );
    this.#name = resolved.name;
    this.#db = resolved.db;
    this.#schema = resolved.schema;
    this.#ifNotExists = resolved.ifNotExists;
    this.#primaryKey = resolved.primaryKey;
    this.#ready = resolved.knownToExist;
    if (!this.#ready && this.#schema !== undefined) this.#start(this.#schema, this.#ifNotExists);
  }

  /** The table name, as given (`table` or `schema.table`). */
  get name(): string {
    return this.#name;
  }

  /** The primary key column. */
  get primaryKey(): string {
    return this.#primaryKey;
  }

  /** The database or transaction handle the table runs on. */
  get db(): Queryable {
    return this.#db;
  }

  /**
   * Makes the table usable: with a schema, `CREATE TABLE [IF NOT EXISTS]`; without one, checks
   * that it exists. Without options it does nothing once the table is known to exist (calls and
   * first uses at the same time share one run); with options it runs again with them.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const notes = new Table("notes", { db }).initialize({
   *   schema: { id: "INT4 PRIMARY KEY", body: "TEXT" },
   * });
   * console.log(db.tableExists("notes")); // true
   * notes.drop();
   * ```
   * @param options `schema` (not stored) and `ifNotExists`.
   * @returns This table.
   * @throws {DatabaseError} When the server refuses the schema (an invalid type), or the
   * table exists and `ifNotExists` is false.
   * @throws {TableNotInitializedError} When there is no schema and the table does not exist.
   */
  initialize(options?: InitializeOptions): this {
    if (options?.schema === undefined && options?.ifNotExists === undefined) {
      if (!this.#ready) this.#ensureReady();
      return this;
    }
    this.#start(options.schema ?? this.#schema, options.ifNotExists ?? this.#ifNotExists);
    return this;
  }

  /**
   * Inserts one row and returns it; `{}` inserts `DEFAULT VALUES`.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * console.log(users.create({ id: 1, name: "Ada" })); // { id: 1, name: "Ada" }
   * users.drop();
   * ```
   * @param data Column → value.
   * @returns The inserted row.
   * @throws {UniqueViolationError} On a duplicate key.
   * @throws {TableNotInitializedError} When the table does not exist.
   */
  create(data: Partial<T>): T {
    return this.#use((db) => db.insert<T>(this.#name, data as Row));
  }

  /**
   * The row with this primary key.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.create({ id: 1, name: "Ada" });
   * console.log(users.read(1)); // { id: 1, name: "Ada" }
   * users.drop();
   * ```
   * @param id The primary key value.
   * @returns The row.
   * @throws {RecordNotFoundError} When no row has this id.
   * @throws {ValidationError} When `id` is null, undefined, an array or an object.
   */
  read(id: RecordId): T {
    const row = this.get(id);
    if (row === null) throw new RecordNotFoundError(this.#name, id);
    return row;
  }

  /**
   * The row with this primary key, or `null`.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.create({ id: 1, name: "Ada" });
   * console.log(users.get(1)); // { id: 1, name: "Ada" }
   * console.log(users.get(2)); // null
   * users.drop();
   * ```
   * @param id The primary key value.
   * @returns The row or `null`.
   * @throws {ValidationError} When `id` is null, undefined, an array or an object.
   */
  get(id: RecordId): T | null {
    const where = byId(this.#name, this.#primaryKey, id, "read record");
    return this.#use((db) => db.selectOne<T>(this.#name, { where }));
  }

  /**
   * The rows with these primary keys, in primary key order; ids without a row are left out.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.batchCreate([
   *   { id: 1, name: "Ada" },
   *   { id: 2, name: "Grace" },
   *   { id: 3, name: "Alan" },
   * ]);
   * console.log(users.getMany([3, 1, 9]));
   * // [{ id: 1, name: "Ada" }, { id: 3, name: "Alan" }]
   * users.drop();
   * ```
   * @param ids The primary key values (`[]` returns `[]`).
   * @returns The rows.
   * @throws {ValidationError} When an id is null, undefined, an array or an object.
   */
  getMany(ids: readonly RecordId[]): T[] {
    checkIds(this.#name, ids);
    const pk = this.#primaryKey;
    return this.#use((db) =>
      ids.length === 0
        ? []
        : db.select<T>(this.#name, { where: { [pk]: ids }, orderBy: { [pk]: "asc" } })
    );
  }

  /**
   * The first row matching `where`, or `null`.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; email: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", email: "TEXT UNIQUE" },
   * });
   * users.create({ id: 1, email: "ada@example.com" });
   * console.log(users.findOne({ email: "ada@example.com" }));
   * // { id: 1, email: "ada@example.com" }
   * console.log(users.findOne({ email: "bob@example.com" })); // null
   * users.drop();
   * ```
   * @param where Conditions (see `Where`).
   * @returns The row or `null`.
   */
  findOne(where: Where<T>): T | null {
    return this.#use((db) => db.selectOne<T>(this.#name, { where }));
  }

  /**
   * Updates the row with this primary key and returns it.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.create({ id: 1, name: "Ada" });
   * console.log(users.update(1, { name: "Lovelace" })); // { id: 1, name: "Lovelace" }
   * users.drop();
   * ```
   * @param id The primary key value.
   * @param data Column → new value (not empty).
   * @returns The updated row.
   * @throws {RecordNotFoundError} When no row has this id.
   * @throws {ValidationError} When `data` is empty or `id` is not one id.
   */
  update(id: RecordId, data: Partial<T>): T {
    const where = byId(this.#name, this.#primaryKey, id, "update record");
    const [row] = this.#use((db) => db.update<T>(this.#name, data as Row, where));
    if (row === undefined) throw new RecordNotFoundError(this.#name, id);
    return row;
  }

  /**
   * Updates every row matching `where`.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; active: boolean; banned: boolean }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", active: "BOOL NOT NULL", banned: "BOOL DEFAULT false" },
   * });
   * users.batchCreate([{ id: 1, active: true }, { id: 2, active: false }]);
   * console.log(users.updateWhere({ active: false }, { banned: true }));
   * // [{ id: 2, active: false, banned: true }]
   * users.drop();
   * ```
   * @param where Conditions (not empty).
   * @param data Column → new value (not empty).
   * @returns The updated rows.
   * @throws {ValidationError} When `where` or `data` is empty.
   */
  updateWhere(where: Where<T>, data: Partial<T>): T[] {
    return this.#use((db) => db.update<T>(this.#name, data as Row, where));
  }

  /**
   * Deletes the row with this primary key.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.create({ id: 1, name: "Ada" });
   * console.log(users.delete(1)); // true
   * if (!users.delete(1)) console.log("already gone"); // already gone
   * users.drop();
   * ```
   * @param id The primary key value.
   * @returns Whether a row was deleted.
   * @throws {ValidationError} When `id` is null, undefined, an array or an object.
   */
  delete(id: RecordId): boolean {
    const where = byId(this.#name, this.#primaryKey, id, "delete record");
    return this.#use((db) => db.delete(this.#name, where)) > 0;
  }

  /**
   * Deletes every row matching `where`.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const sessions = new Table<{ id: number; expires_at: Date }>("sessions", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", expires_at: "TIMESTAMPTZ NOT NULL" },
   * });
   * const hour = 60 * 60 * 1000;
   * sessions.batchCreate([
   *   { id: 1, expires_at: new Date(Date.now() - hour) },
   *   { id: 2, expires_at: new Date(Date.now() + hour) },
   * ]);
   * console.log(sessions.deleteWhere({ expires_at: { lt: new Date() } })); // 1
   * sessions.drop();
   * ```
   * @param where Conditions (not empty: use `truncate()` to empty the table).
   * @returns The number of rows deleted.
   * @throws {ValidationError} When `where` is empty.
   */
  deleteWhere(where: Where<T>): number {
    return this.#use((db) => db.delete(this.#name, where));
  }

  /**
   * The rows matching `where`, in `orderBy` order, after `offset`, at most `limit`.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string; active: boolean }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL", active: "BOOL NOT NULL" },
   * });
   * users.batchCreate([
   *   { id: 1, name: "Ada", active: true },
   *   { id: 2, name: "Grace", active: true },
   *   { id: 3, name: "Alan", active: false },
   *   { id: 4, name: "Edsger", active: true },
   * ]);
   * const page = users.list({
   *   where: { active: true },
   *   orderBy: "name",
   *   limit: 2,
   *   offset: 1,
   * });
   * console.log(page.map((user) => user.name)); // ["Edsger", "Grace"]
   * users.drop();
   * ```
   * @param options `where`, `orderBy`, `limit`, `offset`.
   * @returns The rows (`[]` when none match).
   * @throws {ValidationError} On a bad `where`, `orderBy`, `limit` or `offset`.
   */
  list(options?: ListOptions<T>): T[] {
    const { where, orderBy, limit, offset } = options ?? {};
    return this.#use((db) => db.select<T>(this.#name, { where, orderBy, limit, offset }));
  }

  /**
   * Counts the rows matching `where` (every row without it).
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string; active: boolean }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL", active: "BOOL NOT NULL" },
   * });
   * users.batchCreate([
   *   { id: 1, name: "Ada", active: true },
   *   { id: 2, name: "Alan", active: false },
   * ]);
   * console.log(users.count({ active: true })); // 1
   * console.log(users.count()); // 2
   * users.drop();
   * ```
   * @param where Conditions.
   * @returns The number of rows.
   */
  count(where?: Where<T>): number {
    return this.#use((db) => db.count(this.#name, where));
  }

  /**
   * Whether a row has this primary key.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.create({ id: 1, name: "Ada" });
   * if (users.exists(1)) console.log("found"); // found
   * console.log(users.exists(2)); // false
   * users.drop();
   * ```
   * @param id The primary key value.
   * @returns True when the row exists.
   * @throws {ValidationError} When `id` is null, undefined, an array or an object.
   */
  exists(id: RecordId): boolean {
    const where = byId(this.#name, this.#primaryKey, id, "check record");
    return this.#use((db) => db.count(this.#name, where)) > 0;
  }

  /**
   * Inserts a row, or updates the existing one: `UPSERT` on CockroachDB, `INSERT … ON CONFLICT
   * … DO UPDATE` on PostgreSQL (on the primary key unless `conflictColumns` is given).
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const settings = new Table<{ key: string; value: string }>("settings", {
   *   db,
   *   schema: { key: "TEXT PRIMARY KEY", value: "TEXT NOT NULL" },
   *   primaryKey: "key",
   * });
   * settings.upsert({ key: "theme", value: "light" });
   * console.log(settings.upsert({ key: "theme", value: "dark" }));
   * // { key: "theme", value: "dark" }
   * console.log(settings.count()); // 1
   * settings.drop();
   * ```
   * @param data Column → value, the conflict columns included.
   * @param options `conflictColumns`.
   * @returns The inserted or updated row.
   */
  upsert(data: Partial<T>, options?: TableUpsertOptions<T>): T {
    const upsert = { conflictColumns: options?.conflictColumns };
    return this.#use((db) => db.upsert<T>(this.#name, data as Row, upsert));
  }

  /**
   * Inserts many rows in one transaction, one round trip per chunk; every record needs the same
   * keys.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * const created = users.batchCreate([{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * console.log(created); // [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]
   * users.drop();
   * ```
   * @param records The rows (`[]` returns `[]`).
   * @returns The inserted rows, in input order.
   * @throws {ValidationError} When records have differing keys.
   */
  batchCreate(records: readonly Partial<T>[]): T[] {
    return this.#use((db) => db.batchInsert<T>(this.#name, records as readonly Row[]));
  }

  /**
   * Updates many rows by key, in one transaction.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.batchCreate([{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * users.batchUpdate([{ id: 1, name: "Lovelace" }, { id: 2, name: "Hopper" }]);
   * console.log(users.list({ orderBy: "id" }));
   * // [{ id: 1, name: "Lovelace" }, { id: 2, name: "Hopper" }]
   * users.drop();
   * ```
   * @param records Each holds the key column and the columns to set (`[]` returns `[]`).
   * @param options `keyColumn` (default: the primary key).
   * @returns The updated rows, in input order; a key that matches nothing adds no row.
   * @throws {ValidationError} When a record lacks the key column or has nothing to set.
   */
  batchUpdate(
    records: readonly Partial<T>[],
    options?: TableBatchUpdateOptions<T>,
  ): T[] {
    const keyColumn = options?.keyColumn ?? this.#primaryKey;
    return this.#use((db) =>
      db.batchUpdate<T>(this.#name, records as readonly Row[], { keyColumn })
    );
  }

  /**
   * Deletes every row (`TRUNCATE TABLE`).
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.batchCreate([{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * users.truncate();
   * console.log(users.count()); // 0
   * users.drop();
   * ```
   */
  truncate(): void {
    const sql = buildTruncate(this.#name);
    this.#use((db) => db.execute(sql));
  }

  /**
   * Drops the table (`DROP TABLE IF EXISTS`). A later use checks for the table again; with a
   * schema, it creates the table again.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * users.create({ id: 1, name: "Ada" });
   * users.drop();
   * console.log(db.tableExists("users")); // false
   * ```
   */
  drop(): void {
    this.#db.dropTable(this.#name);
    this.#forget();
  }

  /**
   * Runs raw SQL on the table's database (or transaction) once the table is usable.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const orders = new Table<{ id: number; category: string; amount: string }>("orders", {
   *   db,
   *   schema: {
   *     id: "INT4 PRIMARY KEY",
   *     category: "TEXT NOT NULL",
   *     amount: "DECIMAL(10,2) NOT NULL",
   *   },
   * });
   * orders.batchCreate([
   *   { id: 1, category: "books", amount: "12.50" },
   *   { id: 2, category: "tea", amount: "8.00" },
   *   { id: 3, category: "books", amount: "7.50" },
   * ]);
   * const totals = orders.execute<{ category: string; total: string }>(
   *   `SELECT category, sum(amount) AS total FROM orders GROUP BY category ORDER BY category`,
   * );
   * console.log(totals);
   * // [{ category: "books", total: "20.00" }, { category: "tea", total: "8.00" }]
   * orders.drop();
   * ```
   * @param sql The statement text (`$1 … $n` placeholders).
   * @param params The bind parameters.
   * @returns The rows (`[]` for statements without rows).
   * @throws {DatabaseError} When the server refuses the statement.
   */
  execute<R = Row>(sql: string, params?: readonly unknown[]): R[] {
    return this.#use((db) => db.execute<R>(sql, params));
  }

  /**
   * The same table (same class, name and settings) running on a transaction handle. A table
   * already known to exist is neither checked nor created again inside the transaction.
   *
   * The new object is built with the class's constructor: `new Class(tx, settings)` when the
   * name is the class's `static tableName`, else `new Class(name, { db: tx, ...settings })`. A
   * subclass whose constructor takes other arguments overrides this method.
   *
   * @example
   * ```ts
   * import { Database } from "@manticore/cockroachdb";
   * import { Table } from "@manticore/cockroachdb/crud";
   *
   * using db = new Database(Deno.env.get("DATABASE_URL")!);
   * const users = new Table<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * db.transaction((tx) => {
   *   const t = users.withTransaction(tx);
   *   const user = t.create({ id: 1, name: "Ada" });
   *   t.update(user.id, { name: "Ada Lovelace" });
   * });
   * console.log(users.read(1)); // { id: 1, name: "Ada Lovelace" }
   * users.drop();
   * ```
   * @param tx The handle a `transaction()` callback receives.
   * @returns A table object bound to `tx`.
   * @throws {TypeError} When `tx` is not a `Transaction`.
   */
  withTransaction(tx: Transaction): this {
    if (!(tx instanceof Transaction)) {
      throw new TypeError(
        `Cannot bind table "${this.#name}" to a transaction: expected a Transaction`,
      );
    }
    const Class = this.constructor as TableClass<this>;
    const settings = {
      schema: this.#schema,
      ifNotExists: this.#ifNotExists,
      primaryKey: this.#primaryKey,
      [KNOWN_TO_EXIST]: this.#ready,
    };
    return Class.tableName === this.#name
      ? new Class(tx, settings)
      : new Class(this.#name, { ...settings, db: tx });
  }

  #use<R>(fn: (db: Queryable) => R): R {
    if (!this.#ready) this.#ensureReady();
    try {
      return fn(this.#db);
    } catch (error) {
      const mapped = tableError(this.#name, error);
      if (mapped !== error) this.#forget();
      throw mapped;
    }
  }

  #ensureReady(): void {
    this.#start(this.#schema, this.#ifNotExists);
  }

  #start(schema: TableSchema | undefined, ifNotExists: boolean): void {
    this.#prepare(schema, ifNotExists);
    this.#ready = true;
  }

  #forget(): void {
    this.#ready = false;
  }

  #prepare(schema: TableSchema | undefined, ifNotExists: boolean): void {
    if (schema !== undefined) {
      this.#db.createTable(this.#name, schema, { ifNotExists });
    } else if (!this.#db.tableExists(this.#name)) {
      throw new TableNotInitializedError(this.#name);
    }
  }
}
