// The fault/latency proxy of the tests and benches, on the real server: exact turn counts
// (through AsyncDatabase and through a raw wire-protocol client), drain, kill, restore, delay.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import { AmbiguousCommitError, ConnectionError } from "./errors.ts";
import { internalsOf } from "./_internal.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import { FaultCluster, FaultProxy } from "./_test_proxy.ts";
import { ProxyWorker } from "./bench/_latency_proxy.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A wire-protocol message: type byte, int32 length, body. */
function message(type: string, ...parts: (string | number[])[]): Uint8Array {
  const body = parts.flatMap((p) => typeof p === "string" ? [...encoder.encode(p), 0] : p);
  const bytes = new Uint8Array(5 + body.length);
  bytes[0] = type.charCodeAt(0);
  new DataView(bytes.buffer).setInt32(1, 4 + body.length);
  bytes.set(body, 5);
  return bytes;
}

const int16 = (n: number): number[] => [(n >> 8) & 255, n & 255];
const query = (sql: string) => message("Q", sql);
const parse = (name: string, sql: string) => message("P", name, sql, int16(0));
const describeStatement = (name: string) => message("D", [83 /* S */], name);
const bind = (name: string) => message("B", "", name, [...int16(0), ...int16(0), ...int16(0)]);
const execute = () => message("E", "", [0, 0, 0, 0]);
const flush = () => message("H");
const sync = () => message("S");
const terminate = () => message("X");

function concat(...chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A message the raw client read. */
interface Received {
  readonly type: string;
  readonly body: Uint8Array;
}

/** The fields of an ErrorResponse: severity, SQLSTATE, message. */
function errorFields(m: Received): Record<string, string> {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < m.body.length && m.body[at] !== 0) {
    const end = m.body.indexOf(0, at + 1);
    fields[String.fromCharCode(m.body[at])] = decoder.decode(m.body.subarray(at + 1, end));
    at = end + 1;
  }
  return fields;
}

/** A PostgreSQL client written by hand: it sends exactly the bytes a test gives it. */
class RawClient {
  readonly #conn: Deno.TcpConn;
  #buffer: Uint8Array = new Uint8Array(0);
  /** The BackendKeyData of the session (process id and secret), for a CancelRequest. */
  key: Uint8Array | undefined;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects, sends the startup message, and reads up to the first ReadyForQuery. */
  static async connect(port: number): Promise<RawClient> {
    const client = await RawClient.open(port);
    await client.startup();
    const answer = await client.readUntilReady();
    client.key = answer.find((m) => m.type === "K")?.body;
    const error = answer.find((m) => m.type === "E");
    if (error) {
      client.close();
      throw new Error(`Cannot connect: ${errorFields(error).M}`);
    }
    return client;
  }

  /** Opens the TCP connection only. */
  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends the startup message for the test server's user and database. */
  async startup(): Promise<void> {
    const url = new URL(testUrl().replace(/^[a-z]+:/i, "http:"));
    const params = [
      "user",
      decodeURIComponent(url.username) || "root",
      "database",
      decodeURIComponent(url.pathname.slice(1)) || "postgres",
      "",
    ];
    const body = [0, 3, 0, 0, ...params.flatMap((p) => [...encoder.encode(p), 0])];
    const bytes = new Uint8Array(4 + body.length);
    new DataView(bytes.buffer).setInt32(0, bytes.length);
    bytes.set(body, 4);
    await this.send(bytes);
  }

  /** Writes the messages in one write call. */
  async send(...messages: Uint8Array[]): Promise<void> {
    const bytes = concat(...messages);
    let written = 0;
    while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
  }

  /** Reads one message, or `null` when the server closed the connection. */
  async read(): Promise<Received | null> {
    while (true) {
      if (this.#buffer.length >= 5) {
        const length = new DataView(this.#buffer.buffer, this.#buffer.byteOffset).getInt32(1);
        if (this.#buffer.length >= 1 + length) {
          const m = {
            type: String.fromCharCode(this.#buffer[0]),
            body: this.#buffer.slice(5, 1 + length),
          };
          this.#buffer = this.#buffer.slice(1 + length);
          return m;
        }
      }
      const chunk = new Uint8Array(16 * 1024);
      let n: number | null;
      // A test that waits for an answer that never comes fails instead of hanging.
      const timer = setTimeout(() => this.close(), 10_000);
      try {
        n = await this.#conn.read(chunk);
      } catch {
        n = null;
      } finally {
        clearTimeout(timer);
      }
      if (n === null) return null;
      this.#buffer = concat(this.#buffer, chunk.subarray(0, n));
    }
  }

  /** Reads `count` ReadyForQuery messages and what came before them. */
  async readUntilReady(count = 1): Promise<Received[]> {
    const out: Received[] = [];
    let seen = 0;
    while (seen < count) {
      const m = await this.read();
      if (m === null) throw new Error("The server closed the connection");
      out.push(m);
      if (m.type === "Z") seen++;
      if (m.type === "E" && errorFields(m).S === "FATAL") break;
    }
    return out;
  }

  /** Reads every message until the server closes the connection. */
  async readToEnd(): Promise<Received[]> {
    const out: Received[] = [];
    for (let m = await this.read(); m !== null; m = await this.read()) out.push(m);
    return out;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** The status byte of the last ReadyForQuery among `messages`. */
function lastStatus(messages: readonly Received[]): string {
  const ready = messages.filter((m) => m.type === "Z").at(-1);
  return ready ? String.fromCharCode(ready.body[0]) : "";
}

async function waitFor(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected an error");
}

/** A database through the proxy with one connection, connected and past its first statement. */
async function oneConnection(proxy: FaultProxy): Promise<AsyncDatabase> {
  const db = new AsyncDatabase(proxy.url(testUrl()), { minConnections: 1, maxConnections: 1 });
  await db.execute("SELECT 1");
  return db;
}

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
  assert.equal(info.turns, 4, "Terminate is no turn: nothing waits for it");
  assert.equal(info.ended, "client", "the server closed after the client's Terminate");
});

Deno.test("FaultProxy counts a pipelined batch of a raw client as one turn", async () => {
  await using proxy = await FaultProxy.start(testUrl());
  const client = await RawClient.connect(proxy.port);
  try {
    proxy.resetTurns();
    assert.equal(proxy.turns, 0);
    assert.equal(proxy.connections()[0].turns, 0);
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
    await waitFor("the statement to reach the server", () => proxy.connections()[0].pending === 1);
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
    assert.deepEqual(results.map((r) => r.rows[0].n), [1, 2, 3]);
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
    assert.deepEqual(
      { ...errorFields(rest[0]), type: rest[0].type },
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
    assert.equal(proxy.connections()[0].ended, "drain");
    // Connected before the drain, but its startup comes after: a draining node answers it.
    await late.startup();
    const answer = await late.readToEnd();
    assert.equal(answer.length, 1);
    assert.equal(errorFields(answer[0]).C, "57P01");
    assert.equal(errorFields(answer[0]).M, "server is not accepting clients, try another node");
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
    assert.equal(errorFields(rest[2]).C, "57P01");
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
