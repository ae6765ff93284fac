// loadProgram(): reading the migrations directory as a step program, and naming a missing one.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { resolveRunnerConfig } from "./config.ts";
import { loadProgram } from "./directory.ts";
import { missingDirectory } from "./_test_util.ts";

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
