// What the migration test files share: `scenario()` runs a test through both runners, as
// t.step("async") with AsyncMigration and t.step("sync") with Migration (behind the async shape,
// so one scenario serves both). Each step gets its own schema (holding the tracking, lock and
// migrated tables) and its own directory, so tests never meet. And `rejects()`, which checks
// the MigrationError a call rejects with.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AsyncDatabase } from "./async_database.ts";
import { AsyncMigration, type MigrationOptions } from "./async_migration.ts";
import { Database } from "./database.ts";
import { Migration } from "./migration.ts";
import { MigrationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

/** What a scenario uses of a runner: AsyncMigration, or a Migration made to look like one. */
export type Runner = Pick<
  AsyncMigration,
  | "initialize"
  | "loadMigrations"
  | "createMigration"
  | "migrate"
  | "rollback"
  | "getAppliedVersions"
  | "getCurrentVersion"
  | "getMigrationHistory"
  | "pending"
  | "status"
  | "verify"
  | "unlock"
  | "migrationsDir"
>;

/** A sync call as a promise: its value, or its throw as a rejection. */
function later<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The sync runner behind the async shape, so one scenario serves both. */
function promised(m: Migration): Runner {
  return {
    initialize: () => later(() => m.initialize()),
    loadMigrations: () => later(() => m.loadMigrations()),
    createMigration: (name, up, down) => later(() => m.createMigration(name, up, down)),
    migrate: (options) => later(() => m.migrate(options)),
    rollback: (options) => later(() => m.rollback(options)),
    getAppliedVersions: () => later(() => m.getAppliedVersions()),
    getCurrentVersion: () => later(() => m.getCurrentVersion()),
    getMigrationHistory: () => later(() => m.getMigrationHistory()),
    pending: () => later(() => m.pending()),
    status: () => later(() => m.status()),
    verify: () => later(() => m.verify()),
    unlock: () => later(() => m.unlock()),
    migrationsDir: m.migrationsDir,
  };
}

/** What a scenario gets for one step. */
export interface Ctx {
  /** For assertions (and for setting the scene). */
  readonly db: AsyncDatabase;
  /** The step's schema: migrations create their tables in it. */
  readonly s: string;
  readonly dir: string;
  /** A runner on the step's directory and tracking table. */
  readonly m: Runner;
  /** Another runner on the same database (more options). */
  open(options?: MigrationOptions): Runner;
  /** A runner of the step's kind connected to `url` (closed at the end of the step). */
  openAt(url: string, options?: MigrationOptions): Runner;
  write(name: string, text: string): Promise<void>;
  exists(table: string): Promise<boolean>;
  columns(table: string): Promise<string[]>;
}

export type Kind = "async" | "sync";

/** Runs `fn` as one step per kind of runner, each in a schema and a directory of its own. */
export async function scenario(
  t: Deno.TestContext,
  fn: (ctx: Ctx, kind: Kind) => Promise<void>,
  kinds: readonly Kind[] = ["async", "sync"],
): Promise<void> {
  for (const kind of kinds) {
    await t.step(kind, async () => {
      const url = testUrl();
      await using db = new AsyncDatabase(url, { minConnections: 1 });
      const s = uniqueName("mig");
      const dir = await Deno.makeTempDir({ prefix: "migrations_" });
      await db.execute(`CREATE SCHEMA ${s}`);
      const sync = kind === "sync" ? new Database(url, { minConnections: 1 }) : undefined;
      const base: MigrationOptions = { migrationsDir: dir, tableName: `${s}._migrations` };
      const open = (options?: MigrationOptions): Runner =>
        sync
          ? promised(new Migration(sync, { ...base, ...options }))
          : new AsyncMigration(db, { ...base, ...options });
      const others: (Database | AsyncDatabase)[] = [];
      const openAt = (other: string, options?: MigrationOptions): Runner => {
        if (kind === "sync") {
          const handle = new Database(other, { minConnections: 1 });
          others.push(handle);
          return promised(new Migration(handle, { ...base, ...options }));
        }
        const handle = new AsyncDatabase(other, { minConnections: 1 });
        others.push(handle);
        return new AsyncMigration(handle, { ...base, ...options });
      };
      try {
        await fn({
          db,
          s,
          dir,
          m: open(),
          open,
          openAt,
          write: (name, text) => Deno.writeTextFile(join(dir, name), text),
          exists: (table) => db.tableExists(`${s}.${table}`),
          columns: async (table) =>
            (await db.execute<{ column_name: string }>(
              "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
              [s, table],
            )).map((r) => r.column_name),
        }, kind);
      } finally {
        for (const other of others) await other.close();
        sync?.close();
        await db.execute(`DROP SCHEMA ${s} CASCADE`);
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
}

/** Asserts that `promise` rejects with a MigrationError that passes `check`; returns it. */
export async function rejects(
  promise: Promise<unknown>,
  check: (e: MigrationError) => void,
): Promise<MigrationError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof MigrationError, `expected a MigrationError, got ${error}`);
    check(error);
    return error;
  }
  assert.fail("expected a MigrationError");
}
