// Faults on the real server: the sync bridge's worker crashing in the middle of transfers, a
// connection lost while the pool reads the server's types, and a close() during a connect.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import { ConnectionError, DatabaseError } from "./errors.ts";
import { bridgeRequest } from "./_internal.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  auditBank,
  classify,
  countErrors,
  countOutcomes,
  createBank,
  dropBank,
  planTransfers,
  prng,
  transferBodySync,
} from "./soak/_bank.ts";
import { within } from "./_test_faults.ts";

Deno.test("Database: its worker crashing in the middle of transfers loses nothing and applies nothing twice", async () => {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 2 });
  const seed = Date.now() % 2 ** 31;
  const bank = await createBank(admin, uniqueName("crash"), 5, 1000);
  try {
    const transfers = planTransfers(bank, 120, prng(seed));
    const untyped: unknown[] = [];
    const crashed = new Set<number>();
    {
      using db = new Database(testUrl(), { minConnections: 1, maxConnections: 2 });
      const crash = (how: "exit" | "throw") => bridgeRequest(db, { op: "crash", how, ms: 2000 });
      transfers.forEach((transfer, i) => {
        try {
          db.transaction((tx) => {
            transfer.runs++;
            transferBodySync(tx, bank, transfer, () => {
              // Every tenth transfer: the worker dies with the transaction half done.
              if (i % 10 === 3 && transfer.runs === 1) {
                crashed.add(i);
                crash(i % 20 === 3 ? "exit" : "throw");
              }
            });
          });
          transfer.outcome = "committed";
        } catch (error) {
          classify(transfer, error, untyped);
        }
        // And between transactions, now and then.
        if (i % 25 === 24) {
          assert.throws(() => crash("exit"), ConnectionError);
        }
      });
      // The same Database, and a new one, work afterwards.
      assert.deepEqual(db.execute("SELECT 1 AS one"), [{ one: 1 }]);
      using other = new Database(testUrl(), { minConnections: 1 });
      assert.deepEqual(other.execute("SELECT 2 AS two"), [{ two: 2 }]);
    }
    const audit = await auditBank(admin, bank, transfers);
    console.log(
      `worker crashes (seed ${seed}): ${crashed.size} inside transactions, ${
        Deno.inspect(countOutcomes(transfers))
      }, errors ${Deno.inspect(countErrors(transfers))}`,
    );
    assert.deepEqual(untyped, []);
    for (const i of crashed) {
      assert.equal(transfers[i]?.runs, 2, `transfer ${i} ran again on a fresh worker`);
      assert.equal(transfers[i]?.outcome, "committed");
    }
    assert.equal(audit.total, audit.expectedTotal);
    assert.deepEqual(audit.duplicates, []);
    assert.deepEqual(audit.lost, []);
    assert.deepEqual(audit.phantom, []);
    assert.deepEqual(audit.unbalanced, []);
  } finally {
    await dropBank(admin, bank);
  }
});

/**
 * A TCP proxy to the test server that acts on the first statement of each connection whose text
 * contains `marker`: "close" ends the client's side of that connection (a clean close, as a
 * server shutting down does) the first time; "stall" stops forwarding that connection's client
 * bytes, so the statement never reaches the server.
 */
function startProxy(marker: string, mode: "close" | "stall") {
  const target = new URL(testUrl());
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const needle = new TextEncoder().encode(marker);
  const conns = new Set<Deno.Conn>();
  let struck = 0;
  let armed = mode === "stall";
  const contains = (chunk: Uint8Array): boolean => {
    outer: for (let i = 0; i + needle.length <= chunk.length; i++) {
      for (let j = 0; j < needle.length; j++) if (chunk[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };
  const pipe = async (
    from: Deno.Conn,
    to: Deno.Conn,
    inspect: (chunk: Uint8Array) => "forward" | "close" | "stall",
  ) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        const chunk = buffer.subarray(0, n);
        const action = inspect(chunk);
        if (action === "stall") return;
        if (action === "close") {
          await from.closeWrite();
          return;
        }
        await to.write(chunk);
      }
      await to.closeWrite();
    } catch {
      // A side went away; the other is closed below.
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port || 5432),
      });
      conns.add(client).add(server);
      let stalled = false;
      void pipe(client, server, (chunk) => {
        if (stalled) return "stall";
        if (!armed || !contains(chunk)) return "forward";
        if (mode === "stall") {
          struck++;
          stalled = true;
          return "stall";
        }
        if (struck > 0) return "forward";
        struck++;
        return "close";
      }).then(() => {
        if (!stalled) {
          for (const c of [client, server]) {
            try {
              c.close();
            } catch { /* already closed */ }
            conns.delete(c);
          }
        }
      });
      void pipe(server, client, () => stalled ? "stall" : "forward");
    }
  })();
  const url = new URL(testUrl());
  url.hostname = "127.0.0.1";
  url.port = String((listener.addr as Deno.NetAddr).port);
  return {
    url: url.toString(),
    get struck() {
      return struck;
    },
    /** "close" acts only once armed. */
    arm(): void {
      armed = true;
    },
    async close(): Promise<void> {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await accepting.catch(() => {});
    },
  };
}

Deno.test("a connection lost while it reads the server's types is no uncaught error", async (t) => {
  // The pool reads the types of the server that are not built in (an enum's array) when a
  // statement first meets one. postgres.js's own type query, which ran on every new connection,
  // ended the process when it failed (an unhandled rejection, porsager/postgres#1192, #1205).
  const mood = uniqueName("mood");
  await using admin = new AsyncDatabase(testUrl(), { maxConnections: 1 });
  await admin.execute(`CREATE TYPE "${mood}" AS ENUM ('ok', 'sad')`);
  try {
    await t.step(
      "closed by the server during the type read: the transaction runs again and answers",
      async () => {
        const proxy = startProxy("typarray", "close");
        try {
          await using db = new AsyncDatabase(proxy.url, { maxConnections: 1, connectTimeout: 5 });
          await db.connect();
          proxy.arm();
          let attempts = 0;
          const value = await within(
            db.transaction(async (tx) => {
              attempts++;
              return (await tx.queryOne<{ m: string[] }>(`SELECT ARRAY['ok']::"${mood}"[] AS m`))!
                .m;
            }),
            30_000,
            "a transaction whose connection closed during the type read",
          );
          assert.deepEqual(value, ["ok"]);
          assert.equal(proxy.struck, 1);
          assert.equal(attempts, 2, "the connection was lost: the transaction ran again");
          // Let anything that would float settle before the test's sanitizers look.
          await new Promise((resolve) => setTimeout(resolve, 100));
        } finally {
          await proxy.close();
        }
      },
    );
    await t.step(
      "cancelled by a 1 ms statementTimeout: each statement answers or fails typed",
      async () => {
        // porsager/postgres#1205: the type query cancelled (57014) ended the process.
        const outcomes: Record<string, number> = {};
        for (let i = 0; i < 20; i++) {
          await using db = new AsyncDatabase(testUrl(), { maxConnections: 1, statementTimeout: 1 });
          const outcome = await db.execute(`SELECT ARRAY['ok']::"${mood}"[] AS m`).then(
            () => "answered",
            (error) => error instanceof DatabaseError ? `${error.name} ${error.code}` : error,
          );
          assert.equal(typeof outcome, "string", Deno.inspect(outcome));
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.ok(
          Object.keys(outcomes).every((k) =>
            /^(answered|\w+ 57014|DatabaseError TYPE_READ_FAILED)$/.test(k)
          ),
          Deno.inspect(outcomes),
        );
      },
    );
    await t.step("closed by close() while the type read waits: close() settles", async () => {
      const proxy = startProxy("typarray", "stall");
      try {
        const db = new AsyncDatabase(proxy.url, { maxConnections: 1, connectTimeout: 5 });
        const pending = db.execute(`SELECT ARRAY['ok']::"${mood}"[] AS m`).then(
          () => "answered",
          (error) => error,
        );
        for (let i = 0; i < 500 && proxy.struck === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.equal(proxy.struck, 1, "the type read was never sent");
        await within(db.close(), 30_000, "close() while the type read waits");
        const outcome = await within(
          pending,
          30_000,
          "a statement whose result waits for the type read",
        );
        // The statement ran; only its result could not be read: not a ConnectionError, which
        // would say that it did not run.
        assert.ok(outcome instanceof DatabaseError, Deno.inspect(outcome));
        assert.equal(outcome.code, "TYPE_READ_FAILED");
        assert.ok(outcome.cause instanceof ConnectionError, Deno.inspect(outcome.cause));
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        await proxy.close();
      }
    });
  } finally {
    await admin.execute(`DROP TYPE "${mood}"`);
  }
});

Deno.test("a second close() during a connect waits until the first has ended it", async () => {
  // A server that accepts and never answers: the connect stays in progress.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const db = new AsyncDatabase(`postgresql://root@127.0.0.1:${port}/postgres`, {
      connectTimeout: 30,
    });
    const pending = db.execute("SELECT 1").then(() => "answered", (error) => error);
    while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const first = db.close();
    let firstDone = false;
    first.then(() => firstDone = true);
    await within(db.close(), 10_000, "the second close()");
    assert.equal(firstDone, true, "the second close() returned before the first");
    const outcome = await within(pending, 10_000, "the statement waiting on the connect");
    assert.ok(outcome instanceof ConnectionError, Deno.inspect(outcome));
  } finally {
    listener.close();
    for (const conn of held) conn.close();
    await accepting.catch(() => {});
  }
});
