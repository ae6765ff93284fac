// What `_telemetry.ts` costs a statement: with OpenTelemetry off (no provider, the default)
// and on (`OTEL_DENO=true`, exporting over OTLP/HTTP JSON to a receiver in this process).
// Runs itself twice as a child, once per setting, and prints one table.
//
//   deno run -A bench/telemetry_bench.ts [--quick]
//
// Uses DATABASE_URL when set; otherwise starts a throwaway PostgreSQL server.
// Micro cases time a loop of calls around a statement that is already answered (a resolved
// promise), minus the same loop without the call: the cost of the wrapping alone, in ns. The
// point select runs `queryOne("SELECT … WHERE id = $1")` directly and through
// `traceStatement()`, in interleaved rounds; the ratio is the median of the per-round ratios.
import { AsyncDatabase } from "../async_database.ts";
import { internalsOf } from "../_internal.ts";
import { OtlpReceiver } from "../_test_otlp.ts";
import {
  captureContext,
  dbSystemName,
  startTransaction,
  telemetryEnabled,
  TelemetryTarget,
  traceStatement,
} from "../_telemetry.ts";
import { startTestDatabase } from "../testing.ts";

interface Figures {
  readonly mode: "off" | "on";
  readonly enabled: boolean;
  /** Extra ns per call, by micro case. */
  readonly micro: Record<string, number>;
  /** Point select: µs per query direct and traced, and the median per-round ratio. */
  readonly point: { direct: number; traced: number; ratio: number; rounds: number };
}

const QUICK = Deno.args.includes("--quick");

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// --- The child: one setting. -------------------------------------------------------------------

let sink = 0;

async function awaitLoop(n: number, call: () => Promise<number>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) sink += await call();
  return (performance.now() - start) * 1e6 / n;
}

function syncLoop(n: number, call: () => unknown): number {
  const start = performance.now();
  for (let i = 0; i < n; i++) if (call() !== undefined) sink++;
  return (performance.now() - start) * 1e6 / n;
}

async function measure(mode: "off" | "on", url: string): Promise<Figures> {
  await using db = new AsyncDatabase(url, { minConnections: 1, maxConnections: 1 });
  await db.connect();
  const internals = internalsOf(db);
  const target = new TelemetryTarget({
    system: dbSystemName(await internals.dialect()),
    namespace: internals.config.database,
    address: internals.config.hosts[0],
    port: internals.config.ports[0],
  });
  const table = `otel_bench_${Date.now().toString(36)}`;
  await db.execute(`CREATE TABLE ${table} (id INT4 PRIMARY KEY, name TEXT NOT NULL)`);
  try {
    await db.execute(
      `INSERT INTO ${table} SELECT g, 'row ' || g FROM generate_series(1, 1000) g`,
    );
    const sql = `SELECT * FROM ${table} WHERE id = $1`;
    // The point select first: the micro loops leave the exporter busy for a while.
    const queries = QUICK ? 300 : 600;
    const pointRounds = QUICK ? 5 : 41;
    let id = 0;
    const direct = async () => {
      const start = performance.now();
      for (let i = 0; i < queries; i++) await db.queryOne(sql, [(id++ % 1000) + 1]);
      return (performance.now() - start) * 1000 / queries;
    };
    const traced = async () => {
      const start = performance.now();
      for (let i = 0; i < queries; i++) {
        const params = [(id++ % 1000) + 1];
        await traceStatement(target, sql, true, () => db.queryOne(sql, params));
      }
      return (performance.now() - start) * 1000 / queries;
    };
    await direct();
    await traced();
    const d: number[] = [];
    const t: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < pointRounds; r++) {
      // Alternate the order, so that drift of the machine falls on both alike.
      let a: number;
      let b: number;
      if (r % 2 === 0) {
        a = await direct();
        b = await traced();
      } else {
        b = await traced();
        a = await direct();
      }
      d.push(a);
      t.push(b);
      ratios.push(b / a);
    }
    const answered = Promise.resolve(1);
    const op = { operation: "SELECT", collection: table };
    // With a provider every call makes a span (µs each): fewer calls suffice.
    const n = (QUICK ? 50_000 : 300_000) / (mode === "on" ? 20 : 1);
    const rounds = QUICK ? 3 : 15;
    // The fastest of the rounds of each loop (the machine's noise only slows a round), minus
    // the fastest of the same loop without the call.
    const fastest: Record<string, number> = {};
    const keep = (name: string, ns: number) => fastest[name] = Math.min(fastest[name] ?? ns, ns);
    for (let r = 0; r < rounds; r++) {
      keep("await", await awaitLoop(n, () => answered));
      keep(
        "traceStatement (raw SQL)",
        await awaitLoop(n, () => traceStatement(target, sql, true, () => answered)),
      );
      keep(
        "traceStatement (helper operation)",
        await awaitLoop(n, () => traceStatement(target, sql, true, () => answered, op)),
      );
      keep("loop", syncLoop(n, () => sink));
      keep("startTransaction + end", syncLoop(n, () => startTransaction(target).end()));
      keep("telemetryEnabled()", syncLoop(n, telemetryEnabled));
      keep("captureContext()", syncLoop(n, captureContext));
    }
    const micro: Record<string, number> = {};
    for (const [name, ns] of Object.entries(fastest)) {
      if (name === "await" || name === "loop") continue;
      micro[name] = ns - (name.startsWith("traceStatement") ? fastest.await : fastest.loop);
    }

    return {
      mode,
      enabled: telemetryEnabled(),
      micro,
      point: { direct: median(d), traced: median(t), ratio: median(ratios), rounds: pointRounds },
    };
  } finally {
    await db.execute(`DROP TABLE ${table}`);
  }
}

// --- The parent. -------------------------------------------------------------------------------

async function runChild(
  mode: "off" | "on",
  url: string,
  env: Record<string, string>,
): Promise<Figures> {
  const child: Record<string, string> = { BENCH_TELEMETRY_MODE: mode, DATABASE_URL: url };
  for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) child[name] = value;
  }
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, ...Deno.args],
    env: { ...child, ...env },
    clearEnv: true,
  }).output();
  const out = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(`The ${mode} run failed:\n${out}${new TextDecoder().decode(stderr)}`);
  }
  const line = out.split("\n").find((l) => l.startsWith("{"));
  return JSON.parse(line!) as Figures;
}

async function main(): Promise<void> {
  const external = Deno.env.get("DATABASE_URL");
  const server = external ? undefined : await startTestDatabase();
  await using receiver = OtlpReceiver.start({ keep: false });
  try {
    const url = external ?? server!.url;
    const off = await runChild("off", url, {});
    const on = await runChild("on", url, receiver.env());
    const { requests, bytes } = receiver.counts;
    console.log(`Telemetry cost (Deno ${Deno.version.deno}${QUICK ? ", --quick" : ""})\n`);
    console.log("| extra ns per call | OTel off | OTel on |");
    console.log("| --- | ---: | ---: |");
    for (const name of Object.keys(off.micro)) {
      console.log(`| ${name} | ${off.micro[name].toFixed(1)} | ${on.micro[name].toFixed(1)} |`);
    }
    console.log(
      "\n| point select, µs per query | direct | traceStatement | ratio (median of rounds) |",
    );
    console.log("| --- | ---: | ---: | ---: |");
    for (const f of [off, on]) {
      console.log(
        `| OTel ${f.mode} | ${f.point.direct.toFixed(1)} | ${f.point.traced.toFixed(1)} | ${
          f.point.ratio.toFixed(3)
        } |`,
      );
    }
    console.log(
      `\nProviders registered: off ${off.enabled}, on ${on.enabled}; the on run exported ${requests} requests, ${
        (bytes / 1e6).toFixed(1)
      } MB.`,
    );
  } finally {
    await server?.stop();
  }
}

const mode = Deno.env.get("BENCH_TELEMETRY_MODE");
if (mode === "off" || mode === "on") {
  console.log(JSON.stringify(await measure(mode, Deno.env.get("DATABASE_URL")!)));
} else if (import.meta.main) {
  await main();
}
