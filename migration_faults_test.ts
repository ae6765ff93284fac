// Migrations under faults: a backend terminated inside a migration, before and during its
// COMMIT; a server restart in the middle of a run; and runners in three processes (async and
// sync) started together while one of them is killed. Every migration logs its version into a
// table without a key, so a migration applied twice would show; the tracking table and the log
// must agree. Single-fault basics (a failed migration, a killed runner's lease, two CLI runs at
// once) are in migration_errors_test.ts, async_migration_test.ts and cli/migrate_test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AsyncDatabase } from "./async_database.ts";
import { AsyncMigration } from "./async_migration.ts";
import { ConnectionError, DatabaseError, MigrationError } from "./errors.ts";
import { startTestDatabase } from "./testing.ts";
import { FaultProxy } from "./_test_proxy.ts";
import { armKiller, testUrl, uniqueName } from "./_test_util.ts";

interface Fixture {
  readonly db: AsyncDatabase;
  readonly url: string;
  /** A schema of its own. */
  readonly s: string;
  readonly dir: string;
  readonly tableName: string;
}

async function withFixture(
  fn: (f: Fixture) => Promise<void>,
  url = testUrl(),
): Promise<void> {
  await using db = new AsyncDatabase(url, { minConnections: 1, maxConnections: 4 });
  const s = uniqueName("mfault");
  const dir = await Deno.makeTempDir({ prefix: "migration_faults_" });
  await db.execute(`CREATE SCHEMA ${s}; CREATE TABLE ${s}.log (version INT NOT NULL)`);
  try {
    await fn({ db, url, s, dir, tableName: `${s}._migrations` });
  } finally {
    await db.execute(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await Deno.remove(dir, { recursive: true });
  }
}

/** `count` migrations, each creating a table and logging its version; `extra` adds SQL to one. */
async function writeMigrations(
  f: Fixture,
  count: number,
  extra: Record<number, string> = {},
): Promise<void> {
  for (let v = 1; v <= count; v++) {
    await Deno.writeTextFile(
      join(f.dir, `V${v}__step_${v}.sql`),
      `CREATE TABLE ${f.s}.t${v} (id INT);\n${
        extra[v] ?? ""
      }\nINSERT INTO ${f.s}.log VALUES (${v});\n`,
    );
  }
}

/** Versions logged, each with how many times; and the tracking table's versions. */
async function ledger(f: Fixture): Promise<{ logged: [number, number][]; tracked: number[] }> {
  const logged = await f.db.execute<{ version: number; n: bigint }>(
    `SELECT version, count(*) AS n FROM ${f.s}.log GROUP BY version ORDER BY version`,
  );
  const tracked = await f.db.execute<{ version: bigint }>(
    `SELECT version FROM ${f.tableName} ORDER BY version`,
  ).catch(() => []);
  return {
    logged: logged.map((r) => [r.version, Number(r.n)]),
    tracked: tracked.map((r) => Number(r.version)),
  };
}

/** Every version from 1 to `count` applied exactly once, and recorded. */
async function assertExactlyOnce(f: Fixture, count: number): Promise<void> {
  const versions = Array.from({ length: count }, (_, i) => i + 1);
  assert.deepEqual(await ledger(f), {
    logged: versions.map((v) => [v, 1]),
    tracked: versions,
  });
}

Deno.test("a migration whose backend is terminated before COMMIT is run again and recorded once", async () => {
  await withFixture(async (f) => {
    // V2 sleeps the first time only (a sequence, which the rollback does not undo, counts).
    await f.db.execute(`CREATE SEQUENCE ${f.s}.attempts`);
    await writeMigrations(f, 3, {
      2: `SELECT pg_sleep(CASE WHEN nextval('${f.s}.attempts') = 1 THEN 30 ELSE 0 END);`,
    });
    const application = uniqueName("migrator");
    await using db = new AsyncDatabase(f.url, { applicationName: application, minConnections: 1 });
    const killer = await armKiller(f.db, application, "%pg_sleep%");
    const result = await new AsyncMigration(db, { migrationsDir: f.dir, tableName: f.tableName })
      .migrate();
    await killer.struck;
    assert.deepEqual(result.migrations.map((m) => m.version), [1, 2, 3]);
    await assertExactlyOnce(f, 3);
    const attempts = await f.db.queryOne<{ n: bigint }>(
      `SELECT last_value AS n FROM ${f.s}.attempts`,
    );
    assert.equal(attempts?.n, 2n, "V2 ran twice: once cut off, once committed");
  });
});

/** Makes V2 insert into a table whose deferred trigger sleeps in the first COMMIT only. */
async function slowSecondCommit(f: Fixture): Promise<void> {
  await f.db.execute(`
    CREATE SEQUENCE ${f.s}.commits;
    CREATE TABLE ${f.s}.gate (id INT);
    CREATE FUNCTION ${f.s}.slow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('${f.s}.commits') = 1 THEN PERFORM pg_sleep(30); END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON ${f.s}.gate
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${f.s}.slow();
  `);
  await writeMigrations(f, 3, { 2: `INSERT INTO ${f.s}.gate VALUES (2);` });
}

Deno.test("a migration whose backend is terminated during COMMIT did not commit: the run applies it again, once", async () => {
  // The server ended the session before it answered COMMIT, which it does only before the
  // commit itself (docs/retry-safety.md): the runner runs the migration again.
  await withFixture(async (f) => {
    await slowSecondCommit(f);
    const application = uniqueName("migrator");
    await using db = new AsyncDatabase(f.url, { applicationName: application, minConnections: 1 });
    const killer = await armKiller(f.db, application, "COMMIT", "PgSleep");
    const result = await new AsyncMigration(db, { migrationsDir: f.dir, tableName: f.tableName })
      .migrate();
    await killer.struck;
    assert.deepEqual(result.migrations.map((m) => m.version), [1, 2, 3]);
    await assertExactlyOnce(f, 3);
    assert.deepEqual(await f.db.execute(`SELECT id FROM ${f.s}.gate`), [{ id: 2 }]);
  });
});

Deno.test("a migration whose connection is cut during COMMIT fails the run as ambiguous, applied and recorded together or not at all; the next run finishes once", async () => {
  await withFixture(async (f) => {
    await slowSecondCommit(f);
    const application = uniqueName("migrator");
    // A short lease: the next run need not wait long for the dead run's lock.
    const options = { migrationsDir: f.dir, tableName: f.tableName, leaseDuration: 1500 };
    {
      await using proxy = await FaultProxy.start(f.url);
      await using db = new AsyncDatabase(proxy.url(f.url), {
        applicationName: application,
        minConnections: 1,
      });
      // Once V2's COMMIT sleeps in the trigger, the connection is cut: no word from the server.
      const cut = (async () => {
        for (let i = 0; i < 4000; i++) {
          const sleeping = await f.db.queryOne(
            `SELECT pid FROM pg_stat_activity
              WHERE application_name = $1 AND query = 'COMMIT' AND wait_event = 'PgSleep'`,
            [application],
          );
          if (sleeping) {
            proxy.kill();
            // The orphaned backend would commit once it wakes: end it before it does.
            await f.db.execute("SELECT pg_terminate_backend($1)", [sleeping.pid]);
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        throw new Error("no COMMIT slept");
      })();
      const error = await new AsyncMigration(db, options).migrate().then(
        () => assert.fail("the cut-off COMMIT must fail the run"),
        (e: unknown) => e,
      );
      await cut;
      assert.ok(error instanceof DatabaseError, Deno.inspect(error));
      // Its fate is unknown to the runner, which says so rather than retry it.
      assert.match(
        `${error.name} ${error.message} ${(error.cause as Error)?.name}`,
        /Ambiguous|commit/i,
      );
      if (error instanceof MigrationError) assert.equal(error.version, 2);
      // The migration and its row went together: both or neither.
      const { logged, tracked } = await ledger(f);
      assert.deepEqual(logged.map(([v]) => v), tracked);
      assert.ok(tracked.includes(1) && !tracked.includes(3));
    }
    // The next run (whose lock waits for the dead run's lease, if it was left) finishes once.
    await new AsyncMigration(f.db, { ...options, lockTimeout: 60_000 }).migrate();
    await assertExactlyOnce(f, 3);
    assert.deepEqual(await f.db.execute(`SELECT id FROM ${f.s}.gate`), [{ id: 2 }]);
  });
});

Deno.test("a server restart in the middle of migrate(): the run rides it out (its transactions reconnect) or fails with a typed error; the next run completes, each migration once", async () => {
  await using server = await startTestDatabase({ ownServer: true });
  await withFixture(async (f) => {
    const count = 12;
    const extra: Record<number, string> = {};
    for (let v = 1; v <= count; v++) extra[v] = "SELECT pg_sleep(0.02);";
    await writeMigrations(f, count, extra);
    const options = { migrationsDir: f.dir, tableName: f.tableName, leaseDuration: 1500 };
    await using db = new AsyncDatabase(f.url, { minConnections: 1, connectTimeout: 10 });
    let restarted: Promise<void> | undefined;
    const first = await new AsyncMigration(db, options).migrate({
      onProgress: (event) => {
        if (event.type === "start" && event.version === 5) restarted ??= server.restart();
      },
    }).then((result) => result, (error: unknown) => error);
    assert.ok(restarted !== undefined, "the run never reached version 5");
    await restarted;
    // A migration's transaction that loses its connection runs again once the server takes
    // connections; the record of each migration checks the lease in the same transaction, so
    // riding out the restart is safe. A statement cut while it ran, or a COMMIT cut in flight,
    // ends the run instead, with a typed error.
    const failed = first instanceof ConnectionError || first instanceof MigrationError
      ? first
      : undefined;
    assert.ok(
      failed !== undefined || !(first instanceof Error),
      `the run failed with an untyped error: ${Deno.inspect(first)}`,
    );
    // Whatever the first run did, the tracking table and the log agree, and the next run
    // (after the dead run's lease, if it was left) applies the rest once.
    const { logged, tracked } = await ledger(f);
    assert.deepEqual(logged.map(([v]) => v), tracked);
    assert.ok(logged.every(([, n]) => n === 1));
    const second = await new AsyncMigration(db, { ...options, lockTimeout: 60_000 }).migrate();
    console.log(
      `restart during migrate(): first run ${
        failed ? `${failed.name} ${failed.code}` : "finished"
      } after ${tracked.length} migrations, the next run applied ${second.applied}`,
    );
    if (failed === undefined) assert.equal(second.applied, 0);
    assert.equal(tracked.length + second.applied, count);
    await assertExactlyOnce(f, count);
  }, server.url);
});

Deno.test("three runner processes (async, async, sync) started together, one killed mid-run: every migration once, the others finish", async () => {
  await withFixture(async (f) => {
    const count = 15;
    const extra: Record<number, string> = {};
    for (let v = 1; v <= count; v++) extra[v] = "SELECT pg_sleep(0.03);";
    await writeMigrations(f, count, extra);
    const script = join(f.dir, "runner.ts");
    await Deno.writeTextFile(
      script,
      `import { AsyncDatabase } from ${
        JSON.stringify(new URL("./async_database.ts", import.meta.url).href)
      };
import { AsyncMigration } from ${
        JSON.stringify(new URL("./async_migration.ts", import.meta.url).href)
      };
import { Database } from ${JSON.stringify(new URL("./database.ts", import.meta.url).href)};
import { Migration } from ${JSON.stringify(new URL("./migration.ts", import.meta.url).href)};
const [kind, url, dir, tableName] = Deno.args;
const options = { migrationsDir: dir, tableName, leaseDuration: 1500, lockTimeout: 60_000 };
const onProgress = (e) => { if (e.type === "start") console.log("start", e.version); };
if (kind === "sync") {
  using db = new Database(url, { minConnections: 1 });
  const result = new Migration(db, options).migrate({ onProgress });
  console.log("applied", result.applied);
} else {
  await using db = new AsyncDatabase(url, { minConnections: 1 });
  const result = await new AsyncMigration(db, options).migrate({ onProgress });
  console.log("applied", result.applied);
}
`,
    );
    const spawn = (kind: string) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          new URL("./deno.json", import.meta.url).pathname,
          script,
          kind,
          f.url,
          f.dir,
          f.tableName,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    const runners = [spawn("async"), spawn("async"), spawn("sync")];
    const outputs = runners.map(() => "");
    const readers = runners.map(async (runner, i) => {
      for await (const chunk of runner.stdout.pipeThrough(new TextDecoderStream())) {
        outputs[i] += chunk;
      }
    });
    // Kill whichever runner reaches the third migration it runs, while it holds the lock.
    let victim = -1;
    for (let waited = 0; victim === -1 && waited < 60_000; waited += 10) {
      victim = outputs.findIndex((out) => (out.match(/^start /gm) ?? []).length >= 3);
      if (victim === -1) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.notEqual(victim, -1, `no runner got going: ${Deno.inspect(outputs)}`);
    const killed = runners[victim];
    assert.ok(killed);
    killed.kill("SIGKILL");
    const statuses = await Promise.all(runners.map((r) => r.status));
    await Promise.all(readers);
    const errors = await Promise.all(
      runners.map((r) => new Response(r.stderr).text()),
    );
    statuses.forEach((status, i) => {
      if (i === victim) return;
      assert.equal(status.code, 0, `runner ${i}: ${outputs[i]}\n${errors[i]}`);
    });
    // The victim died mid-run, holding the lock: the others waited out its lease.
    assert.equal(statuses[victim]?.signal, "SIGKILL");
    const output = outputs[victim];
    assert.ok(output !== undefined);
    assert.doesNotMatch(output, /applied/);
    // The survivors applied what the victim had not committed; all told, each migration once.
    const applied = outputs
      .filter((_, i) => i !== victim)
      .map((out) => Number(/applied (\d+)/.exec(out)?.[1] ?? "NaN"));
    const { tracked } = await ledger(f);
    assert.ok(applied.every(Number.isInteger), Deno.inspect(outputs));
    const survivors = applied.reduce((a, b) => a + b);
    assert.ok(survivors > 0 && survivors <= count, Deno.inspect(outputs));
    console.log(
      `runner ${victim} (${["async", "async", "sync"][victim]}) killed; the others applied ${
        applied.join(" and ")
      } of ${count}`,
    );
    assert.equal(tracked.length, count);
    await assertExactlyOnce(f, count);
  });
});
