import assert from "node:assert/strict";
import { MigrationError } from "../errors.ts";
import { resolveRunnerConfig } from "./config.ts";
import { loadProgram } from "./directory.ts";
import { parseMigrationFiles } from "./files.ts";
import { respell } from "./messages.ts";
import { planMigrate } from "./plan.ts";
import type { MigrationFile, MigrationHistoryEntry } from "./types.ts";

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

const three = files({
  "V1__one.sql": "CREATE TABLE a (id INT);\n-- DOWN\nDROP TABLE a;",
  "V2__two.sql": "CREATE TABLE b (id INT);\n\n-- DOWN\nDROP TABLE b;",
  "V3__three.sql": "CREATE TABLE c (id INT);",
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
