// The rules of migration files, as pure functions over names and texts: which names count
// (`V<version>__<name>.sql`, `U<version>__<name>.sql`), versions, the `-- DOWN` separator and
// the `-- migrate:no-transaction` marker, checksums, and the name, text and version of a new
// file. Reading and writing the directory is `disk.ts`'s job; the programs that ask for it are
// in `directory.ts`.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { splitStatements } from "../_sql_scan.ts";
import { MigrationError } from "../errors.ts";
import type { MigrationFile, MigrationHistoryEntry } from "./types.ts";

/** A directory entry read by a runner: the file name and its text. */
export interface FileEntry {
  readonly name: string;
  readonly text: string;
}

const FILE_NAME = /^([VU])(\d+)__(.+)\.sql$/;
const NO_TRANSACTION = /^--\s*migrate:no-transaction\s*$/i;
const DOWN_LINE = /^--[ \t]*DOWN[ \t]*$/m;

/** Whether a file name is one of ours (`V…` or `U…`), so only those are read. */
export function isMigrationFileName(name: string): boolean {
  return FILE_NAME.test(name);
}

/** SHA-256 of a file's text (BOM removed, line endings normalised), as hex. */
export function checksumOf(text: string): string {
  return createHash("sha256").update(normalize(text), "utf8").digest("hex");
}

function normalize(text: string): string {
  return (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).replace(/\r\n?/g, "\n");
}

function firstLine(text: string): string {
  const end = text.indexOf("\n");
  return (end < 0 ? text : text.slice(0, end)).trim();
}

function parseVersion(digits: string, name: string, path: string): number {
  const version = Number(digits);
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new MigrationError(
      `Cannot load migration "${path}": the version ${digits} of "${name}" must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`,
      { code: "MIGRATION_INVALID", path },
    );
  }
  return version;
}

/**
 * The migrations in a directory's files, sorted by version. Names other than
 * `V<version>__<name>.sql` and `U<version>__<name>.sql` are ignored.
 *
 * @throws {MigrationError} for a version used twice, a version out of range, or down SQL given
 * both after `-- DOWN` and in a `U` file.
 */
export function parseMigrationFiles(dir: string, entries: readonly FileEntry[]): MigrationFile[] {
  const ups = new Map<number, { name: string; text: string; path: string }>();
  const downs = new Map<number, { text: string; path: string }>();
  for (const entry of [...entries].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) {
    const [, kind, digits, name] = FILE_NAME.exec(entry.name) ?? [];
    if (kind === undefined || digits === undefined || name === undefined) continue;
    const path = join(dir, entry.name);
    const version = parseVersion(digits, entry.name, path);
    const target = kind === "V" ? ups : downs;
    const other = target.get(version);
    if (other) {
      throw new MigrationError(
        `Cannot load migrations: version ${version} is used by both "${other.path}" and "${path}"`,
        { code: "MIGRATION_INVALID", version, path },
      );
    }
    if (kind === "V") ups.set(version, { name, text: entry.text, path });
    else downs.set(version, { text: entry.text, path });
  }
  const files: MigrationFile[] = [];
  for (const [version, up] of ups) {
    const text = normalize(up.text);
    const separator = DOWN_LINE.exec(text);
    let upSql = separator ? text.slice(0, separator.index) : text;
    let downSql = separator ? text.slice(separator.index + separator[0].length) : null;
    let downPath: string | null = null;
    const u = downs.get(version);
    if (u) {
      if (separator && splitStatements(downSql ?? "").length > 0) {
        throw new MigrationError(
          `Cannot load migration "${up.path}": it has down SQL after "-- DOWN" and in "${u.path}"; keep one`,
          { code: "MIGRATION_INVALID", version, path: up.path },
        );
      }
      downSql = normalize(u.text);
      downPath = u.path;
    }
    upSql = upSql.trim();
    downSql = downSql === null ? null : downSql.trim();
    if (downSql !== null && splitStatements(downSql).length === 0) downSql = null;
    files.push(Object.freeze({
      version,
      name: up.name,
      upSql,
      downSql,
      path: up.path,
      downPath: downSql === null ? null : downPath,
      checksum: checksumOf(up.text),
      noTransaction: NO_TRANSACTION.test(firstLine(text)),
    }));
  }
  return files.sort((a, b) => a.version - b.version);
}

/** Checks and normalises a name for a new migration file: whitespace becomes `_`. */
export function migrationFileStem(name: string): string {
  if (typeof name !== "string") {
    throw new TypeError(`Cannot create migration: the name must be a string, got ${typeof name}`);
  }
  const stem = name.trim().replace(/\s+/g, "_");
  if (stem === "" || /[/\\\0:*?"<>|]/.test(stem) || stem.startsWith(".")) {
    throw new TypeError(
      `Cannot create migration "${name}": the name must be non-empty and hold no path separators or reserved characters`,
    );
  }
  return stem;
}

/** The text of a new migration file. */
export function migrationFileText(upSql: string, downSql?: string | null): string {
  if (typeof upSql !== "string") {
    throw new TypeError(
      `Cannot create migration: the up SQL must be a string, got ${typeof upSql}`,
    );
  }
  if (downSql !== undefined && downSql !== null && typeof downSql !== "string") {
    throw new TypeError(
      `Cannot create migration: the down SQL must be a string, got ${typeof downSql}`,
    );
  }
  const up = upSql.trim();
  const down = downSql?.trim();
  return down ? `${up}\n\n-- DOWN\n${down}\n` : `${up}\n`;
}

/**
 * The path of a new migration in `dir`: `V<next version>__<stem>.sql` (`stem` from
 * `migrationFileStem`), the version one above the highest of the files and the applied rows.
 */
export function newMigrationPath(
  dir: string,
  stem: string,
  files: readonly MigrationFile[],
  applied: readonly MigrationHistoryEntry[],
): string {
  return join(dir, `V${nextVersion(files, applied)}__${stem}.sql`);
}

/** The next version: one above the highest of the files and the applied rows. */
export function nextVersion(
  files: readonly MigrationFile[],
  applied: readonly MigrationHistoryEntry[],
): number {
  let max = 0;
  for (const f of files) max = Math.max(max, f.version);
  for (const r of applied) max = Math.max(max, r.version);
  return max + 1;
}
