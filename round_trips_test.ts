// Issue 15 on the real server, through both APIs: BEGIN pipelined with the callback's first
// statement (its options included, its failure reported as its own), `batch()` in one round
// trip, and nested transactions under savepoints. Round trips are counted exactly by the tests'
// proxy (`_test_proxy.ts`); the sync `Database` blocks this thread, so its proxy runs in a worker.
import assert from "node:assert/strict";
import { AsyncDatabase, type TransactionOptions } from "./async_database.ts";
import { Database } from "./database.ts";
import { DatabaseError, ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import { FaultProxy } from "./_test_proxy.ts";
import { ProxyWorker } from "./bench/_latency_proxy.ts";

async function outcome(fn: () => unknown): Promise<unknown> {
  try {
    return { value: await fn() };
  } catch (error) {
    return error;
  }
}

/** A table `(id INT PRIMARY KEY, n INT)`, dropped afterwards. */
async function withTable(fn: (table: string) => Promise<void>): Promise<void> {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 1 });
  const table = uniqueName("trips");
  await admin.execute(`CREATE TABLE "${table}" (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)`);
  try {
    await fn(table);
  } finally {
    await admin.execute(`DROP TABLE IF EXISTS "${table}"`);
  }
}

async function rows(table: string): Promise<number[]> {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 1 });
  return (await admin.execute<{ id: number }>(`SELECT id FROM "${table}" ORDER BY id`)).map((r) =>
    r.id
  );
}

const SETTINGS = "SELECT current_setting('transaction_isolation') AS isolation, " +
  "current_setting('transaction_read_only') AS read_only";

const OPTIONS: [TransactionOptions, { isolation: string; read_only: string }][] = [
  [{}, { isolation: "serializable", read_only: "off" }], // the test server's default
  [{ isolation: "read committed" }, { isolation: "read committed", read_only: "off" }],
  [{ isolation: "repeatable read" }, { isolation: "repeatable read", read_only: "off" }],
  [{ isolation: "serializable", readOnly: true }, { isolation: "serializable", read_only: "on" }],
  [{ readOnly: true }, { isolation: "serializable", read_only: "on" }],
];

Deno.test("a pipelined BEGIN takes each transaction option: the first statement, sent with it, runs under them (2 round trips)", async (t) => {
  await t.step("async", async () => {
    await using proxy = await FaultProxy.start(testUrl());
    await using db = new AsyncDatabase(proxy.url(testUrl()), { maxConnections: 1 });
    await db.execute("SELECT 1");
    for (const [options, expected] of OPTIONS) {
      proxy.resetTurns();
      assert.deepEqual(
        await db.transaction((tx) => tx.queryOne(SETTINGS), options),
        expected,
        Deno.inspect(options),
      );
      assert.equal(proxy.turns, 2, Deno.inspect(options));
    }
    const refused = await outcome(() =>
      db.transaction((tx) => tx.execute("CREATE TEMP TABLE t (a INT)"), { readOnly: true })
    );
    assert.ok(refused instanceof DatabaseError && refused.code === "25006", Deno.inspect(refused));
    // asOfSystemTime is CockroachDB's: refused on PostgreSQL, after a check of version().
    const follower = await outcome(() =>
      db.transaction((tx) => tx.execute("SELECT 1"), { asOfSystemTime: "-1s" })
    );
    assert.ok(
      follower instanceof ValidationError && follower.field === "asOfSystemTime",
      Deno.inspect(follower),
    );
  });
  await t.step("sync", async () => {
    const proxy = await ProxyWorker.start(testUrl(), 0);
    try {
      using db = new Database(proxy.url(testUrl()), { maxConnections: 1 });
      for (const [options, expected] of OPTIONS) {
        await proxy.reset();
        assert.deepEqual(db.transaction((tx) => tx.queryOne(SETTINGS), options), expected);
        assert.equal((await proxy.count()).turns, 2, Deno.inspect(options));
      }
      const follower = await outcome(() =>
        db.transaction((tx) => tx.execute("SELECT 1"), { asOfSystemTime: "-1s" })
      );
      assert.ok(follower instanceof ValidationError, Deno.inspect(follower));
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("a pipelined BEGIN that fails is reported as BEGIN's failure, and nothing sent with it or after it runs", async (t) => {
  // PostgreSQL's BEGIN cannot fail when it runs; the proxy makes the server see `BOGUS` in its
  // place (CockroachDB refuses, for one, a BEGIN … AS OF SYSTEM TIME in the future).
  await withTable(async (table) => {
    const insert = `INSERT INTO "${table}" (id) VALUES ($1)`;
    const isBegins = (error: unknown) =>
      error instanceof DatabaseError && error.code === "42601" && /BOGUS/.test(error.message);
    await t.step("async", async () => {
      await using proxy = await FaultProxy.start(testUrl());
      await using db = new AsyncDatabase(proxy.url(testUrl()), { maxConnections: 1 });
      await db.execute("SELECT 1");
      let attempts = 0;
      proxy.rewrite("BEGIN", "BOGUS");
      const failed = await outcome(() =>
        db.transaction(async (tx) => {
          attempts++;
          await tx.execute(insert, [1]);
        })
      );
      assert.ok(isBegins(failed), Deno.inspect(failed));
      assert.equal(attempts, 1, "not retried");
      // A callback that catches its statement's failure and returns still fails with BEGIN's.
      proxy.rewrite("BEGIN", "BOGUS");
      const swallowed = await outcome(() =>
        db.transaction(async (tx) => {
          await tx.execute(insert, [2]).catch(() => {});
          return "swallowed";
        })
      );
      assert.ok(isBegins(swallowed), Deno.inspect(swallowed));
      // Statements issued together: the first carries BEGIN, the others wait for it.
      proxy.rewrite("BEGIN", "BOGUS");
      const together = await outcome(() =>
        db.transaction((tx) => Promise.all([3, 4, 5].map((id) => tx.execute(insert, [id]))))
      );
      assert.ok(isBegins(together), Deno.inspect(together));
      assert.deepEqual(await rows(table), [], "no statement ran in autocommit");
      // The connection is sound: the next transaction commits.
      await db.transaction((tx) => tx.execute(insert, [6]));
      assert.deepEqual(await rows(table), [6]);
    });
    await t.step("sync", async () => {
      const proxy = await ProxyWorker.start(testUrl(), 0);
      try {
        using db = new Database(proxy.url(testUrl()), { maxConnections: 1 });
        await proxy.rewrite("BEGIN", "BOGUS");
        const failed = await outcome(() => db.transaction((tx) => tx.execute(insert, [7])));
        assert.ok(isBegins(failed), Deno.inspect(failed));
        await proxy.rewrite("BEGIN", "BOGUS");
        const swallowed = await outcome(() =>
          db.transaction((tx) => {
            try {
              tx.execute(insert, [8]);
            } catch {
              // Swallowed.
            }
            return "swallowed";
          })
        );
        assert.ok(isBegins(swallowed), Deno.inspect(swallowed));
        assert.deepEqual(await rows(table), [6]);
        db.transaction((tx) => tx.execute(insert, [9]));
        assert.deepEqual(await rows(table), [6, 9]);
      } finally {
        await proxy.close();
      }
    });
  });
});
