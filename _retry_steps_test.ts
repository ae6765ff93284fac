// transactionSteps() without a server: BEGIN deferred to the callback's first statement, and the
// retries of a serialization failure in the body, the fallbacks when a rollback fails, and
// retries that run out.
import assert from "node:assert/strict";
import type { RetryInfo } from "./_options.ts";
import { type DatabaseError, TransactionRetryError } from "./errors.ts";
import {
  CRDB_FIRST,
  drive,
  lostError,
  PG_BEGIN,
  PG_FIRST,
  RELEASE,
  RELEASE_COMMIT,
  ROLLBACK_TO,
  SAVEPOINT,
  serverError,
} from "./_test_retry.ts";

// What the fake server answers to a statement: its first word.
function firstWord(text: string): string {
  return text.split(" ", 1)[0] ?? "";
}

// transactionSteps

Deno.test("transactionSteps() on PostgreSQL: BEGIN with the callback's first statement, COMMIT, release, value", () => {
  const run = drive<string>({ callback: () => "done" });
  assert.equal(run.value, "done");
  assert.deepEqual(run.log, ["reserve", PG_FIRST, "state", "COMMIT", "release"]);
});

Deno.test("transactionSteps() on CockroachDB: BEGIN and the savepoint with the first statement, RELEASE with COMMIT", () => {
  const run = drive<number>({ callback: () => 42 }, {}, "cockroach");
  assert.equal(run.value, 42);
  assert.deepEqual(run.log, ["reserve", CRDB_FIRST, "state", RELEASE_COMMIT, "release"]);
});

Deno.test("transactionSteps() begins with the isolation and read-only options", () => {
  const run = drive({}, { isolation: "repeatable read", readOnly: true });
  assert.equal(
    run.log[1],
    "callback (BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY)",
  );
});

Deno.test("transactionSteps() sends nothing when the callback sends nothing: no BEGIN, no COMMIT", () => {
  for (const dialect of ["postgres", "cockroach"] as const) {
    const run = drive<number>({ callback: () => 7, silent: () => true }, {}, dialect);
    assert.equal(run.value, 7);
    assert.deepEqual(run.log, ["reserve", "callback", "state", "release"]);
  }
  // Nor when it throws before sending anything: its own error, no ROLLBACK.
  const boom = new Error("boom");
  const run = drive({
    callback: () => {
      throw boom;
    },
    silent: () => true,
  });
  assert.equal(run.error, boom);
  assert.deepEqual(run.log, ["reserve", "callback", "state", "release"]);
});

Deno.test("transactionSteps() reports a deferred BEGIN that failed as BEGIN's error, rolls nothing back and does not retry", () => {
  const refused = serverError("0A000", "AS OF SYSTEM TIME in the future");
  const fail = (text: string) => {
    if (text.startsWith("BEGIN")) throw refused;
    return firstWord(text);
  };
  const propagated = drive({ query: fail, callback: () => "v" });
  assert.equal(propagated.error, refused);
  assert.deepEqual(propagated.log, ["reserve", PG_FIRST, "state", "release"]);
  // A callback that caught its statement's failure and returned still gets BEGIN's error.
  const swallowed = drive({ query: fail, callback: () => "v", swallows: () => true });
  assert.equal(swallowed.error, refused);
  assert.deepEqual(swallowed.log, ["reserve", PG_FIRST, "state", "state", "release"]);
  // So does one that threw something else because of it.
  const other = drive(
    {
      query: fail,
      callback: () => {
        throw new TypeError("Cannot read properties of undefined");
      },
      swallows: () => true,
    },
    {},
    "cockroach",
  );
  assert.equal(other.error, refused);
});

Deno.test("transactionSteps() rolls back when BEGIN ran and its deferred savepoint failed", () => {
  const refused = serverError("42601");
  const run = drive(
    {
      query: (text) => {
        if (text === `SAVEPOINT ${SAVEPOINT}`) throw refused;
        return firstWord(text);
      },
      callback: () => "v",
    },
    {},
    "cockroach",
  );
  assert.equal(run.error, refused);
  assert.deepEqual(run.log, ["reserve", CRDB_FIRST, "state", "ROLLBACK", "release"]);
});

Deno.test("transactionSteps() runs again on a fresh connection when the deferred BEGIN's connection is lost", () => {
  let begins = 0;
  const run = drive<string>({
    query: (text) => {
      if (text === PG_BEGIN && ++begins === 1) throw lostError();
      return text;
    },
    callback: () => "ok",
  });
  assert.equal(run.value, "ok");
  assert.deepEqual(run.log, [
    "reserve",
    PG_FIRST,
    "state",
    "reserve",
    PG_FIRST,
    "state",
    "COMMIT",
    "release",
  ]);
});

Deno.test("transactionSteps() on PostgreSQL answers 40001 in the body with ROLLBACK and a new BEGIN", () => {
  const retries: RetryInfo[] = [];
  const conflict = serverError("40001");
  const run = drive<string>({
    callback: (attempt) => {
      if (attempt === 1) throw conflict;
      return "second";
    },
  }, { onRetry: (info) => retries.push(info) });
  assert.equal(run.value, "second");
  assert.deepEqual(run.log, [
    "reserve",
    PG_FIRST,
    "state",
    "ROLLBACK",
    PG_FIRST,
    "state",
    "COMMIT",
    "release",
  ]);
  assert.equal(retries.length, 1);
  assert.equal(retries[0]?.attempt, 1);
  assert.equal(retries[0]?.error, conflict);
  assert.equal(retries[0]?.delayMs, 0);
});

Deno.test("transactionSteps() on CockroachDB answers 40001 in the body with ROLLBACK TO SAVEPOINT", () => {
  const run = drive<string>(
    {
      callback: (attempt) => {
        if (attempt < 3) throw serverError("40001");
        return "third";
      },
    },
    {},
    "cockroach",
  );
  assert.equal(run.value, "third");
  assert.deepEqual(run.log, [
    "reserve",
    CRDB_FIRST,
    "state",
    ROLLBACK_TO,
    "callback",
    "state",
    ROLLBACK_TO,
    "callback",
    "state",
    RELEASE_COMMIT,
    "release",
  ]);
});

Deno.test("transactionSteps() retries 40P01 (deadlock) like 40001", () => {
  const run = drive<string>({
    callback: (attempt) => {
      if (attempt === 1) throw serverError("40P01");
      return "ok";
    },
  });
  assert.equal(run.value, "ok");
  assert.equal(run.log.filter((s) => s.startsWith("callback")).length, 2);
});

Deno.test("transactionSteps() retries a 40001 at COMMIT on PostgreSQL", () => {
  let commits = 0;
  const run = drive<string>({
    query: (text) => {
      if (text === "COMMIT" && ++commits === 1) throw serverError("40001");
      return firstWord(text);
    },
    callback: (attempt) => `attempt ${attempt}`,
  });
  assert.equal(run.value, "attempt 2");
  // The failed COMMIT ended the transaction: no ROLLBACK (the server would warn 25P01).
  assert.deepEqual(run.log, [
    "reserve",
    PG_FIRST,
    "state",
    "COMMIT",
    "state",
    PG_FIRST,
    "state",
    "COMMIT",
    "release",
  ]);
});

Deno.test("transactionSteps() retries a 40001 at RELEASE SAVEPOINT on CockroachDB: COMMIT did not run, the savepoint is rolled back to", () => {
  let releases = 0;
  const run = drive<string>(
    {
      query: (text) => {
        if (text === RELEASE && ++releases === 1) throw serverError("40001");
        return firstWord(text);
      },
      callback: (attempt) => `attempt ${attempt}`,
    },
    {},
    "cockroach",
  );
  assert.equal(run.value, "attempt 2");
  assert.deepEqual(run.log, [
    "reserve",
    CRDB_FIRST,
    "state",
    RELEASE_COMMIT,
    "state",
    ROLLBACK_TO,
    "callback",
    "state",
    RELEASE_COMMIT,
    "release",
  ]);
});

Deno.test("transactionSteps() falls back to ROLLBACK and BEGIN when ROLLBACK TO SAVEPOINT fails", () => {
  const run = drive<string>(
    {
      query: (text) => {
        if (text === ROLLBACK_TO) throw serverError("3B001");
        return firstWord(text);
      },
      callback: (attempt) => {
        if (attempt === 1) throw serverError("40001");
        return "ok";
      },
    },
    {},
    "cockroach",
  );
  assert.equal(run.value, "ok");
  assert.deepEqual(run.log, [
    "reserve",
    CRDB_FIRST,
    "state",
    ROLLBACK_TO,
    "ROLLBACK",
    CRDB_FIRST,
    "state",
    RELEASE_COMMIT,
    "release",
  ]);
});

Deno.test("transactionSteps() throws TransactionRetryError with the attempts when retries run out", () => {
  const errors: DatabaseError[] = [];
  const run = drive({
    callback: () => {
      const error = serverError("40001");
      errors.push(error);
      throw error;
    },
  }, { maxRetries: 2 });
  assert.ok(run.error instanceof TransactionRetryError);
  assert.equal(run.error.attempts, 3);
  assert.equal(run.error.code, "40001");
  assert.equal(run.error.cause, errors[2]);
  assert.match(run.error.message, /after 3 attempts/);
  assert.equal(run.log.filter((s) => s.startsWith("callback")).length, 3);
  assert.deepEqual(run.log.slice(-2), ["ROLLBACK", "release"]);
});

Deno.test("transactionSteps() with maxRetries 0 stops after one attempt", () => {
  for (const dialect of ["postgres", "cockroach"] as const) {
    const run = drive(
      {
        callback: () => {
          throw serverError("40001");
        },
      },
      { maxRetries: 0 },
      dialect,
    );
    assert.ok(run.error instanceof TransactionRetryError);
    assert.equal(run.error.attempts, 1);
    assert.equal(run.log.filter((s) => s.startsWith("callback")).length, 1);
    // On CockroachDB the savepoint rollback is followed by a full ROLLBACK before giving up.
    assert.deepEqual(run.log.slice(-2), ["ROLLBACK", "release"]);
  }
});

Deno.test("transactionSteps() re-throws a non-retryable error unchanged after ROLLBACK", () => {
  for (const error of [new Error("boom"), serverError("23505"), new TypeError("bad")]) {
    const run = drive({
      callback: () => {
        throw error;
      },
    });
    assert.equal(run.error, error);
    assert.deepEqual(run.log, ["reserve", PG_FIRST, "state", "ROLLBACK", "release"]);
  }
  const thrown = "a string";
  const run = drive(
    {
      callback: () => {
        throw thrown;
      },
    },
    {},
    "cockroach",
  );
  assert.equal(run.error, thrown);
  assert.deepEqual(run.log.slice(-2), ["ROLLBACK", "release"]);
});
