// A sequential point-select loop in a process of its own, for the OpenTelemetry case of
// `deno task bench`: the bench starts one with OpenTelemetry off, one with `OTEL_DENO=true`
// (and, with `--baseline`, one on an earlier revision of the package), and has each run the
// same work in interleaved rounds.
//
// Usage: deno run -A --config <root>/deno.json bench/_otel_child.ts <root> <url>
// where <root> is the package's directory. Reads commands from stdin, one a line: `run <n>`
// runs n point selects and prints one JSON line `{ ms, cpuMs, ops }`; end of input closes.
import process from "node:process";
import { cycle, idSequence } from "./_harness.ts";

const [root, url] = Deno.args;
if (root === undefined || url === undefined) {
  throw new TypeError(
    "Usage: deno run -A --config <root>/deno.json bench/_otel_child.ts <root> <url>",
  );
}
const ACCOUNTS = 100_000;
const POINT_SQL = "SELECT * FROM manticore_bench_accounts WHERE id = $1";

interface PointDatabase {
  connect(): Promise<void>;
  queryOne(sql: string, params?: readonly unknown[]): Promise<unknown>;
  close(): Promise<void>;
}

// The package of <root>: this checkout, or an earlier revision extracted by the bench.
const specifier = new URL("async_database.ts", `file://${root.replace(/\/?$/, "/")}`).href;
const { AsyncDatabase } = await import(specifier) as {
  AsyncDatabase: new (url: string, options?: Record<string, unknown>) => PointDatabase;
};
// The same options and id sequence as the in-process point-select case.
const db = new AsyncDatabase(url, { maxConnections: 10 });
await db.connect();
const next = cycle(idSequence(1 << 16, ACCOUNTS));

async function run(n: number): Promise<{ ms: number; cpuMs: number; ops: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < n; i++) await db.queryOne(POINT_SQL, [next()]);
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { ms, cpuMs: (used.user + used.system) / 1000, ops: n };
}

const encoder = new TextEncoder();
let buffered = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buffered += chunk;
  let newline: number;
  while ((newline = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, newline).trim();
    buffered = buffered.slice(newline + 1);
    const match = /^run (\d+)$/.exec(line);
    if (match === null) throw new TypeError(`Cannot read the command "${line}"`);
    const sample = await run(Number(match[1]));
    await Deno.stdout.write(encoder.encode(`${JSON.stringify(sample)}\n`));
  }
}
await db.close();
