// The sync Database on the real server, against AsyncDatabase: every CRUD helper, every value
// type, the error classes, large results and streams. Transactions are in
// database_transaction_test.ts, the worker and its bridge in database_bridge_test.ts.
import assert from "node:assert/strict";
import { Database } from "./database.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  ConnectionError,
  DatabaseError,
  TableNotFoundError,
  UniqueViolationError,
  ValidationError,
} from "./errors.ts";
import { bothWays, byId, caught } from "./_test_database.ts";

Deno.test("Database runs every CRUD helper as AsyncDatabase does", async (t) => {
  await bothWays(t, async (q) => {
    const table = uniqueName("crud");
    assert.equal(await q.tableExists(table), false);
    await q.createTable(table, { id: "INT PRIMARY KEY", name: "TEXT", score: "INT DEFAULT 0" });
    await q.createTable(table, { id: "INT PRIMARY KEY" }); // IF NOT EXISTS
    assert.equal(await q.tableExists(table), true);
    try {
      assert.deepEqual(await q.insert(table, { id: 1, name: "Ada" }), {
        id: 1,
        name: "Ada",
        score: 0,
      });
      assert.deepEqual(
        await q.batchInsert(table, [{ id: 2, name: "Grace" }, { id: 3, name: "Edsger" }]),
        [{ id: 2, name: "Grace", score: 0 }, { id: 3, name: "Edsger", score: 0 }],
      );
      assert.equal(
        await q.batchInsert(table, [{ id: 4, name: "Alan" }, { id: 5, name: "Barbara" }], {
          returning: false,
        }),
        2,
      );
      assert.deepEqual(
        (await q.select(table, { where: { id: { gte: 2 } }, orderBy: "id DESC", limit: 2 }))
          .map((r) => r.id),
        [5, 4],
      );
      assert.deepEqual(await q.select(table, { limit: 0 }), []);
      assert.deepEqual(await q.selectOne(table, { where: { name: "Grace" }, columns: ["id"] }), {
        id: 2,
      });
      assert.equal(await q.selectOne(table, { where: { name: "nobody" } }), null);
      assert.deepEqual(byId(await q.update(table, { score: 10 }, { id: [1, 2] })), [
        { id: 1, name: "Ada", score: 10 },
        { id: 2, name: "Grace", score: 10 },
      ]);
      assert.deepEqual(await q.upsert(table, { id: 1, name: "Ada L.", score: 11 }), {
        id: 1,
        name: "Ada L.",
        score: 11,
      });
      assert.deepEqual(
        await q.batchUpsert(table, [{ id: 6, name: "Frances", score: 1 }, {
          id: 2,
          name: "Grace H.",
          score: 12,
        }]),
        [{ id: 6, name: "Frances", score: 1 }, { id: 2, name: "Grace H.", score: 12 }],
      );
      assert.deepEqual(
        await q.batchUpdate(table, [{ id: 3, score: 3 }, { id: 99, score: 9 }, {
          id: 4,
          score: 4,
        }]),
        [{ id: 3, name: "Edsger", score: 3 }, { id: 4, name: "Alan", score: 4 }],
      );
      assert.equal(await q.count(table), 6);
      assert.equal(await q.count(table, { score: { gt: 3 } }), 3);
      assert.equal(await q.delete(table, { id: { in: [5, 6] } }), 2);
      assert.deepEqual(
        await q.execute<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`),
        [{ n: 4 }],
      );
      assert.deepEqual(await q.queryOne(`SELECT name FROM "${table}" WHERE id = $1`, [4]), {
        name: "Alan",
      });
      assert.equal(await q.queryOne(`SELECT name FROM "${table}" WHERE id = $1`, [404]), null);
      assert.deepEqual(await q.execute(`UPDATE "${table}" SET score = 0`), []);
    } finally {
      await q.dropTable(table);
    }
    assert.equal(await q.tableExists(table), false);
    const database = uniqueName("db");
    await q.createDatabase(database);
    await q.createDatabase(database);
    assert.equal(
      (await q.queryOne("SELECT count(*)::int AS n FROM pg_database WHERE datname = $1", [
        database,
      ]))?.n,
      1,
    );
    await q.dropDatabase(database);
    await q.dropDatabase(database);
  });
});

Deno.test("Database returns every value type as AsyncDatabase does", async (t) => {
  const results: Record<string, unknown> = {};
  const bytes = new Uint8Array([0, 1, 2, 254, 255]);
  const when = new Date("2024-02-29T12:34:56.789Z");
  await bothWays(t, async (q, mode) => {
    const table = uniqueName("types");
    await q.createTable(table, {
      id: "INT8 PRIMARY KEY",
      big: "INT8",
      small: "INT4",
      amount: "NUMERIC(12,4)",
      flag: "BOOL",
      at: "TIMESTAMPTZ",
      day: "DATE",
      data: "BYTEA",
      doc: "JSONB",
      tags: "TEXT[]",
      nums: "INT4[]",
      uid: "UUID",
      nothing: "TEXT",
    });
    try {
      const row = {
        id: 9007199254740993n,
        big: -9223372036854775808n,
        small: 42,
        amount: "100.5",
        flag: true,
        at: when,
        day: "2024-02-29",
        data: bytes,
        doc: { nested: { list: [1, "two", null, true] }, n: 1.5 },
        tags: ["a", "b,c", ""],
        nums: [1, 2, 3],
        uid: "6f1c1c5e-3c4a-4a55-9d7e-1c2b3a4d5e6f",
        nothing: null,
      };
      const inserted = await q.insert(table, row);
      const read = await q.selectOne(table, { where: { id: 9007199254740993n } });
      assert.deepEqual(read, inserted);
      assert.equal(read?.id, 9007199254740993n);
      assert.equal(read?.big, -9223372036854775808n);
      assert.equal(read?.amount, "100.5000");
      assert.ok(read?.at instanceof Date);
      assert.equal((read?.at as Date).getTime(), when.getTime());
      assert.ok(read?.day instanceof Date);
      assert.ok(read?.data instanceof Uint8Array);
      assert.deepEqual([...read?.data as Uint8Array], [...bytes]);
      assert.deepEqual(read?.doc, row.doc);
      assert.deepEqual(read?.tags, row.tags);
      assert.equal(read?.nothing, null);
      // Parameters cross the bridge with their types too.
      const echoed = await q.queryOne(
        "SELECT $1::int8 AS b, $2::timestamptz AS t, $3::bytea AS y, $4::jsonb AS j, $5::numeric AS d, $6::text AS z",
        [2n ** 62n, when, bytes, { a: [1, { b: null }] }, "0.1", null],
      );
      assert.deepEqual(echoed, {
        b: 2n ** 62n,
        t: when,
        y: echoed?.y,
        j: { a: [1, { b: null }] },
        d: "0.1",
        z: null,
      });
      assert.deepEqual([...echoed?.y as Uint8Array], [...bytes]);
      results[mode] = { read, echoed };
    } finally {
      await q.dropTable(table);
    }
  });
  assert.deepEqual(results.sync, results.async);
});

Deno.test("Database throws the same error classes, codes and fields as AsyncDatabase", async (t) => {
  const errors: Record<string, Error[]> = {};
  const tables: Record<string, string> = {};
  await bothWays(t, async (q, mode) => {
    const table = uniqueName("errors");
    tables[mode] = table;
    await q.createTable(table, { id: "INT PRIMARY KEY", email: "TEXT UNIQUE" });
    try {
      await q.insert(table, { id: 1, email: "a@example.com" });
      const unique = await caught(() => q.insert(table, { id: 2, email: "a@example.com" }));
      assert.ok(unique instanceof UniqueViolationError);
      assert.ok(unique instanceof DatabaseError);
      assert.equal(unique.name, "UniqueViolationError");
      assert.equal(unique.code, "23505");
      assert.equal(unique.constraint, `${table}_email_key`);
      assert.equal(unique.table, table);
      assert.match(unique.detail ?? "", /already exists/);
      assert.match((unique.cause as Error).message, /duplicate key/);

      const missing = await caught(() => q.select(`${table}_missing`));
      assert.ok(missing instanceof TableNotFoundError);
      assert.equal(missing.code, "42P01");
      assert.equal(missing.tableName, `${table}_missing`);

      const syntax = await caught(() => q.execute("SELEC 1"));
      assert.ok(syntax instanceof DatabaseError);
      assert.equal(syntax.code, "42601");
      assert.equal((syntax.cause as Error).name, "PostgresError");

      const validation = await caught(() => q.update(table, { email: "x" }, {}));
      assert.ok(validation instanceof ValidationError);
      assert.equal(validation.code, "VALIDATION_ERROR");
      assert.equal(validation.field, "where");

      const identifier = await caught(() => q.insert("", { id: 1 }));
      assert.ok(identifier instanceof ValidationError);

      const overflow = await caught(() => q.execute("SELECT 1/0"));
      assert.equal((overflow as DatabaseError).code, "22012");

      errors[mode] = [unique, missing, syntax, validation, identifier, overflow];
    } finally {
      await q.dropTable(table);
    }
  });
  // The same but for the table names, which differ between the two runs.
  const describe = (mode: string) => {
    const table = tables[mode];
    assert.ok(table, `the ${mode} run's table`);
    return (e: Error) =>
      JSON.parse(
        JSON.stringify({
          class: e.constructor.name,
          name: e.name,
          message: e.message,
          fields: { ...e },
          cause: (e.cause as Error | undefined)?.message,
        }).replaceAll(table, "<table>"),
      );
  };
  assert.ok(errors.sync && errors.async, "both runs");
  assert.deepEqual(errors.sync.map(describe("sync")), errors.async.map(describe("async")));
});

Deno.test("Database returns a 100,000-row result whole", async (t) => {
  await bothWays(t, async (q) => {
    const rows = await q.execute<{ id: number; h: string; n: bigint }>(
      "SELECT g AS id, md5(g::text) AS h, g::int8 * 1000 AS n FROM generate_series(1, 100000) g",
    );
    assert.equal(rows.length, 100_000);
    // In order across the slices the bridge sends a long answer in.
    assert.ok(rows.every((row, i) => row.id === i + 1));
    assert.deepEqual(rows[0], { id: 1, h: "c4ca4238a0b923820dcc509a6f75849b", n: 1000n });
    assert.deepEqual(rows[99_999], {
      id: 100_000,
      h: "14ee22eaba297944c96afdbe5b16c65b",
      n: 100_000_000n,
    });
  });
});

Deno.test("Database returns a single result over 50 MB", async (t) => {
  await bothWays(t, async (q) => {
    const size = 52 * 1024 * 1024;
    const row = await q.queryOne<{ s: string; b: Uint8Array }>(
      "SELECT repeat('x', $1::int) || 'end' AS s, decode(repeat('ab', 1024 * 1024), 'hex') AS b",
      [size],
    );
    assert.equal(row?.s.length, size + 3);
    assert.ok(row?.s.endsWith("xend"));
    assert.equal(row?.b.byteLength, 1024 * 1024);
    assert.equal(row?.b[1024 * 1024 - 1], 0xab);
    // A request that large crosses the bridge too.
    const echoed = await q.queryOne<{ n: number }>("SELECT length($1::text) AS n", [
      row?.s,
    ]);
    assert.equal(echoed?.n, size + 3);
  });
});

Deno.test("Database.stream() yields every row in batches and closes the cursor on break", async (t) => {
  await bothWays(t, async (q) => {
    let sum = 0;
    let count = 0;
    for await (
      const row of q.stream<{ g: number }>("SELECT g FROM generate_series(1, $1::int) g", [2500], {
        batchSize: 1000,
      })
    ) {
      sum += row.g;
      count++;
    }
    assert.equal(count, 2500);
    assert.equal(sum, 2500 * 2501 / 2);
    const seen: number[] = [];
    for await (const row of q.stream<{ g: number }>("SELECT g FROM generate_series(1, 10000) g")) {
      seen.push(row.g);
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(await q.execute("SELECT 1 AS one"), [{ one: 1 }]);
    const empty = [];
    for await (const row of q.stream("SELECT 1 WHERE false")) empty.push(row);
    assert.deepEqual(empty, []);
    const bad = await caught(async () => {
      for await (const _ of q.stream("SELECT 1", [], { batchSize: 0 })) {
        // never reached
      }
    });
    assert.ok(bad instanceof ValidationError);
    const failing = await caught(async () => {
      for await (const _ of q.stream("SELECT 1/(g - 1500) FROM generate_series(1, 3000) g")) {
        // fails in the second batch
      }
    });
    assert.equal((failing as DatabaseError).code, "22012");
  }, { maxConnections: 1, minConnections: 1 });
});

Deno.test("Database.stream() after break frees the only connection for the next call", () => {
  using db = new Database(testUrl(), { maxConnections: 1, minConnections: 1 });
  for (const _ of db.stream("SELECT g FROM generate_series(1, 5000) g", [], { batchSize: 10 })) {
    // While the stream is open, the pool's only connection is held by this thread.
    assert.throws(() => db.execute("SELECT 1"), (e: ConnectionError) => {
      assert.ok(e instanceof ConnectionError);
      assert.equal(e.code, "POOL_EXHAUSTED");
      return true;
    });
    break;
  }
  assert.deepEqual(db.execute("SELECT 2 AS two"), [{ two: 2 }]);
});

Deno.test("JSON keys and column names that need escapes read back exactly, after a key ending in a backslash", async (t) => {
  // V8's JSON.parse (Deno 2.x) can read an escaped key ("\n", "\"") as a backslash key parsed
  // before it; json/jsonb values and the sync bridge's messages must not go through that.
  await bothWays(t, async (q) => {
    const docs = uniqueName("json_keys");
    await q.createTable(docs, { id: "INT8 PRIMARY KEY", j: "JSON", jb: "JSONB" });
    const values = [
      { p: 1, "a\\": { "\\": 1 } },
      { p: 1, "a\n": { "\n": 2 } },
      { p: 1, 'a"': { '"': 3 } },
      { p: 1, "a\\": [{ q: 1, "\\": 4 }, { q: 1, "\t": 5 }] },
    ];
    await q.batchInsert(docs, values.map((v, i) => ({ id: i + 1, j: v, jb: v })));
    const rows = await q.select<{ j: unknown; jb: unknown }>(docs, { orderBy: "id" });
    assert.deepEqual(rows.map((r) => r.j), values);
    assert.deepEqual(rows.map((r) => r.jb), values);
    for (const [i, v] of values.entries()) {
      const again = await q.execute<{ j: unknown }>(`SELECT j FROM "${docs}" WHERE id = $1`, [
        i + 1,
      ]);
      assert.deepEqual(again[0]?.j, v);
    }

    // Column names: the second table's "a<newline>" must not read as the first's "a\".
    const first = uniqueName("keys_a");
    const second = uniqueName("keys_b");
    await q.createTable(first, { p: "INT4", "a\\": "INT4" });
    await q.createTable(second, { p: "INT4", "a\n": "INT4", 'a"': "INT4" });
    await q.insert(first, { p: 1, "a\\": 2 });
    await q.insert(second, { p: 1, "a\n": 3, 'a"': 4 });
    assert.deepEqual(await q.select(first), [{ p: 1, "a\\": 2 }]);
    assert.deepEqual(await q.select(second), [{ p: 1, "a\n": 3, 'a"': 4 }]);
    assert.deepEqual(await q.execute(`SELECT 1 AS p, 2 AS "a\\"`), [{ p: 1, "a\\": 2 }]);
    assert.deepEqual(await q.execute(`SELECT 1 AS p, 3 AS "a\n"`), [{ p: 1, "a\n": 3 }]);
    for (const table of [docs, first, second]) await q.dropTable(table);
  });
});
