// AsyncDatabase on the real server: connecting and closing, timeouts, terminated backends, the
// Deno Deploy permission rule (only --allow-net --allow-env), and the examples/ programs.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { ConnectionError, DatabaseError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import { openDb, rejectsWith, withTable } from "./_test_async_database.ts";

// Connecting and closing

Deno.test("AsyncDatabase connects lazily, and connect() is idempotent", async () => {
  const db = openDb();
  try {
    assert.equal(db.serverVersion, "");
    await Promise.all([db.connect(), db.connect()]);
    const version = db.serverVersion;
    assert.match(version, /PostgreSQL|CockroachDB/);
    await db.connect();
    assert.equal(db.serverVersion, version);
  } finally {
    await db.close();
  }
  const lazy = openDb();
  try {
    assert.deepEqual(await lazy.execute("SELECT 1 AS one"), [{ one: 1 }]);
    assert.notEqual(lazy.serverVersion, "");
  } finally {
    await lazy.close();
  }
});

Deno.test("AsyncDatabase.close() is idempotent and every later call fails with ConnectionError", async () => {
  const never = openDb();
  await never.close(); // never connected
  await assert.rejects(() => never.execute("SELECT 1"), ConnectionError);
  const db = openDb();
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
  await db.close();
  await db.close();
  await Promise.all([db.close(), db.close()]);
  for (
    const call of [
      () => db.execute("SELECT 2"),
      () => db.queryOne("SELECT 2"),
      () => db.connect(),
      () => db.select("t"),
      () => db.transaction((tx) => tx.execute("SELECT 3")),
      () => db.stream("SELECT 4").next(),
    ]
  ) {
    await assert.rejects(call, (error: unknown) => {
      assert.ok(error instanceof ConnectionError, Deno.inspect(error));
      assert.equal(error.code, "CONNECTION_CLOSED");
      assert.match(error.message, /^Cannot use the database ".*": it is closed$/);
      return true;
    });
  }
});

Deno.test("AsyncDatabase closes with await using", async () => {
  const app = uniqueName("adb_using");
  {
    await using db = openDb({ applicationName: app, minConnections: 2 });
    await db.connect();
  }
  // The resource sanitizer would already fail on an open socket; the server sees them go too.
  await using check = openDb();
  let left = -1;
  for (let i = 0; i < 500 && left !== 0; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    left = (await check.queryOne<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
      [app],
    ))!.n;
  }
  assert.equal(left, 0);
});

Deno.test("AsyncDatabase passes options=-c and application_name from the URL to the server", async () => {
  const url = new URL(testUrl());
  url.searchParams.set("options", "-c search_path=adb_nowhere,public -c statement_timeout=4321");
  url.searchParams.set("application_name", "adb-url-app");
  await using db = new AsyncDatabase(url.toString(), { minConnections: 1 });
  assert.deepEqual(
    await db.queryOne(
      "SELECT current_setting('search_path') AS sp, current_setting('statement_timeout') AS st, current_setting('application_name') AS app",
    ),
    { sp: "adb_nowhere,public", st: "4321ms", app: "adb-url-app" },
  );
});

Deno.test("AsyncDatabase throws ConnectionError naming host:port when the connection is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const secret = "n0t-in-any-message";
  const db = new AsyncDatabase(`postgresql://root:${secret}@127.0.0.1:${port}/postgres`, {
    connectTimeout: 5,
    minConnections: 1,
  });
  try {
    for (const attempt of [() => db.connect(), () => db.execute("SELECT 1")]) {
      const error = await rejectsWith(attempt(), ConnectionError);
      assert.equal(error.name, "ConnectionError");
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(error.message, /refused/);
      assert.ok(!Deno.inspect(error).includes(secret));
      assert.ok(!error.message.includes(secret));
    }
    await rejectsWith(db.transaction(() => 1), ConnectionError);
  } finally {
    await db.close();
  }
});

Deno.test("AsyncDatabase honours connectTimeout against a server that never answers", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) accepted.push(conn);
    } catch {
      // closed
    }
  })();
  const db = new AsyncDatabase({
    host: "127.0.0.1",
    port: listener.addr.port,
    connectTimeout: 1,
    minConnections: 1,
  });
  try {
    const error = await rejectsWith(db.connect(), ConnectionError);
    assert.equal(error.code, "CONNECT_TIMEOUT");
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${listener.addr.port}`));
    assert.match(error.message, /timeout/);
  } finally {
    await db.close();
    listener.close();
    await accepting;
    for (const conn of accepted) {
      try {
        conn.close();
      } catch {
        // already closed by the client
      }
    }
  }
});

Deno.test("AsyncDatabase statementTimeout cancels a long statement with DatabaseError 57014", async () => {
  await using db = openDb({ statementTimeout: 100 });
  const error = await rejectsWith(db.execute("SELECT pg_sleep(5)"), DatabaseError);
  assert.equal(error.code, "57014");
  assert.deepEqual(await db.execute("SELECT 1 AS ok"), [{ ok: 1 }]);
});

// Terminated backends

Deno.test("AsyncDatabase recovers when idle pooled connections are terminated", async () => {
  const app = uniqueName("adb_kill_idle");
  await using db = openDb({ applicationName: app, minConnections: 3, maxConnections: 3 });
  await using admin = openDb({ maxConnections: 1 });
  await db.connect();
  const killed = await admin.execute<{ ok: boolean }>(
    "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
    [app],
  );
  assert.ok(killed.length >= 1);
  // Wait until the server has ended them, so that the pool meets closed connections.
  while (
    (await admin.queryOne<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
      [app],
    ))?.n !== 0
  ) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => db.queryOne<{ n: number }>("SELECT $1::int AS n", [i])),
  );
  assert.deepEqual(results.map((r) => r?.n), [0, 1, 2, 3, 4, 5]);
  assert.equal(await db.transaction((tx) => tx.queryOne("SELECT 1 AS one")).then((r) => r?.one), 1);
});

/** Terminates `pid` from another connection and waits until the server has ended it. */
async function terminate(admin: AsyncDatabase, pid: number): Promise<void> {
  await admin.execute("SELECT pg_terminate_backend($1)", [pid]);
  while (
    (await admin.queryOne<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1",
      [pid],
    ))?.n !== 0
  ) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // Let the client read the end of the connection before anything else is sent on it.
  await new Promise((resolve) => setTimeout(resolve, 50));
}

Deno.test("AsyncDatabase runs a transaction again on a fresh connection when its backend is terminated before COMMIT", async () => {
  await withTable({ id: "INT4 PRIMARY KEY", attempt: "INT4" }, async (db, table) => {
    await using admin = openDb({ maxConnections: 1 });
    const pids: number[] = [];
    const retries: string[] = [];
    const value = await db.transaction(async (tx) => {
      const pid = (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!.pid;
      pids.push(pid);
      await tx.insert(table, { id: pids.length, attempt: pids.length });
      if (pids.length === 1) {
        await terminate(admin, pid);
        await tx.execute("SELECT 1"); // fails: the connection is gone
      }
      return pids.length;
    }, { onRetry: (info) => retries.push((info.error as DatabaseError).code) });
    assert.equal(value, 2);
    assert.equal(pids.length, 2);
    assert.notEqual(pids[0], pids[1]);
    assert.equal(retries.length, 1);
    // Only the second attempt's row was committed.
    assert.deepEqual(await db.select(table), [{ id: 2, attempt: 2 }]);
  });
});

Deno.test("AsyncDatabase runs a transaction again when its backend is terminated under a callback that sends nothing more", async () => {
  await withTable({ id: "INT4 PRIMARY KEY" }, async (db, table) => {
    await using admin = openDb({ maxConnections: 1 });
    let attempts = 0;
    const value = await db.transaction(async (tx) => {
      attempts++;
      const pid = (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!.pid;
      await tx.insert(table, { id: attempts });
      if (attempts === 1) await terminate(admin, pid);
      return attempts;
    });
    assert.equal(value, 2);
    assert.deepEqual(await db.select(table), [{ id: 2 }]);
    // The pool is healthy afterwards.
    assert.deepEqual(
      await Promise.all(
        [1, 2, 3].map((n) => db.queryOne<{ n: number }>("SELECT $1::int AS n", [n])),
      ),
      [{ n: 1 }, { n: 2 }, { n: 3 }],
    );
  });
});

// Deno Deploy: the async API needs only --allow-net --allow-env.

const CONFIG = new URL("./deno.json", import.meta.url);
const MOD = new URL("./mod.ts", import.meta.url);

async function runDeno(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    env,
    clearEnv: true,
    cwd: new URL(".", import.meta.url).pathname,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

async function withScript<T>(source: string, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(path, source);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

function inherited(): Record<string, string> {
  const env: Record<string, string> = { DATABASE_URL: testUrl(), NO_COLOR: "1" };
  for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

Deno.test("mod.ts imports with no permissions at all", async () => {
  const source = `import * as mod from "${MOD.href}";
console.log(typeof mod.AsyncDatabase, typeof mod.DatabaseError);
`;
  const { code, output } = await withScript(
    source,
    (path) => runDeno(["run", "--no-prompt", "--config", CONFIG.pathname, path], inherited()),
  );
  assert.equal(code, 0, output);
  assert.match(output, /function function/);
});

Deno.test("the async API runs a whole scenario with only --allow-net --allow-env", async () => {
  const source = `import { AsyncDatabase, TransactionRetryError } from "${MOD.href}";
const table = "deploy_" + Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
const db = new AsyncDatabase(Deno.env.get("DATABASE_URL")!, { minConnections: 1 });
try {
  await db.connect();
  await db.createTable(table, { id: "SERIAL PRIMARY KEY", name: "TEXT NOT NULL", n: "INT4" });
  await db.insert(table, { name: "a", n: 1 });
  await db.batchInsert(table, [{ name: "b", n: 2 }, { name: "c", n: 3 }], { returning: false });
  const rows = await db.select(table, { orderBy: "id" });
  if (rows.map((r) => r.name).join() !== "a,b,c") throw new Error("bad rows " + JSON.stringify(rows));
  const total = await db.transaction(async (tx) => {
    await tx.update(table, { n: 10 }, { name: "a" });
    return (await tx.queryOne("SELECT sum(n)::int AS s FROM " + JSON.stringify(table)))!.s;
  });
  if (total !== 15) throw new Error("bad total " + total);
  let streamed = 0;
  for await (const _ of db.stream("SELECT * FROM " + JSON.stringify(table), [], { batchSize: 2 })) streamed++;
  if (streamed !== 3) throw new Error("bad stream " + streamed);
  console.log("scenario ok", TransactionRetryError.name);
} finally {
  await db.dropTable(table);
  await db.close();
}
`;
  const { code, output } = await withScript(
    source,
    (path) =>
      runDeno(
        ["run", "--no-prompt", "--allow-net", "--allow-env", "--config", CONFIG.pathname, path],
        inherited(),
      ),
  );
  assert.equal(code, 0, output);
  assert.match(output, /scenario ok/);
});

for (const example of ["basic_crud.ts", "transactions.ts"]) {
  Deno.test(`examples/${example} runs to completion with --allow-net --allow-env`, async () => {
    const path = new URL(`./examples/${example}`, import.meta.url).pathname;
    const { code, output } = await runDeno(
      ["run", "--no-prompt", "--allow-net", "--allow-env", path],
      inherited(),
    );
    assert.equal(code, 0, output);
    assert.match(output, /Done/);
  });
}
