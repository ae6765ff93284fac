// `batch()` on the real server, through both APIs: one transaction in one round trip (counted by
// the tests' proxy), its failure named by index, sent again after a serialization failure,
// aborted, under a savepoint inside a transaction, and told to onQuery.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import {
  DatabaseError,
  TransactionRetryError,
  UniqueViolationError,
  ValidationError,
} from "./errors.ts";
import { testUrl } from "./_test_util.ts";
import { FaultProxy } from "./_test_proxy.ts";
import { ProxyWorker } from "./bench/_latency_proxy.ts";
import { outcome, rows, withFlaky, withTable } from "./_test_round_trips.ts";

// batch()

/** The test's statements on `table`: insert id, add to n, count. */
type Statement = { sql: string; params?: unknown[] };

function trio(table: string, id: number): [Statement, Statement, Statement] {
  return [
    { sql: `INSERT INTO "${table}" (id) VALUES ($1) RETURNING id`, params: [id] },
    { sql: `UPDATE "${table}" SET n = n + $1 WHERE id = $2 RETURNING n`, params: [5, id] },
    { sql: `SELECT count(*)::int AS c FROM "${table}"` },
  ];
}

Deno.test("batch() runs its statements as one transaction in one round trip and answers each one's rows", async (t) => {
  await withTable(async (table) => {
    await t.step("async", async () => {
      await using proxy = await FaultProxy.start(testUrl());
      await using db = new AsyncDatabase(proxy.url(testUrl()), { maxConnections: 2 });
      await db.execute("SELECT 1");
      proxy.resetTurns();
      // Statements the pool never saw: described together first, then the batch.
      assert.deepEqual(await db.batch(trio(table, 1)), [[{ id: 1 }], [{ n: 5 }], [{ c: 1 }]]);
      assert.equal(proxy.turns, 2);
      proxy.resetTurns();
      assert.deepEqual(await db.batch(trio(table, 2)), [[{ id: 2 }], [{ n: 5 }], [{ c: 2 }]]);
      assert.equal(proxy.turns, 1);
      // Known on another connection of the pool: still one round trip there.
      await using other = new AsyncDatabase(proxy.url(testUrl()), { maxConnections: 1 });
      await other.execute("SELECT 1");
      proxy.resetTurns();
      assert.deepEqual((await db.batch(trio(table, 3)))[2], [{ c: 3 }]);
      assert.equal(proxy.turns, 1);
      proxy.resetTurns();
      assert.deepEqual(await db.batch([]), []);
      assert.equal(proxy.turns, 0, "an empty batch sends nothing");
    });
    await t.step("sync", async () => {
      const proxy = await ProxyWorker.start(testUrl(), 0);
      try {
        using db = new Database(proxy.url(testUrl()), { maxConnections: 1 });
        db.batch(trio(table, 4));
        await proxy.reset();
        assert.deepEqual(db.batch(trio(table, 5)), [[{ id: 5 }], [{ n: 5 }], [{ c: 5 }]]);
        assert.equal((await proxy.count()).turns, 1);
      } finally {
        await proxy.close();
      }
    });
    assert.deepEqual(await rows(table), [1, 2, 3, 4, 5]);
  });
});

Deno.test("batch() rolls the whole batch back when a statement fails, and throws that statement's error with its index", async (t) => {
  await withTable(async (table) => {
    const check = async (
      run: (statements: { sql: string; params?: unknown[] }[]) => unknown,
      mode: string,
    ) => {
      await run(trio(table, 1));
      const [insert, update] = trio(table, 2);
      // A duplicate key in statement 1: a UniqueViolationError still, with its index.
      const duplicate = await outcome(() => run([insert, trio(table, 1)[0], update]));
      assert.ok(duplicate instanceof UniqueViolationError, `${mode}: ${Deno.inspect(duplicate)}`);
      assert.equal(duplicate.statementIndex, 1);
      assert.equal(duplicate.code, "23505");
      assert.match(duplicate.message, /^Cannot run batch: statement 1 failed: duplicate key/);
      // A statement the server cannot parse, found by the describe before anything ran.
      const syntax = await outcome(() => run([insert, update, { sql: "SELEC $1", params: [1] }]));
      assert.ok(syntax instanceof DatabaseError && syntax.code === "42601", Deno.inspect(syntax));
      assert.equal(syntax.statementIndex, 2);
      // A value refused before anything is sent.
      const refused = await outcome(() => run([insert, { sql: update.sql, params: [{}, 2] }]));
      assert.ok(refused instanceof ValidationError, Deno.inspect(refused));
      assert.equal(refused.statementIndex, 1);
      // Not one statement each: refused before anything is sent.
      const two = await outcome(() => run([insert, { sql: "SELECT 1; SELECT 2" }]));
      assert.ok(two instanceof ValidationError && two.statementIndex === 1, Deno.inspect(two));
      assert.deepEqual(await rows(table), [1], `${mode}: nothing of the failed batches`);
      await run([{ sql: `DELETE FROM "${table}"` }]);
    };
    await t.step("async", async () => {
      await using db = new AsyncDatabase(testUrl(), { maxConnections: 2 });
      await check((statements) => db.batch(statements), "async");
    });
    await t.step("sync", async () => {
      using db = new Database(testUrl(), { maxConnections: 2 });
      await check((statements) => db.batch(statements), "sync");
    });
  });
});

Deno.test("batch() is sent again, whole, after a serialization failure", async (t) => {
  await withTable(async (table) => {
    await withFlaky(async (flaky) => {
      await t.step("async", async () => {
        await using db = new AsyncDatabase(testUrl(), { maxConnections: 2 });
        const retries: number[] = [];
        const [inserted, forced] = await db.batch(
          [
            { sql: `INSERT INTO "${table}" (id) VALUES ($1) RETURNING id`, params: [1] },
            { sql: `SELECT "${flaky}"($1) AS ok`, params: [2] },
          ],
          { initialBackoff: 1, onRetry: (info) => retries.push(info.attempt) },
        );
        assert.deepEqual([inserted, forced], [[{ id: 1 }], [{ ok: 1 }]]);
        assert.deepEqual(retries, [1, 2], "two attempts failed, the third committed");
        assert.equal(db.stats().retries["40001"], 2);
        // Out of retries: TransactionRetryError, and nothing applied.
        const exhausted = await outcome(() =>
          db.batch([
            { sql: `INSERT INTO "${table}" (id) VALUES ($1)`, params: [2] },
            { sql: `SELECT "${flaky}"($1) AS ok`, params: [5] },
          ], { maxRetries: 1, initialBackoff: 1 })
        );
        assert.ok(exhausted instanceof TransactionRetryError, Deno.inspect(exhausted));
        assert.equal(exhausted.attempts, 2);
      });
      await t.step("sync", () => {
        using db = new Database(testUrl(), { maxConnections: 2 });
        // The sequence is past 5 calls: make the next two fail again.
        db.execute(`SELECT setval('"${flaky}_seq"', 1, false)`);
        // onRetry is called on this thread, with the error rebuilt (the worker runs the retries).
        const retries: [number, string | undefined][] = [];
        const [inserted] = db.batch([
          { sql: `INSERT INTO "${table}" (id) VALUES ($1) RETURNING id`, params: [3] },
          { sql: `SELECT "${flaky}"($1) AS ok`, params: [2] },
        ], {
          initialBackoff: 1,
          onRetry: (info) => retries.push([info.attempt, (info.error as DatabaseError).code]),
        });
        assert.deepEqual(inserted, [{ id: 3 }]);
        assert.deepEqual(retries, [[1, "40001"], [2, "40001"]]);
        assert.equal(db.stats().retries["40001"], 2);
      });
      assert.deepEqual(await rows(table), [1, 3]);
    });
  });
});

Deno.test("batch() takes signal and timeout: aborted, it is rolled back and not sent again", async (t) => {
  await withTable(async (table) => {
    const slow = (id: number) => [
      { sql: `INSERT INTO "${table}" (id) VALUES ($1)`, params: [id] },
      { sql: "SELECT pg_sleep(5)" },
    ];
    await t.step("async", async () => {
      await using db = new AsyncDatabase(testUrl(), { maxConnections: 2 });
      const timedOut = await outcome(() => db.batch(slow(1), { timeout: 200 }));
      assert.ok(
        timedOut instanceof DatabaseError && timedOut.code === "57014",
        Deno.inspect(timedOut),
      );
      const controller = new AbortController();
      controller.abort(new Error("changed my mind"));
      const early = await outcome(() => db.batch(slow(2), { signal: controller.signal }));
      assert.ok(early instanceof DatabaseError && early.code === "ABORTED", Deno.inspect(early));
    });
    await t.step("sync", () => {
      using db = new Database(testUrl(), { maxConnections: 2 });
      assert.throws(
        () => db.batch(slow(3), { timeout: 200 }),
        (e: unknown) => e instanceof DatabaseError && e.code === "57014",
      );
    });
    assert.deepEqual(await rows(table), []);
  });
});

Deno.test("batch() inside a transaction runs under a savepoint: a failure undoes the batch only; a serialization failure retries the transaction", async (t) => {
  await withTable(async (table) => {
    await withFlaky(async (flaky) => {
      await t.step("async", async () => {
        await using proxy = await FaultProxy.start(testUrl());
        await using db = new AsyncDatabase(proxy.url(testUrl()), { maxConnections: 2 });
        await db.batch(trio(table, 100)); // known to the pool
        await db.execute(`DELETE FROM "${table}"`);
        proxy.resetTurns();
        const value = await db.transaction(async (tx) => {
          // The first thing in the transaction: BEGIN, the savepoint, the batch, its release.
          const [inserted] = await tx.batch(trio(table, 1));
          const failed = await outcome(() => tx.batch([...trio(table, 2), trio(table, 1)[0]]));
          assert.ok(failed instanceof UniqueViolationError && failed.statementIndex === 3);
          await tx.execute(trio(table, 3)[0].sql, [3]);
          return inserted?.[0];
        });
        assert.deepEqual(value, { id: 1 });
        // batch, failed batch, its rollback with the INSERT, COMMIT: 4 round trips.
        assert.equal(proxy.turns, 4);
        assert.deepEqual(await rows(table), [1, 3]);
        // A serialization failure in a batch is the transaction's: it runs again, whole.
        let attempts = 0;
        await db.transaction(async (tx) => {
          attempts++;
          await tx.execute(`INSERT INTO "${table}" (id) VALUES ($1)`, [10 + attempts]);
          await tx.batch([{ sql: `SELECT "${flaky}"($1) AS ok`, params: [1] }]);
        }, { initialBackoff: 1 });
        assert.equal(attempts, 2);
        assert.deepEqual(await rows(table), [1, 3, 12]);
        // Options a savepoint cannot honour are refused.
        const isolation = await outcome(() =>
          db.transaction((tx) => tx.batch(trio(table, 20), { isolation: "read committed" }))
        );
        assert.ok(isolation instanceof ValidationError && isolation.field === "isolation");
      });
      await t.step("sync", () => {
        using db = new Database(testUrl(), { maxConnections: 2 });
        db.transaction((tx) => {
          tx.batch(trio(table, 4));
          assert.throws(
            () => tx.batch([...trio(table, 5), trio(table, 4)[0]]),
            (e: unknown) => e instanceof UniqueViolationError && e.statementIndex === 3,
          );
          tx.execute(`INSERT INTO "${table}" (id) VALUES ($1)`, [6]);
        });
      });
      assert.deepEqual(await rows(table), [1, 3, 4, 6, 12]);
    });
  });
});

Deno.test("batch() tells onQuery about each of its statements", async () => {
  await withTable(async (table) => {
    const events: { text: string; error?: string }[] = [];
    await using db = new AsyncDatabase(testUrl(), {
      maxConnections: 1,
      onQuery: (e) => events.push({ text: e.text, ...(e.error ? { error: e.error.name } : {}) }),
    });
    await db.batch(trio(table, 1));
    assert.deepEqual(events.map((e) => e.text), [
      "BEGIN",
      ...trio(table, 1).map((s) => s.sql),
      "COMMIT",
    ]);
  });
});
