// The transaction protocol's parts, without a server: buildBegin(), backoffDelay(),
// transactionSettings(). The protocol itself (transactionSteps()) is in _retry_steps_test.ts
// (BEGIN, retries in the body) and _retry_commit_test.ts (a lost connection, COMMIT).
import assert from "node:assert/strict";
import { asOfSystemTimeSql, backoffDelay, buildBegin, transactionSettings } from "./_retry.ts";
import type { TransactionOptions } from "./_options.ts";
import { ValidationError } from "./errors.ts";
import { beginText } from "./_test_retry.ts";

// buildBegin

Deno.test("buildBegin() is a bare BEGIN on PostgreSQL and adds the savepoint on CockroachDB", () => {
  assert.deepEqual(buildBegin({}, "postgres"), ["BEGIN"]);
  assert.deepEqual(buildBegin({}, "cockroach"), ["BEGIN", "SAVEPOINT cockroach_restart"]);
});

Deno.test("buildBegin() sets the isolation level and READ ONLY", () => {
  assert.equal(
    beginText({ isolation: "serializable" }, "postgres"),
    "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE",
  );
  assert.equal(
    beginText({ isolation: "repeatable read", readOnly: true }, "postgres"),
    "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
  );
  assert.equal(
    beginText({ isolation: "read committed" }, "cockroach"),
    "BEGIN TRANSACTION ISOLATION LEVEL READ COMMITTED; SAVEPOINT cockroach_restart",
  );
  assert.equal(beginText({ readOnly: true }, "postgres"), "BEGIN TRANSACTION READ ONLY");
  assert.equal(beginText({ readOnly: false }, "postgres"), "BEGIN");
});

Deno.test("buildBegin() refuses an unknown isolation level with ValidationError", () => {
  assert.throws(
    () => buildBegin({ isolation: "snapshot; DROP TABLE t" as "serializable" }, "postgres"),
    (error: unknown) => error instanceof ValidationError && error.field === "isolation",
  );
});

Deno.test("buildBegin() adds AS OF SYSTEM TIME on CockroachDB, quoting literals", () => {
  assert.equal(
    beginText({ asOfSystemTime: "-10s" }, "cockroach"),
    "BEGIN TRANSACTION AS OF SYSTEM TIME '-10s'; SAVEPOINT cockroach_restart",
  );
  // asOfSystemTime implies a read-only transaction; READ ONLY is not repeated.
  assert.equal(
    beginText({ asOfSystemTime: "follower_read_timestamp()", readOnly: true }, "cockroach"),
    "BEGIN TRANSACTION AS OF SYSTEM TIME follower_read_timestamp(); SAVEPOINT cockroach_restart",
  );
  assert.equal(asOfSystemTimeSql("with_max_staleness('10s')"), "with_max_staleness('10s')");
  assert.equal(
    asOfSystemTimeSql("with_min_timestamp('2024-01-01', true)"),
    "with_min_timestamp('2024-01-01', true)",
  );
  assert.equal(asOfSystemTimeSql("2024-01-01 00:00:00"), "'2024-01-01 00:00:00'");
});

Deno.test("buildBegin() quotes a hostile asOfSystemTime as one string literal", () => {
  assert.equal(
    asOfSystemTimeSql("-1s'; DROP TABLE accounts; --"),
    "'-1s''; DROP TABLE accounts; --'",
  );
  assert.equal(
    asOfSystemTimeSql("with_max_staleness('1s'); DROP TABLE t; --"),
    "'with_max_staleness(''1s''); DROP TABLE t; --'",
  );
  assert.equal(asOfSystemTimeSql("follower_read_timestamp() --"), "'follower_read_timestamp() --'");
});

Deno.test("buildBegin() refuses an empty or NUL asOfSystemTime with ValidationError", () => {
  for (const value of ["", "  ", "-1s\0", 5 as unknown as string]) {
    assert.throws(
      () => buildBegin({ asOfSystemTime: value }, "cockroach"),
      (error: unknown) => error instanceof ValidationError && error.field === "asOfSystemTime",
    );
  }
});

Deno.test("buildBegin() refuses asOfSystemTime on PostgreSQL with ValidationError", () => {
  assert.throws(
    () => buildBegin({ asOfSystemTime: "-10s" }, "postgres"),
    (error: unknown) =>
      error instanceof ValidationError && error.field === "asOfSystemTime" &&
      /not CockroachDB/.test(error.message),
  );
});

// backoffDelay

Deno.test("backoffDelay() doubles from initialBackoff and is capped at maxBackoff", () => {
  const top = 1 - Number.EPSILON;
  assert.equal(backoffDelay(1, 10, 2000, () => 0.5), 5);
  assert.equal(backoffDelay(2, 10, 2000, () => 0.5), 10);
  assert.equal(backoffDelay(3, 10, 2000, () => 0.5), 20);
  assert.equal(backoffDelay(8, 10, 2000, () => 0.5), 640);
  assert.equal(backoffDelay(9, 10, 2000, () => 0.5), 1000);
  assert.equal(backoffDelay(10, 10, 2000, () => 0.5), 1000);
  assert.equal(backoffDelay(10_000, 10, 2000, () => top), 1999);
  assert.equal(backoffDelay(1, 10, 5, () => top), 4);
});

Deno.test("backoffDelay() draws with full jitter from [0, cap)", () => {
  assert.equal(backoffDelay(4, 10, 2000, () => 0), 0);
  assert.equal(backoffDelay(4, 10, 2000, () => 1 - Number.EPSILON), 79);
  for (let retry = 1; retry <= 40; retry++) {
    const delay = backoffDelay(retry, 10, 2000);
    const cap = Math.min(2000, 10 * 2 ** (retry - 1));
    assert.ok(Number.isInteger(delay) && delay >= 0 && delay < cap, `retry ${retry}: ${delay}`);
  }
  assert.equal(backoffDelay(3, 0, 2000, () => 0.9), 0);
});

// transactionSettings

Deno.test("transactionSettings() applies the database's defaults under the call's options", () => {
  const settings = transactionSettings(
    { maxRetries: 2, deadline: 500, initialBackoff: undefined },
    { maxRetries: 7, initialBackoff: 3, maxBackoff: 9 },
  );
  assert.equal(settings.maxRetries, 2);
  assert.equal(settings.initialBackoff, 3);
  assert.equal(settings.maxBackoff, 9);
  assert.equal(settings.deadline, 500);
  const defaults = transactionSettings(undefined);
  assert.deepEqual(
    [defaults.maxRetries, defaults.initialBackoff, defaults.maxBackoff],
    [10, 10, 2000],
  );
});

Deno.test("transactionSettings() refuses bad retry options with ValidationError", () => {
  const bad: [unknown, string][] = [
    [{ maxRetries: -1 }, "maxRetries"],
    [{ maxRetries: 1.5 }, "maxRetries"],
    [{ initialBackoff: -5 }, "initialBackoff"],
    [{ maxBackoff: Infinity }, "maxBackoff"],
    [{ deadline: 0 }, "deadline"],
    [{ deadline: -1 }, "deadline"],
    [{ onRetry: "log" }, "onRetry"],
    ["fast", "options"],
    [null, "options"],
  ];
  for (const [options, field] of bad) {
    assert.throws(
      () => transactionSettings(options as TransactionOptions),
      (error: unknown) => error instanceof ValidationError && error.field === field,
      `expected ValidationError on ${field} for ${Deno.inspect(options)}`,
    );
  }
});
