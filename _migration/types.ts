// The public shapes of the migration runners: options, migration files, run results, progress
// events, status and verify reports. Types only; `async_migration.ts` and `migration.ts`
// re-export them.

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
