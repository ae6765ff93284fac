// The row operations of a table object, each scenario run through both twins (see
// _test_twins.ts): create, read, get, getMany, update, delete, list, count, findOne,
// updateWhere, deleteWhere, exists, upsert, batchCreate, batchUpdate and execute, with a custom
// primary key, and the refusals (a missing row, a duplicate, an id that would widen a filter).
// Making, attaching and dropping the table itself is in table_lifecycle_test.ts; binding to a
// transaction in table_transaction_test.ts.
import assert from "node:assert/strict";
import type { RecordId } from "./_table_common.ts";
import {
  DatabaseError,
  RecordNotFoundError,
  UniqueViolationError,
  ValidationError,
} from "../errors.ts";
import { fiveUsers, MISSING_ID, twins, type User, users } from "./_test_twins.ts";

Deno.test("Table.create() returns the inserted row with its defaults and id", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const user = await table.create({ name: "Ada", email: "ada@example.com", age: 36 });
    assert.equal(user.name, "Ada");
    assert.equal(user.email, "ada@example.com");
    assert.equal(user.age, 36);
    assert.equal(user.active, true);
    assert.match(user.id, /^[0-9a-f-]{36}$/);
  });
});

Deno.test("Table.read() returns the row and get() returns null for a missing id", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const user = await table.create({ name: "Ada" });
    assert.deepEqual(await table.read(user.id), user);
    assert.deepEqual(await table.get(user.id), user);
    assert.equal(await table.get(MISSING_ID), null);
  });
});

Deno.test("Table.read() throws RecordNotFoundError naming the table and the id", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await assert.rejects(
      async () => await table.read(MISSING_ID),
      (error: unknown) => {
        assert.ok(error instanceof RecordNotFoundError);
        assert.ok(error instanceof DatabaseError);
        assert.equal(error.tableName, table.name);
        assert.equal(error.id, MISSING_ID);
        assert.equal(error.message, `Record "${MISSING_ID}" not found in table "${table.name}"`);
        return true;
      },
    );
  });
});

Deno.test("Table.update() changes only the given fields and throws RecordNotFoundError for a missing id", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const user = await table.create({ name: "Ada", email: "ada@example.com", age: 36 });
    const updated = await table.update(user.id, { age: 37, active: false });
    assert.deepEqual(updated, { ...user, age: 37, active: false });
    assert.deepEqual(await table.read(user.id), updated);
    await assert.rejects(
      async () => await table.update(MISSING_ID, { age: 1 }),
      RecordNotFoundError,
    );
    await assert.rejects(async () => await table.update(user.id, {}), ValidationError);
  });
});

Deno.test("Table.delete() returns true for a row and false once it is gone", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const user = await table.create({ name: "Ada" });
    assert.equal(await table.delete(user.id), true);
    assert.equal(await table.get(user.id), null);
    assert.equal(await table.delete(user.id), false);
    assert.equal(await table.delete(MISSING_ID), false);
  });
});

Deno.test("Table.list() filters, orders, limits and offsets", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await fiveUsers(table);
    const ages = (rows: User[]) => rows.map((r) => r.age);
    assert.equal((await table.list()).length, 5);
    const exact = await table.list({ where: { age: 22 } });
    assert.deepEqual(exact.map((r) => r.name), ["User 2"]);
    assert.deepEqual(ages(await table.list({ orderBy: "age DESC" })), [24, 23, 22, 21, 20]);
    assert.equal((await table.list({ limit: 2 })).length, 2);
    assert.equal((await table.list({ offset: 3 })).length, 2);
    assert.deepEqual(ages(await table.list({ orderBy: "age", limit: 2, offset: 2 })), [22, 23]);
    assert.deepEqual(ages(await table.list({ where: { age: { gte: 23 } }, orderBy: "age" })), [
      23,
      24,
    ]);
    assert.deepEqual(
      ages(await table.list({ where: { active: false }, orderBy: { age: "desc" } })),
      [
        23,
        21,
      ],
    );
    assert.deepEqual(await table.list({ where: { age: 99 } }), []);
    assert.deepEqual(await table.list({ limit: 0 }), []);
    await assert.rejects(
      // @ts-expect-error: the typed orderBy refuses it at compile time; the run time refuses it too
      async () => await table.list({ orderBy: "age; DROP TABLE x" }),
      ValidationError,
    );
  });
});

Deno.test("Table.count() counts every row or the rows matching where", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    assert.equal(await table.count(), 0);
    await table.batchCreate([
      { name: "a", active: true },
      { name: "b", active: true },
      { name: "c", active: false },
    ]);
    assert.equal(await table.count(), 3);
    assert.equal(await table.count({ active: true }), 2);
    assert.equal(await table.count({ active: false }), 1);
  });
});

Deno.test("Table.batchCreate() and batchUpdate() keep input order and getMany() returns the rows", async (t) => {
  await twins(t, async (twin) => {
    interface Item {
      id: number;
      name: string;
      value: number;
    }
    const table = twin.subclass<Item>(twin.name("batch"), {
      id: "INT4 PRIMARY KEY",
      name: "TEXT NOT NULL",
      value: "INT4 NOT NULL",
    });
    const input = [5, 3, 1, 4, 2].map((id) => ({ id, name: `item ${id}`, value: id * 10 }));
    const created = await table.batchCreate(input);
    assert.deepEqual(created, input);
    const updated = await table.batchUpdate(created.map((r) => ({ id: r.id, value: r.value + 5 })));
    assert.deepEqual(updated, input.map((r) => ({ ...r, value: r.value + 5 })));
    const many = await table.getMany([4, 1, 99, 2, 3, 5]);
    assert.deepEqual(many.map((r) => r.id), [1, 2, 3, 4, 5]);
    assert.deepEqual(many.map((r) => r.value), [15, 25, 35, 45, 55]);
    await table.drop();
    assert.equal(await twin.tableExists(table.name), false);
  });
});

Deno.test("Table empty operations: create({}) inserts defaults and empty batches return []", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const empty = await table.create({});
    assert.match(empty.id, /^[0-9a-f-]{36}$/);
    assert.equal(empty.name, null);
    assert.equal(empty.active, true);
    assert.deepEqual(await table.batchCreate([]), []);
    assert.deepEqual(await table.batchUpdate([]), []);
    assert.deepEqual(await table.getMany([]), []);
    assert.equal(await table.count(), 1);
  });
});

Deno.test("Table.create() throws UniqueViolationError on a duplicate unique value", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await table.create({ name: "Ada", email: "ada@example.com" });
    await assert.rejects(
      async () => await table.create({ name: "Other", email: "ada@example.com" }),
      (error: unknown) => {
        assert.ok(error instanceof UniqueViolationError);
        assert.equal(error.code, "23505");
        assert.equal(error.constraint, `${table.name}_email_key`);
        return true;
      },
    );
    await table.create({ name: "No email" });
    assert.equal(await table.count(), 2);
  });
});

Deno.test("Table.execute() runs raw SQL and returns [] for statements without rows", async (t) => {
  await twins(t, async (twin) => {
    interface Sale {
      id: number;
      category: string;
      amount: string;
    }
    const sales = twin.table<Sale>(twin.name("sales"), {
      schema: { id: "SERIAL PRIMARY KEY", category: "TEXT NOT NULL", amount: "DECIMAL(10,2)" },
    });
    await sales.batchCreate([
      { category: "A", amount: "10.00" },
      { category: "B", amount: "5.50" },
      { category: "A", amount: "20.00" },
      { category: "B", amount: "4.50" },
      { category: "A", amount: "30.00" },
    ]);
    const totals = await sales.execute<{ category: string; total: string; count: bigint }>(
      `SELECT category, sum(amount) AS total, count(*) AS count FROM "${sales.name}"
        WHERE amount > $1 GROUP BY category ORDER BY category`,
      ["0"],
    );
    assert.deepEqual(totals, [
      { category: "A", total: "60.00", count: 3n },
      { category: "B", total: "10.00", count: 2n },
    ]);
    assert.deepEqual(
      await sales.execute(`INSERT INTO "${sales.name}" (category, amount) VALUES ('C', 1)`),
      [],
    );
    assert.equal((await sales.list({ where: { category: "C" } })).length, 1);
  });
});

Deno.test("Table.findOne(), updateWhere(), deleteWhere() and exists() work on conditions", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    const created = await fiveUsers(table);
    assert.equal((await table.findOne({ email: "user3@example.com" }))?.name, "User 3");
    assert.equal(await table.findOne({ email: "nobody@example.com" }), null);
    const renamed = await table.updateWhere({ active: false }, { name: "inactive" });
    assert.deepEqual(renamed.map((r) => r.age).sort(), [21, 23]);
    assert.equal(await table.count({ name: "inactive" }), 2);
    assert.deepEqual(await table.updateWhere({ age: 99 }, { name: "x" }), []);
    const [first] = created;
    assert.ok(first);
    assert.equal(await table.exists(first.id), true);
    assert.equal(await table.deleteWhere({ age: { lt: 22 } }), 2);
    assert.equal(await table.exists(first.id), false);
    assert.equal(await table.deleteWhere({ age: 99 }), 0);
    await assert.rejects(async () => await table.deleteWhere({}), ValidationError);
    await assert.rejects(async () => await table.updateWhere({}, { name: "all" }), ValidationError);
    assert.equal(await table.count(), 3);
  });
});

Deno.test("Table.upsert() inserts a row, then updates it on the same key", async (t) => {
  await twins(t, async (twin) => {
    const settings = twin.table<{ key: string; value: string }>(twin.name("settings"), {
      schema: { key: "TEXT PRIMARY KEY", value: "TEXT NOT NULL" },
      primaryKey: "key",
    });
    assert.deepEqual(await settings.upsert({ key: "theme", value: "light" }), {
      key: "theme",
      value: "light",
    });
    assert.deepEqual(await settings.upsert({ key: "theme", value: "dark" }), {
      key: "theme",
      value: "dark",
    });
    assert.deepEqual(await settings.list(), [{ key: "theme", value: "dark" }]);
  });
});

Deno.test("Table with a primaryKey option uses that column to find rows", async (t) => {
  await twins(t, async (twin) => {
    const codes = twin.table<{ code: string; label: string }>(twin.name("codes"), {
      schema: { code: "TEXT PRIMARY KEY", label: "TEXT NOT NULL" },
      primaryKey: "code",
    });
    assert.equal(codes.primaryKey, "code");
    await codes.batchCreate([{ code: "a", label: "A" }, { code: "b", label: "B" }]);
    assert.equal((await codes.read("a")).label, "A");
    assert.equal((await codes.update("b", { label: "Bee" })).label, "Bee");
    assert.deepEqual(await codes.batchUpdate([{ code: "a", label: "Ay" }]), [
      { code: "a", label: "Ay" },
    ]);
    assert.deepEqual((await codes.getMany(["b", "a"])).map((r) => r.code), ["a", "b"]);
    assert.equal(await codes.exists("b"), true);
    assert.equal(await codes.delete("a"), true);
    assert.equal(await codes.count(), 1);
  });
});

Deno.test("Table refuses an id that would widen its filter", async (t) => {
  await twins(t, async (twin) => {
    const table = users(twin);
    await fiveUsers(table);
    for (const id of [null, undefined, true, [MISSING_ID], { ne: MISSING_ID }]) {
      const bad = id as unknown as RecordId;
      await assert.rejects(async () => await table.delete(bad), ValidationError);
      await assert.rejects(async () => await table.read(bad), ValidationError);
      await assert.rejects(async () => await table.update(bad, { name: "x" }), ValidationError);
      await assert.rejects(async () => await table.exists(bad), ValidationError);
    }
    await assert.rejects(async () => await table.getMany([{ gt: 0 } as never]), ValidationError);
    assert.equal(await table.count(), 5);
    assert.equal(await table.count({ name: "x" }), 0);
  });
});
