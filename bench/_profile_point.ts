// A focused point-select loop for the CPU profiler: where does the library's time go per query,
// next to the bare driver doing the same?
//
// Usage:
//   deno run -A --cpu-prof --cpu-prof-dir=/tmp/prof bench/_profile_point.ts <url> <mode> [count]
// mode: library | library-selectOne | postgres.js | library-64 | postgres.js-64
// Prints the wall and process CPU time per query. Creates manticore_bench_accounts if missing
// (and leaves it: drop it by hand, or let `deno task bench` replace and drop it).
import process from "node:process";
import postgres from "postgres";
import { AsyncDatabase } from "../async_database.ts";
import { ACCOUNTS, ensureAccounts, T_ACCOUNTS } from "./_context.ts";
import { cycle, idSequence } from "./_harness.ts";

const [url, mode = "library", countArg = "50000"] = Deno.args;
if (url === undefined) {
  throw new TypeError("Usage: deno run -A bench/_profile_point.ts <url> [mode] [count]");
}
const count = Number(countArg);
const SQL = `SELECT * FROM ${T_ACCOUNTS} WHERE id = $1`;

const lib = new AsyncDatabase(url, { maxConnections: 10 });
const pjs = postgres(url, { max: 10, onnotice: () => {} });
const next = cycle(idSequence(1 << 16, ACCOUNTS));

const one: (id: number) => Promise<unknown> = mode.startsWith("library-selectOne")
  ? (id) => lib.selectOne(T_ACCOUNTS, { where: { id } })
  : mode.startsWith("library")
  ? (id) => lib.queryOne(SQL, [id])
  : (id) => pjs`SELECT * FROM manticore_bench_accounts WHERE id = ${id}`;
const width = mode.endsWith("-64") ? 64 : 1;

async function loop(n: number): Promise<void> {
  const per = Math.ceil(n / width);
  await Promise.all(Array.from({ length: width }, async () => {
    for (let i = 0; i < per; i++) await one(next());
  }));
}

try {
  await ensureAccounts(lib);
  await loop(2000);
  const cpu = process.cpuUsage();
  const start = performance.now();
  await loop(count);
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  console.log(
    `${mode}: ${(ms * 1000 / count).toFixed(1)} µs/query wall, ${
      ((used.user + used.system) / count).toFixed(1)
    } µs/query CPU`,
  );
} finally {
  await lib.close();
  await pjs.end();
}
