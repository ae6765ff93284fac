// `undefined` in a `where` is refused with a ValidationError naming the key, by every helper
// that takes one, through every surface: AsyncDatabase, the sync Database (whose arguments cross
// the worker bridge), both transaction handles, AsyncTable and Table. Each run works on a table
// that holds a row whose `id` IS NULL, which is the row the old reading (`undefined` as
// `IS NULL`) updated and deleted; the table must come out of every run unchanged.
import assert from "node:assert/strict";
import { AsyncDatabase, type AsyncQueryable, type Row } from "./async_database.ts";
import { Database, type Queryable } from "./database.ts";
import { AsyncTable } from "./crud/async_table.ts";
import { Table } from "./crud/table.ts";
import { ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

const ROWS: readonly Row[] = [
  { id: 1, done: false },
  { id: null, done: false },
  { id: 2, done: false },
];

/** Each holds `undefined` somewhere the old code read as NULL (or, for `ne`, as NOT NULL). */
const BAD_WHERES: readonly { readonly where: Row; readonly message: RegExp }[] = [
  { where: { id: undefined }, message: /^Cannot use where: "id" is undefined \(use null/ },
  { where: { done: false, id: undefined }, message: /^Cannot use where: "id" is undefined/ },
  { where: { id: { ne: undefined } }, message: /^Cannot use where: "id" operator "ne"/ },
  { where: { id: { gte: 1, lt: undefined } }, message: /^Cannot use where: "id" operator "lt"/ },
  { where: { id: [1, undefined] }, message: /^Cannot use where: "id" holds undefined at index 1/ },
  { where: { id: { in: [undefined, 2] } }, message: /"id" operator "in" holds undefined at/ },
];

/** The where-taking calls of a database or transaction handle, sync or async. */
type Call = (where: Row) => unknown;

function databaseCalls(q: AsyncQueryable | Queryable, table: string): Record<string, Call> {
  return {
    update: (where) => q.update(table, { done: true }, where),
    delete: (where) => q.delete(table, where),
    select: (where) => q.select(table, { where }),
    selectOne: (where) => q.selectOne(table, { where }),
    count: (where) => q.count(table, where),
  };
}

function tableCalls(t: AsyncTable | Table): Record<string, Call> {
  return {
    findOne: (where) => t.findOne(where),
    updateWhere: (where) => t.updateWhere(where, { done: true }),
    deleteWhere: (where) => t.deleteWhere(where),
    list: (where) => t.list({ where }),
    count: (where) => t.count(where),
  };
}

function assertRefusal(error: unknown, context: string, message: RegExp): void {
  assert.ok(error instanceof ValidationError, `${context}: expected ValidationError, got ${error}`);
  // A bridge that dropped the key would send `{}` (refused as an empty where, field "where") or
  // no filter at all (no error): the field and the message tell these apart.
  assert.equal(error.field, "id", `${context}: field`);
  assert.match(error.message, message, context);
}

/** Runs every call with every bad where; each must throw (or reject) before anything is sent. */
async function refusesAll(calls: Record<string, Call>, api: string): Promise<void> {
  for (const [method, call] of Object.entries(calls)) {
    for (const { where, message } of BAD_WHERES) {
      const context = `${api}.${method}(${Deno.inspect(where)})`;
      let error: unknown;
      try {
        await call(where);
      } catch (e) {
        error = e;
      }
      assertRefusal(error, context, message);
    }
  }
}

/** The sync twin of {@linkcode refusesAll}, for a sync transaction callback. */
function refusesAllNow(calls: Record<string, Call>, api: string): void {
  for (const [method, call] of Object.entries(calls)) {
    for (const { where, message } of BAD_WHERES) {
      const context = `${api}.${method}(${Deno.inspect(where)})`;
      assert.throws(() => call(where), (error: unknown) => {
        assertRefusal(error, context, message);
        return true;
      });
    }
  }
}

async function withTable(
  fn: (admin: AsyncDatabase, table: string) => Promise<void> | void,
): Promise<void> {
  await using admin = new AsyncDatabase(testUrl(), { minConnections: 1 });
  const table = uniqueName("where_undef");
  await admin.createTable(table, { id: "INT", done: "BOOLEAN NOT NULL" });
  try {
    await admin.batchInsert(table, ROWS as Row[]);
    await fn(admin, table);
    // Nothing was updated or deleted, and null still means IS NULL.
    assert.deepEqual(
      await admin.execute(`SELECT id, done FROM "${table}" ORDER BY id NULLS FIRST`),
      [ROWS[1], ROWS[0], ROWS[2]],
    );
    assert.equal(await admin.count(table, { id: null }), 1);
  } finally {
    await admin.dropTable(table);
  }
}

Deno.test("AsyncDatabase refuses undefined in a where, naming the key, and changes nothing", async () => {
  await withTable(async (admin, table) => {
    await refusesAll(databaseCalls(admin, table), "AsyncDatabase");
    await assert.rejects(
      admin.update(table, { done: true }, { id: undefined }),
      /Cannot use where: "id" is undefined \(use null for IS NULL\)/,
    );
  });
});

Deno.test("AsyncTransaction refuses undefined in a where, and the transaction goes on", async () => {
  await withTable(async (admin, table) => {
    const after = await admin.transaction(async (tx) => {
      await refusesAll(databaseCalls(tx, table), "AsyncTransaction");
      // Nothing was sent, so the transaction is not aborted.
      return await tx.count(table, { id: null });
    });
    assert.equal(after, 1);
  });
});

Deno.test("Database (sync) refuses undefined in a where: the key crosses the worker bridge", async () => {
  await withTable(async (_admin, table) => {
    using db = new Database(testUrl(), { minConnections: 1 });
    await refusesAll(databaseCalls(db, table), "Database");
    assert.throws(
      () => db.delete(table, { id: undefined }),
      /Cannot use where: "id" is undefined \(use null for IS NULL\)/,
    );
    assert.equal(db.count(table, { id: null }), 1);
  });
});

Deno.test("Transaction (sync) refuses undefined in a where, and the transaction goes on", async () => {
  await withTable((_admin, table) => {
    using db = new Database(testUrl(), { minConnections: 1 });
    const after = db.transaction((tx) => {
      refusesAllNow(databaseCalls(tx, table), "Transaction");
      return tx.count(table, { id: null });
    });
    assert.equal(after, 1);
  });
});

Deno.test("AsyncTable refuses undefined in a where, naming the key, and changes nothing", async () => {
  await withTable(async (admin, table) => {
    const rows = new AsyncTable(table, { db: admin });
    await refusesAll(tableCalls(rows), "AsyncTable");
    assert.equal(await rows.count({ id: null }), 1);
  });
});

Deno.test("Table refuses undefined in a where, naming the key, and changes nothing", async () => {
  await withTable(async (_admin, table) => {
    using db = new Database(testUrl(), { minConnections: 1 });
    const rows = new Table(table, { db });
    await refusesAll(tableCalls(rows), "Table");
    assert.equal(rows.count({ id: null }), 1);
  });
});
