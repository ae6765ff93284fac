// Migration files and the runs that apply and revert them, each through both runners (see
// _test_migration.ts): createMigration() and loadMigrations(), the migrations directory (missing,
// a file: URL, relative), migrate() with and without a target, the tracking table, rollback(),
// U files. Reporting and dry runs are in migration_status_test.ts; failed and refused runs in
// migration_errors_test.ts; the lock in migration_lock_test.ts.
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { ValidationError } from "./errors.ts";
import { rejects, scenario } from "./_test_migration.ts";

Deno.test("createMigration() writes V1__<name>.sql with the up SQL, -- DOWN and the down SQL", async (t) => {
  await scenario(t, async ({ m, dir }) => {
    const path = await m.createMigration(
      "create test table",
      "CREATE TABLE t (id INT)",
      "DROP TABLE t",
    );
    assert.equal(path, join(dir, "V1__create_test_table.sql"));
    assert.equal(
      await Deno.readTextFile(path),
      "CREATE TABLE t (id INT)\n\n-- DOWN\nDROP TABLE t\n",
    );
    const second = await m.createMigration("no_down", "SELECT 1");
    assert.equal(second, join(dir, "V2__no_down.sql"));
    assert.equal(await Deno.readTextFile(second), "SELECT 1\n");
  });
});

Deno.test("createMigration() numbers after the highest of the files and the applied rows", async (t) => {
  await scenario(t, async ({ m, s, dir }) => {
    await m.createMigration("one", `CREATE TABLE ${s}.one (id INT)`, `DROP TABLE ${s}.one`);
    await m.createMigration("two", `CREATE TABLE ${s}.two (id INT)`, `DROP TABLE ${s}.two`);
    await m.migrate();
    await Deno.remove(join(dir, "V2__two.sql"));
    assert.equal(await m.createMigration("three", "SELECT 3"), join(dir, "V3__three.sql"));
  });
});

Deno.test("loadMigrations() returns the files in version order and ignores other names", async (t) => {
  await scenario(t, async ({ m, write }) => {
    for (const name of ["first", "second", "third"]) {
      await m.createMigration(name, "SELECT 1", "SELECT 2");
    }
    await write("invalid_migration.sql", "SELECT 1");
    await write("Vx__invalid_version.sql", "SELECT 1");
    await write("U2__undo_second.txt", "SELECT 1");
    const loaded = await m.loadMigrations();
    assert.deepEqual(loaded.map((f) => [f.version, f.name]), [[1, "first"], [2, "second"], [
      3,
      "third",
    ]]);
    const [first] = loaded;
    assert.ok(first);
    assert.deepEqual(Object.keys(first).sort(), [
      "checksum",
      "downPath",
      "downSql",
      "name",
      "noTransaction",
      "path",
      "upSql",
      "version",
    ]);
    assert.equal(first.upSql, "SELECT 1");
    assert.equal(first.downSql, "SELECT 2");
  });
});

Deno.test("a missing migrations directory is a MigrationError naming it for every method that reads it", async (t) => {
  await scenario(t, async ({ open, exists, dir }) => {
    const missing = join(dir, "does", "not", "exist");
    // As given relative to the current directory, the message also names the absolute path.
    const given = relative(Deno.cwd(), missing);
    for (
      const [migrationsDir, named] of [[missing, `"${missing}": no such directory;`], [
        given,
        `"${given}": no such directory ("${missing}", resolved against the current directory);`,
      ]]
    ) {
      const m = open({ migrationsDir });
      const calls: [string, () => Promise<unknown>][] = [
        ["loadMigrations", () => m.loadMigrations()],
        ["migrate", () => m.migrate()],
        ["migrate dry run", () => m.migrate({ dryRun: true })],
        ["rollback", () => m.rollback()],
        ["rollback dry run", () => m.rollback({ dryRun: true })],
        ["status", () => m.status()],
        ["pending", () => m.pending()],
        ["verify", () => m.verify()],
      ];
      for (const [what, call] of calls) {
        await rejects(call(), (e) => {
          assert.equal(e.code, "MIGRATION_DIRECTORY_NOT_FOUND", what);
          assert.equal(e.path, missing, what);
          assert.equal(
            e.message,
            `Cannot load migrations from ${named} check migrationsDir, or make the directory (createMigration() makes it with its first file)`,
            what,
          );
        });
      }
      // These read only the tracking table, which does not exist yet: nothing applied.
      assert.deepEqual(await m.getAppliedVersions(), []);
      assert.equal(await m.getCurrentVersion(), 0);
      assert.deepEqual(await m.getMigrationHistory(), []);
      assert.equal(await m.unlock(), false);
    }
    assert.equal(await exists("_migrations"), false);
    assert.equal(await exists("_migrations_lock"), false);
    const m = open({ migrationsDir: missing });
    assert.equal(await m.createMigration("first", "SELECT 1"), join(missing, "V1__first.sql"));
    assert.deepEqual((await m.status()).map((x) => x.state), ["pending"]);
  });
});

Deno.test("migrationsDir takes a file: URL or a path relative to the current directory", async (t) => {
  await scenario(t, async ({ open, exists, dir, s }) => {
    const byUrl = open({ migrationsDir: pathToFileURL(dir) });
    assert.equal(byUrl.migrationsDir, dir);
    const path = await byUrl.createMigration("a", `CREATE TABLE ${s}.a (id INT)`);
    assert.equal(path, join(dir, "V1__a.sql"));
    assert.equal((await byUrl.migrate()).applied, 1);
    assert.equal(await exists("a"), true);
    const byRelativePath = open({ migrationsDir: relative(Deno.cwd(), dir) });
    assert.deepEqual((await byRelativePath.status()).map((x) => [x.version, x.state]), [[
      1,
      "applied",
    ]]);
    for (const url of ["https://example.com/migrations", "data:text/plain,V1__a.sql"]) {
      assert.throws(
        () => open({ migrationsDir: new URL(url) }),
        (e: unknown) =>
          e instanceof ValidationError && e.field === "migrationsDir" &&
          e.message === `Cannot use migrationsDir "${url}": only a file: URL names a directory`,
      );
    }
  });
});

Deno.test("migrate() applies pending migrations, each once, and reports each one", async (t) => {
  await scenario(t, async ({ m, s, db, exists, columns }) => {
    await m.createMigration(
      "create users",
      `CREATE TABLE ${s}.users (id INT PRIMARY KEY, name TEXT)`,
      `DROP TABLE ${s}.users`,
    );
    await m.createMigration(
      "add email",
      `ALTER TABLE ${s}.users ADD COLUMN email TEXT`,
      `ALTER TABLE ${s}.users DROP COLUMN email`,
    );
    const events: string[] = [];
    const result = await m.migrate({
      onProgress: (e) => events.push(`${e.type} ${"version" in e ? e.version : ""}`),
    });
    assert.equal(result.applied, 2);
    assert.equal(result.direction, "up");
    assert.equal(result.fromVersion, 0);
    assert.equal(result.toVersion, 2);
    assert.equal(result.dryRun, false);
    assert.deepEqual(result.migrations.map((r) => [r.version, r.name, r.direction]), [
      [1, "create_users", "up"],
      [2, "add_email", "up"],
    ]);
    assert.ok(result.migrations.every((r) => Number.isInteger(r.durationMs) && r.durationMs >= 0));
    assert.deepEqual(events, ["start 1", "done 1", "start 2", "done 2"]);
    assert.equal(await exists("users"), true);
    assert.deepEqual(await columns("users"), ["id", "name", "email"]);

    const again = await m.migrate();
    assert.equal(again.applied, 0);
    assert.equal(again.direction, "none");
    assert.equal(again.fromVersion, 2);
    const [tracked] = await db.execute<{ n: bigint }>(`SELECT count(*) AS n FROM ${s}._migrations`);
    assert.equal(tracked?.n, 2n);
  });
});

Deno.test("the tracking table holds version, name, checksum, applied_at and duration_ms", async (t) => {
  await scenario(t, async ({ m, columns, db, s }) => {
    await m.createMigration("one", "SELECT 1");
    await m.migrate();
    assert.deepEqual(await columns("_migrations"), [
      "version",
      "name",
      "checksum",
      "applied_at",
      "duration_ms",
    ]);
    const [file] = await m.loadMigrations();
    const [row] = await db.execute(`SELECT * FROM ${s}._migrations`);
    assert.ok(file && row);
    assert.equal(row.version, 1n);
    assert.equal(row.name, "one");
    assert.equal(row.checksum, file.checksum);
    assert.ok(row.applied_at instanceof Date);
  });
});

Deno.test("migrate() runs the statements of a multi-statement migration in order, and its down SQL", async (t) => {
  await scenario(t, async ({ m, s, db, exists }) => {
    await m.createMigration(
      "complex",
      `CREATE TABLE ${s}.parents (id INT PRIMARY KEY, name TEXT);
CREATE TABLE ${s}.children (id INT PRIMARY KEY, parent_id INT REFERENCES ${s}.parents (id));
INSERT INTO ${s}.parents VALUES (1, 'a;b'), (2, 'it''s');
INSERT INTO ${s}.children VALUES (10, 1), (20, 2);`,
      `DROP TABLE ${s}.children;\nDROP TABLE ${s}.parents;`,
    );
    await m.migrate();
    const rows = await db.execute(`SELECT name FROM ${s}.parents ORDER BY id`);
    assert.deepEqual(rows, [{ name: "a;b" }, { name: "it's" }]);
    assert.equal((await m.rollback()).applied, 1);
    assert.equal(await exists("parents"), false);
    assert.equal(await exists("children"), false);
  });
});

Deno.test("migrate() with a target applies up to it, and below the current version reverts", async (t) => {
  await scenario(t, async ({ m, s, exists }) => {
    for (const i of [1, 2, 3, 4, 5]) {
      await m.createMigration(`t${i}`, `CREATE TABLE ${s}.t${i} (id INT)`, `DROP TABLE ${s}.t${i}`);
    }
    assert.equal((await m.migrate({ targetVersion: 2 })).applied, 2);
    assert.deepEqual(await m.getAppliedVersions(), [1, 2]);
    assert.equal((await m.migrate({ targetVersion: 4 })).applied, 2);
    assert.deepEqual(await m.getAppliedVersions(), [1, 2, 3, 4]);
    assert.equal((await m.migrate()).applied, 1);
    const down = await m.migrate({ targetVersion: 3 });
    assert.deepEqual([down.applied, down.direction, down.fromVersion, down.toVersion], [
      2,
      "down",
      5,
      3,
    ]);
    assert.deepEqual(down.migrations.map((r) => [r.version, r.direction]), [[5, "down"], [
      4,
      "down",
    ]]);
    assert.deepEqual(await m.getAppliedVersions(), [1, 2, 3]);
    assert.equal(await exists("t3"), true);
    assert.equal(await exists("t4"), false);
    // The original's sequence: migrate(1), migrate(), migrate(1), migrate(0).
    assert.equal((await m.migrate({ targetVersion: 1 })).applied, 2);
    assert.deepEqual(await m.getAppliedVersions(), [1]);
    await m.migrate();
    assert.deepEqual(await m.getAppliedVersions(), [1, 2, 3, 4, 5]);
    await m.migrate({ targetVersion: 0 });
    assert.deepEqual(await m.getAppliedVersions(), []);
    assert.equal(await exists("t1"), false);
  });
});

Deno.test("rollback() reverts the last one, then count, and does nothing when nothing is applied", async (t) => {
  await scenario(t, async ({ m, s, exists }) => {
    for (const i of [1, 2, 3]) {
      await m.createMigration(`t${i}`, `CREATE TABLE ${s}.t${i} (id INT)`, `DROP TABLE ${s}.t${i}`);
    }
    await m.migrate();
    const one = await m.rollback();
    assert.deepEqual([one.applied, one.direction, one.fromVersion, one.toVersion], [
      1,
      "down",
      3,
      2,
    ]);
    assert.equal(await exists("t3"), false);
    assert.equal(await exists("t2"), true);
    assert.equal((await m.rollback({ count: 2 })).applied, 2);
    assert.deepEqual(await m.getAppliedVersions(), []);
    const none = await m.rollback();
    assert.equal(none.applied, 0);
    assert.equal(none.direction, "none");
    await m.migrate();
    assert.equal((await m.rollback({ targetVersion: 1 })).applied, 2);
    assert.deepEqual(await m.getAppliedVersions(), [1]);
  });
});

Deno.test("a U file provides the down SQL", async (t) => {
  await scenario(t, async ({ m, s, write, exists }) => {
    await write("V1__create_things.sql", `CREATE TABLE ${s}.things (id INT)`);
    await write("U1__undo_create_things.sql", `DROP TABLE ${s}.things`);
    await m.migrate();
    assert.equal(await exists("things"), true);
    const result = await m.rollback();
    assert.equal(result.migrations[0]?.path.endsWith("U1__undo_create_things.sql"), true);
    assert.equal(await exists("things"), false);
  });
});
