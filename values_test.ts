// Parameter values on the real server, through both APIs: each is written as given (read back
// equal, or as the server reads the string) or refused with ValidationError before anything is
// sent. postgres.js alone stores an object in a TEXT column as "[object Object]", the string
// "true" in a BOOL column as false, and reads timestamp strings with new Date().
import assert from "node:assert/strict";
import { AsyncDatabase, type AsyncQueryable } from "./async_database.ts";
import { Database } from "./database.ts";
import { DatabaseError, ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

type Scenario = (q: AsyncQueryable, mode: "async" | "sync") => Promise<void>;

async function bothWays(t: Deno.TestContext, scenario: Scenario): Promise<void> {
  await t.step("async", async () => {
    await using db = new AsyncDatabase(testUrl(), { maxConnections: 2 });
    await scenario(db, "async");
  });
  await t.step("sync", async () => {
    using db = new Database(testUrl(), { maxConnections: 2 });
    await scenario(db as unknown as AsyncQueryable, "sync");
  });
}

async function outcome(fn: () => unknown): Promise<unknown> {
  try {
    return { value: await fn() };
  } catch (error) {
    return error;
  }
}

const COLUMNS = {
  id: "INT8 PRIMARY KEY",
  t: "TEXT",
  v: "VARCHAR(50)",
  i: "INT8",
  n: "NUMERIC",
  f: "FLOAT8",
  bo: "BOOL",
  ts: "TIMESTAMPTZ",
  d: "DATE",
  u: "UUID",
  b: "BYTEA",
  j: "JSONB",
  ta: "TEXT[]",
};

class Money {
  constructor(readonly cents: number) {}
  toJSON(): unknown {
    return { cents: this.cents };
  }
}

function date(year: number, month = 0, day = 1): Date {
  const d = new Date(Date.UTC(2000, month, day));
  d.setUTCFullYear(year);
  return d;
}

Deno.test("strings reach the server as text: booleans, timestamps and dates are read by it", async (t) => {
  await bothWays(t, async (q) => {
    const table = uniqueName("strings");
    await q.createTable(table, COLUMNS);
    const cases: [string, unknown, string][] = [
      // column, value, the server's text of what it stored
      ["bo", "true", "true"],
      ["bo", "yes", "true"],
      ["bo", "off", "false"],
      ["bo", 1, "true"],
      ["bo", 0, "false"],
      ["ts", "2024-01-01 10:00:00.123456+00", "2024-01-01 10:00:00.123456+00"],
      ["ts", "infinity", "infinity"],
      ["ts", "-infinity", "-infinity"],
      ["d", "2024-02-29", "2024-02-29"],
      ["d", "0044-03-15 BC", "0044-03-15 BC"],
      ["n", "0.000000000000000000000000000001", "0.000000000000000000000000000001"],
      ["i", "9223372036854775807", "9223372036854775807"],
      ["t", true, "true"],
      ["t", 1.5, "1.5"],
      ["t", 1234567890123456789n, "1234567890123456789"],
    ];
    let id = 0;
    for (const [column, value, stored] of cases) {
      id++;
      for (const write of ["insert", "execute"] as const) {
        const rowId = id * 10 + (write === "insert" ? 1 : 2);
        if (write === "insert") await q.insert(table, { id: rowId, [column]: value });
        else {
          await q.execute(`INSERT INTO "${table}" (id, "${column}") VALUES ($1, $2)`, [
            rowId,
            value,
          ]);
        }
        const [row] = await q.execute<{ s: string }>(
          `SELECT "${column}"::text AS s FROM "${table}" WHERE id = $1`,
          [rowId],
        );
        assert.equal(row?.s, stored, `${write} ${column} ${Deno.inspect(value)}`);
      }
    }
    for (const [column, value] of [["bo", "maybe"], ["d", "2024-02-30"], ["ts", "soon"]] as const) {
      const error = await outcome(() => q.insert(table, { id: 9999, [column]: value }));
      assert.equal((error as { code?: string }).code?.startsWith("22"), true, Deno.inspect(error));
    }
    await q.dropTable(table);
  });
});

Deno.test("Dates of any year are written and read back exactly, by INSERT and by COPY", async (t) => {
  await bothWays(t, async (q) => {
    const table = uniqueName("years");
    await q.createTable(table, { id: "INT8 PRIMARY KEY", ts: "TIMESTAMPTZ" });
    const dates = [
      date(-4000, 5, 6),
      date(-43, 2, 15), // 44 BC
      date(0), // 1 BC
      date(1),
      date(99, 11, 31),
      date(1969, 11, 31),
      new Date("2024-02-29T12:34:56.789Z"),
      date(9999, 11, 31),
      date(10000),
      date(200000, 6, 1),
    ];
    const rows = dates.map((ts, i) => ({ id: BigInt(i + 1), ts }));
    assert.deepEqual(await q.batchInsert(table, rows), rows);
    assert.deepEqual(await q.select(table, { orderBy: "id" }), rows);
    await q.execute(`DELETE FROM "${table}"`);
    assert.equal(await q.batchInsert(table, rows, { returning: false }), rows.length); // COPY
    assert.deepEqual(await q.select(table, { orderBy: "id" }), rows);
    const [bc] = await q.execute<{ s: string }>(
      `SELECT ts::text AS s FROM "${table}" WHERE id = 2`,
    );
    assert.equal(bc?.s, "0044-03-15 00:00:00+00 BC");
    await q.dropTable(table);
  });
});

Deno.test("values with no exact text form are refused with ValidationError, and nothing is stored", async (t) => {
  await bothWays(t, async (q, mode) => {
    const table = uniqueName("refused");
    await q.createTable(table, COLUMNS);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const cases: [string, unknown][] = [
      ["t", { a: 1 }],
      ["t", [1, 2]],
      ["t", new Map([["a", 1]])],
      ["t", new Money(5)],
      ["t", new ArrayBuffer(2)],
      ["t", new Int16Array(2)],
      ["v", { a: 1 }],
      ["i", { a: 1 }],
      ["i", true],
      ["n", [1]],
      ["f", false],
      ["bo", { a: 1 }],
      ["ts", 0],
      ["ts", { a: 1 }],
      ["d", 1.5],
      ["u", { a: 1 }],
      ["b", [1, 2]],
      ["b", { a: 1 }],
      ["j", new Map([["a", 1]])],
      ["j", new Set([1])],
      ["j", { m: new Money(5) }],
      ["j", new Money(5)],
      ["j", { n: NaN }],
      ["j", [Infinity]],
      ["j", { big: 1n }],
      ["j", { f() {} }],
      ["j", cyclic],
      ["ta", { a: 1 }],
      ["ta", [{ a: 1 }]],
    ];
    let id = 0;
    for (const [column, value] of cases) {
      id++;
      const what = `${mode} ${column} ${Deno.inspect(value, { depth: 1 })}`;
      const copy = () => q.batchInsert(table, [{ id, [column]: value }], { returning: false });
      for (
        const write of [
          () => q.insert(table, { id, [column]: value }),
          copy,
          () => q.execute(`INSERT INTO "${table}" (id, "${column}") VALUES ($1, $2)`, [id, value]),
          // In `where` an array means IN (= ANY): arrays are for the other writes only.
          ...(Array.isArray(value) ? [] : [() => q.select(table, { where: { [column]: value } })]),
        ]
      ) {
        const error = await outcome(write);
        // COPY cannot know the column's type: a number or boolean goes as its text and the
        // server refuses it for a timestamp or number column (class 22), as psql's \copy would.
        const copyRefusal = write === copy && typeof value !== "object" &&
          error instanceof DatabaseError && error.code.startsWith("22");
        assert.ok(
          error instanceof ValidationError || copyRefusal,
          `${what}: ${Deno.inspect(error)}`,
        );
      }
    }
    assert.equal(await q.count(table), 0);
    // The pool is still fine.
    assert.deepEqual(await q.insert(table, { id: 1, t: "ok" }), { ...nulls(), id: 1n, t: "ok" });
    await q.dropTable(table);
  });
});

function nulls(): Record<string, null> {
  return Object.fromEntries(Object.keys(COLUMNS).map((c) => [c, null]));
}

Deno.test("JSON columns take plain objects, arrays, strings, numbers, booleans and Dates inside", async (t) => {
  await bothWays(t, async (q) => {
    const table = uniqueName("json_values");
    await q.createTable(table, { id: "INT8 PRIMARY KEY", j: "JSONB" });
    const when = new Date("2024-02-29T12:34:56.789Z");
    const values: unknown[] = [
      { a: [1, "x", null, true], b: { c: -0.5 } },
      Object.assign(Object.create(null), { n: 1 }),
      "just a string",
      42,
      false,
      [{ at: when }],
    ];
    const expected = [
      { a: [1, "x", null, true], b: { c: -0.5 } },
      { n: 1 },
      "just a string",
      42,
      false,
      [{ at: when.toISOString() }],
    ];
    for (const [i, j] of values.entries()) await q.insert(table, { id: i + 1, j });
    assert.deepEqual((await q.select(table, { orderBy: "id" })).map((r) => r.j), expected);
    await q.execute(`DELETE FROM "${table}"`);
    await q.batchInsert(table, values.map((j, i) => ({ id: i + 1, j })), { returning: false });
    assert.deepEqual((await q.select(table, { orderBy: "id" })).map((r) => r.j), expected);
    await q.dropTable(table);
  });
});

Deno.test("arrays of enums and domains, and elements with a `type` key, are written exactly or refused", async (t) => {
  await bothWays(t, async (q, mode) => {
    const mood = uniqueName("mood");
    const label = uniqueName("label");
    const table = uniqueName("arrays");
    await q.execute(`CREATE TYPE "${mood}" AS ENUM ('ok', 'sad')`);
    await q.execute(`CREATE DOMAIN "${label}" AS TEXT`);
    // A new pool: its connections read the types created above.
    const fresh = mode === "async"
      ? new AsyncDatabase(testUrl(), { maxConnections: 1 })
      : new Database(testUrl(), { maxConnections: 1 }) as unknown as AsyncQueryable;
    try {
      await fresh.createTable(table, {
        id: "INT8 PRIMARY KEY",
        moods: `"${mood}"[]`,
        labels: `"${label}"[]`,
        events: "JSONB[]",
        words: "TEXT[]",
      });
      const events = [{ type: "click", value: 5 }, { type: "key", value: "a" }];
      const row = {
        id: 1n,
        moods: ["ok", "sad", null],
        labels: ["x", "y,z", '"q"'],
        events,
        words: ["type", "value"],
      };
      assert.deepEqual(await fresh.insert(table, row), row);
      assert.deepEqual(
        await fresh.select(table, { where: { moods: { ne: null as unknown as string } } }),
        [row],
      );
      for (
        const [column, value] of [
          ["labels", [{ a: 1 }]],
          ["labels", [() => 1]],
          ["moods", [new Map()]],
          ["moods", 5],
          ["words", { a: 1 }],
          ["words", [{ type: "click", value: 5 }]],
        ] as [string, unknown][]
      ) {
        const error = await outcome(() =>
          fresh.execute(`INSERT INTO "${table}" (id, "${column}") VALUES (2, $1)`, [value])
        );
        assert.ok(
          error instanceof ValidationError,
          `${mode} ${column} ${Deno.inspect(value)}: ${Deno.inspect(error)}`,
        );
      }
      assert.equal(await fresh.count(table), 1);
      await fresh.dropTable(table);
    } finally {
      await (fresh as unknown as { close(): unknown }).close();
      await q.execute(`DROP TYPE IF EXISTS "${mood}"; DROP DOMAIN IF EXISTS "${label}"`);
    }
  });
});

Deno.test("an enum and a domain created after the pool's connections opened are read when first met: arrays in and out, scalars refused as before", async (t) => {
  // The pool knows the built-in array types from the start and reads the others from the
  // server when a result column or a parameter first needs one (docs/round-trips.md).
  await bothWays(t, async (q, mode) => {
    await q.execute("SELECT 1"); // the pool's connections are open before the types exist
    const mood = uniqueName("late_mood");
    const label = uniqueName("late_label");
    const table = uniqueName("late_types");
    await q.execute(
      `CREATE TYPE "${mood}" AS ENUM ('ok', 'sad'); CREATE DOMAIN "${label}" AS TEXT;
       CREATE TABLE "${table}" (id INT8 PRIMARY KEY, m "${mood}", ms "${mood}"[], l "${label}")`,
    );
    try {
      // A parameter of the new array type, then its result column.
      const row = { id: 1n, m: "ok", ms: ["ok", null, "sad"], l: "x,y" };
      assert.deepEqual(await q.insert(table, row), row, mode);
      assert.deepEqual(
        await q.execute(`SELECT ARRAY['sad', 'ok']::"${mood}"[] AS a, 'sad'::"${mood}" AS s`),
        [{ a: ["sad", "ok"], s: "sad" }],
      );
      // Values the types cannot take are refused before anything is sent, as for the built-in
      // ones.
      for (
        const [column, value] of [["ms", 5], ["ms", [{ a: 1 }]], ["l", { a: 1 }], ["m", [1]]] as [
          string,
          unknown,
        ][]
      ) {
        const error = await outcome(() =>
          q.execute(`INSERT INTO "${table}" (id, "${column}") VALUES (2, $1)`, [value])
        );
        assert.ok(
          error instanceof ValidationError,
          `${mode} ${column} ${Deno.inspect(value)}: ${Deno.inspect(error)}`,
        );
      }
      assert.equal(await q.count(table), 1);
    } finally {
      await q.execute(
        `DROP TABLE IF EXISTS "${table}"; DROP TYPE IF EXISTS "${mood}"; DROP DOMAIN IF EXISTS "${label}"`,
      );
    }
  });
});

Deno.test("objects with a toString of their own (a URL, a decimal) go as that text in async; the sync Database asks for String()", async (t) => {
  class Decimal {
    constructor(readonly digits: string) {}
    toString(): string {
      return this.digits;
    }
  }
  await bothWays(t, async (q, mode) => {
    const table = uniqueName("own_text");
    await q.createTable(table, { id: "INT8 PRIMARY KEY", t: "TEXT", n: "NUMERIC" });
    const url = new URL("https://example.test/a?b=1");
    const write = () => q.insert(table, { id: 1, t: url, n: new Decimal("1.10") });
    if (mode === "async") {
      assert.deepEqual(await write(), { id: 1n, t: url.href, n: "1.10" });
    } else {
      const error = await outcome(write);
      assert.ok(error instanceof ValidationError, Deno.inspect(error));
      assert.match(error.message, /String\(\)/);
      const streamed = await outcome(() => {
        for (const _ of (q as unknown as Database).stream("SELECT $1::text", [url])) {
          // Refused before the stream opens.
        }
      });
      assert.ok(streamed instanceof ValidationError, Deno.inspect(streamed));
    }
    await q.dropTable(table);
  });
});

Deno.test("a batch refused part-way inside a transaction leaves none of its rows, even if the refusal is caught", async (t) => {
  await bothWays(t, async (q, mode) => {
    const table = uniqueName("half_batch");
    await q.createTable(table, { id: "INT8 PRIMARY KEY", t: "TEXT" });
    const records = [{ id: 1, t: "a" }, { id: 2, t: "b" }, { id: 3, t: new Map() }, {
      id: 4,
      t: "d",
    }];
    for (const helper of ["batchInsert", "batchUpsert"] as const) {
      const run = (tx: AsyncQueryable) =>
        helper === "batchInsert"
          ? tx.batchInsert(table, records, { chunkSize: 1 })
          : tx.batchUpsert(table, records, { conflictColumns: ["id"], chunkSize: 1 });
      if (mode === "async") {
        await (q as AsyncDatabase).transaction(async (tx) => {
          await tx.insert(table, { id: 100, t: "kept" });
          const error = await outcome(() => run(tx));
          assert.ok(error instanceof ValidationError, `${helper}: ${Deno.inspect(error)}`);
          // The transaction goes on, and commits.
          await tx.insert(table, { id: 101, t: "after" });
        });
      } else {
        (q as unknown as Database).transaction((tx) => {
          tx.insert(table, { id: 100, t: "kept" });
          let error: unknown;
          try {
            run(tx as unknown as AsyncQueryable);
          } catch (e) {
            error = e;
          }
          assert.ok(error instanceof ValidationError, `${helper}: ${Deno.inspect(error)}`);
          tx.insert(table, { id: 101, t: "after" });
        });
      }
      assert.deepEqual(
        await q.select(table, { orderBy: "id" }),
        [{ id: 100n, t: "kept" }, { id: 101n, t: "after" }],
        `${mode} ${helper}`,
      );
      await q.execute(`DELETE FROM "${table}"`);
    }
    await q.dropTable(table);
  });
});

Deno.test("DATE values of any year read back as midnight UTC", async (t) => {
  await bothWays(t, async (q) => {
    const rows = await q.execute<{ d: Date }>(
      `SELECT d FROM (VALUES (1, '0044-03-15 BC'::date), (2, '0001-01-01'), (3, '0099-12-31'),
         (4, '2024-02-29'), (5, '10000-01-01'), (6, 'infinity'), (7, '-infinity')) v(n, d)
       ORDER BY n`,
    );
    assert.deepEqual(rows.map((r) => r.d), [
      date(-43, 2, 15),
      date(1),
      date(99, 11, 31),
      new Date("2024-02-29T00:00:00Z"),
      date(10000),
      new Date(8.64e15),
      new Date(-8.64e15),
    ]);
  });
});
