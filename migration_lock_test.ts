// The migration lock, through both runners (see _test_migration.ts): a runner waits for another
// runner's lock up to lockTimeout, unlock() frees it, a missing lock table is made, an expired
// lease is taken over at once, and a runner that lost its lock keeps nothing of its migration.
import assert from "node:assert/strict";
import { rejects, scenario } from "./_test_migration.ts";

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
