// What a database tells about its work without OpenTelemetry: the onQuery hook (with parameters
// only when asked), and stats(). OpenTelemetry's spans and metrics: telemetry_test.ts.
import assert from "node:assert/strict";
import {
  AsyncDatabase,
  Database,
  type PoolStats,
  type QueryEvent,
  UniqueViolationError,
} from "./mod.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

/** A function failing with 40001 for its first `failures` calls (a sequence counts them). */
async function flaky(admin: AsyncDatabase, failures: number): Promise<string> {
  const name = uniqueName("obs_flaky");
  await admin.execute(`CREATE SEQUENCE ${name}_calls;
    CREATE FUNCTION ${name}() RETURNS int LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('${name}_calls') <= ${failures} THEN
          RAISE EXCEPTION 'conflict' USING ERRCODE = '40001';
        END IF;
        RETURN 1;
      END $$`);
  return name;
}

function port(): string {
  return new URL(testUrl().replace(/^postgres(ql)?:/, "http:")).port;
}

Deno.test("onQuery hears every statement: text, duration, rows, count, host, error, retry; parameters only with logParameters", async () => {
  const events: QueryEvent[] = [];
  await using db = new AsyncDatabase(testUrl(), {
    minConnections: 1,
    onQuery: (e) => events.push(e),
    retry: { initialBackoff: 1, maxBackoff: 2 },
  });
  const table = uniqueName("obs");
  await db.createTable(table, { id: "INT PRIMARY KEY", email: "TEXT" });
  events.length = 0;
  await db.insert(table, { id: 1, email: "ada@example.com" });
  await db.execute(`SELECT * FROM ${table} WHERE id = $1`, [1]);
  await assert.rejects(() => db.insert(table, { id: 1, email: "again" }), UniqueViolationError);
  const [insert, select, failed] = events;
  assert.equal(events.length, 3);
  assert.match(insert!.text, /^INSERT INTO/);
  assert.equal(insert!.operation, "INSERT");
  assert.equal(insert!.collection, table);
  assert.equal(insert!.rowCount, 1);
  assert.equal(insert!.count, 1);
  assert.equal(insert!.retry, false);
  assert.equal(insert!.params, undefined, "parameters without logParameters");
  assert.equal(select!.text, `SELECT * FROM ${table} WHERE id = $1`);
  assert.equal(select!.rowCount, 1);
  assert.ok(select!.durationMs >= 0 && Number.isFinite(select!.durationMs));
  assert.match(select!.host ?? "", new RegExp(`:${port()}$`));
  assert.ok(failed!.error instanceof UniqueViolationError);
  assert.equal(failed!.rowCount, undefined);
  assert.doesNotMatch(JSON.stringify(events), /ada@example\.com/);

  // A transaction retried on 40001: the statements of the second attempt are retries; so is a
  // single statement the pool sent again.
  const fn = await flaky(db, 1);
  events.length = 0;
  await db.transaction((tx) => tx.execute(`SELECT ${fn}()`));
  const calls = events.filter((e) => e.text.includes(fn));
  assert.deepEqual(calls.map((e) => [e.retry, e.error === undefined]), [[false, false], [
    true,
    true,
  ]]);
  const again = await flaky(db, 1);
  events.length = 0;
  await db.execute(`SELECT ${again}()`);
  assert.deepEqual(events.map((e) => e.retry), [true]);

  await using logged = new AsyncDatabase(testUrl(), {
    minConnections: 1,
    logParameters: true,
    onQuery: (e) => events.push(e),
  });
  events.length = 0;
  await logged.execute("SELECT $1::text AS v", ["shown"]);
  assert.deepEqual(events[0]!.params, ["shown"]);
});

Deno.test("Database: onQuery runs on the calling thread before the call returns", () => {
  const events: QueryEvent[] = [];
  using db = new Database(testUrl(), { onQuery: (e) => events.push(e) });
  events.length = 0;
  db.execute("SELECT $1::int AS n", [7]);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.text, "SELECT $1::int AS n");
  assert.equal(events[0]!.rowCount, 1);
  db.transaction((tx) => tx.execute("SELECT 2"));
  assert.deepEqual(events.slice(1).map((e) => e.text), ["BEGIN", "SELECT 2", "COMMIT"]);
});

async function eventually(
  what: string,
  read: () => PoolStats,
  test: (s: PoolStats) => boolean,
): Promise<PoolStats> {
  for (let i = 0; i < 400; i++) {
    const stats = read();
    if (test(stats)) return stats;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`${what}: ${Deno.inspect(read())}`);
}

Deno.test("stats() counts connections idle, used and waiting, opened and closed, and retries by SQLSTATE", async () => {
  const application = uniqueName("stats");
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  await using db = new AsyncDatabase(testUrl(), {
    applicationName: application,
    minConnections: 1,
    maxConnections: 2,
    retry: { initialBackoff: 1, maxBackoff: 2 },
  });
  assert.deepEqual(db.stats(), {
    total: 0,
    idle: 0,
    used: 0,
    pending: 0,
    opened: 0,
    closed: 0,
    retries: {},
  });
  await Promise.all([db.execute("SELECT pg_sleep(0.05)"), db.execute("SELECT pg_sleep(0.05)")]);
  const warm = db.stats();
  assert.equal(warm.total, 2);
  assert.equal(warm.idle, 2);
  assert.equal(warm.opened, 2);
  // Two transactions hold both connections; a statement waits.
  let finish = () => {};
  const held = new Promise<void>((resolve) => finish = resolve);
  const holding = [1, 2].map(() =>
    db.transaction(async (tx) => {
      await tx.execute("SELECT 1");
      await held;
    })
  );
  await eventually("two used", () => db.stats(), (s) => s.used === 2);
  const waiting = db.execute("SELECT 1");
  const busy = await eventually("one waiting", () => db.stats(), (s) => s.pending === 1);
  assert.equal(busy.idle, 0);
  assert.equal(busy.used, 2);
  finish();
  await Promise.all([...holding, waiting]);
  // Retries: a transaction and a statement, each failing once with 40001.
  const fn = await flaky(admin, 2);
  await db.transaction((tx) => tx.execute(`SELECT ${fn}()`));
  await db.execute(`SELECT ${fn}()`);
  assert.deepEqual(db.stats().retries, { "40001": 2 });
  // Connections the server ended are counted closed.
  await admin.execute(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    [application],
  );
  const ended = await eventually("two closed", () => db.stats(), (s) => s.closed === 2);
  assert.equal(ended.total, 0);
});

Deno.test("Database: stats() from the worker, with this thread's transaction retries", async () => {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  const fn = await flaky(admin, 1);
  using db = new Database(testUrl(), {
    minConnections: 1,
    retry: { initialBackoff: 1, maxBackoff: 2 },
  });
  db.transaction((tx) => tx.execute(`SELECT ${fn}()`));
  const stats = db.stats();
  assert.ok(stats.total >= 1, Deno.inspect(stats));
  assert.ok(stats.opened >= 1);
  assert.deepEqual(stats.retries, { "40001": 1 });
});
