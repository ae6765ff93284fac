// Test support for the sync Database tests (database*_test.ts): a scenario written once against
// the async surface and run through both APIs, the error a call throws, and a worker crashed on
// purpose.
import assert from "node:assert/strict";
import { AsyncDatabase, type AsyncQueryable } from "./async_database.ts";
import { Database, type SyncDatabaseOptions } from "./database.ts";
import type { CrashMode } from "./_bridge.ts";
import { bridgeRequest } from "./_internal.ts";
import { testUrl } from "./_test_util.ts";

// Every shared scenario is written once against the async surface and run through both APIs:
// `await` on the plain values of the sync `Database` returns them unchanged.
export type Scenario = (q: AsyncQueryable, mode: "async" | "sync") => Promise<void>;

export async function bothWays(
  t: Deno.TestContext,
  scenario: Scenario,
  options?: SyncDatabaseOptions,
): Promise<void> {
  await t.step("async", async () => {
    await using db = new AsyncDatabase(testUrl(), options);
    await scenario(db, "async");
  });
  await t.step("sync", async () => {
    using db = new Database(testUrl(), options);
    await scenario(db as unknown as AsyncQueryable, "sync");
  });
}

/** The error `fn` throws or rejects with. */
export async function caught(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected an error");
}

export function byId<T extends Record<string, unknown>>(rows: T[]): T[] {
  return [...rows].sort((a, b) => Number(a.id) - Number(b.id));
}

export function crash(db: Database, how: CrashMode): unknown {
  return bridgeRequest(db, { op: "crash", how, ms: 2000 });
}

export function caughtSync(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected an error");
}
