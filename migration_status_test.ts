// What the migration runners report without changing anything, through both runners (see
// _test_migration.ts): status(), getMigrationHistory(), pending() and verify() on applied,
// pending, modified and missing files; dry runs of migrate() and rollback(); and every reading
// operation for a role that may only read, before and after a migration was applied.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseError } from "./errors.ts";
import { testUrl, withRestrictedRole } from "./_test_util.ts";
import { rejects, scenario } from "./_test_migration.ts";

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
    const [applied, , missing, pending] = status;
    assert.ok(applied && missing && pending);
    assert.ok(applied.appliedAt instanceof Date);
    assert.equal(pending.appliedAt, null);
    assert.equal(missing.path, null);
    const history = await m.getMigrationHistory();
    assert.deepEqual(history.map((h) => [h.version, h.name]), [[1, "m1"], [2, "m2"], [3, "m3"]]);
    assert.ok(
      history.every((h) => h.appliedAt instanceof Date && typeof h.durationMs === "number"),
    );
    assert.match(history[0]?.checksum ?? "", /^[0-9a-f]{64}$/);
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
    await withRestrictedRole(
      db,
      { prefix: "reader", schema: s, url: testUrl() },
      async (role, url) => {
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
      },
    );
  });
});
