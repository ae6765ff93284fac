import assert from "node:assert/strict";
import { resolve } from "node:path";
import { MigrationError } from "../errors.ts";
import { resolveRunnerConfig } from "./config.ts";
import { loadProgram } from "./directory.ts";

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
