// The sync Database's transactions on the real server: commit and rollback, the retry protocol
// of AsyncDatabase (in the callback and at COMMIT, an ambiguous commit), calls on the database
// inside the callback, and a connection the server drops.
import assert from "node:assert/strict";
import { AsyncDatabase, type AsyncTransaction } from "./async_database.ts";
import { Database, Transaction } from "./database.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  ConnectionError,
  type DatabaseError,
  TransactionRetryError,
  UniqueViolationError,
  ValidationError,
} from "./errors.ts";
import { caught, caughtSync } from "./_test_database.ts";

Deno.test("Database.transaction() commits, returns the value, and rolls back on a throw", async (t) => {
  const table = uniqueName("tx");
  await using setup = new AsyncDatabase(testUrl());
  await setup.createTable(table, { id: "INT PRIMARY KEY", v: "TEXT" });
  try {
    await t.step("async", async () => {
      await using db = new AsyncDatabase(testUrl());
      const value = await db.transaction(async (tx) => {
        await tx.insert(table, { id: 1, v: "async" });
        return (await tx.count(table)) * 10;
      });
      assert.equal(value, 10);
      const mine = new Error("mine");
      const error = await caught(() =>
        db.transaction(async (tx) => {
          await tx.insert(table, { id: 2, v: "async" });
          throw mine;
        })
      );
      assert.equal(error, mine);
      assert.equal(await db.count(table, { v: "async" }), 1);
    });
    await t.step("sync", () => {
      using db = new Database(testUrl());
      let handle: Transaction | undefined;
      const value = db.transaction((tx) => {
        handle = tx;
        assert.ok(tx instanceof Transaction);
        tx.insert(table, { id: 11, v: "sync" });
        const rows = [];
        for (const row of tx.stream(`SELECT id FROM "${table}" WHERE v = 'sync'`)) rows.push(row);
        assert.deepEqual(rows, [{ id: 11 }]);
        return tx.count(table, { v: "sync" }) * 10;
      });
      assert.equal(value, 10);
      // The handle is closed once the callback returned.
      assert.throws(() => handle?.execute("SELECT 1"), (e: DatabaseError) => {
        assert.equal(e.code, "TRANSACTION_CLOSED");
        return true;
      });
      const mine = new Error("mine");
      assert.throws(
        () =>
          db.transaction((tx) => {
            tx.insert(table, { id: 12, v: "sync" });
            throw mine;
          }),
        (e) => e === mine,
      );
      assert.equal(db.count(table, { v: "sync" }), 1);
      // A failed statement the callback did not catch rolls back too.
      assert.throws(
        () =>
          db.transaction((tx) => {
            tx.insert(table, { id: 13, v: "sync" });
            tx.insert(table, { id: 13, v: "sync" });
          }),
        UniqueViolationError,
      );
      assert.equal(db.count(table, { v: "sync" }), 1);
      assert.throws(
        () => db.transaction((() => Promise.resolve(1)) as unknown as () => number),
        ValidationError,
      );
    });
  } finally {
    await setup.dropTable(table);
  }
});

async function createFlakyFunction(db: AsyncDatabase, failures: number): Promise<string> {
  const name = uniqueName("flaky");
  await db.execute(`CREATE SEQUENCE "${name}_seq"`);
  await db.execute(`
    CREATE FUNCTION "${name}"() RETURNS int LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('"${name}_seq"') <= ${failures} THEN
        RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001';
      END IF;
      RETURN 1;
    END $$`);
  return name;
}

async function dropFlakyFunction(db: AsyncDatabase, name: string): Promise<void> {
  await db.execute(`DROP FUNCTION IF EXISTS "${name}"(); DROP SEQUENCE IF EXISTS "${name}_seq"`);
}

Deno.test("Database.transaction() retries a 40001 with the same protocol as AsyncDatabase", async (t) => {
  await using setup = new AsyncDatabase(testUrl());
  const table = uniqueName("retry");
  await setup.createTable(table, { id: "SERIAL PRIMARY KEY", attempt: "INT" });
  const flaky = { async: "", sync: "" };
  flaky.async = await createFlakyFunction(setup, 2);
  flaky.sync = await createFlakyFunction(setup, 2);
  const forever = await createFlakyFunction(setup, 1_000_000);
  const options = { initialBackoff: 1, maxBackoff: 5 };
  try {
    await t.step("async", async () => {
      await using db = new AsyncDatabase(testUrl());
      let attempts = 0;
      const retries: number[] = [];
      const value = await db.transaction(async (tx: AsyncTransaction) => {
        attempts++;
        await tx.insert(table, { attempt: attempts });
        await tx.execute(`SELECT "${flaky.async}"()`);
        return attempts;
      }, { ...options, onRetry: (info) => retries.push(info.attempt) });
      assert.equal(value, 3);
      assert.deepEqual(retries, [1, 2]);
      const error = await caught(() =>
        db.transaction((tx) => tx.execute(`SELECT "${forever}"()`), { ...options, maxRetries: 2 })
      );
      assert.ok(error instanceof TransactionRetryError);
      assert.equal(error.attempts, 3);
      assert.equal((error.cause as DatabaseError).code, "40001");
    });
    await t.step("sync", () => {
      using db = new Database(testUrl());
      let attempts = 0;
      const retries: number[] = [];
      const value = db.transaction((tx) => {
        attempts++;
        tx.insert(table, { attempt: 100 + attempts });
        // A retryable error the callback catches still restarts the attempt.
        try {
          tx.execute(`SELECT "${flaky.sync}"()`);
        } catch (error) {
          assert.equal((error as DatabaseError).code, "40001");
        }
        return attempts;
      }, { ...options, onRetry: (info) => retries.push(info.attempt) });
      assert.equal(value, 3);
      assert.deepEqual(retries, [1, 2]);
      assert.throws(
        () =>
          db.transaction((tx) => tx.execute(`SELECT "${forever}"()`), {
            ...options,
            maxRetries: 2,
          }),
        (error: TransactionRetryError) => {
          assert.ok(error instanceof TransactionRetryError);
          assert.equal(error.attempts, 3);
          assert.equal((error.cause as DatabaseError).code, "40001");
          return true;
        },
      );
    });
    // Only the last attempt of each committed.
    assert.deepEqual(
      (await setup.select(table, { columns: ["attempt"], orderBy: "attempt" })).map((r) =>
        r.attempt
      ),
      [3, 103],
    );
  } finally {
    await setup.dropTable(table);
    for (const name of [flaky.async, flaky.sync, forever]) await dropFlakyFunction(setup, name);
  }
});

Deno.test("Database.transaction() serves calls on the database inside the callback from another connection", async (t) => {
  await using setup = new AsyncDatabase(testUrl());
  const table = uniqueName("nested");
  await setup.createTable(table, { id: "INT PRIMARY KEY" });
  try {
    await t.step("async", async () => {
      await using db = new AsyncDatabase(testUrl());
      const seen = await db.transaction(async (tx) => {
        await tx.insert(table, { id: 1 });
        return [await tx.count(table), await db.count(table)];
      });
      assert.deepEqual(seen, [1, 0]);
    });
    await t.step("sync", () => {
      using db = new Database(testUrl());
      const seen = db.transaction((tx) => {
        tx.insert(table, { id: 2 });
        // Another transaction on another connection, while this one stays open.
        const inner = db.transaction((tx2) => tx2.count(table, { id: 2 }));
        return [tx.count(table, { id: 2 }), db.count(table, { id: 2 }), inner];
      });
      assert.deepEqual(seen, [1, 0, 0]);
      assert.equal(db.count(table, { id: 2 }), 1);
    });
    await t.step("sync, with every connection held", () => {
      using db = new Database(testUrl(), { maxConnections: 1, minConnections: 1 });
      const error = db.transaction((tx) => {
        tx.insert(table, { id: 3 });
        return caughtSync(() => db.count(table));
      });
      assert.ok(error instanceof ConnectionError);
      assert.equal(error.code, "POOL_EXHAUSTED");
      assert.equal(db.count(table, { id: 3 }), 1);
    });
  } finally {
    await setup.dropTable(table);
  }
});

Deno.test("Database.transaction() retries a failed COMMIT and reports an ambiguous one as AsyncDatabase does", async (t) => {
  await using setup = new AsyncDatabase(testUrl());
  const table = uniqueName("commit");
  const sequence = `${table}_seq`;
  // Deferred constraint triggers run at COMMIT: the first insert's COMMIT of each run fails
  // with 40001 (counted by a sequence, which rollbacks do not undo); rows with ambiguous = true
  // fail their COMMIT with 40003 every time.
  await setup.execute(`
    CREATE SEQUENCE "${sequence}";
    CREATE TABLE "${table}" (id INT PRIMARY KEY, run TEXT, ambiguous BOOL DEFAULT false);
    CREATE FUNCTION "${table}_check"() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.ambiguous THEN
        RAISE EXCEPTION 'result is ambiguous' USING ERRCODE = '40003';
      END IF;
      IF nextval('"${sequence}"') % 2 = 1 THEN
        RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001';
      END IF;
      RETURN NEW;
    END $$;
    CREATE CONSTRAINT TRIGGER "${table}_trigger" AFTER INSERT ON "${table}"
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "${table}_check"();
  `);
  const options = { initialBackoff: 1, maxBackoff: 2 };
  try {
    await t.step("async", async () => {
      await using db = new AsyncDatabase(testUrl());
      let attempts = 0;
      await db.transaction(async (tx) => {
        attempts++;
        await tx.insert(table, { id: 1, run: "async" });
      }, options);
      assert.equal(attempts, 2);
      const error = await caught(() =>
        db.transaction((tx) => tx.insert(table, { id: 2, ambiguous: true }), options)
      );
      assert.equal(error.name, "AmbiguousCommitError");
      assert.equal((error as DatabaseError).code, "40003");
    });
    await t.step("sync", () => {
      using db = new Database(testUrl());
      let attempts = 0;
      db.transaction((tx) => {
        attempts++;
        tx.insert(table, { id: 11, run: "sync" });
      }, options);
      assert.equal(attempts, 2);
      const error = caughtSync(() =>
        db.transaction((tx) => tx.insert(table, { id: 12, ambiguous: true }), options)
      );
      assert.equal(error.name, "AmbiguousCommitError");
      assert.equal((error as DatabaseError).code, "40003");
    });
    assert.deepEqual(
      (await setup.select(table, { orderBy: "id", columns: ["id"] })).map((r) => r.id),
      [1, 11],
    );
  } finally {
    await setup.execute(
      `DROP TABLE "${table}"; DROP FUNCTION "${table}_check"(); DROP SEQUENCE "${sequence}"`,
    );
  }
});

Deno.test("Database.transaction() runs the callback again on a fresh connection when the server drops it", async (t) => {
  await using setup = new AsyncDatabase(testUrl());
  const table = uniqueName("dropped");
  await setup.createTable(table, { id: "INT PRIMARY KEY" });
  try {
    await t.step("async", async () => {
      await using db = new AsyncDatabase(testUrl());
      let attempts = 0;
      await db.transaction(async (tx) => {
        attempts++;
        await tx.insert(table, { id: attempts });
        if (attempts === 1) {
          const pid = (await tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid"))?.pid;
          await db.execute("SELECT pg_terminate_backend($1)", [pid]);
          await tx.execute("SELECT 1");
        }
      }, { initialBackoff: 1, maxBackoff: 2 });
      assert.equal(attempts, 2);
    });
    await t.step("sync", () => {
      using db = new Database(testUrl());
      let attempts = 0;
      db.transaction((tx) => {
        attempts++;
        tx.insert(table, { id: 10 + attempts });
        if (attempts === 1) {
          const pid = tx.queryOne<{ pid: number }>("SELECT pg_backend_pid() AS pid")?.pid;
          db.execute("SELECT pg_terminate_backend($1)", [pid]);
          tx.execute("SELECT 1");
        }
      }, { initialBackoff: 1, maxBackoff: 2 });
      assert.equal(attempts, 2);
      assert.deepEqual(db.execute("SELECT 1 AS one"), [{ one: 1 }]);
    });
    assert.deepEqual(
      (await setup.select(table, { orderBy: "id", columns: ["id"] })).map((r) => r.id),
      [2, 12],
    );
  } finally {
    await setup.dropTable(table);
  }
});
