// The shared half of the migration runners. Everything here is pure: reading a directory's
// listing into migration files, splitting SQL into statements, deciding what to run in which
// order, computing status — and the runner itself, written as generators that yield the
// effects to perform (a statement, a transaction, a sleep, reading or writing files). The
// async runner performs them with awaits and the sync runner with blocking calls, so the
// locking, ordering, bookkeeping and error reporting are written once (as `_retry.ts` does for
// transactions).
import { createHash } from "node:crypto";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { quoteTableName } from "./_sql.ts";
import {
  DatabaseError,
  MigrationError,
  type MigrationErrorOptions,
  ValidationError,
} from "./errors.ts";

// ---------------------------------------------------------------------------------------------
// Public shapes (re-exported by async_migration.ts and migration.ts)
// ---------------------------------------------------------------------------------------------

/** Options of `new AsyncMigration(db, options)` and `new Migration(db, options)`. */
export interface MigrationOptions {
  /**
   * The directory holding the `V<version>__<name>.sql` files: a path (a relative one is
   * resolved against the current directory each time the files are read) or a `file:` URL,
   * such as `new URL("./migrations", import.meta.url)` for a directory next to the module.
   * It must exist for every method that reads it (`createMigration` creates it).
   * @default {"migrations"}
   */
  readonly migrationsDir?: string | URL;
  /**
   * The tracking table (may be schema-qualified, `"app._migrations"`).
   * @default {"_migrations"}
   */
  readonly tableName?: string;
  /**
   * The lock table: one row holding the lease of the runner that is migrating.
   * @default {`${tableName}_lock`}
   */
  readonly lockTableName?: string;
  /**
   * How long `migrate` and `rollback` wait for another runner's lock, in milliseconds, before
   * throwing `MigrationError` (code `MIGRATION_LOCKED`).
   * @default {60000}
   */
  readonly lockTimeout?: number;
  /**
   * How long a lock lasts without renewal, in milliseconds. A runner renews it while it works
   * (the async runner every third of the lease, the sync runner between statements); a runner
   * that dies blocks the others only until its lease runs out.
   * @default {30000}
   */
  readonly leaseDuration?: number;
}

/** One migration as read from its file(s). */
export interface MigrationFile {
  /** The version: the number after `V` in the file name. */
  readonly version: number;
  /** The name: the part of the file name after `__`, without `.sql`. */
  readonly name: string;
  /** The SQL that applies the migration (before the `-- DOWN` line). */
  readonly upSql: string;
  /**
   * The SQL that reverts it (after `-- DOWN`, or the `U<version>__*.sql` file), or `null` when
   * there is none (a down section holding no statement counts as none).
   */
  readonly downSql: string | null;
  /** The path of the `V` file. */
  readonly path: string;
  /** The path of the `U` file, when the down SQL comes from one. */
  readonly downPath: string | null;
  /**
   * SHA-256 (hex) of the `V` file's text, with a byte-order mark removed and line endings
   * normalised to `\n` (so a checkout that converts line endings does not look modified).
   */
  readonly checksum: string;
  /**
   * The first line is `-- migrate:no-transaction`: the statements run one at a time, each
   * committed on its own, in both directions.
   */
  readonly noTransaction: boolean;
}

/** Options of `migrate()`. */
export interface MigrateOptions {
  /**
   * The version to reach: above the current version applies the pending migrations up to it,
   * below it reverts the applied ones above it (`0` reverts everything).
   * @default {every pending migration; never reverts}
   */
  readonly targetVersion?: number;
  /**
   * Plan only: read the files and the tracking table, change nothing, and return what would
   * run (with its SQL in `migrations[i].sql`).
   * @default {false}
   */
  readonly dryRun?: boolean;
  /**
   * Run even though an applied file's checksum changed since it was applied.
   * @default {false}
   */
  readonly allowModified?: boolean;
  /**
   * Apply pending migrations whose version is below the highest applied one.
   * @default {false}
   */
  readonly allowOutOfOrder?: boolean;
  /**
   * Called as the run progresses: waiting for the lock, each migration's start and end.
   * @default {undefined}
   */
  readonly onProgress?: (event: MigrationProgress) => void;
}

/** Options of `rollback()`: `count` or `targetVersion`, not both. */
export interface RollbackOptions {
  /**
   * How many of the most recent (highest) applied versions to revert.
   * @default {1}
   */
  readonly count?: number;
  /**
   * Revert every applied version above this one.
   * @default {undefined}
   */
  readonly targetVersion?: number;
  /**
   * Plan only; see {@linkcode MigrateOptions.dryRun}.
   * @default {false}
   */
  readonly dryRun?: boolean;
  /**
   * Revert even though an applied file's checksum changed since it was applied.
   * @default {false}
   */
  readonly allowModified?: boolean;
  /**
   * Called as the run progresses.
   * @default {undefined}
   */
  readonly onProgress?: (event: MigrationProgress) => void;
}

/** Which way a migration runs. */
export type MigrationDirection = "up" | "down";

/** One migration applied or reverted by a run (or that would be, in a dry run). */
export interface MigrationRun {
  /** The version. */
  readonly version: number;
  /** The name. */
  readonly name: string;
  /** Applied (`up`) or reverted (`down`). */
  readonly direction: MigrationDirection;
  /** How long its statements took, in milliseconds (0 in a dry run). */
  readonly durationMs: number;
  /** The file it came from. */
  readonly path: string;
  /** The SQL that runs (dry runs only). */
  readonly sql?: string;
}

/** What `migrate()` and `rollback()` did. */
export interface MigrateResult {
  /** How many migrations were applied or reverted (0 when already there); in a dry run, would be. */
  readonly applied: number;
  /** `up`, `down`, or `none` when there was nothing to do. */
  readonly direction: MigrationDirection | "none";
  /** The highest applied version before the run (0 when none). */
  readonly fromVersion: number;
  /** The highest applied version after the run (in a dry run, the one it would reach). */
  readonly toVersion: number;
  /** True for a dry run: nothing was changed. */
  readonly dryRun: boolean;
  /** Each migration, in the order run. */
  readonly migrations: readonly MigrationRun[];
}

/** A progress event of `migrate()` / `rollback()`. */
export type MigrationProgress =
  | {
    /** Another runner holds the lock; this one waits (sent once per run). */
    readonly type: "waiting";
    /** The other runner's id. */
    readonly owner: string;
    /** When its lease runs out unless renewed. */
    readonly expiresAt: Date;
  }
  | {
    /** A migration starts. */
    readonly type: "start";
    /** The version. */
    readonly version: number;
    /** The name. */
    readonly name: string;
    /** The direction. */
    readonly direction: MigrationDirection;
    /** The file. */
    readonly path: string;
  }
  | {
    /** A migration was applied or reverted, and recorded. */
    readonly type: "done";
    /** The version. */
    readonly version: number;
    /** The name. */
    readonly name: string;
    /** The direction. */
    readonly direction: MigrationDirection;
    /** The file. */
    readonly path: string;
    /** How long its statements took, in milliseconds. */
    readonly durationMs: number;
  };

/** A row of the tracking table. */
export interface MigrationHistoryEntry {
  /** The version. */
  readonly version: number;
  /** The name of the migration when it was applied. */
  readonly name: string;
  /** The checksum of its file when it was applied (`null` for rows written by other tools). */
  readonly checksum: string | null;
  /** When it was applied (the server's clock). */
  readonly appliedAt: Date;
  /** How long its statements took, in milliseconds. */
  readonly durationMs: number;
}

/** The state of one migration. */
export type MigrationState = "applied" | "pending" | "modified" | "missing";

/** Progress of a `-- migrate:no-transaction` migration that stopped part way. */
export interface PartialProgress {
  /** The direction that was running. */
  readonly direction: MigrationDirection;
  /** How many statements were committed. */
  readonly statementsDone: number;
  /** How many statements the file had. */
  readonly statementsTotal: number;
  /** The error that stopped it, if recorded. */
  readonly error: string | null;
}

/** One line of `status()`. */
export interface MigrationStatus {
  /** The version. */
  readonly version: number;
  /** The file's name, or the tracking row's for a missing file. */
  readonly name: string;
  /**
   * `applied`; `pending`; `modified` (applied, but the file's checksum changed since); `missing`
   * (a tracking row without a file).
   */
  readonly state: MigrationState;
  /** The `V` file, or `null` when missing. */
  readonly path: string | null;
  /** The file's checksum, or `null` when missing. */
  readonly checksum: string | null;
  /** The checksum recorded when applied, or `null` when pending. */
  readonly appliedChecksum: string | null;
  /** When it was applied, or `null` when pending. */
  readonly appliedAt: Date | null;
  /** How long applying it took, or `null` when pending. */
  readonly durationMs: number | null;
  /** A pending version below the highest applied one (`migrate` refuses it by default). */
  readonly outOfOrder: boolean;
  /** Whether it can be reverted (it has down SQL). */
  readonly reversible: boolean;
  /** A `-- migrate:no-transaction` run that stopped part way, or `null`. */
  readonly partial: PartialProgress | null;
}

/** What `verify()` found. */
export interface VerifyResult {
  /** True when no applied file was modified or is missing and nothing is out of order. */
  readonly ok: boolean;
  /** Applied migrations whose file changed since. */
  readonly modified: readonly MigrationStatus[];
  /** Applied migrations whose file is gone. */
  readonly missing: readonly MigrationStatus[];
  /** Pending migrations below the highest applied version. */
  readonly outOfOrder: readonly MigrationStatus[];
  /** No-transaction migrations that stopped part way. */
  readonly partial: readonly MigrationStatus[];
}

// ---------------------------------------------------------------------------------------------
// Hints
// ---------------------------------------------------------------------------------------------

/** Whose words a hint uses: the API's option names, or the command line's flags. */
export type HintSpelling = "api" | "cli";

// How each interface spells what a hint tells the user to do; each hint below is written once
// over these words. Errors are built in the API's spelling and the CLI respells them
// (`respell()`), so a hint never names an option the user cannot type where they are.
const SPELLINGS = {
  api: {
    allowModified: "pass allowModified: true",
    allowOutOfOrder: "pass allowOutOfOrder: true",
    lockTimeout: "raise lockTimeout",
    unlock: "call unlock()",
    migrationsDir: "check migrationsDir",
    create: "createMigration()",
  },
  cli: {
    allowModified: "pass --allow-modified",
    allowOutOfOrder: "pass --allow-out-of-order",
    lockTimeout: "raise --lock-timeout",
    unlock: "run the unlock command",
    migrationsDir: "check --dir",
    create: "the create command",
  },
} as const satisfies Record<HintSpelling, Record<string, string>>;

type Words = (typeof SPELLINGS)[HintSpelling];

/** The hint that ends the message of a `MigrationError` of each of these codes. */
const HINTS = {
  MIGRATION_MODIFIED: (w: Words) => `restore the file, or ${w.allowModified} to run anyway`,
  MIGRATION_OUT_OF_ORDER: (w: Words) => `${w.allowOutOfOrder} to apply them anyway`,
  MIGRATION_PARTIAL: (w: Words) =>
    `undo them by hand, then ${w.allowModified} to run it from its first statement`,
  MIGRATION_LOCKED: (w: Words) =>
    `${w.lockTimeout} to wait longer, or ${w.unlock} if that runner is gone`,
  MIGRATION_DIRECTORY_NOT_FOUND: (w: Words) =>
    `${w.migrationsDir}, or make the directory (${w.create} makes it with its first file)`,
} as const;

type HintedCode = keyof typeof HINTS;

function hinted(
  message: string,
  options: MigrationErrorOptions & { readonly code: HintedCode },
): MigrationError {
  return new MigrationError(`${message}; ${HINTS[options.code](SPELLINGS.api)}`, options);
}

/**
 * The same error with the hint at the end of its message in another spelling: the CLI passes
 * every error through this with `"cli"`. Anything else is returned as it is.
 */
export function respell(error: unknown, spelling: HintSpelling): unknown {
  if (!(error instanceof MigrationError) || !Object.hasOwn(HINTS, error.code)) return error;
  const hint = HINTS[error.code as HintedCode];
  const api = hint(SPELLINGS.api);
  if (spelling === "api" || !error.message.endsWith(`; ${api}`)) return error;
  return new MigrationError(
    `${error.message.slice(0, -api.length)}${hint(SPELLINGS[spelling])}`,
    {
      cause: error.cause,
      code: error.code,
      version: error.version,
      path: error.path,
      statement: error.statement,
      detail: error.detail,
      hint: error.hint,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

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
    const match = FILE_NAME.exec(entry.name);
    if (!match) continue;
    const path = join(dir, entry.name);
    const version = parseVersion(match[2], entry.name, path);
    const target = match[1] === "V" ? ups : downs;
    const other = target.get(version);
    if (other) {
      throw new MigrationError(
        `Cannot load migrations: version ${version} is used by both "${other.path}" and "${path}"`,
        { code: "MIGRATION_INVALID", version, path },
      );
    }
    if (match[1] === "V") ups.set(version, { name: match[3], text: entry.text, path });
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

// ---------------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------------

/** One statement of a migration. */
export interface Statement {
  /** The text, without the `;` and without comments before it. */
  readonly text: string;
  /** The 1-based line of its first character in the SQL it came from. */
  readonly line: number;
}

function isIdentStart(c: string): boolean {
  return /[A-Za-z_\u0080-\uffff]/.test(c);
}

function isIdentChar(c: string): boolean {
  return /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
}

/**
 * Splits SQL into statements at top-level semicolons, as `psql` does: not inside quotes,
 * quoted identifiers, dollar quotes, comments, or a `BEGIN ATOMIC … END` function body.
 * Chunks holding only comments and whitespace are dropped.
 */
export function splitStatements(sql: string): Statement[] {
  const out: Statement[] = [];
  const n = sql.length;
  let i = 0;
  let start = -1; // first significant character of the current statement
  let line = 1;
  let startLine = 1;
  let parens = 0;
  let beginDepth = 0;
  const words: string[] = []; // the first words of the statement, lower-case
  let wordCount = 0;
  const mark = (): void => {
    if (start < 0) {
      start = i;
      startLine = line;
    }
  };
  const finish = (end: number): void => {
    if (start >= 0) out.push({ text: sql.slice(start, end).trim(), line: startLine });
    start = -1;
    parens = 0;
    beginDepth = 0;
    words.length = 0;
    wordCount = 0;
  };
  const skipTo = (end: number): void => {
    for (let k = i; k < end; k++) if (sql.charCodeAt(k) === 10) line++;
    i = end;
  };
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
    } else if (c === "-" && next === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? n : end;
    } else if (c === "/" && next === "*") {
      let depth = 1;
      let k = i + 2;
      while (k < n && depth > 0) {
        if (sql[k] === "/" && sql[k + 1] === "*") {
          depth++;
          k += 2;
        } else if (sql[k] === "*" && sql[k + 1] === "/") {
          depth--;
          k += 2;
        } else k++;
      }
      skipTo(k);
    } else if (c === ";") {
      if (parens === 0 && beginDepth === 0) finish(i);
      i++;
    } else if (c === "'") {
      mark();
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]) && (i < 2 || !isIdentChar(sql[i - 2]));
      let k = i + 1;
      while (k < n) {
        if (escapes && sql[k] === "\\") k += 2;
        else if (sql[k] === "'" && sql[k + 1] === "'") k += 2;
        else if (sql[k] === "'") break;
        else k++;
      }
      skipTo(Math.min(k + 1, n));
    } else if (c === '"') {
      mark();
      let k = i + 1;
      while (k < n) {
        if (sql[k] === '"' && sql[k + 1] === '"') k += 2;
        else if (sql[k] === '"') break;
        else k++;
      }
      skipTo(Math.min(k + 1, n));
    } else if (c === "$" && (i === 0 || !isIdentChar(sql[i - 1]))) {
      mark();
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(
        sql.slice(i, i + 70),
      );
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        skipTo(close < 0 ? n : close + tag[0].length);
      } else i++;
    } else if (isIdentStart(c)) {
      mark();
      let k = i + 1;
      while (k < n && isIdentChar(sql[k])) k++;
      const word = sql.slice(i, k).toLowerCase();
      if (wordCount < 4) words.push(word);
      wordCount++;
      // psql's heuristic: in CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN … END (with CASE … END
      // inside it) is a body whose semicolons do not end the statement.
      const routine = words[0] === "create" &&
        (words[1] === "function" || words[1] === "procedure" ||
          (words[1] === "or" && words[2] === "replace" &&
            (words[3] === "function" || words[3] === "procedure")));
      if (routine && parens === 0) {
        if (word === "begin") beginDepth++;
        else if (word === "case" && beginDepth >= 1) beginDepth++;
        else if (word === "end" && beginDepth > 0) beginDepth--;
      }
      i = k;
    } else {
      mark();
      if (c === "(") parens++;
      else if (c === ")" && parens > 0) parens--;
      i++;
    }
  }
  finish(n);
  return out;
}

const TRANSACTION_CONTROL = /^(begin|start|commit|end|abort|rollback|prepare\s+transaction)\b/i;
const ROLLBACK_TO = /^rollback(\s+(work|transaction))?\s+to\b/i;

/** Whether a statement starts or ends a transaction (which a migration must not do). */
export function isTransactionControl(text: string): boolean {
  return TRANSACTION_CONTROL.test(text) && !ROLLBACK_TO.test(text) &&
    !/^begin\s+atomic\b/i.test(text);
}

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

/** One migration a run will apply or revert. */
export interface PlanStep {
  readonly file: MigrationFile;
  readonly direction: MigrationDirection;
  readonly sql: string;
  readonly statements: readonly Statement[];
}

/** What a run will do. */
export interface Plan {
  readonly direction: MigrationDirection | "none";
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly steps: readonly PlanStep[];
}

function currentOf(applied: readonly MigrationHistoryEntry[]): number {
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
  const modified = applied.filter((r) => {
    const f = byVersion.get(r.version);
    return f !== undefined && r.checksum !== null && r.checksum !== f.checksum;
  });
  if (modified.length > 0) {
    const first = byVersion.get(modified[0].version) as MigrationFile;
    const list = modified.map((r) => `"${(byVersion.get(r.version) as MigrationFile).path}"`);
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
  const current = currentOf(applied);
  checkModified(files, applied, options.allowModified);
  if (target !== undefined && target < current) {
    const versions = applied.map((r) => r.version).filter((v) => v > target).sort((a, b) => b - a);
    return plan("down", current, applied, downSteps(files, versions));
  }
  const done = new Set(applied.map((r) => r.version));
  const pending = files.filter((f) => !done.has(f.version) && (target ?? Infinity) >= f.version);
  const early = pending.filter((f) => f.version < current);
  if (early.length > 0 && !options.allowOutOfOrder) {
    throw hinted(
      `Cannot migrate: pending ${early.length === 1 ? "migration" : "migrations"} ${
        early.map((f) => `"${f.path}"`).join(", ")
      } ${
        early.length === 1 ? "has a version" : "have versions"
      } below the highest applied version ${current}`,
      { code: "MIGRATION_OUT_OF_ORDER", version: early[0].version, path: early[0].path },
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
  return plan("down", currentOf(applied), applied, downSteps(files, versions));
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

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

/** A row of the progress table, for a no-transaction migration that stopped part way. */
export interface ProgressRow {
  readonly version: number;
  readonly direction: MigrationDirection;
  readonly checksum: string;
  readonly statementsDone: number;
  readonly statementsTotal: number;
  readonly doneChecksum: string;
  readonly error: string | null;
}

/** Every file and every tracking row, by version. */
export function computeStatus(
  files: readonly MigrationFile[],
  applied: readonly MigrationHistoryEntry[],
  progress: readonly ProgressRow[] = [],
): MigrationStatus[] {
  const rows = new Map(applied.map((r) => [r.version, r]));
  const partial = new Map(progress.map((p) => [p.version, p]));
  const current = currentOf(applied);
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

// ---------------------------------------------------------------------------------------------
// The runner, as effects
// ---------------------------------------------------------------------------------------------

/** Something a runner's driver performs and answers. */
export type Effect =
  /** Run one statement (on the database, or on the transaction of the body running); answer its rows. */
  | { readonly kind: "query"; readonly text: string; readonly params?: readonly unknown[] }
  /** Run `body()` as the callback of `db.transaction()` (it may run more than once); answer its value. */
  | { readonly kind: "transaction"; readonly body: () => Program<unknown> }
  /** Wait; answer nothing. */
  | { readonly kind: "sleep"; readonly ms: number }
  /** Read the migrations directory; answer `FileEntry[]`, or `null` when it does not exist. */
  | { readonly kind: "read"; readonly dir: string }
  /** Create a file (and its directory) that must not exist yet; answer nothing. */
  | { readonly kind: "write"; readonly path: string; readonly text: string }
  /**
   * Start (with `text`, `params`, `intervalMs`) or stop (without) renewing the lease in the
   * background, where the driver can; answer nothing.
   */
  | {
    readonly kind: "heartbeat";
    readonly text?: string;
    readonly params?: readonly unknown[];
    readonly intervalMs?: number;
  };

/** A runner operation: yields effects, returns its result. */
export type Program<T> = Generator<Effect, T, unknown>;

/** The runner's settings, resolved and checked once. */
export interface RunnerConfig {
  /** The migrations directory as a path (a `file:` URL converted), relative or absolute. */
  readonly dir: string;
  readonly tableName: string;
  readonly table: string;
  readonly lockTableName: string;
  readonly lockTable: string;
  readonly progressTable: string;
  readonly lockTimeout: number;
  readonly leaseDuration: number;
  readonly owner: string;
}

function checkMilliseconds(value: unknown, what: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(`Cannot use ${what} ${String(value)}: expected milliseconds from ${min}`);
  }
  return value;
}

function ownerId(): string {
  let host = "unknown";
  try {
    // Asked only when already allowed: a library must not raise a permission prompt for this.
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      host = Deno.hostname();
    }
  } catch {
    // Without --allow-sys the host name is not needed: the pid and random part identify us.
  }
  return `${host}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
}

function directoryPath(dir: unknown): string {
  if (dir instanceof URL) {
    if (dir.protocol !== "file:") {
      throw new ValidationError(
        `Cannot use migrationsDir "${dir.href}": only a file: URL names a directory`,
        { field: "migrationsDir" },
      );
    }
    try {
      return fileURLToPath(dir);
    } catch (error) {
      throw new ValidationError(
        `Cannot use migrationsDir "${dir.href}": ${(error as Error).message}`,
        { field: "migrationsDir", cause: error },
      );
    }
  }
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(
      "Cannot create migration runner: migrationsDir must be a non-empty string or a file: URL",
    );
  }
  return dir;
}

/** Checks the options of a runner and resolves the table names. */
export function resolveRunnerConfig(options: MigrationOptions | undefined): RunnerConfig {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError("Cannot create migration runner: options must be an object");
  }
  const dir = directoryPath(options?.migrationsDir ?? "migrations");
  const tableName = options?.tableName ?? "_migrations";
  const lockTableName = options?.lockTableName ?? `${tableName}_lock`;
  const progressName = `${tableName}_progress`;
  return Object.freeze({
    dir,
    tableName,
    table: quoteTableName(tableName, "tableName"),
    lockTableName,
    lockTable: quoteTableName(lockTableName, "lockTableName"),
    progressTable: quoteTableName(progressName, "tableName"),
    lockTimeout: checkMilliseconds(options?.lockTimeout, "lockTimeout", 60_000, 0),
    leaseDuration: checkMilliseconds(options?.leaseDuration, "leaseDuration", 30_000, 100),
    owner: ownerId(),
  });
}

type Row = Record<string, unknown>;

function* query(text: string, params?: readonly unknown[]): Program<Row[]> {
  return (yield params === undefined
    ? { kind: "query", text }
    : { kind: "query", text, params }) as Row[];
}

function* transaction<T>(body: () => Program<T>): Program<T> {
  return (yield { kind: "transaction", body }) as T;
}

function* sleep(ms: number): Program<void> {
  yield { kind: "sleep", ms };
}

function codeOf(error: unknown): string | undefined {
  return error instanceof DatabaseError ? error.code : undefined;
}

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
      if (!race || attempt >= sleepAfterRace.length) {
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
      yield* sleep(sleepAfterRace[attempt]);
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
function* readTrackingProgram(
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
    throw directoryNotFound(c.dir);
  }
  return parseMigrationFiles(c.dir, entries);
}

function directoryNotFound(dir: string): MigrationError {
  let absolute = dir;
  try {
    absolute = resolve(dir);
  } catch {
    // Without read access to the current directory, the path as given is all there is.
  }
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
  const path = join(c.dir, `V${nextVersion(files, applied)}__${stem}.sql`);
  yield { kind: "write", path, text };
  return path;
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

// The lease's end, by the server's clock ($2: the lease in milliseconds), so that runners on
// machines with skewed clocks agree.
const LEASE_END = "now() + ($2::INT8 * INTERVAL '1 millisecond')";

function renewText(c: RunnerConfig): string {
  return `UPDATE ${c.lockTable} SET expires_at = ${LEASE_END} WHERE id = 1 AND owner = $1 RETURNING id`;
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
  const started = performance.now();
  const take = `INSERT INTO ${c.lockTable} AS l (id, owner, acquired_at, expires_at)
VALUES (1, $1::TEXT, now(), ${LEASE_END})
ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
WHERE l.expires_at < now()
RETURNING owner`;
  const params = [c.owner, Math.ceil(c.leaseDuration)];
  let told = false;
  let delay = 25;
  let created = false;
  for (;;) {
    let holder: Row | null;
    try {
      holder = yield* transaction(function* () {
        const rows = yield* query(take, params);
        if (rows.length > 0) return null;
        const held = yield* query(`SELECT owner, expires_at FROM ${c.lockTable} WHERE id = 1`);
        return held[0] ?? { owner: "?", expires_at: new Date() };
      });
    } catch (error) {
      // The tracking table exists but the lock table does not (a new lockTableName, or one
      // dropped by hand): create it, once.
      if (codeOf(error) !== "42P01" || created) throw error;
      created = true;
      yield* initializeProgram(c);
      continue;
    }
    if (holder === null) return;
    const owner = String((holder as Row).owner);
    const expiresAt = (holder as Row).expires_at as Date;
    if (!told) {
      told = true;
      onProgress?.({ type: "waiting", owner, expiresAt });
    }
    const waited = performance.now() - started;
    if (waited >= c.lockTimeout) {
      throw hinted(
        `Cannot acquire the migration lock "${c.lockTableName}": held by "${owner}" until ${expiresAt.toISOString()}; waited ${
          Math.round(waited)
        } ms`,
        { code: "MIGRATION_LOCKED" },
      );
    }
    const ms = Math.min(delay * (0.5 + Math.random() / 2), c.lockTimeout - waited);
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

function shorten(text: string, max = 80): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^Cannot execute query: /, "");
}

function lockLost(c: RunnerConfig, file: MigrationFile): MigrationError {
  return new MigrationError(
    `Cannot record migration "${file.path}": this runner no longer holds the migration lock "${c.lockTableName}" (its lease ran out and another runner took it); nothing of this migration was kept`,
    { code: "MIGRATION_LOCK_LOST", version: file.version, path: file.path },
  );
}

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
      const started = performance.now();
      for (index = 0; index < s.statements.length; index++) {
        current = s.statements[index];
        yield* query(current.text);
      }
      current = undefined;
      durationMs = Math.round(performance.now() - started);
      const rows = s.direction === "up"
        ? yield* query(
          `INSERT INTO ${c.table} (version, name, checksum, applied_at, duration_ms)
SELECT $1::INT8, $2::TEXT, $3::TEXT, now(), $4::INT8 FROM ${c.lockTable} WHERE id = 1 AND owner = $5::TEXT
RETURNING version`,
          [s.file.version, s.file.name, s.file.checksum, durationMs, c.owner],
        )
        : yield* query(
          `DELETE FROM ${c.table} WHERE version = $1::INT8
AND EXISTS (SELECT 1 FROM ${c.lockTable} WHERE id = 1 AND owner = $2::TEXT)
RETURNING version`,
          [s.file.version, c.owner],
        );
      if (rows.length === 0) throw lockLost(c, s.file);
    });
  } catch (error) {
    if (error instanceof MigrationError && error.code === "MIGRATION_LOCK_LOST") throw error;
    if (codeOf(error) === "XXA00") {
      // CockroachDB committed the data changes and the tracking row but undid the schema
      // change: take the row back so the migration does not pass for applied.
      let undone = "";
      try {
        yield* transaction(function* () {
          if (s.direction === "up") {
            yield* query(`DELETE FROM ${c.table} WHERE version = $1::INT8`, [s.file.version]);
          } else {
            yield* query(
              `INSERT INTO ${c.table} (version, name, checksum, duration_ms) VALUES ($1::INT8, $2, $3, 0) ON CONFLICT (version) DO NOTHING`,
              [s.file.version, s.file.name, s.file.checksum],
            );
          }
        });
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
  const record =
    `INSERT INTO ${c.progressTable} AS p (version, direction, checksum, statements_done, statements_total, done_checksum, error, updated_at)
VALUES ($1::INT8, $2, $3, $4::INT8, $5::INT8, $6, $7, now())
ON CONFLICT (version) DO UPDATE SET direction = excluded.direction, checksum = excluded.checksum,
statements_done = excluded.statements_done, statements_total = excluded.statements_total,
done_checksum = excluded.done_checksum, error = excluded.error, updated_at = excluded.updated_at`;
  const started = performance.now();
  let lastRenewal = started;
  for (let i = from; i < s.statements.length; i++) {
    const statement = s.statements[i];
    // Each statement commits on its own, so the lock is checked (and renewed) before each one.
    if (i === from || performance.now() - lastRenewal > c.leaseDuration / 3) {
      const held = yield* query(renewText(c), [c.owner, Math.ceil(c.leaseDuration)]);
      if (held.length === 0) throw lockLost(c, s.file);
      lastRenewal = performance.now();
    }
    try {
      yield* query(statement.text);
    } catch (error) {
      const committed = i === 0
        ? "; no statement of it was committed"
        : `; statements 1 to ${i} were committed and the next run resumes at statement ${i + 1}`;
      try {
        yield* query(record, [
          s.file.version,
          s.direction,
          s.file.checksum,
          i,
          s.statements.length,
          prefixChecksum(s.statements, i),
          reason(error),
        ]);
      } catch {
        // The failure itself is what matters; the progress row is a convenience.
      }
      throw failure(s, error, statement, i, committed);
    }
    yield* query(record, [
      s.file.version,
      s.direction,
      s.file.checksum,
      i + 1,
      s.statements.length,
      prefixChecksum(s.statements, i + 1),
      null,
    ]);
  }
  const durationMs = Math.round(performance.now() - started);
  try {
    yield* transaction(function* () {
      const rows = s.direction === "up"
        ? yield* query(
          `INSERT INTO ${c.table} (version, name, checksum, applied_at, duration_ms)
SELECT $1::INT8, $2::TEXT, $3::TEXT, now(), $4::INT8 FROM ${c.lockTable} WHERE id = 1 AND owner = $5::TEXT
RETURNING version`,
          [s.file.version, s.file.name, s.file.checksum, durationMs, c.owner],
        )
        : yield* query(
          `DELETE FROM ${c.table} WHERE version = $1::INT8
AND EXISTS (SELECT 1 FROM ${c.lockTable} WHERE id = 1 AND owner = $2::TEXT)
RETURNING version`,
          [s.file.version, c.owner],
        );
      if (rows.length === 0) throw lockLost(c, s.file);
      yield* query(`DELETE FROM ${c.progressTable} WHERE version = $1::INT8`, [s.file.version]);
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

let runs = 0;

/**
 * `migrate()` and `rollback()`: plans, and runs the plan under the lock, creating the tracking
 * and lock tables first when they do not exist yet.
 */
function* runProgram(
  c: RunnerConfig,
  makePlan: (files: MigrationFile[], applied: MigrationHistoryEntry[]) => Plan,
  options: {
    readonly dryRun?: boolean;
    readonly allowModified?: boolean;
    readonly onProgress?: (event: MigrationProgress) => void;
  },
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
  c = { ...c, owner: `${c.owner}/${++runs}` };
  // The tables are created when a migration is first applied.
  if (before === null) yield* initializeProgram(c);
  yield* acquireLockProgram(c, onProgress);
  const done: MigrationRun[] = [];
  try {
    yield {
      kind: "heartbeat",
      text: renewText(c),
      params: [c.owner, Math.ceil(c.leaseDuration)],
      intervalMs: c.leaseDuration / 3,
    };
    // Another runner may have applied migrations while this one waited for the lock.
    const applied = yield* readAppliedProgram(c);
    const p = makePlan(files, applied);
    let lastRenewal = performance.now();
    for (const s of p.steps) {
      if (performance.now() - lastRenewal > c.leaseDuration / 3) {
        const held = yield* query(renewText(c), [c.owner, Math.ceil(c.leaseDuration)]);
        if (held.length === 0) throw lockLost(c, s.file);
        lastRenewal = performance.now();
      }
      const f = s.file;
      onProgress?.({
        type: "start",
        version: f.version,
        name: f.name,
        direction: s.direction,
        path: f.path,
      });
      const durationMs = f.noTransaction
        ? yield* runWithoutTransaction(c, s, options.allowModified === true)
        : yield* runInTransaction(c, s);
      done.push(run(s, durationMs));
      onProgress?.({
        type: "done",
        version: f.version,
        name: f.name,
        direction: s.direction,
        path: f.path,
        durationMs,
      });
      if (f.noTransaction) lastRenewal = performance.now();
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
