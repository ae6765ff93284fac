// The migration engine's planning (planMigrate(), planRollback()) and status (computeStatus(),
// verifyStatus()) as pure functions of the files and the tracking-table rows.
import assert from "node:assert/strict";
import { join } from "node:path";
import { MigrationError } from "../errors.ts";
import { planMigrate, planRollback } from "./plan.ts";
import { computeStatus, verifyStatus } from "./status.ts";
import { applied, dir, files, row, three } from "./_test_util.ts";

Deno.test("planMigrate() applies every pending migration in version order", () => {
  const plan = planMigrate(three, [applied(three[0])]);
  assert.equal(plan.direction, "up");
  assert.equal(plan.fromVersion, 1);
  assert.equal(plan.toVersion, 3);
  assert.deepEqual(plan.steps.map((s) => [s.file.version, s.direction]), [[2, "up"], [3, "up"]]);
  assert.deepEqual(plan.steps[0]?.statements.map((s) => s.text), ["CREATE TABLE b (id INT)"]);
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
  const [, , pending, missing] = status;
  assert.ok(pending && missing);
  assert.equal(missing.name, "gone");
  assert.equal(missing.path, null);
  assert.equal(pending.outOfOrder, true);
  assert.equal(pending.reversible, false);
  assert.deepEqual(pending.partial, {
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
