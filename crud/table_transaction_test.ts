// A table object bound to a transaction by withTransaction(), as AsyncTable (t.step("async"))
// and as Table (t.step("sync"), without `await`, on the plain values): its calls run in the
// transaction, a throw rolls them back, a return commits them, and a subclass stays itself.
import assert from "node:assert/strict";
import { AsyncDatabase } from "../async_database.ts";
import { Database } from "../database.ts";
import { testUrl, uniqueName } from "../_test_util.ts";
import { AsyncTable } from "./async_table.ts";
import { Table } from "./table.ts";

Deno.test("Table.withTransaction() runs in the transaction: a throw rolls back, a return commits", async (t) => {
  await t.step("async", async () => {
    const db = new AsyncDatabase(testUrl(), { minConnections: 1 });
    const accounts = new AsyncTable<{ id: number; balance: number }>(uniqueName("acct_a"), {
      db,
      schema: { id: "INT4 PRIMARY KEY", balance: "INT4 NOT NULL" },
    });
    try {
      await accounts.batchCreate([{ id: 1, balance: 100 }, { id: 2, balance: 50 }]);
      await assert.rejects(
        db.transaction(async (tx) => {
          const bound = accounts.withTransaction(tx);
          assert.ok(bound instanceof AsyncTable);
          assert.equal(bound.db, tx);
          await bound.update(1, { balance: 75 });
          await bound.create({ id: 3, balance: 1 });
          assert.equal((await bound.read(1)).balance, 75);
          throw new RangeError("changed my mind");
        }),
        RangeError,
      );
      assert.equal((await accounts.read(1)).balance, 100);
      assert.equal(await accounts.exists(3), false);
      const moved = await db.transaction(async (tx) => {
        const bound = accounts.withTransaction(tx);
        await bound.update(1, { balance: 75 });
        await bound.update(2, { balance: 75 });
        return await bound.list({ orderBy: "id" });
      });
      assert.deepEqual(moved.map((r) => r.balance), [75, 75]);
      assert.deepEqual((await accounts.list({ orderBy: "id" })).map((r) => r.balance), [75, 75]);
    } finally {
      await accounts.drop();
      await db.close();
    }
  });
  await t.step("sync", () => {
    const db = new Database(testUrl(), { minConnections: 1 });
    const accounts = new Table<{ id: number; balance: number }>(uniqueName("acct_s"), {
      db,
      schema: { id: "INT4 PRIMARY KEY", balance: "INT4 NOT NULL" },
    });
    try {
      accounts.batchCreate([{ id: 1, balance: 100 }, { id: 2, balance: 50 }]);
      assert.throws(
        () =>
          db.transaction((tx) => {
            const bound = accounts.withTransaction(tx);
            assert.ok(bound instanceof Table);
            assert.equal(bound.db, tx);
            bound.update(1, { balance: 75 });
            bound.create({ id: 3, balance: 1 });
            assert.equal(bound.read(1).balance, 75);
            throw new RangeError("changed my mind");
          }),
        RangeError,
      );
      assert.equal(accounts.read(1).balance, 100);
      assert.equal(accounts.exists(3), false);
      const moved = db.transaction((tx) => {
        const bound = accounts.withTransaction(tx);
        bound.update(1, { balance: 75 });
        bound.update(2, { balance: 75 });
        return bound.list({ orderBy: "id" });
      });
      assert.deepEqual(moved.map((r) => r.balance), [75, 75]);
      assert.deepEqual(accounts.list({ orderBy: "id" }).map((r) => r.balance), [75, 75]);
    } finally {
      accounts.drop();
      db.close();
    }
  });
});

Deno.test("Table.withTransaction() of a subclass returns that subclass bound to the transaction", async (t) => {
  const schema = { id: "INT4 PRIMARY KEY", title: "TEXT NOT NULL" };
  await t.step("async", async () => {
    class Books extends AsyncTable<{ id: number; title: string }> {
      static override tableName = uniqueName("books_a");
      static override schema = schema;
      titles(): Promise<string[]> {
        return this.list({ orderBy: "id" }).then((rows) => rows.map((r) => r.title));
      }
    }
    const db = new AsyncDatabase(testUrl(), { minConnections: 1 });
    try {
      const books = new Books(db);
      await books.create({ id: 1, title: "Dune" });
      const titles = await db.transaction(async (tx) => {
        const bound = books.withTransaction(tx);
        assert.ok(bound instanceof Books);
        assert.equal(bound.name, Books.tableName);
        await bound.create({ id: 2, title: "Emma" });
        return await bound.titles();
      });
      assert.deepEqual(titles, ["Dune", "Emma"]);
    } finally {
      await db.dropTable(Books.tableName);
      await db.close();
    }
  });
  await t.step("sync", () => {
    class Books extends Table<{ id: number; title: string }> {
      static override tableName = uniqueName("books_s");
      static override schema = schema;
      titles(): string[] {
        return this.list({ orderBy: "id" }).map((r) => r.title);
      }
    }
    const db = new Database(testUrl(), { minConnections: 1 });
    try {
      const books = new Books(db);
      books.create({ id: 1, title: "Dune" });
      const titles = db.transaction((tx) => {
        const bound = books.withTransaction(tx);
        assert.ok(bound instanceof Books);
        bound.create({ id: 2, title: "Emma" });
        return bound.titles();
      });
      assert.deepEqual(titles, ["Dune", "Emma"]);
    } finally {
      db.dropTable(Books.tableName);
      db.close();
    }
  });
});
