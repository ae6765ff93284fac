import assert from "node:assert/strict";
import { ValidationError } from "../errors.ts";
import { resolveRunnerConfig } from "./config.ts";

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

Deno.test("resolveRunnerConfig() takes the clock, the owner and the run numbers it is given", () => {
  const c = resolveRunnerConfig({}, { now: () => 42, owner: "host:1:abc" });
  assert.equal(c.now(), 42);
  assert.equal(c.owner, "host:1:abc");
  // The defaults fill in what is not given; each runner numbers its own runs.
  assert.deepEqual([c.nextRun(), c.nextRun()], [1, 2]);
  assert.equal(resolveRunnerConfig({}).nextRun(), 1);
  assert.match(resolveRunnerConfig({}).owner, /^.+:\d+:[0-9a-f]{8}$/);
  assert.equal(c.resolvePath("/srv/m"), "/srv/m");
});
