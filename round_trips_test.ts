// Issue 15 on the real server, through both APIs: BEGIN pipelined with the callback's first
// statement (its options included, its failure reported as its own), and nested transactions
// under savepoints; `batch()` is in round_trips_batch_test.ts. Round trips are counted exactly by
// the tests' proxy (`_test_proxy.ts`); the sync `Database` blocks this thread, so its proxy runs
// in a worker.
import assert from "node:assert/strict";
import { AsyncDatabase, type TransactionOptions } from "./async_database.ts";
import { Database } from "./database.ts";
import { DatabaseError, UniqueViolationError, ValidationError } from "./errors.ts";
import { testUrl } from "./_test_util.ts";
import { FaultProxy } from "./_test_proxy.ts";
import { ProxyWorker } from "./bench/_latency_proxy.ts";
import { outcome, rows, withFlaky, withTable } from "./_test_round_trips.ts";

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

Deno.test("a statement the pool described on one connection goes in one round trip on another (the pool's parameter types)", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  await using db = new AsyncDatabase(proxy.url(testUrl()), {
    minConnections: 2,
    maxConnections: 2,
  });
  await db.connect();
  const select = "SELECT $1::int AS n, pg_backend_pid() AS pid";
  proxy.resetTurns();
  const first = (await db.queryOne<{ n: number; pid: number }>(select, [1]))!;
  assert.equal(proxy.turns, 2, "described, then run");
  await db.transaction(async (tx) => {
    const mine = (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!.pid;
    proxy.resetTurns();
    // On the connection that never saw it: the transaction's, or the pool's other one.
    const other = mine === first.pid
      ? await db.queryOne<{ n: number; pid: number }>(select, [2])
      : await tx.queryOne<{ n: number; pid: number }>(select, [2]);
    assert.notEqual(other!.pid, first.pid);
    assert.equal(other!.n, 2);
    assert.equal(proxy.turns, 1);
  });
});

Deno.test("a statement whose kept parameter types no longer fit (a column's type changed) is described again and runs", async () => {
  await withTable(async (table) => {
    await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 1 });
    await using db = new AsyncDatabase(testUrl(), { minConnections: 2, maxConnections: 2 });
    await db.connect();
    await db.execute(`INSERT INTO "${table}" (id) VALUES (1)`);
    const update = `UPDATE "${table}" SET n = $1 WHERE id = 1 RETURNING n`;
    // Described on one connection, which then goes: the pool keeps the types it was given.
    const pid = await db.transaction(async (tx) => {
      await tx.queryOne(update, [7]);
      return (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!.pid;
    });
    await admin.execute("SELECT pg_terminate_backend($1)", [pid]);
    // The column becomes jsonb: the kept type (int4) no longer fits the statement.
    await admin.execute(
      `ALTER TABLE "${table}" ALTER COLUMN n DROP DEFAULT, ALTER COLUMN n TYPE jsonb USING to_jsonb(n)`,
    );
    // Parsed with the kept types on a connection that never saw it, refused (42804), forgotten,
    // described and run.
    assert.deepEqual(await db.queryOne(update, ["8"]), { n: "8" });
  });
});

Deno.test("a value refused in a transaction's first statement fails that statement only: BEGIN travels with the next one", async (t) => {
  await withTable(async (table) => {
    const insert = `INSERT INTO "${table}" (id) VALUES ($1)`;
    const lone = "\ud800"; // a lone surrogate: refused before anything is sent
    await t.step("async", async () => {
      await using proxy = await FaultProxy.start(testUrl());
      await using db = new AsyncDatabase(proxy.url(testUrl()), { maxConnections: 1 });
      await db.execute(insert, [100]);
      proxy.resetTurns();
      await db.transaction(async (tx) => {
        const refused = await outcome(() => tx.execute(insert, [lone]));
        assert.ok(refused instanceof ValidationError, Deno.inspect(refused));
        await tx.execute(insert, [1]);
      });
      assert.equal(proxy.turns, 2);
    });
    await t.step("sync", () => {
      using db = new Database(testUrl(), { maxConnections: 1 });
      db.transaction((tx) => {
        assert.throws(() => tx.execute(insert, [lone]), ValidationError);
        tx.execute(insert, [2]);
      });
    });
    assert.deepEqual(await rows(table), [1, 2, 100]);
  });
});

// Nested transactions

Deno.test("tx.transaction() nests under a savepoint: an error undoes the inner part only, the outer transaction goes on and commits", async (t) => {
  await withTable(async (table) => {
    const insert = `INSERT INTO "${table}" (id) VALUES ($1)`;
    await t.step("async", async () => {
      await using proxy = await FaultProxy.start(testUrl());
      await using db = new AsyncDatabase(proxy.url(testUrl()), { maxConnections: 1 });
      await db.execute(insert, [1000]); // prepared: no describe round trip below
      await db.execute(`DELETE FROM "${table}"`);
      proxy.resetTurns();
      const value = await db.transaction(async (tx) => {
        await tx.execute(insert, [1]);
        // Returns: kept. Its savepoint travels with its first statement, the release with
        // the next statement.
        const kept = await tx.transaction(async (inner) => {
          await inner.execute(insert, [2]);
          return "kept";
        });
        // Throws (a duplicate key after one insert): undone, the outer goes on.
        const undone = await outcome(() =>
          tx.transaction(async (inner) => {
            await inner.execute(insert, [3]);
            await inner.execute(insert, [1]);
          })
        );
        assert.ok(undone instanceof UniqueViolationError, Deno.inspect(undone));
        // Nested twice, and a nested transaction that sends nothing.
        await tx.transaction((inner) =>
          inner.transaction((innermost) => innermost.execute(insert, [4]))
        );
        assert.equal(await tx.transaction(() => "nothing sent"), "nothing sent");
        await tx.execute(insert, [5]);
        return kept;
      });
      assert.equal(value, "kept");
      assert.deepEqual(await rows(table), [1, 2, 4, 5]);
      // One round trip per statement, and COMMIT: the savepoints never wait on their own.
      assert.equal(proxy.turns, 7);
      // A nested transaction as the first thing: BEGIN and its savepoint go with its statement.
      proxy.resetTurns();
      await db.transaction((tx) => tx.transaction((inner) => inner.execute(insert, [6])));
      assert.equal(proxy.turns, 2);
      const isolation = await outcome(() =>
        db.transaction((tx) => tx.transaction(() => 1, { isolation: "read committed" }))
      );
      assert.ok(isolation instanceof ValidationError && isolation.field === "isolation");
    });
    await t.step("sync", async () => {
      const proxy = await ProxyWorker.start(testUrl(), 0);
      try {
        using db = new Database(proxy.url(testUrl()), { maxConnections: 1 });
        db.execute(insert, [1000]);
        db.execute(`DELETE FROM "${table}" WHERE id = 1000`);
        await proxy.reset();
        db.transaction((tx) => {
          tx.execute(insert, [11]);
          assert.throws(
            () =>
              tx.transaction((inner) => {
                inner.execute(insert, [12]);
                inner.execute(insert, [11]);
              }),
            UniqueViolationError,
          );
          tx.transaction((inner) => inner.execute(insert, [13]));
          tx.execute(insert, [14]);
        });
        assert.equal((await proxy.count()).turns, 6);
      } finally {
        await proxy.close();
      }
    });
    assert.deepEqual(await rows(table), [1, 2, 4, 5, 6, 11, 13, 14]);
  });
});

Deno.test("a serialization failure in a nested transaction runs the outermost transaction again, whole", async (t) => {
  await withTable(async (table) => {
    await withFlaky(async (flaky) => {
      const insert = `INSERT INTO "${table}" (id) VALUES ($1)`;
      await t.step("async", async () => {
        await using db = new AsyncDatabase(testUrl(), { maxConnections: 1 });
        let attempts = 0;
        await db.transaction(async (tx) => {
          attempts++;
          await tx.execute(insert, [attempts]);
          await tx.transaction(async (inner) => {
            await inner.execute(insert, [10 + attempts]);
            await inner.execute(`SELECT "${flaky}"($1)`, [1]);
          });
        }, { initialBackoff: 1 });
        assert.equal(attempts, 2);
      });
      await t.step("sync", () => {
        using db = new Database(testUrl(), { maxConnections: 1 });
        db.execute(`SELECT setval('"${flaky}_seq"', 1, false)`);
        let attempts = 0;
        db.transaction((tx) => {
          attempts++;
          tx.execute(insert, [20 + attempts]);
          // Caught inside: still the outermost transaction's to retry.
          try {
            tx.transaction((inner) => inner.execute(`SELECT "${flaky}"($1)`, [1]));
          } catch {
            // The attempt is lost anyway: the runner runs it again.
          }
        }, { initialBackoff: 1 });
        assert.equal(attempts, 2);
      });
      assert.deepEqual(await rows(table), [2, 12, 22]);
    });
  });
});

Deno.test("a transaction whose first statement is a COPY or a cursor sends BEGIN before it: both run inside the transaction", async (t) => {
  // Neither can travel in a chain: the deferred BEGIN goes alone first.
  await withTable(async (table) => {
    const sql = `SELECT id FROM "${table}" WHERE id >= $1 ORDER BY id`;
    const undo = new Error("undo");
    await t.step("async", async () => {
      await using db = new AsyncDatabase(testUrl(), { maxConnections: 1 });
      const records = [{ id: 1 }, { id: 2 }];
      // Thrown after the COPY: rolled back, so the COPY ran in the transaction.
      const undone = await outcome(() =>
        db.transaction(async (tx) => {
          await tx.batchInsert(table, records, { returning: false });
          throw undo;
        })
      );
      assert.equal(undone, undo);
      assert.deepEqual(await rows(table), []);
      await db.transaction((tx) => tx.batchInsert(table, records, { returning: false }));
      const streamed: number[] = [];
      await db.transaction(async (tx) => {
        for await (const row of tx.stream<{ id: number }>(sql, [1])) streamed.push(row.id);
      });
      assert.deepEqual(streamed, [1, 2]);
    });
    await t.step("sync", async () => {
      using db = new Database(testUrl(), { maxConnections: 1 });
      const records = [{ id: 11 }, { id: 12 }];
      assert.throws(() =>
        db.transaction((tx) => {
          tx.batchInsert(table, records, { returning: false });
          throw undo;
        }), (e: unknown) => e === undo);
      assert.deepEqual(await rows(table), [1, 2]);
      db.transaction((tx) => tx.batchInsert(table, records, { returning: false }));
      const streamed: number[] = [];
      db.transaction((tx) => {
        for (const row of tx.stream<{ id: number }>(sql, [11])) streamed.push(row.id);
      });
      assert.deepEqual(streamed, [11, 12]);
    });
  });
});
