// One run of the 1,000,000-row stream case, in a fresh process so that its peak RSS growth is
// not hidden by (or blamed on) the heap the other cases left behind.
// Usage: deno run -A --v8-flags=--expose-gc bench/_stream_child.ts <url> <variant> <rows>
// Prints one JSON line: { ms, ops, peakRssMiB, liveHeapMiB }.
import postgres from "postgres";
import { AsyncDatabase } from "../async_database.ts";

const [url, variant, rowsArg] = Deno.args;
if (url === undefined) {
  throw new TypeError("Usage: deno run -A bench/_stream_child.ts <url> <variant> <rows>");
}
const rows = Number(rowsArg);
const SQL =
  "SELECT g AS id, md5(g::text) AS name, g % 1000 AS qty FROM generate_series(1, $1::int) g";
const MiB = 1024 * 1024;

const lib = new AsyncDatabase(url, { maxConnections: 2, minConnections: 1 });
const pjs = postgres(url, { max: 2, onnotice: () => {} });

async function run(n: number): Promise<number> {
  let count = 0;
  if (variant === "library") {
    for await (const _ of lib.stream(SQL, [n])) {
      if (++count % 10_000 === 0) sample();
    }
  } else if (variant === "postgres.js-cursor") {
    for await (const batch of pjs.unsafe(SQL, [n], { prepare: true }).cursor(1000)) {
      count += batch.length;
      if (count % 10_000 === 0) sample();
    }
  } else if (variant === "library-execute") {
    count = (await lib.execute(SQL, [n])).length;
    sample();
  } else {
    throw new TypeError(`Unknown variant "${variant}"`);
  }
  return count;
}

let peak = 0;
function sample(): void {
  const rss = Deno.memoryUsage().rss;
  if (rss > peak) peak = rss;
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

try {
  // Connect and prepare everything the run touches, then start from a collected heap.
  await run(1000);
  gc();
  await new Promise((r) => setTimeout(r, 50));
  const base = Deno.memoryUsage();
  peak = base.rss;
  const timer = setInterval(sample, 5);
  const start = performance.now();
  const count = await run(rows);
  const ms = performance.now() - start;
  clearInterval(timer);
  sample();
  if (count !== rows) throw new Error(`Expected ${rows} rows, got ${count}`);
  gc();
  const live = Deno.memoryUsage().heapUsed - base.heapUsed;
  console.log(JSON.stringify({
    ms,
    ops: count,
    peakRssMiB: (peak - base.rss) / MiB,
    liveHeapMiB: live / MiB,
  }));
} finally {
  await lib.close();
  await pjs.end();
}
