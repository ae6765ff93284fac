// `deno task soak`: the bank workload for a bounded time against a throwaway server of its own,
// reached through three proxies standing for the nodes of a cluster (load_balance_hosts=random),
// through both APIs at once, while faults are injected: backends terminated one at a time and
// all at once, statements cancelled, rolling drains of the nodes (each in turn refuses new
// sessions and ends its sessions once idle, then comes back), and the server restarted. At the end the bank is audited
// transfer by transfer, and a report (markdown with --markdown) gives the figures of the
// README's reliability section. Exit status 1 when anything was lost, applied twice, or hung.
//
//   deno task soak [--seconds 60] [--transfers 200000] [--workers 16] [--threads 2]
//                  [--accounts 20] [--seed N] [--no-restarts] [--markdown]
import { parseArgs } from "node:util";
import { AsyncDatabase } from "../async_database.ts";
import { startTestDatabase, type TestDatabase } from "../testing.ts";
import { FaultCluster } from "../_test_proxy.ts";
import {
  auditBank,
  countErrors,
  countOutcomes,
  createBank,
  planTransfers,
  prng,
  runTransfers,
  runTransfersInThreads,
  type Transfer,
  type WorkloadResult,
} from "./_bank.ts";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: Deno.env.get("SOAK_SECONDS") ?? "60" },
    transfers: { type: "string", default: "200000" },
    workers: { type: "string", default: "16" },
    threads: { type: "string", default: "2" },
    accounts: { type: "string", default: "20" },
    seed: { type: "string" },
    "no-restarts": { type: "boolean", default: false },
    markdown: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (args.help) {
  console.log(
    "Usage: deno task soak [--seconds 60] [--transfers 200000] [--workers 16] [--threads 2] " +
      "[--accounts 20] [--seed N] [--no-restarts] [--markdown]",
  );
  Deno.exit(0);
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`Cannot use --${name} ${JSON.stringify(text)}: expected a whole number`);
    Deno.exit(2);
  }
  return n;
}

const seconds = positive("seconds", args.seconds!);
const maxTransfers = positive("transfers", args.transfers!);
const workers = Math.max(1, positive("workers", args.workers!));
const threads = positive("threads", args.threads!);
const accounts = Math.max(2, positive("accounts", args.accounts!));
const seed = args.seed === undefined ? Date.now() % 2 ** 31 : positive("seed", args.seed);
const APPLICATION = "soak-bank";
const STALL_MS = 60_000;

type Fault = "terminate one" | "terminate all" | "cancel one" | "rolling drain" | "restart";

interface Faults {
  injected: Record<Fault, number>;
  /** Faults that could not be injected (e.g. the server was restarting). */
  skipped: number;
}

/** Injects faults until `stop` resolves; each kind at its own pace. */
async function injectFaults(
  server: TestDatabase,
  cluster: FaultCluster,
  stopped: () => boolean,
  random: () => number,
  restarts: boolean,
): Promise<Faults> {
  const faults: Faults = {
    injected: {
      "terminate one": 0,
      "terminate all": 0,
      "cancel one": 0,
      "rolling drain": 0,
      "restart": 0,
    },
    skipped: 0,
  };
  // Its own small pool, with a short connect timeout: it must not wait out a restart.
  await using admin = new AsyncDatabase(server.url, {
    minConnections: 1,
    maxConnections: 2,
    connectTimeout: 2,
    applicationName: "soak-admin",
  });
  const started = performance.now();
  let lastAll = started;
  let lastRestart = started;
  let lastDrain = started;
  const others = `application_name = '${APPLICATION}' AND pid <> pg_backend_pid()`;
  while (!stopped()) {
    await new Promise((resolve) => setTimeout(resolve, 200 + random() * 800));
    if (stopped()) break;
    const now = performance.now();
    let fault: Fault;
    if (restarts && now - lastRestart > 15_000) fault = "restart";
    else if (now - lastDrain > 11_000) fault = "rolling drain";
    else if (now - lastAll > 7_000) fault = "terminate all";
    else fault = random() < 0.7 ? "terminate one" : "cancel one";
    try {
      switch (fault) {
        case "restart":
          lastRestart = now;
          await server.restart();
          break;
        case "rolling drain":
          // Node by node, as an upgrade does: drain (sessions in a transaction get 3 s), a
          // moment down, back.
          lastDrain = now;
          for (const node of cluster.nodes) {
            if (stopped()) break;
            await node.drain({ timeout: 3000 });
            await new Promise((resolve) => setTimeout(resolve, 300));
            node.restore();
            await new Promise((resolve) => setTimeout(resolve, 300));
          }
          break;
        case "terminate all":
          lastAll = now;
          await admin.execute(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${others}`,
          );
          break;
        case "terminate one":
        case "cancel one": {
          const fn = fault === "cancel one" ? "pg_cancel_backend" : "pg_terminate_backend";
          const rows = await admin.execute(
            `SELECT ${fn}(pid) FROM (SELECT pid FROM pg_stat_activity WHERE ${others}
               ORDER BY random() LIMIT 1) one`,
          );
          if (rows.length === 0) {
            faults.skipped++;
            continue;
          }
          break;
        }
      }
      faults.injected[fault]++;
    } catch {
      faults.skipped++;
    }
  }
  return faults;
}

function sum(record: Record<string, number>): number {
  return Object.values(record).reduce((a, b) => a + b, 0);
}

function merge(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function describe(record: Record<string, number>): string {
  const entries = Object.entries(record).filter(([, n]) => n > 0);
  return entries.length === 0 ? "none" : entries.map(([k, n]) => `${k}: ${n}`).join(", ");
}

async function main(): Promise<number> {
  console.log(
    `soak: ${seconds} s, at most ${maxTransfers} transfers, ${workers} async tasks and ${threads} ` +
      `sync threads on ${accounts} accounts, seed ${seed}${
        args["no-restarts"] ? ", no restarts" : ""
      }`,
  );
  await using server = await startTestDatabase({ ownServer: true });
  await using cluster = await FaultCluster.start(server.url, { nodes: 3 });
  const url = `${cluster.url}${
    cluster.url.includes("?") ? "&" : "?"
  }application_name=${APPLICATION}&load_balance_hosts=random`;
  await using db = new AsyncDatabase(url, {
    minConnections: 2,
    maxConnections: Math.min(workers, 20),
    connectTimeout: 10,
  });
  const bank = await createBank(db, "soak", accounts, 1000);
  const random = prng(seed);
  // Plan more than can run; each side stops at the deadline.
  const syncShare = threads === 0 ? 0 : Math.floor(maxTransfers / 5);
  const asyncTransfers = planTransfers(bank, maxTransfers - syncShare, random);
  const syncTransfers = planTransfers(bank, syncShare, random);
  const deadline = seconds * 1000;
  const started = performance.now();
  let settled = 0;
  let lastProgress = { at: started, settled: 0 };
  let done = false;
  let hung = false;

  const syncSettled = new Int32Array(new SharedArrayBuffer(4));
  const watchdog = setInterval(() => {
    const now = performance.now();
    const total = settled + Atomics.load(syncSettled, 0);
    console.log(
      `  ${Math.round((now - started) / 1000)} s: ${total} transfers settled (${
        Atomics.load(syncSettled, 0)
      } sync)`,
    );
    if (total > lastProgress.settled) lastProgress = { at: now, settled: total };
    else if (now - lastProgress.at > STALL_MS) hung = true;
  }, 10_000);

  const faultsDone = injectFaults(
    server,
    cluster,
    () => done || hung,
    prng(seed + 1),
    !args["no-restarts"],
  );
  const asyncDone = runTransfers(db, bank, asyncTransfers, {
    workers,
    deadline,
    onSettled: () => {
      settled++;
    },
  });
  // The sync threads poll their own deadline; their results arrive when they finish.
  const syncDone = threads === 0
    ? Promise.resolve({ transfers: [], retries: {}, untyped: [] } as WorkloadResult)
    : runTransfersInThreads(url, bank, syncTransfers, threads, deadline, syncSettled);
  const all = Promise.all([asyncDone, syncDone]);
  const hang = new Promise<"hung">((resolve) => {
    const check = setInterval(() => {
      if (hung) {
        clearInterval(check);
        resolve("hung");
      }
    }, 1000);
    all.finally(() => clearInterval(check));
  });
  const outcome = await Promise.race([all, hang]);
  done = true;
  clearInterval(watchdog);
  const faults = await faultsDone;
  if (outcome === "hung") {
    console.error(`soak: HUNG — no transfer settled for ${STALL_MS / 1000} s`);
    Deno.exit(1); // the stuck work cannot be awaited
  }
  const [a, b] = outcome;
  const elapsed = (performance.now() - started) / 1000;
  const transfers: Transfer[] = [...a.transfers, ...b.transfers];
  // After the last restart the pool may need a moment: the audit retries its connection.
  let audit;
  for (let attempt = 1;; attempt++) {
    try {
      audit = await auditBank(db, bank, transfers);
      break;
    } catch (error) {
      if (attempt === 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  const outcomes = countOutcomes(transfers);
  const retries = merge(a.retries, b.retries);
  const errors = countErrors(transfers);
  const untyped = [...a.untyped, ...b.untyped];
  const syncCount = b.transfers.length;
  const ok = audit.total === audit.expectedTotal && audit.duplicates.length === 0 &&
    audit.lost.length === 0 && audit.phantom.length === 0 && audit.unbalanced.length === 0 &&
    audit.negative.length === 0 && untyped.length === 0;

  const rows: [string, string][] = [
    ["duration", `${elapsed.toFixed(0)} s (seed ${seed})`],
    [
      "transfers",
      `${transfers.length} (${transfers.length - syncCount} async, ${syncCount} sync), ${
        Math.round(transfers.length / elapsed)
      }/s`,
    ],
    [
      "outcomes",
      `${outcomes.committed} committed, ${outcomes.declined} declined by the callback, ${outcomes.failed} failed with a typed error, ${outcomes.ambiguous} ambiguous (${audit.ambiguousApplied} of them applied)`,
    ],
    ["retries", `${sum(retries)} (${describe(retries)})`],
    ["typed errors", describe(errors)],
    ["untyped errors", String(untyped.length)],
    [
      "faults injected",
      `${sum(faults.injected)} (${describe(faults.injected)}), ${faults.skipped} skipped`,
    ],
    ["ledger rows", `${audit.ledgerRows} (= committed + ambiguous applied)`],
    ["total balance", `${audit.total} of ${audit.expectedTotal}`],
    ["rows lost", String(audit.lost.length)],
    ["applied twice", String(audit.duplicates.length)],
    ["failed but applied", String(audit.phantom.length)],
    ["accounts off the ledger", String(audit.unbalanced.length)],
  ];
  if (args.markdown) {
    console.log("\n| soak | |\n| --- | --- |");
    for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  } else {
    console.log();
    for (const [k, v] of rows) console.log(`${k.padEnd(24)} ${v}`);
  }
  for (const error of untyped.slice(0, 5)) console.error("untyped error:", error);
  console.log(ok ? "\nsoak: OK — nothing lost, nothing applied twice" : "\nsoak: FAILED");
  return ok && audit.ledgerRows === outcomes.committed + audit.ambiguousApplied ? 0 : 1;
}

Deno.exit(await main());
