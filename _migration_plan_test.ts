import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  checksumOf,
  computeStatus,
  isTransactionControl,
  loadProgram,
  type MigrationFile,
  migrationFileStem,
  migrationFileText,
  type MigrationHistoryEntry,
  nextVersion,
  parseMigrationFiles,
  planMigrate,
  planRollback,
  resolveRunnerConfig,
  respell,
  splitStatements,
  verifyStatus,
} from "./_migration_plan.ts";
import { MigrationError, ValidationError } from "./errors.ts";

const dir = "migrations";

function files(entries: Record<string, string>): MigrationFile[] {
  return parseMigrationFiles(dir, Object.entries(entries).map(([name, text]) => ({ name, text })));
}

function applied(file: MigrationFile, checksum = file.checksum): MigrationHistoryEntry {
  return {
    version: file.version,
    name: file.name,
    checksum,
    appliedAt: new Date(0),
    durationMs: 1,
  };
}

function row(version: number, name = `m${version}`): MigrationHistoryEntry {
  return { version, name, checksum: null, appliedAt: new Date(0), durationMs: 1 };
}

function texts(sql: string): string[] {
  return splitStatements(sql).map((s) => s.text);
}

const three = files({
  "V1__one.sql": "CREATE TABLE a (id INT);\n-- DOWN\nDROP TABLE a;",
  "V2__two.sql": "CREATE TABLE b (id INT);\n\n-- DOWN\nDROP TABLE b;",
  "V3__three.sql": "CREATE TABLE c (id INT);",
});

Deno.test("parseMigrationFiles() splits the up and down SQL at the -- DOWN line", () => {
  const [m] = files({
    "V1__create_users.sql": "CREATE TABLE u (id INT);\n\n-- DOWN\nDROP TABLE u;\n",
  });
  assert.equal(m.version, 1);
  assert.equal(m.name, "create_users");
  assert.equal(m.upSql, "CREATE TABLE u (id INT);");
  assert.equal(m.downSql, "DROP TABLE u;");
  assert.equal(m.path, join(dir, "V1__create_users.sql"));
  assert.equal(m.downPath, null);
  assert.equal(m.noTransaction, false);
  assert.match(m.checksum, /^[0-9a-f]{64}$/);
});

Deno.test("parseMigrationFiles() ignores other names and sorts by numeric version", () => {
  const loaded = files({
    "V10__ten.sql": "SELECT 10",
    "V2__two.sql": "SELECT 2",
    "invalid_migration.sql": "SELECT 0",
    "Vx__invalid_version.sql": "SELECT 0",
    "V3_single_underscore.sql": "SELECT 0",
    "V4__no_extension.txt": "SELECT 0",
    "README.md": "#",
    "v5__lower_case.sql": "SELECT 0",
  });
  assert.deepEqual(loaded.map((m) => [m.version, m.name]), [[2, "two"], [10, "ten"]]);
});

Deno.test("parseMigrationFiles() keeps everything after the first __ as the name", () => {
  const [m] = files({ "V007__add__two parts.sql": "SELECT 1" });
  assert.equal(m.version, 7);
  assert.equal(m.name, "add__two parts");
});

Deno.test("parseMigrationFiles() reads the down SQL of a U file", () => {
  const [m] = files({
    "V1__create.sql": "CREATE TABLE a (id INT)",
    "U1__undo_create.sql": "DROP TABLE a",
    "U9__orphan.sql": "DROP TABLE z",
  });
  assert.equal(m.downSql, "DROP TABLE a");
  assert.equal(m.downPath, join(dir, "U1__undo_create.sql"));
});

Deno.test("parseMigrationFiles() refuses down SQL both after -- DOWN and in a U file", () => {
  assert.throws(
    () =>
      files({
        "V1__create.sql": "CREATE TABLE a (id INT)\n-- DOWN\nDROP TABLE a",
        "U1__create.sql": "DROP TABLE a",
      }),
    (e: unknown) =>
      e instanceof MigrationError && e.code === "MIGRATION_INVALID" && e.version === 1,
  );
});

Deno.test("parseMigrationFiles() refuses a version used by two files", () => {
  assert.throws(
    () => files({ "V1__a.sql": "SELECT 1", "V01__b.sql": "SELECT 1" }),
    (e: unknown) =>
      e instanceof MigrationError && /version 1 is used by both/.test(e.message) &&
      e.version === 1,
  );
});

Deno.test("parseMigrationFiles() refuses version 0 and versions beyond the safe integers", () => {
  assert.throws(() => files({ "V0__zero.sql": "SELECT 1" }), MigrationError);
  assert.throws(() => files({ "V99999999999999999999__big.sql": "SELECT 1" }), MigrationError);
  assert.equal(files({ "V20240217120000__ts.sql": "SELECT 1" })[0].version, 20240217120000);
});

Deno.test("parseMigrationFiles() treats a down section without statements as no down SQL", () => {
  const [a, b] = files({
    "V1__a.sql": "SELECT 1\n-- DOWN\n\n",
    "V2__b.sql": "SELECT 1\n-- DOWN\n-- nothing to undo\n/* really */",
  });
  assert.equal(a.downSql, null);
  assert.equal(b.downSql, null);
});

Deno.test("parseMigrationFiles() accepts CRLF files and reads the no-transaction marker", () => {
  const [m] = files({
    "V1__idx.sql":
      "-- migrate:no-transaction\r\nCREATE INDEX i ON t (a);\r\n-- DOWN\r\nDROP INDEX i;\r\n",
  });
  assert.equal(m.noTransaction, true);
  assert.equal(m.upSql, "-- migrate:no-transaction\nCREATE INDEX i ON t (a);");
  assert.equal(m.downSql, "DROP INDEX i;");
  const [later] = files({ "V1__x.sql": "SELECT 1;\n-- migrate:no-transaction\nSELECT 2;" });
  assert.equal(later.noTransaction, false);
});

Deno.test("checksumOf() is SHA-256 of the text, blind to BOM and line endings", () => {
  assert.equal(
    checksumOf("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(checksumOf("a\r\nb\r\n"), checksumOf("a\nb\n"));
  assert.equal(checksumOf("\ufeffa\n"), checksumOf("a\n"));
  assert.notEqual(checksumOf("a\n"), checksumOf("a \n"));
});

Deno.test("migrationFileText() writes the up SQL, a blank line, -- DOWN and the down SQL", () => {
  assert.equal(migrationFileText(" up ", " down "), "up\n\n-- DOWN\ndown\n");
  assert.equal(migrationFileText("up"), "up\n");
  const [m] = files({ "V1__x.sql": migrationFileText("CREATE TABLE a (id INT)", "DROP TABLE a") });
  assert.equal(m.upSql, "CREATE TABLE a (id INT)");
  assert.equal(m.downSql, "DROP TABLE a");
});

Deno.test("migrationFileStem() turns whitespace into _ and refuses path separators", () => {
  assert.equal(migrationFileStem(" add  user email "), "add_user_email");
  assert.equal(migrationFileStem("créer_table"), "créer_table");
  for (const bad of ["", "   ", "a/b", "a\\b", "..", "a\0b"]) {
    assert.throws(() => migrationFileStem(bad), TypeError, bad);
  }
});

Deno.test("nextVersion() is one above the highest of files and applied rows", () => {
  assert.equal(nextVersion([], []), 1);
  assert.equal(nextVersion(three, []), 4);
  assert.equal(nextVersion(three, [row(7)]), 8);
});

Deno.test("splitStatements() splits at top-level semicolons and keeps line numbers", () => {
  const statements = splitStatements(
    "-- head\nCREATE TABLE a (x INT);\n\nINSERT INTO a VALUES (1);  \n",
  );
  assert.deepEqual(statements, [
    { text: "CREATE TABLE a (x INT)", line: 2 },
    { text: "INSERT INTO a VALUES (1)", line: 4 },
  ]);
  assert.deepEqual(texts("SELECT 1"), ["SELECT 1"]);
  assert.deepEqual(texts(";;  ; -- only comments\n/* x */"), []);
});

Deno.test("splitStatements() ignores semicolons in strings, identifiers and comments", () => {
  assert.deepEqual(texts(`SELECT 'a;b', 'it''s;'; SELECT "c;d"`), [
    `SELECT 'a;b', 'it''s;'`,
    `SELECT "c;d"`,
  ]);
  assert.deepEqual(texts(`SELECT E'x\\';y'; SELECT 2`), [`SELECT E'x\\';y'`, "SELECT 2"]);
  assert.deepEqual(texts("SELECT 1 -- ; not here\n; SELECT /* ; /* nested ; */ ; */ 2"), [
    "SELECT 1 -- ; not here",
    "SELECT /* ; /* nested ; */ ; */ 2",
  ]);
});

Deno.test("splitStatements() keeps dollar-quoted function bodies whole", () => {
  const sql = `CREATE FUNCTION f() RETURNS INT AS $body$
BEGIN
  PERFORM 1; RETURN $$;$$::text::int;
END;
$body$ LANGUAGE plpgsql;
SELECT $1, a$b$c FROM t;
DO $$ BEGIN RAISE NOTICE ';'; END $$;`;
  const out = texts(sql);
  assert.equal(out.length, 3);
  assert.match(out[0], /^CREATE FUNCTION[\s\S]*LANGUAGE plpgsql$/);
  assert.equal(out[1], "SELECT $1, a$b$c FROM t");
  assert.equal(out[2], "DO $$ BEGIN RAISE NOTICE ';'; END $$");
});

Deno.test("splitStatements() keeps BEGIN ATOMIC bodies whole, as psql does", () => {
  const sql = `CREATE OR REPLACE FUNCTION f(x INT) RETURNS INT LANGUAGE SQL
BEGIN ATOMIC
  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;
  SELECT x;
END;
SELECT CASE WHEN true THEN 1 END; BEGIN; COMMIT;`;
  const out = texts(sql);
  assert.equal(out.length, 4);
  assert.match(out[0], /^CREATE OR REPLACE FUNCTION[\s\S]*SELECT x;\nEND$/);
  assert.deepEqual(out.slice(1), ["SELECT CASE WHEN true THEN 1 END", "BEGIN", "COMMIT"]);
});

Deno.test("isTransactionControl() spots BEGIN, COMMIT and the like but not savepoints", () => {
  for (
    const s of [
      "BEGIN",
      "begin transaction",
      "START TRANSACTION",
      "COMMIT",
      "END",
      "ROLLBACK",
      "ABORT",
      "PREPARE TRANSACTION 'x'",
    ]
  ) {
    assert.equal(isTransactionControl(s), true, s);
  }
  for (
    const s of [
      "SAVEPOINT a",
      "ROLLBACK TO SAVEPOINT a",
      "rollback work to a",
      "RELEASE a",
      "BEGIN ATOMIC SELECT 1; END",
      "CREATE TABLE begin_x (id INT)",
      "BEGINNING",
    ]
  ) {
    assert.equal(isTransactionControl(s), false, s);
  }
});

Deno.test("planMigrate() applies every pending migration in version order", () => {
  const plan = planMigrate(three, [applied(three[0])]);
  assert.equal(plan.direction, "up");
  assert.equal(plan.fromVersion, 1);
  assert.equal(plan.toVersion, 3);
  assert.deepEqual(plan.steps.map((s) => [s.file.version, s.direction]), [[2, "up"], [3, "up"]]);
  assert.deepEqual(plan.steps[0].statements.map((s) => s.text), ["CREATE TABLE b (id INT)"]);
});

Deno.test("planMigrate() stops at the target, and does nothing when there", () => {
  assert.deepEqual(planMigrate(three, [], { targetVersion: 2 }).steps.map((s) => s.file.version), [
    1,
    2,
  ]);
  const none = planMigrate(three, three.map((f) => applied(f)));
  assert.deepEqual([none.direction, none.fromVersion, none.toVersion, none.steps.length], [
    "none",
    3,
    3,
    0,
  ]);
  assert.equal(planMigrate([], []).direction, "none");
});

Deno.test("planMigrate() below the current version reverts in descending order", () => {
  const two = files({
    "V1__one.sql": "SELECT 1\n-- DOWN\nSELECT -1",
    "V2__two.sql": "SELECT 2\n-- DOWN\nSELECT -2",
    "V3__three.sql": "SELECT 3\n-- DOWN\nSELECT -3",
  });
  const plan = planMigrate(two, two.map((f) => applied(f)), { targetVersion: 1 });
  assert.equal(plan.direction, "down");
  assert.equal(plan.toVersion, 1);
  assert.deepEqual(plan.steps.map((s) => [s.file.version, s.direction, s.sql]), [
    [3, "down", "SELECT -3"],
    [2, "down", "SELECT -2"],
  ]);
  assert.deepEqual(
    planMigrate(two, two.map((f) => applied(f)), { targetVersion: 0 }).steps.length,
    3,
  );
});

Deno.test("planMigrate() without a target never reverts, even when the newest files are gone", () => {
  const plan = planMigrate(three.slice(0, 1), [applied(three[0]), row(2), row(3)]);
  assert.equal(plan.direction, "none");
});

Deno.test("planMigrate() refuses, before anything runs, to revert a migration without down SQL", () => {
  const all = three.map((f) => applied(f));
  assert.throws(
    () => planMigrate(three, all, { targetVersion: 0 }),
    (e: unknown) =>
      e instanceof MigrationError && e.code === "MIGRATION_IRREVERSIBLE" && e.version === 3 &&
      e.path === join(dir, "V3__three.sql") && /V3__three\.sql.*no down SQL/.test(e.message),
  );
  assert.throws(
    () => planMigrate(three.slice(0, 2), [...all.slice(0, 2), row(5)], { targetVersion: 1 }),
    (e: unknown) =>
      e instanceof MigrationError && e.code === "MIGRATION_MISSING" && e.version === 5,
  );
});

Deno.test("planMigrate() refuses a modified applied file unless allowModified", () => {
  const rows = [applied(three[0], "0".repeat(64))];
  assert.throws(
    () => planMigrate(three, rows),
    (e: unknown) =>
      e instanceof MigrationError && e.code === "MIGRATION_MODIFIED" && e.version === 1 &&
      /V1__one\.sql.*changed/.test(e.message),
  );
  assert.equal(planMigrate(three, rows, { allowModified: true }).steps.length, 2);
  // Rows written by tools that kept no checksum are not "modified".
  assert.equal(planMigrate(three, [row(1)]).steps.length, 2);
});

Deno.test("planMigrate() refuses an out-of-order pending version unless allowOutOfOrder", () => {
  const rows = [applied(three[0]), applied(three[2])];
  assert.throws(
    () => planMigrate(three, rows),
    (e: unknown) =>
      e instanceof MigrationError && e.code === "MIGRATION_OUT_OF_ORDER" && e.version === 2,
  );
  const plan = planMigrate(three, rows, { allowOutOfOrder: true });
  assert.deepEqual(plan.steps.map((s) => s.file.version), [2]);
  assert.equal(plan.toVersion, 3);
});

Deno.test("planMigrate() refuses transaction control statements in a migration", () => {
  const bad = files({ "V1__tx.sql": "BEGIN;\nCREATE TABLE a (id INT);\nCOMMIT;" });
  assert.throws(
    () => planMigrate(bad, []),
    (e: unknown) =>
      e instanceof MigrationError && e.code === "MIGRATION_INVALID" && e.statement === "BEGIN",
  );
});

Deno.test("planMigrate() checks its target", () => {
  for (const targetVersion of [-1, 1.5, NaN, "2" as unknown as number]) {
    assert.throws(() => planMigrate(three, [], { targetVersion }), RangeError);
  }
});

Deno.test("planRollback() reverts the last count, or down to a target", () => {
  const rev = files({
    "V1__one.sql": "SELECT 1\n-- DOWN\nSELECT -1",
    "V2__two.sql": "SELECT 2\n-- DOWN\nSELECT -2",
    "V3__three.sql": "SELECT 3\n-- DOWN\nSELECT -3",
  });
  const all = rev.map((f) => applied(f));
  assert.deepEqual(planRollback(rev, all).steps.map((s) => s.file.version), [3]);
  assert.deepEqual(planRollback(rev, all, { count: 2 }).steps.map((s) => s.file.version), [3, 2]);
  assert.deepEqual(planRollback(rev, all, { count: 9 }).steps.map((s) => s.file.version), [
    3,
    2,
    1,
  ]);
  assert.deepEqual(planRollback(rev, all, { targetVersion: 1 }).steps.map((s) => s.file.version), [
    3,
    2,
  ]);
  assert.equal(planRollback(rev, []).direction, "none");
  assert.equal(planRollback(rev, all, { count: 0 }).direction, "none");
  assert.throws(() => planRollback(rev, all, { count: 1, targetVersion: 1 }), TypeError);
  assert.throws(() => planRollback(rev, all, { count: -1 }), RangeError);
});

Deno.test("computeStatus() reports applied, pending, modified and missing migrations", () => {
  const status = computeStatus(three, [
    applied(three[0]),
    applied(three[1], "f".repeat(64)),
    row(9, "gone"),
  ], [
    {
      version: 3,
      direction: "up",
      checksum: three[2].checksum,
      statementsDone: 1,
      statementsTotal: 2,
      doneChecksum: "x",
      error: "boom",
    },
  ]);
  assert.deepEqual(status.map((s) => [s.version, s.state]), [
    [1, "applied"],
    [2, "modified"],
    [3, "pending"],
    [9, "missing"],
  ]);
  assert.equal(status[3].name, "gone");
  assert.equal(status[3].path, null);
  assert.equal(status[2].outOfOrder, true);
  assert.equal(status[2].reversible, false);
  assert.deepEqual(status[2].partial, {
    direction: "up",
    statementsDone: 1,
    statementsTotal: 2,
    error: "boom",
  });
  const report = verifyStatus(status);
  assert.equal(report.ok, false);
  assert.deepEqual(
    [report.modified, report.missing, report.outOfOrder, report.partial].map((l) =>
      l.map((s) => s.version)
    ),
    [[2], [9], [3], [3]],
  );
  assert.equal(verifyStatus(computeStatus(three, [applied(three[0])])).ok, true);
});

Deno.test("resolveRunnerConfig() quotes the table names and checks the timings", () => {
  const c = resolveRunnerConfig({ tableName: "app.schema_migrations" });
  assert.equal(c.table, '"app"."schema_migrations"');
  assert.equal(c.lockTable, '"app"."schema_migrations_lock"');
  assert.equal(c.progressTable, '"app"."schema_migrations_progress"');
  assert.equal(c.dir, "migrations");
  assert.equal(c.lockTimeout, 60_000);
  assert.equal(c.leaseDuration, 30_000);
  assert.notEqual(c.owner, resolveRunnerConfig({}).owner);
  assert.throws(() => resolveRunnerConfig({ tableName: "" }), ValidationError);
  assert.throws(() => resolveRunnerConfig({ lockTimeout: -1 }), RangeError);
  assert.throws(() => resolveRunnerConfig({ leaseDuration: 10 }), RangeError);
  assert.throws(() => resolveRunnerConfig({ migrationsDir: "" }), TypeError);
});

Deno.test("resolveRunnerConfig() takes migrationsDir as a file: URL, and no other scheme", () => {
  const url = new URL("./migrations", import.meta.url);
  assert.equal(resolveRunnerConfig({ migrationsDir: url }).dir, url.pathname);
  assert.equal(
    resolveRunnerConfig({ migrationsDir: new URL("file:///srv/app/migrations%20v2/") }).dir,
    "/srv/app/migrations v2/",
  );
  for (const bad of ["https://example.com/m", "file://elsewhere/m"]) {
    assert.throws(
      () => resolveRunnerConfig({ migrationsDir: new URL(bad) }),
      (e: unknown) =>
        e instanceof ValidationError && e.field === "migrationsDir" &&
        e.message.startsWith(`Cannot use migrationsDir "${bad}": `),
    );
  }
});

/** What `loadProgram` throws when its read effect answers "no such directory". */
function missingDirectory(migrationsDir: string): MigrationError {
  const program = loadProgram(resolveRunnerConfig({ migrationsDir }));
  assert.deepEqual(program.next().value, { kind: "read", dir: migrationsDir });
  try {
    program.next(null);
  } catch (error) {
    assert.ok(error instanceof MigrationError);
    return error;
  }
  assert.fail("expected a MigrationError");
}

Deno.test("loadProgram() names a missing directory as given and, when relative, as resolved", () => {
  const relative = missingDirectory("nope");
  assert.equal(relative.code, "MIGRATION_DIRECTORY_NOT_FOUND");
  assert.equal(relative.path, resolve("nope"));
  assert.equal(
    relative.message,
    `Cannot load migrations from "nope": no such directory ("${
      resolve("nope")
    }", resolved against the current directory); check migrationsDir, or make the directory (createMigration() makes it with its first file)`,
  );
  const absolute = missingDirectory("/srv/nope");
  assert.equal(absolute.path, "/srv/nope");
  assert.match(absolute.message, /^Cannot load migrations from "\/srv\/nope": no such directory; /);
  // createMigration() reads it this way, then creates it.
  const forCreate = loadProgram(resolveRunnerConfig({ migrationsDir: "nope" }), true);
  forCreate.next();
  assert.deepEqual(forCreate.next(null), { done: true, value: [] });
});

Deno.test("respell() puts the command line's flags in every hint, and leaves other errors alone", () => {
  const cases: [MigrationError, string, string][] = [
    [
      catchError(() => planMigrate(three, [applied(three[0], "0".repeat(64))])),
      "restore the file, or pass allowModified: true to run anyway",
      "restore the file, or pass --allow-modified to run anyway",
    ],
    [
      catchError(() => planMigrate(three, [applied(three[0]), applied(three[2])])),
      "pass allowOutOfOrder: true to apply them anyway",
      "pass --allow-out-of-order to apply them anyway",
    ],
    [
      missingDirectory("nope"),
      "check migrationsDir, or make the directory (createMigration() makes it with its first file)",
      "check --dir, or make the directory (the create command makes it with its first file)",
    ],
  ];
  for (const [error, api, cli] of cases) {
    assert.ok(error.message.endsWith(`; ${api}`), error.message);
    const respelled = respell(error, "cli") as MigrationError;
    assert.ok(respelled instanceof MigrationError);
    assert.equal(respelled.message, `${error.message.slice(0, -api.length)}${cli}`);
    assert.deepEqual(
      [respelled.code, respelled.version, respelled.path, respelled.cause],
      [error.code, error.version, error.path, error.cause],
    );
    assert.equal(respell(error, "api"), error);
  }
  const plain = new MigrationError('Cannot revert "x": it has no down SQL', {
    code: "MIGRATION_IRREVERSIBLE",
  });
  assert.equal(respell(plain, "cli"), plain);
  const typeError = new TypeError("x");
  assert.equal(respell(typeError, "cli"), typeError);
});

function catchError(fn: () => unknown): MigrationError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MigrationError);
    return error;
  }
  assert.fail("expected a MigrationError");
}
