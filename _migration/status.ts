// Status and verify: the state of every migration (applied, pending, modified, missing, part
// way) from the files, the tracking rows and the progress rows — pure — and the programs that
// read them for `status()` and `pending()`.
import { loadProgram } from "./directory.ts";
import type { Program } from "./effects.ts";
import type { RunnerConfig } from "./config.ts";
import { currentVersion } from "./plan.ts";
import { type ProgressRow, readAppliedProgram, readProgressProgram } from "./tables.ts";
import type {
  MigrationFile,
  MigrationHistoryEntry,
  MigrationState,
  MigrationStatus,
  PartialProgress,
  VerifyResult,
} from "./types.ts";

/** Every file and every tracking row, by version. */
export function computeStatus(
  files: readonly MigrationFile[],
  applied: readonly MigrationHistoryEntry[],
  progress: readonly ProgressRow[] = [],
): MigrationStatus[] {
  const rows = new Map(applied.map((r) => [r.version, r]));
  const partial = new Map(progress.map((p) => [p.version, p]));
  const current = currentVersion(applied);
  const out: MigrationStatus[] = [];
  const partialOf = (version: number): PartialProgress | null => {
    const p = partial.get(version);
    return p
      ? Object.freeze({
        direction: p.direction,
        statementsDone: p.statementsDone,
        statementsTotal: p.statementsTotal,
        error: p.error,
      })
      : null;
  };
  for (const f of files) {
    const row = rows.get(f.version);
    const state: MigrationState = row === undefined
      ? "pending"
      : row.checksum !== null && row.checksum !== f.checksum
      ? "modified"
      : "applied";
    out.push(Object.freeze({
      version: f.version,
      name: f.name,
      state,
      path: f.path,
      checksum: f.checksum,
      appliedChecksum: row?.checksum ?? null,
      appliedAt: row?.appliedAt ?? null,
      durationMs: row?.durationMs ?? null,
      outOfOrder: row === undefined && f.version < current,
      reversible: f.downSql !== null,
      partial: partialOf(f.version),
    }));
  }
  const known = new Set(files.map((f) => f.version));
  for (const row of applied) {
    if (known.has(row.version)) continue;
    out.push(Object.freeze({
      version: row.version,
      name: row.name,
      state: "missing",
      path: null,
      checksum: null,
      appliedChecksum: row.checksum,
      appliedAt: row.appliedAt,
      durationMs: row.durationMs,
      outOfOrder: false,
      reversible: false,
      partial: partialOf(row.version),
    }));
  }
  return out.sort((a, b) => a.version - b.version);
}

/** The `verify()` report from a status. */
export function verifyStatus(status: readonly MigrationStatus[]): VerifyResult {
  const modified = status.filter((s) => s.state === "modified");
  const missing = status.filter((s) => s.state === "missing");
  const outOfOrder = status.filter((s) => s.outOfOrder);
  const partial = status.filter((s) => s.partial !== null);
  return Object.freeze({
    ok: modified.length + missing.length + outOfOrder.length + partial.length === 0,
    modified,
    missing,
    outOfOrder,
    partial,
  });
}

/** Status of every migration. */
export function* statusProgram(c: RunnerConfig): Program<MigrationStatus[]> {
  const files = yield* loadProgram(c);
  const applied = yield* readAppliedProgram(c);
  const progress = yield* readProgressProgram(c);
  return computeStatus(files, applied, progress);
}

/** The files not applied yet, by version. */
export function* pendingProgram(c: RunnerConfig): Program<MigrationFile[]> {
  const files = yield* loadProgram(c);
  const done = new Set((yield* readAppliedProgram(c)).map((r) => r.version));
  return files.filter((f) => !done.has(f.version));
}
