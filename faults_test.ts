// Faults on the real server: backends terminated inside transactions (between statements,
// during a long statement, while COMMIT is in flight, and at random moments), a server restart
// in the middle of a bank workload, a server that is down, statement timeouts, and the sync
// bridge's worker crashing in the middle of transfers. Tests that
// stop or restart the server start one of their own; the others use the shared server and only
// terminate their own connections, found by a unique application_name.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  TransactionRetryError,
} from "./errors.ts";
import { startTestDatabase } from "./testing.ts";
import { bridgeRequest } from "./_internal.ts";
import { FaultProxy } from "./_test_proxy.ts";
import { armKiller, testUrl, uniqueName } from "./_test_util.ts";
import {
  auditBank,
  type Bank,
  classify,
  countErrors,
  countOutcomes,
  createBank,
  dropBank,
  planTransfers,
  prng,
  runTransfers,
  runTransfersInThreads,
  transferBodySync,
  type WorkloadResult,
} from "./soak/_bank.ts";

/** Fails instead of hanging: `promise` must settle within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Hung: ${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected an error");
}

/**
 * A table whose deferred constraint trigger sleeps in the first COMMIT that inserts into it
 * (a sequence, which rollbacks do not undo, counts the commits): that COMMIT is in flight long
 * enough to terminate its backend from elsewhere.
 */
async function createSlowCommitTable(
  db: AsyncDatabase,
): Promise<{ table: string; drop(): Promise<void> }> {
  const table = uniqueName("slow_commit");
  await db.execute(`
    CREATE TABLE "${table}" (id INT PRIMARY KEY, note TEXT);
    CREATE SEQUENCE "${table}_commits";
    CREATE FUNCTION "${table}_gate"() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('"${table}_commits"') = 1 THEN PERFORM pg_sleep(30); END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER "${table}_slow" AFTER INSERT ON "${table}"
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "${table}_gate"();
  `);
  return {
    table,
    drop: () =>
      db.execute(`
        DROP TABLE IF EXISTS "${table}";
        DROP FUNCTION IF EXISTS "${table}_gate"();
        DROP SEQUENCE IF EXISTS "${table}_commits";
      `).then(() => {}),
  };
}

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
async function assertSurvivedRestart(
  label: string,
  db: AsyncDatabase,
  bank: Bank,
  result: WorkloadResult,
): Promise<Record<string, number>> {
  const audit = await auditBank(db, bank, result.transfers);
  console.log(
    `${label}: ${Deno.inspect(countOutcomes(result.transfers))}, errors ${
      Deno.inspect(countErrors(result.transfers))
    }, retries ${Deno.inspect(result.retries)}, ambiguous applied ${audit.ambiguousApplied}`,
  );
  assert.deepEqual(result.untyped, []);
  for (const t of result.transfers) {
    if (t.outcome === "failed") {
      assert.match(t.error ?? "", /^(ConnectionError|TransactionRetryError) /, t.error);
    }
  }
  const outcomes = countOutcomes(result.transfers);
  const hit = Object.entries(result.retries)
    .filter(([code]) => code !== "40001" && code !== "40P01")
    .reduce((n, [, count]) => n + count, 0) + outcomes.failed + outcomes.ambiguous;
  assert.ok(hit > 0, `the restart touched nothing in flight: ${Deno.inspect(result.retries)}`);
  assert.equal(audit.total, audit.expectedTotal);
  assert.deepEqual(audit.duplicates, []);
  assert.deepEqual(audit.lost, []);
  assert.deepEqual(audit.phantom, []);
  assert.deepEqual(audit.unbalanced, []);
  return outcomes;
}

Deno.test("AsyncDatabase recovers from a server restart in the middle of a bank workload, losing nothing", async () => {
  await using server = await startTestDatabase({ ownServer: true });
  await using db = new AsyncDatabase(server.url, { maxConnections: 8, connectTimeout: 10 });
  const seed = Date.now() % 2 ** 31;
  const bank = await createBank(db, uniqueName("restart"), 20, 1000);
  const transfers = planTransfers(bank, 1500, prng(seed));
  let restarted: Promise<void> | undefined;
  let settledAtRestart = 0;
  const result = await within(
    runTransfers(db, bank, transfers, {
      workers: 8,
      deadline: 60_000,
      onSettled: (done) => {
        if (done === 300) {
          settledAtRestart = done;
          restarted = server.restart();
        }
      },
    }),
    90_000,
    "the workload",
  );
  await restarted;
  assert.equal(settledAtRestart, 300);
  const outcomes = await assertSurvivedRestart(
    `restart mid-workload (seed ${seed})`,
    db,
    bank,
    result,
  );
  // The pool came back: most of the work after the restart committed.
  assert.equal(result.transfers.length, transfers.length);
  assert.ok(outcomes.committed + outcomes.declined > 1400, Deno.inspect(outcomes));
  await dropBank(db, bank);
});

Deno.test("Database (sync) recovers from a server restart in the middle of transfers from 2 threads, losing nothing", async () => {
  await using server = await startTestDatabase({ ownServer: true });
  await using admin = new AsyncDatabase(server.url, { maxConnections: 2, connectTimeout: 10 });
  const seed = Date.now() % 2 ** 31;
  const bank = await createBank(admin, uniqueName("sync_restart"), 12, 1000);
  const transfers = planTransfers(bank, 600, prng(seed));
  const progress = new Int32Array(new SharedArrayBuffer(4));
  // No transfer settles before both threads have connected (runTransfersInThreads waits for
  // every worker's "ready"), so the count, and the restart after it, start with both threads
  // running: the restart meets transactions in flight, never a `new Database()` still connecting.
  const running = runTransfersInThreads(server.url, bank, transfers, 2, 60_000, progress);
  for (let waited = 0; Atomics.load(progress, 0) < 150 && waited < 60_000; waited += 5) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const settledAtRestart = Atomics.load(progress, 0);
  await server.restart();
  const result = await within(running, 90_000, "the sync workload");
  assert.ok(settledAtRestart >= 150 && settledAtRestart < 600, `restarted at ${settledAtRestart}`);
  const outcomes = await assertSurvivedRestart(
    `sync restart (seed ${seed}) after ${settledAtRestart}`,
    admin,
    bank,
    result,
  );
  assert.equal(result.transfers.length, transfers.length);
  assert.ok(outcomes.committed + outcomes.declined > 550, Deno.inspect(outcomes));
});

Deno.test("Database (sync) fails with ConnectionError while the server is down and works again once it is back", async () => {
  await using server = await startTestDatabase({ ownServer: true });
  using db = new Database(server.url, { maxConnections: 2, connectTimeout: 5 });
  db.execute("CREATE TABLE t (id INT PRIMARY KEY)");
  await server.stopServer();
  for (
    const action of [
      () => db.execute("SELECT 1"),
      () => db.insert("t", { id: 1 }),
      () => db.transaction((tx) => tx.insert("t", { id: 2 })),
      () => {
        for (const _ of db.stream("SELECT * FROM t")) {
          // Nothing arrives.
        }
      },
    ]
  ) {
    const error = await caught(action);
    assert.ok(error instanceof ConnectionError, Deno.inspect(error));
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
  }
  await server.startServer();
  db.insert("t", { id: 3 });
  db.transaction((tx) => tx.insert("t", { id: 4 }));
  assert.deepEqual(db.select("t", { orderBy: "id" }), [{ id: 3 }, { id: 4 }]);
});

Deno.test("AsyncDatabase fails with ConnectionError while the server is down and works again once it is back", async () => {
  await using server = await startTestDatabase({ ownServer: true });
  await using db = new AsyncDatabase(server.url, { maxConnections: 4, connectTimeout: 5 });
  await db.execute("CREATE TABLE t (id INT PRIMARY KEY)");
  await server.stopServer();
  for (
    const action of [
      () => db.execute("SELECT 1"),
      () => db.insert("t", { id: 1 }),
      () => db.transaction((tx) => tx.insert("t", { id: 2 })),
      async () => {
        for await (const _ of db.stream("SELECT * FROM t")) {
          // Nothing arrives.
        }
      },
    ]
  ) {
    const error = await within(caught(action), 30_000, "a call while the server is down");
    assert.ok(error instanceof ConnectionError, Deno.inspect(error));
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
  }
  await server.startServer();
  await within(db.insert("t", { id: 3 }), 30_000, "the first insert after the start");
  await db.transaction((tx) => tx.insert("t", { id: 4 }));
  assert.deepEqual(await db.select("t", { orderBy: "id" }), [{ id: 3 }, { id: 4 }]);
});

Deno.test("statementTimeout cancels a long statement with DatabaseError 57014, inside a transaction too, without a retry", async (t) => {
  await t.step("async", async () => {
    await using db = new AsyncDatabase(testUrl(), { statementTimeout: 100, maxConnections: 2 });
    const plain = await caught(() => db.execute("SELECT pg_sleep(5)"));
    assert.ok(plain instanceof DatabaseError && !(plain instanceof ConnectionError), String(plain));
    assert.equal(plain.code, "57014");
    let runs = 0;
    const inTx = await caught(() =>
      db.transaction(async (tx) => {
        runs++;
        await tx.execute("SELECT pg_sleep(5)");
      })
    );
    assert.ok(inTx instanceof DatabaseError && !(inTx instanceof TransactionRetryError));
    assert.equal(inTx.code, "57014");
    assert.equal(runs, 1);
    // Short statements still run, on the same pool.
    assert.deepEqual(await db.execute("SELECT pg_sleep(0.01)::text AS slept"), [{ slept: "" }]);
  });
  await t.step("from the URL parameter", async () => {
    const url = new URL(testUrl());
    url.searchParams.set("statement_timeout", "100");
    await using db = new AsyncDatabase(url.href, { maxConnections: 2 });
    const error = await caught(() => db.execute("SELECT pg_sleep(5)"));
    assert.ok(error instanceof DatabaseError);
    assert.equal(error.code, "57014");
  });
  await t.step("sync", () => {
    using db = new Database(testUrl(), { statementTimeout: 100, maxConnections: 2 });
    let runs = 0;
    let error: unknown;
    try {
      db.transaction((tx) => {
        runs++;
        tx.execute("SELECT pg_sleep(5)");
      });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof DatabaseError, String(error));
    assert.equal(error.code, "57014");
    assert.equal(runs, 1);
    assert.deepEqual(db.execute("SELECT 1 AS one"), [{ one: 1 }]);
  });
});

Deno.test("Database: its worker crashing in the middle of transfers loses nothing and applies nothing twice", async () => {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 2 });
  const seed = Date.now() % 2 ** 31;
  const bank = await createBank(admin, uniqueName("crash"), 5, 1000);
  try {
    const transfers = planTransfers(bank, 120, prng(seed));
    const untyped: unknown[] = [];
    const crashed = new Set<number>();
    {
      using db = new Database(testUrl(), { minConnections: 1, maxConnections: 2 });
      const crash = (how: "exit" | "throw") => bridgeRequest(db, { op: "crash", how, ms: 2000 });
      transfers.forEach((transfer, i) => {
        try {
          db.transaction((tx) => {
            transfer.runs++;
            transferBodySync(tx, bank, transfer, () => {
              // Every tenth transfer: the worker dies with the transaction half done.
              if (i % 10 === 3 && transfer.runs === 1) {
                crashed.add(i);
                crash(i % 20 === 3 ? "exit" : "throw");
              }
            });
          });
          transfer.outcome = "committed";
        } catch (error) {
          classify(transfer, error, untyped);
        }
        // And between transactions, now and then.
        if (i % 25 === 24) {
          assert.throws(() => crash("exit"), ConnectionError);
        }
      });
      // The same Database, and a new one, work afterwards.
      assert.deepEqual(db.execute("SELECT 1 AS one"), [{ one: 1 }]);
      using other = new Database(testUrl(), { minConnections: 1 });
      assert.deepEqual(other.execute("SELECT 2 AS two"), [{ two: 2 }]);
    }
    const audit = await auditBank(admin, bank, transfers);
    console.log(
      `worker crashes (seed ${seed}): ${crashed.size} inside transactions, ${
        Deno.inspect(countOutcomes(transfers))
      }, errors ${Deno.inspect(countErrors(transfers))}`,
    );
    assert.deepEqual(untyped, []);
    for (const i of crashed) {
      assert.equal(transfers[i].runs, 2, `transfer ${i} ran again on a fresh worker`);
      assert.equal(transfers[i].outcome, "committed");
    }
    assert.equal(audit.total, audit.expectedTotal);
    assert.deepEqual(audit.duplicates, []);
    assert.deepEqual(audit.lost, []);
    assert.deepEqual(audit.phantom, []);
    assert.deepEqual(audit.unbalanced, []);
  } finally {
    await dropBank(admin, bank);
  }
});

/**
 * A TCP proxy to the test server that acts on the first statement of each connection whose text
 * contains `marker`: "close" ends the client's side of that connection (a clean close, as a
 * server shutting down does) the first time; "stall" stops forwarding that connection's client
 * bytes, so the statement never reaches the server.
 */
function startProxy(marker: string, mode: "close" | "stall") {
  const target = new URL(testUrl());
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const needle = new TextEncoder().encode(marker);
  const conns = new Set<Deno.Conn>();
  let struck = 0;
  let armed = mode === "stall";
  const contains = (chunk: Uint8Array): boolean => {
    outer: for (let i = 0; i + needle.length <= chunk.length; i++) {
      for (let j = 0; j < needle.length; j++) if (chunk[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };
  const pipe = async (
    from: Deno.Conn,
    to: Deno.Conn,
    inspect: (chunk: Uint8Array) => "forward" | "close" | "stall",
  ) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        const chunk = buffer.subarray(0, n);
        const action = inspect(chunk);
        if (action === "stall") return;
        if (action === "close") {
          await from.closeWrite();
          return;
        }
        await to.write(chunk);
      }
      await to.closeWrite();
    } catch {
      // A side went away; the other is closed below.
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port || 5432),
      });
      conns.add(client).add(server);
      let stalled = false;
      void pipe(client, server, (chunk) => {
        if (stalled) return "stall";
        if (!armed || !contains(chunk)) return "forward";
        if (mode === "stall") {
          struck++;
          stalled = true;
          return "stall";
        }
        if (struck > 0) return "forward";
        struck++;
        return "close";
      }).then(() => {
        if (!stalled) {
          for (const c of [client, server]) {
            try {
              c.close();
            } catch { /* already closed */ }
            conns.delete(c);
          }
        }
      });
      void pipe(server, client, () => stalled ? "stall" : "forward");
    }
  })();
  const url = new URL(testUrl());
  url.hostname = "127.0.0.1";
  url.port = String((listener.addr as Deno.NetAddr).port);
  return {
    url: url.toString(),
    get struck() {
      return struck;
    },
    /** "close" acts only once armed. */
    arm(): void {
      armed = true;
    },
    async close(): Promise<void> {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await accepting.catch(() => {});
    },
  };
}

Deno.test("a connection lost while it reads the server's types is no uncaught error", async (t) => {
  // The pool reads the types of the server that are not built in (an enum's array) when a
  // statement first meets one. postgres.js's own type query, which ran on every new connection,
  // ended the process when it failed (an unhandled rejection, porsager/postgres#1192, #1205).
  const mood = uniqueName("mood");
  await using admin = new AsyncDatabase(testUrl(), { maxConnections: 1 });
  await admin.execute(`CREATE TYPE "${mood}" AS ENUM ('ok', 'sad')`);
  try {
    await t.step(
      "closed by the server during the type read: the transaction runs again and answers",
      async () => {
        const proxy = startProxy("typarray", "close");
        try {
          await using db = new AsyncDatabase(proxy.url, { maxConnections: 1, connectTimeout: 5 });
          await db.connect();
          proxy.arm();
          let attempts = 0;
          const value = await within(
            db.transaction(async (tx) => {
              attempts++;
              return (await tx.queryOne<{ m: string[] }>(`SELECT ARRAY['ok']::"${mood}"[] AS m`))!
                .m;
            }),
            30_000,
            "a transaction whose connection closed during the type read",
          );
          assert.deepEqual(value, ["ok"]);
          assert.equal(proxy.struck, 1);
          assert.equal(attempts, 2, "the connection was lost: the transaction ran again");
          // Let anything that would float settle before the test's sanitizers look.
          await new Promise((resolve) => setTimeout(resolve, 100));
        } finally {
          await proxy.close();
        }
      },
    );
    await t.step(
      "cancelled by a 1 ms statementTimeout: each statement answers or fails typed",
      async () => {
        // porsager/postgres#1205: the type query cancelled (57014) ended the process.
        const outcomes: Record<string, number> = {};
        for (let i = 0; i < 20; i++) {
          await using db = new AsyncDatabase(testUrl(), { maxConnections: 1, statementTimeout: 1 });
          const outcome = await db.execute(`SELECT ARRAY['ok']::"${mood}"[] AS m`).then(
            () => "answered",
            (error) => error instanceof DatabaseError ? `${error.name} ${error.code}` : error,
          );
          assert.equal(typeof outcome, "string", Deno.inspect(outcome));
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.ok(
          Object.keys(outcomes).every((k) =>
            /^(answered|\w+ 57014|DatabaseError TYPE_READ_FAILED)$/.test(k)
          ),
          Deno.inspect(outcomes),
        );
      },
    );
    await t.step("closed by close() while the type read waits: close() settles", async () => {
      const proxy = startProxy("typarray", "stall");
      try {
        const db = new AsyncDatabase(proxy.url, { maxConnections: 1, connectTimeout: 5 });
        const pending = db.execute(`SELECT ARRAY['ok']::"${mood}"[] AS m`).then(
          () => "answered",
          (error) => error,
        );
        for (let i = 0; i < 500 && proxy.struck === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.equal(proxy.struck, 1, "the type read was never sent");
        await within(db.close(), 30_000, "close() while the type read waits");
        const outcome = await within(
          pending,
          30_000,
          "a statement whose result waits for the type read",
        );
        // The statement ran; only its result could not be read: not a ConnectionError, which
        // would say that it did not run.
        assert.ok(outcome instanceof DatabaseError, Deno.inspect(outcome));
        assert.equal(outcome.code, "TYPE_READ_FAILED");
        assert.ok(outcome.cause instanceof ConnectionError, Deno.inspect(outcome.cause));
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        await proxy.close();
      }
    });
  } finally {
    await admin.execute(`DROP TYPE "${mood}"`);
  }
});

Deno.test("a second close() during a connect waits until the first has ended it", async () => {
  // A server that accepts and never answers: the connect stays in progress.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const db = new AsyncDatabase(`postgresql://root@127.0.0.1:${port}/postgres`, {
      connectTimeout: 30,
    });
    const pending = db.execute("SELECT 1").then(() => "answered", (error) => error);
    while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const first = db.close();
    let firstDone = false;
    first.then(() => firstDone = true);
    await within(db.close(), 10_000, "the second close()");
    assert.equal(firstDone, true, "the second close() returned before the first");
    const outcome = await within(pending, 10_000, "the statement waiting on the connect");
    assert.ok(outcome instanceof ConnectionError, Deno.inspect(outcome));
  } finally {
    listener.close();
    for (const conn of held) conn.close();
    await accepting.catch(() => {});
  }
});
