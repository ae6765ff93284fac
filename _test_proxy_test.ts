// The fault/latency proxy of the tests and benches, on the real server: exact turn counts
// (through AsyncDatabase and through a raw wire-protocol client). Drain, kill, restore, delay and
// the cluster are in _test_proxy_drain_test.ts.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import { internalsOf } from "./_internal.ts";
import { testUrl } from "./_test_util.ts";
import { FaultProxy } from "./_test_proxy.ts";
import { ProxyWorker } from "./bench/_latency_proxy.ts";
import {
  bind,
  describeStatement,
  errorFields,
  execute,
  flush,
  lastStatus,
  oneConnection,
  parse,
  query,
  RawClient,
  sync,
  terminate,
  waitFor,
} from "./_test_raw_client.ts";

Deno.test("FaultProxy counts the startup and each awaited statement of a raw client as a turn", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const client = await RawClient.connect(proxy.port);
  try {
    assert.equal(proxy.turns, 1, "the startup");
    await client.send(query("BEGIN"));
    assert.equal(lastStatus(await client.readUntilReady()), "T");
    await client.send(query("SELECT 1"));
    await client.readUntilReady();
    await client.send(query("COMMIT"));
    assert.equal(lastStatus(await client.readUntilReady()), "I");
    assert.equal(proxy.turns, 4);
    await client.send(terminate());
    await client.readToEnd();
  } finally {
    client.close();
  }
  await waitFor("the connection to end", () => proxy.stats.open === 0);
  const [info] = proxy.connections();
  assert.ok(info);
  assert.equal(info.turns, 4, "Terminate is no turn: nothing waits for it");
  assert.equal(info.ended, "client", "the server closed after the client's Terminate");
});

Deno.test("FaultProxy counts a pipelined batch of a raw client as one turn", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const client = await RawClient.connect(proxy.port);
  try {
    proxy.resetTurns();
    assert.equal(proxy.turns, 0);
    assert.equal(proxy.connections()[0]?.turns, 0);
    await client.send(query("BEGIN"), query("SELECT 1"), query("SELECT 2"), query("COMMIT"));
    const answer = await client.readUntilReady(4);
    assert.equal(answer.filter((m) => m.type === "D").length, 2);
    assert.equal(proxy.turns, 1);
    // Extended protocol: three statements behind one Sync.
    await client.send(
      parse("", "SELECT 1"),
      bind(""),
      execute(),
      parse("", "SELECT 2"),
      bind(""),
      execute(),
      sync(),
    );
    await client.readUntilReady();
    assert.equal(proxy.turns, 2);
    assert.deepEqual(proxy.connections().map((c) => c.turns), [2]);
  } finally {
    client.close();
  }
});

Deno.test("FaultProxy counts no turn for a CancelRequest, and forwards it", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const client = await RawClient.connect(proxy.port);
  const canceller = await RawClient.open(proxy.port);
  try {
    await client.send(query("SELECT pg_sleep(30)"));
    await waitFor("the statement to reach the server", () => proxy.connections()[0]?.pending === 1);
    assert.equal(proxy.turns, 2);
    const cancel = new Uint8Array(16);
    new DataView(cancel.buffer).setInt32(0, 16);
    new DataView(cancel.buffer).setInt32(4, 80877102);
    cancel.set(client.key!, 8);
    await canceller.send(cancel);
    assert.deepEqual(await canceller.readToEnd(), []);
    const answer = await client.readUntilReady();
    assert.equal(errorFields(answer.find((m) => m.type === "E")!).C, "57014");
    assert.deepEqual(proxy.connections().map((c) => c.turns), [2, 0]);
    assert.equal(proxy.turns, 2);
  } finally {
    client.close();
    canceller.close();
  }
});

Deno.test("FaultProxy counts a Describe answered after Flush as a turn of its own", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const client = await RawClient.connect(proxy.port);
  try {
    proxy.resetTurns();
    // What postgres.js does for a statement with parameters it has not prepared yet: the
    // client waits for the description before it binds, so this costs two round trips,
    // although only one ReadyForQuery comes back.
    await client.send(parse("s1", "SELECT 1"), describeStatement("s1"), flush());
    const described = [await client.read(), await client.read(), await client.read()];
    assert.deepEqual(described.map((m) => m?.type), ["1", "t", "T"]);
    await client.send(bind("s1"), execute(), sync());
    await client.readUntilReady();
    assert.equal(proxy.turns, 2);
  } finally {
    client.close();
  }
});

Deno.test("FaultProxy counts one turn for an AsyncDatabase SELECT 1 on a warm pool", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  await using db = await oneConnection(proxy);
  assert.ok(proxy.turns >= 2, "at least the startup and the first statement");
  proxy.resetTurns();
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
  assert.equal(proxy.turns, 1);
  assert.deepEqual(proxy.connections().map((c) => c.turns), [1]);
  // A prepared statement with a parameter: Parse/Describe/Flush, then Bind/Execute/Sync the
  // first time on a connection; one turn once prepared.
  proxy.resetTurns();
  await db.execute("SELECT $1::int AS n", [1]);
  assert.equal(proxy.turns, 2);
  proxy.resetTurns();
  await db.execute("SELECT $1::int AS n", [2]);
  assert.equal(proxy.turns, 1);
});

Deno.test("FaultProxy counts two turns for a new AsyncDatabase's first statement: the start-up and the statement", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  {
    // Nothing of the package's own goes first: the start-up tells the server's version (and
    // CockroachDB, crdb_version), and the built-in array types need no query.
    await using db = new AsyncDatabase(proxy.url(testUrl()));
    assert.equal(db.serverVersion, "");
    assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
    assert.equal(proxy.turns, 2);
    assert.match(db.serverVersion, /^(PostgreSQL \d|CockroachDB)/);
  }
  {
    proxy.resetTurns();
    await using db = new AsyncDatabase(proxy.url(testUrl()));
    assert.deepEqual(await db.execute("SELECT $1::int AS n", [5]), [{ n: 5 }]);
    assert.equal(proxy.turns, 3, "the start-up, the describe, the statement");
  }
  {
    // connect() opens minConnections at once: one start-up each, and nothing else.
    proxy.resetTurns();
    await using db = new AsyncDatabase(proxy.url(testUrl()), { minConnections: 3 });
    await db.connect();
    assert.equal(db.stats().idle, 3);
    assert.deepEqual(proxy.connections().filter((c) => !c.ended).map((c) => c.turns), [1, 1, 1]);
    await db.connect();
    assert.equal(proxy.turns, 3, "connect() again opens nothing");
  }
});

Deno.test("FaultProxy counts statements pipelined on one reserved connection as one turn", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  await using db = await oneConnection(proxy);
  const session = await internalsOf(db).reserve();
  try {
    proxy.resetTurns();
    const results = await Promise.all([
      session.query("SELECT 1 AS n"),
      session.query("SELECT 2 AS n"),
      session.query("SELECT 3 AS n"),
    ]);
    assert.deepEqual(results.map((r) => r.rows[0]?.n), [1, 2, 3]);
    assert.equal(proxy.turns, 1);
    // The same three one after the other: three waits.
    proxy.resetTurns();
    for (const n of [1, 2, 3]) await session.query(`SELECT ${n} AS n`);
    assert.equal(proxy.turns, 3);
  } finally {
    session.release();
  }
});

Deno.test("FaultProxy counts N + 1 turns for a transaction of N dependent statements, async and sync", async (t) => {
  // BEGIN (with its savepoint on CockroachDB) travels with the first statement, RELEASE
  // SAVEPOINT with COMMIT: each statement waits for the one before, then COMMIT.
  await using proxy = await FaultProxy.start(testUrl());
  const select = "SELECT $1::int AS n";
  await t.step("async", async () => {
    await using db = await oneConnection(proxy);
    await db.execute(select, [0]); // prepared on the connection: no describe turn below
    for (const statements of [1, 2, 3, 5]) {
      proxy.resetTurns();
      const seen = await db.transaction(async (tx) => {
        const rows: unknown[] = [];
        for (let i = 0; i < statements; i++) rows.push((await tx.queryOne(select, [i]))!.n);
        return rows;
      });
      assert.deepEqual(seen, Array.from({ length: statements }, (_, i) => i));
      assert.equal(proxy.turns, statements + 1, `${statements} statements`);
    }
    // With every option of BEGIN: still one turn for BEGIN and the first statement.
    proxy.resetTurns();
    await db.transaction((tx) => tx.queryOne(select, [1]), {
      isolation: "repeatable read",
      readOnly: true,
    });
    assert.equal(proxy.turns, 2);
    // A callback that sends nothing sends no BEGIN and no COMMIT.
    proxy.resetTurns();
    assert.equal(await db.transaction(() => 42), 42);
    assert.equal(proxy.turns, 0);
  });
  await t.step("sync", async () => {
    // The sync Database blocks this thread: the proxy runs in a worker of its own.
    const worker = await ProxyWorker.start(testUrl(), 0);
    try {
      using db = new Database(worker.url(testUrl()), { minConnections: 1, maxConnections: 1 });
      db.execute(select, [0]);
      for (const statements of [1, 3]) {
        await worker.reset();
        db.transaction((tx) => {
          for (let i = 0; i < statements; i++) tx.queryOne(select, [i]);
        });
        assert.equal((await worker.count()).turns, statements + 1, `${statements} statements`);
      }
      await worker.reset();
      assert.equal(db.transaction(() => 42), 42);
      assert.equal((await worker.count()).turns, 0);
    } finally {
      await worker.close();
    }
  });
});
