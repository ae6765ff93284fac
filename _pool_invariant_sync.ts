// The sync half of `pool_invariant_test.ts`, run in a child process (a hang there blocks the
// thread, so the parent kills it and fails): every failure mode 20 times on a `Database` with a
// pool of 2, then a query and a look at the server. Prints one JSON line.
// Usage: DATABASE_URL=… deno run -A _pool_invariant_sync.ts <application_name>
import { Database } from "./database.ts";
import { Migration } from "./migration.ts";
import {
  FAILING_STREAM,
  failingStatements,
  REPEAT,
  SELF_TERMINATE,
  setupSql,
} from "./_pool_invariant_cases.ts";
import { uniqueName } from "./_test_util.ts";

const url = Deno.env.get("DATABASE_URL")!;
const application = Deno.args[0] ?? uniqueName("inv_sync");
const table = uniqueName("invs");

using admin = new Database(url, { minConnections: 1 });
admin.execute(setupSql(table));
using db = new Database(url, {
  maxConnections: 2,
  applicationName: application,
  retry: { maxRetries: 1, initialBackoff: 1, maxBackoff: 2 },
});
const dir = Deno.makeTempDirSync();
Deno.writeTextFileSync(
  `${dir}/V1__broken.sql`,
  `INSERT INTO ${table} (id, v) VALUES (2, 2);\nSELECT 1 / 0;\n`,
);
const migration = new Migration(db, { migrationsDir: dir, tableName: `${table}_migrations` });

const modes: [string, () => unknown][] = [];
for (const s of failingStatements(table)) {
  modes.push([`execute: ${s.name}`, () => db.execute(s.sql, s.params)]);
  modes.push([
    `queryOne in a transaction: ${s.name}`,
    () => db.transaction((tx) => tx.queryOne(s.sql, s.params)),
  ]);
  modes.push([`stream: ${s.name}`, () => [...db.stream(s.sql, s.params)]]);
}
modes.push(
  ["a lost connection", () => db.execute(SELF_TERMINATE)],
  ["a lost connection in a transaction", () => db.transaction((tx) => tx.execute(SELF_TERMINATE))],
  ["a callback that throws", () =>
    db.transaction((tx) => {
      tx.execute(`UPDATE ${table} SET v = v + 1 WHERE id = 1`);
      throw new Error("application error");
    })],
  ["a callback that swallows a server error", () =>
    db.transaction((tx) => {
      try {
        tx.execute("SELECT 1 / 0");
      } catch {
        // Swallowed: COMMIT then answers ROLLBACK.
      }
    })],
  ["a callback that swallows a serialization failure", () =>
    db.transaction((tx) => {
      try {
        tx.execute(`SELECT ${table}_conflict()`);
      } catch {
        // Swallowed: the runner still sees it.
      }
    })],
  [
    "a callback that returns a promise",
    () => db.transaction(() => Promise.resolve(1) as unknown as number),
  ],
  ["a stream that fails part-way", () => [...db.stream(FAILING_STREAM, [], { batchSize: 4 })]],
  ["a stream left by break", () => {
    for (const _ of db.stream("SELECT g FROM generate_series(1, 30) AS g", [], { batchSize: 4 })) {
      break;
    }
    throw new Error("left the loop");
  }],
  ["a stream left by a throw in the loop", () => {
    for (const _ of db.stream("SELECT g FROM generate_series(1, 30) AS g")) {
      throw new Error("application error");
    }
  }],
  ["a stream in a transaction that fails and is caught", () =>
    db.transaction((tx) => {
      try {
        for (const _ of tx.stream(FAILING_STREAM, [], { batchSize: 4 })) {
          // Drained until the server fails.
        }
      } catch {
        // Swallowed: COMMIT then answers ROLLBACK.
      }
    })],
  ["a stream in a transaction left unfinished", () =>
    db.transaction((tx) => {
      tx.stream("SELECT g FROM generate_series(1, 30) AS g", [], { batchSize: 4 }).next();
      throw new Error("application error");
    })],
  [
    "a batch insert failing in its second chunk",
    () => db.batchInsert(table, [{ id: 100, v: 1 }, { id: 1, v: 1 }], { chunkSize: 1 }),
  ],
  ["a failing migration", () => migration.migrate()],
);

const report: { name: string; failures: number; answered: boolean; total: number; inTx: number }[] =
  [];
try {
  for (const [name, run] of modes) {
    let failures = 0;
    for (let i = 0; i < REPEAT; i++) {
      try {
        run();
      } catch {
        failures++;
      }
    }
    const started = performance.now();
    const answered = db.execute<{ one: number }>("SELECT 1 AS one")[0]?.one === 1 &&
      performance.now() - started < 1000;
    const view = admin.queryOne<{ total: number; in_tx: number }>(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE state LIKE 'idle in transaction%')::int AS in_tx
         FROM pg_stat_activity WHERE application_name = $1`,
      [application],
    )!;
    report.push({ name, failures, answered, total: view.total, inTx: view.in_tx });
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
  admin.execute(`DROP TABLE IF EXISTS ${table}, ${table}_migrations, ${table}_migrations_lock;
    DROP FUNCTION IF EXISTS ${table}_conflict()`);
}
console.log(JSON.stringify({ modes: report }));
