// The cost of the synchronous bridge: the same statements through `Database` (Worker +
// SharedArrayBuffer + Atomics) and through `AsyncDatabase`, in one process, in interleaved
// rounds (the order alternates between rounds, so drift and noise from other processes fall on
// both sides). Prints the medians and the ratios sync / async.
//
// Usage: deno run -A bench/sync_bridge_bench.ts [--quick] [--verbose]
//   --quick    few rounds: a smoke test, not figures to quote
//   --verbose  also print every round (sync/async) on stderr
// Uses a fresh database on the server in TEST_DATABASE_URL when set; otherwise starts a
// throwaway PostgreSQL server and stops it after.
import { AsyncDatabase } from "../async_database.ts";
import { Database } from "../database.ts";
import { startTestDatabase } from "../testing.ts";
import { median, zip } from "./_harness.ts";

const quick = Deno.args.includes("--quick");
const verbose = Deno.args.includes("--verbose");
const POINT_ROUNDS = quick ? 5 : 21;
const POINT_OPS = quick ? 200 : 1000;
const LARGE_ROUNDS = quick ? 3 : 9;
const POINT_SQL = "SELECT $1::int AS n";
const LARGE_SQL =
  "SELECT g AS id, 'name ' || g AS name, g::int8 * 7 AS amount, now() AS at FROM generate_series(1, 100000) g";

function pointSync(db: Database): number {
  const started = performance.now();
  for (let i = 0; i < POINT_OPS; i++) db.execute(POINT_SQL, [i]);
  return (performance.now() - started) * 1000 / POINT_OPS;
}

async function pointAsync(db: AsyncDatabase): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < POINT_OPS; i++) await db.execute(POINT_SQL, [i]);
  return (performance.now() - started) * 1000 / POINT_OPS;
}

function largeSync(db: Database): number {
  const started = performance.now();
  const rows = db.execute(LARGE_SQL);
  const elapsed = performance.now() - started;
  if (rows.length !== 100_000) throw new Error(`Expected 100000 rows, got ${rows.length}`);
  return elapsed;
}

async function largeAsync(db: AsyncDatabase): Promise<number> {
  const started = performance.now();
  const rows = await db.execute(LARGE_SQL);
  const elapsed = performance.now() - started;
  if (rows.length !== 100_000) throw new Error(`Expected 100000 rows, got ${rows.length}`);
  return elapsed;
}

// Both lists have one time per round: item i of each is the same round.
interface Measured {
  readonly sync: number[];
  readonly async: number[];
}

async function interleave(
  rounds: number,
  sync: () => number,
  async: () => Promise<number>,
): Promise<Measured> {
  const measured: Measured = { sync: [], async: [] };
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      measured.sync.push(sync());
      measured.async.push(await async());
    } else {
      measured.async.push(await async());
      measured.sync.push(sync());
    }
  }
  if (verbose) {
    console.error(
      zip(measured.sync, measured.async).map(([s, a]) => `${s.toFixed(0)}/${a.toFixed(0)}`)
        .join(" "),
    );
  }
  return measured;
}

function report(name: string, unit: string, goal: number, m: Measured): string {
  const sync = median(m.sync);
  const async = median(m.async);
  const paired = median(zip(m.sync, m.async).map(([s, a]) => s / a));
  const ratio = sync / async;
  return `| ${name} | ${async.toFixed(unit === "µs" ? 1 : 0)} ${unit} | ${
    sync.toFixed(unit === "µs" ? 1 : 0)
  } ${unit} | ${ratio.toFixed(2)}× (paired ${paired.toFixed(2)}×) | ≤ ${goal}× ${
    ratio <= goal ? "✓" : "✗"
  } |`;
}

const server = await startTestDatabase();
try {
  await using asyncDb = new AsyncDatabase(server.url);
  using syncDb = new Database(server.url);
  await asyncDb.connect();
  // Warm up both sides: pools, prepared statements, JIT.
  for (let i = 0; i < 300; i++) syncDb.execute(POINT_SQL, [i]);
  for (let i = 0; i < 300; i++) await asyncDb.execute(POINT_SQL, [i]);
  largeSync(syncDb);
  await largeAsync(asyncDb);

  const point = await interleave(
    POINT_ROUNDS,
    () => pointSync(syncDb),
    () => pointAsync(asyncDb),
  );
  const large = await interleave(
    LARGE_ROUNDS,
    () => largeSync(syncDb),
    () => largeAsync(asyncDb),
  );
  const cpus = navigator.hardwareConcurrency;
  console.log(
    `Sync bridge vs async, ${
      syncDb.serverVersion.split(" ").slice(0, 2).join(" ")
    }, ${cpus} CPUs, Deno ${Deno.version.deno}${quick ? " (--quick: not figures to quote)" : ""}`,
  );
  console.log(
    `Point query: ${POINT_ROUNDS} rounds of ${POINT_OPS} sequential \`${POINT_SQL}\`; large result: ${LARGE_ROUNDS} rounds of one 100,000-row SELECT. Medians.`,
  );
  console.log("");
  console.log("| case | AsyncDatabase | Database (sync) | sync / async | goal |");
  console.log("| --- | --- | --- | --- | --- |");
  console.log(report("point query, per statement", "µs", 1.3, point));
  console.log(report("100,000-row result", "ms", 2, large));
} finally {
  await server.stop();
}
