// The fault/latency proxy of the tests and benches, on the real server: drain (idle sessions,
// transactions, a timeout, a statement on the wire), kill and restore, delay, and a cluster.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { AmbiguousCommitError, ConnectionError } from "./errors.ts";
import { internalsOf } from "./_internal.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import { FaultCluster, FaultProxy } from "./_test_proxy.ts";
import {
  caught,
  errorFields,
  lastStatus,
  oneConnection,
  query,
  RawClient,
  waitFor,
} from "./_test_raw_client.ts";

Deno.test("FaultProxy.drain() ends an idle raw session with FATAL 57P01 and rejects new ones", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const client = await RawClient.connect(proxy.port);
  const late = await RawClient.open(proxy.port);
  try {
    await client.send(query("SELECT 1"));
    await client.readUntilReady();
    const drained = proxy.drain();
    const rest = await client.readToEnd();
    assert.equal(rest.length, 1);
    const [fatal] = rest;
    assert.ok(fatal);
    assert.deepEqual(
      { ...errorFields(fatal), type: fatal.type },
      {
        type: "E",
        S: "FATAL",
        V: "FATAL",
        C: "57P01",
        M: "terminating connection due to administrator command",
      },
    );
    await drained;
    assert.equal(proxy.stats.endedByDrain, 1);
    assert.equal(proxy.connections()[0]?.ended, "drain");
    // Connected before the drain, but its startup comes after: a draining node answers it.
    await late.startup();
    const answer = await late.readToEnd();
    assert.equal(answer.length, 1);
    const [refusal] = answer;
    assert.ok(refusal);
    assert.equal(errorFields(refusal).C, "57P01");
    assert.equal(errorFields(refusal).M, "server is not accepting clients, try another node");
    assert.equal(proxy.stats.rejected, 1);
  } finally {
    client.close();
    late.close();
  }
});

Deno.test("FaultProxy.drain() leaves a raw session in a transaction alone until COMMIT", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const client = await RawClient.connect(proxy.port);
  try {
    await client.send(query("BEGIN"));
    await client.readUntilReady();
    let drained = false;
    const draining = proxy.drain().then(() => drained = true);
    await client.send(query("SELECT 1"));
    assert.equal(lastStatus(await client.readUntilReady()), "T");
    await client.send(query("SELECT 2"));
    assert.equal(lastStatus(await client.readUntilReady()), "T");
    assert.equal(drained, false);
    assert.equal(proxy.stats.open, 1);
    await client.send(query("COMMIT"));
    const rest = await client.readToEnd();
    assert.deepEqual(rest.map((m) => m.type), ["C", "Z", "E"]);
    assert.equal(lastStatus(rest), "I");
    const [, , fatal] = rest;
    assert.ok(fatal);
    assert.equal(errorFields(fatal).C, "57P01");
    await draining;
    assert.equal(proxy.stats.endedByDrain, 1);
  } finally {
    client.close();
  }
});

Deno.test("FaultProxy.drain() with a timeout ends a session still in a transaction", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const client = await RawClient.connect(proxy.port);
  try {
    await client.send(query("BEGIN"));
    await client.readUntilReady();
    await proxy.drain({ timeout: 50 });
    const rest = await client.readToEnd();
    assert.deepEqual(rest.map((m) => [m.type, errorFields(m).C]), [["E", "57P01"]]);
    assert.equal(proxy.stats.endedByDrain, 1);
  } finally {
    client.close();
  }
});

Deno.test("FaultProxy.drain() of an idle AsyncDatabase connection: new connections get 57P01", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  await using db = await oneConnection(proxy);
  // A reserved connection says when the driver has seen the server close it; a statement sent
  // before that would go out on the closed connection and fail otherwise.
  const session = await internalsOf(db).reserve();
  try {
    await session.query("SELECT 1");
    await proxy.drain();
    assert.equal(proxy.stats.endedByDrain, 1);
    assert.equal(proxy.stats.open, 0);
    await waitFor("the driver to see the close", () => session.lost);
  } finally {
    session.release();
  }
  // The pool opens a new connection, which the draining node answers with 57P01.
  const error = await caught(db.execute("SELECT 1"));
  assert.ok(error instanceof ConnectionError, String(error));
  assert.equal(error.code, "57P01");
  assert.match(error.message, /server is not accepting clients, try another node/);
  assert.equal(proxy.stats.rejected, 1);
  // A new client is turned away the same way.
  await using other = new AsyncDatabase(proxy.url(testUrl()), { minConnections: 1 });
  const refused = await caught(other.connect());
  assert.ok(refused instanceof ConnectionError, String(refused));
  assert.equal(refused.code, "57P01");
  proxy.restore();
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
});

Deno.test("FaultProxy.drain() drops a statement still on the wire: the server never sees it", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 1 });
  const table = uniqueName("never");
  const client = await RawClient.connect(proxy.port);
  try {
    // The statement waits in the proxy, on its way to a node that ends the session meanwhile.
    proxy.delay = 60_000;
    await client.send(query(`CREATE TABLE ${table} (id INT)`));
    await waitFor("the statement to reach the proxy", () => proxy.turns === 2);
    proxy.delay = 0;
    await proxy.drain();
    const rest = await client.readToEnd();
    assert.deepEqual(rest.map((m) => [m.type, errorFields(m).C]), [["E", "57P01"]]);
    assert.equal(await admin.tableExists(table), false);
  } finally {
    client.close();
  }
});

Deno.test("FaultProxy.drain() lets an AsyncDatabase transaction commit, then ends its session", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  await using db = await oneConnection(proxy);
  let draining: Promise<void> | undefined;
  const result = await db.transaction(async (tx) => {
    await tx.execute("SELECT 1");
    draining = proxy.drain();
    await tx.execute("SELECT 2");
    assert.equal(proxy.stats.open, 1, "the session is in a transaction: it stays");
    return "committed";
  });
  assert.equal(result, "committed");
  await draining;
  assert.equal(proxy.stats.endedByDrain, 1);
  assert.equal(proxy.stats.open, 0);
});

Deno.test("FaultProxy.kill() fails the statement in flight, refuses connections until restore()", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const app = uniqueName("proxy_kill");
  await using db = new AsyncDatabase(proxy.url(testUrl()), {
    minConnections: 1,
    maxConnections: 1,
    applicationName: app,
  });
  await db.execute("SELECT 1");
  const sleeping = db.execute("SELECT pg_sleep(30)");
  sleeping.catch(() => {});
  await waitFor(
    "the statement to reach the server",
    () => proxy.connections().some((c) => c.pending > 0),
  );
  proxy.kill();
  // Written and unanswered when the connection died with no word from the server: it may have
  // run (docs/retry-safety.md, row 8).
  const error = await caught(sleeping);
  assert.ok(error instanceof AmbiguousCommitError, String(error));
  assert.ok(error.cause instanceof ConnectionError, String(error.cause));
  assert.equal(proxy.stats.killed, 1);
  assert.equal(proxy.stats.open, 0);
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port: proxy.port }),
    Deno.errors.ConnectionRefused,
  );
  proxy.restore();
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
  assert.equal(proxy.stats.killed, 1);
  // The server does not notice a lost client while it sleeps: end that backend here.
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 1 });
  await admin.execute(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'SELECT pg_sleep%'",
    [app],
  );
});

Deno.test("FaultProxy delays every chunk and keeps the turn count", async () => {
  await using proxy = await FaultProxy.start(testUrl(), { delay: 5 });
  const client = await RawClient.connect(proxy.port);
  try {
    const afterStartup = proxy.stats.delayedChunks;
    // The startup message one way, at least one chunk of answer the other.
    assert.ok(afterStartup >= 2, `${afterStartup} chunks delayed`);
    await client.send(query("SELECT 1"), query("SELECT 2"));
    await client.readUntilReady(2);
    await client.send(query("SELECT 3"));
    await client.readUntilReady();
    assert.equal(proxy.turns, 3);
    assert.ok(proxy.stats.delayedChunks >= afterStartup + 4);
    proxy.delay = 0;
    const before = proxy.stats.delayedChunks;
    await client.send(query("SELECT 4"));
    await client.readUntilReady();
    assert.equal(proxy.stats.delayedChunks, before, "delay 0 delays nothing");
    assert.equal(proxy.turns, 4);
  } finally {
    client.close();
  }
});

Deno.test("FaultCluster gives a multi-host URL of its nodes, in order", async () => {
  await using cluster = await FaultCluster.start(testUrl(), { nodes: 3 });
  const ports = cluster.nodes.map((n) => n.port);
  assert.equal(new Set(ports).size, 3);
  assert.match(
    cluster.url,
    new RegExp(
      `^postgres(ql)?://[^/]*@?127\\.0\\.0\\.1:${ports[0]},127\\.0\\.0\\.1:${ports[1]},` +
        `127\\.0\\.0\\.1:${ports[2]}/`,
    ),
  );
  // libpq's default order: the first node that answers.
  await using db = new AsyncDatabase(cluster.url, { minConnections: 1, maxConnections: 1 });
  await db.execute("SELECT 1");
  assert.deepEqual(cluster.nodes.map((n) => n.stats.accepted), [1, 0, 0]);
  assert.ok(cluster.turns >= 2);
  cluster.resetTurns();
  assert.equal(cluster.turns, 0);
});
