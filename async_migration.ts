/**
 * `AsyncMigration`: versioned SQL migrations for CockroachDB (and PostgreSQL), safe to run from
 * several processes at once.
 *
 * - Files `V<version>__<name>.sql` in a directory: the up SQL, then a line `-- DOWN`, then the
 *   down SQL (or a separate `U<version>__<name>.sql`). A first line `-- migrate:no-transaction`
 *   runs the file's statements one at a time, each committed on its own (CockroachDB's advice
 *   for schema changes that must not share a transaction).
 * - Each other migration and its row in the tracking table commit together, through the
 *   retrying transaction runner: a failure leaves the database and the tracking table as they
 *   were before that migration, and throws `MigrationError` naming the file and the statement.
 * - A lease lock in a lock table (not advisory locks, which CockroachDB lacks) lets one runner
 *   migrate at a time: each migration is applied exactly once however many start together, and
 *   a runner that dies blocks the others only until its lease runs out. The asynchronous
 *   runner renews its lease in the background; the synchronous one cannot while a statement
 *   blocks its thread, so it renews between statements and migrations: give `leaseDuration`
 *   more than your longest single migration. If a lease does run out and another runner takes
 *   over, the migration in flight is rolled back rather than recorded twice.
 *
 * @example Apply every pending migration
 * ```ts
 * import { AsyncDatabase } from "@manticore/cockroachdb/async-database";
 * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
 *
 * const dir = await Deno.makeTempDir(); // in a project: "migrations"
 * await Deno.writeTextFile(
 *   `${dir}/V1__create_users.sql`,
 *   "CREATE TABLE users (id INT8 PRIMARY KEY, email TEXT UNIQUE)\n-- DOWN\nDROP TABLE users\n",
 * );
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * const migrations = new AsyncMigration(db, { migrationsDir: dir });
 * const result = await migrations.migrate();
 * console.log(`applied ${result.applied}, now at version ${result.toVersion}`);
 * // applied 1, now at version 1
 *
 * await migrations.rollback(); // DROP TABLE users
 * await db.execute("DROP TABLE _migrations, _migrations_lock");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
import type { AsyncDatabase, AsyncQueryable } from "./async_database.ts";
import { runAsync, sleep } from "./_steps.ts";
// #if async
import { internalsOf } from "./_internal.ts";
// #else
// import { syncObserverOf } from "./_internal.ts";
// #endif
import type { MigrationInfo, MigrationTelemetry } from "./_telemetry_spans.ts";
import {
  createProgram,
  type Effect,
  historyProgram,
  initializeProgram,
  loadProgram,
  type MigrateOptions,
  migrateProgram,
  type MigrateResult,
  type MigrationDirection,
  type MigrationFile,
  type MigrationHistoryEntry,
  type MigrationOptions,
  type MigrationProgress,
  type MigrationRun,
  type MigrationState,
  type MigrationStatus,
  type PartialProgress,
  pendingProgram,
  type Program,
  readAppliedProgram,
  readMigrationDir,
  resolveRunnerConfig,
  type RollbackOptions,
  rollbackProgram,
  type RunnerConfig,
  statusProgram,
  unlockProgram,
  type VerifyResult,
  verifyStatus,
  writeMigrationFile,
} from "./_migration/mod.ts";

export type {
  MigrateOptions,
  MigrateResult,
  MigrationDirection,
  MigrationFile,
  MigrationHistoryEntry,
  MigrationOptions,
  MigrationProgress,
  MigrationRun,
  MigrationState,
  MigrationStatus,
  PartialProgress,
  RollbackOptions,
  VerifyResult,
};

// #if async
/** Renews the lease in the background while a run holds the lock. */
class Heartbeat {
  #timer: ReturnType<typeof setInterval> | undefined;
  #inflight: Promise<void> | undefined;

  start(db: AsyncDatabase, text: string, params: readonly unknown[], intervalMs: number): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => {
      if (this.#inflight !== undefined) return;
      // Failures are not fatal here: every migration checks that the lock is still held.
      this.#inflight = db.execute(text, params).then(
        () => {},
        () => {},
      ).finally(() => {
        this.#inflight = undefined;
      });
    }, Math.max(10, intervalMs));
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inflight;
  }
}
// #else
// /** Nothing runs in the background on a blocked thread: the program renews the lease in line. */
// class Heartbeat {
//   start(_db: Database, _text: string, _params: readonly unknown[], _intervalMs: number): void {}
//
//   stop(): void {}
// }
// #endif

/** Makes the span of each migration applied or reverted: the database's observer. */
interface MigrationSpans {
  migration(info: MigrationInfo): MigrationTelemetry;
}

// #if async
function spansOf(db: AsyncDatabase): MigrationSpans {
  return internalsOf(db).observer;
}
// #else
// // The sync `Database`'s observer on the calling thread, from which the migration's statements
// // are sent (their spans, made in the worker, become the migration span's children).
// function spansOf(db: Database): MigrationSpans {
//   return syncObserverOf(db);
// }
// #endif

/**
 * Takes the effects of a migration program: on `db`, or on `target`, a transaction of it; each
 * migration's work under its span.
 */
function performer(
  db: AsyncDatabase,
  target: AsyncQueryable,
  heartbeat: Heartbeat,
  spans: MigrationSpans,
): (effect: Effect) => Promise<unknown> {
  return async (effect) => {
    switch (effect.kind) {
      case "query":
        return effect.params === undefined
          ? await target.execute(effect.text)
          : await target.execute(effect.text, effect.params);
      case "transaction":
        if (target !== db) throw new TypeError("Cannot nest migration transactions");
        return await db.transaction((tx) =>
          runAsync(effect.body(), performer(db, tx, heartbeat, spans))
        );
      case "migration": {
        const span = spans.migration(effect.info);
        try {
          const value = await span.run(() =>
            runAsync(effect.body(), performer(db, target, heartbeat, spans))
          );
          span.end();
          return value;
        } catch (error) {
          span.end(error);
          throw error;
        }
      }
      case "sleep":
        await sleep(effect.ms);
        return undefined;
      case "read":
        return await readMigrationDir(effect.dir);
      case "write":
        await writeMigrationFile(effect.path, effect.text);
        return undefined;
      case "heartbeat":
        if (effect.text === undefined) await heartbeat.stop();
        else heartbeat.start(db, effect.text, effect.params ?? [], effect.intervalMs ?? 1000);
        return undefined;
    }
  };
}

/**
 * The migration runner over an {@linkcode AsyncDatabase}. The tracking table
 * (`version`, `name`, `checksum`, `applied_at`, `duration_ms`) and the lock table are created
 * when a migration is first applied (or by `initialize()`). The reading methods (`status`,
 * `verify`, `pending`, `getAppliedVersions`, `getCurrentVersion`, `getMigrationHistory`) and
 * dry runs write nothing, so they work for a role that may only read: a tracking table that
 * does not exist yet reads as nothing applied.
 *
 * @example Write, apply, inspect and revert a migration
 * ```ts
 * import { AsyncDatabase, AsyncMigration } from "@manticore/cockroachdb";
 *
 * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
 * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
 * await m.createMigration(
 *   "create_users",
 *   "CREATE TABLE users (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), email TEXT UNIQUE)",
 *   "DROP TABLE users",
 * ); // → "/tmp/…/V1__create_users.sql"
 * await m.migrate(); // { applied: 1, direction: "up", fromVersion: 0, toVersion: 1, … }
 * console.log(await m.status()); // [{ version: 1, name: "create_users", state: "applied", … }]
 * await m.rollback(); // reverts version 1
 *
 * await db.execute("DROP TABLE _migrations, _migrations_lock");
 * await Deno.remove(m.migrationsDir, { recursive: true });
 * ```
 */
export class AsyncMigration {
  readonly #db: AsyncDatabase;
  readonly #config: RunnerConfig;
  // #if async
  #initialized: Promise<void> | undefined;
  // #endif

  /**
   * A runner for the files of `migrationsDir`. Nothing is read or written until a method runs.
   *
   * @example A directory next to the module, whatever the current directory
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: new URL("./migrations", import.meta.url) });
   * console.log(m.migrationsDir); // "/path/to/your/module/migrations"
   * ```
   * @param db The database to migrate.
   * @param options The directory (a path or a `file:` URL), table names and lock timings.
   * @throws {TypeError} when `db` is not a database or `migrationsDir` is empty.
   * @throws {RangeError} for a negative `lockTimeout` or a `leaseDuration` under 100 ms.
   * @throws {ValidationError} for a table name that cannot be an identifier, or a
   * `migrationsDir` URL that is not a `file:` URL (`field` is `"migrationsDir"`).
   */
  constructor(db: AsyncDatabase, options?: MigrationOptions) {
    if (typeof (db as { transaction?: unknown } | undefined)?.transaction !== "function") {
      throw new TypeError("Cannot create AsyncMigration: expected an AsyncDatabase");
    }
    this.#db = db;
    this.#config = resolveRunnerConfig(options);
  }

  /** The directory of the migration files, as a path (a `file:` URL given is converted). */
  get migrationsDir(): string {
    return this.#config.dir;
  }

  /** The tracking table. */
  get tableName(): string {
    return this.#config.tableName;
  }

  /** The lock table. */
  get lockTableName(): string {
    return this.#config.lockTableName;
  }

  /** This runner's id; each run holds the lock as `<runnerId>/<n>`. */
  get runnerId(): string {
    return this.#config.owner;
  }

  async #run<T>(program: Program<T>): Promise<T> {
    const heartbeat = new Heartbeat();
    try {
      return await runAsync(
        program,
        performer(this.#db, this.#db, heartbeat, spansOf(this.#db)),
      );
    } finally {
      await heartbeat.stop();
    }
  }

  /**
   * Creates the tracking table and the lock table if they do not exist (idempotent). Not
   * needed: `migrate()` and `rollback()` create them when they first apply or revert a
   * migration; this is for creating them ahead, e.g. before granting a role access to them.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * await new AsyncMigration(db).initialize();
   * console.log(await db.tableExists("_migrations"), await db.tableExists("_migrations_lock"));
   * // true true
   * await db.execute("DROP TABLE _migrations, _migrations_lock");
   * ```
   * @throws {MigrationError} naming the tables when the server refuses (a role without CREATE).
   */
  initialize(): Promise<void> {
    // #if async
    // Calls at the same time share one run; a failed run is forgotten.
    this.#initialized ??= this.#run(initializeProgram(this.#config)).catch((error) => {
      this.#initialized = undefined;
      throw error;
    });
    return this.#initialized;
    // #else
    // this.#run(initializeProgram(this.#config));
    // #endif
  }

  /**
   * Reads the migration files, sorted by version.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * await m.createMigration("create cats", "CREATE TABLE cats (id INT)", "DROP TABLE cats");
   * await m.createMigration("create dogs", "CREATE TABLE dogs (id INT)", "DROP TABLE dogs");
   * for (const file of await m.loadMigrations()) console.log(file.version, file.name, file.path);
   * // 1 create_cats /tmp/…/V1__create_cats.sql
   * // 2 create_dogs /tmp/…/V2__create_dogs.sql
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @returns The migrations.
   * @throws {MigrationError} for a missing directory (code `MIGRATION_DIRECTORY_NOT_FOUND`,
   * naming it as given and, when relative, as resolved against the current directory; `path`
   * is the absolute path), a version used twice or out of range, or down SQL given twice.
   */
  loadMigrations(): Promise<MigrationFile[]> {
    return this.#run(loadProgram(this.#config));
  }

  /**
   * Writes `V<next>__<name>.sql`: the up SQL, and after a `-- DOWN` line the down SQL if given.
   * The version is one above the highest of the files and the applied migrations. Creates the
   * directory when it does not exist; writes nothing to the database.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * const path = await m.createMigration(
   *   "add email",
   *   "ALTER TABLE users ADD COLUMN email TEXT",
   *   "ALTER TABLE users DROP COLUMN email",
   * ); // → "/tmp/…/V1__add_email.sql"
   * console.log(await Deno.readTextFile(path));
   * // ALTER TABLE users ADD COLUMN email TEXT
   * // -- DOWN
   * // ALTER TABLE users DROP COLUMN email
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @param name The name; whitespace becomes `_`.
   * @param upSql The SQL that applies it.
   * @param downSql The SQL that reverts it.
   * @returns The new file's path.
   * @throws {TypeError} for an empty name or one holding path separators.
   */
  createMigration(name: string, upSql: string, downSql?: string): Promise<string> {
    return this.#run(createProgram(this.#config, name, upSql, downSql));
  }

  /**
   * Applies the pending migrations in version order (up to `targetVersion`), or, for a target
   * below the current version, reverts the applied ones above it in descending order. Runs under
   * the lock; each migration commits with its tracking row, or not at all. The tracking and lock
   * tables are created when there is a migration to run; a dry run, or a run with nothing to
   * do, writes nothing.
   *
   * @example Apply, then go back to version 1
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * await m.createMigration("create cats", "CREATE TABLE cats (id INT)", "DROP TABLE cats");
   * await m.createMigration("create dogs", "CREATE TABLE dogs (id INT)", "DROP TABLE dogs");
   * const up = await m.migrate();
   * const down = await m.migrate({ targetVersion: 1 });
   * console.log(up.applied, down.direction, down.toVersion); // 2 down 1
   * await db.execute("DROP TABLE cats, _migrations, _migrations_lock");
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @param options The target, dry run, what to allow, and a progress callback.
   * @returns What ran, with each migration's time.
   * @throws {MigrationError} for a missing directory, a failed migration (with `version`,
   * `path`, `statement` and the server error as `cause`), a modified applied file, an
   * out-of-order pending one, a migration without down SQL, or a lock not acquired within
   * `lockTimeout` — never having changed anything of the migration concerned.
   */
  async migrate(options?: MigrateOptions): Promise<MigrateResult> {
    return await this.#run(migrateProgram(this.#config, options));
  }

  /**
   * Reverts the last `count` applied migrations (1 by default), or every one above
   * `targetVersion`, in descending order. Every one of them must have down SQL: otherwise
   * nothing is reverted.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * await m.createMigration("create cats", "CREATE TABLE cats (id INT)", "DROP TABLE cats");
   * await m.createMigration("create dogs", "CREATE TABLE dogs (id INT)", "DROP TABLE dogs");
   * await m.migrate();
   * await m.rollback(); // the last one (or { count: 2 }: the last two)
   * console.log(await m.getCurrentVersion()); // 1
   * await m.rollback({ targetVersion: 0 }); // everything
   * console.log(await db.tableExists("cats")); // false
   * await db.execute("DROP TABLE _migrations, _migrations_lock");
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @param options `count` or `targetVersion`, dry run, allowModified, progress callback.
   * @returns What ran.
   * @throws {MigrationError} as for `migrate()`.
   * @throws {TypeError} when both `count` and `targetVersion` are given.
   */
  async rollback(options?: RollbackOptions): Promise<MigrateResult> {
    return await this.#run(rollbackProgram(this.#config, options));
  }

  /**
   * The applied versions, ascending (none while the tracking table does not exist).
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * await m.createMigration("create cats", "CREATE TABLE cats (id INT)", "DROP TABLE cats");
   * await m.createMigration("create dogs", "CREATE TABLE dogs (id INT)", "DROP TABLE dogs");
   * await m.migrate();
   * console.log(await m.getAppliedVersions()); // [1, 2]
   * await db.execute("DROP TABLE cats, dogs, _migrations, _migrations_lock");
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @returns The versions.
   */
  async getAppliedVersions(): Promise<number[]> {
    return (await this.#run(readAppliedProgram(this.#config))).map((r) => r.version);
  }

  /**
   * The highest applied version, or 0.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * await m.createMigration("create cats", "CREATE TABLE cats (id INT)", "DROP TABLE cats");
   * await m.createMigration("create dogs", "CREATE TABLE dogs (id INT)", "DROP TABLE dogs");
   * await m.migrate();
   * console.log(await m.getCurrentVersion()); // 2
   * await db.execute("DROP TABLE cats, dogs, _migrations, _migrations_lock");
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @returns The version.
   */
  async getCurrentVersion(): Promise<number> {
    return Math.max(0, ...await this.getAppliedVersions());
  }

  /**
   * The tracking rows in the order they were applied (none while the tracking table does not
   * exist). Reads only the table, not the directory.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * await m.createMigration("create cats", "CREATE TABLE cats (id INT)", "DROP TABLE cats");
   * await m.createMigration("create dogs", "CREATE TABLE dogs (id INT)", "DROP TABLE dogs");
   * await m.migrate();
   * for (const h of await m.getMigrationHistory()) {
   *   console.log(h.version, h.name, h.appliedAt);
   * }
   * // 1 create_cats 2026-01-05T09:30:00.120Z
   * // 2 create_dogs 2026-01-05T09:30:00.135Z
   * await db.execute("DROP TABLE cats, dogs, _migrations, _migrations_lock");
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @returns The rows.
   */
  getMigrationHistory(): Promise<MigrationHistoryEntry[]> {
    return this.#run(historyProgram(this.#config));
  }

  /**
   * The files not applied yet, by version (out-of-order ones included).
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * await m.createMigration("create cats", "CREATE TABLE cats (id INT)", "DROP TABLE cats");
   * await m.createMigration("create dogs", "CREATE TABLE dogs (id INT)", "DROP TABLE dogs");
   * await m.migrate({ targetVersion: 1 });
   * console.log((await m.pending()).map((file) => file.name)); // ["create_dogs"]
   * await db.execute("DROP TABLE cats, _migrations, _migrations_lock");
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @returns The migrations.
   * @throws {MigrationError} for a missing directory, as `loadMigrations()`.
   */
  pending(): Promise<MigrationFile[]> {
    return this.#run(pendingProgram(this.#config));
  }

  /**
   * Every file and every tracking row by version: `applied`, `pending`, `modified` (applied, but
   * its checksum changed since) or `missing` (a tracking row without a file).
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * await m.createMigration("create cats", "CREATE TABLE cats (id INT)", "DROP TABLE cats");
   * await m.createMigration("create dogs", "CREATE TABLE dogs (id INT)", "DROP TABLE dogs");
   * await m.migrate({ targetVersion: 1 });
   * for (const s of await m.status()) console.log(s.version, s.name, s.state);
   * // 1 create_cats applied
   * // 2 create_dogs pending
   * await db.execute("DROP TABLE cats, _migrations, _migrations_lock");
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @returns One entry per version.
   * @throws {MigrationError} for a missing directory, as `loadMigrations()`.
   */
  status(): Promise<MigrationStatus[]> {
    return this.#run(statusProgram(this.#config));
  }

  /**
   * Checks the applied files against their checksums, and looks for missing files, out-of-order
   * pending ones and no-transaction migrations that stopped part way.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db, { migrationsDir: await Deno.makeTempDir() });
   * const cats = await m.createMigration("create cats", "CREATE TABLE cats (id INT)");
   * await m.migrate();
   * await Deno.writeTextFile(cats, "CREATE TABLE cats (id INT, name TEXT)"); // edited once applied
   * const report = await m.verify();
   * if (!report.ok) console.error(report.modified.map((s) => s.name)); // ["create_cats"]
   * await db.execute("DROP TABLE cats, _migrations, _migrations_lock");
   * await Deno.remove(m.migrationsDir, { recursive: true });
   * ```
   * @returns The report; `ok` when there is nothing to report.
   * @throws {MigrationError} for a missing directory, as `loadMigrations()`.
   */
  async verify(): Promise<VerifyResult> {
    return verifyStatus(await this.status());
  }

  /**
   * Removes the lock, whoever holds it: for a runner that died, when waiting for its lease to
   * run out is not wanted. A runner still alive then fails its next migration with
   * `MigrationError` (code `MIGRATION_LOCK_LOST`) rather than apply anything twice.
   *
   * @example
   * ```ts
   * import { AsyncDatabase } from "@manticore/cockroachdb";
   * import { AsyncMigration } from "@manticore/cockroachdb/async-migration";
   *
   * await using db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!);
   * const m = new AsyncMigration(db);
   * if (await m.unlock()) console.log("released a lock");
   * else console.log("no lock was held"); // no lock was held
   * ```
   * @returns Whether a lock was held (never one while the lock table does not exist, which
   * this does not create).
   */
  unlock(): Promise<boolean> {
    return this.#run(unlockProgram(this.#config));
  }
}
