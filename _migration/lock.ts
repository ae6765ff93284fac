// The lease lock: one row in the lock table names the runner that may migrate and until when.
// The SQL that takes, renews, checks and releases it, and the program that waits for it. The
// lease's end is computed by the server's clock; this runner's waiting uses the injected clock
// (`RunnerConfig.now`). Pure: every statement and sleep is an effect.
import { MigrationError } from "../errors.ts";
import type { RunnerConfig } from "./config.ts";
import { codeOf, type Effect, type Program, query, type Row, sleep } from "./effects.ts";
import { hinted } from "./messages.ts";
import { initializeProgram } from "./tables.ts";
import type { MigrationFile, MigrationProgress } from "./types.ts";

// The lease's end, by the server's clock ($2: the lease in milliseconds), so that runners on
// machines with skewed clocks agree.
const LEASE_END = "now() + ($2::INT8 * INTERVAL '1 millisecond')";

function renewText(c: RunnerConfig): string {
  return `UPDATE ${c.lockTable} SET expires_at = ${LEASE_END} WHERE id = 1 AND owner = $1 RETURNING id`;
}

function leaseParams(c: RunnerConfig): unknown[] {
  return [c.owner, Math.ceil(c.leaseDuration)];
}

/** Extends this run's lease; answers whether it still held the lock. */
export function* renewLockProgram(c: RunnerConfig): Program<boolean> {
  return (yield* query(renewText(c), leaseParams(c))).length > 0;
}

/** The effect that starts renewing the lease in the background, every third of the lease. */
export function heartbeatEffect(c: RunnerConfig): Effect {
  return {
    kind: "heartbeat",
    text: renewText(c),
    params: leaseParams(c),
    intervalMs: c.leaseDuration / 3,
  };
}

/**
 * Takes the lease, waiting up to `lockTimeout` for another runner's lease to end.
 *
 * @throws {MigrationError} (code `MIGRATION_LOCKED`) when it cannot.
 */
export function* acquireLockProgram(
  c: RunnerConfig,
  onProgress: ((event: MigrationProgress) => void) | undefined,
): Program<void> {
  const started = c.now();
  const take = `INSERT INTO ${c.lockTable} AS l (id, owner, acquired_at, expires_at)
VALUES (1, $1::TEXT, now(), ${LEASE_END})
ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
WHERE l.expires_at < now()
RETURNING owner`;
  const params = leaseParams(c);
  let told = false;
  let delay = 25;
  let created = false;
  for (;;) {
    let holder: Row | "taken" | undefined;
    try {
      // One statement takes the lock; the read of its holder needs no transaction around it
      // (a lock released in between is read as no holder, and taken on the next turn).
      const rows = yield* query(take, params);
      holder = rows.length > 0
        ? "taken"
        : (yield* query(`SELECT owner, expires_at FROM ${c.lockTable} WHERE id = 1`))[0];
    } catch (error) {
      // The tracking table exists but the lock table does not (a new lockTableName, or one
      // dropped by hand): create it, once.
      if (codeOf(error) !== "42P01" || created) throw error;
      created = true;
      yield* initializeProgram(c);
      continue;
    }
    if (holder === "taken") return;
    // Released between the two statements: try again at once.
    if (holder === undefined) continue;
    const owner = String(holder.owner);
    const expiresAt = holder.expires_at as Date;
    if (!told) {
      told = true;
      onProgress?.({ type: "waiting", owner, expiresAt });
    }
    const waited = c.now() - started;
    if (waited >= c.lockTimeout) {
      throw hinted(
        `Cannot acquire the migration lock "${c.lockTableName}": held by "${owner}" until ${expiresAt.toISOString()}; waited ${
          Math.round(waited)
        } ms`,
        { code: "MIGRATION_LOCKED" },
      );
    }
    const ms = Math.min(delay * (0.5 + c.random() / 2), c.lockTimeout - waited);
    yield* sleep(Math.max(1, Math.ceil(ms)));
    delay = Math.min(delay * 2, 1000);
  }
}

/** Releases the lease if this runner still holds it. */
export function* releaseLockProgram(c: RunnerConfig): Program<void> {
  yield* query(`DELETE FROM ${c.lockTable} WHERE id = 1 AND owner = $1`, [c.owner]);
}

/** Removes whatever lease is held; answers whether there was one (no lock table: none). */
export function* unlockProgram(c: RunnerConfig): Program<boolean> {
  try {
    const rows = yield* query(`DELETE FROM ${c.lockTable} WHERE id = 1 RETURNING owner`);
    return rows.length > 0;
  } catch (error) {
    if (codeOf(error) === "42P01") return false;
    throw error;
  }
}

/** The error of a run that finds, before recording a migration, that it lost the lock. */
export function lockLost(c: RunnerConfig, file: MigrationFile): MigrationError {
  return new MigrationError(
    `Cannot record migration "${file.path}": this runner no longer holds the migration lock "${c.lockTableName}" (its lease ran out and another runner took it); nothing of this migration was kept`,
    { code: "MIGRATION_LOCK_LOST", version: file.version, path: file.path },
  );
}
