// AsyncDatabase on the real server: upserts, the batch helpers (COPY and chunked INSERTs), and
// streams through a cursor.
import assert from "node:assert/strict";
import type { Row } from "./async_database.ts";
import { DatabaseError, UniqueViolationError, ValidationError } from "./errors.ts";
import { uniqueName } from "./_test_util.ts";
import {
  ids,
  openDb,
  PEOPLE,
  PEOPLE_ROWS,
  rejectsWith,
  withTable,
} from "./_test_async_database.ts";

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
    assert.equal(rows[1]?.name, "Ada L.");
    assert.equal(rows[1]?.city, "Paris");
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
