// The fixes of the vendored postgres.js (vendor/postgres_patches/) that no other test of the
// package would notice if they were reverted: the retries of `_driver.ts` hide the stale
// error, the strict serializers of every built-in type hide the `Bind` fallback, and the queue
// scan only costs time. Each test fails when its patch is reverted (docs/vendored-driver.md);
// they talk to the vendored driver directly, as `_driver.ts` does. Then the strict patch
// applier of scripts/vendor_postgres.ts, which `deno task vendor --check` relies on.
import assert from "node:assert/strict";
import type postgresTypes from "postgres";
import postgresJs from "./vendor/postgres/index.js";
import Queue from "./vendor/postgres/queue.js";
import { strictSerializers } from "./_serialize.ts";
import { AsyncDatabase } from "./async_database.ts";
import { ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import { applyPatch, parsePatch } from "./scripts/vendor_postgres.ts";

const postgres = postgresJs as unknown as typeof postgresTypes;
type Sql = ReturnType<typeof postgres>;

function connect(max: number): Sql {
  return postgres(testUrl(), { max, onnotice: () => {} });
}

async function outcome(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    return { value: await promise };
  } catch (error) {
    return error;
  }
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

Deno.test("0002: a backend terminated under a statement leaves no error for the next request on its slot (porsager/postgres#1223)", async (t) => {
  // The backend sends its FATAL 57P01 before it closes the socket. 3.4.9 kept that error and
  // rejected the first request of the reconnected slot with it, although nothing had run.
  const terminate = "SELECT pg_terminate_backend(pg_backend_pid())";
  await t.step("the next statement runs", async () => {
    const sql = connect(1);
    try {
      const killed = await outcome(sql.unsafe(terminate));
      assert.equal(codeOf(killed), "CONNECTION_CLOSED", Deno.inspect(killed));
      const next = await outcome(sql.unsafe("SELECT 1 AS one"));
      assert.ok(!(next instanceof Error), Deno.inspect(next));
      assert.deepEqual([...(next as { value: unknown[] }).value], [{ one: 1 }]);
    } finally {
      await sql.end({ timeout: 0 });
    }
  });
  await t.step("the next reserve() gets a connection", async () => {
    // `_driver.ts` retries a reserve() rejected with a connection loss, which hid this one.
    const sql = connect(1);
    try {
      assert.equal(codeOf(await outcome(sql.unsafe(terminate))), "CONNECTION_CLOSED");
      const reserved = await outcome(sql.reserve());
      assert.ok(!(reserved instanceof Error), Deno.inspect(reserved));
      const session = (reserved as { value: postgresTypes.ReservedSql }).value;
      assert.deepEqual([...await session.unsafe("SELECT 2 AS two")], [{ two: 2 }]);
      session.release();
    } finally {
      await sql.end({ timeout: 0 });
    }
  });
});

/**
 * Counts what `Array.prototype.indexOf` examines while `fn` runs, in the searches for a
 * postgres.js connection or query (the queues' `remove()`), and the longest array searched.
 * The pool's queues are private to it; the searches they make are the only trace of their
 * holes, and every one of them goes through `indexOf`. Restored before this returns.
 */
async function countQueueScans(
  fn: () => Promise<void>,
): Promise<{ searches: number; examined: number; longest: number }> {
  const indexOf = Array.prototype.indexOf;
  const counts = { searches: 0, examined: 0, longest: 0 };
  Array.prototype.indexOf = function (this: unknown[], x: unknown, from?: number): number {
    const found = indexOf.call(this, x, from);
    if (typeof (x as { execute?: unknown } | null)?.execute === "function") {
      const start = from === undefined ? 0 : from < 0 ? Math.max(0, this.length + from) : from;
      counts.searches++;
      counts.examined += (found === -1 ? this.length : found + 1) - start;
      counts.longest = Math.max(counts.longest, this.length);
    }
    return found;
  } as typeof indexOf;
  try {
    await fn();
  } finally {
    Array.prototype.indexOf = indexOf;
  }
  return counts;
}

Deno.test("0003: a queue's remove() examines only its live part, however much went through it", async (t) => {
  await t.step("200 statements pipelined on a pool of 2: one element examined each", async () => {
    // 3.4.9 left a hole in the `busy` queue for each pipelined statement, and every later
    // statement scanned all of them: 19,901 elements examined here (n²/2), and on without end
    // while the queue is never empty.
    const sql = connect(2);
    try {
      await Promise.all([sql`SELECT 1`, sql`SELECT 2`]); // both connections open and idle
      const n = 200; // 2 × max_pipeline: no statement waits in the pool's own queue
      let all: Promise<unknown[]> | undefined;
      const counts = await countQueueScans(async () => {
        all = Promise.all(Array.from({ length: n }, (_, i) => sql.unsafe(`SELECT ${i} AS i`)));
        // Each query is handed to the pool a microtask later, before any answer can arrive.
        for (let i = 0; i < 5; i++) await null;
      });
      const rows = await all!;
      assert.deepEqual(rows.map((r) => (r as { i: number }[])[0]?.i), [...Array(n).keys()]);
      assert.equal(counts.searches, n);
      // The live part of `busy` holds at most the pool's 2 connections.
      assert.ok(counts.examined <= 2 * counts.searches, Deno.inspect(counts));
    } finally {
      await sql.end({ timeout: 0 });
    }
  });
  await t.step("a queue that is never empty does not grow with what went through it", async () => {
    const queue = Queue();
    const item = () => ({ execute() {} });
    const last = { execute() {} };
    const counts = await countQueueScans(() => {
      queue.push(item());
      for (let i = 0; i < 5000; i++) {
        queue.push(i === 4999 ? last : item());
        queue.shift();
        queue.remove(item()); // not there: the whole live part is searched
      }
      return Promise.resolve();
    });
    assert.equal(queue.length, 1);
    assert.equal(queue.remove(last), last);
    assert.equal(queue.length, 0);
    // 3.4.9: 5,000 holes searched each time (12.5 million examined), kept for ever.
    assert.equal(counts.examined, 5000, Deno.inspect(counts));
    assert.ok(counts.longest <= 2048, Deno.inspect(counts));
  });
});

Deno.test("0008: a parameter of a type without a serializer (a TEXT domain, an enum) goes through `serializers.unknown`", async (t) => {
  // The server types `$1` of `INSERT … (d) VALUES ($1)` as the column's domain or enum, which
  // no serializer names; 3.4.9 wrote `'' + x` there, so an object was stored as
  // "[object Object]" whatever the serializers of the built-in types refuse.
  const domain = uniqueName("label");
  const mood = uniqueName("mood");
  const table = uniqueName("unknown_types");
  const admin = connect(1);
  await admin.unsafe(
    `CREATE DOMAIN "${domain}" AS TEXT; CREATE TYPE "${mood}" AS ENUM ('ok', 'sad');
     CREATE TABLE "${table}" (id INT8 PRIMARY KEY, label "${domain}", mood "${mood}")`,
  );
  try {
    await t.step("the driver with this package's serializers refuses the value", async () => {
      // As `_driver.ts` installs them (the new pool reads the types created above).
      const sql = connect(1);
      Object.assign(sql.options.serializers, strictSerializers());
      try {
        const cases: [string, unknown][] = [
          ["label", { a: 1 }],
          ["label", new Map([["a", 1]])],
          ["label", [1, 2]],
          ["mood", { a: 1 }],
        ];
        for (const [column, value] of cases) {
          const result = await outcome(
            sql.unsafe(`INSERT INTO "${table}" (id, "${column}") VALUES (1, $1) RETURNING *`, [
              value as string,
            ]),
          );
          assert.ok(
            result instanceof ValidationError,
            `${column} ${Deno.inspect(value)}: ${Deno.inspect(result)}`,
          );
        }
        // Strings still go as given, for the server to read.
        assert.deepEqual(
          [
            ...await sql.unsafe(
              `INSERT INTO "${table}" (id, label, mood) VALUES (2, $1, $2) RETURNING label, mood`,
              ["x,y", "sad"],
            ),
          ],
          [{ label: "x,y", mood: "sad" }],
        );
      } finally {
        await sql.end({ timeout: 0 });
      }
    });
    await t.step("AsyncDatabase refuses it with ValidationError and stores nothing", async () => {
      await using db = new AsyncDatabase(testUrl(), { maxConnections: 1 });
      const result = await outcome(
        db.execute(`INSERT INTO "${table}" (id, label) VALUES (3, $1)`, [{ a: 1 }]),
      );
      assert.ok(result instanceof ValidationError, Deno.inspect(result));
      assert.deepEqual(await db.execute(`SELECT id FROM "${table}" WHERE id = 3`), []);
    });
  } finally {
    await admin.unsafe(`DROP TABLE "${table}"; DROP DOMAIN "${domain}"; DROP TYPE "${mood}"`);
    await admin.end({ timeout: 0 });
  }
});

const HEADER = "Subject: s\n\nWhat: w\nWhy: y\nUpstream: none\nTest: t\n\n";

Deno.test("scripts/vendor_postgres.ts applies a hunk only where it says: no fuzz, no offset", () => {
  const patch = parsePatch(
    "0001-x.patch",
    HEADER + [
      "diff --git a/src/a.js b/src/a.js",
      "--- a/src/a.js",
      "+++ b/src/a.js",
      "@@ -2,3 +2,3 @@",
      " two",
      "-three",
      "+THREE",
      " four",
      "",
    ].join("\n"),
  );
  const apply = (text: string): string => {
    const sources = new Map([["src/a.js", text]]);
    applyPatch(sources, patch);
    return sources.get("src/a.js")!;
  };
  assert.equal(apply("one\ntwo\nthree\nfour\nfive\n"), "one\ntwo\nTHREE\nfour\nfive\n");
  // `patch` would apply both: the first at an offset of one line, the second with fuzz 1.
  assert.throws(() => apply("zero\none\ntwo\nthree\nfour\n"), /does not match line 2/);
  assert.throws(() => apply("one\ntwo\nthree\nFOUR\nfive\n"), /does not match line 4/);
  assert.throws(() => apply("one\ntwo\nTHREE\nfour\n"), /does not match line 3/);
});

Deno.test("scripts/vendor_postgres.ts refuses a patch without its header fields or outside src/", () => {
  const diff = "--- a/src/a.js\n+++ b/src/a.js\n@@ -1 +1 @@\n-a\n+b\n";
  assert.equal(parsePatch("0001-x.patch", HEADER + diff).files.length, 1);
  assert.throws(
    () => parsePatch("0001-x.patch", HEADER.replace("Test: t\n", "") + diff),
    /no "Test:" line/,
  );
  assert.throws(
    () => parsePatch("0001-x.patch", HEADER + diff.replaceAll("/src/a.js", "/types/a.d.ts")),
    /not a file under a\/src\//,
  );
  assert.throws(
    () => parsePatch("0001-x.patch", HEADER + diff.replace("+b\n", "")),
    /last hunk is cut/,
  );
});
