import assert from "node:assert/strict";
import {
  asOfSystemTimeSql,
  backoffDelay,
  buildBegin,
  type SessionState,
  transactionSettings,
  type TransactionStep,
  transactionSteps,
} from "./_retry.ts";
import type { RetryInfo, TransactionOptions } from "./_config.ts";
import type { Dialect } from "./_sql.ts";
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  TransactionRetryError,
  ValidationError,
} from "./errors.ts";

const SAVEPOINT = "cockroach_restart";
const PG_BEGIN = "BEGIN";
const CRDB_BEGIN = `BEGIN; SAVEPOINT ${SAVEPOINT}`;
const RELEASE = `RELEASE SAVEPOINT ${SAVEPOINT}`;
const ROLLBACK_TO = `ROLLBACK TO SAVEPOINT ${SAVEPOINT}`;
/** The callback's first statement, carrying PostgreSQL's deferred BEGIN. */
const PG_FIRST = `callback (${PG_BEGIN})`;
/** The callback's first statement, carrying CockroachDB's deferred BEGIN and savepoint. */
const CRDB_FIRST = `callback (${CRDB_BEGIN})`;
/** RELEASE and COMMIT, one write. */
const RELEASE_COMMIT = `${RELEASE} + COMMIT`;

function serverError(code: string, message = `server said ${code}`): DatabaseError {
  return new DatabaseError(`Cannot execute query: ${message}`, { code, severity: "ERROR" });
}

function lostError(): ConnectionError {
  return new ConnectionError('Connection to "h:1" lost: the server closed it', {
    code: "CONNECTION_CLOSED",
  });
}

/** What the scripted driver answers; each hook sees the attempt (1-based: callbacks run so far). */
interface Script {
  /**
   * Answer to a statement sent (the deferred ones included): a command tag, or throw. Default:
   * the statement's verb.
   */
  query?(text: string, attempt: number): string;
  /** The callback: a value, or throw. It runs after its first statement was answered. */
  callback?(attempt: number): unknown;
  /** The callback sends no statement: the deferred BEGIN stays unsent. */
  silent?(attempt: number): boolean;
  /** The callback catches its first statement's failure (a deferred BEGIN's) and goes on. */
  swallows?(attempt: number): boolean;
  /** Overrides of the answer to `state`. */
  state?(attempt: number): Partial<SessionState>;
  /** Answer to `reserve`: nothing, or throw. */
  reserve?(count: number): void;
}

interface Run<T> {
  /**
   * Every step: `reserve`, `callback`, `state`, `release`, `sleep <ms>`, or what was sent, a
   * chain as `A + B` (a callback whose first statement carried deferred ones as
   * `callback (A; B)`).
   */
  readonly log: string[];
  readonly value?: T;
  readonly error?: unknown;
}

/** Drives the state machine the way the async database does, with scripted answers. */
function drive<T>(
  script: Script,
  options: TransactionOptions = {},
  dialect: Dialect = "postgres",
  now?: () => number,
): Run<T> {
  const settings = transactionSettings({ initialBackoff: 0, ...options });
  const steps = transactionSteps<T>(settings, dialect, now);
  const log: string[] = [];
  let attempt = 0;
  let reserves = 0;
  // The performer's link: deferred statements, the failure of one, the connection's status.
  let pending: string[] = [];
  let deferredError: unknown;
  let status: "I" | "T" | "E" = "I";
  // Sends the deferred statements, then `text` if any; the first failure ends the chain.
  const send = (text: string | undefined): string | undefined => {
    const deferred = pending;
    pending = [];
    let tag: string | undefined;
    for (const [i, t] of [...deferred, ...(text === undefined ? [] : [text])].entries()) {
      try {
        tag = script.query?.(t, attempt) ?? t.split(/[ ;]/)[0];
      } catch (error) {
        if (i < deferred.length) deferredError ??= error;
        status = t === PG_BEGIN || t.startsWith("BEGIN ") || t.startsWith("COMMIT") ||
            t === "ROLLBACK"
          ? "I"
          : "E";
        throw error;
      }
      if (t.startsWith("BEGIN")) status = "T";
      if (t === "COMMIT" || t === "ROLLBACK") status = "I";
    }
    return tag;
  };
  let input: { value?: unknown; error?: unknown } = {};
  for (let guard = 0; guard < 1000; guard++) {
    let next: IteratorResult<TransactionStep, T>;
    try {
      next = "error" in input ? steps.throw(input.error) : steps.next(input.value);
    } catch (error) {
      return { log, error };
    }
    if (next.done) return { log, value: next.value };
    const step = next.value;
    try {
      switch (step.kind) {
        case "reserve":
          log.push("reserve");
          pending = [];
          status = "I";
          script.reserve?.(++reserves);
          input = { value: undefined };
          break;
        case "defer":
          deferredError = undefined;
          pending.push(...step.texts);
          input = { value: undefined };
          break;
        case "discard":
          pending = [];
          deferredError = undefined;
          input = { value: undefined };
          break;
        case "query": {
          log.push([...pending, step.text].join(" + "));
          input = { value: send(step.text) };
          break;
        }
        case "callback": {
          attempt++;
          const silent = script.silent?.(attempt) ?? false;
          log.push(
            silent || pending.length === 0 ? "callback" : `callback (${pending.join("; ")})`,
          );
          if (!silent && pending.length > 0) {
            try {
              send(undefined);
            } catch (error) {
              if (!(script.swallows?.(attempt) ?? false)) throw error;
            }
          }
          input = { value: script.callback?.(attempt) };
          break;
        }
        case "state":
          log.push("state");
          input = {
            value: {
              lost: false,
              sawRetryable: false,
              deferredError,
              deferredUnsent: pending.length > 0,
              status,
              ...script.state?.(attempt),
            } satisfies SessionState,
          };
          break;
        case "sleep":
          log.push(`sleep ${step.ms}`);
          input = { value: undefined };
          break;
        case "release":
          log.push("release");
          input = { value: undefined };
          break;
      }
    } catch (error) {
      input = { error };
    }
  }
  throw new Error("The state machine did not finish within 1000 steps");
}

/** buildBegin()'s statements as one text. */
function beginText(options: TransactionOptions, dialect: Dialect): string {
  return buildBegin(options, dialect).join("; ");
}

/** Runs `fn` with `Math.random` answering `value`. */
function withRandom<T>(value: number, fn: () => T): T {
  const saved = Math.random;
  Math.random = () => value;
  try {
    return fn();
  } finally {
    Math.random = saved;
  }
}

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
    return text.split(" ")[0];
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
        return text.split(" ")[0];
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
  assert.equal(retries[0].attempt, 1);
  assert.equal(retries[0].error, conflict);
  assert.equal(retries[0].delayMs, 0);
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
      return text.split(" ")[0];
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
        return text.split(" ")[0];
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
        return text.split(" ")[0];
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
