// `deno task bench`: the library next to the tools a user would pick instead (raw postgres.js,
// node-postgres, `psql \copy`, `pgbench`), the same statements, measured in one process with
// interleaved rounds. Prints medians, ratios and the goals as a table, or everything as JSON.
//
// Usage: deno run -A bench/main.ts [--quick] [--only <case>[,<case>…]] [--rounds <n>]
//          [--baseline <rev>] [--json]
// Uses a fresh database on the server in TEST_DATABASE_URL when set; otherwise starts a
// throwaway PostgreSQL server and stops it after.
import { parseArgs } from "node:util";
import postgres from "postgres";
import pg from "npm:pg@^8";
import { AsyncDatabase } from "../async_database.ts";
import { OtlpReceiver } from "../_test_otlp.ts";
import { startTestDatabase } from "../testing.ts";
import { allCases } from "./_cases.ts";
import { type BenchContext, setUp, type SyncDatabase, tearDown } from "./_context.ts";
import {
  benchArgs,
  type Case,
  type CaseResult,
  fmt,
  listArg,
  pairedRatio,
  runCase,
  type Spread,
  spread,
  zip,
} from "./_harness.ts";
import { startOtelCase } from "./_otel.ts";

const HELP =
  `Usage: deno task bench [--quick] [--only <case>[,<case>...]] [--rounds <n>] [--baseline <rev>]
                       [--json]

  --quick           few rounds and less work: a smoke test, not figures to quote
  --only <ids>      run only these cases (comma-separated); "pgbench" names the pgbench run
  --rounds <n>      rounds of every case run (instead of each case's own number)
  --baseline <rev>  point-select-otel also runs the package at this git revision (OpenTelemetry
                    off), for the cost of the instrumentation when nothing is registered
  --json            print the results as JSON on stdout (progress still goes to stderr)
  --help            this text

Cases: point-select, point-select-otel, point-select-64, insert, tx, tx-contended,
       batch-insert, batch-insert-returning, select-100k, stream-1m, pgbench
Uses a fresh database on the server in TEST_DATABASE_URL when set; otherwise starts a
throwaway PostgreSQL server.`;

interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly target: string;
  readonly value: number | null;
  readonly pass: boolean | null;
}

interface PgbenchResult {
  readonly command: string;
  readonly tps?: number;
  readonly skipped?: string;
}

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const log = (line: string) => console.error(line);

function parse(): {
  quick: boolean;
  json: boolean;
  only: Set<string> | undefined;
  baseline: string | undefined;
  rounds: number | undefined;
} {
  const values = benchArgs(() =>
    parseArgs({
      args: Deno.args,
      options: {
        quick: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        only: { type: "string", multiple: true },
        baseline: { type: "string" },
        rounds: { type: "string" },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }).values, HELP);
  const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
  if (rounds !== undefined && !(Number.isInteger(rounds) && rounds > 0)) {
    console.error(
      `Cannot run the bench: --rounds "${values.rounds}" is not a whole number above 0`,
    );
    Deno.exit(2);
  }
  const only = listArg(values.only);
  return {
    quick: values.quick!,
    json: values.json!,
    only: only?.length ? new Set(only) : undefined,
    baseline: values.baseline,
    rounds,
  };
}

async function runs(tool: string): Promise<boolean> {
  try {
    return (await new Deno.Command(tool, { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

function withDatabase(url: string, database: string): string {
  return url.replace(/^([a-z]+:\/\/[^/?]*)(\/[^?]*)?/i, `$1/${database}`);
}

async function loadSync(url: string): Promise<SyncDatabase | string> {
  const file = new URL("../database.ts", import.meta.url);
  try {
    await Deno.stat(file);
  } catch {
    return "database.ts does not exist yet";
  }
  try {
    // A non-literal specifier: the bench must load even while database.ts is missing.
    const specifier = file.href;
    const mod = await import(specifier) as {
      Database: new (url: string, options?: Record<string, unknown>) => SyncDatabase;
    };
    return new mod.Database(url, { maxConnections: 10 });
  } catch (error) {
    return `database.ts failed to load: ${(error as Error).message}`;
  }
}

async function runPgbench(url: string, lib: AsyncDatabase, quick: boolean): Promise<PgbenchResult> {
  const seconds = quick ? 2 : 5;
  const command = `pgbench -n -c 1 -T ${seconds} -S -M prepared (after pgbench -i -s 1)`;
  const name = "manticore_bench_pgbench";
  const target = withDatabase(url, name);
  const exec = async (args: string[]) => {
    const out = await new Deno.Command("pgbench", { args, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(text.trim().split("\n").slice(-3).join(" "));
    return text;
  };
  try {
    await lib.dropDatabase(name);
    await lib.createDatabase(name);
    try {
      await exec(["-i", "-s", "1", "-q", target]);
      const text = await exec([
        "-n",
        "-c",
        "1",
        "-T",
        String(seconds),
        "-S",
        "-M",
        "prepared",
        target,
      ]);
      const match = /tps = ([\d.]+)/.exec(text);
      if (!match) throw new Error(`no tps in pgbench output: ${text}`);
      return { command, tps: Number(match[1]) };
    } finally {
      await lib.dropDatabase(name);
    }
  } catch (error) {
    return { command, skipped: (error as Error).message };
  }
}

function lockedVersion(lock: string, name: string): string {
  const match = new RegExp(`"${name}@([^"]+)": \\{`).exec(lock);
  return match?.[1] ?? "?";
}

async function describeMachine(lib: AsyncDatabase): Promise<Record<string, string | number>> {
  let cpu = "unknown";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = /model name\s*:\s*(.*)/.exec(info)?.[1]?.trim() ?? cpu;
  } catch { /* not Linux */ }
  let lock = "";
  try {
    lock = await Deno.readTextFile(`${root}/deno.lock`);
  } catch { /* no lock */ }
  return {
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    cpu,
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    server: lib.serverVersion.split(" on ")[0] ?? "",
    "postgres.js": lockedVersion(lock, "postgres"),
    pg: lockedVersion(lock, "pg"),
    loadAverage: Deno.loadavg().map((x) => x.toFixed(2)).join(" "),
  };
}

// The per-round paired ratio a ÷ b of two variants of one case (median over rounds).
function ratio(results: CaseResult[], caseId: string, a: string, b: string): Spread | null {
  const c = results.find((r) => r.id === caseId);
  const va = c?.variants.find((v) => v.id === a);
  const vb = c?.variants.find((v) => v.id === b);
  return va && vb ? pairedRatio(va.samples, vb.samples) : null;
}

// The same for CPU time per operation (steadier than wall time on a shared machine).
function cpuRatio(results: CaseResult[], caseId: string, a: string, b: string): Spread | null {
  const c = results.find((r) => r.id === caseId);
  const va = c?.variants.find((v) => v.id === a)?.samples;
  const vb = c?.variants.find((v) => v.id === b)?.samples;
  if (!va || !vb || va.some((s) => s.cpuMs === undefined)) return null;
  return spread(zip(va, vb).map(([x, y]) => (x.cpuMs! / x.ops) / (y.cpuMs! / y.ops)));
}

function showSpread(s: Spread, suffix = ""): string {
  return `${s.median.toFixed(2)}${suffix} (quartiles ${s.q1.toFixed(2)}–${s.q3.toFixed(2)})`;
}

function goals(results: CaseResult[], syncNote: string | undefined): Goal[] {
  const list: Goal[] = [];
  const atMost = (goal: string, value: Spread | null, limit: number) => {
    if (value === null) return;
    list.push({
      goal,
      measured: showSpread(value),
      target: `≤ ${limit.toFixed(2)}`,
      value: value.median,
      pass: value.median <= limit,
    });
  };
  atMost(
    "Sequential point select: library time ÷ postgres.js time",
    ratio(results, "point-select", "library", "postgres.js"),
    1.1,
  );
  atMost(
    "64-way point selects: library time ÷ postgres.js time",
    ratio(results, "point-select-64", "library", "postgres.js"),
    1.1,
  );
  const vsPg = ratio(results, "point-select-64", "pg", "library");
  if (vsPg !== null) {
    list.push({
      goal: "64-way point selects: library throughput ÷ node-postgres throughput",
      measured: showSpread(vsPg, "×"),
      target: "≥ 1.50×",
      value: vsPg.median,
      pass: vsPg.median >= 1.5,
    });
  }
  atMost(
    "batchInsert 100,000 rows (returning: false) time ÷ psql \\copy time",
    ratio(results, "batch-insert", "library", "psql"),
    1.3,
  );
  const stream = results.find((r) => r.id === "stream-1m")?.variants.find((v) =>
    v.id === "library"
  );
  if (stream?.peakRssMiB !== undefined) {
    list.push({
      goal: "stream 1,000,000 rows: peak RSS growth",
      measured: `${stream.peakRssMiB.toFixed(1)} MiB (live heap after GC +${
        (stream.liveHeapMiB ?? 0).toFixed(1)
      } MiB)`,
      target: "< 64 MiB",
      value: stream.peakRssMiB,
      pass: stream.peakRssMiB < 64,
    });
  }
  const otelOff = ratio(results, "point-select-otel", "off", "baseline");
  if (otelOff !== null) {
    const label = results.find((r) => r.id === "point-select-otel")?.variants.find((v) =>
      v.id === "baseline"
    )?.label;
    const baseline = label?.replace(/^.*(package at )/, "$1");
    atMost(`OpenTelemetry off: point select time ÷ the ${baseline}`, otelOff, 1.02);
    atMost(
      `OpenTelemetry off: point select CPU time ÷ the ${baseline}`,
      cpuRatio(results, "point-select-otel", "off", "baseline"),
      1.02,
    );
  }
  const otelOn = ratio(results, "point-select-otel", "on", "off");
  const otelOnCpu = cpuRatio(results, "point-select-otel", "on", "off");
  for (const [what, value] of [["time", otelOn], ["CPU time", otelOnCpu]] as const) {
    if (value === null) continue;
    list.push({
      goal: `OpenTelemetry on: point select ${what} ÷ off (the cost, reported)`,
      measured: showSpread(value),
      target: "–",
      value: value.median,
      pass: null,
    });
  }
  if (results.some((r) => r.id === "point-select")) {
    const sync = ratio(results, "point-select", "sync", "library");
    if (sync === null) {
      list.push({
        goal: "sync point query time ÷ async",
        measured: `not measured: ${syncNote ?? "no sync variant"}`,
        target: "≤ 1.30",
        value: null,
        pass: null,
      });
    } else atMost("sync point query time ÷ async", sync, 1.3);
  }
  return list;
}

function plural(unit: string): string {
  return unit.endsWith("y") ? `${unit.slice(0, -1)}ies` : `${unit}s`;
}

function extra(v: CaseResult["variants"][number]): string {
  const parts: string[] = [];
  if (v.medianRetries !== undefined) {
    parts.push(`${fmt(v.medianRetries)} retries per ${fmt(v.work)} tx`);
  }
  if (v.peakRssMiB !== undefined) parts.push(`peak RSS +${v.peakRssMiB.toFixed(1)} MiB`);
  if (v.liveHeapMiB !== undefined) {
    parts.push(`live heap after GC +${v.liveHeapMiB.toFixed(1)} MiB`);
  }
  return parts.join(", ");
}

function printTables(
  machine: Record<string, string | number>,
  results: CaseResult[],
  pgbench: PgbenchResult | undefined,
  goalList: Goal[],
  quick: boolean,
): void {
  const lines: string[] = [];
  lines.push(
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}; ` +
      `Deno ${machine.deno}; ${machine.server}; postgres.js ${machine["postgres.js"]}; ` +
      `pg ${machine.pg}; load average at start ${machine.loadAverage}` +
      `${quick ? " (--quick: a smoke test, not figures to quote)" : ""}`,
    "",
  );
  const digits = (x: number) => (x < 10 ? 2 : 1);
  for (const c of results) {
    const [first] = c.variants;
    if (first === undefined) throw new RangeError(`Cannot report case "${c.id}": no variants`);
    const units = plural(c.unit);
    lines.push(`### ${c.title}`, "");
    lines.push(
      `${c.rounds} ${c.rounds === 1 ? "round" : "rounds"} of ${fmt(first.work)} ${units} per ` +
        `variant, interleaved; medians. "× first row": this variant's time ÷ the first row's ` +
        `in the same round (median, quartiles over rounds). CPU: this process's user + system ` +
        `time per ${c.unit}. Machine busy: share of both cores busy (all processes).`,
      "",
    );
    lines.push(
      `| variant | median time | ${units}/s | µs/${c.unit} | CPU µs/${c.unit} | machine busy ` +
        `| × first row (quartiles) | |`,
    );
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (const v of c.variants) {
      const cpu = v.cpuMicrosPerOp === undefined
        ? "–"
        : fmt(v.cpuMicrosPerOp, digits(v.cpuMicrosPerOp));
      const busy = v.machineBusy === undefined ? "–" : `${(100 * v.machineBusy).toFixed(0)} %`;
      const r = v.timeVsFirst;
      const rel = v === first
        ? "1.00"
        : `${r.median.toFixed(2)} (${r.q1.toFixed(2)}–${r.q3.toFixed(2)})`;
      lines.push(
        `| ${v.label} | ${fmt(v.medianMs, 1)} ms | ${fmt(v.perSecond)} | ${
          fmt(v.microsPerOp, digits(v.microsPerOp))
        } | ${cpu} | ${busy} | ${rel} | ${extra(v)} |`,
      );
    }
    lines.push("");
  }
  if (pgbench) {
    lines.push("### Server ceiling: `pgbench -S`, one connection", "");
    lines.push(
      pgbench.tps !== undefined
        ? `\`${pgbench.command}\`: ${fmt(pgbench.tps)} tps (${
          fmt(1e6 / pgbench.tps, 1)
        } µs per select)`
        : `\`${pgbench.command}\`: skipped: ${pgbench.skipped}`,
    );
    const seq = results.find((r) => r.id === "point-select")?.variants[0];
    if (seq && pgbench.tps) {
      lines.push(
        `The library's sequential point select reaches ${
          (100 * seq.perSecond / pgbench.tps).toFixed(0)
        } % of it.`,
      );
    }
    lines.push("");
  }
  if (goalList.length) {
    lines.push(
      "### Goals",
      "",
      "| goal | measured | target | result |",
      "| --- | --- | --- | --- |",
    );
    for (const g of goalList) {
      const result = g.pass === null ? "n/a" : g.pass ? "PASS" : "MISS";
      lines.push(`| ${g.goal} | ${g.measured} | ${g.target} | ${result} |`);
    }
    lines.push("");
  }
  console.log(lines.join("\n"));
}

async function runOtelCase(
  url: string,
  tmpDir: string,
  baseline: string | undefined,
  quick: boolean,
  withRounds: (c: Case) => Case,
): Promise<CaseResult> {
  await using receiver = OtlpReceiver.start({ keep: false });
  const started = await startOtelCase({ root, url, receiver, baseline, tmpDir });
  await using otel = started;
  log(`${otel.case.id}: ${otel.case.title}`);
  const result = await runCase(withRounds(otel.case), quick, log);
  const { requests, bytes } = receiver.counts;
  log(`  the "on" process exported ${requests} requests, ${(bytes / 1e6).toFixed(1)} MB`);
  return result;
}

async function main(): Promise<void> {
  const { quick, json, only, baseline, rounds } = parse();
  const withRounds = (c: Case): Case =>
    rounds === undefined ? c : { ...c, rounds, quickRounds: rounds };
  const known = new Set([
    "point-select",
    "point-select-otel",
    "point-select-64",
    "insert",
    "tx",
    "tx-contended",
    "batch-insert",
    "batch-insert-returning",
    "select-100k",
    "stream-1m",
    "pgbench",
  ]);
  for (const id of only ?? []) {
    if (!known.has(id)) {
      console.error(`Cannot run case "${id}": unknown (one of ${[...known].join(", ")})`);
      Deno.exit(2);
    }
  }
  const started = performance.now();
  const server = await startTestDatabase();
  log(
    server.external
      ? "Using a fresh database on the server in TEST_DATABASE_URL"
      : "Started a throwaway PostgreSQL server",
  );
  const tmpDir = await Deno.makeTempDir({ prefix: "manticore_bench_" });
  const url = server.url;
  const lib = new AsyncDatabase(url, { maxConnections: 10 });
  const libExtra = new AsyncDatabase(url, { maxConnections: 10 });
  const pjs = postgres(url, { max: 10, prepare: true, onnotice: () => {} });
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client the server ends (at teardown) is reported on the pool: without a listener
  // node-postgres throws it uncaught.
  pool.on("error", () => {});
  let sync: SyncDatabase | undefined;
  try {
    await lib.connect();
    const needsSync = !only || only.has("point-select") || only.has("select-100k");
    const loaded = needsSync ? await loadSync(url) : "not needed by --only";
    const syncNote = typeof loaded === "string" ? loaded : undefined;
    if (typeof loaded !== "string") sync = loaded;
    if (syncNote) log(`Sync API not measured: ${syncNote}`);
    const hasPsql = await runs("psql");
    if (!hasPsql) log("psql not found: the \\copy baseline is left out");
    const ctx: BenchContext = { url, lib, libExtra, pjs, pg: pool, sync, tmpDir, root, hasPsql };
    const machine = await describeMachine(lib);
    log("Creating the bench tables");
    await setUp(ctx);
    const results: CaseResult[] = [];
    for (const c of allCases(ctx)) {
      if (!only || only.has(c.id)) {
        log(`${c.id}: ${c.title}`);
        results.push(await runCase(withRounds(c), quick, log));
      }
      // Next to the in-process point select, whose figure its "off" process repeats.
      if (c.id === "point-select" && (!only || only.has("point-select-otel"))) {
        results.push(await runOtelCase(url, tmpDir, baseline, quick, withRounds));
      }
    }
    let pgbench: PgbenchResult | undefined;
    if (!only || only.has("pgbench")) {
      log("pgbench: server ceiling");
      pgbench = await runPgbench(url, lib, quick);
    }
    await tearDown(ctx);
    const goalList = goals(results, syncNote);
    const seconds = (performance.now() - started) / 1000;
    log(`Done in ${seconds.toFixed(0)} s`);
    if (json) {
      console.log(JSON.stringify(
        {
          command: `deno task bench${Deno.args.length ? " " + Deno.args.join(" ") : ""}`,
          quick,
          seconds,
          machine,
          cases: results,
          pgbench,
          goals: goalList,
        },
        null,
        2,
      ));
    } else {
      printTables(machine, results, pgbench, goalList, quick);
    }
  } finally {
    sync?.close();
    await lib.close();
    await libExtra.close();
    await pjs.end({ timeout: 5 });
    await pool.end();
    await server.stop();
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  }
}

await main();
