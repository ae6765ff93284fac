// Cancellation: a signal or a timeout on any call. A running statement gets a cancel request
// (57014), one not yet sent is not sent (ABORTED); the error's cause is the signal's reason; an
// aborted transaction rolls back and is not retried; an aborted stream closes its cursor; the
// connection goes back to the pool usable.
import assert from "node:assert/strict";
import { AsyncDatabase, Database, DatabaseError, type QueryEvent, ValidationError } from "./mod.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

function isAbort(code: "57014" | "ABORTED", reason?: unknown) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof DatabaseError, Deno.inspect(error));
    assert.equal(error.code, code, Deno.inspect(error));
    if (reason !== undefined) assert.equal(error.cause, reason);
    return true;
  };
}

/** Statements of `application` still running on the server. */
async function running(admin: AsyncDatabase, application: string): Promise<number> {
  return (await admin.queryOne<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE application_name = $1 AND state = 'active'`,
    [application],
  ))!.n;
}

async function settlesWithin<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("an aborted pg_sleep(10) returns within a second, the server shows it gone, and the pool works after 50 aborts", async () => {
  const application = uniqueName("cancel");
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  await using db = new AsyncDatabase(testUrl(), {
    applicationName: application,
    maxConnections: 2,
  });
  await db.connect();
  const controller = new AbortController();
  const sleeping = db.execute("SELECT pg_sleep(10)", [], { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("the user gave up")), 100);
  const error = await settlesWithin(sleeping.then(() => undefined, (e) => e), 1000);
  isAbort("57014")(error);
  assert.equal((error as DatabaseError).cause, controller.signal.reason);
  assert.equal(await running(admin, application), 0, "the statement still runs on the server");
  for (let i = 0; i < 50; i++) {
    await assert.rejects(
      () => db.queryOne("SELECT pg_sleep(5) AS s", [], { timeout: 5 + (i % 5) }),
      (e: unknown) => e instanceof DatabaseError && ["57014", "ABORTED"].includes(e.code),
    );
  }
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
  assert.equal(await running(admin, application), 0);
  const stats = db.stats();
  assert.ok(stats.total <= 2, Deno.inspect(stats));
});

Deno.test("an already-aborted signal fails before anything is sent, in every helper", async () => {
  const application = uniqueName("aborted");
  await using db = new AsyncDatabase(testUrl(), { applicationName: application });
  const seen: QueryEvent[] = [];
  await using watched = new AsyncDatabase(testUrl(), { onQuery: (e) => seen.push(e) });
  const table = uniqueName("ab");
  await db.createTable(table, { id: "INT PRIMARY KEY", v: "INT" });
  const reason = new Error("already");
  const signal = AbortSignal.abort(reason);
  const calls: (() => Promise<unknown>)[] = [
    () => watched.execute("SELECT 1", [], { signal }),
    () => watched.queryOne("SELECT 1", [], { signal }),
    () => watched.insert(table, { id: 1 }, { signal }),
    () => watched.select(table, { signal }),
    () => watched.selectOne(table, { where: { id: 1 }, signal }),
    () => watched.update(table, { v: 2 }, { id: 1 }, { signal }),
    () => watched.delete(table, { id: 1 }, { signal }),
    () => watched.count(table, undefined, { signal }),
    () => watched.upsert(table, { id: 1, v: 1 }, { signal }),
    () => watched.batchInsert(table, [{ id: 5 }, { id: 6 }], { signal }),
    () => watched.batchInsert(table, [{ id: 5 }, { id: 6 }], { returning: false, signal }),
    () => watched.batchUpdate(table, [{ id: 5, v: 1 }], { signal }),
    () => watched.tableExists(table, { signal }),
    () => watched.createTable(uniqueName("never"), { id: "INT" }, { signal }),
    () => watched.dropTable(table, { signal }),
    () => watched.stream("SELECT 1", [], { signal }).next(),
    () => watched.transaction((tx) => tx.execute("SELECT 1"), { signal }),
  ];
  for (const [i, run] of calls.entries()) {
    await assert.rejects(run, (error: unknown) => {
      assert.ok(error instanceof DatabaseError, `call ${i}: ${Deno.inspect(error)}`);
      assert.equal(error.code, "ABORTED", `call ${i}`);
      assert.equal(error.cause, reason, `call ${i}`);
      return true;
    });
  }
  // Only the lookups a helper makes before its statement (a primary key, the json columns)
  // ran; the hook heard of every aborted statement as aborted, unsent.
  for (const event of seen) {
    if (/pg_index|pg_attribute/.test(event.text)) continue;
    assert.equal((event.error as DatabaseError | undefined)?.code, "ABORTED", event.text);
  }
  assert.equal(await db.count(table), 0);
  assert.equal(await db.tableExists(table), true);
});

Deno.test("an aborted transaction rolls back and is not retried; its connection goes back usable", async () => {
  await using db = new AsyncDatabase(testUrl(), { maxConnections: 1 });
  const table = uniqueName("abtx");
  await db.createTable(table, { id: "INT PRIMARY KEY" });
  let runs = 0;
  const controller = new AbortController();
  const tx = db.transaction(async (t) => {
    runs++;
    await t.insert(table, { id: runs });
    await t.execute("SELECT pg_sleep(10)");
  }, { signal: controller.signal });
  setTimeout(() => controller.abort("stop"), 100);
  await assert.rejects(() => settlesWithin(tx, 2000), isAbort("57014", "stop"));
  assert.equal(runs, 1, "an aborted transaction ran again");
  assert.equal(await db.count(table), 0, "the insert of the aborted transaction stayed");
  // The callback between statements when the timeout passes: nothing more is sent, no COMMIT.
  await assert.rejects(
    () =>
      db.transaction(async (t) => {
        await t.insert(table, { id: 100 });
        await new Promise((resolve) => setTimeout(resolve, 150));
      }, { timeout: 50 }),
    (error: unknown) => error instanceof DatabaseError && error.cause instanceof DOMException,
  );
  assert.equal(await db.count(table), 0);
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
});

Deno.test("an aborted stream closes its cursor and gives its connection back", async () => {
  await using db = new AsyncDatabase(testUrl(), { maxConnections: 1 });
  const controller = new AbortController();
  const rows: unknown[] = [];
  await assert.rejects(async () => {
    for await (
      const row of db.stream("SELECT g FROM generate_series(1, 100000) AS g", [], {
        batchSize: 10,
        signal: controller.signal,
      })
    ) {
      rows.push(row);
      if (rows.length === 25) controller.abort("enough");
    }
  }, isAbort("ABORTED", "enough"));
  assert.equal(rows.length, 30, "the batch already fetched is delivered, no more");
  // The pool's one connection is back, outside any transaction.
  assert.deepEqual(await db.queryOne("SELECT now() = statement_timestamp() AS fresh"), {
    fresh: true,
  });
});

Deno.test("a bad signal or timeout is refused with ValidationError", async () => {
  await using db = new AsyncDatabase(testUrl());
  await assert.rejects(() => db.execute("SELECT 1", [], { timeout: 0 }), ValidationError);
  await assert.rejects(() => db.execute("SELECT 1", [], { timeout: Number.NaN }), ValidationError);
  await assert.rejects(
    () => db.execute("SELECT 1", [], { signal: "stop" as unknown as AbortSignal }),
    ValidationError,
  );
  await assert.rejects(() => db.transaction(() => 1, { timeout: -5 }), ValidationError);
});

Deno.test("Database: timeout cancels a statement and a transaction; a signal is refused", async () => {
  const application = uniqueName("cancel_sync");
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  using db = new Database(testUrl(), { applicationName: application, maxConnections: 2 });
  const started = performance.now();
  assert.throws(() => db.execute("SELECT pg_sleep(10)", [], { timeout: 100 }), isAbort("57014"));
  assert.ok(performance.now() - started < 5000, "the timeout did not cut the statement short");
  assert.equal(await running(admin, application), 0);
  const table = uniqueName("cs");
  db.createTable(table, { id: "INT PRIMARY KEY" });
  let runs = 0;
  assert.throws(
    () =>
      db.transaction((t) => {
        runs++;
        t.insert(table, { id: 1 });
        t.execute("SELECT pg_sleep(10)");
      }, { timeout: 100 }),
    (error: unknown) => error instanceof DatabaseError && ["57014", "ABORTED"].includes(error.code),
  );
  assert.equal(runs, 1);
  assert.equal(db.count(table), 0);
  assert.throws(
    () => db.execute("SELECT 1", [], { signal: AbortSignal.abort() }),
    (error: unknown) => error instanceof ValidationError && error.field === "signal",
  );
  for (let i = 0; i < 20; i++) {
    assert.throws(() => db.execute("SELECT pg_sleep(5)", [], { timeout: 5 }), DatabaseError);
  }
  assert.deepEqual(db.execute("SELECT 1 AS one"), [{ one: 1 }]);
});
