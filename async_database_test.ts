// AsyncDatabase on the real server: databases and tables, and the CRUD helpers of single rows.
// Batches and streams are in async_database_batch_test.ts, raw SQL, row types, server errors and
// hostile input in async_database_sql_test.ts, connecting, closing, terminated backends, the Deno
// Deploy permission rule and the examples in async_database_connect_test.ts; transactions in
// transaction_test.ts.
import assert from "node:assert/strict";
import type { Row } from "./async_database.ts";
import { DatabaseError, TableNotFoundError, ValidationError } from "./errors.ts";
import { uniqueName } from "./_test_util.ts";
import {
  ids,
  openDb,
  PEOPLE,
  PEOPLE_ROWS,
  rejectsWith,
  withTable,
} from "./_test_async_database.ts";

// Databases and tables

Deno.test("AsyncDatabase.createDatabase() and dropDatabase() may each run twice", async () => {
  await using db = openDb();
  const name = uniqueName("adb_db");
  const exists = async () =>
    (await db.queryOne<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_database WHERE datname = $1",
      [name],
    ))?.n === 1;
  try {
    await db.createDatabase(name);
    await db.createDatabase(name);
    assert.equal(await exists(), true);
  } finally {
    await db.dropDatabase(name);
    await db.dropDatabase(name);
  }
  assert.equal(await exists(), false);
});

Deno.test("AsyncDatabase.createTable() keeps the column order and ifNotExists", async () => {
  await using db = openDb();
  const table = uniqueName("adb_cols");
  const columns = {
    zeta: "TEXT",
    alpha: "INT4 NOT NULL DEFAULT 7",
    "Mixed Case": "BOOL",
    mid: "DATE",
  };
  try {
    await db.createTable(table, columns);
    await db.createTable(table, columns); // IF NOT EXISTS by default
    const rows = await db.execute<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
      [table],
    );
    assert.deepEqual(rows.map((r) => r.column_name), Object.keys(columns));
    const row = await db.insert(table, { zeta: "z" });
    assert.deepEqual(Object.keys(row), Object.keys(columns));
    assert.equal(row.alpha, 7);
    await rejectsWith(
      db.createTable(table, columns, { ifNotExists: false }),
      DatabaseError,
      (e) => assert.equal(e.code, "42P07"),
    );
  } finally {
    await db.dropTable(table);
  }
});

Deno.test("AsyncDatabase.dropTable() honours ifExists and cascade", async () => {
  await using db = openDb();
  const table = uniqueName("adb_drop");
  await db.dropTable(table); // IF EXISTS by default
  await rejectsWith(
    db.dropTable(table, { ifExists: false }),
    TableNotFoundError,
    (e) => assert.equal(e.code, "42P01"),
  );
  await db.createTable(table, { id: "INT4" });
  await db.execute(`CREATE VIEW "${table}_v" AS SELECT * FROM "${table}"`);
  await rejectsWith(db.dropTable(table), DatabaseError, (e) => assert.equal(e.code, "2BP01"));
  assert.equal(await db.tableExists(table), true);
  await db.dropTable(table, { cascade: true });
  assert.equal(await db.tableExists(table), false);
  assert.equal(await db.tableExists(`${table}_v`), false);
});

Deno.test("AsyncDatabase.tableExists() honours schema-qualified names", async () => {
  await using db = openDb();
  const schema = uniqueName("adb_s");
  const table = uniqueName("adb_t");
  await db.execute(`CREATE SCHEMA "${schema}"`);
  try {
    assert.equal(await db.tableExists(`${schema}.${table}`), false);
    await db.createTable(`${schema}.${table}`, { id: "INT4" });
    assert.equal(await db.tableExists(`${schema}.${table}`), true);
    assert.equal(await db.tableExists(table), false); // unqualified means public
    await db.insert(`${schema}.${table}`, { id: 1 });
    assert.equal(await db.count(`${schema}.${table}`), 1);
    await db.dropTable(`${schema}.${table}`);
    assert.equal(await db.tableExists(`${schema}.${table}`), false);
  } finally {
    await db.execute(`DROP SCHEMA "${schema}" CASCADE`);
  }
});

// Rows

Deno.test("AsyncDatabase.insert() returns the row, and {} inserts DEFAULT VALUES", async () => {
  await withTable({
    id: "SERIAL PRIMARY KEY",
    name: "TEXT DEFAULT 'anon'",
    tags: "TEXT[]",
  }, async (db, table) => {
    const first = await db.insert(table, {});
    assert.deepEqual(first, { id: 1, name: "anon", tags: null });
    const second = await db.insert(table, { name: "Ada", tags: ["x", "y"] });
    assert.deepEqual(second, { id: 2, name: "Ada", tags: ["x", "y"] });
    // An undefined value leaves the column to its default.
    const third = await db.insert(table, { name: undefined });
    assert.equal(third.name, "anon");
    await rejectsWith(db.insert(table, [] as unknown as Row), ValidationError);
  });
});

Deno.test("AsyncDatabase.select() filters with columns, null, arrays and operators", async () => {
  await withTable(PEOPLE, async (db, table) => {
    await db.batchInsert(table, PEOPLE_ROWS);
    const all = await db.select(table, { orderBy: "id" });
    assert.deepEqual(all, PEOPLE_ROWS);
    assert.deepEqual(
      await db.select(table, { columns: ["name", "id"], where: { id: 1 } }),
      [{ name: "Ada", id: 1 }],
    );
    assert.deepEqual(ids(await db.select(table, { where: { city: null } })), [2]);
    assert.deepEqual(ids(await db.select(table, { where: { age: null } })), [4]);
    await assert.rejects(db.select(table, { where: { age: undefined } }), ValidationError);
    assert.deepEqual(
      ids(await db.select(table, { where: { id: [5, 1, 99] }, orderBy: "id" })),
      [1, 5],
    );
    assert.deepEqual(await db.select(table, { where: { id: [] } }), []);
    const by = async (where: Record<string, unknown>) =>
      ids(await db.select(table, { where, orderBy: "id" }));
    assert.deepEqual(await by({ age: { gt: 41 } }), [2]);
    assert.deepEqual(await by({ age: { gte: 41 } }), [2, 3, 5]);
    assert.deepEqual(await by({ age: { lt: 41 } }), [1]);
    assert.deepEqual(await by({ age: { lte: 41 } }), [1, 3, 5]);
    assert.deepEqual(await by({ age: { gte: 40, lt: 50 } }), [3, 5]);
    assert.deepEqual(await by({ city: { ne: "London" } }), [4, 5]);
    assert.deepEqual(await by({ city: { ne: null } }), [1, 3, 4, 5]);
    assert.deepEqual(await by({ city: { ne: ["London", "Boston"] } }), [4]);
    assert.deepEqual(await by({ id: { in: [2, 3] } }), [2, 3]);
    assert.deepEqual(await by({ id: { in: [] } }), []);
    assert.deepEqual(await by({ name: { like: "A%" } }), [1, 3]);
    assert.deepEqual(await by({ city: "London", age: 41 }), [3]);
    await rejectsWith(
      db.select(table, { where: { age: { between: [1, 2] } } }),
      ValidationError,
      (e) => assert.equal(e.field, "age"),
    );
    await rejectsWith(db.select(table, { where: { age: { gt: null } } }), ValidationError);
  });
});

Deno.test("AsyncDatabase.select() accepts every orderBy form and refuses anything else", async () => {
  await withTable(PEOPLE, async (db, table) => {
    await db.batchInsert(table, PEOPLE_ROWS);
    const order = async (orderBy: unknown) =>
      ids(await db.select(table, { orderBy: orderBy as string }));
    assert.deepEqual(await order("id DESC"), [5, 4, 3, 2, 1]);
    assert.deepEqual(await order("age desc nulls last, name ASC"), [2, 3, 5, 1, 4]);
    assert.deepEqual(await order(["age DESC NULLS LAST", "name"]), [2, 3, 5, 1, 4]);
    assert.deepEqual(await order({ age: "asc", id: "desc" }), [1, 5, 3, 2, 4]);
    for (const bad of ["id; DROP TABLE x", "id DESCENDING", "", "lower(name)", [], {}, 5]) {
      await rejectsWith(
        db.select(table, { orderBy: bad as string }),
        ValidationError,
        (e) => assert.equal(e.field, "orderBy"),
      );
    }
  });
});

Deno.test("AsyncDatabase.select() honours limit 0, limit and offset", async () => {
  await withTable(PEOPLE, async (db, table) => {
    await db.batchInsert(table, PEOPLE_ROWS);
    assert.deepEqual(await db.select(table, { limit: 0 }), []);
    assert.deepEqual(ids(await db.select(table, { orderBy: "id", limit: 2 })), [1, 2]);
    assert.deepEqual(ids(await db.select(table, { orderBy: "id", offset: 3 })), [4, 5]);
    assert.deepEqual(ids(await db.select(table, { orderBy: "id", limit: 2, offset: 1 })), [2, 3]);
    assert.deepEqual(ids(await db.select(table, { orderBy: "id", offset: 0 })), [1, 2, 3, 4, 5]);
    for (const bad of [-1, 1.5, NaN, "3"]) {
      await rejectsWith(db.select(table, { limit: bad as number }), ValidationError);
      await rejectsWith(db.select(table, { offset: bad as number }), ValidationError);
    }
  });
});

Deno.test("AsyncDatabase.selectOne() returns the first row or null", async () => {
  await withTable(PEOPLE, async (db, table) => {
    assert.equal(await db.selectOne(table), null);
    await db.batchInsert(table, PEOPLE_ROWS);
    assert.deepEqual(await db.selectOne(table, { orderBy: "id DESC" }), PEOPLE_ROWS[4]);
    assert.deepEqual(await db.selectOne(table, { where: { city: "London" }, orderBy: "id" }), {
      ...PEOPLE_ROWS[0],
    });
    assert.equal(await db.selectOne(table, { where: { id: 42 } }), null);
  });
});

Deno.test("AsyncDatabase.update() returns every updated row", async () => {
  await withTable(PEOPLE, async (db, table) => {
    await db.batchInsert(table, PEOPLE_ROWS);
    const rows = await db.update(table, { city: "Paris" }, { age: 41 });
    assert.deepEqual(ids(rows).sort(), [3, 5]);
    assert.ok(rows.every((r) => r.city === "Paris"));
    assert.deepEqual(await db.update(table, { city: "Rome" }, { id: 99 }), []);
    assert.deepEqual(ids(await db.update(table, { age: 1 }, { city: null })), [2]);
  });
});

Deno.test("AsyncDatabase.update() refuses empty data or where with ValidationError and changes nothing", async () => {
  await withTable(PEOPLE, async (db, table) => {
    await db.batchInsert(table, PEOPLE_ROWS);
    await rejectsWith(
      db.update(table, {}, { id: 1 }),
      ValidationError,
      (e) => assert.equal(e.field, "data"),
    );
    await rejectsWith(
      db.update(table, { name: undefined }, { id: 1 }),
      ValidationError,
      (e) => assert.equal(e.field, "data"),
    );
    await rejectsWith(
      db.update(table, { name: "X" }, {}),
      ValidationError,
      (e) => assert.equal(e.field, "where"),
    );
    await rejectsWith(
      db.update(table, { name: "X" }, undefined as unknown as Row),
      ValidationError,
      (e) => assert.equal(e.field, "where"),
    );
    assert.deepEqual(await db.select(table, { orderBy: "id" }), PEOPLE_ROWS);
  });
});

Deno.test("AsyncDatabase.delete() returns the count and refuses an empty where with ValidationError", async () => {
  await withTable(PEOPLE, async (db, table) => {
    await db.batchInsert(table, PEOPLE_ROWS);
    await rejectsWith(
      db.delete(table, {}),
      ValidationError,
      (e) => assert.equal(e.field, "where"),
    );
    await rejectsWith(db.delete(table, null as unknown as Row), ValidationError);
    assert.equal(await db.count(table), 5);
    assert.equal(await db.delete(table, { city: "London" }), 2);
    assert.equal(await db.delete(table, { id: 42 }), 0);
    assert.equal(await db.delete(table, { age: null }), 1);
    assert.deepEqual(ids(await db.select(table, { orderBy: "id" })), [2, 5]);
  });
});

Deno.test("AsyncDatabase.count() counts all rows or the matching ones", async () => {
  await withTable(PEOPLE, async (db, table) => {
    assert.equal(await db.count(table), 0);
    await db.batchInsert(table, PEOPLE_ROWS);
    const n = await db.count(table);
    assert.equal(n, 5);
    assert.equal(typeof n, "number");
    assert.equal(await db.count(table, { city: "London" }), 2);
    assert.equal(await db.count(table, { age: { gte: 41 } }), 3);
    assert.equal(await db.count(table, {}), 5);
  });
});
