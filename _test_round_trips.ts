// Test support for the round-trip tests (round_trips*_test.ts): a call's value or error, a fresh
// table and its ids, and a function that fails with 40001 a given number of times.
import { AsyncDatabase } from "./async_database.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

export async function outcome(fn: () => unknown): Promise<unknown> {
  try {
    return { value: await fn() };
  } catch (error) {
    return error;
  }
}

/** A table `(id INT PRIMARY KEY, n INT)`, dropped afterwards. */
export async function withTable(fn: (table: string) => Promise<void>): Promise<void> {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 1 });
  const table = uniqueName("trips");
  await admin.execute(`CREATE TABLE "${table}" (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)`);
  try {
    await fn(table);
  } finally {
    await admin.execute(`DROP TABLE IF EXISTS "${table}"`);
  }
}

export async function rows(table: string): Promise<number[]> {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 1 });
  return (await admin.execute<{ id: number }>(`SELECT id FROM "${table}" ORDER BY id`)).map((r) =>
    r.id
  );
}
/** A function `<name>(n)` that raises 40001 on its first `n` calls (a sequence counts them). */
export async function withFlaky(fn: (flaky: string) => Promise<void>): Promise<void> {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 1 });
  const flaky = uniqueName("flaky");
  await admin.execute(
    `CREATE SEQUENCE "${flaky}_seq";
     CREATE FUNCTION "${flaky}"(times int) RETURNS int LANGUAGE plpgsql AS $$
     BEGIN
       IF nextval('"${flaky}_seq"') <= times THEN
         RAISE EXCEPTION 'restart transaction (forced)' USING ERRCODE = '40001';
       END IF;
       RETURN 1;
     END $$`,
  );
  try {
    await fn(flaky);
  } finally {
    await admin.execute(`DROP FUNCTION "${flaky}"(int); DROP SEQUENCE "${flaky}_seq"`);
  }
}
