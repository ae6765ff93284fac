// The tables of the migration engine but the lock's row (`lock.ts`): the tracking table
// (`version`, `name`, `checksum`, `applied_at`, `duration_ms`) and the progress table of
// no-transaction migrations — the programs that create them (the lock table with the tracking
// table), read them and write them. Pure: every statement is an effect.
import { DatabaseError, MigrationError } from "../errors.ts";
import type { RunnerConfig } from "./config.ts";
import { codeOf, type Program, query, type Row, sleep } from "./effects.ts";
import { reason } from "./messages.ts";
import type { MigrationDirection, MigrationFile, MigrationHistoryEntry } from "./types.ts";

const sleepAfterRace = [20, 50, 100, 200, 400];

/**
 * Creates the tracking and lock tables (idempotent; survives a concurrent runner doing the
 * same).
 *
 * @throws {MigrationError} naming the tables when the server refuses (a role without CREATE).
 */
export function* initializeProgram(c: RunnerConfig): Program<void> {
  const ddl = `CREATE TABLE IF NOT EXISTS ${c.table} (
  version INT8 PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  duration_ms INT8 NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ${c.lockTable} (
  id INT8 PRIMARY KEY,
  owner TEXT NOT NULL,
  acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at TIMESTAMPTZ NOT NULL
)`;
  for (let attempt = 0;; attempt++) {
    try {
      yield* query(ddl);
      return;
    } catch (error) {
      // PostgreSQL: two CREATE TABLE IF NOT EXISTS at once can both pass the check, and the
      // loser fails on the catalog's unique index; by the time it retries the table exists.
      const code = codeOf(error);
      const race = code === "23505" || code === "42P07" || code === "42710" || code === "40001" ||
        code === "40P01";
      const pause = sleepAfterRace[attempt];
      if (!race || pause === undefined) {
        // A refusal (no CREATE privilege, no such schema) names the tables; anything else,
        // such as a lost connection, keeps its own type.
        if (!(error instanceof DatabaseError) || !/^(42|3F)/.test(error.code)) throw error;
        throw new MigrationError(
          `Cannot create the migration tables "${c.tableName}" and "${c.lockTableName}": ${
            reason(error)
          }`,
          { cause: error, code: error.code, detail: error.detail, hint: error.hint },
        );
      }
      yield* sleep(pause);
    }
  }
}

function toHistory(row: Row): MigrationHistoryEntry {
  return Object.freeze({
    version: Number(row.version),
    name: String(row.name),
    checksum: row.checksum === null || row.checksum === undefined ? null : String(row.checksum),
    appliedAt: row.applied_at as Date,
    durationMs: Number(row.duration_ms ?? 0),
  });
}

// Reading operations never create the tables: they must work for a role that may only read,
// and leave a database the user only looked at as it was. A table that does not exist yet
// holds nothing.
/** The tracking rows in `order`, or `null` while the tracking table does not exist. */
export function* readTrackingProgram(
  c: RunnerConfig,
  order: "version" | "applied_at, version",
): Program<MigrationHistoryEntry[] | null> {
  try {
    const rows = yield* query(
      `SELECT version, name, checksum, applied_at, duration_ms FROM ${c.table} ORDER BY ${order}`,
    );
    return rows.map(toHistory);
  } catch (error) {
    if (codeOf(error) === "42P01") return null;
    throw error;
  }
}

/** The tracking rows, by version (none while the tracking table does not exist). */
export function* readAppliedProgram(c: RunnerConfig): Program<MigrationHistoryEntry[]> {
  return (yield* readTrackingProgram(c, "version")) ?? [];
}

/** The tracking rows in the order they were applied (none while the table does not exist). */
export function* historyProgram(c: RunnerConfig): Program<MigrationHistoryEntry[]> {
  return (yield* readTrackingProgram(c, "applied_at, version")) ?? [];
}

/** The partial progress rows (none when the progress table was never needed). */
export function* readProgressProgram(c: RunnerConfig): Program<ProgressRow[]> {
  try {
    const rows = yield* query(
      `SELECT version, direction, checksum, statements_done, statements_total, done_checksum, error FROM ${c.progressTable} ORDER BY version`,
    );
    return rows.map((r) => ({
      version: Number(r.version),
      direction: r.direction === "down" ? "down" : "up",
      checksum: String(r.checksum),
      statementsDone: Number(r.statements_done),
      statementsTotal: Number(r.statements_total),
      doneChecksum: String(r.done_checksum),
      error: r.error === null || r.error === undefined ? null : String(r.error),
    }));
  } catch (error) {
    if (codeOf(error) === "42P01") return [];
    throw error;
  }
}

/** A row of the progress table: how far a no-transaction migration got. */
export interface ProgressRow {
  /** The migration's version. */
  readonly version: number;
  /** The direction that ran. */
  readonly direction: MigrationDirection;
  /** The checksum of its file. */
  readonly checksum: string;
  /** How many statements were committed. */
  readonly statementsDone: number;
  /** How many statements it has. */
  readonly statementsTotal: number;
  /** The checksum of the committed statements' texts, to tell whether they changed since. */
  readonly doneChecksum: string;
  /** The error that stopped it, if any. */
  readonly error: string | null;
}

/**
 * Records a migration run in the tracking table — a row for `up`, none for `down` — if this
 * run still holds the lock; answers whether it did (if not, nothing was written).
 */
export function* recordProgram(
  c: RunnerConfig,
  file: MigrationFile,
  direction: MigrationDirection,
  durationMs: number,
): Program<boolean> {
  const rows = direction === "up"
    ? yield* query(
      `INSERT INTO ${c.table} (version, name, checksum, applied_at, duration_ms)
SELECT $1::INT8, $2::TEXT, $3::TEXT, now(), $4::INT8 FROM ${c.lockTable} WHERE id = 1 AND owner = $5::TEXT
RETURNING version`,
      [file.version, file.name, file.checksum, durationMs, c.owner],
    )
    : yield* query(
      `DELETE FROM ${c.table} WHERE version = $1::INT8
AND EXISTS (SELECT 1 FROM ${c.lockTable} WHERE id = 1 AND owner = $2::TEXT)
RETURNING version`,
      [file.version, c.owner],
    );
  return rows.length > 0;
}

/** Takes back what {@linkcode recordProgram} wrote for a run in `direction`. */
export function* unrecordProgram(
  c: RunnerConfig,
  file: MigrationFile,
  direction: MigrationDirection,
): Program<void> {
  if (direction === "up") {
    yield* query(`DELETE FROM ${c.table} WHERE version = $1::INT8`, [file.version]);
  } else {
    yield* query(
      `INSERT INTO ${c.table} (version, name, checksum, duration_ms) VALUES ($1::INT8, $2, $3, 0) ON CONFLICT (version) DO NOTHING`,
      [file.version, file.name, file.checksum],
    );
  }
}

/** Creates the progress table (idempotent), when a no-transaction migration first runs. */
export function* createProgressTableProgram(c: RunnerConfig): Program<void> {
  yield* query(`CREATE TABLE IF NOT EXISTS ${c.progressTable} (
  version INT8 PRIMARY KEY,
  direction TEXT NOT NULL,
  checksum TEXT NOT NULL,
  statements_done INT8 NOT NULL,
  statements_total INT8 NOT NULL,
  done_checksum TEXT NOT NULL,
  error TEXT,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`);
}

/** Writes how far a no-transaction migration got (one row per version). */
export function* saveProgressProgram(c: RunnerConfig, row: ProgressRow): Program<void> {
  yield* query(
    `INSERT INTO ${c.progressTable} AS p (version, direction, checksum, statements_done, statements_total, done_checksum, error, updated_at)
VALUES ($1::INT8, $2, $3, $4::INT8, $5::INT8, $6, $7, now())
ON CONFLICT (version) DO UPDATE SET direction = excluded.direction, checksum = excluded.checksum,
statements_done = excluded.statements_done, statements_total = excluded.statements_total,
done_checksum = excluded.done_checksum, error = excluded.error, updated_at = excluded.updated_at`,
    [
      row.version,
      row.direction,
      row.checksum,
      row.statementsDone,
      row.statementsTotal,
      row.doneChecksum,
      row.error,
    ],
  );
}

/** Removes the progress row of a version, once the migration is recorded. */
export function* clearProgressProgram(c: RunnerConfig, version: number): Program<void> {
  yield* query(`DELETE FROM ${c.progressTable} WHERE version = $1::INT8`, [version]);
}
