// The migrations directory, as programs: load its files (a missing directory is an error that
// names it) and create a new file. The reads and writes are effects, performed by the runners
// with `disk.ts`; the rules of names and texts are `files.ts`.
import { isAbsolute } from "node:path";
import type { MigrationError } from "../errors.ts";
import type { RunnerConfig } from "./config.ts";
import type { Program } from "./effects.ts";
import {
  type FileEntry,
  migrationFileStem,
  migrationFileText,
  newMigrationPath,
  parseMigrationFiles,
} from "./files.ts";
import { hinted } from "./messages.ts";
import { readAppliedProgram } from "./tables.ts";
import type { MigrationFile } from "./types.ts";

/**
 * The migrations of the directory; with `missingOk` (for `createMigration`, which creates it),
 * a missing directory holds none.
 *
 * @throws {MigrationError} (code `MIGRATION_DIRECTORY_NOT_FOUND`) naming the directory when it
 * does not exist: a typo in it must not read as "nothing to do".
 */
export function* loadProgram(c: RunnerConfig, missingOk = false): Program<MigrationFile[]> {
  const entries = (yield { kind: "read", dir: c.dir }) as FileEntry[] | null;
  if (entries === null) {
    if (missingOk) return [];
    throw directoryNotFound(c);
  }
  return parseMigrationFiles(c.dir, entries);
}

function directoryNotFound(c: RunnerConfig): MigrationError {
  const dir = c.dir;
  const absolute = c.resolvePath(dir);
  const where = isAbsolute(dir) || absolute === dir
    ? "no such directory"
    : `no such directory ("${absolute}", resolved against the current directory)`;
  return hinted(`Cannot load migrations from "${dir}": ${where}`, {
    code: "MIGRATION_DIRECTORY_NOT_FOUND",
    path: absolute,
  });
}

/** Writes a new migration file and returns its path. */
export function* createProgram(
  c: RunnerConfig,
  name: string,
  upSql: string,
  downSql: string | null | undefined,
): Program<string> {
  const stem = migrationFileStem(name);
  const text = migrationFileText(upSql, downSql);
  const files = yield* loadProgram(c, true);
  const applied = yield* readAppliedProgram(c);
  const path = newMigrationPath(c.dir, stem, files, applied);
  yield { kind: "write", path, text };
  return path;
}
