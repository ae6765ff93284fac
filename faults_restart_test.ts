// Faults on the real server: a server restart in the middle of a bank workload (async, and sync
// from 2 threads), a server that is down, and statement timeouts. Tests that stop or restart the
// server start one of their own.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import { ConnectionError, DatabaseError, TransactionRetryError } from "./errors.ts";
import { startTestDatabase } from "./testing.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  auditBank,
  type Bank,
  countErrors,
  countOutcomes,
  createBank,
  dropBank,
  type Outcome,
  planTransfers,
  prng,
  runTransfers,
  runTransfersInThreads,
  type WorkloadResult,
} from "./soak/_bank.ts";
import { caught, within } from "./_test_faults.ts";

async function assertSurvivedRestart(
  label: string,
  db: AsyncDatabase,
  bank: Bank,
  result: WorkloadResult,
): Promise<Record<Outcome, number>> {
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
