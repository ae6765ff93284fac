// The table itself, through both twins (see _test_twins.ts) where a scenario fits both: made
// from a schema (on first use or by initialize(); the sync Table in its constructor), attached
// to a table that exists, schema-qualified, declared by a subclass's static members, emptied,
// dropped (by the object or behind its back), and the constructors' refusals.
import assert from "node:assert/strict";
import { AsyncDatabase } from "../async_database.ts";
import { Database } from "../database.ts";
import { testUrl, uniqueName } from "../_test_util.ts";
import { AsyncTable } from "./async_table.ts";
import {
  DatabaseError,
  TableNotFoundError,
  TableNotInitializedError,
  ValidationError,
} from "../errors.ts";
import { Table } from "./table.ts";
import { fiveUsers, MISSING_ID, twins, type User, USER_SCHEMA, users } from "./_test_twins.ts";

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
