// Single statements outside a transaction are sent again when the server answers 40001/40P01
// (their implicit transaction rolled back), with the pool's backoff and maxRetries.
import assert from "node:assert/strict";
import { AsyncDatabase, Database, DatabaseError, TransactionRetryError } from "./mod.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

/** A function that fails with `code` for its first `failures` calls (a sequence counts them). */
async function flaky(admin: AsyncDatabase, failures: number, code = "40001"): Promise<string> {
  const name = uniqueName("flaky");
  await admin.execute(`CREATE SEQUENCE ${name}_calls;
    CREATE FUNCTION ${name}() RETURNS int LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('${name}_calls') <= ${failures} THEN
          RAISE EXCEPTION 'conflict' USING ERRCODE = '${code}';
        END IF;
        RETURN currval('${name}_calls');
      END $$`);
  return name;
}

Deno.test("a single statement that fails with 40001 or 40P01 is sent again until it runs, once", async () => {
  await using db = new AsyncDatabase(testUrl(), { retry: { initialBackoff: 1, maxBackoff: 5 } });
  const table = uniqueName("sr");
  await db.execute(`CREATE TABLE ${table} (n INT)`);
  for (const code of ["40001", "40P01"]) {
    const fn = await flaky(db, 3, code);
    const rows = await db.execute<{ n: number }>(
      `INSERT INTO ${table} SELECT ${fn}() RETURNING n`,
      [],
    );
    assert.deepEqual(rows, [{ n: 4 }]);
    const viaParams = await flaky(db, 2, code);
    assert.deepEqual(await db.queryOne(`SELECT ${viaParams}() + $1::int AS n`, [10]), { n: 13 });
  }
  // The failed attempts rolled back: one row per statement.
  assert.deepEqual(
    await db.execute(`SELECT n FROM ${table} ORDER BY n`),
    [{ n: 4 }, { n: 4 }],
  );
});

Deno.test("a statement still failing after maxRetries throws TransactionRetryError with the attempts", async () => {
  await using db = new AsyncDatabase(testUrl(), {
    retry: { maxRetries: 2, initialBackoff: 1, maxBackoff: 2 },
  });
  const fn = await flaky(db, 100);
  await assert.rejects(() => db.execute(`SELECT ${fn}()`), (error: unknown) => {
    assert.ok(error instanceof TransactionRetryError, Deno.inspect(error));
    assert.equal(error.attempts, 3);
    assert.equal(error.code, "40001");
    assert.equal((error.cause as DatabaseError).code, "40001");
    return true;
  });
  assert.deepEqual(await db.queryOne(`SELECT currval('${fn}_calls')::int AS calls`), { calls: 3 });
});

Deno.test("retryStatements: false, and text of several statements, are not sent again", async () => {
  await using off = new AsyncDatabase(testUrl(), { retryStatements: false });
  const fn = await flaky(off, 1);
  await assert.rejects(
    () => off.execute(`SELECT ${fn}()`),
    (error: unknown) =>
      error instanceof DatabaseError && !(error instanceof TransactionRetryError) &&
      error.code === "40001",
  );
  await using on = new AsyncDatabase(testUrl(), { retry: { initialBackoff: 1 } });
  const script = await flaky(on, 1);
  await assert.rejects(
    () => on.execute(`SELECT 1; SELECT ${script}()`),
    (error: unknown) => error instanceof DatabaseError && error.code === "40001",
  );
  assert.throws(
    () => new AsyncDatabase(testUrl(), { retryStatements: "yes" as unknown as boolean }),
    DatabaseError,
  );
});

Deno.test("Database sends a single statement again on 40001, as AsyncDatabase does", async () => {
  await using admin = new AsyncDatabase(testUrl());
  const fn = await flaky(admin, 2);
  using db = new Database(testUrl(), { retry: { initialBackoff: 1, maxBackoff: 5 } });
  assert.deepEqual(db.queryOne(`SELECT ${fn}() AS n`), { n: 3 });
});

Deno.test("concurrent single-statement increments under serializable isolation all land, none twice", async () => {
  await using db = new AsyncDatabase(testUrl(), { maxConnections: 8 });
  const table = uniqueName("inc");
  await db.execute(`CREATE TABLE ${table} (id INT PRIMARY KEY, n INT NOT NULL)`);
  await db.execute(`INSERT INTO ${table} VALUES (1, 0)`);
  const increments = 200;
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < increments; i += 8) {
        await db.execute(`UPDATE ${table} SET n = n + 1 WHERE id = $1`, [1]);
      }
    }),
  );
  assert.deepEqual(await db.queryOne(`SELECT n FROM ${table}`), { n: increments });
});
