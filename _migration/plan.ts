// Planning, pure: from the migration files and the tracking rows, which migrations a
// `migrate()` or `rollback()` runs, in which direction and order — checked before anything
// runs (modified files, out-of-order versions, migrations without down SQL, statements that
// control the transaction).
import { isTransactionControl, splitStatements, type Statement } from "../_sql_scan.ts";
import { MigrationError } from "../errors.ts";
import { hinted, shorten } from "./messages.ts";
import type {
  MigrateOptions,
  MigrationDirection,
  MigrationFile,
  MigrationHistoryEntry,
  RollbackOptions,
} from "./types.ts";

/** One migration a run will apply or revert. */
export interface PlanStep {
  /** The migration. */
  readonly file: MigrationFile;
  /** Apply or revert. */
  readonly direction: MigrationDirection;
  /** The SQL that runs: the up or the down SQL. */
  readonly sql: string;
  /** That SQL's statements. */
  readonly statements: readonly Statement[];
}

/** What a run will do. */
export interface Plan {
  /** `up`, `down`, or `none` when there is nothing to do. */
  readonly direction: MigrationDirection | "none";
  /** The highest applied version before the run. */
  readonly fromVersion: number;
  /** The highest applied version after it. */
  readonly toVersion: number;
  /** The migrations, in the order they run. */
  readonly steps: readonly PlanStep[];
}

/** The highest applied version, or 0. */
export function currentVersion(applied: readonly MigrationHistoryEntry[]): number {
  let max = 0;
  for (const r of applied) max = Math.max(max, r.version);
  return max;
}

function checkVersionOption(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Cannot use ${what} ${String(value)}: expected a whole number from 0`);
  }
  return value;
}

function checkModified(
  files: readonly MigrationFile[],
  applied: readonly MigrationHistoryEntry[],
  allow: boolean | undefined,
): void {
  if (allow) return;
  const byVersion = new Map(files.map((f) => [f.version, f]));
  const modified: MigrationFile[] = [];
  for (const r of applied) {
    const f = byVersion.get(r.version);
    if (f !== undefined && r.checksum !== null && r.checksum !== f.checksum) modified.push(f);
  }
  const [first] = modified;
  if (first !== undefined) {
    const list = modified.map((f) => `"${f.path}"`);
    throw hinted(
      `Cannot migrate: ${modified.length === 1 ? "applied migration" : "applied migrations"} ${
        list.join(", ")
      } changed since ${modified.length === 1 ? "it was" : "they were"} applied (checksum differs)`,
      { code: "MIGRATION_MODIFIED", version: first.version, path: first.path },
    );
  }
}

function step(file: MigrationFile, direction: MigrationDirection): PlanStep {
  const sql = direction === "up" ? file.upSql : file.downSql ?? "";
  const statements = splitStatements(sql);
  const control = statements.find((s) => isTransactionControl(s.text));
  if (control) {
    const where = direction === "up" ? file.path : file.downPath ?? file.path;
    throw new MigrationError(
      `Cannot run migration "${where}": statement at line ${control.line} ("${
        shorten(control.text)
      }") controls the transaction; each migration already runs in one (or, marked "-- migrate:no-transaction", statement by statement): split the file instead`,
      { code: "MIGRATION_INVALID", version: file.version, path: where, statement: control.text },
    );
  }
  return { file, direction, sql, statements };
}

function downSteps(
  files: readonly MigrationFile[],
  versions: readonly number[],
): PlanStep[] {
  const byVersion = new Map(files.map((f) => [f.version, f]));
  const steps: PlanStep[] = [];
  // Every migration of the run is checked before the first one changes anything.
  for (const version of versions) {
    const file = byVersion.get(version);
    if (file === undefined) {
      throw new MigrationError(
        `Cannot revert version ${version}: its file is missing, so there is no down SQL`,
        { code: "MIGRATION_MISSING", version },
      );
    }
    if (file.downSql === null) {
      throw new MigrationError(
        `Cannot revert "${file.path}": it has no down SQL (add a "-- DOWN" section or a U${file.version}__${file.name}.sql file)`,
        { code: "MIGRATION_IRREVERSIBLE", version, path: file.path },
      );
    }
    steps.push(step(file, "down"));
  }
  return steps;
}

/**
 * What `migrate()` runs: up to the target (every pending file by default), or down to it when
 * it is below the current version.
 *
 * @throws {RangeError} for a bad target.
 * @throws {MigrationError} for a modified applied file, an out-of-order pending one, or a
 * migration that cannot be reverted — before anything runs.
 */
export function planMigrate(
  files: readonly MigrationFile[],
  applied: readonly MigrationHistoryEntry[],
  options: MigrateOptions = {},
): Plan {
  const target = checkVersionOption(options.targetVersion, "targetVersion");
  const current = currentVersion(applied);
  checkModified(files, applied, options.allowModified);
  if (target !== undefined && target < current) {
    const versions = applied.map((r) => r.version).filter((v) => v > target).sort((a, b) => b - a);
    return plan("down", current, applied, downSteps(files, versions));
  }
  const done = new Set(applied.map((r) => r.version));
  const pending = files.filter((f) => !done.has(f.version) && (target ?? Infinity) >= f.version);
  const early = pending.filter((f) => f.version < current);
  const [first] = early;
  if (first !== undefined && !options.allowOutOfOrder) {
    throw hinted(
      `Cannot migrate: pending ${early.length === 1 ? "migration" : "migrations"} ${
        early.map((f) => `"${f.path}"`).join(", ")
      } ${
        early.length === 1 ? "has a version" : "have versions"
      } below the highest applied version ${current}`,
      { code: "MIGRATION_OUT_OF_ORDER", version: first.version, path: first.path },
    );
  }
  return plan("up", current, applied, pending.map((f) => step(f, "up")));
}

/**
 * What `rollback()` runs: the `count` highest applied versions (1 by default), or every one
 * above `targetVersion`, in descending order.
 *
 * @throws {TypeError} when both `count` and `targetVersion` are given.
 * @throws {RangeError} for a bad count or target.
 * @throws {MigrationError} for a migration that cannot be reverted or a modified file.
 */
export function planRollback(
  files: readonly MigrationFile[],
  applied: readonly MigrationHistoryEntry[],
  options: RollbackOptions = {},
): Plan {
  if (options.count !== undefined && options.targetVersion !== undefined) {
    throw new TypeError("Cannot roll back: give count or targetVersion, not both");
  }
  const target = checkVersionOption(options.targetVersion, "targetVersion");
  const count = checkVersionOption(options.count, "count") ?? 1;
  checkModified(files, applied, options.allowModified);
  const descending = applied.map((r) => r.version).sort((a, b) => b - a);
  const versions = target === undefined
    ? descending.slice(0, count)
    : descending.filter((v) => v > target);
  return plan("down", currentVersion(applied), applied, downSteps(files, versions));
}

function plan(
  direction: MigrationDirection,
  current: number,
  applied: readonly MigrationHistoryEntry[],
  steps: PlanStep[],
): Plan {
  if (steps.length === 0) {
    return { direction: "none", fromVersion: current, toVersion: current, steps };
  }
  const versions = new Set(applied.map((r) => r.version));
  for (const s of steps) {
    if (direction === "up") versions.add(s.file.version);
    else versions.delete(s.file.version);
  }
  return { direction, fromVersion: current, toVersion: Math.max(0, ...versions), steps };
}
