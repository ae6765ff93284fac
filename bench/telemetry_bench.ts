// What each piece of the telemetry costs a call, alone: with OpenTelemetry off (no provider,
// the default) and on (`OTEL_DENO=true`, exporting over OTLP/HTTP JSON to a receiver in this
// process). Runs itself twice as a child, once per setting, and prints one table. What it costs
// a statement end to end is the point-select-otel case of `deno task bench`.
//
//   deno run -A bench/telemetry_bench.ts [--quick]
//
// Uses DATABASE_URL when set; otherwise starts a throwaway PostgreSQL server (the database
// gives the attributes of a real target).
// Each case times a loop of calls around work that is already done (a resolved promise),
// minus the same loop without the call: the cost of the wrapping alone, in ns.
import { AsyncDatabase } from "../async_database.ts";
import { internalsOf } from "../_internal.ts";
import type { QueryResult } from "../_driver.ts";
import { OtlpReceiver } from "../_test_otlp.ts";
import { dbSystemName, telemetryEnabled, TelemetryTarget } from "../_telemetry.ts";
import { startTransaction, traceStatement } from "../_telemetry_spans.ts";
import { captureContext } from "../_telemetry_context.ts";
import { startTestDatabase } from "../testing.ts";

interface Figures {
  readonly mode: "off" | "on";
  readonly enabled: boolean;
  /** Extra ns per call, by micro case. */
  readonly micro: Record<string, number>;
}

const QUICK = Deno.args.includes("--quick");

// --- The child: one setting. -------------------------------------------------------------------

let sink = 0;

async function awaitLoop(n: number, call: () => Promise<QueryResult>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) sink += (await call()).count;
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
    address: internals.config.hosts[0] ?? "localhost",
    port: internals.config.ports[0] ?? 26257,
  });
  const sql = "SELECT * FROM otel_bench WHERE id = $1";
  // Already answered: what is timed is the wrapping alone.
  const answered = Promise.resolve({ rows: [], command: "SELECT", count: 1 } as QueryResult);
  const observer = internals.observer;
  const params = [1];
  const op = { operation: "SELECT", collection: "otel_bench" };
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
    // What the pool and the transaction runner call for every statement.
    keep(
      "Observer.statement (no onQuery)",
      await awaitLoop(n, () => observer.statement(sql, params, undefined, () => answered)),
    );
    keep("loop", syncLoop(n, () => sink));
    keep("startTransaction + end", syncLoop(n, () => startTransaction(target).end()));
    keep("telemetryEnabled()", syncLoop(n, telemetryEnabled));
    keep("captureContext()", syncLoop(n, captureContext));
  }
  const micro: Record<string, number> = {};
  const { await: emptyAwait, loop: emptyLoop } = fastest;
  if (emptyAwait === undefined || emptyLoop === undefined) {
    throw new Error("Cannot subtract the empty loops: they were not measured");
  }
  for (const [name, ns] of Object.entries(fastest)) {
    if (name === "await" || name === "loop") continue;
    const awaited = name.startsWith("traceStatement") || name.startsWith("Observer");
    micro[name] = ns - (awaited ? emptyAwait : emptyLoop);
  }

  return { mode, enabled: telemetryEnabled(), micro };
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
    for (const [name, offNs] of Object.entries(off.micro)) {
      console.log(`| ${name} | ${offNs.toFixed(1)} | ${on.micro[name]?.toFixed(1) ?? "–"} |`);
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
