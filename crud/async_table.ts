/**
 * `AsyncTable`: CRUD bound to one table, over an `AsyncDatabase` or a transaction handle.
 *
 * @example A declared table
 * ```ts
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 * import { AsyncTable } from "@manticore/cockroachdb/crud";
 *
 * interface User {
 *   id: string;
 *   name: string;
 *   email: string;
 * }
 *
 * class Users extends AsyncTable<User> {
 *   static override tableName = "users";
 *   static override schema = {
 *     id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
 *     name: "TEXT NOT NULL",
 *     email: "TEXT UNIQUE",
 *   };
 * }
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * const users = new Users(db); // CREATE TABLE IF NOT EXISTS, before the first use
 * const ada = await users.create({ name: "Ada", email: "ada@example.com" });
 * console.log(await users.read(ada.id)); // { id: "…", name: "Ada", email: "ada@example.com" }
 * await users.drop();
 * ```
 *
 * @module
 */
import { AsyncQueryable, AsyncTransaction, type Row, type Where } from "../async_database.ts";
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

/** Options of `new AsyncTable(name, options)`: the database and the table's settings. */
export interface AsyncTableOptions extends TableSettings {
  /** The database, or a transaction handle, the table runs its statements on. */
  readonly db: AsyncQueryable;
}

interface AsyncTableClass<T> {
  readonly tableName: string | undefined;
  new (nameOrDb: string | AsyncQueryable, options?: AsyncTableOptions | TableSettings): T;
}

function isAsyncQueryable(value: unknown): value is AsyncQueryable {
  return value instanceof AsyncQueryable;
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
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 * import { AsyncTable } from "@manticore/cockroachdb/crud";
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * await db.execute("CREATE TABLE events (id INT8 PRIMARY KEY, kind TEXT NOT NULL)");
 * await db.execute("INSERT INTO events VALUES (1, 'login'), (2, 'logout'), (3, 'login')");
 *
 * const events = new AsyncTable<{ id: bigint; kind: string }>("events", { db });
 * console.log(await events.list({ where: { kind: "login" }, orderBy: "id DESC", limit: 10 }));
 * // [{ id: 3n, kind: "login" }, { id: 1n, kind: "login" }]
 * await events.drop();
 * ```
 *
 * @example In a transaction
 * ```ts
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 * import { AsyncTable } from "@manticore/cockroachdb/crud";
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * const accounts = new AsyncTable<{ id: number; balance: string }>("accounts", {
 *   db,
 *   schema: { id: "INT4 PRIMARY KEY", balance: "DECIMAL(12,2) NOT NULL" },
 * });
 * await accounts.batchCreate([{ id: 1, balance: "100.00" }, { id: 2, balance: "100.00" }]);
 *
 * await db.transaction(async (tx) => {
 *   const inTx = accounts.withTransaction(tx);
 *   await inTx.update(1, { balance: "90.00" });
 *   await inTx.update(2, { balance: "110.00" });
 * });
 * console.log(await accounts.list({ orderBy: "id" }));
 * // [{ id: 1, balance: "90.00" }, { id: 2, balance: "110.00" }]
 * await accounts.drop();
 * ```
 */
export class AsyncTable<T extends object = Row> {
  /** The table name used by `new Subclass(db)`; subclasses override it. */
  static tableName: string | undefined = undefined;
  /** The columns a subclass's table is created with; compose with `{ ...Base.schema, … }`. */
  static schema: TableSchema | undefined = undefined;

  readonly #name: string;
  readonly #db: AsyncQueryable;
  readonly #schema: TableSchema | undefined;
  readonly #ifNotExists: boolean;
  readonly #primaryKey: string;
  #ready: boolean;
  // #if async
  #readying: Promise<void> | undefined;
  // #endif

  /**
   * A table object for `name` on `options.db`. With a schema, a synchronous table object
   * creates the table here; an asynchronous one runs nothing until first use.
   *
   * @param name The table name (`table` or `schema.table`).
   * @param options The database, and `schema`, `ifNotExists`, `primaryKey`.
   * @throws {TypeError} When `options.db` is not an `AsyncDatabase` or `AsyncTransaction`.
   * @throws {ValidationError} When the name or primary key is not a valid identifier.
   * @throws {DatabaseError} (synchronous only) When the server refuses the schema (an invalid
   * type), or the table exists and `ifNotExists` is false.
   */
  constructor(name: string, options: AsyncTableOptions);
  /**
   * A table object for the subclass's `static tableName` on `db`. With a schema, a synchronous
   * table object creates the table here; an asynchronous one runs nothing until first use.
   *
   * @param db The database or transaction handle.
   * @param options `schema` (default: the class's), `ifNotExists`, `primaryKey`.
   * @throws {TypeError} When the class declares no `tableName` or `db` is not a database.
   * @throws {DatabaseError} (synchronous only) When the server refuses the schema.
   */
  constructor(db: AsyncQueryable, options?: TableSettings);
  constructor(nameOrDb: string | AsyncQueryable, options?: AsyncTableOptions | TableSettings) {
    const resolved = resolveTable(
      new.target,
      nameOrDb,
      options,
      isAsyncQueryable,
      "an AsyncDatabase or AsyncTransaction",
    );
    this.#name = resolved.name;
    this.#db = resolved.db;
    this.#schema = resolved.schema;
    this.#ifNotExists = resolved.ifNotExists;
    this.#primaryKey = resolved.primaryKey;
    this.#ready = resolved.knownToExist;
    // #if sync
    // if (!this.#ready && this.#schema !== undefined) this.#start(this.#schema, this.#ifNotExists);
    // #endif
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
  get db(): AsyncQueryable {
    return this.#db;
  }

  /**
   * Makes the table usable: with a schema, `CREATE TABLE [IF NOT EXISTS]`; without one, checks
   * that it exists. Without options it does nothing once the table is known to exist (calls and
   * first uses at the same time share one run); with options it runs again with them.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const notes = await new AsyncTable("notes", { db }).initialize({
   *   schema: { id: "INT4 PRIMARY KEY", body: "TEXT" },
   * });
   * console.log(await db.tableExists("notes")); // true
   * await notes.drop();
   * ```
   * @param options `schema` (not stored) and `ifNotExists`.
   * @returns This table.
   * @throws {DatabaseError} When the server refuses the schema (an invalid type), or the
   * table exists and `ifNotExists` is false.
   * @throws {TableNotInitializedError} When there is no schema and the table does not exist.
   */
  async initialize(options?: InitializeOptions): Promise<this> {
    if (options?.schema === undefined && options?.ifNotExists === undefined) {
      if (!this.#ready) await this.#ensureReady();
      return this;
    }
    await this.#start(options.schema ?? this.#schema, options.ifNotExists ?? this.#ifNotExists);
    return this;
  }

  /**
   * Inserts one row and returns it; `{}` inserts `DEFAULT VALUES`.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * console.log(await users.create({ id: 1, name: "Ada" })); // { id: 1, name: "Ada" }
   * await users.drop();
   * ```
   * @param data Column → value.
   * @returns The inserted row.
   * @throws {UniqueViolationError} On a duplicate key.
   * @throws {TableNotInitializedError} When the table does not exist.
   */
  create(data: Partial<T>): Promise<T> {
    return this.#use((db) => db.insert<T>(this.#name, data as Row));
  }

  /**
   * The row with this primary key.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.create({ id: 1, name: "Ada" });
   * console.log(await users.read(1)); // { id: 1, name: "Ada" }
   * await users.drop();
   * ```
   * @param id The primary key value.
   * @returns The row.
   * @throws {RecordNotFoundError} When no row has this id.
   * @throws {ValidationError} When `id` is null, undefined, an array or an object.
   */
  async read(id: RecordId): Promise<T> {
    const row = await this.get(id);
    if (row === null) throw new RecordNotFoundError(this.#name, id);
    return row;
  }

  /**
   * The row with this primary key, or `null`.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.create({ id: 1, name: "Ada" });
   * console.log(await users.get(1)); // { id: 1, name: "Ada" }
   * console.log(await users.get(2)); // null
   * await users.drop();
   * ```
   * @param id The primary key value.
   * @returns The row or `null`.
   * @throws {ValidationError} When `id` is null, undefined, an array or an object.
   */
  get(id: RecordId): Promise<T | null> {
    const where = byId(this.#name, this.#primaryKey, id, "read record");
    return this.#use((db) => db.selectOne<T>(this.#name, { where }));
  }

  /**
   * The rows with these primary keys, in primary key order; ids without a row are left out.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.batchCreate([
   *   { id: 1, name: "Ada" },
   *   { id: 2, name: "Grace" },
   *   { id: 3, name: "Alan" },
   * ]);
   * console.log(await users.getMany([3, 1, 9]));
   * // [{ id: 1, name: "Ada" }, { id: 3, name: "Alan" }]
   * await users.drop();
   * ```
   * @param ids The primary key values (`[]` returns `[]`).
   * @returns The rows.
   * @throws {ValidationError} When an id is null, undefined, an array or an object.
   */
  getMany(ids: readonly RecordId[]): Promise<T[]> {
    checkIds(this.#name, ids);
    const pk = this.#primaryKey;
    return this.#use((db) =>
      ids.length === 0
        ? Promise.resolve([])
        : db.select<T>(this.#name, { where: { [pk]: ids }, orderBy: { [pk]: "asc" } })
    );
  }

  /**
   * The first row matching `where`, or `null`.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; email: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", email: "TEXT UNIQUE" },
   * });
   * await users.create({ id: 1, email: "ada@example.com" });
   * console.log(await users.findOne({ email: "ada@example.com" }));
   * // { id: 1, email: "ada@example.com" }
   * console.log(await users.findOne({ email: "bob@example.com" })); // null
   * await users.drop();
   * ```
   * @param where Conditions (see `Where`).
   * @returns The row or `null`.
   */
  findOne(where: Where<T>): Promise<T | null> {
    return this.#use((db) => db.selectOne<T>(this.#name, { where }));
  }

  /**
   * Updates the row with this primary key and returns it.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.create({ id: 1, name: "Ada" });
   * console.log(await users.update(1, { name: "Lovelace" })); // { id: 1, name: "Lovelace" }
   * await users.drop();
   * ```
   * @param id The primary key value.
   * @param data Column → new value (not empty).
   * @returns The updated row.
   * @throws {RecordNotFoundError} When no row has this id.
   * @throws {ValidationError} When `data` is empty or `id` is not one id.
   */
  async update(id: RecordId, data: Partial<T>): Promise<T> {
    const where = byId(this.#name, this.#primaryKey, id, "update record");
    const [row] = await this.#use((db) => db.update<T>(this.#name, data as Row, where));
    if (row === undefined) throw new RecordNotFoundError(this.#name, id);
    return row;
  }

  /**
   * Updates every row matching `where`.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; active: boolean; banned: boolean }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", active: "BOOL NOT NULL", banned: "BOOL DEFAULT false" },
   * });
   * await users.batchCreate([{ id: 1, active: true }, { id: 2, active: false }]);
   * console.log(await users.updateWhere({ active: false }, { banned: true }));
   * // [{ id: 2, active: false, banned: true }]
   * await users.drop();
   * ```
   * @param where Conditions (not empty).
   * @param data Column → new value (not empty).
   * @returns The updated rows.
   * @throws {ValidationError} When `where` or `data` is empty.
   */
  updateWhere(where: Where<T>, data: Partial<T>): Promise<T[]> {
    return this.#use((db) => db.update<T>(this.#name, data as Row, where));
  }

  /**
   * Deletes the row with this primary key.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.create({ id: 1, name: "Ada" });
   * console.log(await users.delete(1)); // true
   * if (!(await users.delete(1))) console.log("already gone"); // already gone
   * await users.drop();
   * ```
   * @param id The primary key value.
   * @returns Whether a row was deleted.
   * @throws {ValidationError} When `id` is null, undefined, an array or an object.
   */
  async delete(id: RecordId): Promise<boolean> {
    const where = byId(this.#name, this.#primaryKey, id, "delete record");
    return (await this.#use((db) => db.delete(this.#name, where))) > 0;
  }

  /**
   * Deletes every row matching `where`.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const sessions = new AsyncTable<{ id: number; expires_at: Date }>("sessions", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", expires_at: "TIMESTAMPTZ NOT NULL" },
   * });
   * const hour = 60 * 60 * 1000;
   * await sessions.batchCreate([
   *   { id: 1, expires_at: new Date(Date.now() - hour) },
   *   { id: 2, expires_at: new Date(Date.now() + hour) },
   * ]);
   * console.log(await sessions.deleteWhere({ expires_at: { lt: new Date() } })); // 1
   * await sessions.drop();
   * ```
   * @param where Conditions (not empty: use `truncate()` to empty the table).
   * @returns The number of rows deleted.
   * @throws {ValidationError} When `where` is empty.
   */
  deleteWhere(where: Where<T>): Promise<number> {
    return this.#use((db) => db.delete(this.#name, where));
  }

  /**
   * The rows matching `where`, in `orderBy` order, after `offset`, at most `limit`.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string; active: boolean }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL", active: "BOOL NOT NULL" },
   * });
   * await users.batchCreate([
   *   { id: 1, name: "Ada", active: true },
   *   { id: 2, name: "Grace", active: true },
   *   { id: 3, name: "Alan", active: false },
   *   { id: 4, name: "Edsger", active: true },
   * ]);
   * const page = await users.list({
   *   where: { active: true },
   *   orderBy: "name",
   *   limit: 2,
   *   offset: 1,
   * });
   * console.log(page.map((user) => user.name)); // ["Edsger", "Grace"]
   * await users.drop();
   * ```
   * @param options `where`, `orderBy`, `limit`, `offset`.
   * @returns The rows (`[]` when none match).
   * @throws {ValidationError} On a bad `where`, `orderBy`, `limit` or `offset`.
   */
  list(options?: ListOptions<T>): Promise<T[]> {
    const { where, orderBy, limit, offset } = options ?? {};
    return this.#use((db) => db.select<T>(this.#name, { where, orderBy, limit, offset }));
  }

  /**
   * Counts the rows matching `where` (every row without it).
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string; active: boolean }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL", active: "BOOL NOT NULL" },
   * });
   * await users.batchCreate([
   *   { id: 1, name: "Ada", active: true },
   *   { id: 2, name: "Alan", active: false },
   * ]);
   * console.log(await users.count({ active: true })); // 1
   * console.log(await users.count()); // 2
   * await users.drop();
   * ```
   * @param where Conditions.
   * @returns The number of rows.
   */
  count(where?: Where<T>): Promise<number> {
    return this.#use((db) => db.count(this.#name, where));
  }

  /**
   * Whether a row has this primary key.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.create({ id: 1, name: "Ada" });
   * if (await users.exists(1)) console.log("found"); // found
   * console.log(await users.exists(2)); // false
   * await users.drop();
   * ```
   * @param id The primary key value.
   * @returns True when the row exists.
   * @throws {ValidationError} When `id` is null, undefined, an array or an object.
   */
  async exists(id: RecordId): Promise<boolean> {
    const where = byId(this.#name, this.#primaryKey, id, "check record");
    return (await this.#use((db) => db.count(this.#name, where))) > 0;
  }

  /**
   * Inserts a row, or updates the existing one: `UPSERT` on CockroachDB, `INSERT … ON CONFLICT
   * … DO UPDATE` on PostgreSQL (on the primary key unless `conflictColumns` is given).
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const settings = new AsyncTable<{ key: string; value: string }>("settings", {
   *   db,
   *   schema: { key: "TEXT PRIMARY KEY", value: "TEXT NOT NULL" },
   *   primaryKey: "key",
   * });
   * await settings.upsert({ key: "theme", value: "light" });
   * console.log(await settings.upsert({ key: "theme", value: "dark" }));
   * // { key: "theme", value: "dark" }
   * console.log(await settings.count()); // 1
   * await settings.drop();
   * ```
   * @param data Column → value, the conflict columns included.
   * @param options `conflictColumns`.
   * @returns The inserted or updated row.
   */
  upsert(data: Partial<T>, options?: TableUpsertOptions<T>): Promise<T> {
    const upsert = { conflictColumns: options?.conflictColumns };
    return this.#use((db) => db.upsert<T>(this.#name, data as Row, upsert));
  }

  /**
   * Inserts many rows in one transaction, one round trip per chunk; every record needs the same
   * keys.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * const created = await users.batchCreate([{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * console.log(created); // [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]
   * await users.drop();
   * ```
   * @param records The rows (`[]` returns `[]`).
   * @returns The inserted rows, in input order.
   * @throws {ValidationError} When records have differing keys.
   */
  batchCreate(records: readonly Partial<T>[]): Promise<T[]> {
    return this.#use((db) => db.batchInsert<T>(this.#name, records as readonly Row[]));
  }

  /**
   * Updates many rows by key, in one transaction.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.batchCreate([{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * await users.batchUpdate([{ id: 1, name: "Lovelace" }, { id: 2, name: "Hopper" }]);
   * console.log(await users.list({ orderBy: "id" }));
   * // [{ id: 1, name: "Lovelace" }, { id: 2, name: "Hopper" }]
   * await users.drop();
   * ```
   * @param records Each holds the key column and the columns to set (`[]` returns `[]`).
   * @param options `keyColumn` (default: the primary key).
   * @returns The updated rows, in input order; a key that matches nothing adds no row.
   * @throws {ValidationError} When a record lacks the key column or has nothing to set.
   */
  batchUpdate(
    records: readonly Partial<T>[],
    options?: TableBatchUpdateOptions<T>,
  ): Promise<T[]> {
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
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.batchCreate([{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * await users.truncate();
   * console.log(await users.count()); // 0
   * await users.drop();
   * ```
   */
  async truncate(): Promise<void> {
    const sql = buildTruncate(this.#name);
    await this.#use((db) => db.execute(sql));
  }

  /**
   * Drops the table (`DROP TABLE IF EXISTS`). A later use checks for the table again; with a
   * schema, it creates the table again.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await users.create({ id: 1, name: "Ada" });
   * await users.drop();
   * console.log(await db.tableExists("users")); // false
   * ```
   */
  async drop(): Promise<void> {
    await this.#db.dropTable(this.#name);
    this.#forget();
  }

  /**
   * Runs raw SQL on the table's database (or transaction) once the table is usable.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const orders = new AsyncTable<{ id: number; category: string; amount: string }>("orders", {
   *   db,
   *   schema: {
   *     id: "INT4 PRIMARY KEY",
   *     category: "TEXT NOT NULL",
   *     amount: "DECIMAL(10,2) NOT NULL",
   *   },
   * });
   * await orders.batchCreate([
   *   { id: 1, category: "books", amount: "12.50" },
   *   { id: 2, category: "tea", amount: "8.00" },
   *   { id: 3, category: "books", amount: "7.50" },
   * ]);
   * const totals = await orders.execute<{ category: string; total: string }>(
   *   `SELECT category, sum(amount) AS total FROM orders GROUP BY category ORDER BY category`,
   * );
   * console.log(totals);
   * // [{ category: "books", total: "20.00" }, { category: "tea", total: "8.00" }]
   * await orders.drop();
   * ```
   * @param sql The statement text (`$1 … $n` placeholders).
   * @param params The bind parameters.
   * @returns The rows (`[]` for statements without rows).
   * @throws {DatabaseError} When the server refuses the statement.
   */
  execute<R = Row>(sql: string, params?: readonly unknown[]): Promise<R[]> {
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
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncTable } from "@manticore/cockroachdb/crud";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const users = new AsyncTable<{ id: number; name: string }>("users", {
   *   db,
   *   schema: { id: "INT4 PRIMARY KEY", name: "TEXT NOT NULL" },
   * });
   * await db.transaction(async (tx) => {
   *   const t = users.withTransaction(tx);
   *   const user = await t.create({ id: 1, name: "Ada" });
   *   await t.update(user.id, { name: "Ada Lovelace" });
   * });
   * console.log(await users.read(1)); // { id: 1, name: "Ada Lovelace" }
   * await users.drop();
   * ```
   * @param tx The handle a `transaction()` callback receives.
   * @returns A table object bound to `tx`.
   * @throws {TypeError} When `tx` is not an `AsyncTransaction`.
   */
  withTransaction(tx: AsyncTransaction): this {
    if (!(tx instanceof AsyncTransaction)) {
      throw new TypeError(
        `Cannot bind table "${this.#name}" to a transaction: expected an AsyncTransaction`,
      );
    }
    const Class = this.constructor as AsyncTableClass<this>;
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

  async #use<R>(fn: (db: AsyncQueryable) => Promise<R>): Promise<R> {
    if (!this.#ready) await this.#ensureReady();
    try {
      return await fn(this.#db);
    } catch (error) {
      const mapped = tableError(this.#name, error);
      if (mapped !== error) this.#forget();
      throw mapped;
    }
  }

  // #if async
  #ensureReady(): Promise<void> {
    return this.#readying ?? this.#start(this.#schema, this.#ifNotExists);
  }

  // Concurrent callers share one run; a run superseded by a later one (or by drop()) changes
  // nothing when it settles.
  #start(schema: TableSchema | undefined, ifNotExists: boolean): Promise<void> {
    const run: Promise<void> = this.#prepare(schema, ifNotExists).then(
      () => {
        if (this.#readying === run) this.#ready = true;
      },
      (error) => {
        if (this.#readying === run) this.#readying = undefined;
        throw error;
      },
    );
    this.#readying = run;
    return run;
  }

  #forget(): void {
    this.#ready = false;
    this.#readying = undefined;
  }
  // #else
  // #ensureReady(): void {
  //   this.#start(this.#schema, this.#ifNotExists);
  // }
  //
  // #start(schema: TableSchema | undefined, ifNotExists: boolean): void {
  //   this.#prepare(schema, ifNotExists);
  //   this.#ready = true;
  // }
  //
  // #forget(): void {
  //   this.#ready = false;
  // }
  // #endif

  async #prepare(schema: TableSchema | undefined, ifNotExists: boolean): Promise<void> {
    if (schema !== undefined) {
      await this.#db.createTable(this.#name, schema, { ifNotExists });
    } else if (!(await this.#db.tableExists(this.#name))) {
      throw new TableNotInitializedError(this.#name);
    }
  }
}
