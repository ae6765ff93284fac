// Test support for the AsyncDatabase tests (async_database*_test.ts): a database on the test
// server, a fresh table, a rejection of a given class, and the people table's rows.
import assert from "node:assert/strict";
import { AsyncDatabase, type DatabaseOptions, type Row } from "./async_database.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

export function openDb(options?: DatabaseOptions): AsyncDatabase {
  return new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 4, ...options });
}

/** Runs `fn` with a fresh database and a table created from `columns`, then drops it. */
export async function withTable(
  columns: Record<string, string>,
  fn: (db: AsyncDatabase, table: string) => Promise<void>,
  options?: DatabaseOptions,
): Promise<void> {
  await using db = openDb(options);
  const table = uniqueName("adb");
  await db.createTable(table, columns);
  try {
    await fn(db, table);
  } finally {
    await db.dropTable(table, { cascade: true });
  }
}

export async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
  check?: (error: E) => void,
): Promise<E> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof type, `expected ${type.name}, got ${Deno.inspect(caught)}`);
  check?.(caught);
  return caught;
}

export const PEOPLE = {
  id: "INT4 PRIMARY KEY",
  name: "TEXT NOT NULL",
  age: "INT4",
  city: "TEXT",
};

export const PEOPLE_ROWS = [
  { id: 1, name: "Ada", age: 36, city: "London" },
  { id: 2, name: "Grace", age: 85, city: null },
  { id: 3, name: "Alan", age: 41, city: "London" },
  { id: 4, name: "Edsger", age: null, city: "Austin" },
  { id: 5, name: "Barbara", age: 41, city: "Boston" },
];

export const ids = (rows: Row[]): unknown[] => rows.map((r) => r.id);
