// Faults on the real server: backends terminated inside transactions (between statements,
// during a long statement, while COMMIT is in flight, and at random moments). They use the shared
// server and only terminate their own connections, found by a unique application_name. A server
// restart or outage is in faults_restart_test.ts, the sync bridge's worker crashing and a
// connection lost under the pool's own work in faults_worker_test.ts.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import { AmbiguousCommitError, ConnectionError } from "./errors.ts";
import { FaultProxy } from "./_test_proxy.ts";
import { armKiller, testUrl, uniqueName } from "./_test_util.ts";
import { caught, createSlowCommitTable, within } from "./_test_faults.ts";

Deno.test("transaction() runs the callback again when its backend is terminated during a long statement", async (t) => {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 2 });
  const table = uniqueName("long_kill");
  await admin.createTable(table, { id: "INT PRIMARY KEY", attempt: "INT" });
  try {
    await t.step("async", async () => {
      const application = uniqueName("app");
      await using db = new AsyncDatabase(testUrl(), {
        applicationName: application,
        maxConnections: 3,
      });
      let runs = 0;
      let firstError: unknown;
      const killer = await armKiller(admin, application, "%pg_sleep(30)%");
      const value = await within(
        db.transaction(async (tx) => {
          runs++;
          if (runs === 1) {
            try {
              await tx.execute("SELECT pg_sleep(30)");
            } catch (error) {
              firstError = error;
              throw error;
            }
          }
          await tx.insert(table, { id: 1, attempt: runs });
          return "done";
        }),
        20_000,
        "the transaction",
      );
      await killer.struck;
      assert.equal(value, "done");
      assert.equal(runs, 2);
      assert.ok(firstError instanceof ConnectionError, String(firstError));
      assert.deepEqual(await db.select(table, { where: { id: 1 } }), [{ id: 1, attempt: 2 }]);
    });
    await t.step("sync", async () => {
      const application = uniqueName("app");
      using db = new Database(testUrl(), { applicationName: application, maxConnections: 3 });
      let runs = 0;
      const killer = await armKiller(admin, application, "%pg_sleep(30)%");
      const value = db.transaction((tx) => {
        runs++;
        if (runs === 1) tx.execute("SELECT pg_sleep(30)");
        tx.insert(table, { id: 2, attempt: runs });
        return "done";
      });
      await killer.struck;
      assert.equal(value, "done");
      assert.equal(runs, 2);
      assert.deepEqual(db.select(table, { where: { id: 2 } }), [{ id: 2, attempt: 2 }]);
    });
  } finally {
    await admin.dropTable(table);
  }
});

Deno.test("transaction() runs again when its backend is terminated while COMMIT is in flight (the server ended it before it committed), and applies it once", async (t) => {
  // PostgreSQL holds interrupts through the commit itself: a FATAL 57P01 that comes before any
  // answer to COMMIT means the commit did not happen (docs/retry-safety.md).
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 2 });
  await t.step("async", async () => {
    const slow = await createSlowCommitTable(admin);
    try {
      const application = uniqueName("app");
      await using db = new AsyncDatabase(testUrl(), {
        applicationName: application,
        maxConnections: 3,
      });
      let runs = 0;
      const killer = await armKiller(admin, application, "COMMIT", "PgSleep");
      const value = await within(
        db.transaction(async (tx) => {
          runs++;
          await tx.insert(slow.table, { id: 1, note: "once" });
          return "committed";
        }),
        20_000,
        "the transaction",
      );
      await killer.struck;
      assert.equal(value, "committed");
      assert.equal(runs, 2);
      assert.deepEqual(await db.select(slow.table), [{ id: 1, note: "once" }]);
    } finally {
      await slow.drop();
    }
  });
  await t.step("sync", async () => {
    const slow = await createSlowCommitTable(admin);
    try {
      const application = uniqueName("app");
      using db = new Database(testUrl(), { applicationName: application, maxConnections: 3 });
      let runs = 0;
      const killer = await armKiller(admin, application, "COMMIT", "PgSleep");
      const value = db.transaction((tx) => {
        runs++;
        tx.insert(slow.table, { id: 1, note: "once" });
        return "committed";
      });
      await killer.struck;
      assert.equal(value, "committed");
      assert.equal(runs, 2);
      assert.deepEqual(db.select(slow.table), [{ id: 1, note: "once" }]);
    } finally {
      await slow.drop();
    }
  });
});

Deno.test("transaction() throws AmbiguousCommitError when the connection is cut while COMMIT is in flight, and never applies it twice", async (t) => {
  // No word from the server, only the connection's end: the commit may have happened.
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 2 });
  /** Cuts every connection of the proxy once a COMMIT of `application` sleeps on the server. */
  async function cutDuringCommit(proxy: FaultProxy, application: string): Promise<void> {
    for (let i = 0; i < 4000; i++) {
      const sleeping = await admin.queryOne(
        `SELECT 1 AS one FROM pg_stat_activity
          WHERE application_name = $1 AND query = 'COMMIT' AND wait_event = 'PgSleep'`,
        [application],
      );
      if (sleeping) {
        proxy.kill();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error("no COMMIT slept");
  }
  await t.step("async", async () => {
    const slow = await createSlowCommitTable(admin);
    await using proxy = await FaultProxy.start(testUrl());
    try {
      const application = uniqueName("app");
      await using db = new AsyncDatabase(proxy.url(testUrl()), {
        applicationName: application,
        maxConnections: 3,
      });
      let runs = 0;
      const cut = cutDuringCommit(proxy, application);
      const error = await within(
        caught(() =>
          db.transaction(async (tx) => {
            runs++;
            await tx.insert(slow.table, { id: 1, note: "once" });
          })
        ),
        20_000,
        "the transaction",
      );
      await cut;
      assert.ok(error instanceof AmbiguousCommitError, String(error));
      assert.equal(runs, 1, "an ambiguous commit is never retried silently");
      assert.ok(error.cause instanceof Error, "the cause is kept");
      assert.ok(await admin.count(slow.table) <= 1);
      proxy.restore();
      assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
    } finally {
      await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'COMMIT' AND wait_event = 'PgSleep'",
      );
      await slow.drop();
    }
  });
  await t.step("async, idempotent: true runs it again and it applies exactly once", async () => {
    const slow = await createSlowCommitTable(admin);
    await using proxy = await FaultProxy.start(testUrl());
    try {
      const application = uniqueName("app");
      await using db = new AsyncDatabase(proxy.url(testUrl()), {
        applicationName: application,
        maxConnections: 3,
      });
      let runs = 0;
      // The node comes back once the cut connection is gone (its port may linger a moment); the
      // reruns meanwhile are refused at connect, so the retry budget is wide and its backoff
      // short: the test is about what runs again, not about how long the node is away.
      const cut = cutDuringCommit(proxy, application).then(async () => {
        for (let i = 0;; i++) {
          try {
            return proxy.restore();
          } catch (error) {
            if (!(error instanceof Deno.errors.AddrInUse) || i > 200) throw error;
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        }
      });
      cut.catch(() => {}); // awaited below
      await within(
        db.transaction(async (tx) => {
          runs++;
          await tx.execute(
            `INSERT INTO "${slow.table}" (id, note) VALUES (1, 'once') ON CONFLICT (id) DO NOTHING`,
          );
        }, { idempotent: true, maxRetries: 1000, maxBackoff: 50 }),
        60_000,
        "the transaction",
      );
      await cut;
      assert.ok(runs >= 2, `${runs} runs`);
      assert.deepEqual(await admin.select(slow.table), [{ id: 1, note: "once" }]);
    } finally {
      await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'COMMIT' AND wait_event = 'PgSleep'",
      );
      await slow.drop();
    }
  });
});

Deno.test("transaction() survives 60 terminations at random moments: no hang, no uncaught error, nothing applied twice", async () => {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 2 });
  const application = uniqueName("app");
  await using db = new AsyncDatabase(testUrl(), {
    applicationName: application,
    minConnections: 2,
    maxConnections: 4,
  });
  const table = uniqueName("random_kill");
  await db.createTable(table, { id: "INT PRIMARY KEY", attempt: "INT" });
  const committed = new Set<number>();
  const failed = new Map<number, string>();
  try {
    for (let i = 0; i < 60; i++) {
      let runs = 0;
      // Between statements at once, after 0-3 ms, or during a statement.
      const mode = i % 6;
      try {
        await within(
          db.transaction(async (tx) => {
            runs++;
            const { pid } = (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!;
            if (runs === 1) {
              if (mode === 5) {
                const kill = admin.execute("SELECT pg_terminate_backend($1)", [pid]);
                await tx.execute("SELECT pg_sleep(0.05)").finally(() => kill);
              } else {
                await admin.execute("SELECT pg_terminate_backend($1)", [pid]);
                if (mode > 0) await new Promise((resolve) => setTimeout(resolve, mode - 1));
              }
            }
            await tx.insert(table, { id: i, attempt: runs });
          }),
          20_000,
          `transaction ${i}`,
        );
        committed.add(i);
      } catch (error) {
        if (error instanceof Error && error.message.startsWith("Hung")) throw error;
        assert.ok(error instanceof ConnectionError, `iteration ${i}: ${Deno.inspect(error)}`);
        failed.set(i, error.code);
      }
    }
    const rows = await admin.select<{ id: number }>(table, { orderBy: "id" });
    assert.deepEqual(rows.map((r) => r.id), [...committed].sort((a, b) => a - b));
    // Most transactions are run again and commit; a few may end with ConnectionError.
    assert.ok(
      committed.size >= 50,
      `only ${committed.size} of 60 committed: ${Deno.inspect(failed)}`,
    );
    // The pool still serves transactions.
    await within(
      db.transaction((tx) => tx.insert(table, { id: 100 })),
      20_000,
      "a last transaction",
    );
  } finally {
    // Through the other pool: a broken one must not hang the cleanup.
    await admin.dropTable(table);
  }
});

/**
 * Audits and reports the bank after a server restart in the middle of its workload, which must
 * leave: no untyped error, only ConnectionError or TransactionRetryError failures, the restart
 * felt by work in flight (connection-loss retries, failures or ambiguous commits), and the bank
 * exact. Answers the outcomes.
 */
