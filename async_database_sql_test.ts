// AsyncDatabase on the real server: raw SQL and the row types it returns, the error classes of
// the server's errors, and hostile identifiers quoted in every helper.
import assert from "node:assert/strict";
import {
  DatabaseError,
  TableNotFoundError,
  UniqueViolationError,
  ValidationError,
} from "./errors.ts";
import { uniqueName } from "./_test_util.ts";
import { ids, openDb, rejectsWith, withTable } from "./_test_async_database.ts";

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
    assert.ok(read);
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
