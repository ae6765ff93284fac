// Shared by the migration engine's unit tests (no server): migration files parsed from text as
// if read from a directory, the tracking-table rows that record them, three files most tests
// plan with, and the MigrationError a call or a program throws.
import assert from "node:assert/strict";
import { MigrationError } from "../errors.ts";
import { resolveRunnerConfig } from "./config.ts";
import { loadProgram } from "./directory.ts";
import { parseMigrationFiles } from "./files.ts";
import type { MigrationFile, MigrationHistoryEntry } from "./types.ts";

/** The directory the files of {@linkcode files} are said to be in. */
export const dir = "migrations";

/** Parses migration files from their names and texts, as read from {@linkcode dir}. */
export function files(entries: Record<string, string>): MigrationFile[] {
  return parseMigrationFiles(dir, Object.entries(entries).map(([name, text]) => ({ name, text })));
}

/** The tracking-table row of `file` applied (with its checksum, unless given another). */
export function applied(file: MigrationFile, checksum = file.checksum): MigrationHistoryEntry {
  return {
    version: file.version,
    name: file.name,
    checksum,
    appliedAt: new Date(0),
    durationMs: 1,
  };
}

/** A tracking-table row without a checksum, for a version that may have no file. */
export function row(version: number, name = `m${version}`): MigrationHistoryEntry {
  return { version, name, checksum: null, appliedAt: new Date(0), durationMs: 1 };
}

/** Versions 1 to 3; the first two have down SQL. */
export const three: readonly [MigrationFile, MigrationFile, MigrationFile] = threeFiles();

function threeFiles(): [MigrationFile, MigrationFile, MigrationFile] {
  const [one, two, third, ...more] = files({
    "V1__one.sql": "CREATE TABLE a (id INT);\n-- DOWN\nDROP TABLE a;",
    "V2__two.sql": "CREATE TABLE b (id INT);\n\n-- DOWN\nDROP TABLE b;",
    "V3__three.sql": "CREATE TABLE c (id INT);",
  });
  assert.ok(one && two && third && more.length === 0, "three migration files");
  return [one, two, third];
}

/** The MigrationError `fn` throws; fails the test when it throws nothing or something else. */
export function catchMigrationError(fn: () => unknown): MigrationError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MigrationError);
    return error;
  }
  assert.fail("expected a MigrationError");
}

/** What `loadProgram` throws when its read effect answers "no such directory". */
export function missingDirectory(migrationsDir: string): MigrationError {
  const program = loadProgram(resolveRunnerConfig({ migrationsDir }));
  assert.deepEqual(program.next().value, { kind: "read", dir: migrationsDir });
  return catchMigrationError(() => program.next(null));
}
