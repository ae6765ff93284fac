// Hostile where and orderBy shapes on the real server: thousands of generated conditions
// (operators, lists, NULLs, values a column's type refuses, hostile column names and LIKE
// patterns) and orderBy forms go through select() of both APIs, and now and then count(),
// update() and delete() in a rolled-back transaction. Each selects exactly the rows, in the
// order, that the model in _test_hostile_where.ts predicts, or is refused as it predicts.
//
// Inputs come from a seeded PRNG; the seed is printed, and HOSTILE_SEED=<seed> replays a run.
import assert from "node:assert/strict";
import type { AsyncDatabase, AsyncQueryable, Row } from "./async_database.ts";
import { Database } from "./database.ts";
import { ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  assertRefusal,
  Failures,
  hostileString,
  int,
  INT8_MAX,
  INT8_MIN,
  isValidText,
  outcome,
  pick,
  seedFor,
  show,
  SYSTEM_COLUMNS,
  withCanary,
} from "./_test_hostile.ts";
import {
  compare,
  condition,
  define,
  type ModelRow,
  orderBy,
  type OrderSpec,
  sortedBy,
  whereValue,
} from "./_test_hostile_where.ts";
import { prng } from "./soak/_bank.ts";

Deno.test("hostile where and orderBy shapes select exactly the rows a model selects, or are refused, through both APIs", async () => {
  const random = prng(seedFor("where shapes"));
  let tried = 0;
  let refused = 0;
  const failures = new Failures();
  await withCanary(async (db, canary) => {
    const collation = await db.queryOne<{ c: string }>(
      "SELECT datcollate AS c FROM pg_database WHERE datname = current_database()",
    );
    const codePointOrder = collation?.c === "C" || collation?.c === "POSIX";
    const table = uniqueName("shapes");
    await db.createTable(table, { id: "INT8 PRIMARY KEY", t: "TEXT", i: "INT8", u: "INT4" });
    const rows: ModelRow[] = [];
    for (let id = 1n; id <= 60n; id++) {
      let t: string | null = random() < 0.15 ? null : hostileString(random, canary, 0, 3);
      while (t !== null && !isValidText(t)) t = hostileString(random, canary, 0, 3);
      const i = random() < 0.15
        ? null
        : pick(random, [0n, 1n, -3n, 5n, 7n, INT8_MAX, INT8_MIN, BigInt(int(random, 20))]);
      rows.push({ id, t, i, u: null });
    }
    await db.batchInsert(table, rows as unknown as Row[]);
    const columns = ["id", "t", "i"];
    // The same shapes through one API: q is the AsyncDatabase or the sync Database.
    const shapes = async (q: AsyncQueryable, api: "async" | "sync", count: number) => {
      for (let n = 0; n < count && !failures.full; n++) {
        tried++;
        const where: Record<string, unknown> = {};
        for (let k = int(random, 3); k >= 0; k--) {
          let column = random() < 0.93
            ? pick(random, columns)
            : hostileString(random, canary, 0.1, 2);
          // System columns (ctid, xmin, …) exist on every table, with types of their own.
          while (SYSTEM_COLUMNS.has(column)) column = hostileString(random, canary, 0.1, 2);
          define(where, column, whereValue(column, random, canary, rows));
        }
        const order = orderBy(random, canary);
        const verdicts = Object.entries(where).map(([c, v]) => condition(c, v));
        const options = { where, orderBy: order.value } as Parameters<AsyncDatabase["select"]>[1];
        const context = `${api} select(where ${show(where)}, orderBy ${show(order.value)})`;
        await failures.check(async () => {
          const result = await outcome(() => q.select<ModelRow>(table, options));
          const validation = verdicts.includes("validation") || order.spec === "validation";
          if (validation) {
            assert.ok(
              result.error instanceof ValidationError,
              `${context} must throw ValidationError, got ${show(result.error ?? result.value)}`,
            );
            refused++;
            return;
          }
          if (verdicts.includes("reject") || order.spec === "reject") {
            assertRefusal(result.error, context);
            refused++;
            return;
          }
          // A condition that fails when a row reaches it: refused, or no row reached it.
          const maybe = verdicts.includes("maybe");
          if (maybe && result.error !== undefined) {
            assertRefusal(result.error, context);
            refused++;
            return;
          }
          assert.equal(result.error, undefined, `${context}: ${show(result.error)}`);
          const kept = maybe
            ? []
            : rows.filter((row) => verdicts.every((v) => (v as (r: ModelRow) => boolean)(row)));
          const got = result.value!;
          const textOrder = (order.spec as OrderSpec).some((s) => s.column === "t");
          assert.deepEqual(
            [...got].map((r) => r.id).sort(compare),
            kept.map((r) => r.id),
            `${context}: the rows`,
          );
          if (!textOrder || codePointOrder) {
            assert.ok(
              sortedBy(got, order.spec as OrderSpec),
              `${context}: the order ${show(got.map((r) => r.id))}`,
            );
          }
          // count(), and update()/delete() inside a rolled-back transaction, agree with select().
          if (n % 5 === 0 && !maybe) {
            assert.equal(await q.count(table, where as Row), kept.length, `count: ${context}`);
          }
          if (n % 10 === 0 && !maybe && Object.keys(where).length > 0) {
            const rollback = new Error("roll back");
            const counted = await outcome(() =>
              api === "sync"
                ? (q as unknown as Database).transaction((tx) => {
                  assert.equal(tx.update(table, { u: 1 }, where as Row).length, kept.length);
                  assert.equal(tx.delete(table, where as Row), kept.length);
                  throw rollback;
                })
                : db.transaction(async (tx) => {
                  assert.equal(
                    (await tx.update(table, { u: 1 }, where as Row)).length,
                    kept.length,
                  );
                  assert.equal(await tx.delete(table, where as Row), kept.length);
                  throw rollback;
                })
            );
            assert.equal(
              counted.error,
              rollback,
              `update/delete: ${context}: ${show(counted.error)}`,
            );
          }
        });
      }
    };
    try {
      await shapes(db, "async", 3000);
      using sync = new Database(testUrl(), { minConnections: 1, maxConnections: 2 });
      await shapes(sync as unknown as AsyncQueryable, "sync", 1000);
      // Nothing was changed by any of it.
      assert.deepEqual(await db.select(table, { orderBy: "id" }), rows);
    } finally {
      await db.dropTable(table);
    }
  });
  console.log(`where shapes: ${tried} tried, ${refused} refused`);
  failures.finish("where/orderBy shapes");
});
