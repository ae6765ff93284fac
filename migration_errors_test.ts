// Migrations that fail or are refused, through both runners (see _test_migration.ts): a failed
// up or down migration leaves the database and the tracking table as before; a run is refused
// before anything changes for a migration without down SQL, a modified applied file or an
// out-of-order version (each unless allowed); a serialization failure is run again; a
// no-transaction migration resumes after a failure; CockroachDB's XXA00 is reported as such.
// Faults (killed backends, restarts, killed runners) are in migration_faults_test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { rejects, scenario } from "./_test_migration.ts";

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
    const [attempts] = await db.execute<{ n: bigint }>(`SELECT last_value AS n FROM ${s}.attempts`);
    assert.equal(attempts?.n, 2n);
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
    assert.ok(stopped);
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
    assert.ok(done);
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
    const [loaded] = await m.loadMigrations();
    assert.ok(loaded);
    await Deno.remove(join(loaded.path));
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
