// Migrations with AsyncMigration, on the sample files of examples/migrations/: status, a dry
// run, applying with progress, rolling back, history. It starts a throwaway PostgreSQL
// server (serializable, like CockroachDB) and removes it at the end; with TEST_DATABASE_URL set
// it uses a fresh database on that server, dropped at the end.
//
// Usage: deno run -A examples/migrations.ts
import { AsyncDatabase } from "../mod.ts";
import { AsyncMigration, type MigrationProgress } from "../async_migration.ts";
import { startTestDatabase } from "../testing.ts";

function step(title: string): void {
  if (Deno.noColor) console.log(`\n== ${title}`);
  else console.log(`\n%c== ${title}`, "color: cyan; font-weight: bold");
}

function onProgress(event: MigrationProgress): void {
  if (event.type === "done") {
    console.log(`  ${event.direction} V${event.version} ${event.name}: ${event.durationMs} ms`);
  } else if (event.type === "waiting") {
    console.log(`  waiting for the lock held by ${event.owner}`);
  }
}

await using server = await startTestDatabase();
const name = `migrations_example_${Date.now().toString(36)}`;
await using admin = new AsyncDatabase(server.url, { minConnections: 1 });
await admin.createDatabase(name);
const url = new URL(server.url);
url.pathname = `/${name}`;
try {
  await using db = new AsyncDatabase(url.href, { minConnections: 1 });
  // A file: URL finds the directory next to this module, whatever the current directory.
  const migrations = new AsyncMigration(db, {
    migrationsDir: new URL("./migrations", import.meta.url),
  });

  step("The files");
  for (const m of await migrations.loadMigrations()) {
    console.log(
      `V${m.version} ${m.name}${m.noTransaction ? " (no transaction)" : ""}${
        m.downSql === null ? "" : `, reverts with ${m.downPath ? "a U file" : "-- DOWN"}`
      }`,
    );
  }

  step("Dry run: what would run, changing nothing");
  const plan = await migrations.migrate({ dryRun: true });
  console.log(`would apply ${plan.applied}: version ${plan.fromVersion} → ${plan.toVersion}`);

  step("Apply everything");
  const up = await migrations.migrate({ onProgress });
  console.log(`applied ${up.applied}, now at version ${up.toVersion}`);
  console.log(await db.execute("SELECT owner, balance, email FROM accounts ORDER BY owner"));

  step("Status");
  for (const s of await migrations.status()) {
    console.log(`${s.state.padEnd(8)} V${s.version} ${s.name}`);
  }

  step("Roll back to version 2, then forward again");
  const down = await migrations.migrate({ targetVersion: 2, onProgress });
  console.log(`reverted ${down.applied}, now at version ${down.toVersion}`);
  await migrations.migrate({ onProgress });

  step("History");
  for (const h of await migrations.getMigrationHistory()) {
    console.log(`${h.appliedAt.toISOString()} V${h.version} ${h.name} (${h.durationMs} ms)`);
  }

  step("Revert everything");
  await migrations.rollback({ targetVersion: 0, onProgress });
  console.log(`current version: ${await migrations.getCurrentVersion()}`);
} finally {
  await admin.dropDatabase(name);
}
