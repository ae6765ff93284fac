// transactionSteps() without a server: a reserve that fails, a connection lost before or during
// COMMIT (an ambiguous commit), a connect refused after a loss, COMMIT answering ROLLBACK, backoff
// and the deadline.
import assert from "node:assert/strict";
import type { RetryInfo } from "./_options.ts";
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  TransactionRetryError,
} from "./errors.ts";
import { drive, lostError, PG_FIRST, RELEASE, serverError, withRandom } from "./_test_retry.ts";

Deno.test("transactionSteps() throws the reserve failure unchanged, without BEGIN", () => {
  const refused = new ConnectionError('Cannot connect to "h:1" failed: connection refused', {
    code: "ECONNREFUSED",
  });
  const run = drive({
    reserve: () => {
      throw refused;
    },
  });
  assert.equal(run.error, refused);
  assert.deepEqual(run.log, ["reserve", "release"]);
});

Deno.test("transactionSteps() runs again on a fresh connection when it is lost before COMMIT", () => {
  const retries: RetryInfo[] = [];
  const run = drive<string>({
    callback: (attempt) => {
      if (attempt === 1) throw lostError();
      return "fresh";
    },
    state: (attempt) => ({ lost: attempt === 1, sawRetryable: false }),
  }, { onRetry: (info) => retries.push(info) });
  assert.equal(run.value, "fresh");
  // Nothing is sent on the lost connection.
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
  assert.equal(retries.length, 1);
});

Deno.test("transactionSteps() runs again when the connection was lost under a callback that returned", () => {
  // The callback sent nothing after the loss (or caught the error): COMMIT is never sent, so
  // the loss is not ambiguous.
  let reserves = 0;
  const run = drive<string>({
    reserve: (count) => {
      reserves = count;
    },
    callback: (attempt) => `attempt ${attempt}`,
    state: () => ({ lost: reserves === 1, sawRetryable: false }),
  });
  assert.equal(run.value, "attempt 2");
  assert.deepEqual(run.log, [
    "reserve",
    PG_FIRST,
    "state",
    "state",
    "reserve",
    PG_FIRST,
    "state",
    "COMMIT",
    "release",
  ]);
});

Deno.test("transactionSteps() throws AmbiguousCommitError when the connection is lost during COMMIT", () => {
  const lost = lostError();
  let sent = false;
  const run = drive({
    query: (text) => {
      if (text === "COMMIT") {
        sent = true;
        throw lost;
      }
      return text;
    },
    callback: () => "v",
    state: () => ({ lost: sent, sawRetryable: false }),
  });
  assert.ok(run.error instanceof AmbiguousCommitError);
  assert.equal(run.error.code, "40003");
  assert.equal(run.error.cause, lost);
  // Neither retried nor rolled back on the dead connection.
  assert.deepEqual(run.log, ["reserve", PG_FIRST, "state", "COMMIT", "state", "release"]);
});

Deno.test("transactionSteps() throws AmbiguousCommitError when RELEASE SAVEPOINT (sent with COMMIT) loses the connection on CockroachDB", () => {
  let sent = false;
  const run = drive(
    {
      query: (text) => {
        if (text === RELEASE) {
          sent = true;
          throw lostError();
        }
        return text;
      },
      callback: () => "v",
      state: () => ({ lost: sent, sawRetryable: false }),
    },
    {},
    "cockroach",
  );
  assert.ok(run.error instanceof AmbiguousCommitError);
  assert.equal(run.log.filter((s) => s.startsWith("callback")).length, 1);
});

Deno.test("transactionSteps() passes a 40003 at COMMIT on as AmbiguousCommitError", () => {
  const ambiguous = new AmbiguousCommitError("Cannot tell whether the transaction committed: x", {
    code: "40003",
  });
  const run = drive({
    query: (text) => {
      if (text === "COMMIT") throw ambiguous;
      return text;
    },
    callback: () => "v",
  });
  assert.equal(run.error, ambiguous);
  assert.equal(run.log.filter((s) => s.startsWith("callback")).length, 1);
  const raw = drive({
    query: (text) => {
      if (text === "COMMIT") throw serverError("40003");
      return text;
    },
    callback: () => "v",
  });
  assert.ok(raw.error instanceof AmbiguousCommitError);
  assert.equal(raw.error.code, "40003");
});

Deno.test("transactionSteps() with idempotent: true runs an ambiguous commit again on a fresh connection", () => {
  let commits = 0;
  let lost = false;
  const run = drive<string>({
    reserve: () => {
      lost = false;
    },
    query: (text) => {
      if (text === "COMMIT" && ++commits === 1) {
        lost = true;
        throw lostError();
      }
      return text;
    },
    callback: (attempt) => `attempt ${attempt}`,
    state: () => ({ lost, sawRetryable: false }),
  }, { idempotent: true });
  assert.equal(run.value, "attempt 2");
  assert.deepEqual(run.log, [
    "reserve",
    PG_FIRST,
    "state",
    "COMMIT",
    "state",
    "reserve",
    PG_FIRST,
    "state",
    "COMMIT",
    "release",
  ]);
});

function refusedError(code = "ECONNREFUSED"): ConnectionError {
  return new ConnectionError('Cannot connect to "h:1": connection refused', { code });
}

Deno.test("transactionSteps() after a lost connection retries a connect the node refuses, within the budget", () => {
  // A node restarting: the connection is lost, then connects are refused for a while.
  const run = drive<string>({
    reserve: (count) => {
      if (count === 2 || count === 3) throw refusedError();
    },
    callback: (attempt) => {
      if (attempt === 1) throw lostError();
      return "back";
    },
    state: (attempt) => ({ lost: attempt === 1, sawRetryable: false }),
  });
  assert.equal(run.value, "back");
  assert.deepEqual(run.log, [
    "reserve",
    PG_FIRST,
    "state",
    "reserve",
    "state",
    "reserve",
    "state",
    "reserve",
    PG_FIRST,
    "state",
    "COMMIT",
    "release",
  ]);
});

Deno.test("transactionSteps() after a lost connection ends at once on a connect refused for good", () => {
  const denied = new DatabaseError("Cannot connect: password authentication failed", {
    code: "28P01",
    severity: "FATAL",
  });
  const run = drive({
    reserve: (count) => {
      if (count === 2) throw denied;
    },
    callback: (attempt) => {
      if (attempt === 1) throw lostError();
    },
    state: (attempt) => ({ lost: attempt === 1, sawRetryable: false }),
  });
  assert.equal(run.error, denied);
  assert.deepEqual(run.log, ["reserve", PG_FIRST, "state", "reserve", "release"]);
});

Deno.test("transactionSteps() after a lost connection gives up with TransactionRetryError when the node stays away", () => {
  const run = drive({
    reserve: (count) => {
      if (count > 1) throw refusedError();
    },
    callback: () => {
      throw lostError();
    },
    state: () => ({ lost: true, sawRetryable: false }),
  }, { maxRetries: 3 });
  assert.ok(run.error instanceof TransactionRetryError, String(run.error));
  assert.equal(run.error.attempts, 4);
  assert.equal(run.log.filter((step) => step === "reserve").length, 4);
});

Deno.test("transactionSteps() with idempotent: true reports AmbiguousCommitError when the rerun after a cut COMMIT cannot connect", () => {
  // The first COMMIT may have committed; the rerun never ran: the outcome is unknown, and the
  // error says so rather than a plain connection error.
  for (
    const [label, reserve] of [
      ["refused for good", (count: number) => {
        if (count > 1) {
          throw new DatabaseError("Cannot connect: database is gone", {
            code: "3D000",
            severity: "FATAL",
          });
        }
      }],
      ["away until retries run out", (count: number) => {
        if (count > 1) throw refusedError();
      }],
    ] as const
  ) {
    let lost = false;
    const run = drive({
      reserve,
      query: (text) => {
        if (text === "COMMIT") {
          lost = true;
          throw lostError();
        }
        return text;
      },
      state: () => ({ lost, sawRetryable: false }),
    }, { idempotent: true, maxRetries: 2 });
    assert.ok(run.error instanceof AmbiguousCommitError, `${label}: ${run.error}`);
    assert.match(run.error.message, /COMMIT was cut off/, label);
    assert.ok(run.error.cause instanceof Error, label);
  }
});

Deno.test("transactionSteps() treats COMMIT answering ROLLBACK as a failure, not a success", () => {
  const run = drive({
    query: (text) => text === "COMMIT" ? "ROLLBACK" : text,
    callback: () => "v",
  });
  assert.ok(run.error instanceof DatabaseError);
  assert.equal(run.error.code, "TRANSACTION_ROLLED_BACK");
  assert.equal(run.log.filter((s) => s.startsWith("callback")).length, 1);
  assert.equal(run.log.at(-1), "release");
});

Deno.test("transactionSteps() retries when COMMIT answers ROLLBACK after a caught 40001", () => {
  let commits = 0;
  const run = drive<string>({
    query: (text) => text === "COMMIT" && ++commits === 1 ? "ROLLBACK" : text,
    callback: (attempt) => `attempt ${attempt}`,
    state: (attempt) => ({ lost: false, sawRetryable: attempt === 1 }),
  });
  assert.equal(run.value, "attempt 2");
  assert.equal(run.log.filter((s) => s.startsWith("callback")).length, 2);
  // COMMIT ended the transaction: no ROLLBACK after it (the server would warn 25P01).
  const commit = run.log.indexOf("COMMIT");
  assert.ok(!run.log.slice(commit + 1).includes("ROLLBACK"), run.log.join(", "));
  assert.ok(run.log.slice(commit + 1).includes(PG_FIRST), run.log.join(", "));
});

Deno.test("transactionSteps() on CockroachDB begins again with its savepoint when COMMIT answers ROLLBACK after a caught 40001", () => {
  let commits = 0;
  const run = drive<string>(
    {
      query: (text) => text === "COMMIT" && ++commits === 1 ? "ROLLBACK" : text,
      callback: (attempt) => `attempt ${attempt}`,
      state: (attempt) => ({ lost: false, sawRetryable: attempt === 1 }),
    },
    {},
    "cockroach",
  );
  assert.equal(run.value, "attempt 2");
  const commit = run.log.indexOf("COMMIT");
  assert.ok(!run.log.slice(commit + 1).some((s) => s.startsWith("ROLLBACK")), run.log.join(", "));
  assert.ok(run.log.slice(commit + 1).some((s) => s.includes("SAVEPOINT cockroach_restart")));
});

Deno.test("transactionSteps() retries 25P02 in the body only after a retryable error was seen", () => {
  const aborted = serverError("25P02", "current transaction is aborted");
  const retried = drive<string>({
    callback: (attempt) => {
      if (attempt === 1) throw aborted;
      return "ok";
    },
    state: (attempt) => ({ lost: false, sawRetryable: attempt === 1 }),
  });
  assert.equal(retried.value, "ok");
  const plain = drive({
    callback: () => {
      throw aborted;
    },
  });
  assert.equal(plain.error, aborted);
});

Deno.test("transactionSteps() sleeps the full-jitter backoff between attempts and reports it", () => {
  const retries: RetryInfo[] = [];
  const run = withRandom(0.5, () =>
    drive<string>({
      callback: (attempt) => {
        if (attempt <= 3) throw serverError("40001");
        return "ok";
      },
    }, { initialBackoff: 100, maxBackoff: 300, onRetry: (info) => retries.push(info) }));
  assert.equal(run.value, "ok");
  assert.deepEqual(run.log.filter((s) => s.startsWith("sleep")), [
    "sleep 50",
    "sleep 100",
    "sleep 150",
  ]);
  assert.deepEqual(retries.map((r) => [r.attempt, r.delayMs]), [[1, 50], [2, 100], [3, 150]]);
});

Deno.test("transactionSteps() stops with TransactionRetryError when the deadline would pass", () => {
  let clock = 0;
  const run = withRandom(0.5, () =>
    drive(
      {
        callback: () => {
          clock += 40;
          throw serverError("40001");
        },
      },
      { initialBackoff: 20, maxBackoff: 20, deadline: 100 },
      "postgres",
      () => clock,
    ));
  assert.ok(run.error instanceof TransactionRetryError);
  assert.match(run.error.message, /deadline of 100 ms/);
  // 40 + 10 ms and 80 + 10 ms of backoff fit; 120 + 10 ms does not.
  assert.equal(run.error.attempts, 3);
  assert.equal(run.error.code, "40001");
  assert.equal(run.log.at(-1), "release");
});

Deno.test("transactionSteps() runs again when the server ended the session before it answered COMMIT (it did not commit)", () => {
  let commits = 0;
  let lost = false;
  const run = drive<string>({
    query: (text) => {
      if (text === "COMMIT" && ++commits === 1) {
        lost = true;
        throw lostError();
      }
      lost = false;
      return text;
    },
    callback: (attempt) => `attempt ${attempt}`,
    state: () => ({ lost, sawRetryable: false, unsent: lost }),
  });
  assert.equal(run.value, "attempt 2");
  assert.equal(run.log.filter((s) => s === "reserve").length, 2);
});

Deno.test("transactionSteps() on CockroachDB returns the value when the connection is lost during the COMMIT after RELEASE answered", () => {
  let lost = false;
  const run = drive<string>(
    {
      query: (text) => {
        if (text === "COMMIT") {
          lost = true;
          throw lostError();
        }
        return text.split(/[ ;]/)[0]!;
      },
      callback: () => "committed at RELEASE",
      state: () => ({ lost, sawRetryable: false }),
    },
    {},
    "cockroach",
  );
  assert.equal(run.value, "committed at RELEASE");
  assert.equal(run.log.filter((s) => s.startsWith("callback")).length, 1);
  assert.equal(run.log.at(-1), "release");
});
