// Test support for the fault tests (faults*_test.ts): a deadline on a promise, the error a call
// throws, and a table whose COMMIT is slow.
import assert from "node:assert/strict";
import type { AsyncDatabase } from "./async_database.ts";
import { uniqueName } from "./_test_util.ts";

/** Fails instead of hanging: `promise` must settle within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Hung: ${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

export async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected an error");
}

/**
 * A table whose deferred constraint trigger sleeps in the first COMMIT that inserts into it
 * (a sequence, which rollbacks do not undo, counts the commits): that COMMIT is in flight long
 * enough to terminate its backend from elsewhere.
 */
export async function createSlowCommitTable(
  db: AsyncDatabase,
): Promise<{ table: string; drop(): Promise<void> }> {
  const table = uniqueName("slow_commit");
  await db.execute(`
    CREATE TABLE "${table}" (id INT PRIMARY KEY, note TEXT);
    CREATE SEQUENCE "${table}_commits";
    CREATE FUNCTION "${table}_gate"() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('"${table}_commits"') = 1 THEN PERFORM pg_sleep(30); END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER "${table}_slow" AFTER INSERT ON "${table}"
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "${table}_gate"();
  `);
  return {
    table,
    drop: () =>
      db.execute(`
        DROP TABLE IF EXISTS "${table}";
        DROP FUNCTION IF EXISTS "${table}_gate"();
        DROP SEQUENCE IF EXISTS "${table}_commits";
      `).then(() => {}),
  };
}
