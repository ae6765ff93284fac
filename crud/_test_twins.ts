// What the table test files share: the two twins a scenario runs through (`twins()` runs it as
// t.step("async") with AsyncTable on an AsyncDatabase and t.step("sync") with Table on a
// Database, each with the tables it named dropped afterwards), the shape of a table both fit
// (`AnyTable`), and the users table most scenarios use. A scenario awaits every call, which is
// harmless on the sync twin's plain values.
import { AsyncDatabase, type Row, type Where } from "../async_database.ts";
import { Database } from "../database.ts";
import { testUrl, uniqueName } from "../_test_util.ts";
import { AsyncTable } from "./async_table.ts";
import type {
  InitializeOptions,
  ListOptions,
  RecordId,
  TableBatchUpdateOptions,
  TableSchema,
  TableSettings,
  TableUpsertOptions,
} from "./_table_common.ts";
import { Table } from "./table.ts";

export type Maybe<X> = X | Promise<X>;

/** What a scenario uses of a table: AsyncTable and Table both fit. */
export interface AnyTable<T extends object> {
  readonly name: string;
  readonly primaryKey: string;
  initialize(options?: InitializeOptions): Maybe<unknown>;
  create(data: Partial<T>): Maybe<T>;
  read(id: RecordId): Maybe<T>;
  get(id: RecordId): Maybe<T | null>;
  getMany(ids: readonly RecordId[]): Maybe<T[]>;
  findOne(where: Where<T>): Maybe<T | null>;
  update(id: RecordId, data: Partial<T>): Maybe<T>;
  updateWhere(where: Where<T>, data: Partial<T>): Maybe<T[]>;
  delete(id: RecordId): Maybe<boolean>;
  deleteWhere(where: Where<T>): Maybe<number>;
  list(options?: ListOptions<T>): Maybe<T[]>;
  count(where?: Where<T>): Maybe<number>;
  exists(id: RecordId): Maybe<boolean>;
  upsert(data: Partial<T>, options?: TableUpsertOptions<T>): Maybe<T>;
  batchCreate(records: readonly Partial<T>[]): Maybe<T[]>;
  batchUpdate(records: readonly Partial<T>[], options?: TableBatchUpdateOptions<T>): Maybe<T[]>;
  truncate(): Maybe<void>;
  drop(): Maybe<void>;
  execute<R = Row>(sql: string, params?: readonly unknown[]): Maybe<R[]>;
}

/** One twin: how a scenario builds tables and reaches the database directly. */
export interface Twin {
  /** `new AsyncTable(name, { db, ...settings })` or `new Table(name, { db, ...settings })`. */
  table<T extends object = Row>(name: string, settings?: TableSettings): AnyTable<T>;
  /** A subclass with `static tableName` and `static schema`, built as `new Sub(db, settings)`. */
  subclass<T extends object = Row>(
    tableName: string,
    schema: TableSchema | undefined,
    settings?: TableSettings,
  ): AnyTable<T>;
  sql(text: string, params?: readonly unknown[]): Promise<Row[]>;
  tableExists(name: string): Promise<boolean>;
  /** A unique table name, dropped after the scenario. */
  name(prefix: string): string;
}

export async function twins(
  t: Deno.TestContext,
  scenario: (twin: Twin) => Promise<void>,
): Promise<void> {
  await t.step("async", async () => {
    const db = new AsyncDatabase(testUrl(), { minConnections: 1 });
    const names: string[] = [];
    try {
      await scenario({
        table<T extends object>(name: string, settings?: TableSettings): AnyTable<T> {
          return new AsyncTable<T>(name, { ...settings, db });
        },
        subclass: (tableName, schema, settings) => {
          class Sub extends AsyncTable {
            static override tableName = tableName;
            static override schema = schema;
          }
          return new Sub(db, settings) as never;
        },
        sql: (text, params) => db.execute(text, params),
        tableExists: (name) => db.tableExists(name),
        name: (prefix) => {
          names.push(uniqueName(`${prefix}_a`));
          return names.at(-1)!;
        },
      });
    } finally {
      for (const name of names) await db.dropTable(name);
      await db.close();
    }
  });
  await t.step("sync", async () => {
    const db = new Database(testUrl(), { minConnections: 1 });
    const names: string[] = [];
    try {
      await scenario({
        table<T extends object>(name: string, settings?: TableSettings): AnyTable<T> {
          return new Table<T>(name, { ...settings, db });
        },
        subclass: (tableName, schema, settings) => {
          class Sub extends Table {
            static override tableName = tableName;
            static override schema = schema;
          }
          return new Sub(db, settings) as never;
        },
        sql: (text, params) => Promise.resolve(db.execute(text, params)),
        tableExists: (name) => Promise.resolve(db.tableExists(name)),
        name: (prefix) => {
          names.push(uniqueName(`${prefix}_s`));
          return names.at(-1)!;
        },
      });
    } finally {
      for (const name of names) db.dropTable(name);
      db.close();
    }
  });
}

export interface User {
  id: string;
  name: string | null;
  email: string | null;
  age: number | null;
  active: boolean | null;
}

export const USER_SCHEMA = {
  id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
  name: "TEXT",
  email: "TEXT UNIQUE",
  age: "INT4",
  active: "BOOLEAN DEFAULT true",
};

export const MISSING_ID = "00000000-0000-4000-8000-000000000000";

export function users(twin: Twin): AnyTable<User> {
  return twin.table<User>(twin.name("users"), { schema: USER_SCHEMA });
}

export async function fiveUsers(table: AnyTable<User>): Promise<User[]> {
  return await table.batchCreate(
    [0, 1, 2, 3, 4].map((i) => ({
      name: `User ${i}`,
      email: `user${i}@example.com`,
      age: 20 + i,
      active: i % 2 === 0,
    })),
  );
}
