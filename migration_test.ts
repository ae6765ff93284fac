// The migration behaviours, each run through both runners: t.step("async") with
// AsyncMigration and t.step("sync") with Migration. Each step gets its own schema (holding the
// tracking, lock and migrated tables) and its own directory, so tests never meet.
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { AsyncDatabase } from "./async_database.ts";
import { AsyncMigration, type MigrationOptions } from "./async_migration.ts";
import { Database } from "./database.ts";
import { Migration } from "./migration.ts";
import { DatabaseError, MigrationError, ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

type Runner = Pick<
  AsyncMigration,
  | "initialize"
  | "loadMigrations"
  | "createMigration"
  | "migrate"
  | "rollback"
  | "getAppliedVersions"
  | "getCurrentVersion"
  | "getMigrationHistory"
  | "pending"
  | "status"
  | "verify"
  | "unlock"
  | "migrationsDir"
>;

/** A sync call as a promise: its value, or its throw as a rejection. */
function later<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The sync runner behind the async shape, so one scenario serves both. */
function promised(m: Migration): Runner {
  return {
    initialize: () => later(() => m.initialize()),
    loadMigrations: () => later(() => m.loadMigrations()),
    createMigration: (name, up, down) => later(() => m.createMigration(name, up, down)),
    migrate: (options) => later(() => m.migrate(options)),
    rollback: (options) => later(() => m.rollback(options)),
    getAppliedVersions: () => later(() => m.getAppliedVersions()),
    getCurrentVersion: () => later(() => m.getCurrentVersion()),
    getMigrationHistory: () => later(() => m.getMigrationHistory()),
    pending: () => later(() => m.pending()),
    status: () => later(() => m.status()),
    verify: () => later(() => m.verify()),
    unlock: () => later(() => m.unlock()),
    migrationsDir: m.migrationsDir,
  };
}

interface Ctx {
  /** For assertions (and for setting the scene). */
  readonly db: AsyncDatabase;
  /** The step's schema: migrations create their tables in it. */
  readonly s: string;
  readonly dir: string;
  /** A runner on the step's directory and tracking table. */
  readonly m: Runner;
  /** Another runner on the same database (more options). */
  open(options?: MigrationOptions): Runner;
  /** A runner of the step's kind connected to `url` (closed at the end of the step). */
  openAt(url: string, options?: MigrationOptions): Runner;
  write(name: string, text: string): Promise<void>;
  exists(table: string): Promise<boolean>;
  columns(table: string): Promise<string[]>;
}

type Kind = "async" | "sync";

async function scenario(
  t: Deno.TestContext,
  fn: (ctx: Ctx, kind: Kind) => Promise<void>,
  kinds: readonly Kind[] = ["async", "sync"],
): Promise<void> {
  for (const kind of kinds) {
    await t.step(kind, async () => {
      const url = testUrl();
      await using db = new AsyncDatabase(url, { minConnections: 1 });
      const s = uniqueName("mig");
      const dir = await Deno.makeTempDir({ prefix: "migrations_" });
      await db.execute(`CREATE SCHEMA ${s}`);
      const sync = kind === "sync" ? new Database(url, { minConnections: 1 }) : undefined;
      const base: MigrationOptions = { migrationsDir: dir, tableName: `${s}._migrations` };
      const open = (options?: MigrationOptions): Runner =>
        sync
          ? promised(new Migration(sync, { ...base, ...options }))
          : new AsyncMigration(db, { ...base, ...options });
      const others: (Database | AsyncDatabase)[] = [];
      const openAt = (other: string, options?: MigrationOptions): Runner => {
        if (kind === "sync") {
          const handle = new Database(other, { minConnections: 1 });
          others.push(handle);
          return promised(new Migration(handle, { ...base, ...options }));
        }
        const handle = new AsyncDatabase(other, { minConnections: 1 });
        others.push(handle);
        return new AsyncMigration(handle, { ...base, ...options });
      };
      try {
        await fn({
          db,
          s,
          dir,
          m: open(),
          open,
          openAt,
          write: (name, text) => Deno.writeTextFile(join(dir, name), text),
          exists: (table) => db.tableExists(`${s}.${table}`),
          columns: async (table) =>
            (await db.execute<{ column_name: string }>(
              "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
              [s, table],
            )).map((r) => r.column_name),
        }, kind);
      } finally {
        for (const other of others) await other.close();
        sync?.close();
        await db.execute(`DROP SCHEMA ${s} CASCADE`);
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
}

async function rejects(
  promise: Promise<unknown>,
  check: (e: MigrationError) => void,
): Promise<MigrationError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof MigrationError, `expected a MigrationError, got ${error}`);
    check(error);
    return error;
  }
  assert.fail("expected a MigrationError");
}

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
    assert.deepEqual(Object.keys(loaded[0]).sort(), [
      "checksum",
      "downPath",
      "downSql",
      "name",
      "noTransaction",
      "path",
      "upSql",
      "version",
    ]);
    assert.equal(loaded[0].upSql, "SELECT 1");
    assert.equal(loaded[0].downSql, "SELECT 2");
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
    const [{ n }] = await db.execute<{ n: bigint }>(`SELECT count(*) AS n FROM ${s}._migrations`);
    assert.equal(n, 2n);
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
    assert.equal(result.migrations[0].path.endsWith("U1__undo_create_things.sql"), true);
    assert.equal(await exists("things"), false);
  });
});

Deno.test("a failed migration throws MigrationError and leaves the database and tracking table as before", async (t) => {
  await scenario(t, async ({ m, s, exists, dir }) => {
    await m.createMigration("good", `CREATE TABLE ${s}.good (id INT)`, `DROP TABLE ${s}.good`);
    await m.createMigration(
      "bad",
      `CREATE TABLE ${s}.half (id INT);\nINSERT INTO ${s}.good VALUES (1);\nSELEC oops;`,
      `DROP TABLE ${s}.half`,
    );
    const error = await rejects(m.migrate(), (e) => {
      assert.equal(e.version, 2);
      assert.equal(e.path, join(dir, "V2__bad.sql"));
      assert.equal(e.statement, "SELEC oops");
      assert.equal(e.code, "42601");
      assert.match(e.message, /V2__bad\.sql.*statement 3 of 3, line 3.*syntax error/);
    });
    assert.ok(error.cause instanceof Error);
    assert.equal(await exists("half"), false);
    assert.equal(await exists("good"), true);
    assert.deepEqual(await m.getAppliedVersions(), [1]);
    // The lock was released: a fixed file applies at once.
    await Deno.writeTextFile(
      join(dir, "V2__bad.sql"),
      `CREATE TABLE ${s}.half (id INT)\n-- DOWN\nDROP TABLE ${s}.half`,
    );
    assert.equal((await m.migrate()).applied, 1);
  });
});

Deno.test("a failed down migration throws MigrationError and keeps the migration applied", async (t) => {
  await scenario(t, async ({ m, s, exists }) => {
    await m.createMigration(
      "t",
      `CREATE TABLE ${s}.t (id INT)`,
      `DROP TABLE ${s}.t;\nDROP TABLE ${s}.nope;`,
    );
    await m.migrate();
    await rejects(m.rollback(), (e) => {
      assert.equal(e.version, 1);
      assert.equal(e.statement, `DROP TABLE ${s}.nope`);
      assert.match(e.message, /^Cannot revert migration/);
    });
    assert.equal(await exists("t"), true);
    assert.deepEqual(await m.getAppliedVersions(), [1]);
  });
});

Deno.test("reverting a migration without down SQL is refused before anything changes", async (t) => {
  await scenario(t, async ({ m, s, exists }) => {
    await m.createMigration("a", `CREATE TABLE ${s}.a (id INT)`);
    await m.createMigration("b", `CREATE TABLE ${s}.b (id INT)`, `DROP TABLE ${s}.b`);
    await m.migrate();
    await rejects(m.migrate({ targetVersion: 0 }), (e) => {
      assert.equal(e.code, "MIGRATION_IRREVERSIBLE");
      assert.equal(e.version, 1);
      assert.match(e.message, /V1__a\.sql.*no down SQL/);
    });
    // Version 2 could have been reverted, but the run was refused as a whole.
    assert.equal(await exists("b"), true);
    assert.deepEqual(await m.getAppliedVersions(), [1, 2]);
    await m.rollback();
    await rejects(m.rollback(), (e) => assert.equal(e.version, 1));
    assert.equal(await exists("a"), true);
  });
});

Deno.test("a modified applied file stops migrate() unless allowModified, and shows in status()", async (t) => {
  await scenario(t, async ({ m, s, dir }) => {
    const path = await m.createMigration("a", `CREATE TABLE ${s}.a (id INT)`, `DROP TABLE ${s}.a`);
    await m.migrate();
    await Deno.writeTextFile(
      path,
      `CREATE TABLE ${s}.a (id INT, x INT)\n-- DOWN\nDROP TABLE ${s}.a\n`,
    );
    await m.createMigration("b", `CREATE TABLE ${s}.b (id INT)`, `DROP TABLE ${s}.b`);
    await rejects(m.migrate(), (e) => {
      assert.equal(e.code, "MIGRATION_MODIFIED");
      assert.equal(e.path, join(dir, "V1__a.sql"));
      assert.match(e.message, /; restore the file, or pass allowModified: true to run anyway$/);
    });
    assert.deepEqual(await m.getAppliedVersions(), [1]);
    assert.deepEqual((await m.status()).map((x) => x.state), ["modified", "pending"]);
    assert.equal((await m.verify()).ok, false);
    assert.equal((await m.migrate({ allowModified: true })).applied, 1);
  });
});

Deno.test("an out-of-order pending version stops migrate() unless allowOutOfOrder", async (t) => {
  await scenario(t, async ({ m, s, write }) => {
    await write("V1__a.sql", `CREATE TABLE ${s}.a (id INT)`);
    await write("V3__c.sql", `CREATE TABLE ${s}.c (id INT)`);
    await m.migrate();
    await write("V2__b.sql", `CREATE TABLE ${s}.b (id INT)`);
    await rejects(m.migrate(), (e) => {
      assert.equal(e.code, "MIGRATION_OUT_OF_ORDER");
      assert.equal(e.version, 2);
      assert.match(e.message, /; pass allowOutOfOrder: true to apply them anyway$/);
    });
    assert.deepEqual((await m.pending()).map((f) => f.version), [2]);
    const result = await m.migrate({ allowOutOfOrder: true });
    assert.deepEqual(result.migrations.map((r) => r.version), [2]);
    assert.deepEqual(await m.getAppliedVersions(), [1, 2, 3]);
  });
});

Deno.test("status() lists applied, pending, modified and missing migrations; history and pending agree", async (t) => {
  await scenario(t, async ({ m, s, dir }) => {
    for (const i of [1, 2, 3, 4]) {
      await m.createMigration(`m${i}`, `CREATE TABLE ${s}.m${i} (id INT)`, `DROP TABLE ${s}.m${i}`);
    }
    assert.equal((await m.migrate({ targetVersion: 3 })).applied, 3);
    await Deno.writeTextFile(join(dir, "V2__m2.sql"), "SELECT 'changed'\n");
    await Deno.remove(join(dir, "V3__m3.sql"));
    const status = await m.status();
    assert.deepEqual(status.map((x) => [x.version, x.name, x.state]), [
      [1, "m1", "applied"],
      [2, "m2", "modified"],
      [3, "m3", "missing"],
      [4, "m4", "pending"],
    ]);
    assert.ok(status[0].appliedAt instanceof Date);
    assert.equal(status[3].appliedAt, null);
    assert.equal(status[2].path, null);
    const history = await m.getMigrationHistory();
    assert.deepEqual(history.map((h) => [h.version, h.name]), [[1, "m1"], [2, "m2"], [3, "m3"]]);
    assert.ok(
      history.every((h) => h.appliedAt instanceof Date && typeof h.durationMs === "number"),
    );
    assert.match(history[0].checksum ?? "", /^[0-9a-f]{64}$/);
    assert.deepEqual((await m.pending()).map((f) => f.name), ["m4"]);
    const report = await m.verify();
    assert.equal(report.ok, false);
    assert.deepEqual(report.modified.map((x) => x.version), [2]);
    assert.deepEqual(report.missing.map((x) => x.version), [3]);
  });
});

Deno.test("a dry run returns the plan with its SQL and changes nothing", async (t) => {
  await scenario(t, async ({ m, s, exists, db }) => {
    await m.createMigration("a", `CREATE TABLE ${s}.a (id INT)`, `DROP TABLE ${s}.a`);
    await m.createMigration("b", `CREATE TABLE ${s}.b (id INT)`, `DROP TABLE ${s}.b`);
    const plan = await m.migrate({ dryRun: true });
    assert.deepEqual([plan.applied, plan.direction, plan.toVersion, plan.dryRun], [
      2,
      "up",
      2,
      true,
    ]);
    assert.deepEqual(plan.migrations.map((r) => [r.version, r.sql]), [
      [1, `CREATE TABLE ${s}.a (id INT)`],
      [2, `CREATE TABLE ${s}.b (id INT)`],
    ]);
    assert.equal(await exists("a"), false);
    assert.equal(await exists("_migrations"), false);
    assert.equal(await exists("_migrations_lock"), false);
    await m.migrate();
    const down = await m.rollback({ count: 2, dryRun: true });
    assert.deepEqual(down.migrations.map((r) => [r.version, r.sql]), [
      [2, `DROP TABLE ${s}.b`],
      [1, `DROP TABLE ${s}.a`],
    ]);
    assert.equal(await exists("b"), true);
    assert.deepEqual(await m.getAppliedVersions(), [1, 2]);
    assert.deepEqual(await db.execute(`SELECT * FROM ${s}._migrations_lock`), []);
  });
});

Deno.test("reading operations and dry runs write nothing and work for a role that may only read", async (t) => {
  await scenario(t, async ({ db, s, m, write, exists, openAt }) => {
    const role = uniqueName("reader");
    const [{ name }] = await db.execute<{ name: string }>("SELECT current_database() AS name");
    await db.execute(`CREATE ROLE ${role} LOGIN`);
    try {
      await db.execute(`GRANT CONNECT ON DATABASE "${name}" TO ${role}`);
      await db.execute(`GRANT USAGE ON SCHEMA ${s} TO ${role}`);
      const url = new URL(testUrl());
      url.username = role;
      url.password = "";
      const reader = openAt(url.href);
      await write("V1__a.sql", `CREATE TABLE ${s}.a (id INT);\n-- DOWN\nDROP TABLE ${s}.a;`);
      await write("V2__b.sql", `CREATE TABLE ${s}.b (id INT);\n-- DOWN\nDROP TABLE ${s}.b;`);
      const tables = () =>
        Promise.all(["_migrations", "_migrations_lock", "_migrations_progress"].map(exists));

      // Nothing applied yet, no tracking table: every reading operation answers "nothing".
      assert.deepEqual((await reader.status()).map((x) => x.state), ["pending", "pending"]);
      assert.equal((await reader.verify()).ok, true);
      assert.deepEqual((await reader.pending()).map((f) => f.version), [1, 2]);
      assert.deepEqual(await reader.getAppliedVersions(), []);
      assert.equal(await reader.getCurrentVersion(), 0);
      assert.deepEqual(await reader.getMigrationHistory(), []);
      assert.equal((await reader.loadMigrations()).length, 2);
      assert.equal((await reader.migrate({ dryRun: true })).applied, 2);
      assert.equal((await reader.rollback({ dryRun: true })).applied, 0);
      assert.equal((await reader.migrate({ targetVersion: 0 })).direction, "none");
      assert.equal(await reader.unlock(), false);
      assert.deepEqual(await tables(), [false, false, false]);

      // Applying is the first write: refused for this role, naming the tables, creating nothing.
      await rejects(reader.migrate(), (e) => {
        assert.equal(e.code, "42501");
        assert.match(
          e.message,
          new RegExp(
            `^Cannot create the migration tables "${s}\\._migrations" and "${s}\\._migrations_lock": permission denied`,
          ),
        );
      });
      assert.deepEqual(await tables(), [false, false, false]);

      // Once a role that may write has applied one, the reader sees it, still writing nothing.
      assert.equal((await m.migrate({ targetVersion: 1 })).applied, 1);
      await db.execute(`GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${role}`);
      assert.deepEqual((await reader.status()).map((x) => x.state), ["applied", "pending"]);
      assert.equal((await reader.verify()).ok, true);
      assert.deepEqual((await reader.pending()).map((f) => f.version), [2]);
      assert.deepEqual(await reader.getAppliedVersions(), [1]);
      assert.equal(await reader.getCurrentVersion(), 1);
      assert.deepEqual((await reader.getMigrationHistory()).map((h) => h.version), [1]);
      assert.equal((await reader.migrate({ dryRun: true })).applied, 1);
      assert.equal((await reader.rollback({ dryRun: true })).applied, 1);
      assert.equal((await reader.migrate({ targetVersion: 1 })).direction, "none");
      assert.deepEqual(await tables(), [true, true, false]);
      // unlock() does write once there is a lock table: this role may not.
      await assert.rejects(
        reader.unlock(),
        (e: unknown) => e instanceof DatabaseError && e.code === "42501",
      );
    } finally {
      await db.execute(`DROP OWNED BY ${role}`);
      await db.execute(`DROP ROLE ${role}`);
    }
  });
});

Deno.test("a migration that hits a serialization failure is run again and recorded once", async (t) => {
  await scenario(t, async ({ m, s, db }) => {
    // Fails with 40001 the first time it is called (sequences ignore rollbacks), then passes.
    await db.execute(`CREATE SEQUENCE ${s}.attempts;
CREATE FUNCTION ${s}.flaky() RETURNS INT LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('${s}.attempts') = 1 THEN
    RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001';
  END IF;
  RETURN 1;
END $$`);
    await m.createMigration(
      "flaky",
      `CREATE TABLE ${s}.f (id INT);\nINSERT INTO ${s}.f VALUES (1);\nSELECT ${s}.flaky();`,
    );
    assert.equal((await m.migrate()).applied, 1);
    assert.deepEqual(await db.execute(`SELECT id FROM ${s}.f`), [{ id: 1 }]);
    const [{ n }] = await db.execute<{ n: bigint }>(`SELECT last_value AS n FROM ${s}.attempts`);
    assert.equal(n, 2n);
    assert.deepEqual(await m.getAppliedVersions(), [1]);
  });
});

Deno.test("a no-transaction migration commits statement by statement and resumes after a failure", async (t) => {
  await scenario(t, async ({ m, s, dir, db, exists }) => {
    const path = join(dir, "V1__no_tx.sql");
    const file = (third: string) =>
      `-- migrate:no-transaction
CREATE TABLE ${s}.a (id INT);
CREATE TABLE ${s}.b (id INT);
${third};
CREATE INDEX b_id ON ${s}.b (id);
-- DOWN
DROP TABLE ${s}.b;
DROP TABLE ${s}.a;
`;
    await Deno.writeTextFile(path, file(`INSERT INTO ${s}.nope VALUES (1)`));
    await rejects(m.migrate(), (e) => {
      assert.equal(e.version, 1);
      assert.equal(e.statement, `INSERT INTO ${s}.nope VALUES (1)`);
      assert.equal(e.code, "42P01");
      assert.match(
        e.message,
        /statement 3 of 4, line 4.*statements 1 to 2 were committed.*resumes at statement 3/,
      );
    });
    // Outside a transaction, the first two stayed; the migration is not recorded as applied.
    assert.equal(await exists("a"), true);
    assert.equal(await exists("b"), true);
    assert.deepEqual(await m.getAppliedVersions(), []);
    const [stopped] = await m.status();
    assert.equal(stopped.state, "pending");
    assert.deepEqual(stopped.partial, {
      direction: "up",
      statementsDone: 2,
      statementsTotal: 4,
      error: `relation "${s}.nope" does not exist`,
    });
    // Fixing the failed statement resumes at it: CREATE TABLE a would fail if run again.
    await Deno.writeTextFile(path, file(`INSERT INTO ${s}.b VALUES (1)`));
    assert.equal((await m.migrate()).applied, 1);
    assert.deepEqual(await db.execute(`SELECT id FROM ${s}.b`), [{ id: 1 }]);
    const [done] = await m.status();
    assert.equal(done.state, "applied");
    assert.equal(done.partial, null);
    assert.equal((await m.rollback()).applied, 1);
    assert.equal(await exists("a"), false);
  });
});

Deno.test("a no-transaction run whose committed statements changed is refused unless allowModified", async (t) => {
  await scenario(t, async ({ m, s, dir, exists }) => {
    const path = join(dir, "V1__no_tx.sql");
    await Deno.writeTextFile(
      path,
      `-- migrate:no-transaction\nCREATE TABLE ${s}.a (id INT);\nSELECT * FROM ${s}.nope;\n`,
    );
    await rejects(m.migrate(), (e) => assert.equal(e.code, "42P01"));
    await Deno.writeTextFile(
      path,
      `-- migrate:no-transaction\nCREATE TABLE ${s}.a2 (id INT);\nSELECT 1;\n`,
    );
    await rejects(m.migrate(), (e) => {
      assert.equal(e.code, "MIGRATION_PARTIAL");
      assert.match(e.message, /then pass allowModified: true to run it from its first statement$/);
    });
    assert.equal(await exists("a2"), false);
    assert.equal((await m.migrate({ allowModified: true })).applied, 1);
    assert.equal(await exists("a2"), true);
    assert.equal((await m.verify()).ok, true);
  });
});

Deno.test("CockroachDB's XXA00 is reported as committed but schema change aborted", async (t) => {
  await scenario(t, async ({ m, s, db, write }) => {
    // PostgreSQL stand-ins: a deferred trigger raising XXA00 at COMMIT, and a statement raising it.
    await db.execute(`CREATE TABLE ${s}.guard (id INT);
CREATE FUNCTION ${s}.abort_schema_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'schema change aborted' USING ERRCODE = 'XXA00';
END $$;
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON ${s}.guard DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION ${s}.abort_schema_change();`);
    await write("V1__tx.sql", `CREATE TABLE ${s}.a (id INT);\nINSERT INTO ${s}.guard VALUES (1);`);
    await rejects(m.migrate(), (e) => {
      assert.equal(e.code, "XXA00");
      assert.equal(e.version, 1);
      assert.match(
        e.message,
        /committed but its schema change was aborted.*recorded as not applied/,
      );
    });
    assert.deepEqual(await m.getAppliedVersions(), []);
    await Deno.remove(join((await m.loadMigrations())[0].path));
    await write(
      "V1__no_tx.sql",
      `-- migrate:no-transaction\nDO $$ BEGIN RAISE EXCEPTION 'schema change aborted' USING ERRCODE = 'XXA00'; END $$;`,
    );
    await rejects(m.migrate(), (e) => {
      assert.equal(e.code, "XXA00");
      assert.match(e.message, /statement 1 of 1.*committed but its schema change was aborted/);
    });
  });
});

Deno.test("migrate() waits for another runner's lock up to lockTimeout, then throws; unlock() frees it", async (t) => {
  await scenario(t, async ({ m, open, s, db, exists }) => {
    await m.createMigration("a", `CREATE TABLE ${s}.a (id INT)`);
    await m.initialize();
    await db.execute(
      `INSERT INTO ${s}._migrations_lock (id, owner, expires_at) VALUES (1, 'elsewhere', now() + INTERVAL '1 hour')`,
    );
    const events: string[] = [];
    await rejects(
      open({ lockTimeout: 50 }).migrate({ onProgress: (e) => events.push(e.type) }),
      (e) => {
        assert.equal(e.code, "MIGRATION_LOCKED");
        assert.match(e.message, /held by "elsewhere"/);
        assert.match(
          e.message,
          /; raise lockTimeout to wait longer, or call unlock\(\) if that runner is gone$/,
        );
      },
    );
    assert.deepEqual(events, ["waiting"]);
    assert.equal(await exists("a"), false);
    assert.equal(await m.unlock(), true);
    assert.equal(await m.unlock(), false);
    assert.equal((await open({ lockTimeout: 50 }).migrate()).applied, 1);
  });
});

Deno.test("a missing lock table is created when a migration runs, though the tracking table exists", async (t) => {
  await scenario(t, async ({ m, open, s, write, exists }) => {
    await write("V1__a.sql", `CREATE TABLE ${s}.a (id INT);`);
    assert.equal((await m.migrate()).applied, 1);
    await write("V2__b.sql", `CREATE TABLE ${s}.b (id INT);`);
    const other = open({ lockTableName: `${s}.other_lock` });
    assert.equal(await other.unlock(), false);
    assert.equal(await exists("other_lock"), false);
    assert.equal((await other.migrate()).applied, 1);
    assert.equal(await exists("other_lock"), true);
    assert.deepEqual(await m.getAppliedVersions(), [1, 2]);
  });
});

Deno.test("an expired lease is taken over at once", async (t) => {
  await scenario(t, async ({ m, s, db }) => {
    await m.createMigration("a", `CREATE TABLE ${s}.a (id INT)`);
    await m.initialize();
    await db.execute(
      `INSERT INTO ${s}._migrations_lock (id, owner, expires_at) VALUES (1, 'dead runner', now() - INTERVAL '1 second')`,
    );
    assert.equal((await m.migrate()).applied, 1);
    assert.deepEqual(await db.execute(`SELECT * FROM ${s}._migrations_lock`), []);
  });
});

Deno.test("a runner that lost its lock keeps nothing of the migration it was running", async (t) => {
  await scenario(t, async ({ m, s, exists, write }) => {
    // The migration itself hands the lock to someone else, as a runner taking over an expired
    // lease would: the tracking row is written only while the lock is held, in the same
    // transaction, so the migration is rolled back.
    await write(
      "V1__stolen.sql",
      `CREATE TABLE ${s}.a (id INT);\nUPDATE ${s}._migrations_lock SET owner = 'thief';`,
    );
    await rejects(m.migrate(), (e) => {
      assert.equal(e.code, "MIGRATION_LOCK_LOST");
      assert.equal(e.version, 1);
    });
    assert.equal(await exists("a"), false);
    assert.deepEqual(await m.getAppliedVersions(), []);
  });
});
