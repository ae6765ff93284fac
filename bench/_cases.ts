// The cases of `deno task bench`: each one does the same work through the library and through
// the tools a user would pick instead, running the same statements. Point reads, inserts and
// transactions are here; bulk writes, large reads and streams in `_cases_bulk.ts`.
import {
  type Case,
  cycle,
  idSequence,
  type Sample,
  timed,
  timedSync,
  type Variant,
} from "./_harness.ts";
import {
  ACCOUNTS,
  type BenchContext,
  INSERT_SQL,
  POINT_SQL,
  retrying,
  T_ACCOUNTS,
  T_ITEMS,
  UPDATE_SQL,
} from "./_context.ts";
import { bulkCases, selectManyCase, streamCase } from "./_cases_bulk.ts";

function pointCases(ctx: BenchContext): Case[] {
  const { lib, libExtra, pjs, pg, sync } = ctx;
  const next = cycle(idSequence(1 << 16, ACCOUNTS));

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
  const next = cycle(idSequence(1 << 16, ACCOUNTS, 777));
  const pair = (hot: number): [number, number] => {
    let a: number, b: number;
    if (hot > 0) {
      a = 1 + Math.floor(Math.random() * hot);
      do b = 1 + Math.floor(Math.random() * hot); while (b === a);
    } else {
      a = next();
      do b = next(); while (b === a);
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
