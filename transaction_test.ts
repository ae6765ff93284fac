// AsyncDatabase.transaction() on the real server: commit and rollback, the retry loop under
// real conflicts and under deterministic ones (PL/pgSQL raising SQLSTATE 40001 the first N
// times, counted with a sequence, which rollbacks do not undo), and the transaction handle.
import assert from "node:assert/strict";
import { AsyncDatabase, type AsyncTransaction, type DatabaseOptions } from "./async_database.ts";
import {
  DatabaseError,
  TransactionRetryError,
  UniqueViolationError,
  ValidationError,
} from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import { rejectsWith } from "./_test_async_database.ts";

function openDb(options?: DatabaseOptions): AsyncDatabase {
  return new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 4, ...options });
}

/**
 * A table, and a function `<fail>(n)` that raises SQLSTATE `code` on its first `n` calls
 * (a sequence counts them across rollbacks), dropped afterwards.
 */
async function withFailing(
  fn: (db: AsyncDatabase, names: { table: string; fail: string; seq: string }) => Promise<void>,
  code = "40001",
  options?: DatabaseOptions,
): Promise<void> {
  await using db = openDb(options);
  const table = uniqueName("tx");
  const fail = uniqueName("tx_fail");
  const seq = uniqueName("tx_seq");
  await db.execute(
    `CREATE TABLE "${table}" (id INT4 PRIMARY KEY, n INT4 NOT NULL DEFAULT 0);
     CREATE SEQUENCE "${seq}";
     CREATE FUNCTION "${fail}"(times int) RETURNS int LANGUAGE plpgsql AS $$
     BEGIN
       IF nextval('"${seq}"') <= times THEN
         RAISE EXCEPTION 'restart transaction (forced)' USING ERRCODE = '${code}';
       END IF;
       RETURN 1;
     END $$`,
  );
  try {
    await fn(db, { table, fail, seq });
  } finally {
    await db.execute(
      `DROP TABLE IF EXISTS "${table}" CASCADE; DROP FUNCTION IF EXISTS "${fail}"(int) CASCADE;
       DROP SEQUENCE IF EXISTS "${seq}" CASCADE`,
    );
  }
}

Deno.test("AsyncDatabase.transaction() commits and returns the callback's value", async () => {
  await withFailing(async (db, { table }) => {
    const value = await db.transaction(async (tx) => {
      await tx.insert(table, { id: 1, n: 10 });
      await tx.execute(`UPDATE "${table}" SET n = n + 1 WHERE id = $1`, [1]);
      return { done: true };
    });
    assert.deepEqual(value, { done: true });
    assert.deepEqual(await db.select(table), [{ id: 1, n: 11 }]);
    // A callback that returns a plain value (no promise) works too.
    assert.equal(await db.transaction(() => 42), 42);
    assert.equal(await db.transaction(() => Promise.resolve(undefined)), undefined);
  });
});

Deno.test("AsyncDatabase.transaction() rolls back on a throw and re-throws the same error object", async () => {
  await withFailing(async (db, { table }) => {
    class Refused extends Error {}
    const thrown = new Refused("no");
    let retried = false;
    const caught = await rejectsWith(
      db.transaction(async (tx) => {
        await tx.insert(table, { id: 1 });
        throw thrown;
      }, { onRetry: () => retried = true }),
      Refused,
    );
    assert.equal(caught, thrown);
    assert.equal(retried, false);
    assert.equal(await db.count(table), 0);
    // A server error inside is not retried either and arrives as its own class.
    await db.insert(table, { id: 1 });
    await rejectsWith(
      db.transaction(async (tx) => {
        await tx.insert(table, { id: 2 });
        await tx.insert(table, { id: 1 });
      }, { onRetry: () => retried = true }),
      UniqueViolationError,
    );
    assert.equal(retried, false);
    assert.deepEqual(await db.select(table), [{ id: 1, n: 0 }]);
    // A thrown non-Error value comes back as it is.
    await assert.rejects(db.transaction(() => Promise.reject("plain")), (e) => e === "plain");
  });
});

Deno.test("AsyncDatabase.transaction() gets the exact total from 20 concurrent read-modify-write tasks", async () => {
  await withFailing(
    async (db, { table }) => {
      await db.insert(table, { id: 1, n: 0 });
      let retries = 0;
      const increment = () =>
        db.transaction(async (tx) => {
          const row = await tx.queryOne<{ n: number }>(
            `SELECT n FROM "${table}" WHERE id = 1`,
          );
          // Widen the window between the read and the write so that conflicts happen.
          await new Promise((resolve) => setTimeout(resolve, 2));
          await tx.execute(`UPDATE "${table}" SET n = $1 WHERE id = 1`, [row!.n + 1]);
        }, {
          maxRetries: 200,
          initialBackoff: 2,
          maxBackoff: 50,
          onRetry: (info) => {
            assert.ok(info.error instanceof DatabaseError);
            assert.ok(["40001", "40P01"].includes(info.error.code), info.error.code);
            retries++;
          },
        });
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          for (let i = 0; i < 5; i++) await increment();
        }),
      );
      assert.equal((await db.selectOne(table, { where: { id: 1 } }))?.n, 100);
      assert.ok(retries > 0, "expected some serialization failures to be retried");
    },
    "40001",
    { maxConnections: 10 },
  );
});

Deno.test("AsyncDatabase.transaction() with maxRetries 0 throws TransactionRetryError after one attempt", async () => {
  await withFailing(async (db, { table, fail }) => {
    let attempts = 0;
    const error = await rejectsWith(
      db.transaction(async (tx) => {
        attempts++;
        await tx.insert(table, { id: attempts });
        await tx.execute(`SELECT "${fail}"(1)`);
      }, { maxRetries: 0 }),
      TransactionRetryError,
    );
    assert.equal(error.name, "TransactionRetryError");
    assert.equal(error.attempts, 1);
    assert.equal(error.code, "40001");
    assert.ok(error.cause instanceof DatabaseError);
    assert.equal((error.cause as DatabaseError).code, "40001");
    assert.equal(attempts, 1);
    assert.equal(await db.count(table), 0);
  });
});

Deno.test("AsyncDatabase.transaction() with maxRetries 1 succeeds when the conflict happens once", async () => {
  await withFailing(async (db, { table, fail }) => {
    let attempts = 0;
    const retries: number[] = [];
    const value = await db.transaction(async (tx) => {
      attempts++;
      await tx.insert(table, { id: attempts });
      await tx.execute(`SELECT "${fail}"(1)`);
      return attempts;
    }, { maxRetries: 1, onRetry: (info) => retries.push(info.attempt) });
    assert.equal(value, 2);
    assert.deepEqual(retries, [1]);
    // The first attempt's insert was rolled back.
    assert.deepEqual(await db.select(table), [{ id: 2, n: 0 }]);
  });
});

Deno.test("AsyncDatabase.transaction() gives up with TransactionRetryError once maxRetries is spent", async () => {
  await withFailing(async (db, { fail }) => {
    let attempts = 0;
    const error = await rejectsWith(
      db.transaction(async (tx) => {
        attempts++;
        await tx.execute(`SELECT "${fail}"(100)`);
      }, { maxRetries: 3, initialBackoff: 1 }),
      TransactionRetryError,
    );
    assert.equal(error.attempts, 4);
    assert.equal(attempts, 4);
  });
});

Deno.test("AsyncDatabase.transaction() retries a 40001 raised by COMMIT itself", async () => {
  await withFailing(async (db, { table, fail, seq }) => {
    const trigger = uniqueName("tx_trg");
    await db.execute(
      `CREATE FUNCTION "${trigger}"() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN PERFORM "${fail}"(1); RETURN NULL; END $$;
       CREATE CONSTRAINT TRIGGER "${trigger}" AFTER INSERT ON "${table}"
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "${trigger}"()`,
    );
    try {
      let attempts = 0;
      const retried: unknown[] = [];
      const value = await db.transaction(async (tx) => {
        attempts++;
        await tx.insert(table, { id: 7, n: attempts });
        return attempts; // the deferred trigger runs at COMMIT and fails the first time
      }, { onRetry: (info) => retried.push((info.error as DatabaseError).code) });
      assert.equal(value, 2);
      assert.deepEqual(retried, ["40001"]);
      assert.deepEqual(await db.select(table), [{ id: 7, n: 2 }]);
      // With no retries left, the failing COMMIT surfaces as TransactionRetryError.
      await db.execute(`SELECT setval('"${seq}"', 1, false)`);
      const error = await rejectsWith(
        db.transaction((tx) => tx.insert(table, { id: 8 }), { maxRetries: 0 }),
        TransactionRetryError,
      );
      assert.equal(error.attempts, 1);
      assert.equal(await db.count(table, { id: 8 }), 0);
    } finally {
      await db.execute(`DROP FUNCTION "${trigger}"() CASCADE`);
    }
  });
});

Deno.test("AsyncDatabase.transaction() retries a deadlock (40P01)", async () => {
  await withFailing(async (db, { table, fail }) => {
    let attempts = 0;
    const codes: string[] = [];
    await db.transaction(async (tx) => {
      attempts++;
      await tx.execute(`SELECT "${fail}"(1)`);
      await tx.insert(table, { id: 1 });
    }, { onRetry: (info) => codes.push((info.error as DatabaseError).code) });
    assert.equal(attempts, 2);
    assert.deepEqual(codes, ["40P01"]);
    assert.equal(await db.count(table), 1);
  }, "40P01");
});

Deno.test("AsyncDatabase.transaction() retries a real deadlock between two transactions", async () => {
  await withFailing(async (db, { table }) => {
    await db.batchInsert(table, [{ id: 1 }, { id: 2 }]);
    const codes: string[] = [];
    let bothLocked: () => void = () => {};
    let locked = 0;
    const barrier = new Promise<void>((resolve) => bothLocked = resolve);
    const lockBoth = (first: number, second: number) =>
      db.transaction(async (tx) => {
        await tx.execute(`UPDATE "${table}" SET n = n + 1 WHERE id = $1`, [first]);
        if (++locked === 2) bothLocked();
        await barrier;
        await tx.execute(`UPDATE "${table}" SET n = n + 1 WHERE id = $1`, [second]);
      }, {
        isolation: "read committed",
        onRetry: (info) => codes.push((info.error as DatabaseError).code),
      });
    await Promise.all([lockBoth(1, 2), lockBoth(2, 1)]);
    assert.deepEqual(codes, ["40P01"]);
    assert.deepEqual((await db.select(table, { orderBy: "id" })).map((r) => r.n), [2, 2]);
  });
});

Deno.test("AsyncDatabase.transaction() retries when the callback catches a 40001 and returns", async () => {
  await withFailing(async (db, { table, fail }) => {
    let attempts = 0;
    const value = await db.transaction(async (tx) => {
      attempts++;
      await tx.insert(table, { id: attempts });
      try {
        await tx.execute(`SELECT "${fail}"(1)`);
      } catch {
        // Swallowed: the server has aborted the transaction anyway, and COMMIT answers ROLLBACK.
      }
      return attempts;
    });
    assert.equal(value, 2);
    assert.deepEqual(await db.select(table), [{ id: 2, n: 0 }]);
  });
});

Deno.test("AsyncDatabase.transaction() retries when the callback catches a 40001 and sends more statements", async () => {
  await withFailing(async (db, { table, fail }) => {
    let attempts = 0;
    const value = await db.transaction(async (tx) => {
      attempts++;
      try {
        await tx.execute(`SELECT "${fail}"(1)`);
      } catch {
        // Swallowed; the next statement fails with 25P02 (transaction aborted).
      }
      await tx.insert(table, { id: attempts });
      return attempts;
    });
    assert.equal(value, 2);
    assert.deepEqual(await db.select(table), [{ id: 2, n: 0 }]);
  });
});

Deno.test("AsyncDatabase.transaction() does not commit when a caught non-retryable error doomed it", async () => {
  await withFailing(async (db, { table }) => {
    await db.insert(table, { id: 1 });
    let attempts = 0;
    const error = await rejectsWith(
      db.transaction(async (tx) => {
        attempts++;
        await tx.insert(table, { id: 2 });
        await tx.insert(table, { id: 1 }).catch(() => {}); // swallowed 23505
        return "looks fine";
      }),
      DatabaseError,
    );
    assert.equal(error.code, "TRANSACTION_ROLLED_BACK");
    assert.equal(attempts, 1);
    assert.equal(await db.count(table), 1);
  });
});

Deno.test("AsyncDatabase.transaction() handle refuses use after the transaction with TRANSACTION_CLOSED", async () => {
  await withFailing(async (db, { table }) => {
    let kept: AsyncTransaction | undefined;
    await db.transaction((tx) => {
      kept = tx;
    });
    const closed = (e: DatabaseError) => assert.equal(e.code, "TRANSACTION_CLOSED");
    await rejectsWith(kept!.execute("SELECT 1"), DatabaseError, closed);
    await rejectsWith(kept!.insert(table, { id: 1 }), DatabaseError, closed);
    await rejectsWith(kept!.select(table), DatabaseError, closed);
    await rejectsWith(kept!.batchInsert(table, [{ id: 3 }], { returning: false }), DatabaseError);
    // The same after a failed transaction.
    await db.transaction((tx) => {
      kept = tx;
      throw new Error("x");
    }).catch(() => {});
    await rejectsWith(kept!.count(table), DatabaseError, closed);
    assert.equal(await db.count(table), 0);
  });
});

Deno.test("AsyncDatabase.transaction() with readOnly refuses writes with 25006", async () => {
  await withFailing(async (db, { table }) => {
    assert.equal(
      await db.transaction((tx) => tx.count(table), { readOnly: true }),
      0,
    );
    await rejectsWith(
      db.transaction((tx) => tx.insert(table, { id: 1 }), { readOnly: true }),
      DatabaseError,
      (e) => assert.equal(e.code, "25006"),
    );
    assert.equal(
      (await db.transaction((tx) => tx.queryOne("SHOW transaction_read_only"), {
        readOnly: true,
      }))?.transaction_read_only,
      "on",
    );
    assert.equal(await db.count(table), 0);
  });
});

Deno.test("AsyncDatabase.transaction() sets the isolation option", async () => {
  await using db = openDb();
  const level = (options?: Parameters<AsyncDatabase["transaction"]>[1]) =>
    db.transaction(
      async (tx) =>
        (await tx.queryOne<{ transaction_isolation: string }>("SHOW transaction_isolation"))
          ?.transaction_isolation,
      options,
    );
  assert.equal(await level(), "serializable"); // the test server's default, like CockroachDB
  assert.equal(await level({ isolation: "read committed" }), "read committed");
  assert.equal(await level({ isolation: "repeatable read" }), "repeatable read");
  assert.equal(await level({ isolation: "serializable" }), "serializable");
  await rejectsWith(
    level({ isolation: "chaos" as "serializable" }),
    ValidationError,
    (e) => assert.equal(e.field, "isolation"),
  );
  await rejectsWith(
    level({ asOfSystemTime: "-1s" }),
    ValidationError,
    (e) => assert.equal(e.field, "asOfSystemTime"),
  );
});

Deno.test("AsyncDatabase.transaction() handle runs every helper on the transaction's connection", async () => {
  await withFailing(async (db, { table }) => {
    await db.transaction(async (tx) => {
      const [backend] = await tx.execute<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      assert.ok(backend);
      const { pid } = backend;
      await tx.insert(table, { id: 1 });
      await tx.batchInsert(table, [{ id: 2 }, { id: 3 }, { id: 4 }], { chunkSize: 1 });
      await tx.batchInsert(table, [{ id: 5, n: 5 }], { returning: false });
      await tx.upsert(table, { id: 1, n: 10 });
      await tx.batchUpsert(table, [{ id: 2, n: 20 }, { id: 6, n: 60 }]);
      await tx.batchUpdate(table, [{ id: 3, n: 30 }, { id: 4, n: 40 }]);
      await tx.update(table, { n: 50 }, { id: 5 });
      assert.equal(await tx.delete(table, { id: 6 }), 1);
      assert.equal(await tx.count(table), 5);
      assert.equal((await tx.selectOne(table, { where: { id: 3 } }))?.n, 30);
      let streamed = 0;
      for await (const _ of tx.stream(`SELECT * FROM "${table}"`, [], { batchSize: 2 })) {
        streamed++;
      }
      assert.equal(streamed, 5);
      assert.equal(await tx.tableExists(table), true);
      assert.equal(
        (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))?.pid,
        pid,
      );
      // Nothing is visible to other connections before COMMIT.
      assert.equal(await db.count(table), 0);
      assert.deepEqual(await db.select(table), []);
    });
    assert.deepEqual(
      (await db.select(table, { orderBy: "id" })).map((r) => [r.id, r.n]),
      [[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]],
    );
  });
});

Deno.test("AsyncDatabase.transaction() handle's helpers roll back with the transaction", async () => {
  await withFailing(async (db, { table }) => {
    await rejectsWith(
      db.transaction(async (tx) => {
        await tx.batchInsert(table, [{ id: 1 }, { id: 2 }], { returning: false });
        await tx.createTable(`${table}_x`, { id: "INT4" });
        throw new RangeError("undo");
      }),
      RangeError,
    );
    assert.equal(await db.count(table), 0);
    assert.equal(await db.tableExists(`${table}_x`), false);
  });
});

Deno.test("AsyncDatabase.transaction() stops at the deadline with TransactionRetryError", async () => {
  await withFailing(async (db, { fail }) => {
    let attempts = 0;
    const error = await rejectsWith(
      db.transaction(async (tx) => {
        attempts++;
        await tx.execute(`SELECT "${fail}"(1000000)`);
      }, { deadline: 100, maxRetries: 1_000_000, initialBackoff: 20, maxBackoff: 20 }),
      TransactionRetryError,
    );
    assert.match(error.message, /deadline of 100 ms/);
    assert.equal(error.attempts, attempts);
    assert.ok(attempts < 1_000_000);
  });
});

Deno.test("AsyncDatabase.transaction() refuses a missing callback and bad options with ValidationError", async () => {
  await using db = openDb();
  await rejectsWith(
    db.transaction(undefined as unknown as () => void),
    ValidationError,
    (e) => assert.equal(e.field, "fn"),
  );
  await rejectsWith(db.transaction(() => 1, { maxRetries: -1 }), ValidationError);
  await rejectsWith(db.transaction(() => 1, { deadline: 0 }), ValidationError);
});

Deno.test("AsyncDatabase retry defaults come from the database's retry option", async () => {
  await withFailing(
    async (db, { fail }) => {
      let attempts = 0;
      const error = await rejectsWith(
        db.transaction(async (tx) => {
          attempts++;
          await tx.execute(`SELECT "${fail}"(100)`);
        }),
        TransactionRetryError,
      );
      assert.equal(error.attempts, 3);
      assert.equal(attempts, 3);
    },
    "40001",
    { retry: { maxRetries: 2, initialBackoff: 1 } },
  );
});

Deno.test("AsyncDatabase keeps the pool usable after many transactions", async () => {
  await using db = openDb({ maxConnections: 2 });
  // Leaked reserved connections would exhaust a pool of two long before 50 transactions.
  for (let i = 0; i < 25; i++) {
    await db.transaction((tx) => tx.execute("SELECT 1"));
    await db.transaction(() => {
      throw new Error("x");
    }).catch(() => {});
  }
  assert.deepEqual(await db.execute("SELECT 1 AS ok"), [{ ok: 1 }]);
});
