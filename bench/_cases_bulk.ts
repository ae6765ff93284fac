// The bulk cases of `deno task bench` (see `_cases.ts`): many rows written at once, a large
// result read whole, and a result streamed, through the library and through the bare drivers.
import { type Case, type Sample, timed, timedSync, type Variant } from "./_harness.ts";
import {
  ACCOUNTS,
  ALL_SQL,
  type BenchContext,
  BULK_COLUMNS,
  BULK_ROWS,
  bulkRecords,
  bulkText,
  STREAM_ROWS,
  T_ACCOUNTS,
  T_BULK,
} from "./_context.ts";

export function bulkCases(ctx: BenchContext): Case[] {
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
                    const r = records[j]!;
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

export function selectManyCase(ctx: BenchContext): Case {
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
export function streamCase(ctx: BenchContext): Case {
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
