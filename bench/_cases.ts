// The cases of `deno task bench`: each one does the same work through the library and through
// the tools a user would pick instead, running the same statements.
import type postgres from "postgres";
import type pg from "npm:pg@^8";
import type { AsyncDatabase } from "../async_database.ts";
import { type Case, idSequence, type Sample, timed, timedSync, type Variant } from "./_harness.ts";

type Row = Record<string, unknown>;

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

const POINT_SQL = `SELECT * FROM ${T_ACCOUNTS} WHERE id = $1`;
const INSERT_SQL = `INSERT INTO ${T_ITEMS} (name, qty) VALUES ($1, $2) RETURNING *`;
const UPDATE_SQL = `UPDATE ${T_ACCOUNTS} SET balance = balance + $1 WHERE id = $2`;
const ALL_SQL = `SELECT * FROM ${T_ACCOUNTS}`;
const BULK_COLUMNS = ["id", "name", "qty", "price"] as const;

async function createAccounts(lib: AsyncDatabase): Promise<void> {
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

function bulkRecords(): Row[] {
  return Array.from({ length: BULK_ROWS }, (_, i) => ({
    id: i + 1,
    name: `item-${i + 1}`,
    qty: i % 1000,
    price: ((i % 100_000) / 100).toFixed(2),
  }));
}

function bulkText(records: readonly Row[], count = records.length): string {
  let text = "";
  for (let i = 0; i < count; i++) {
    const r = records[i];
    text += `${r.id}\t${r.name}\t${r.qty}\t${r.price}\n`;
  }
  return text;
}

const isRetryable = (e: unknown): boolean => {
  const code = (e as { code?: unknown })?.code;
  return code === "40001" || code === "40P01";
};

// The library's retry schedule (10 ms doubling up to 2 s, full jitter, 10 retries), written
// by hand for the bare drivers, as a user of them would have to.
async function retrying(fn: () => Promise<void>, onRetry: () => void): Promise<void> {
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
function pointCases(ctx: BenchContext): Case[] {
  const { lib, libExtra, pjs, pg, sync } = ctx;
  const ids = idSequence(1 << 16, ACCOUNTS);
  const mask = ids.length - 1;
  let cursor = 0;
  const next = () => ids[cursor++ & mask];

  const sequential = (id: string, label: string, one: (id: number) => Promise<unknown>) => ({
    id,
    label,
    run: (n: number) =>
      timed(async () => {
        for (let i = 0; i < n; i++) await one(next());
        return n;
      }),
  });
  const concurrent = (id: string, label: string, one: (id: number) => Promise<unknown>) => ({
    id,
    label,
    run: (n: number) =>
      timed(async () => {
        const per = Math.ceil(n / 64);
        await Promise.all(Array.from({ length: 64 }, async () => {
          for (let i = 0; i < per; i++) await one(next());
        }));
        return per * 64;
      }),
  });

  const libQuery = (id: number) => lib.queryOne(POINT_SQL, [id]);
  const libSelectOne = (id: number) => libExtra.selectOne(T_ACCOUNTS, { where: { id } });
  const pjsQuery = (id: number) => pjs`SELECT * FROM manticore_bench_accounts WHERE id = ${id}`;
  const pgQuery = (id: number) => pg.query({ name: "point", text: POINT_SQL, values: [id] });

  const seqVariants: Variant[] = [
    sequential("library", "library `queryOne(sql, [id])`", libQuery),
    sequential("library-selectOne", "library `selectOne(table, { where: { id } })`", libSelectOne),
    sequential("postgres.js", "postgres.js tagged template (prepared)", pjsQuery),
    sequential("pg", "node-postgres `Pool.query` (named, prepared)", pgQuery),
  ];
  if (sync) {
    seqVariants.push({
      id: "sync",
      label: "library sync `Database.queryOne` (Worker bridge)",
      run: (n) =>
        timedSync(() => {
          for (let i = 0; i < n; i++) sync.queryOne(POINT_SQL, [next()]);
          return n;
        }),
    });
  }
  return [
    {
      id: "point-select",
      title: "Sequential point select (`SELECT * … WHERE id = $1`, one at a time)",
      unit: "query",
      work: 600,
      quickWork: 300,
      rounds: 41,
      quickRounds: 3,
      warmupWork: 500,
      variants: seqVariants,
    },
    {
      id: "point-select-64",
      title: "64-way concurrent point selects (pools of 10 connections)",
      unit: "query",
      work: 3200,
      quickWork: 1280,
      rounds: 31,
      quickRounds: 3,
      warmupWork: 1280,
      variants: [
        concurrent("library", "library `queryOne(sql, [id])`", libQuery),
        concurrent(
          "library-selectOne",
          "library `selectOne(table, { where: { id } })`",
          libSelectOne,
        ),
        concurrent("postgres.js", "postgres.js tagged template (prepared)", pjsQuery),
        concurrent("pg", "node-postgres `Pool.query` (named, prepared)", pgQuery),
      ],
    },
  ];
}

function insertCase(ctx: BenchContext): Case {
  const { lib, pjs, pg } = ctx;
  let n = 0;
  const seq = (
    id: string,
    label: string,
    one: (name: string, qty: number) => Promise<unknown>,
  ) => ({
    id,
    label,
    run: (count: number) =>
      timed(async () => {
        for (let i = 0; i < count; i++) await one(`item-${++n}`, n % 1000);
        return count;
      }),
  });
  return {
    id: "insert",
    title: "Single-row insert returning the row (sequential)",
    unit: "insert",
    work: 1500,
    quickWork: 200,
    rounds: 11,
    quickRounds: 2,
    warmupWork: 200,
    variants: [
      seq(
        "library",
        "library `insert(table, row)`",
        (name, qty) => lib.insert(T_ITEMS, { name, qty }),
      ),
      seq(
        "postgres.js",
        "postgres.js tagged template (prepared)",
        (name, qty) =>
          pjs`INSERT INTO manticore_bench_items (name, qty) VALUES (${name}, ${qty}) RETURNING *`,
      ),
      seq(
        "pg",
        "node-postgres `Pool.query` (named, prepared)",
        (name, qty) => pg.query({ name: "insert", text: INSERT_SQL, values: [name, qty] }),
      ),
    ],
  };
}

/** Two-update transactions: sequential on random rows, and 8 clients on 4 hot rows. */
function transactionCases(ctx: BenchContext): Case[] {
  const { lib, pjs, pg } = ctx;
  const ids = idSequence(1 << 16, ACCOUNTS, 777);
  let cursor = 0;
  const pair = (hot: number): [number, number] => {
    let a: number, b: number;
    if (hot > 0) {
      a = 1 + Math.floor(Math.random() * hot);
      do b = 1 + Math.floor(Math.random() * hot); while (b === a);
    } else {
      a = ids[cursor++ & 0xffff];
      do b = ids[cursor++ & 0xffff]; while (b === a);
    }
    // Rows are updated in key order, so transactions conflict (40001) but never deadlock.
    return a < b ? [a, b] : [b, a];
  };

  type Transfer = (a: number, b: number, onRetry: () => void) => Promise<void>;
  const libTransfer: Transfer = (a, b, onRetry) =>
    lib.transaction(async (tx) => {
      await tx.execute(UPDATE_SQL, [-1, a]);
      await tx.execute(UPDATE_SQL, [1, b]);
    }, { onRetry });
  const pjsTransfer: Transfer = (a, b, onRetry) =>
    retrying(async () => {
      await pjs.begin(async (tx) => {
        await tx`UPDATE manticore_bench_accounts SET balance = balance + ${-1} WHERE id = ${a}`;
        await tx`UPDATE manticore_bench_accounts SET balance = balance + ${1} WHERE id = ${b}`;
      });
    }, onRetry);
  const pgTransfer: Transfer = (a, b, onRetry) =>
    retrying(async () => {
      const client = await pg.connect();
      try {
        await client.query("BEGIN");
        await client.query({ name: "update", text: UPDATE_SQL, values: [-1, a] });
        await client.query({ name: "update", text: UPDATE_SQL, values: [1, b] });
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    }, onRetry);

  const variant = (
    id: string,
    label: string,
    transfer: Transfer,
    workers: number,
    hot: number,
  ) => ({
    id,
    label,
    run: async (n: number): Promise<Sample> => {
      let retries = 0;
      const onRetry = () => void retries++;
      const per = Math.ceil(n / workers);
      const sample = await timed(async () => {
        await Promise.all(Array.from({ length: workers }, async () => {
          for (let i = 0; i < per; i++) {
            const [a, b] = pair(hot);
            await transfer(a, b, onRetry);
          }
        }));
        return per * workers;
      });
      return { ...sample, retries };
    },
  });
  const variants = (workers: number, hot: number): Variant[] => [
    variant("library", "library `transaction()` (retries built in)", libTransfer, workers, hot),
    variant(
      "postgres.js",
      "postgres.js `sql.begin()` + hand-written retry loop",
      pjsTransfer,
      workers,
      hot,
    ),
    variant(
      "pg",
      "node-postgres client `BEGIN`/`COMMIT` + hand-written retry loop",
      pgTransfer,
      workers,
      hot,
    ),
  ];
  return [
    {
      id: "tx",
      title: "Two-update transaction, uncontended (one client, random rows)",
      unit: "tx",
      work: 600,
      quickWork: 60,
      rounds: 9,
      quickRounds: 3,
      warmupWork: 60,
      variants: variants(1, 0),
    },
    {
      id: "tx-contended",
      title: "Two-update transaction, contended (8 clients, 4 hot rows, serializable, retries)",
      unit: "tx",
      work: 400,
      quickWork: 48,
      rounds: 7,
      quickRounds: 3,
      warmupWork: 48,
      variants: variants(8, 4),
    },
  ];
}

function bulkCases(ctx: BenchContext): Case[] {
  const { lib, pjs, pg, url, tmpDir } = ctx;
  const records = bulkRecords();
  const truncate = async () => {
    await lib.execute(`TRUNCATE ${T_BULK}`);
  };
  const file = `${tmpDir}/bulk.tsv`;
  Deno.writeTextFileSync(file, bulkText(records));
  const columns = BULK_COLUMNS.join(", ");
  const copySql = `COPY ${T_BULK} (${columns}) FROM STDIN`;
  const chunk = Math.floor(65_534 / BULK_COLUMNS.length);

  const psqlCopy: Variant = {
    id: "psql",
    label: "`psql \\copy` from a file (process start included)",
    run: async (n) => {
      const path = n === records.length ? file : `${tmpDir}/bulk_${n}.tsv`;
      if (path !== file) await Deno.writeTextFile(path, bulkText(records, n));
      // psql's own CPU time is not this process's: leave the CPU column empty.
      const { cpuMs: _, ...sample } = await timed(async () => {
        const out = await new Deno.Command("psql", {
          args: [
            url,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            `\\copy ${T_BULK} (${columns}) FROM '${path}'`,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        if (!out.success) {
          throw new Error(`psql \\copy failed: ${new TextDecoder().decode(out.stderr)}`);
        }
        return n;
      });
      return sample;
    },
  };
  return [
    {
      id: "batch-insert",
      title: "`batchInsert` of 100,000 rows, `returning: false` (4 columns)",
      unit: "row",
      work: BULK_ROWS,
      quickWork: BULK_ROWS,
      rounds: 7,
      quickRounds: 1,
      warmupWork: 1000,
      beforeEach: truncate,
      variants: [
        {
          id: "library",
          label: "library `batchInsert(…, { returning: false })` (COPY)",
          run: (n) =>
            timed(() =>
              lib.batchInsert(T_BULK, n === records.length ? records : records.slice(0, n), {
                returning: false,
              })
            ),
        },
        ...(ctx.hasPsql ? [psqlCopy] : []),
        {
          id: "postgres.js",
          label: "postgres.js `COPY … FROM STDIN` writable, hand-encoded",
          run: (n) =>
            timed(async () => {
              const writable = await pjs.unsafe(copySql).writable();
              await new Promise<void>((resolve, reject) => {
                writable.on("error", reject);
                writable.on("finish", resolve);
                writable.end(bulkText(records, n));
              });
              return n;
            }),
        },
      ],
    },
    {
      id: "batch-insert-returning",
      title: "`batchInsert` of 100,000 rows returning them (multi-row INSERT in a transaction)",
      unit: "row",
      work: BULK_ROWS,
      quickWork: BULK_ROWS,
      rounds: 5,
      quickRounds: 1,
      warmupWork: 1000,
      beforeEach: truncate,
      variants: [
        {
          id: "library",
          label: "library `batchInsert(table, rows)`",
          run: (n) =>
            timed(async () =>
              (await lib.batchInsert(T_BULK, n === records.length ? records : records.slice(0, n)))
                .length
            ),
        },
        {
          id: "postgres.js",
          label: "postgres.js `sql(rows)` helper, same chunks, in `sql.begin()`",
          run: (n) =>
            timed(async () => {
              const rows = await pjs.begin((tx) => {
                const queries = [];
                for (let i = 0; i < n; i += chunk) {
                  const part = records.slice(i, Math.min(n, i + chunk));
                  queries.push(
                    tx`INSERT INTO manticore_bench_bulk ${tx(part, ...BULK_COLUMNS)} RETURNING *`,
                  );
                }
                return Promise.all(queries);
              });
              return rows.reduce((s, r) => s + r.length, 0);
            }),
        },
        {
          id: "pg",
          label: "node-postgres multi-row INSERT, same chunks, `BEGIN`/`COMMIT`",
          run: (n) =>
            timed(async () => {
              const client = await pg.connect();
              let count = 0;
              try {
                await client.query("BEGIN");
                for (let i = 0; i < n; i += chunk) {
                  const end = Math.min(n, i + chunk);
                  const values: unknown[] = [];
                  const tuples: string[] = [];
                  for (let j = i; j < end; j++) {
                    const r = records[j];
                    const k = values.length;
                    tuples.push(`($${k + 1}, $${k + 2}, $${k + 3}, $${k + 4})`);
                    values.push(r.id, r.name, r.qty, r.price);
                  }
                  const result = await client.query(
                    `INSERT INTO ${T_BULK} (${columns}) VALUES ${tuples.join(", ")} RETURNING *`,
                    values,
                  );
                  count += result.rows.length;
                }
                await client.query("COMMIT");
              } finally {
                client.release();
              }
              return count;
            }),
        },
      ],
    },
  ];
}

function selectManyCase(ctx: BenchContext): Case {
  const { lib, libExtra, pjs, pg, sync } = ctx;
  const variants: Variant[] = [
    {
      id: "library",
      label: "library `execute(sql)`",
      run: () => timed(async () => (await lib.execute(ALL_SQL)).length),
    },
    {
      id: "library-select",
      label: "library `select(table)`",
      run: () => timed(async () => (await libExtra.select(T_ACCOUNTS)).length),
    },
    {
      id: "library-stream",
      label: "library `stream(sql)` (cursor, 1,000 rows per fetch)",
      run: () =>
        timed(async () => {
          let n = 0;
          for await (const _ of libExtra.stream(ALL_SQL)) n++;
          return n;
        }),
    },
    {
      id: "postgres.js",
      label: "postgres.js tagged template",
      run: () => timed(async () => (await pjs`SELECT * FROM manticore_bench_accounts`).length),
    },
    {
      id: "postgres.js-cursor",
      label: "postgres.js `.cursor(1000)` (protocol portal)",
      run: () =>
        timed(async () => {
          let n = 0;
          for await (const rows of pjs`SELECT * FROM manticore_bench_accounts`.cursor(1000)) {
            n += rows.length;
          }
          return n;
        }),
    },
    {
      id: "pg",
      label: "node-postgres `Pool.query`",
      run: () => timed(async () => (await pg.query(ALL_SQL)).rows.length),
    },
  ];
  if (sync) {
    variants.push({
      id: "sync",
      label: "library sync `Database.execute(sql)` (Worker bridge)",
      run: () => timedSync(() => sync.execute(ALL_SQL).length),
    });
  }
  return {
    id: "select-100k",
    title: "Select 100,000 rows (3 columns)",
    unit: "row",
    work: ACCOUNTS,
    quickWork: ACCOUNTS,
    rounds: 9,
    quickRounds: 1,
    warmupWork: ACCOUNTS,
    variants,
  };
}

/** Streams 1,000,000 rows in a fresh child process each run, sampling its RSS. */
function streamCase(ctx: BenchContext): Case {
  const child = (id: string, label: string): Variant => ({
    id,
    label,
    run: async (n) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          "--config",
          `${ctx.root}/deno.json`,
          new URL("./_stream_child.ts", import.meta.url).pathname,
          ctx.url,
          id,
          String(n),
        ],
        stdout: "piped",
        stderr: "piped",
        cwd: ctx.root,
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      if (!out.success) {
        throw new Error(`Stream child ${id} failed: ${new TextDecoder().decode(out.stderr)}`);
      }
      return JSON.parse(text.split("\n").at(-1)!) as Sample;
    },
  });
  return {
    id: "stream-1m",
    title: "Stream 1,000,000 rows, peak RSS growth (a fresh process per run)",
    unit: "row",
    work: STREAM_ROWS,
    quickWork: STREAM_ROWS,
    rounds: 3,
    quickRounds: 1,
    warmupWork: 1000,
    variants: [
      child("library", "library `stream(sql)` (cursor, 1,000 rows per fetch)"),
      child("postgres.js-cursor", "postgres.js `.cursor(1000)` (protocol portal)"),
      child("library-execute", "library `execute(sql)`, all rows in memory (for contrast)"),
    ],
  };
}

/** Every case, in run order. */
export function allCases(ctx: BenchContext): Case[] {
  return [
    ...pointCases(ctx),
    insertCase(ctx),
    ...transactionCases(ctx),
    ...bulkCases(ctx),
    selectManyCase(ctx),
    streamCase(ctx),
  ];
}
