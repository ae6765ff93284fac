// AsyncTable-only behaviour: lazy creation, shared first use, types. The scenarios both twins
// share are in table_test.ts, table_lifecycle_test.ts and table_transaction_test.ts.
import assert from "node:assert/strict";
import { AsyncDatabase } from "../async_database.ts";
import { testUrl, uniqueName } from "../_test_util.ts";
import { AsyncTable } from "./async_table.ts";
import { DatabaseError, TableNotInitializedError } from "../errors.ts";

interface Note {
  id: number;
  body: string | null;
  pinned: boolean;
}

const NOTE_SCHEMA = {
  id: "SERIAL PRIMARY KEY",
  body: "TEXT",
  pinned: "BOOLEAN NOT NULL DEFAULT false",
};

async function withDb(fn: (db: AsyncDatabase) => Promise<void>): Promise<void> {
  const db = new AsyncDatabase(testUrl(), { minConnections: 1 });
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

Deno.test("AsyncTable creates its table on first use, not in the constructor", async () => {
  await withDb(async (db) => {
    const name = uniqueName("at_lazy");
    try {
      const notes = new AsyncTable<Note>(name, { db, schema: NOTE_SCHEMA });
      assert.equal(await db.tableExists(name), false);
      assert.equal(await notes.count(), 0);
      assert.equal(await db.tableExists(name), true);
    } finally {
      await db.dropTable(name);
    }
  });
});

Deno.test("AsyncTable creates its table once when first uses run concurrently", async () => {
  await withDb(async (db) => {
    const name = uniqueName("at_once");
    try {
      // Without IF NOT EXISTS a second CREATE TABLE would fail: every call succeeding shows one.
      const notes = new AsyncTable<Note>(name, { db, schema: NOTE_SCHEMA, ifNotExists: false });
      const results = await Promise.all([
        notes.create({ body: "a" }),
        notes.create({ body: "b" }),
        notes.initialize(),
        notes.count(),
        notes.list(),
      ]);
      assert.equal(results.length, 5);
      assert.equal(await notes.count(), 2);
      await notes.initialize(); // already initialised: runs nothing
    } finally {
      await db.dropTable(name);
    }
  });
});

Deno.test("AsyncTable.initialize() returns the table and a failed first use can be retried", async () => {
  await withDb(async (db) => {
    const name = uniqueName("at_retry");
    try {
      const attached = new AsyncTable<Note>(name, { db });
      await assert.rejects(attached.initialize(), TableNotInitializedError);
      await assert.rejects(attached.count(), TableNotInitializedError);
      await db.createTable(name, NOTE_SCHEMA);
      assert.equal(await attached.initialize(), attached);
      assert.equal(await attached.count(), 0);
    } finally {
      await db.dropTable(name);
    }
  });
});

Deno.test("AsyncTable works on a database that has not connected yet", async () => {
  const db = new AsyncDatabase(testUrl(), { minConnections: 1 });
  const name = uniqueName("at_lazy_db");
  try {
    const notes = new AsyncTable<Note>(name, { db, schema: NOTE_SCHEMA });
    const note = await notes.create({ body: "hello" });
    assert.equal((await notes.read(note.id)).body, "hello");
  } finally {
    await db.dropTable(name);
    await db.close();
  }
});

Deno.test("AsyncTable with an invalid column type rejects on first use with DatabaseError", async () => {
  await withDb(async (db) => {
    const name = uniqueName("at_bad_type");
    const bad = new AsyncTable(name, { db, schema: { id: "INT PRIMARY KEY", x: "NO_SUCH_TYPE" } });
    await assert.rejects(bad.create({ id: 1 }), DatabaseError);
    await assert.rejects(bad.initialize(), DatabaseError);
    assert.equal(await db.tableExists(name), false);
  });
});

Deno.test("AsyncTable.withTransaction() takes only an AsyncTransaction", () => {
  const db = new AsyncDatabase(testUrl()); // never connects
  const notes = new AsyncTable<Note>(uniqueName("at_tx_type"), { db });
  assert.throws(
    () => notes.withTransaction(db as never),
    (error: unknown) =>
      error instanceof TypeError && /Cannot bind table .*AsyncTransaction/.test(error.message),
  );
});

Deno.test("AsyncTable carries the row type through its methods", async () => {
  await withDb(async (db) => {
    const name = uniqueName("at_types");
    try {
      const notes = new AsyncTable<Note>(name, { db, schema: NOTE_SCHEMA });
      const created: Note = await notes.create({ body: "typed" });
      const read: Note = await notes.read(created.id);
      const maybe: Note | null = await notes.get(created.id);
      const many: Note[] = await notes.list({ where: { pinned: false } });
      const _typeErrors = () => {
        // @ts-expect-error: body is a string or null
        notes.create({ body: 1 });
        // @ts-expect-error: no such column in Note
        notes.update(created.id, { title: "x" });
        // @ts-expect-error: read() resolves to a Note, not a string
        notes.read(1).then((note: string) => note);
      };
      assert.equal(read.body, "typed");
      assert.equal(maybe?.id, created.id);
      assert.equal(many.length, 1);
    } finally {
      await db.dropTable(name);
    }
  });
});
