// `deno task bench:latency`: round trips, where they are the whole latency. The same work goes
// through the tests' proxy (`_test_proxy.ts`, run in a worker so that its timers do not wait
// for the clients' work) that adds a delay to every chunk each way — 1, 5 and 25 ms: a cloud
// load balancer, a region away, another continent — done by this package, postgres.js and
// node-postgres the way their users write it. Per case and client it prints the median time ÷
// RTT (the round trips the user waits for) and the turns the proxy counted exactly (client waits
// for the server; see `_test_proxy.ts` for the definition). Method: docs/latency.md.
//
// Usage: deno run -A bench/latency.ts [--rtt <ms>[,<ms>…]] [--quick]
// Uses DATABASE_URL when set; otherwise starts a throwaway PostgreSQL server and stops it after.
import { parseArgs } from "node:util";
import postgres from "postgres";
import pg from "npm:pg@^8";
import { AsyncDatabase } from "../async_database.ts";
import { startTestDatabase } from "../testing.ts";
import { ProxyWorker } from "./_latency_proxy.ts";
import {
  benchArgs,
  type Case,
  type CaseResult,
  cycle,
  idSequence,
  listArg,
  quantile,
  runCase,
  timed,
  type Variant,
} from "./_harness.ts";

const HELP = `Usage: deno task bench:latency [--rtt <ms>[,<ms>...]] [--quick]

  --rtt <ms>     the delay the proxy adds each way, in ms (a round trip gains twice this);
                 comma-separated or repeated; default 1,5,25
  --quick        few rounds and less work: a smoke test, not figures to quote
  --help         this text

Uses DATABASE_URL when set; otherwise starts a throwaway PostgreSQL server.`;

const TABLE = "manticore_latency_accounts";
const ACCOUNTS = 1000;
const POINT_SQL = `SELECT * FROM ${TABLE} WHERE id = $1`;
const DEBIT_SQL = `UPDATE ${TABLE} SET balance = balance - 1 WHERE id = $1 RETURNING balance`;
const CREDIT_SQL = `UPDATE ${TABLE} SET balance = balance + 1, seen = $2 WHERE id = $1`;
const TOUCH_SQL = `UPDATE ${TABLE} SET seen = seen + 1 WHERE id = $1`;

const log = (line: string) => console.error(line);
const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The clients of one delay, all through the same proxy. */
interface Clients {
  readonly url: string;
  readonly proxy: ProxyWorker;
  readonly lib: AsyncDatabase;
  readonly pjs: postgres.Sql;
  readonly pool: pg.Pool;
}

/** What the proxy counted per operation in one run. */
interface Count {
  readonly turns: number;
  readonly connections: number;
}

/** One cell of the table: a way of doing the work, or why there is none. */
type Cell = Variant | string;

/** A row of the table. */
interface Row {
  readonly id: string;
  readonly title: string;
  /** The fewest turns the work can take. */
  readonly floor: number;
  readonly work: number;
  readonly quickWork: number;
  readonly warmupWork: number;
  readonly cells: readonly [library: Cell, postgresJs: Cell, nodePostgres: Cell];
}

const COLUMNS = ["this package", "postgres.js", "node-postgres"] as const;

function parse(): { delays: number[]; quick: boolean } {
  const values = benchArgs(() =>
    parseArgs({
      args: Deno.args,
      options: {
        rtt: { type: "string", multiple: true },
        quick: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }).values, HELP);
  const given = listArg(values.rtt);
  const delays = (given?.length ? given : ["1", "5", "25"]).map((text) => {
    const ms = Number(text);
    if (!Number.isFinite(ms) || ms <= 0) {
      console.error(`Cannot use delay "${text}": not a positive number of milliseconds`);
      Deno.exit(2);
    }
    return ms;
  });
  return { delays, quick: values.quick! };
}

/** A variant that does `one(i)` for each of `n` operations, counting turns in the proxy. */
function counted(
  proxy: ProxyWorker,
  counts: Map<string, Count[]>,
  id: string,
  label: string,
  one: (i: number) => Promise<unknown>,
): Variant {
  const list: Count[] = [];
  counts.set(id, list);
  return {
    id,
    label,
    async run(n) {
      await proxy.reset();
      const sample = await timed(async () => {
        for (let i = 0; i < n; i++) await one(i);
        return n;
      });
      // Connections that waited for the server in this run (idle ones of a pool are left out).
      const { turns, connections } = await proxy.count();
      list.push({ turns: turns / n, connections: connections / n });
      return sample;
    },
  };
}

function rows(c: Clients, counts: Map<string, Count[]>): Row[] {
  const { url, proxy, lib, pjs, pool } = c;
  const next = cycle(idSequence(1 << 12, ACCOUNTS));
  const v = (id: string, label: string, one: (i: number) => Promise<unknown>) =>
    counted(proxy, counts, id, label, one);
  return [
    {
      id: "cold",
      title: "new client, first `SELECT 1`, close",
      floor: 2,
      work: 5,
      quickWork: 2,
      warmupWork: 1,
      cells: [
        v(
          "cold/library",
          "`new AsyncDatabase(url)`, `execute`, `close` (default pool)",
          async () => {
            const db = new AsyncDatabase(url);
            await db.execute("SELECT 1");
            await db.close();
          },
        ),
        v("cold/postgres.js", "`postgres(url)`, `` sql`SELECT 1` ``, `end`", async () => {
          const sql = postgres(url, { onnotice: () => {} });
          await sql`SELECT 1`;
          await sql.end();
        }),
        v("cold/pg", "`new pg.Client`, `connect`, `query`, `end`", async () => {
          const client = new pg.Client({ connectionString: url });
          await client.connect();
          await client.query("SELECT 1");
          await client.end();
        }),
      ],
    },
    {
      id: "point",
      title: "point select",
      floor: 1,
      work: 20,
      quickWork: 5,
      warmupWork: 5,
      cells: [
        v("point/library", "`queryOne(sql, [id])`", () => lib.queryOne(POINT_SQL, [next()])),
        v("point/postgres.js", "`` sql`SELECT … ${id}` ``", () => {
          const id = next();
          return pjs`SELECT * FROM manticore_latency_accounts WHERE id = ${id}`;
        }),
        v("point/pg", "`pool.query(sql, [id])`", () => pool.query(POINT_SQL, [next()])),
      ],
    },
    {
      id: "tx-dependent",
      title: "transaction of 2 dependent updates",
      floor: 3,
      work: 10,
      quickWork: 3,
      warmupWork: 3,
      cells: [
        v("tx-dependent/library", "`transaction`", () =>
          lib.transaction(async (tx) => {
            const row = await tx.queryOne<{ balance: number }>(DEBIT_SQL, [next()]);
            await tx.execute(CREDIT_SQL, [next(), row!.balance]);
          })),
        v("tx-dependent/postgres.js", "`sql.begin`", () =>
          pjs.begin(async (sql) => {
            const a = next();
            const [row] = await sql`
              UPDATE manticore_latency_accounts SET balance = balance - 1 WHERE id = ${a}
              RETURNING balance`;
            const b = next();
            await sql`
              UPDATE manticore_latency_accounts SET balance = balance + 1, seen = ${row!.balance}
              WHERE id = ${b}`;
          })),
        v("tx-dependent/pg", "`BEGIN`/`COMMIT` by hand", () =>
          byHand(pool, async (client) => {
            const { rows } = await client.query(DEBIT_SQL, [next()]);
            await client.query(CREDIT_SQL, [next(), rows[0].balance]);
          })),
      ],
    },
    {
      id: "tx-independent",
      title: "transaction of 3 independent statements",
      floor: 1,
      work: 10,
      quickWork: 3,
      warmupWork: 3,
      cells: [
        v(
          "tx-independent/library",
          "`transaction`, the 3 awaited together",
          () =>
            lib.transaction(async (tx) => {
              await Promise.all([
                tx.execute(TOUCH_SQL, [next()]),
                tx.execute(TOUCH_SQL, [next()]),
                tx.execute(TOUCH_SQL, [next()]),
              ]);
            }),
        ),
        v("tx-independent/postgres.js", "`sql.begin(sql => [ … ])`", () =>
          pjs.begin((sql) => {
            const [a, b, c] = [next(), next(), next()];
            return [
              sql`UPDATE manticore_latency_accounts SET seen = seen + 1 WHERE id = ${a}`,
              sql`UPDATE manticore_latency_accounts SET seen = seen + 1 WHERE id = ${b}`,
              sql`UPDATE manticore_latency_accounts SET seen = seen + 1 WHERE id = ${c}`,
            ];
          })),
        v("tx-independent/pg", "`BEGIN`/`COMMIT` by hand", () =>
          byHand(pool, async (client) => {
            for (let k = 0; k < 3; k++) await client.query(TOUCH_SQL, [next()]);
          })),
      ],
    },
    {
      id: "batch",
      title: "`batch` of 3 statements",
      floor: 1,
      work: 10,
      quickWork: 3,
      warmupWork: 3,
      cells: [
        v("batch/library", "`batch([…])`", () =>
          lib.batch([
            { sql: TOUCH_SQL, params: [next()] },
            { sql: TOUCH_SQL, params: [next()] },
            { sql: TOUCH_SQL, params: [next()] },
          ])),
        "no batch API",
        "no batch API",
      ],
    },
  ];
}

/** A transaction as node-postgres users write it. */
async function byHand(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await fn(client);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** The figures of one cell. */
interface Figures {
  /** Median time per operation ÷ RTT, with the quartiles over runs. */
  readonly rtt: number;
  readonly q1: number;
  readonly q3: number;
  readonly medianMs: number;
  /** Client CPU time per operation (this process, all threads), in ms. */
  readonly cpuMs: number | undefined;
  readonly turns: number;
  readonly connections: number;
}

function figures(result: CaseResult, id: string, counts: Count[], rttMs: number): Figures {
  const v = result.variants.find((x) => x.id === id)!;
  const perOp = v.samples.map((s) => s.ms / s.ops);
  // The first count is the warm-up's, which the harness does not record either.
  const recorded = counts.slice(counts.length - v.samples.length);
  const mid = (list: number[]) => quantile(list, 0.5);
  return {
    rtt: mid(perOp) / rttMs,
    q1: quantile(perOp, 0.25) / rttMs,
    q3: quantile(perOp, 0.75) / rttMs,
    medianMs: mid(perOp),
    cpuMs: v.cpuMicrosPerOp === undefined ? undefined : v.cpuMicrosPerOp / 1000,
    turns: mid(recorded.map((c) => c.turns)),
    connections: mid(recorded.map((c) => c.connections)),
  };
}

/** Turns per operation: exact counts stay integers; an average shows two decimals. */
function showTurns(turns: number): string {
  return Number.isInteger(turns) ? String(turns) : turns.toFixed(2);
}

function lockedVersion(lock: string, name: string): string {
  const match = new RegExp(`"npm:${name}@[^"]*": "([^"]+)"`).exec(lock);
  return match?.[1] ?? "?";
}

async function runDelay(
  serverUrl: string,
  delay: number,
  quick: boolean,
): Promise<string[]> {
  const proxy = await ProxyWorker.start(serverUrl, delay);
  const url = proxy.url(serverUrl);
  const lib = new AsyncDatabase(url);
  const pjs = postgres(url, { onnotice: () => {} });
  const pool = new pg.Pool({ connectionString: url });
  // An idle client the server ends (at teardown) is reported on the pool: without a listener
  // node-postgres throws it uncaught.
  pool.on("error", () => {});
  const rttMs = 2 * delay;
  const lines: string[] = [];
  try {
    const counts = new Map<string, Count[]>();
    const table: string[] = [
      `### ${delay} ms each way (RTT ${rttMs} ms)`,
      "",
      "Median time of one operation ÷ RTT (quartiles over runs), then the turns the proxy " +
      "counted per operation. Floor: the fewest turns the work can take.",
      "",
      `| work | ${COLUMNS.join(" | ")} | floor |`,
      "| --- | ---: | ---: | ---: | ---: |",
    ];
    const details: string[] = [];
    for (const row of rows({ url, proxy, lib, pjs, pool }, counts)) {
      const variants = row.cells.filter((c): c is Variant => typeof c !== "string");
      log(`${delay} ms: ${row.id}`);
      const c: Case = {
        id: row.id,
        title: row.title,
        unit: "op",
        work: row.work,
        quickWork: row.quickWork,
        rounds: 7,
        quickRounds: 2,
        warmupWork: row.warmupWork,
        variants,
      };
      const result = variants.length ? await runCase(c, quick, log) : undefined;
      const cells = row.cells.map((cell) => {
        if (typeof cell === "string" || result === undefined) return "—";
        const f = figures(result, cell.id, counts.get(cell.id)!, rttMs);
        const conns = f.connections > 1 ? `, ${showTurns(f.connections)} connections` : "";
        details.push(
          `| ${row.title} | ${cell.label} | ${f.medianMs.toFixed(1)} ms | ${
            f.cpuMs === undefined ? "–" : `${f.cpuMs.toFixed(1)} ms`
          } | ${f.rtt.toFixed(2)} (${f.q1.toFixed(2)}–${f.q3.toFixed(2)}) | ${
            showTurns(f.turns)
          }${conns} |`,
        );
        return `${f.rtt.toFixed(2)} (${showTurns(f.turns)} ${f.turns === 1 ? "turn" : "turns"})`;
      });
      for (const [i, cell] of row.cells.entries()) {
        if (typeof cell === "string") {
          details.push(`| ${row.title} | ${COLUMNS[i]}: ${cell} | — | — | — | — |`);
        }
      }
      table.push(`| ${row.title} | ${cells.join(" | ")} | ${row.floor} |`);
    }
    lines.push(...table, "");
    lines.push(
      "| work | client, as its users write it | median per op | client CPU per op " +
        "| ÷ RTT (quartiles) | turns per op |",
      "| --- | --- | ---: | ---: | ---: | ---: |",
      ...details,
      "",
    );
  } finally {
    await lib.close();
    await pjs.end({ timeout: 5 });
    await pool.end();
    await proxy.close();
  }
  return lines;
}

async function main(): Promise<void> {
  const { delays, quick } = parse();
  const started = performance.now();
  log(
    Deno.env.get("DATABASE_URL") ? "Using DATABASE_URL" : "Starting a throwaway PostgreSQL server",
  );
  const server = await startTestDatabase();
  const direct = new AsyncDatabase(server.url, { minConnections: 1 });
  try {
    await direct.execute(`DROP TABLE IF EXISTS ${TABLE}`);
    await direct.execute(
      `CREATE TABLE ${TABLE} (id INT PRIMARY KEY, balance INT NOT NULL, seen INT NOT NULL)`,
    );
    await direct.execute(
      `INSERT INTO ${TABLE} SELECT g, 1000, 0 FROM generate_series(1, ${ACCOUNTS}) g`,
    );
    let lock = "";
    try {
      lock = await Deno.readTextFile(`${root}/deno.lock`);
    } catch { /* no lock */ }
    const out: string[] = [
      `Deno ${Deno.version.deno}; ${direct.serverVersion.split(" on ")[0]}; postgres.js ${
        lockedVersion(lock, "postgres")
      }; pg ${lockedVersion(lock, "pg")}; ${navigator.hardwareConcurrency} cores; load average ` +
      `at start ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}` +
      `${quick ? " (--quick: a smoke test, not figures to quote)" : ""}`,
      "",
    ];
    for (const delay of delays) out.push(...await runDelay(server.url, delay, quick));
    await direct.execute(`DROP TABLE IF EXISTS ${TABLE}`);
    log(`Done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    console.log(out.join("\n"));
  } finally {
    await direct.close();
    await server.stop();
  }
}

await main();
