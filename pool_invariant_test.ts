// The invariant behind the 08P01 leak (a reserved connection kept for ever after an error, until
// every call hung): no path leaves a reserved connection unreleased. Every failure mode the
// package can meet runs 20 times on a pool of 2, through every API it can take; after each one
// a query must answer within a second and the server must show no connection of the pool left
// in a transaction. The sync API runs in a child process, so that a hang fails the test.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { AsyncMigration } from "./async_migration.ts";
import {
  FAILING_STREAM,
  failingStatements,
  REPEAT,
  SELF_TERMINATE,
  setupSql,
} from "./_pool_invariant_cases.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

/** Rejects when `promise` takes longer than `ms`: a hang becomes a failure. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The connections of an application the server sees, and how many are in a transaction. */
async function serverView(
  admin: AsyncDatabase,
  application: string,
): Promise<{ total: number; inTransaction: number }> {
  const row = await admin.queryOne<{ total: number; in_tx: number }>(
    `SELECT count(*)::int AS total,
            count(*) FILTER (WHERE state LIKE 'idle in transaction%')::int AS in_tx
       FROM pg_stat_activity WHERE application_name = $1`,
    [application],
  );
  return { total: row!.total, inTransaction: row!.in_tx };
}

type Mode = readonly [name: string, run: () => Promise<unknown>];

Deno.test("AsyncDatabase: no failure mode leaves a pooled connection unreleased (20 runs each on a pool of 2)", async (t) => {
  const application = uniqueName("inv_async");
  const table = uniqueName("inv");
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  await admin.execute(setupSql(table));
  await using db = new AsyncDatabase(testUrl(), {
    maxConnections: 2,
    applicationName: application,
    retry: { maxRetries: 1, initialBackoff: 1, maxBackoff: 2 },
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/V1__broken.sql`,
      `INSERT INTO ${table} (id, v) VALUES (2, 2);\nSELECT 1 / 0;\n`,
    );
    const migration = new AsyncMigration(db, {
      migrationsDir: dir,
      tableName: `${table}_migrations`,
    });
    const modes: Mode[] = [];
    for (const s of failingStatements(table)) {
      modes.push([`execute: ${s.name}`, () => db.execute(s.sql, s.params)]);
      modes.push([
        `queryOne in a transaction: ${s.name}`,
        () => db.transaction((tx) => tx.queryOne(s.sql, s.params)),
      ]);
      modes.push([`stream: ${s.name}`, async () => {
        for await (const _ of db.stream(s.sql, s.params)) {
          // Drained.
        }
      }]);
    }
    modes.push(
      ["a lost connection", () => db.execute(SELF_TERMINATE)],
      [
        "a lost connection in a transaction",
        () => db.transaction((tx) => tx.execute(SELF_TERMINATE)),
      ],
      ["a callback that throws", () =>
        db.transaction(async (tx) => {
          await tx.execute(`UPDATE ${table} SET v = v + 1 WHERE id = 1`);
          throw new Error("application error");
        })],
      ["a callback that swallows a server error", () =>
        db.transaction(async (tx) => {
          await tx.execute("SELECT 1 / 0").catch(() => {});
          return "swallowed";
        })],
      ["a callback that swallows a serialization failure", () =>
        db.transaction(async (tx) => {
          await tx.execute(`SELECT ${table}_conflict()`).catch(() => {});
        })],
      ["a callback that leaves a statement unawaited and throws", () =>
        db.transaction((tx) => {
          tx.execute("SELECT pg_sleep(0.01)").catch(() => {});
          throw new Error("application error");
        })],
      ["a stream that fails part-way", async () => {
        for await (const _ of db.stream(FAILING_STREAM, [], { batchSize: 4 })) {
          // Drained until the server fails.
        }
      }],
      ["a stream left by break", async () => {
        for await (
          const _ of db.stream("SELECT g FROM generate_series(1, 30) AS g", [], {
            batchSize: 4,
          })
        ) break;
        throw new Error("left the loop");
      }],
      ["a stream left by a throw in the loop", async () => {
        for await (const _ of db.stream("SELECT g FROM generate_series(1, 30) AS g")) {
          throw new Error("application error");
        }
      }],
      ["a stream in a transaction that fails and is caught", () =>
        db.transaction(async (tx) => {
          try {
            for await (const _ of tx.stream(FAILING_STREAM, [], { batchSize: 4 })) {
              // Drained until the server fails.
            }
          } catch {
            // Swallowed: COMMIT then answers ROLLBACK.
          }
        })],
      ["a stream in a transaction left unfinished", () =>
        db.transaction(async (tx) => {
          const rows = tx.stream("SELECT g FROM generate_series(1, 30) AS g", [], {
            batchSize: 4,
          });
          await rows.next();
          throw new Error("application error");
        })],
      [
        "a batch insert failing in its second chunk",
        () => db.batchInsert(table, [{ id: 100, v: 1 }, { id: 1, v: 1 }], { chunkSize: 1 }),
      ],
      [
        "a batch update with a record lacking its key",
        () => db.batchUpdate(table, [{ id: 1, v: 2 }, { v: 3 }]),
      ],
      ["a failing migration", () => migration.migrate()],
    );
    for (const [name, run] of modes) {
      await t.step(name, async () => {
        for (let i = 0; i < REPEAT; i++) {
          const outcome = await within(
            run().then(() => undefined, (error) => error),
            15_000,
            `run ${i + 1}`,
          );
          assert.ok(outcome instanceof Error, `run ${i + 1} did not fail`);
        }
        assert.deepEqual(
          await within(db.execute("SELECT 1 AS one"), 1000, "a query after the failures"),
          [{ one: 1 }],
        );
        const view = await serverView(admin, application);
        assert.ok(view.total <= 2, `${view.total} connections`);
        assert.equal(view.inTransaction, 0, "a connection was left in a transaction");
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await admin.execute(
      `DROP TABLE IF EXISTS ${table}, ${table}_migrations, ${table}_migrations_lock;
      DROP FUNCTION IF EXISTS ${table}_conflict()`,
    );
  }
});

Deno.test("Database: no failure mode leaves a pooled connection unreleased (20 runs each on a pool of 2)", async () => {
  const application = uniqueName("inv_sync");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_pool_invariant_sync.ts", import.meta.url).pathname,
      application,
    ],
    env: { DATABASE_URL: testUrl() },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(240_000),
  });
  const { code, stdout, stderr } = await child.output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(
    code,
    0,
    `the sync run failed or hung:\n${out}\n${new TextDecoder().decode(stderr)}`,
  );
  const report = JSON.parse(out.trim().split("\n").at(-1)!) as {
    modes: { name: string; failures: number; answered: boolean; total: number; inTx: number }[];
  };
  assert.ok(report.modes.length >= 20, `${report.modes.length} modes`);
  for (const mode of report.modes) {
    assert.equal(mode.failures, 20, `${mode.name}: ${mode.failures} of 20 runs failed`);
    assert.ok(mode.answered, `${mode.name}: no answer within a second afterwards`);
    assert.ok(mode.total <= 2, `${mode.name}: ${mode.total} connections`);
    assert.equal(mode.inTx, 0, `${mode.name}: a connection was left in a transaction`);
  }
});
