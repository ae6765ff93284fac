// AsyncDatabase on the real server: every CRUD helper, row types, error classes, hostile input,
// connecting and closing, timeouts, terminated backends, the Deno Deploy permission rule and the
// examples. Transactions are in transaction_test.ts.
import assert from "node:assert/strict";
import { AsyncDatabase, type DatabaseOptions, type Row } from "./async_database.ts";
import {
  ConnectionError,
  DatabaseError,
  TableNotFoundError,
  UniqueViolationError,
  ValidationError,
} from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

function openDb(options?: DatabaseOptions): AsyncDatabase {
  return new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 4, ...options });
}

/** Runs `fn` with a fresh database and a table created from `columns`, then drops it. */
async function withTable(
  columns: Record<string, string>,
  fn: (db: AsyncDatabase, table: string) => Promise<void>,
  options?: DatabaseOptions,
): Promise<void> {
  await using db = openDb(options);
  const table = uniqueName("adb");
  await db.createTable(table, columns);
  try {
    await fn(db, table);
  } finally {
    await db.dropTable(table, { cascade: true });
  }
}

async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
  check?: (error: E) => void,
): Promise<E> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof type, `expected ${type.name}, got ${Deno.inspect(caught)}`);
  check?.(caught);
  return caught;
}

const PEOPLE = {
  id: "INT4 PRIMARY KEY",
  name: "TEXT NOT NULL",
  age: "INT4",
  city: "TEXT",
};

const PEOPLE_ROWS = [
  { id: 1, name: "Ada", age: 36, city: "London" },
  { id: 2, name: "Grace", age: 85, city: null },
  { id: 3, name: "Alan", age: 41, city: "London" },
  { id: 4, name: "Edsger", age: null, city: "Austin" },
  { id: 5, name: "Barbara", age: 41, city: "Boston" },
];

const ids = (rows: Row[]): unknown[] => rows.map((r) => r.id);

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

// Upserts and batches

Deno.test("AsyncDatabase.upsert() on PostgreSQL conflicts on the primary key by default", async () => {
  await withTable({ id: "INT4 PRIMARY KEY", name: "TEXT", n: "INT4" }, async (db, table) => {
    assert.deepEqual(await db.upsert(table, { id: 1, name: "a", n: 1 }), {
      id: 1,
      name: "a",
      n: 1,
    });
    assert.deepEqual(await db.upsert(table, { id: 1, name: "b", n: 2 }), {
      id: 1,
      name: "b",
      n: 2,
    });
    assert.deepEqual(await db.upsert(table, { id: 1 }), { id: 1, name: "b", n: 2 });
    assert.equal(await db.count(table), 1);
  });
});

Deno.test("AsyncDatabase.upsert() conflicts on explicit conflictColumns and composite keys", async () => {
  await withTable({
    id: "SERIAL PRIMARY KEY",
    email: "TEXT UNIQUE NOT NULL",
    name: "TEXT",
  }, async (db, table) => {
    const first = await db.upsert(table, { email: "a@x", name: "A" }, {
      conflictColumns: ["email"],
    });
    const second = await db.upsert(table, { email: "a@x", name: "B" }, {
      conflictColumns: ["email"],
    });
    assert.equal(second.id, first.id);
    assert.equal(second.name, "B");
    assert.equal(await db.count(table), 1);
    await rejectsWith(
      db.upsert(table, { email: "a@x", name: "C" }, { conflictColumns: ["name"] }),
      DatabaseError,
      (e) => assert.equal(e.code, "42P10"), // no unique constraint on "name"
    );
  });
});

Deno.test("AsyncDatabase.upsert() uses a composite primary key and refuses a table without one", async () => {
  await using db = openDb();
  const composite = uniqueName("adb_ck");
  const keyless = uniqueName("adb_nk");
  await db.execute(
    `CREATE TABLE "${composite}" (a INT4, b INT4, v TEXT, PRIMARY KEY (b, a));
     CREATE TABLE "${keyless}" (a INT4, v TEXT)`,
  );
  try {
    await db.upsert(composite, { a: 1, b: 2, v: "x" });
    assert.deepEqual(await db.upsert(composite, { a: 1, b: 2, v: "y" }), { a: 1, b: 2, v: "y" });
    await db.upsert(composite, { a: 2, b: 1, v: "z" });
    assert.equal(await db.count(composite), 2);
    await rejectsWith(
      db.upsert(keyless, { a: 1, v: "x" }),
      ValidationError,
      (e) => assert.equal(e.field, "conflictColumns"),
    );
    assert.equal(await db.count(keyless), 0);
  } finally {
    await db.execute(`DROP TABLE "${composite}"; DROP TABLE "${keyless}"`);
  }
});

Deno.test("AsyncDatabase.batchInsert() returns the rows in input order", async () => {
  await withTable({ id: "SERIAL PRIMARY KEY", name: "TEXT", n: "INT4" }, async (db, table) => {
    const records = ["d", "a", "c", "b"].map((name, i) => ({ name, n: i }));
    const rows = await db.batchInsert(table, records);
    assert.deepEqual(rows.map((r) => [r.name, r.n]), [["d", 0], ["a", 1], ["c", 2], ["b", 3]]);
    assert.deepEqual(ids(rows), [1, 2, 3, 4]);
    // Keys in any order, chunkSize honoured, order kept across chunks.
    const more = await db.batchInsert(
      table,
      [{ n: 10, name: "x" }, { name: "y", n: 11 }, { name: "z", n: 12 }],
      { chunkSize: 2 },
    );
    assert.deepEqual(more.map((r) => r.name), ["x", "y", "z"]);
    assert.deepEqual(await db.batchInsert(table, []), []);
    assert.equal(await db.batchInsert(table, [], { returning: false }), 0);
  });
});

Deno.test("AsyncDatabase.batchInsert() splits 30,000 rows × 3 columns under the parameter limit", async () => {
  await withTable({ id: "INT4 PRIMARY KEY", label: "TEXT", score: "INT4" }, async (db, table) => {
    const records = Array.from({ length: 30_000 }, (_, i) => ({
      id: i,
      label: `row ${i}`,
      score: i % 97,
    }));
    const rows = await db.batchInsert(table, records);
    assert.equal(rows.length, 30_000);
    assert.ok(rows.every((r, i) => r.id === i && r.label === `row ${i}`));
    const stats = await db.queryOne<{ n: number; s: bigint }>(
      `SELECT count(*)::int AS n, sum(score) AS s FROM "${table}"`,
    );
    assert.equal(stats?.n, 30_000);
    assert.equal(stats?.s, BigInt(records.reduce((s, r) => s + r.score, 0)));
  });
});

Deno.test("AsyncDatabase.batchInsert() with returning: false uses COPY and keeps every value", async () => {
  await withTable({
    id: "INT4 PRIMARY KEY",
    t: "TEXT",
    b: "BOOL",
    j: "JSONB",
    bin: "BYTEA",
    at: "TIMESTAMPTZ",
    big: "INT8",
    num: "NUMERIC(12,4)",
  }, async (db, table) => {
    const at = new Date("2024-02-29T12:34:56.789Z");
    const records = [
      {
        id: 1,
        t: "tab\there, newline\nthere, back\\slash, cr\r, quote ' \" and é",
        b: true,
        j: { k: ["v", 1, null], "t\tab": "x\ny" },
        bin: new Uint8Array([0, 9, 10, 92, 255]),
        at,
        big: 9007199254740993n,
        num: "12.5",
      },
      { id: 2, t: null, b: false, j: null, bin: null, at: null, big: null, num: null },
      { id: 3, t: "\\N", b: null, j: { a: 1 }, bin: new Uint8Array(), at, big: -1n, num: "0" },
    ];
    assert.equal(await db.batchInsert(table, records, { returning: false }), 3);
    const rows = await db.select(table, { orderBy: "id" });
    assert.deepEqual(rows[0], { ...records[0], num: "12.5000" });
    assert.deepEqual(rows[1], records[1]);
    assert.deepEqual(rows[2], { ...records[2], num: "0.0000" });
  });
});

Deno.test("AsyncDatabase.batchInsert() with returning: false and chunkSize inserts through INSERT", async () => {
  await withTable({ id: "INT4 PRIMARY KEY", tags: "TEXT[]" }, async (db, table) => {
    const records = Array.from({ length: 25 }, (_, i) => ({ id: i, tags: [`t${i}`] }));
    assert.equal(await db.batchInsert(table, records, { returning: false, chunkSize: 10 }), 25);
    // Arrays cannot go through COPY here: INSERT is used without chunkSize too.
    const more = records.map((r) => ({ id: r.id + 100, tags: r.tags }));
    assert.equal(await db.batchInsert(table, more, { returning: false }), 25);
    assert.equal(await db.count(table), 50);
    assert.deepEqual((await db.selectOne(table, { where: { id: 107 } }))?.tags, ["t7"]);
  });
});

Deno.test("AsyncDatabase.batchInsert() refuses records with differing keys and inserts nothing", async () => {
  await withTable({ id: "INT4 PRIMARY KEY", a: "TEXT", b: "TEXT" }, async (db, table) => {
    for (const returning of [true, false]) {
      await rejectsWith(
        db.batchInsert(table, [{ id: 1, a: "x" }, { id: 2, b: "y" }], {
          returning: returning as true,
        }),
        ValidationError,
        (e) => assert.equal(e.field, "records"),
      );
      await rejectsWith(
        db.batchInsert(table, [{ id: 1, a: "x" }, { id: 2, a: "y", b: "z" }], {
          returning: returning as true,
        }),
        ValidationError,
      );
    }
    await rejectsWith(db.batchInsert(table, [{ id: 1 }, "x" as unknown as Row]), ValidationError);
    await rejectsWith(db.batchInsert(table, {} as unknown as Row[]), ValidationError);
    assert.equal(await db.count(table), 0);
  });
});

Deno.test("AsyncDatabase.batchInsert() is atomic across chunks: a failing chunk inserts nothing", async () => {
  await withTable({ id: "INT4 PRIMARY KEY" }, async (db, table) => {
    await rejectsWith(
      db.batchInsert(table, [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 1 }], { chunkSize: 2 }),
      UniqueViolationError,
    );
    assert.equal(await db.count(table), 0);
    await rejectsWith(
      db.batchInsert(table, [{ id: 5 }, { id: 6 }, { id: 5 }], { returning: false, chunkSize: 2 }),
      UniqueViolationError,
    );
    assert.equal(await db.count(table), 0);
  });
});

Deno.test("AsyncDatabase.batchUpsert() inserts and updates, returning rows in input order", async () => {
  await withTable({ id: "INT4 PRIMARY KEY", name: "TEXT" }, async (db, table) => {
    await db.batchInsert(table, [{ id: 1, name: "one" }, { id: 2, name: "two" }]);
    const rows = await db.batchUpsert(table, [
      { id: 3, name: "three" },
      { id: 1, name: "ONE" },
      { id: 4, name: "four" },
    ]);
    assert.deepEqual(rows, [
      { id: 3, name: "three" },
      { id: 1, name: "ONE" },
      { id: 4, name: "four" },
    ]);
    const chunked = await db.batchUpsert(
      table,
      [{ id: 2, name: "TWO" }, { id: 5, name: "five" }, { id: 4, name: "FOUR" }],
      { conflictColumns: ["id"], chunkSize: 1 },
    );
    assert.deepEqual(ids(chunked), [2, 5, 4]);
    assert.deepEqual(
      (await db.select(table, { orderBy: "id" })).map((r) => r.name),
      ["ONE", "TWO", "three", "FOUR", "five"],
    );
    assert.deepEqual(await db.batchUpsert(table, []), []);
  });
});

Deno.test("AsyncDatabase.batchUpdate() updates by key in input order", async () => {
  await withTable(PEOPLE, async (db, table) => {
    await db.batchInsert(table, PEOPLE_ROWS);
    const rows = await db.batchUpdate(table, [
      { id: 4, age: 72 },
      { id: 1, name: "Ada L.", city: "Paris" },
      { id: 99, name: "nobody" },
      { id: 2, age: 86 },
    ]);
    assert.deepEqual(ids(rows), [4, 1, 2]);
    assert.equal(rows[1].name, "Ada L.");
    assert.equal(rows[1].city, "Paris");
    assert.equal((await db.selectOne(table, { where: { id: 4 } }))?.age, 72);
    const byName = await db.batchUpdate(table, [{ name: "Alan", age: 42 }], {
      keyColumn: "name",
    });
    assert.deepEqual(ids(byName), [3]);
  });
});

Deno.test("AsyncDatabase.batchUpdate() runs in one transaction: a bad record changes nothing", async () => {
  await withTable({ ...PEOPLE, age: "INT4 CHECK (age >= 0)" }, async (db, table) => {
    await db.batchInsert(table, PEOPLE_ROWS);
    await rejectsWith(
      db.batchUpdate(table, [{ id: 1, age: 1 }, { id: 2, age: 2 }, { id: 3, age: -3 }]),
      DatabaseError,
      (e) => assert.equal(e.code, "23514"),
    );
    await rejectsWith(
      db.batchUpdate(table, [{ id: 1, age: 1 }, { age: 2 }]),
      ValidationError,
      (e) => assert.equal(e.field, "records"),
    );
    await rejectsWith(db.batchUpdate(table, [{ id: 1, age: 1 }, { id: 2 }]), ValidationError);
    await rejectsWith(db.batchUpdate(table, [{ id: null, age: 1 }]), ValidationError);
    assert.deepEqual(await db.select(table, { orderBy: "id" }), PEOPLE_ROWS);
    assert.deepEqual(await db.batchUpdate(table, []), []);
  });
});

// Streaming

Deno.test("AsyncDatabase.stream() streams 50,000 rows through a cursor in batches", async () => {
  await using db = openDb({ maxConnections: 1 });
  let count = 0;
  let sum = 0;
  let previous = 0;
  for await (
    const row of db.stream<{ n: number; pad: string }>(
      "SELECT n, repeat('x', 20) AS pad FROM generate_series(1, $1::int) AS n ORDER BY n",
      [50_000],
      { batchSize: 1000 },
    )
  ) {
    assert.equal(row.n, previous + 1);
    previous = row.n;
    count++;
    sum += row.n;
  }
  assert.equal(count, 50_000);
  assert.equal(sum, (50_000 * 50_001) / 2);
  // The one connection went back to the pool, outside any transaction.
  assert.deepEqual(await db.execute("SELECT count(*)::int AS open FROM pg_cursors"), [{ open: 0 }]);
  // A batch size that divides the count exactly ends cleanly too.
  let exact = 0;
  for await (const _ of db.stream("SELECT generate_series(1, 10)", [], { batchSize: 5 })) exact++;
  assert.equal(exact, 10);
  let none = 0;
  for await (const _ of db.stream("SELECT 1 WHERE false")) none++;
  assert.equal(none, 0);
});

Deno.test("AsyncDatabase.stream() closes the cursor and returns the connection on early break", async () => {
  await using db = openDb({ maxConnections: 1 });
  const seen: number[] = [];
  for await (
    const row of db.stream<{ n: number }>("SELECT generate_series(1, 100000) AS n", [], {
      batchSize: 100,
    })
  ) {
    seen.push(row.n);
    if (row.n === 250) break;
  }
  assert.equal(seen.length, 250);
  // With one connection, this only runs if the stream gave it back; no cursor or transaction
  // is left open on it.
  const state = await db.queryOne<{ cursors: number; idle: boolean }>(
    `SELECT (SELECT count(*)::int FROM pg_cursors) AS cursors,
            now() = statement_timestamp() AS idle`,
  );
  assert.deepEqual(state, { cursors: 0, idle: true });
});

Deno.test("AsyncDatabase.stream() throws the server error and returns the connection", async () => {
  await using db = openDb({ maxConnections: 1 });
  const seen: number[] = [];
  await rejectsWith(
    (async () => {
      for await (
        const row of db.stream<{ n: number }>(
          "SELECT n, 1 / (n - 150) AS boom FROM generate_series(1, 1000) AS n",
          [],
          { batchSize: 100 },
        )
      ) {
        seen.push(row.n);
      }
    })(),
    DatabaseError,
    (e) => assert.equal(e.code, "22012"),
  );
  assert.equal(seen.length, 100);
  assert.deepEqual(await db.execute("SELECT 1 AS ok"), [{ ok: 1 }]);
  await rejectsWith(
    (async () => {
      for await (const _ of db.stream("SELECT 1", [], { batchSize: 0 })) { /* nothing */ }
    })(),
    ValidationError,
  );
});

// Raw SQL and row types

Deno.test("AsyncDatabase.execute() returns every value type as documented", async () => {
  await withTable({
    id: "INT4 PRIMARY KEY",
    small: "INT2",
    big: "INT8",
    num: "NUMERIC(10,4)",
    flag: "BOOL",
    uid: "UUID",
    doc: "JSONB",
    js: "JSON",
    at: "TIMESTAMPTZ",
    naive: "TIMESTAMP",
    day: "DATE",
    bin: "BYTEA",
    tags: "TEXT[]",
    nums: "INT4[]",
    note: "TEXT",
    real: "FLOAT8",
  }, async (db, table) => {
    const row = {
      id: 1,
      small: 7,
      big: 9007199254740993n,
      num: "100",
      flag: true,
      uid: "0e5b2c1a-4d6f-4b8e-9a0b-1c2d3e4f5a6b",
      doc: { a: [1, "x", null], b: { c: true } },
      js: [1, 2, 3],
      at: new Date("2024-05-06T07:08:09.123Z"),
      naive: new Date("2024-05-06T07:08:09.000Z"),
      day: new Date("2024-05-06T00:00:00.000Z"),
      bin: new Uint8Array([0, 1, 254, 255]),
      tags: ["a", "b,c", 'q"', "{}", ""],
      nums: [3, -1, 0],
      note: null,
      real: 1.5,
    };
    const inserted = await db.insert(table, row);
    const [read] = await db.select(table);
    for (const got of [inserted, read]) {
      assert.equal(got.id, 1);
      assert.equal(got.small, 7);
      assert.equal(got.big, 9007199254740993n);
      assert.equal(got.num, "100.0000");
      assert.equal(got.flag, true);
      assert.equal(got.uid, row.uid);
      assert.deepEqual(got.doc, row.doc);
      assert.deepEqual(got.js, row.js);
      assert.ok(got.at instanceof Date);
      assert.equal((got.at as Date).toISOString(), "2024-05-06T07:08:09.123Z");
      assert.ok(got.naive instanceof Date);
      assert.ok(got.day instanceof Date);
      assert.deepEqual(got.bin, row.bin);
      assert.ok(got.bin instanceof Uint8Array);
      assert.deepEqual(got.tags, row.tags);
      assert.deepEqual(got.nums, row.nums);
      assert.equal(got.note, null);
      assert.equal(got.real, 1.5);
    }
    const counted = await db.queryOne("SELECT count(*) AS n, 1::int2 AS s, 2::int4 AS i");
    assert.deepEqual(counted, { n: 1n, s: 1, i: 2 });
  });
});

Deno.test("AsyncDatabase returns INT8 as number or string with the int8 option", async () => {
  {
    await using db = openDb({ int8: "number" });
    assert.deepEqual(await db.queryOne("SELECT 42::int8 AS v, count(*) AS n FROM (VALUES (1)) t"), {
      v: 42,
      n: 1,
    });
    await rejectsWith(db.execute("SELECT 9007199254740993::int8 AS v"), RangeError);
    // The connection is still usable after the RangeError.
    assert.deepEqual(await db.execute("SELECT -9007199254740991::int8 AS v"), [{
      v: -9007199254740991,
    }]);
  }
  {
    await using db = openDb({ int8: "string" });
    assert.deepEqual(await db.queryOne("SELECT 9007199254740993::int8 AS v"), {
      v: "9007199254740993",
    });
  }
});

Deno.test("AsyncDatabase.execute() runs multi-statement text and returns the last rows", async () => {
  await using db = openDb();
  const table = uniqueName("adb_multi");
  try {
    const rows = await db.execute(
      `CREATE TABLE "${table}" (id INT4);
       INSERT INTO "${table}" VALUES (1), (2);
       SELECT id FROM "${table}" ORDER BY id DESC`,
    );
    assert.deepEqual(rows, [{ id: 2 }, { id: 1 }]);
    assert.deepEqual(
      await db.execute(`INSERT INTO "${table}" VALUES (3); SELECT 1 WHERE false`),
      [],
    );
    assert.deepEqual(await db.execute(`UPDATE "${table}" SET id = id + 10`), []);
    assert.deepEqual(await db.execute(`DELETE FROM "${table}" WHERE id = $1`, [11]), []);
    assert.equal(await db.queryOne(`SELECT * FROM "${table}" WHERE id = $1`, [999]), null);
    assert.deepEqual(await db.queryOne(`SELECT count(*)::int AS n FROM "${table}"`), { n: 2 });
    await rejectsWith(db.execute(""), ValidationError);
    await rejectsWith(db.execute("SELECT $1", "x" as unknown as unknown[]), ValidationError);
  } finally {
    await db.dropTable(table);
  }
});

// Errors from the server

Deno.test("AsyncDatabase throws UniqueViolationError with the constraint", async () => {
  await withTable({ id: "INT4 PRIMARY KEY", email: "TEXT UNIQUE" }, async (db, table) => {
    await db.insert(table, { id: 1, email: "a@x" });
    const error = await rejectsWith(
      db.insert(table, { id: 2, email: "a@x" }),
      UniqueViolationError,
    );
    assert.equal(error.name, "UniqueViolationError");
    assert.equal(error.code, "23505");
    assert.equal(error.constraint, `${table}_email_key`);
    assert.equal(error.table, table);
    assert.match(error.detail ?? "", /already exists/);
    assert.ok(error instanceof DatabaseError);
    assert.ok(error.cause instanceof Error);
    assert.equal((error.cause as { code?: string }).code, "23505");
    assert.equal(await db.count(table), 1);
  });
});

Deno.test("AsyncDatabase throws TableNotFoundError (42P01) with the table name", async () => {
  await using db = openDb();
  const missing = uniqueName("adb_missing");
  for (
    const attempt of [
      () => db.select(missing),
      () => db.insert(missing, { a: 1 }),
      () => db.count(missing),
      () => db.execute(`SELECT * FROM "${missing}"`),
    ]
  ) {
    const error = await rejectsWith(attempt(), TableNotFoundError);
    assert.equal(error.code, "42P01");
    assert.equal(error.tableName, missing);
    assert.equal(error.name, "TableNotFoundError");
    assert.ok(error.cause);
  }
});

Deno.test("AsyncDatabase throws DatabaseError with code, detail, hint and cause", async () => {
  await using db = openDb();
  const error = await rejectsWith(
    db.execute(
      `DO $$ BEGIN RAISE EXCEPTION 'custom failure' USING ERRCODE = 'P0001',
         DETAIL = 'the detail', HINT = 'the hint'; END $$`,
    ),
    DatabaseError,
  );
  assert.equal(error.name, "DatabaseError");
  assert.equal(error.code, "P0001");
  assert.equal(error.detail, "the detail");
  assert.equal(error.hint, "the hint");
  assert.equal(error.severity, "ERROR");
  assert.match(error.message, /custom failure/);
  assert.ok(error.cause instanceof Error);
  const syntax = await rejectsWith(db.execute("SELEKT 1"), DatabaseError);
  assert.equal(syntax.code, "42601");
  assert.match(syntax.message, /syntax error/);
  const params = await rejectsWith(db.execute("SELECT $1::int AS n", ["nope"]), DatabaseError);
  assert.equal(params.code, "22P02");
  const column = await rejectsWith(db.execute("SELECT no_such_column"), DatabaseError);
  assert.equal(column.code, "42703");
});

Deno.test("AsyncDatabase throws DatabaseError 23503 with the constraint on a foreign key", async () => {
  await using db = openDb();
  const parent = uniqueName("adb_parent");
  const child = uniqueName("adb_child");
  await db.createTable(parent, { id: "INT4 PRIMARY KEY" });
  await db.createTable(child, { id: "INT4", parent_id: `INT4 REFERENCES "${parent}" (id)` });
  try {
    const error = await rejectsWith(db.insert(child, { id: 1, parent_id: 7 }), DatabaseError);
    assert.equal(error.code, "23503");
    assert.equal(error.constraint, `${child}_parent_id_fkey`);
  } finally {
    await db.dropTable(child);
    await db.dropTable(parent);
  }
});

// Hostile input

const HOSTILE_NAMES = [
  'x"; DROP TABLE CANARY; --',
  "x'); DROP TABLE CANARY; --",
  "Robert'); DELETE FROM CANARY;--",
  'a""b',
  "semi;colon",
  "spa ce.dot",
];

Deno.test("AsyncDatabase quotes hostile identifiers in every helper: nothing injected runs", async () => {
  await using db = openDb();
  const canary = uniqueName("adb_canary");
  await db.createTable(canary, { id: "INT4 PRIMARY KEY" });
  await db.insert(canary, { id: 1 });
  const names = HOSTILE_NAMES.map((n) => n.replaceAll("CANARY", `"${canary}"`));
  try {
    for (const raw of names) {
      // A dot means schema.table; keep the table names dot-free and use a hostile schema below.
      // Unique per run (parallel runs share the server), within the 63-byte limit.
      const table = `${raw.replaceAll(".", "_").slice(0, 56)}${
        Math.random().toString(36).slice(2, 8)
      }`;
      const column = raw;
      await db.createTable(table, { id: "INT4 PRIMARY KEY", [column]: "TEXT" });
      try {
        assert.equal(await db.tableExists(table), true);
        const row = await db.insert(table, { id: 1, [column]: raw });
        assert.equal(row[column], raw);
        await db.batchInsert(table, [{ id: 2, [column]: "b" }, { id: 3, [column]: "c" }]);
        await db.batchInsert(table, [{ id: 4, [column]: "d" }], { returning: false });
        await db.upsert(table, { id: 2, [column]: raw });
        await db.batchUpsert(table, [{ id: 3, [column]: raw }]);
        await db.batchUpdate(table, [{ id: 4, [column]: raw }]);
        await db.update(table, { [column]: raw }, { [column]: raw });
        assert.equal(await db.count(table, { [column]: raw }), 4);
        assert.deepEqual(
          ids(await db.select(table, { columns: ["id", column], where: { [column]: [raw] } })),
          [1, 2, 3, 4],
        );
        assert.equal(
          (await db.selectOne(table, { orderBy: { [column]: "desc" }, where: { id: 1 } }))
            ?.[column],
          raw,
        );
        assert.equal(await db.delete(table, { [column]: { like: raw.replaceAll("%", "") } }), 4);
      } finally {
        await db.dropTable(table);
      }
      assert.equal(await db.tableExists(table), false);
    }
    // Hostile where keys and orderBy strings against an ordinary table.
    for (const raw of names) {
      await rejectsWith(
        db.select(canary, { where: { [raw]: 1 } }),
        DatabaseError,
        (e) => assert.equal(e.code, "42703"),
      );
      await rejectsWith(
        db.delete(canary, { [raw]: 1 }),
        DatabaseError,
        (e) => assert.equal(e.code, "42703"),
      );
      await rejectsWith(db.update(canary, { id: 2 }, { [raw]: 1 }), DatabaseError);
      await rejectsWith(db.count(canary, { [raw]: 1 }), DatabaseError);
      await rejectsWith(
        db.select(canary, { orderBy: raw }),
        ValidationError,
        (e) => assert.equal(e.field, "orderBy"),
      );
      await rejectsWith(db.select(canary, { orderBy: `id, ${raw}` }), ValidationError);
      await rejectsWith(db.select(canary, { orderBy: [`id DESC; ${raw}`] }), ValidationError);
      await rejectsWith(db.select(canary, { columns: [raw] }), DatabaseError);
      await rejectsWith(db.insert(canary, { [raw]: 1 }), DatabaseError);
      assert.equal(await db.tableExists(`${raw.replaceAll(".", "_")}.x`), false);
    }
    // Names that cannot be identifiers are refused before anything is sent.
    for (const bad of ["", "a\0b", "x".repeat(64), "é".repeat(32)]) {
      await rejectsWith(db.createTable(bad, { id: "INT4" }), ValidationError);
      await rejectsWith(db.select(bad), ValidationError);
      await rejectsWith(db.insert(canary, { [bad]: 1 }), ValidationError);
      await rejectsWith(db.select(canary, { where: { [bad]: 1 } }), ValidationError);
      await rejectsWith(db.update(canary, { id: 1 }, { [bad]: 1 }), ValidationError);
    }
    for (const bad of ["a.b.c", ".x", "x."]) {
      await rejectsWith(db.createTable(bad, { id: "INT4" }), ValidationError);
      await rejectsWith(db.count(bad), ValidationError);
    }
    await rejectsWith(db.createDatabase('d"; DROP TABLE x; --'.repeat(4)), ValidationError);
    // Type strings cannot end the statement either.
    await rejectsWith(
      db.createTable(uniqueName("adb_ty"), { id: `INT4); DROP TABLE "${canary}"; --` }),
      ValidationError,
    );
    assert.deepEqual(await db.select(canary), [{ id: 1 }]);
  } finally {
    await db.dropTable(canary);
  }
});

Deno.test("AsyncDatabase quotes a hostile schema name in schema.table", async () => {
  await using db = openDb();
  const canary = uniqueName("adb_canary");
  const schema = `s"; DROP TABLE "${canary}"; --`;
  const table = `${schema}.t`;
  await db.createTable(canary, { id: "INT4" });
  await db.insert(canary, { id: 1 });
  await db.execute(`CREATE SCHEMA "${schema.replaceAll('"', '""')}"`);
  try {
    await db.createTable(table, { id: "INT4" });
    assert.equal(await db.tableExists(table), true);
    await db.insert(table, { id: 5 });
    assert.deepEqual(await db.select(table), [{ id: 5 }]);
    await db.dropTable(table);
    assert.equal(await db.tableExists(table), false);
  } finally {
    await db.execute(`DROP SCHEMA "${schema.replaceAll('"', '""')}" CASCADE`);
  }
  assert.equal(await db.count(canary), 1);
  await db.dropTable(canary);
});

// Connecting and closing

Deno.test("AsyncDatabase connects lazily, and connect() is idempotent", async () => {
  const db = openDb();
  try {
    assert.equal(db.serverVersion, "");
    await Promise.all([db.connect(), db.connect()]);
    const version = db.serverVersion;
    assert.match(version, /PostgreSQL|CockroachDB/);
    await db.connect();
    assert.equal(db.serverVersion, version);
  } finally {
    await db.close();
  }
  const lazy = openDb();
  try {
    assert.deepEqual(await lazy.execute("SELECT 1 AS one"), [{ one: 1 }]);
    assert.notEqual(lazy.serverVersion, "");
  } finally {
    await lazy.close();
  }
});

Deno.test("AsyncDatabase.close() is idempotent and every later call fails with ConnectionError", async () => {
  const never = openDb();
  await never.close(); // never connected
  await assert.rejects(() => never.execute("SELECT 1"), ConnectionError);
  const db = openDb();
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
  await db.close();
  await db.close();
  await Promise.all([db.close(), db.close()]);
  for (
    const call of [
      () => db.execute("SELECT 2"),
      () => db.queryOne("SELECT 2"),
      () => db.connect(),
      () => db.select("t"),
      () => db.transaction((tx) => tx.execute("SELECT 3")),
      () => db.stream("SELECT 4").next(),
    ]
  ) {
    await assert.rejects(call, (error: unknown) => {
      assert.ok(error instanceof ConnectionError, Deno.inspect(error));
      assert.equal(error.code, "CONNECTION_CLOSED");
      assert.match(error.message, /^Cannot use the database ".*": it is closed$/);
      return true;
    });
  }
});

Deno.test("AsyncDatabase closes with await using", async () => {
  const app = uniqueName("adb_using");
  {
    await using db = openDb({ applicationName: app, minConnections: 2 });
    await db.connect();
  }
  // The resource sanitizer would already fail on an open socket; the server sees them go too.
  await using check = openDb();
  let left = -1;
  for (let i = 0; i < 500 && left !== 0; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    left = (await check.queryOne<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
      [app],
    ))!.n;
  }
  assert.equal(left, 0);
});

Deno.test("AsyncDatabase passes options=-c and application_name from the URL to the server", async () => {
  const url = new URL(testUrl());
  url.searchParams.set("options", "-c search_path=adb_nowhere,public -c statement_timeout=4321");
  url.searchParams.set("application_name", "adb-url-app");
  await using db = new AsyncDatabase(url.toString(), { minConnections: 1 });
  assert.deepEqual(
    await db.queryOne(
      "SELECT current_setting('search_path') AS sp, current_setting('statement_timeout') AS st, current_setting('application_name') AS app",
    ),
    { sp: "adb_nowhere,public", st: "4321ms", app: "adb-url-app" },
  );
});

Deno.test("AsyncDatabase throws ConnectionError naming host:port when the connection is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const secret = "n0t-in-any-message";
  const db = new AsyncDatabase(`postgresql://root:${secret}@127.0.0.1:${port}/postgres`, {
    connectTimeout: 5,
    minConnections: 1,
  });
  try {
    for (const attempt of [() => db.connect(), () => db.execute("SELECT 1")]) {
      const error = await rejectsWith(attempt(), ConnectionError);
      assert.equal(error.name, "ConnectionError");
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(error.message, /refused/);
      assert.ok(!Deno.inspect(error).includes(secret));
      assert.ok(!error.message.includes(secret));
    }
    await rejectsWith(db.transaction(() => 1), ConnectionError);
  } finally {
    await db.close();
  }
});

Deno.test("AsyncDatabase honours connectTimeout against a server that never answers", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) accepted.push(conn);
    } catch {
      // closed
    }
  })();
  const db = new AsyncDatabase({
    host: "127.0.0.1",
    port: listener.addr.port,
    connectTimeout: 1,
    minConnections: 1,
  });
  try {
    const error = await rejectsWith(db.connect(), ConnectionError);
    assert.equal(error.code, "CONNECT_TIMEOUT");
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${listener.addr.port}`));
    assert.match(error.message, /timeout/);
  } finally {
    await db.close();
    listener.close();
    await accepting;
    for (const conn of accepted) {
      try {
        conn.close();
      } catch {
        // already closed by the client
      }
    }
  }
});

Deno.test("AsyncDatabase statementTimeout cancels a long statement with DatabaseError 57014", async () => {
  await using db = openDb({ statementTimeout: 100 });
  const error = await rejectsWith(db.execute("SELECT pg_sleep(5)"), DatabaseError);
  assert.equal(error.code, "57014");
  assert.deepEqual(await db.execute("SELECT 1 AS ok"), [{ ok: 1 }]);
});

// Terminated backends

Deno.test("AsyncDatabase recovers when idle pooled connections are terminated", async () => {
  const app = uniqueName("adb_kill_idle");
  await using db = openDb({ applicationName: app, minConnections: 3, maxConnections: 3 });
  await using admin = openDb({ maxConnections: 1 });
  await db.connect();
  const killed = await admin.execute<{ ok: boolean }>(
    "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
    [app],
  );
  assert.ok(killed.length >= 1);
  // Wait until the server has ended them, so that the pool meets closed connections.
  while (
    (await admin.queryOne<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
      [app],
    ))?.n !== 0
  ) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => db.queryOne<{ n: number }>("SELECT $1::int AS n", [i])),
  );
  assert.deepEqual(results.map((r) => r?.n), [0, 1, 2, 3, 4, 5]);
  assert.equal(await db.transaction((tx) => tx.queryOne("SELECT 1 AS one")).then((r) => r?.one), 1);
});

/** Terminates `pid` from another connection and waits until the server has ended it. */
async function terminate(admin: AsyncDatabase, pid: number): Promise<void> {
  await admin.execute("SELECT pg_terminate_backend($1)", [pid]);
  while (
    (await admin.queryOne<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1",
      [pid],
    ))?.n !== 0
  ) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // Let the client read the end of the connection before anything else is sent on it.
  await new Promise((resolve) => setTimeout(resolve, 50));
}

Deno.test("AsyncDatabase runs a transaction again on a fresh connection when its backend is terminated before COMMIT", async () => {
  await withTable({ id: "INT4 PRIMARY KEY", attempt: "INT4" }, async (db, table) => {
    await using admin = openDb({ maxConnections: 1 });
    const pids: number[] = [];
    const retries: string[] = [];
    const value = await db.transaction(async (tx) => {
      const pid = (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!.pid;
      pids.push(pid);
      await tx.insert(table, { id: pids.length, attempt: pids.length });
      if (pids.length === 1) {
        await terminate(admin, pid);
        await tx.execute("SELECT 1"); // fails: the connection is gone
      }
      return pids.length;
    }, { onRetry: (info) => retries.push((info.error as DatabaseError).code) });
    assert.equal(value, 2);
    assert.equal(pids.length, 2);
    assert.notEqual(pids[0], pids[1]);
    assert.equal(retries.length, 1);
    // Only the second attempt's row was committed.
    assert.deepEqual(await db.select(table), [{ id: 2, attempt: 2 }]);
  });
});

Deno.test("AsyncDatabase runs a transaction again when its backend is terminated under a callback that sends nothing more", async () => {
  await withTable({ id: "INT4 PRIMARY KEY" }, async (db, table) => {
    await using admin = openDb({ maxConnections: 1 });
    let attempts = 0;
    const value = await db.transaction(async (tx) => {
      attempts++;
      const pid = (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!.pid;
      await tx.insert(table, { id: attempts });
      if (attempts === 1) await terminate(admin, pid);
      return attempts;
    });
    assert.equal(value, 2);
    assert.deepEqual(await db.select(table), [{ id: 2 }]);
    // The pool is healthy afterwards.
    assert.deepEqual(
      await Promise.all(
        [1, 2, 3].map((n) => db.queryOne<{ n: number }>("SELECT $1::int AS n", [n])),
      ),
      [{ n: 1 }, { n: 2 }, { n: 3 }],
    );
  });
});

// Deno Deploy: the async API needs only --allow-net --allow-env.

const CONFIG = new URL("./deno.json", import.meta.url);
const MOD = new URL("./mod.ts", import.meta.url);

async function runDeno(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    env,
    clearEnv: true,
    cwd: new URL(".", import.meta.url).pathname,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

async function withScript<T>(source: string, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(path, source);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

function inherited(): Record<string, string> {
  const env: Record<string, string> = { DATABASE_URL: testUrl(), NO_COLOR: "1" };
  for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

Deno.test("mod.ts imports with no permissions at all", async () => {
  const source = `import * as mod from "${MOD.href}";
console.log(typeof mod.AsyncDatabase, typeof mod.DatabaseError);
`;
  const { code, output } = await withScript(
    source,
    (path) => runDeno(["run", "--no-prompt", "--config", CONFIG.pathname, path], inherited()),
  );
  assert.equal(code, 0, output);
  assert.match(output, /function function/);
});

Deno.test("the async API runs a whole scenario with only --allow-net --allow-env", async () => {
  const source = `import { AsyncDatabase, TransactionRetryError } from "${MOD.href}";
const table = "deploy_" + Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
const db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!, { minConnections: 1 });
try {
  await db.connect();
  await db.createTable(table, { id: "SERIAL PRIMARY KEY", name: "TEXT NOT NULL", n: "INT4" });
  await db.insert(table, { name: "a", n: 1 });
  await db.batchInsert(table, [{ name: "b", n: 2 }, { name: "c", n: 3 }], { returning: false });
  const rows = await db.select(table, { orderBy: "id" });
  if (rows.map((r) => r.name).join() !== "a,b,c") throw new Error("bad rows " + JSON.stringify(rows));
  const total = await db.transaction(async (tx) => {
    await tx.update(table, { n: 10 }, { name: "a" });
    return (await tx.queryOne("SELECT sum(n)::int AS s FROM " + JSON.stringify(table)))!.s;
  });
  if (total !== 15) throw new Error("bad total " + total);
  let streamed = 0;
  for await (const _ of db.stream("SELECT * FROM " + JSON.stringify(table), [], { batchSize: 2 })) streamed++;
  if (streamed !== 3) throw new Error("bad stream " + streamed);
  console.log("scenario ok", TransactionRetryError.name);
} finally {
  await db.dropTable(table);
  await db.close();
}
`;
  const { code, output } = await withScript(
    source,
    (path) =>
      runDeno(
        ["run", "--no-prompt", "--allow-net", "--allow-env", "--config", CONFIG.pathname, path],
        inherited(),
      ),
  );
  assert.equal(code, 0, output);
  assert.match(output, /scenario ok/);
});

for (const example of ["basic_crud.ts", "transactions.ts"]) {
  Deno.test(`examples/${example} runs to completion with --allow-net --allow-env`, async () => {
    const path = new URL(`./examples/${example}`, import.meta.url).pathname;
    const { code, output } = await runDeno(
      ["run", "--no-prompt", "--allow-net", "--allow-env", path],
      inherited(),
    );
    assert.equal(code, 0, output);
    assert.match(output, /Done/);
  });
}
