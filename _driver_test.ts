// The driver seam on the real server: what counts as a lost connection, and the rule that a
// reserved connection goes back to the pool only idle outside a transaction.
import assert from "node:assert/strict";
import { resolveConfig } from "./_config.ts";
import { createDriver, type Driver, PipelineRefused } from "./_driver.ts";
import { ConnectionError, DatabaseError, ValidationError } from "./errors.ts";
import { AsyncDatabase } from "./async_database.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

async function withDriver(
  maxConnections: number,
  fn: (driver: Driver, application: string) => Promise<void>,
): Promise<void> {
  const application = uniqueName("drv");
  const driver = createDriver(
    resolveConfig(testUrl(), { maxConnections, applicationName: application }),
    undefined,
  );
  try {
    await fn(driver, application);
  } finally {
    await driver.end();
  }
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

Deno.test("driver: 08P01 from a bind with the wrong parameter count is a DatabaseError on a live connection, which goes back to the pool", async () => {
  await withDriver(1, async (driver) => {
    for (let i = 0; i < 5; i++) {
      const session = await within(driver.reserve(), 1000, `reserve ${i + 1}`);
      await assert.rejects(
        () => session.query("SELECT $1::int + $2::int AS x", [1], { prepare: true }),
        (error: unknown) => {
          assert.ok(error instanceof DatabaseError, Deno.inspect(error));
          assert.ok(!(error instanceof ConnectionError), Deno.inspect(error));
          assert.equal(error.code, "08P01");
          return true;
        },
      );
      assert.equal(session.lost, false);
      assert.deepEqual((await session.query("SELECT 2 AS two")).rows, [{ two: 2 }]);
      session.release();
    }
  });
});

Deno.test("driver: a connection released inside a transaction is closed, never handed to the next caller", async () => {
  await withDriver(1, async (driver, application) => {
    const first = await driver.reserve();
    await first.query("BEGIN");
    await first.query("CREATE TEMP TABLE leftover (x int)");
    const pid = (await first.query("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    first.release();
    const second = await within(driver.reserve(), 5000, "the next reserve");
    const row = (await second.query(
      "SELECT pg_backend_pid() AS pid, now() = statement_timestamp() AS fresh",
    )).rows[0]!;
    assert.notEqual(row.pid, pid, "the connection inside a transaction was reused");
    assert.equal(row.fresh, true);
    second.release();
    const left = (await driver.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
      [application],
    )).rows[0]!.n;
    assert.equal(left, 0);
  });
});

Deno.test("driver: a connection released in a failed transaction is closed, and the pool goes on", async () => {
  await withDriver(1, async (driver) => {
    for (let i = 0; i < 5; i++) {
      const session = await within(driver.reserve(), 5000, `reserve ${i + 1}`);
      await session.query("BEGIN");
      await assert.rejects(() => session.query("SELECT 1 / 0"), DatabaseError);
      session.release();
    }
    assert.deepEqual((await within(driver.query("SELECT 1 AS one"), 5000, "a query")).rows, [{
      one: 1,
    }]);
  });
});

Deno.test("driver: a session the server ended is lost, and the next reserve gets a fresh one", async () => {
  await withDriver(1, async (driver) => {
    const session = await driver.reserve();
    await assert.rejects(
      () => session.query("SELECT pg_terminate_backend(pg_backend_pid())"),
      ConnectionError,
    );
    assert.equal(session.lost, true);
    session.release();
    const next = await within(driver.reserve(), 5000, "the next reserve");
    assert.deepEqual((await next.query("SELECT 1 AS one")).rows, [{ one: 1 }]);
    next.release();
  });
});

Deno.test("driver: a reserved connection the server ended before its first statement refuses it; nothing runs on the connection reopened for others", async () => {
  // The reservation's first statement carries a deferred BEGIN: sent on the connection
  // postgres.js reopened for a queued pool statement, it ran outside the reservation
  // (UNSAFE_TRANSACTION, or inside another caller's session). Patch 0022.
  await using admin = new AsyncDatabase(testUrl(), { maxConnections: 1 });
  await withDriver(1, async (driver, application) => {
    const session = await driver.reserve();
    // The pool's only connection is reserved: this statement waits for it.
    const queued = driver.query("SELECT 2 AS two");
    const ended = await admin.execute(
      `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
        WHERE application_name = $1 AND backend_type = 'client backend'`,
      [application],
    );
    assert.deepEqual(ended, [{ ended: true }]);
    // The queued statement gets the reopened connection.
    assert.deepEqual((await within(queued, 5000, "the queued statement")).rows, [{ two: 2 }]);
    await assert.rejects(
      () => within(session.query("BEGIN; SELECT 1"), 5000, "the reservation's statement"),
      (error: unknown) => {
        assert.ok(error instanceof ConnectionError, Deno.inspect(error));
        assert.equal(error.code, "CONNECTION_CLOSED");
        return true;
      },
    );
    assert.equal(session.lost, true);
    session.release();
    // The pool goes on, outside any transaction.
    assert.deepEqual((await driver.query("SELECT 3 AS three")).rows, [{ three: 3 }]);
    const next = await within(driver.reserve(), 5000, "the next reserve");
    assert.equal((await next.query("SELECT 1 AS one")).rows[0]?.one, 1);
    assert.equal(next.status, "I");
    next.release();
  });
});

Deno.test("driver: a statement that fails after some of its rows leaves nothing for the next one's rows", async () => {
  // postgres.js counts a result's rows on the connection and reset the count only when a
  // statement completed: the next statement's rows started at the failed one's count.
  await withDriver(1, async (driver) => {
    await assert.rejects(
      () => driver.query("SELECT 1 / (5 - x) AS v FROM generate_series(1, 10) x"),
      (e) => e instanceof DatabaseError && e.code === "22012",
    );
    assert.deepEqual((await driver.query("SELECT 1 AS one")).rows, [{ one: 1 }]);
  });
});

/** Each member's outcome: its command tag, or its error's code. */
async function outcomes(results: Promise<{ command: string }>[]): Promise<string[]> {
  return (await Promise.allSettled(results)).map((r) =>
    r.status === "fulfilled" ? r.value.command : (r.reason as DatabaseError).code
  );
}

Deno.test("driver: a chain runs until a statement fails; the statements after it are skipped and do not run", async () => {
  await withDriver(2, async (driver) => {
    const table = uniqueName("chain");
    await driver.query(`CREATE TABLE "${table}" (id INT PRIMARY KEY, v TEXT)`);
    const insert = (id: number, v: unknown = "x") => ({
      text: `INSERT INTO "${table}" VALUES ($1, $2)`,
      params: [id, v],
    });
    const count = async () =>
      (await driver.query(`SELECT count(*)::int AS n FROM "${table}"`)).rows[0]?.n;
    try {
      const session = await driver.reserve();
      try {
        // Prepared on the connection: a statement in the middle of a chain may not need a
        // describe round trip.
        await session.query(insert(0).text, insert(0).params);
        await session.query(`DELETE FROM "${table}"`);
        // A failing first statement (as a BEGIN that fails): the one sent with it never runs,
        // in autocommit or otherwise.
        assert.deepEqual(
          await outcomes(session.pipeline([{ text: "SELECT 1/0" }, insert(1)])),
          ["22012", "CHAIN_SKIPPED"],
        );
        assert.equal(session.status, "I");
        assert.equal(await count(), 0);
        // One transaction in one write: all or nothing.
        assert.deepEqual(
          await outcomes(
            session.pipeline([{ text: "BEGIN" }, insert(1), insert(2), { text: "COMMIT" }]),
          ),
          ["BEGIN", "INSERT", "INSERT", "COMMIT"],
        );
        assert.equal(await count(), 2);
        const failed = session.pipeline([
          { text: "BEGIN" },
          insert(3),
          insert(1),
          insert(4),
          { text: "COMMIT" },
        ]);
        assert.deepEqual(await outcomes(failed), [
          "BEGIN",
          "INSERT",
          "23505",
          "CHAIN_SKIPPED",
          "CHAIN_SKIPPED",
        ]);
        const skipped = await failed[3]?.catch((e) => e);
        assert.equal((skipped.cause as DatabaseError).code, "23505");
        // The members settle once the connection's status is known: in a failed transaction.
        assert.equal(session.status, "E");
        await session.query("ROLLBACK");
        assert.equal(await count(), 2);
        // A value refused by its serializer ends the chain there: what was written before it
        // runs (the transaction is open), nothing after it is sent.
        assert.deepEqual(
          await outcomes(
            session.pipeline([{ text: "BEGIN" }, insert(5, { a: 1 }), { text: "COMMIT" }]),
          ),
          ["BEGIN", "VALIDATION_ERROR", "CHAIN_SKIPPED"],
        );
        assert.equal(session.status, "T");
        await session.query("ROLLBACK");
        // A value refused before anything is sent: nothing is.
        assert.throws(
          () => session.pipeline([{ text: "BEGIN" }, insert(6, "\ud800")]),
          (e: unknown) =>
            e instanceof PipelineRefused && e.index === 1 && e.error instanceof ValidationError,
        );
        assert.equal(session.status, "I");
      } finally {
        session.release();
      }
      assert.equal(await count(), 2);
    } finally {
      await driver.query(`DROP TABLE "${table}"`);
    }
  });
});

Deno.test("driver: a backend terminated in the middle of a chain settles every member, and the session is lost", async () => {
  await withDriver(2, async (driver) => {
    const session = await driver.reserve();
    const [backend] = (await session.query("SELECT pg_backend_pid() AS pid")).rows as {
      pid: number;
    }[];
    assert.ok(backend);
    const chain = session.pipeline([
      { text: "BEGIN" },
      { text: "SELECT pg_sleep(5)" },
      { text: "SELECT 1" },
      { text: "COMMIT" },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await driver.query("SELECT pg_terminate_backend($1)", [backend.pid]);
    const settled = await within(Promise.allSettled(chain), 5000, "the chain");
    assert.equal(settled[0]?.status, "fulfilled", "BEGIN answered before the end");
    for (const r of settled.slice(1)) {
      assert.ok(
        r.status === "rejected" && r.reason instanceof ConnectionError,
        Deno.inspect(r),
      );
    }
    assert.equal(session.lost, true);
    session.release();
    assert.deepEqual((await driver.query("SELECT 1 AS one")).rows, [{ one: 1 }]);
  });
});

Deno.test("a script that forgets close() ends when its work is done, async and sync", async () => {
  const script = (api: "async" | "sync") =>
    api === "async"
      ? `import { AsyncDatabase } from ${JSON.stringify(new URL("./mod.ts", import.meta.url).href)};
const db = new AsyncDatabase(Deno.env.get("DATABASE_URL"), { minConnections: 2, idleTimeout: 600 });
await db.execute("SELECT 1");
await db.transaction((tx) => tx.execute("SELECT 2"));
for await (const _ of db.stream("SELECT 3")) break;
console.log("done");`
      : `import { Database } from ${JSON.stringify(new URL("./mod.ts", import.meta.url).href)};
const db = new Database(Deno.env.get("DATABASE_URL"), { idleTimeout: 600 });
db.execute("SELECT 1");
console.log("done");`;
  for (const api of ["async", "sync"] as const) {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script(api)],
      env: { DATABASE_URL: testUrl() },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    assert.equal(code, 0, `${api}: ${new TextDecoder().decode(stderr)}`);
    assert.equal(new TextDecoder().decode(stdout).trim(), "done");
  }
});
