// AsyncMigration on its own: several runners in one process at once, the background lease
// renewal, and argument checks. The behaviours shared with the sync runner are in
// migration_test.ts, migration_status_test.ts, migration_errors_test.ts and
// migration_lock_test.ts; runners in separate processes are in cli/migrate_test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AsyncDatabase } from "./async_database.ts";
import { AsyncMigration, type MigrationProgress } from "./async_migration.ts";
import { MigrationError, ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

interface Fixture {
  readonly db: AsyncDatabase;
  readonly s: string;
  readonly dir: string;
  readonly tableName: string;
}

async function withFixture(fn: (f: Fixture) => Promise<void>): Promise<void> {
  await using db = new AsyncDatabase(testUrl(), { minConnections: 1 });
  const s = uniqueName("amig");
  const dir = await Deno.makeTempDir({ prefix: "migrations_" });
  await db.execute(`CREATE SCHEMA ${s}`);
  try {
    await fn({ db, s, dir, tableName: `${s}._migrations` });
  } finally {
    await db.execute(`DROP SCHEMA ${s} CASCADE`);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Migrations that each log their version once into `log` (no key: a second run would show). */
async function writeLoggingMigrations(dir: string, s: string, count: number): Promise<void> {
  await Deno.writeTextFile(
    join(dir, "V1__log.sql"),
    `CREATE TABLE ${s}.log (version INT NOT NULL);\nINSERT INTO ${s}.log VALUES (1);\n-- DOWN\nDROP TABLE ${s}.log;\n`,
  );
  for (let v = 2; v <= count; v++) {
    await Deno.writeTextFile(
      join(dir, `V${v}__step_${v}.sql`),
      `CREATE TABLE ${s}.t${v} (id INT);\nINSERT INTO ${s}.log VALUES (${v});\n`,
    );
  }
}

async function logCounts(db: AsyncDatabase, s: string): Promise<Map<number, number>> {
  const rows = await db.execute<{ version: number; n: bigint }>(
    `SELECT version, count(*) AS n FROM ${s}.log GROUP BY version ORDER BY version`,
  );
  return new Map(rows.map((r) => [r.version, Number(r.n)]));
}

Deno.test("AsyncMigration: four runners started together apply each migration exactly once", async () => {
  await withFixture(async ({ db, s, dir, tableName }) => {
    await writeLoggingMigrations(dir, s, 12);
    const runners = Array.from(
      { length: 4 },
      () => new AsyncMigration(db, { migrationsDir: dir, tableName, lockTimeout: 30_000 }),
    );
    const results = await Promise.all(runners.map((m) => m.migrate()));
    assert.equal(results.reduce((sum, r) => sum + r.applied, 0), 12);
    assert.ok(results.every((r) => r.toVersion === 12));
    assert.deepEqual([...(await logCounts(db, s)).values()], Array(12).fill(1));
    assert.deepEqual(
      await runners[3]?.getAppliedVersions(),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
  });
});

Deno.test("AsyncMigration: two runs of one runner at once apply each migration exactly once", async () => {
  await withFixture(async ({ db, s, dir, tableName }) => {
    await writeLoggingMigrations(dir, s, 5);
    const m = new AsyncMigration(db, { migrationsDir: dir, tableName });
    const [a, b] = await Promise.all([m.migrate(), m.migrate()]);
    assert.equal(a.applied + b.applied, 5);
    assert.deepEqual([...(await logCounts(db, s)).values()], Array(5).fill(1));
  });
});

Deno.test("AsyncMigration: two runners on two pools at once apply each migration exactly once", async () => {
  await withFixture(async ({ db, s, dir, tableName }) => {
    await writeLoggingMigrations(dir, s, 6);
    await using other = new AsyncDatabase(testUrl(), { minConnections: 1 });
    const waits: MigrationProgress[] = [];
    const onProgress = (e: MigrationProgress) => e.type === "waiting" && waits.push(e);
    const [a, b] = await Promise.all([
      new AsyncMigration(db, { migrationsDir: dir, tableName }).migrate({ onProgress }),
      new AsyncMigration(other, { migrationsDir: dir, tableName }).migrate({ onProgress }),
    ]);
    assert.equal(a.applied + b.applied, 6);
    assert.deepEqual([...(await logCounts(db, s)).values()], Array(6).fill(1));
  });
});

Deno.test("AsyncMigration: a migration longer than the lease keeps the lock through background renewal", async () => {
  await withFixture(async ({ db, s, dir, tableName }) => {
    await Deno.writeTextFile(
      join(dir, "V1__slow.sql"),
      `CREATE TABLE ${s}.log (version INT);\nSELECT pg_sleep(1.2);\nINSERT INTO ${s}.log VALUES (1);\n`,
    );
    const options = { migrationsDir: dir, tableName, leaseDuration: 300, lockTimeout: 20_000 };
    const first = new AsyncMigration(db, options);
    const second = new AsyncMigration(db, options);
    await first.initialize();
    const waited: MigrationProgress[] = [];
    const running = first.migrate({
      onProgress: (e) => {
        // Start the second runner once the first holds the lock and is inside the migration.
        if (e.type === "start") {
          later = second.migrate({ onProgress: (w) => waited.push(w) });
        }
      },
    });
    let later: Promise<unknown> | undefined;
    const a = await running;
    const b = await later;
    assert.equal(a.applied, 1);
    assert.equal((b as { applied: number }).applied, 0);
    assert.equal(waited[0]?.type, "waiting");
    assert.deepEqual([...(await logCounts(db, s)).entries()], [[1, 1]]);
  });
});

Deno.test("AsyncMigration.initialize() survives many runners creating the tables at once", async () => {
  await withFixture(async ({ db, dir, tableName }) => {
    const runners = Array.from(
      { length: 6 },
      () => new AsyncMigration(db, { migrationsDir: dir, tableName }),
    );
    await Promise.all(runners.map((m) => m.initialize()));
    assert.equal(await db.tableExists(tableName), true);
    assert.equal(await db.tableExists(`${tableName}_lock`), true);
  });
});

Deno.test("AsyncMigration honours a custom lock table name", async () => {
  await withFixture(async ({ db, s, dir, tableName }) => {
    const m = new AsyncMigration(db, {
      migrationsDir: dir,
      tableName,
      lockTableName: `${s}.my_lock`,
    });
    assert.equal(m.lockTableName, `${s}.my_lock`);
    await m.initialize();
    assert.equal(await db.tableExists(`${s}.my_lock`), true);
    assert.equal(await db.tableExists(`${tableName}_lock`), false);
  });
});

Deno.test("AsyncMigration checks its arguments", async () => {
  await using db = new AsyncDatabase(testUrl(), { minConnections: 1 });
  assert.throws(() => new AsyncMigration({} as AsyncDatabase), TypeError);
  assert.throws(() => new AsyncMigration(db, { tableName: "a\0b" }), ValidationError);
  assert.throws(() => new AsyncMigration(db, { lockTimeout: Number.NaN }), RangeError);
  const dir = await Deno.makeTempDir();
  try {
    const m = new AsyncMigration(db, { migrationsDir: dir, tableName: uniqueName("never") });
    assert.equal(m.migrationsDir, dir);
    await assert.rejects(m.createMigration("../escape", "SELECT 1"), TypeError);
    await assert.rejects(m.createMigration("ok", 42 as unknown as string), TypeError);
    await assert.rejects(m.migrate({ targetVersion: -1, dryRun: true }), RangeError);
    await assert.rejects(m.rollback({ count: 1, targetVersion: 0, dryRun: true }), TypeError);
    await Deno.writeTextFile(join(dir, "V1__a.sql"), "SELECT 1");
    await Deno.writeTextFile(join(dir, "V1__b.sql"), "SELECT 1");
    await assert.rejects(m.loadMigrations(), MigrationError);
    // Nothing above reached the server: no tracking table was created.
    assert.equal(await db.tableExists(m.tableName), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AsyncMigration: a runner killed while holding the lock blocks others only until its lease ends", async () => {
  await withFixture(async ({ db, s, dir, tableName }) => {
    // The victim's own connection sleeps in V1; anyone else's passes straight through.
    await Deno.writeTextFile(
      join(dir, "V1__slow_for_victim.sql"),
      `SELECT pg_sleep(CASE WHEN current_setting('application_name') = 'victim' THEN 5 ELSE 0 END);\n`,
    );
    await Deno.writeTextFile(join(dir, "V2__after.sql"), `CREATE TABLE ${s}.after (id INT);\n`);
    const script = join(dir, "victim.ts");
    await Deno.writeTextFile(
      script,
      `import { AsyncDatabase } from ${
        JSON.stringify(new URL("./async_database.ts", import.meta.url).href)
      };
import { AsyncMigration } from ${
        JSON.stringify(new URL("./async_migration.ts", import.meta.url).href)
      };
const db = new AsyncDatabase(${
        JSON.stringify(testUrl())
      }, { applicationName: "victim", minConnections: 1 });
await new AsyncMigration(db, { migrationsDir: ${JSON.stringify(dir)}, tableName: ${
        JSON.stringify(tableName)
      }, leaseDuration: 1500 })
  .migrate({ onProgress: (e) => e.type === "start" && console.log("started", e.version) });
`,
    );
    const victim = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", new URL("./deno.json", import.meta.url).pathname, script],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // Wait until it holds the lock and is inside V1, then kill it without a chance to clean up.
    const reader = victim.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("started 1")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /started 1/);
    victim.kill("SIGKILL");
    await victim.status;
    await reader.cancel();

    const options = { migrationsDir: dir, tableName };
    // Its lease (1.5 s, renewed every 0.5 s) has at least a second to run: others are held off…
    await assert.rejects(
      new AsyncMigration(db, { ...options, lockTimeout: 0 }).migrate(),
      (e: unknown) => e instanceof MigrationError && e.code === "MIGRATION_LOCKED",
    );
    // …until it ends, without anyone calling unlock().
    const result = await new AsyncMigration(db, { ...options, lockTimeout: 20_000 }).migrate();
    assert.deepEqual(result.migrations.map((r) => r.version), [1, 2]);
    assert.equal(await db.tableExists(`${s}.after`), true);
  });
});
