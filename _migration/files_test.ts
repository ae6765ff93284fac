// Migration files: their names, versions and checksums, the up and down SQL of one file or a
// V/U pair, the no-transaction marker, the text createMigration() writes, the next version.
import assert from "node:assert/strict";
import { join } from "node:path";
import { MigrationError } from "../errors.ts";
import { checksumOf, migrationFileStem, migrationFileText, nextVersion } from "./files.ts";
import { dir, files, row, three } from "./_test_util.ts";

Deno.test("parseMigrationFiles() splits the up and down SQL at the -- DOWN line", () => {
  const [m] = files({
    "V1__create_users.sql": "CREATE TABLE u (id INT);\n\n-- DOWN\nDROP TABLE u;\n",
  });
  assert.ok(m);
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
  assert.ok(m);
  assert.equal(m.version, 7);
  assert.equal(m.name, "add__two parts");
});

Deno.test("parseMigrationFiles() reads the down SQL of a U file", () => {
  const [m] = files({
    "V1__create.sql": "CREATE TABLE a (id INT)",
    "U1__undo_create.sql": "DROP TABLE a",
    "U9__orphan.sql": "DROP TABLE z",
  });
  assert.ok(m);
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
  assert.equal(files({ "V20240217120000__ts.sql": "SELECT 1" })[0]?.version, 20240217120000);
});

Deno.test("parseMigrationFiles() treats a down section without statements as no down SQL", () => {
  const [a, b] = files({
    "V1__a.sql": "SELECT 1\n-- DOWN\n\n",
    "V2__b.sql": "SELECT 1\n-- DOWN\n-- nothing to undo\n/* really */",
  });
  assert.ok(a && b);
  assert.equal(a.downSql, null);
  assert.equal(b.downSql, null);
});

Deno.test("parseMigrationFiles() accepts CRLF files and reads the no-transaction marker", () => {
  const [m] = files({
    "V1__idx.sql":
      "-- migrate:no-transaction\r\nCREATE INDEX i ON t (a);\r\n-- DOWN\r\nDROP INDEX i;\r\n",
  });
  assert.ok(m);
  assert.equal(m.noTransaction, true);
  assert.equal(m.upSql, "-- migrate:no-transaction\nCREATE INDEX i ON t (a);");
  assert.equal(m.downSql, "DROP INDEX i;");
  const [later] = files({ "V1__x.sql": "SELECT 1;\n-- migrate:no-transaction\nSELECT 2;" });
  assert.ok(later);
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
  assert.ok(m);
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
