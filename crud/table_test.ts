// The table scenarios, each run through both twins: AsyncTable on an AsyncDatabase ("async")
// and Table on a Database ("sync"). A scenario awaits every call, which is harmless on the sync
// twin's plain values; the sync-only tests at the end use the values without `await`.
import assert from "node:assert/strict";
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
import {
  DatabaseError,
  RecordNotFoundError,
  TableNotFoundError,
  TableNotInitializedError,
  UniqueViolationError,
  ValidationError,
} from "../errors.ts";
import { Table } from "./table.ts";

type Maybe<X> = X | Promise<X>;

/** What a scenario uses of a table: AsyncTable and Table both fit. */
interface AnyTable<T extends object> {
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
interface Twin {
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

async function twins(t: Deno.TestContext, scenario: (twin: Twin) => Promise<void>): Promise<void> {
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

interface User {
  id: string;
  name: string | null;
  email: string | null;
  age: number | null;
  active: boolean | null;
}

const USER_SCHEMA = {
  id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
  name: "TEXT",
  email: "TEXT UNIQUE",
  age: "INT4",
  active: "BOOLEAN DEFAULT true",
};

const MISSING_ID = "00000000-0000-4000-8000-000000000000";

function users(twin: Twin): AnyTable<User> {
  return twin.table<User>(twin.name("users"), { schema: USER_SCHEMA });
}

async function fiveUsers(table: AnyTable<User>): Promise<User[]> {
  return await table.batchCreate(
    [0, 1, 2, 3, 4].map((i) => ({
      name: `User ${i}`,
      email: `user${i}@example.com`,
      age: 20 + i,
      active: i % 2 === 0,
    })),
  );
}

Deno.test("Table.create() returns the inserted row with its defaults and id", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const user = await table.create({ name: "Ada", email: "ada@example.com", age: 36 });
    assert.equal(user.name, "Ada");
    assert.equal(user.email, "ada@example.com");
    assert.equal(user.age, 36);
    assert.equal(user.active, true);
    assert.match(user.id, /^[0-9a-f-]{36}$/);
  });
});

Deno.test("Table.read() returns the row and get() returns null for a missing id", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const user = await table.create({ name: "Ada" });
    assert.deepEqual(await table.read(user.id), user);
    assert.deepEqual(await table.get(user.id), user);
    assert.equal(await table.get(MISSING_ID), null);
  });
});

Deno.test("Table.read() throws RecordNotFoundError naming the table and the id", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await assert.rejects(
      async () => await table.read(MISSING_ID),
      (error: unknown) => {
        assert.ok(error instanceof RecordNotFoundError);
        assert.ok(error instanceof DatabaseError);
        assert.equal(error.tableName, table.name);
        assert.equal(error.id, MISSING_ID);
        assert.equal(error.message, `Record "${MISSING_ID}" not found in table "${table.name}"`);
        return true;
      },
    );
  });
});

Deno.test("Table.update() changes only the given fields and throws RecordNotFoundError for a missing id", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const user = await table.create({ name: "Ada", email: "ada@example.com", age: 36 });
    const updated = await table.update(user.id, { age: 37, active: false });
    assert.deepEqual(updated, { ...user, age: 37, active: false });
    assert.deepEqual(await table.read(user.id), updated);
    await assert.rejects(
      async () => await table.update(MISSING_ID, { age: 1 }),
      RecordNotFoundError,
    );
    await assert.rejects(async () => await table.update(user.id, {}), ValidationError);
  });
});

Deno.test("Table.delete() returns true for a row and false once it is gone", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const user = await table.create({ name: "Ada" });
    assert.equal(await table.delete(user.id), true);
    assert.equal(await table.get(user.id), null);
    assert.equal(await table.delete(user.id), false);
    assert.equal(await table.delete(MISSING_ID), false);
  });
});

Deno.test("Table.list() filters, orders, limits and offsets", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await fiveUsers(table);
    const ages = (rows: User[]) => rows.map((r) => r.age);
    assert.equal((await table.list()).length, 5);
    const exact = await table.list({ where: { age: 22 } });
    assert.deepEqual(exact.map((r) => r.name), ["User 2"]);
    assert.deepEqual(ages(await table.list({ orderBy: "age DESC" })), [24, 23, 22, 21, 20]);
    assert.equal((await table.list({ limit: 2 })).length, 2);
    assert.equal((await table.list({ offset: 3 })).length, 2);
    assert.deepEqual(ages(await table.list({ orderBy: "age", limit: 2, offset: 2 })), [22, 23]);
    assert.deepEqual(ages(await table.list({ where: { age: { gte: 23 } }, orderBy: "age" })), [
      23,
      24,
    ]);
    assert.deepEqual(
      ages(await table.list({ where: { active: false }, orderBy: { age: "desc" } })),
      [
        23,
        21,
      ],
    );
    assert.deepEqual(await table.list({ where: { age: 99 } }), []);
    assert.deepEqual(await table.list({ limit: 0 }), []);
    await assert.rejects(
      // @ts-expect-error: the typed orderBy refuses it at compile time; the run time refuses it too
      async () => await table.list({ orderBy: "age; DROP TABLE x" }),
      ValidationError,
    );
  });
});

Deno.test("Table.count() counts every row or the rows matching where", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    assert.equal(await table.count(), 0);
    await table.batchCreate([
      { name: "a", active: true },
      { name: "b", active: true },
      { name: "c", active: false },
    ]);
    assert.equal(await table.count(), 3);
    assert.equal(await table.count({ active: true }), 2);
    assert.equal(await table.count({ active: false }), 1);
  });
});

Deno.test("Table.batchCreate() and batchUpdate() keep input order and getMany() returns the rows", async (t) => {
  await twins(t, async (twin) => {
    interface Item {
      id: number;
      name: string;
      value: number;
    }
    const table = twin.subclass<Item>(twin.name("batch"), {
      id: "INT4 PRIMARY KEY",
      name: "TEXT NOT NULL",
      value: "INT4 NOT NULL",
    });
    const input = [5, 3, 1, 4, 2].map((id) => ({ id, name: `item ${id}`, value: id * 10 }));
    const created = await table.batchCreate(input);
    assert.deepEqual(created, input);
    const updated = await table.batchUpdate(created.map((r) => ({ id: r.id, value: r.value + 5 })));
    assert.deepEqual(updated, input.map((r) => ({ ...r, value: r.value + 5 })));
    const many = await table.getMany([4, 1, 99, 2, 3, 5]);
    assert.deepEqual(many.map((r) => r.id), [1, 2, 3, 4, 5]);
    assert.deepEqual(many.map((r) => r.value), [15, 25, 35, 45, 55]);
    await table.drop();
    assert.equal(await twin.tableExists(table.name), false);
  });
});

Deno.test("Table empty operations: create({}) inserts defaults and empty batches return []", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const empty = await table.create({});
    assert.match(empty.id, /^[0-9a-f-]{36}$/);
    assert.equal(empty.name, null);
    assert.equal(empty.active, true);
    assert.deepEqual(await table.batchCreate([]), []);
    assert.deepEqual(await table.batchUpdate([]), []);
    assert.deepEqual(await table.getMany([]), []);
    assert.equal(await table.count(), 1);
  });
});

Deno.test("Table.initialize({ schema }) creates the table an object without a schema attaches to", async (t) => {
  await twins(t, async (twin) => {
    const table = twin.table<User>(twin.name("init"));
    assert.equal(await twin.tableExists(table.name), false);
    await table.initialize({ schema: USER_SCHEMA });
    assert.equal(await twin.tableExists(table.name), true);
    const user = await table.create({ name: "Ada" });
    assert.deepEqual(await table.read(user.id), user);
  });
});

Deno.test("A Table without a schema throws TableNotInitializedError naming the table until it exists", async (t) => {
  await twins(t, async (twin) => {
    const table = twin.table<User>(twin.name("attach"));
    const notInitialized = (error: unknown) => {
      assert.ok(error instanceof TableNotInitializedError);
      assert.equal(error.tableName, table.name);
      assert.match(error.message, new RegExp(`^Table "${table.name}" is not initialized`));
      return true;
    };
    await assert.rejects(async () => await table.create({ name: "Ada" }), notInitialized);
    await assert.rejects(async () => await table.get(MISSING_ID), notInitialized);
    await assert.rejects(async () => await table.list(), notInitialized);
    await assert.rejects(async () => await table.initialize(), notInitialized);
    await twin.sql(
      `CREATE TABLE "${table.name}" (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), name TEXT)`,
    );
    const user = await table.create({ name: "Ada" });
    assert.equal((await table.read(user.id)).name, "Ada");
  });
});

Deno.test("A Table whose table is dropped behind its back throws TableNotInitializedError", async (t) => {
  await twins(t, async (twin) => {
    const name = twin.name("dropped");
    await twin.sql(`CREATE TABLE "${name}" (id INT4 PRIMARY KEY)`);
    const table = twin.table(name);
    await table.create({ id: 1 });
    await twin.sql(`DROP TABLE "${name}"`);
    await assert.rejects(async () => await table.count(), (error: unknown) => {
      assert.ok(error instanceof TableNotInitializedError);
      assert.equal(error.tableName, name);
      assert.ok(error.cause instanceof TableNotFoundError);
      return true;
    });
    await assert.rejects(async () => await table.count(), TableNotInitializedError);
    // Raw SQL about another table keeps the server's error.
    await twin.sql(`CREATE TABLE "${name}" (id INT4 PRIMARY KEY)`);
    await assert.rejects(
      async () => await table.execute(`SELECT * FROM "${name}_nope"`),
      TableNotFoundError,
    );
    assert.equal(await table.count(), 0);
  });
});

Deno.test("Table accepts a schema-qualified name", async (t) => {
  await twins(t, async (twin) => {
    const name = twin.name("qualified");
    const table = twin.table<{ id: number }>(`public.${name}`, {
      schema: { id: "INT4 PRIMARY KEY" },
    });
    assert.equal(table.name, `public.${name}`);
    assert.deepEqual(await table.create({ id: 7 }), { id: 7 });
    assert.equal(await twin.tableExists(name), true);
    await twin.sql(`DROP TABLE "${name}"`);
    await assert.rejects(async () => await table.read(7), TableNotInitializedError);
    assert.equal(await table.count(), 0); // created again from its schema
  });
});

Deno.test("Table.create() throws UniqueViolationError on a duplicate unique value", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await table.create({ name: "Ada", email: "ada@example.com" });
    await assert.rejects(
      async () => await table.create({ name: "Other", email: "ada@example.com" }),
      (error: unknown) => {
        assert.ok(error instanceof UniqueViolationError);
        assert.equal(error.code, "23505");
        assert.equal(error.constraint, `${table.name}_email_key`);
        return true;
      },
    );
    await table.create({ name: "No email" });
    assert.equal(await table.count(), 2);
  });
});

Deno.test("A Table schema with an invalid column type throws DatabaseError", async (t) => {
  await twins(t, async (twin) => {
    const name = twin.name("bad_type");
    await assert.rejects(async () => {
      const table = twin.subclass(name, { id: "INT4 PRIMARY KEY", x: "INVALID_TYPE" });
      await table.initialize();
    }, DatabaseError);
    assert.equal(await twin.tableExists(name), false);
  });
});

Deno.test("Table.initialize({ ifNotExists: false }) on an existing table throws DatabaseError", async (t) => {
  await twins(t, async (twin) => {
    const name = twin.name("exists");
    await twin.sql(`CREATE TABLE "${name}" (id INT4 PRIMARY KEY, name TEXT)`);
    const table = twin.subclass(name, {
      id: "INT4 PRIMARY KEY",
      name: "TEXT",
      email: "TEXT",
    });
    await table.initialize();
    await assert.rejects(async () => await table.initialize({ ifNotExists: false }), (error) => {
      assert.ok(error instanceof DatabaseError);
      assert.equal(error.code, "42P07");
      return true;
    });
    assert.deepEqual(await table.create({ id: 1, name: "still usable" }), {
      id: 1,
      name: "still usable",
    });
  });
});

Deno.test("A Table subclass takes its name and schema from static members", async (t) => {
  await twins(t, async (twin) => {
    interface Tea {
      id: string;
      name: string;
      price: string;
      organic: boolean;
    }
    const teas = twin.subclass<Tea>(twin.name("teas"), {
      id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
      name: "TEXT NOT NULL",
      price: "DECIMAL(10,2) NOT NULL",
      organic: "BOOLEAN NOT NULL DEFAULT false",
    });
    await teas.initialize();
    await teas.initialize();
    const sencha = await teas.create({ name: "Sencha", price: "12.99", organic: true });
    assert.equal(sencha.price, "12.99");
    assert.equal(sencha.organic, true);
    assert.deepEqual(await teas.get(sencha.id), sencha);
    assert.equal((await teas.update(sencha.id, { price: "13.50" })).price, "13.50");
    assert.equal((await teas.list()).length, 1);
    assert.equal(await teas.delete(sencha.id), true);
    assert.equal(await teas.get(sencha.id), null);
    await teas.drop();
    assert.equal(await twin.tableExists(teas.name), false);
  });
});

Deno.test("Table subclass schemas compose by spread", async (t) => {
  const base = {
    id: "SERIAL PRIMARY KEY",
    created_at: "TIMESTAMPTZ NOT NULL DEFAULT now()",
  };
  await t.step("async", async () => {
    class Timestamped extends AsyncTable {
      static override schema = base;
    }
    class Posts extends Timestamped {
      static override tableName = uniqueName("posts_a");
      static override schema = { ...Timestamped.schema, title: "TEXT NOT NULL" };
    }
    assert.deepEqual(Object.keys(Posts.schema), ["id", "created_at", "title"]);
    const db = new AsyncDatabase(testUrl(), { minConnections: 1 });
    try {
      const post = await new Posts(db).create({ title: "Hello" });
      assert.equal(post.title, "Hello");
      assert.ok(post.created_at instanceof Date);
    } finally {
      await db.dropTable(Posts.tableName);
      await db.close();
    }
  });
  await t.step("sync", () => {
    class Timestamped extends Table {
      static override schema = base;
    }
    class Posts extends Timestamped {
      static override tableName = uniqueName("posts_s");
      static override schema = { ...Timestamped.schema, title: "TEXT NOT NULL" };
    }
    assert.deepEqual(Object.keys(Posts.schema), ["id", "created_at", "title"]);
    const db = new Database(testUrl(), { minConnections: 1 });
    try {
      const post = new Posts(db).create({ title: "Hello" });
      assert.equal(post.title, "Hello");
      assert.ok(post.created_at instanceof Date);
    } finally {
      db.dropTable(Posts.tableName);
      db.close();
    }
  });
});

Deno.test("Table.execute() runs raw SQL and returns [] for statements without rows", async (t) => {
  await twins(t, async (twin) => {
    interface Sale {
      id: number;
      category: string;
      amount: string;
    }
    const sales = twin.table<Sale>(twin.name("sales"), {
      schema: { id: "SERIAL PRIMARY KEY", category: "TEXT NOT NULL", amount: "DECIMAL(10,2)" },
    });
    await sales.batchCreate([
      { category: "A", amount: "10.00" },
      { category: "B", amount: "5.50" },
      { category: "A", amount: "20.00" },
      { category: "B", amount: "4.50" },
      { category: "A", amount: "30.00" },
    ]);
    const totals = await sales.execute<{ category: string; total: string; count: bigint }>(
      `SELECT category, sum(amount) AS total, count(*) AS count FROM "${sales.name}"
        WHERE amount > $1 GROUP BY category ORDER BY category`,
      ["0"],
    );
    assert.deepEqual(totals, [
      { category: "A", total: "60.00", count: 3n },
      { category: "B", total: "10.00", count: 2n },
    ]);
    assert.deepEqual(
      await sales.execute(`INSERT INTO "${sales.name}" (category, amount) VALUES ('C', 1)`),
      [],
    );
    assert.equal((await sales.list({ where: { category: "C" } })).length, 1);
  });
});

Deno.test("Table.findOne(), updateWhere(), deleteWhere() and exists() work on conditions", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const created = await fiveUsers(table);
    assert.equal((await table.findOne({ email: "user3@example.com" }))?.name, "User 3");
    assert.equal(await table.findOne({ email: "nobody@example.com" }), null);
    const renamed = await table.updateWhere({ active: false }, { name: "inactive" });
    assert.deepEqual(renamed.map((r) => r.age).sort(), [21, 23]);
    assert.equal(await table.count({ name: "inactive" }), 2);
    assert.deepEqual(await table.updateWhere({ age: 99 }, { name: "x" }), []);
    assert.equal(await table.exists(created[0].id), true);
    assert.equal(await table.deleteWhere({ age: { lt: 22 } }), 2);
    assert.equal(await table.exists(created[0].id), false);
    assert.equal(await table.deleteWhere({ age: 99 }), 0);
    await assert.rejects(async () => await table.deleteWhere({}), ValidationError);
    await assert.rejects(async () => await table.updateWhere({}, { name: "all" }), ValidationError);
    assert.equal(await table.count(), 3);
  });
});

Deno.test("Table.upsert() inserts a row, then updates it on the same key", async (t) => {
  await twins(t, async (twin) => {
    const settings = twin.table<{ key: string; value: string }>(twin.name("settings"), {
      schema: { key: "TEXT PRIMARY KEY", value: "TEXT NOT NULL" },
      primaryKey: "key",
    });
    assert.deepEqual(await settings.upsert({ key: "theme", value: "light" }), {
      key: "theme",
      value: "light",
    });
    assert.deepEqual(await settings.upsert({ key: "theme", value: "dark" }), {
      key: "theme",
      value: "dark",
    });
    assert.deepEqual(await settings.list(), [{ key: "theme", value: "dark" }]);
  });
});

Deno.test("Table with a primaryKey option uses that column to find rows", async (t) => {
  await twins(t, async (twin) => {
    const codes = twin.table<{ code: string; label: string }>(twin.name("codes"), {
      schema: { code: "TEXT PRIMARY KEY", label: "TEXT NOT NULL" },
      primaryKey: "code",
    });
    assert.equal(codes.primaryKey, "code");
    await codes.batchCreate([{ code: "a", label: "A" }, { code: "b", label: "B" }]);
    assert.equal((await codes.read("a")).label, "A");
    assert.equal((await codes.update("b", { label: "Bee" })).label, "Bee");
    assert.deepEqual(await codes.batchUpdate([{ code: "a", label: "Ay" }]), [
      { code: "a", label: "Ay" },
    ]);
    assert.deepEqual((await codes.getMany(["b", "a"])).map((r) => r.code), ["a", "b"]);
    assert.equal(await codes.exists("b"), true);
    assert.equal(await codes.delete("a"), true);
    assert.equal(await codes.count(), 1);
  });
});

Deno.test("Table.truncate() empties the table and drop() removes it until the next use", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await fiveUsers(table);
    await table.truncate();
    assert.equal(await table.count(), 0);
    await table.drop();
    assert.equal(await twin.tableExists(table.name), false);
    // With a schema, the next use creates the table again.
    assert.equal(await table.count(), 0);
    assert.equal(await twin.tableExists(table.name), true);
    // Without one, the object reports the missing table.
    const attached = twin.table(table.name);
    await attached.drop();
    await assert.rejects(async () => await attached.count(), TableNotInitializedError);
  });
});

Deno.test("Table refuses an id that would widen its filter", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await fiveUsers(table);
    for (const id of [null, undefined, true, [MISSING_ID], { ne: MISSING_ID }]) {
      const bad = id as unknown as RecordId;
      await assert.rejects(async () => await table.delete(bad), ValidationError);
      await assert.rejects(async () => await table.read(bad), ValidationError);
      await assert.rejects(async () => await table.update(bad, { name: "x" }), ValidationError);
      await assert.rejects(async () => await table.exists(bad), ValidationError);
    }
    await assert.rejects(async () => await table.getMany([{ gt: 0 } as never]), ValidationError);
    assert.equal(await table.count(), 5);
    assert.equal(await table.count({ name: "x" }), 0);
  });
});

Deno.test("Table constructor throws without a table name or with an invalid one", async (t) => {
  await twins(t, async (twin) => {
    assert.throws(() => twin.subclass(undefined as never, undefined), TypeError);
    assert.throws(() => twin.table(""), ValidationError);
    assert.throws(() => twin.table('a"b'.repeat(30)), ValidationError);
    assert.throws(() => twin.table("t", { primaryKey: "" }), ValidationError);
    await Promise.resolve();
  });
});

Deno.test("Table and AsyncTable constructors throw TypeError without a database of their kind", () => {
  assert.throws(() => new AsyncTable("x", {} as never), TypeError);
  assert.throws(() => new Table("x", {} as never), TypeError);
  assert.throws(
    () => new Table("x", { db: new AsyncDatabase(testUrl()) } as never),
    /Cannot create table object "x": db must be a Database or Transaction/,
  );
  class Unnamed extends AsyncTable {}
  assert.throws(
    () => new Unnamed(new AsyncDatabase(testUrl())),
    /Cannot create table object: pass a table name or declare a static tableName/,
  );
});

Deno.test("Table.withTransaction() runs in the transaction: a throw rolls back, a return commits", async (t) => {
  await t.step("async", async () => {
    const db = new AsyncDatabase(testUrl(), { minConnections: 1 });
    const accounts = new AsyncTable<{ id: number; balance: number }>(uniqueName("acct_a"), {
      db,
      schema: { id: "INT4 PRIMARY KEY", balance: "INT4 NOT NULL" },
    });
    try {
      await accounts.batchCreate([{ id: 1, balance: 100 }, { id: 2, balance: 50 }]);
      await assert.rejects(
        db.transaction(async (tx) => {
          const bound = accounts.withTransaction(tx);
          assert.ok(bound instanceof AsyncTable);
          assert.equal(bound.db, tx);
          await bound.update(1, { balance: 75 });
          await bound.create({ id: 3, balance: 1 });
          assert.equal((await bound.read(1)).balance, 75);
          throw new RangeError("changed my mind");
        }),
        RangeError,
      );
      assert.equal((await accounts.read(1)).balance, 100);
      assert.equal(await accounts.exists(3), false);
      const moved = await db.transaction(async (tx) => {
        const bound = accounts.withTransaction(tx);
        await bound.update(1, { balance: 75 });
        await bound.update(2, { balance: 75 });
        return await bound.list({ orderBy: "id" });
      });
      assert.deepEqual(moved.map((r) => r.balance), [75, 75]);
      assert.deepEqual((await accounts.list({ orderBy: "id" })).map((r) => r.balance), [75, 75]);
    } finally {
      await accounts.drop();
      await db.close();
    }
  });
  await t.step("sync", () => {
    const db = new Database(testUrl(), { minConnections: 1 });
    const accounts = new Table<{ id: number; balance: number }>(uniqueName("acct_s"), {
      db,
      schema: { id: "INT4 PRIMARY KEY", balance: "INT4 NOT NULL" },
    });
    try {
      accounts.batchCreate([{ id: 1, balance: 100 }, { id: 2, balance: 50 }]);
      assert.throws(
        () =>
          db.transaction((tx) => {
            const bound = accounts.withTransaction(tx);
            assert.ok(bound instanceof Table);
            assert.equal(bound.db, tx);
            bound.update(1, { balance: 75 });
            bound.create({ id: 3, balance: 1 });
            assert.equal(bound.read(1).balance, 75);
            throw new RangeError("changed my mind");
          }),
        RangeError,
      );
      assert.equal(accounts.read(1).balance, 100);
      assert.equal(accounts.exists(3), false);
      const moved = db.transaction((tx) => {
        const bound = accounts.withTransaction(tx);
        bound.update(1, { balance: 75 });
        bound.update(2, { balance: 75 });
        return bound.list({ orderBy: "id" });
      });
      assert.deepEqual(moved.map((r) => r.balance), [75, 75]);
      assert.deepEqual(accounts.list({ orderBy: "id" }).map((r) => r.balance), [75, 75]);
    } finally {
      accounts.drop();
      db.close();
    }
  });
});

Deno.test("Table.withTransaction() of a subclass returns that subclass bound to the transaction", async (t) => {
  const schema = { id: "INT4 PRIMARY KEY", title: "TEXT NOT NULL" };
  await t.step("async", async () => {
    class Books extends AsyncTable<{ id: number; title: string }> {
      static override tableName = uniqueName("books_a");
      static override schema = schema;
      titles(): Promise<string[]> {
        return this.list({ orderBy: "id" }).then((rows) => rows.map((r) => r.title));
      }
    }
    const db = new AsyncDatabase(testUrl(), { minConnections: 1 });
    try {
      const books = new Books(db);
      await books.create({ id: 1, title: "Dune" });
      const titles = await db.transaction(async (tx) => {
        const bound = books.withTransaction(tx);
        assert.ok(bound instanceof Books);
        assert.equal(bound.name, Books.tableName);
        await bound.create({ id: 2, title: "Emma" });
        return await bound.titles();
      });
      assert.deepEqual(titles, ["Dune", "Emma"]);
    } finally {
      await db.dropTable(Books.tableName);
      await db.close();
    }
  });
  await t.step("sync", () => {
    class Books extends Table<{ id: number; title: string }> {
      static override tableName = uniqueName("books_s");
      static override schema = schema;
      titles(): string[] {
        return this.list({ orderBy: "id" }).map((r) => r.title);
      }
    }
    const db = new Database(testUrl(), { minConnections: 1 });
    try {
      const books = new Books(db);
      books.create({ id: 1, title: "Dune" });
      const titles = db.transaction((tx) => {
        const bound = books.withTransaction(tx);
        assert.ok(bound instanceof Books);
        bound.create({ id: 2, title: "Emma" });
        return bound.titles();
      });
      assert.deepEqual(titles, ["Dune", "Emma"]);
    } finally {
      db.dropTable(Books.tableName);
      db.close();
    }
  });
});

Deno.test("Table creates its table in the constructor and returns plain values", () => {
  const db = new Database(testUrl(), { minConnections: 1 });
  const name = uniqueName("sync_ctor");
  try {
    const table = new Table<User>(name, { db, schema: USER_SCHEMA });
    assert.equal(db.tableExists(name), true);
    const user = table.create({ name: "Ada" });
    assert.equal(user.name, "Ada");
    assert.equal(table.read(user.id).name, "Ada");
    assert.equal(table.count(), 1);
    assert.equal(table.exists(user.id), true);
    assert.equal(table.list().length, 1);
    assert.equal(table.delete(user.id), true);
    assert.throws(
      () => new Table(uniqueName("sync_bad"), { db, schema: { x: "NOPE" } }),
      DatabaseError,
    );
  } finally {
    db.dropTable(name);
    db.close();
  }
});
