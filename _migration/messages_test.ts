// respell(): the hints of the engine's errors in the command line's words.
import assert from "node:assert/strict";
import { MigrationError } from "../errors.ts";
import { respell } from "./messages.ts";
import { planMigrate } from "./plan.ts";
import { applied, catchMigrationError, missingDirectory, three } from "./_test_util.ts";

Deno.test("respell() puts the command line's flags in every hint, and leaves other errors alone", () => {
  const cases: [MigrationError, string, string][] = [
    [
      catchMigrationError(() => planMigrate(three, [applied(three[0], "0".repeat(64))])),
      "restore the file, or pass allowModified: true to run anyway",
      "restore the file, or pass --allow-modified to run anyway",
    ],
    [
      catchMigrationError(() => planMigrate(three, [applied(three[0]), applied(three[2])])),
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
