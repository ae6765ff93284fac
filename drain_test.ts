// Rolling restarts, drains and lost nodes, on a cluster stand-in: proxies in front of the test
// server, each playing a node that drains (refuses new sessions, ends each idle session with
// FATAL 57P01), dies (every socket closed at once) and comes back. The rule of what may be sent
// again is docs/retry-safety.md.
import assert from "node:assert/strict";
import { AsyncDatabase, type AsyncTransaction } from "./async_database.ts";
import { Database } from "./database.ts";
import { ConnectionError, DatabaseError } from "./errors.ts";
import { FaultCluster, FaultProxy } from "./_test_proxy.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function connectionsOf(admin: AsyncDatabase, application: string): Promise<number> {
  return (await admin.queryOne<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
    [application],
  ))!.n;
}

Deno.test("load_balance_hosts=random spreads 12 connections over 3 hosts; disable keeps to the first", async () => {
  await using cluster = await FaultCluster.start(testUrl(), { nodes: 3 });
  {
    await using db = new AsyncDatabase(`${cluster.url}`, {
      loadBalanceHosts: "random",
      minConnections: 12,
      maxConnections: 12,
    });
    // 12 statements at once open 12 connections.
    await Promise.all(Array.from({ length: 12 }, () => db.execute("SELECT pg_sleep(0.05)")));
    const open = cluster.nodes.map((n) => n.stats.open);
    assert.equal(open.reduce((a, b) => a + b, 0), 12, `${open}`);
    for (const n of open) assert.ok(n >= 2, `connections per host: ${open}`);
  }
  {
    const url = `${cluster.url}${cluster.url.includes("?") ? "&" : "?"}load_balance_hosts=disable`;
    await using db = new AsyncDatabase(url, {
      minConnections: 6,
      maxConnections: 6,
    });
    await Promise.all(Array.from({ length: 6 }, () => db.execute("SELECT pg_sleep(0.05)")));
    assert.deepEqual(cluster.nodes.map((n) => n.stats.open), [6, 0, 0]);
  }
  assert.throws(
    () => new AsyncDatabase(cluster.url, { loadBalanceHosts: "round-robin" as "random" }),
    DatabaseError,
  );
});

Deno.test("a connection attempt moves on to the next host when one refuses or is down", async () => {
  await using cluster = await FaultCluster.start(testUrl(), { nodes: 3 });
  cluster.nodes[0]!.kill(); // refused
  const draining = cluster.nodes[1]!.drain(); // answers new sessions with 57P01
  await using db = new AsyncDatabase(cluster.url, { minConnections: 1, maxConnections: 2 });
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
  assert.equal(cluster.nodes[2]!.stats.open, 1);
  assert.equal(cluster.nodes[1]!.stats.rejected, 1);
  cluster.nodes[0]!.restore();
  await draining;
});

Deno.test("a statement on a pool whose only node refuses new sessions fails at once, typed (no endless reconnect)", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  await using db = new AsyncDatabase(proxy.url(testUrl()), {
    minConnections: 1,
    maxConnections: 1,
  });
  await db.execute("SELECT 1");
  await proxy.drain();
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      () => db.execute("SELECT 1"),
      (error: unknown) => error instanceof ConnectionError && error.code === "57P01",
    );
  }
  // One refused start-up per statement, not hundreds.
  assert.ok(proxy.stats.rejected <= 3 * 2, `${proxy.stats.rejected} refused start-ups`);
  proxy.restore();
  assert.deepEqual(await db.execute("SELECT 2 AS two"), [{ two: 2 }]);
});

Deno.test("every pooled connection terminated by the server, then 20 statements at once: no error", async () => {
  const application = uniqueName("term");
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  await using db = new AsyncDatabase(testUrl(), {
    applicationName: application,
    minConnections: 10,
    maxConnections: 10,
  });
  for (let round = 0; round < 3; round++) {
    await db.connect();
    await Promise.all(Array.from({ length: 10 }, () => db.execute("SELECT pg_sleep(0.01)")));
    assert.equal(await connectionsOf(admin, application), 10);
    await admin.execute(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
      [application],
    );
    // Terminated means gone: the backends have exited (their FATAL 57P01 is on its way).
    while (await connectionsOf(admin, application) > 0) await sleep(5);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => db.queryOne("SELECT $1::int AS i", [i])),
    );
    const failed = results.filter((r) => r.status === "rejected");
    assert.deepEqual(failed, [], `round ${round}`);
  }
});

Deno.test("Database: every pooled connection terminated by the server, then 20 statements: no error", async () => {
  const application = uniqueName("term_sync");
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  using db = new Database(testUrl(), {
    applicationName: application,
    minConnections: 5,
    maxConnections: 5,
  });
  assert.ok(await connectionsOf(admin, application) >= 1);
  await admin.execute(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    [application],
  );
  while (await connectionsOf(admin, application) > 0) await sleep(5);
  for (let i = 0; i < 20; i++) assert.deepEqual(db.queryOne("SELECT $1::int AS i", [i]), { i });
});

interface Workload {
  readonly increments: number;
  readonly reads: number;
  readonly transfers: number;
  readonly errors: string[];
}

/** 8 workers of reads, non-idempotent single-statement increments and two-update transfers. */
function startWorkload(db: AsyncDatabase, table: string, stop: () => boolean) {
  const state = { increments: 0, reads: 0, transfers: 0, errors: [] as string[] };
  const record = (error: unknown) => {
    const e = error as DatabaseError;
    state.errors.push(`${e?.name} ${e?.code}: ${e?.message}`);
  };
  const transfer = async (tx: AsyncTransaction) => {
    await tx.execute(`UPDATE ${table} SET n = n - 1 WHERE id = 2`);
    await tx.execute(`UPDATE ${table} SET n = n + 1 WHERE id = 3`);
  };
  const workers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; !stop(); i++) {
      try {
        switch ((i + w) % 3) {
          case 0:
            await db.execute(`UPDATE ${table} SET n = n + 1 WHERE id = $1`, [10 + w]);
            state.increments++;
            break;
          case 1:
            await db.queryOne(`SELECT sum(n) AS n FROM ${table} WHERE id >= $1`, [10]);
            state.reads++;
            break;
          default:
            await db.transaction(transfer);
            state.transfers++;
        }
      } catch (error) {
        record(error);
      }
    }
  });
  return { state: state as Workload, done: Promise.all(workers) };
}

/** The sum of the workers' increment counters, and the two accounts of the transfers. */
async function counters(admin: AsyncDatabase, table: string): Promise<number[]> {
  const row = await admin.queryOne<{ inc: number; a: number; b: number }>(
    `SELECT (SELECT sum(n) FROM ${table} WHERE id >= 10)::int AS inc,
            (SELECT n FROM ${table} WHERE id = 2) AS a, (SELECT n FROM ${table} WHERE id = 3) AS b`,
  );
  return [row!.inc, row!.a, row!.b];
}

/** A table with the transfer accounts (2, 3) and a counter per worker (10 …). */
async function workloadTable(admin: AsyncDatabase, prefix: string): Promise<string> {
  const table = uniqueName(prefix);
  await admin.execute(`CREATE TABLE ${table} (id INT PRIMARY KEY, n INT NOT NULL);
    INSERT INTO ${table} SELECT g, 0 FROM generate_series(1, 3) AS g;
    INSERT INTO ${table} SELECT 10 + g, 0 FROM generate_series(0, 7) AS g`);
  return table;
}

Deno.test("a rolling drain of 3 nodes under load: no error, nothing lost, nothing applied twice", async () => {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  const table = await workloadTable(admin, "roll");
  await using cluster = await FaultCluster.start(testUrl(), { nodes: 3 });
  await using db = new AsyncDatabase(cluster.url, {
    loadBalanceHosts: "random",
    maxConnections: 9,
  });
  await db.connect();
  let stopped = false;
  const work = startWorkload(db, table, () => stopped);
  await sleep(200);
  for (const node of cluster.nodes) {
    const before = work.state.increments + work.state.transfers;
    await node.drain({ timeout: 5000 });
    assert.ok(node.stats.endedByDrain > 0, "the drain ended no session");
    await sleep(300);
    node.restore();
    await sleep(200);
    assert.ok(
      work.state.increments + work.state.transfers > before,
      "the work did not go on during the drain",
    );
  }
  stopped = true;
  await work.done;
  const [increments, from, to] = await counters(admin, table);
  assert.deepEqual(work.state.errors, []);
  assert.equal(increments, work.state.increments, "an increment was lost or applied twice");
  assert.equal(from, -work.state.transfers);
  assert.equal(to, work.state.transfers);
  assert.ok(work.state.increments > 50 && work.state.transfers > 20, JSON.stringify(work.state));
  console.log(
    `rolling drain: ${work.state.increments} increments, ${work.state.transfers} transfers, ${work.state.reads} reads, ${
      cluster.nodes.reduce((n, node) => n + node.stats.endedByDrain, 0)
    } sessions ended by drains, 0 errors`,
  );
});

Deno.test("a node killed under load: only statements in flight there fail, typed, and the work goes on", async () => {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  const table = await workloadTable(admin, "kill");
  await using cluster = await FaultCluster.start(testUrl(), { nodes: 3 });
  await using db = new AsyncDatabase(cluster.url, {
    loadBalanceHosts: "random",
    minConnections: 9,
    maxConnections: 9,
  });
  await db.connect();
  let stopped = false;
  const work = startWorkload(db, table, () => stopped);
  await sleep(200);
  const victim = cluster.nodes[1]!;
  const itsConnections = victim.stats.open;
  victim.kill();
  const after = work.state.increments + work.state.transfers;
  await sleep(300);
  assert.ok(
    work.state.increments + work.state.transfers > after + 10,
    "the work did not go on through the other nodes",
  );
  stopped = true;
  await work.done;
  victim.restore();
  assert.ok(
    work.state.errors.length <= itsConnections,
    `${work.state.errors.length} errors for ${itsConnections} connections: ${work.state.errors}`,
  );
  for (const error of work.state.errors) {
    assert.match(error, /^(AmbiguousCommitError|ConnectionError) /);
  }
  console.log(
    `node killed: ${itsConnections} of its connections, ${work.state.errors.length} errors (${
      [...new Set(work.state.errors.map((e) => e.split(":")[0]))].join(", ") || "none"
    }), ${work.state.increments} increments and ${work.state.transfers} transfers went on`,
  );
  // An increment whose fate was unknown may have been applied: the count is between the
  // successes and the successes plus the ambiguous ones.
  const ambiguous = work.state.errors.filter((e) => e.startsWith("AmbiguousCommitError")).length;
  const [increments] = await counters(admin, table);
  assert.ok(
    increments! >= work.state.increments && increments! <= work.state.increments + ambiguous,
    `${increments} increments stored, ${work.state.increments} reported, ${ambiguous} ambiguous`,
  );
});
