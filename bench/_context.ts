// What the cases of `deno task bench` share: the context (the library's databases, the bare
// drivers, the server), the tables and their set-up, the bulk rows, and the retry loop written by
// hand for the bare drivers.
import type postgres from "postgres";
import type pg from "npm:pg@^8";
import type { AsyncDatabase } from "../async_database.ts";

export type Row = Record<string, unknown>;

/** The sync `Database`, as far as the bench uses it (loaded dynamically: it may not exist). */
export interface SyncDatabase {
  execute(sql: string, params?: readonly unknown[]): Row[];
  queryOne(sql: string, params?: readonly unknown[]): Row | null;
  close(): void;
}

/** Everything the cases run against. */
export interface BenchContext {
  readonly url: string;
  readonly lib: AsyncDatabase;
  /**
   * A second database for the library's extra variants (`selectOne`, `select`, `stream`), so
   * that the pools of `lib` and `pjs` serve the same number of statements: postgres.js 3.4.9
   * gets slower with every statement its pool pipelines (a queue that never shrinks).
   */
  readonly libExtra: AsyncDatabase;
  readonly pjs: postgres.Sql;
  readonly pg: pg.Pool;
  readonly sync: SyncDatabase | undefined;
  /** A scratch directory for the `psql \copy` input. */
  readonly tmpDir: string;
  /** Root of the project (for the stream child's `--config`). */
  readonly root: string;
  /** Whether `psql` runs (the `\copy` baseline is left out otherwise). */
  readonly hasPsql: boolean;
}

/** Rows in the accounts table read by the point selects and the 100,000-row select. */
export const ACCOUNTS = 100_000;
export const T_ACCOUNTS = "manticore_bench_accounts";
export const T_ITEMS = "manticore_bench_items";
export const T_BULK = "manticore_bench_bulk";
export const BULK_ROWS = 100_000;
export const STREAM_ROWS = 1_000_000;

export const POINT_SQL = `SELECT * FROM ${T_ACCOUNTS} WHERE id = $1`;
export const INSERT_SQL = `INSERT INTO ${T_ITEMS} (name, qty) VALUES ($1, $2) RETURNING *`;
export const UPDATE_SQL = `UPDATE ${T_ACCOUNTS} SET balance = balance + $1 WHERE id = $2`;
export const ALL_SQL = `SELECT * FROM ${T_ACCOUNTS}`;
export const BULK_COLUMNS = ["id", "name", "qty", "price"] as const;

export async function createAccounts(lib: AsyncDatabase): Promise<void> {
  await lib.execute(
    `CREATE TABLE ${T_ACCOUNTS} (id INT PRIMARY KEY, balance INT NOT NULL, name TEXT NOT NULL)`,
  );
  await lib.execute(
    `INSERT INTO ${T_ACCOUNTS} SELECT g, 1000, 'account-' || g FROM generate_series(1, ${ACCOUNTS}) g`,
  );
  await lib.execute(`ANALYZE ${T_ACCOUNTS}`);
}

/** Creates the accounts table unless it exists (for the profiling script). */
export async function ensureAccounts(lib: AsyncDatabase): Promise<void> {
  if (!(await lib.tableExists(T_ACCOUNTS))) await createAccounts(lib);
}

/** Creates and fills the tables, dropping any left from an earlier run. */
export async function setUp(ctx: BenchContext): Promise<void> {
  const { lib } = ctx;
  await lib.execute(`DROP TABLE IF EXISTS ${T_ACCOUNTS}, ${T_ITEMS}, ${T_BULK}`);
  await createAccounts(lib);
  await lib.execute(
    `CREATE TABLE ${T_ITEMS} (id SERIAL PRIMARY KEY, name TEXT NOT NULL, qty INT NOT NULL)`,
  );
  await lib.execute(
    `CREATE TABLE ${T_BULK} (id INT PRIMARY KEY, name TEXT NOT NULL, qty INT NOT NULL,
       price NUMERIC(10,2) NOT NULL)`,
  );
}

/** Drops the tables. */
export async function tearDown(ctx: BenchContext): Promise<void> {
  await ctx.lib.execute(`DROP TABLE IF EXISTS ${T_ACCOUNTS}, ${T_ITEMS}, ${T_BULK}`);
}

export function bulkRecords(): Row[] {
  return Array.from({ length: BULK_ROWS }, (_, i) => ({
    id: i + 1,
    name: `item-${i + 1}`,
    qty: i % 1000,
    price: ((i % 100_000) / 100).toFixed(2),
  }));
}

export function bulkText(records: readonly Row[], count = records.length): string {
  let text = "";
  for (let i = 0; i < count; i++) {
    const r = records[i]!; // a count past the records is the caller's error: it throws
    text += `${r.id}\t${r.name}\t${r.qty}\t${r.price}\n`;
  }
  return text;
}

export const isRetryable = (e: unknown): boolean => {
  const code = (e as { code?: unknown })?.code;
  return code === "40001" || code === "40P01";
};

// The library's retry schedule (10 ms doubling up to 2 s, full jitter, 10 retries), written
// by hand for the bare drivers, as a user of them would have to.
export async function retrying(fn: () => Promise<void>, onRetry: () => void): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!isRetryable(error) || attempt >= 10) throw error;
      onRetry();
      const cap = Math.min(2000, 10 * 2 ** attempt);
      await new Promise((r) => setTimeout(r, Math.random() * cap));
    }
  }
}

/** The sequential and concurrent point selects, and the sync bridge's. */
