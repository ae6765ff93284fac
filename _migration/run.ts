// `migrate()` and `rollback()` as programs: plan without the lock, take the lock, plan again,
// run each migration — in one transaction with its tracking row, or statement by statement with
// a progress row for `-- migrate:no-transaction` files — and report what ran. Pure given its
// config: durations and lease renewals read the injected clock (`RunnerConfig.now`), and each
// run's lock owner comes from `RunnerConfig.nextRun`; everything else is an effect.
import { createHash } from "node:crypto";
import type { Statement } from "../_sql_scan.ts";
import { DatabaseError, MigrationError } from "../errors.ts";
import type { RunnerConfig } from "./config.ts";
import { codeOf, migration, type Program, query, transaction } from "./effects.ts";
import { loadProgram } from "./directory.ts";
import {
  acquireLockProgram,
  heartbeatEffect,
  lockLost,
  releaseLockProgram,
  renewLockProgram,
} from "./lock.ts";
import { hinted, reason, shorten } from "./messages.ts";
import { type Plan, planMigrate, planRollback, type PlanStep } from "./plan.ts";
import {
  clearProgressProgram,
  createProgressTableProgram,
  initializeProgram,
  type ProgressRow,
  readAppliedProgram,
  readProgressProgram,
  readTrackingProgram,
  recordProgram,
  saveProgressProgram,
  unrecordProgram,
} from "./tables.ts";
import type {
  MigrateOptions,
  MigrateResult,
  MigrationFile,
  MigrationHistoryEntry,
  MigrationRun,
  RollbackOptions,
} from "./types.ts";

function failure(
  s: PlanStep,
  error: unknown,
  statement: Statement | undefined,
  index: number,
  extra = "",
): MigrationError {
  const code = codeOf(error);
  const where = s.direction === "up" ? s.file.path : s.file.downPath ?? s.file.path;
  const verb = s.direction === "up" ? "apply" : "revert";
  const at = statement
    ? ` (statement ${index + 1} of ${s.statements.length}, line ${statement.line}: "${
      shorten(statement.text)
    }")`
    : "";
  const committedButAborted = code === "XXA00"
    ? "the transaction committed but its schema change was aborted: "
    : "";
  const server = error instanceof DatabaseError ? error : undefined;
  return new MigrationError(
    `Cannot ${verb} migration "${where}"${at}: ${committedButAborted}${reason(error)}${extra}`,
    {
      cause: error,
      code: code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : "MIGRATION_ERROR",
      version: s.file.version,
      path: where,
      statement: statement?.text,
      detail: server?.detail,
      hint: server?.hint,
      constraint: server?.constraint,
      table: server?.table,
      column: server?.column,
      severity: server?.severity,
    },
  );
}

/** Runs one transactional migration: its statements and its tracking row commit together. */
function* runInTransaction(c: RunnerConfig, s: PlanStep): Program<number> {
  let current: Statement | undefined;
  let index = 0;
  let durationMs = 0;
  try {
    yield* transaction(function* () {
      const started = c.now();
      for (const [i, statement] of s.statements.entries()) {
        index = i;
        current = statement;
        yield* query(statement.text);
      }
      current = undefined;
      durationMs = Math.round(c.now() - started);
      if (!(yield* recordProgram(c, s.file, s.direction, durationMs))) throw lockLost(c, s.file);
    });
  } catch (error) {
    if (error instanceof MigrationError && error.code === "MIGRATION_LOCK_LOST") throw error;
    if (codeOf(error) === "XXA00") {
      // CockroachDB committed the data changes and the tracking row but undid the schema
      // change: take the row back so the migration does not pass for applied.
      let undone = "";
      try {
        yield* transaction(() => unrecordProgram(c, s.file, s.direction));
        undone = s.direction === "up"
          ? "; it is recorded as not applied, but its other statements' effects may have committed: check before running it again"
          : "; it is recorded as still applied, but its other statements' effects may have committed: check before running it again";
      } catch {
        undone = "; the tracking table could not be corrected: check it by hand";
      }
      throw failure(s, error, undefined, 0, undone);
    }
    throw failure(s, error, current, index);
  }
  return durationMs;
}

function prefixChecksum(statements: readonly Statement[], count: number): string {
  return createHash("sha256").update(
    JSON.stringify(statements.slice(0, count).map((s) => s.text)),
    "utf8",
  ).digest("hex");
}

/**
 * Runs one `-- migrate:no-transaction` migration statement by statement, recording after each
 * one how far it got, so that a failure names the statement and the next run resumes after the
 * statements already committed (when they are unchanged).
 */
function* runWithoutTransaction(
  c: RunnerConfig,
  s: PlanStep,
  allowModified: boolean,
): Program<number> {
  yield* createProgressTableProgram(c);
  const found = (yield* readProgressProgram(c)).find((p) => p.version === s.file.version);
  let from = 0;
  if (found) {
    const same = found.direction === s.direction && found.statementsDone <= s.statements.length &&
      found.doneChecksum === prefixChecksum(s.statements, found.statementsDone);
    if (same) from = found.statementsDone;
    else if (!allowModified) {
      throw hinted(
        `Cannot ${
          s.direction === "up" ? "apply" : "revert"
        } migration "${s.file.path}": an earlier ${found.direction} run committed ${found.statementsDone} of its statements, which have changed since`,
        { code: "MIGRATION_PARTIAL", version: s.file.version, path: s.file.path },
      );
    }
  }
  const progress = (done: number, error: string | null): ProgressRow => ({
    version: s.file.version,
    direction: s.direction,
    checksum: s.file.checksum,
    statementsDone: done,
    statementsTotal: s.statements.length,
    doneChecksum: prefixChecksum(s.statements, done),
    error,
  });
  const started = c.now();
  let lastRenewal = started;
  for (const [i, statement] of s.statements.entries()) {
    if (i < from) continue; // committed by an earlier run
    // Each statement commits on its own, so the lock is checked (and renewed) before each one.
    if (i === from || c.now() - lastRenewal > c.leaseDuration / 3) {
      if (!(yield* renewLockProgram(c))) throw lockLost(c, s.file);
      lastRenewal = c.now();
    }
    try {
      yield* query(statement.text);
    } catch (error) {
      const committed = i === 0
        ? "; no statement of it was committed"
        : `; statements 1 to ${i} were committed and the next run resumes at statement ${i + 1}`;
      try {
        yield* saveProgressProgram(c, progress(i, reason(error)));
      } catch {
        // The failure itself is what matters; the progress row is a convenience.
      }
      throw failure(s, error, statement, i, committed);
    }
    yield* saveProgressProgram(c, progress(i + 1, null));
  }
  const durationMs = Math.round(c.now() - started);
  try {
    yield* transaction(function* () {
      if (!(yield* recordProgram(c, s.file, s.direction, durationMs))) throw lockLost(c, s.file);
      yield* clearProgressProgram(c, s.file.version);
    });
  } catch (error) {
    if (error instanceof MigrationError) throw error;
    throw failure(
      s,
      error,
      undefined,
      0,
      "; its statements were all committed, but recording that failed",
    );
  }
  return durationMs;
}

/**
 * `migrate()` and `rollback()`: plans, and runs the plan under the lock, creating the tracking
 * and lock tables first when they do not exist yet.
 */
function* runProgram(
  c: RunnerConfig,
  makePlan: (files: MigrationFile[], applied: MigrationHistoryEntry[]) => Plan,
  options: Pick<MigrateOptions, "dryRun" | "allowModified" | "onProgress">,
): Program<MigrateResult> {
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new TypeError("Cannot migrate: onProgress must be a function");
  }
  const files = yield* loadProgram(c);
  // Planned first without the lock, which writes: a dry run, or a run with nothing to do,
  // writes nothing (and so works for a role that may only read).
  const before = yield* readTrackingProgram(c, "version");
  const first = makePlan(files, before ?? []);
  if (options.dryRun) return result(first, true, first.steps.map((s) => run(s, 0, s.sql)));
  if (first.steps.length === 0) return result(first, false, []);
  // Each run is a lock owner of its own, so that two runs of one runner exclude each other too.
  c = { ...c, owner: `${c.owner}/${c.nextRun()}` };
  // The tables are created when a migration is first applied.
  if (before === null) yield* initializeProgram(c);
  yield* acquireLockProgram(c, onProgress);
  const done: MigrationRun[] = [];
  try {
    yield heartbeatEffect(c);
    // Another runner may have applied migrations while this one waited for the lock.
    const applied = yield* readAppliedProgram(c);
    const p = makePlan(files, applied);
    let lastRenewal = c.now();
    for (const s of p.steps) {
      if (c.now() - lastRenewal > c.leaseDuration / 3) {
        if (!(yield* renewLockProgram(c))) throw lockLost(c, s.file);
        lastRenewal = c.now();
      }
      const f = s.file;
      onProgress?.({
        type: "start",
        version: f.version,
        name: f.name,
        direction: s.direction,
        path: f.path,
      });
      const durationMs = yield* migration(
        { version: f.version, name: f.name, direction: s.direction },
        () =>
          f.noTransaction
            ? runWithoutTransaction(c, s, options.allowModified === true)
            : runInTransaction(c, s),
      );
      done.push(run(s, durationMs));
      onProgress?.({
        type: "done",
        version: f.version,
        name: f.name,
        direction: s.direction,
        path: f.path,
        durationMs,
      });
      if (f.noTransaction) lastRenewal = c.now();
    }
    return result(p, false, done);
  } finally {
    yield { kind: "heartbeat" };
    try {
      yield* releaseLockProgram(c);
    } catch {
      // The lease runs out by itself.
    }
  }
}

function run(s: PlanStep, durationMs: number, sql?: string): MigrationRun {
  const base = {
    version: s.file.version,
    name: s.file.name,
    direction: s.direction,
    durationMs,
    path: s.direction === "up" ? s.file.path : s.file.downPath ?? s.file.path,
  };
  return Object.freeze(sql === undefined ? base : { ...base, sql });
}

function result(p: Plan, dryRun: boolean, runs: MigrationRun[]): MigrateResult {
  return Object.freeze({
    applied: runs.length,
    direction: p.direction,
    fromVersion: p.fromVersion,
    toVersion: p.toVersion,
    dryRun,
    migrations: Object.freeze(runs),
  });
}

/** `migrate(options)`. */
export function migrateProgram(
  c: RunnerConfig,
  options: MigrateOptions = {},
): Program<MigrateResult> {
  checkOptions(options, "migrate");
  return runProgram(c, (files, applied) => planMigrate(files, applied, options), options);
}

/** `rollback(options)`. */
export function rollbackProgram(
  c: RunnerConfig,
  options: RollbackOptions = {},
): Program<MigrateResult> {
  checkOptions(options, "roll back");
  return runProgram(c, (files, applied) => planRollback(files, applied, options), options);
}

function checkOptions(options: unknown, what: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${what}: options must be an object`);
  }
}
