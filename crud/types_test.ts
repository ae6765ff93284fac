// Types that catch typos: with a row type, a table's `where`, `orderBy`, `columns` and data name
// only the row's columns, and operator values are checked against the column's type. Every
// `@ts-expect-error` line below is a typo that must not compile: `deno check` (and so `deno
// test`, which type-checks first) fails when one of them compiles. The lines that must compile
// also run, against the real server, so that each typed form is known to do what it says.
import assert from "node:assert/strict";
import {
  AsyncDatabase,
  AsyncTable,
  Database,
  type OrderBy,
  type Row,
  type SelectOptions,
  Table,
  type Where,
} from "../mod.ts";
import { testUrl, uniqueName } from "../_test_util.ts";

interface Todo {
  id: number;
  title: string;
  done: boolean;
  due: Date | null;
  note?: string | null;
  priority: "low" | "high";
}

const TODO_SCHEMA = {
  id: "INT4 PRIMARY KEY",
  title: "TEXT NOT NULL",
  done: "BOOLEAN NOT NULL DEFAULT false",
  due: "TIMESTAMPTZ",
  note: "TEXT",
  priority: "TEXT NOT NULL DEFAULT 'low'",
};

const JAN = new Date("2030-01-01T00:00:00Z");
const FEB = new Date("2030-02-01T00:00:00Z");

const TODOS: readonly Omit<Todo, "done">[] = [
  { id: 1, title: "Buy milk", due: JAN, note: null, priority: "low" },
  { id: 2, title: "Book flights", due: FEB, note: "window seat", priority: "high" },
  { id: 3, title: "Call Ada", due: null, note: null, priority: "high" },
];

function ids(rows: readonly { id: number }[]): number[] {
  return rows.map((row) => row.id);
}

Deno.test("Where<T>, OrderBy<T> and SelectOptions<T> name only T's columns", () => {
  const where: Where<Todo> = {
    id: { gte: 1, lt: 10, ne: [4, 5], in: [1, 2, 3] },
    title: { like: "B%" },
    due: { lt: FEB },
    note: null,
    priority: ["high"],
  };
  const orders: OrderBy<Todo>[] = [
    "title",
    "due DESC",
    "due desc nulls last",
    "due ASC NULLS FIRST",
    ["priority DESC", "id"],
    { priority: "desc", id: "asc" },
    // A comma-separated list is not checked: the array form is.
    "priority DESC, id",
  ];
  const options: SelectOptions<Todo> = { columns: ["id", "title"], where, orderBy: "id" };
  const _typos = () => {
    // @ts-expect-error: "titel" is not a column of Todo
    const _key: Where<Todo> = { titel: "Buy milk" };
    // @ts-expect-error: id is a number
    const _value: Where<Todo> = { id: "1" };
    // @ts-expect-error: gt on a number column takes a number
    const _gt: Where<Todo> = { id: { gt: "5" } };
    // @ts-expect-error: lt on a Date column takes a Date
    const _lt: Where<Todo> = { due: { lt: "2030-01-01" } };
    // @ts-expect-error: in on a number column takes numbers
    const _in: Where<Todo> = { id: { in: [1, "2"] } };
    // @ts-expect-error: like only on a string column
    const _like: Where<Todo> = { id: { like: "1%" } };
    // @ts-expect-error: "medium" is not a priority
    const _literal: Where<Todo> = { priority: { ne: "medium" } };
    // @ts-expect-error: "between" is not an operator
    const _operator: Where<Todo> = { id: { between: [1, 2] } };
    // @ts-expect-error: "titel" is not a column of Todo
    const _order: OrderBy<Todo> = "titel";
    // @ts-expect-error: "titel" is not a column of Todo
    const _orderDesc: OrderBy<Todo> = "titel DESC";
    // @ts-expect-error: "down" is not a direction
    const _direction: OrderBy<Todo> = "title down";
    // @ts-expect-error: "titel" is not a column of Todo
    const _orderItems: OrderBy<Todo> = ["id", "titel"];
    // @ts-expect-error: "titel" is not a column of Todo
    const _orderObject: OrderBy<Todo> = { titel: "asc" };
    // @ts-expect-error: "up" is not a direction
    const _orderObjectDirection: OrderBy<Todo> = { title: "up" };
    // @ts-expect-error: "titel" is not a column of Todo
    const _columns: SelectOptions<Todo> = { columns: ["id", "titel"] };
  };
  // Without a row type, anything goes, as before.
  const untyped: SelectOptions = {
    columns: ["anything"],
    where: { anything: { gt: "x", like: "y" }, other: [1, "2"] },
    orderBy: { whatever: "desc" },
  };
  const untypedOrder: OrderBy<Row> = "whatever DESC, other";
  assert.deepEqual(Object.keys(where), ["id", "title", "due", "note", "priority"]);
  assert.equal(orders.length, 7);
  assert.deepEqual(options.columns, ["id", "title"]);
  assert.deepEqual(untyped.columns, ["anything"]);
  assert.equal(untypedOrder, "whatever DESC, other");
});

Deno.test("AsyncTable<T> refuses typos at compile time and runs the typed forms", async () => {
  await using db = new AsyncDatabase(testUrl(), { minConnections: 1 });
  const name = uniqueName("types_async");
  const todos = new AsyncTable<Todo>(name, { db, schema: TODO_SCHEMA });
  const _typos = () => {
    // @ts-expect-error: misspelt where key
    todos.findOne({ titel: "Buy milk" });
    // @ts-expect-error: misspelt where key
    todos.list({ where: { dne: true } });
    // @ts-expect-error: misspelt where key
    todos.count({ titel: "x" });
    // @ts-expect-error: misspelt where key
    todos.deleteWhere({ titel: "x" });
    // @ts-expect-error: misspelt where key
    todos.updateWhere({ titel: "x" }, { done: true });
    // @ts-expect-error: misspelt update key
    todos.updateWhere({ id: 1 }, { dne: true });
    // @ts-expect-error: misspelt update key
    todos.update(1, { titel: "x" });
    // @ts-expect-error: misspelt orderBy column
    todos.list({ orderBy: "titel" });
    // @ts-expect-error: misspelt orderBy key
    todos.list({ orderBy: { titel: "asc" } });
    // @ts-expect-error: operator value of the wrong type
    todos.list({ where: { due: { gt: 5 } } });
    // @ts-expect-error: operator value of the wrong type
    todos.findOne({ done: { in: ["yes"] } });
    // @ts-expect-error: misspelt conflict column
    todos.upsert({ id: 1, title: "x" }, { conflictColumns: ["idd"] });
    // @ts-expect-error: misspelt upsert key
    todos.upsert({ id: 1, titel: "x" });
    // @ts-expect-error: misspelt key column
    todos.batchUpdate([{ id: 1, done: true }], { keyColumn: "idd" });
    // @ts-expect-error: misspelt batchUpdate key
    todos.batchUpdate([{ id: 1, dne: true }]);
  };
  try {
    await todos.batchCreate(TODOS);
    assert.deepEqual(
      ids(await todos.list({ where: { due: { lt: FEB } }, orderBy: "due DESC NULLS LAST" })),
      [1],
    );
    assert.deepEqual(ids(await todos.list({ orderBy: "due DESC NULLS LAST" })), [2, 1, 3]);
    assert.deepEqual(ids(await todos.list({ orderBy: ["priority DESC", "id DESC"] })), [1, 3, 2]);
    assert.deepEqual(ids(await todos.list({ orderBy: { id: "desc" } })), [3, 2, 1]);
    assert.deepEqual(ids(await todos.list({ orderBy: "priority ASC, id DESC" })), [3, 2, 1]);
    assert.equal((await todos.findOne({ title: { like: "Call%" } }))?.id, 3);
    assert.equal(await todos.count({ priority: { in: ["high"] }, note: null }), 1);
    assert.equal(await todos.count({ id: [1, 2], due: { ne: null } }), 2);
    assert.deepEqual(ids(await todos.updateWhere({ id: { in: [1] } }, { done: true })), [1]);
    assert.equal(
      (await todos.upsert({ id: 3, title: "Call Ada back" }, { conflictColumns: ["id"] })).title,
      "Call Ada back",
    );
    assert.deepEqual(
      (await todos.batchUpdate([{ id: 2, note: "aisle seat" }], { keyColumn: "id" }))
        .map((todo) => todo.note),
      ["aisle seat"],
    );
    assert.equal(await todos.deleteWhere({ done: true }), 1);
    assert.deepEqual(ids(await todos.list({ orderBy: "id" })), [2, 3]);
    // The untyped helpers of the database take any name, as before.
    assert.deepEqual(
      await db.select(name, { columns: ["id"], where: { id: { gt: 2 } }, orderBy: { id: "asc" } }),
      [{ id: 3 }],
    );
  } finally {
    await db.dropTable(name);
  }
});

Deno.test("Table<T> refuses typos at compile time and runs the typed forms", () => {
  using db = new Database(testUrl(), { minConnections: 1 });
  const name = uniqueName("types_sync");
  const todos = new Table<Todo>(name, { db, schema: TODO_SCHEMA });
  const _typos = () => {
    // @ts-expect-error: misspelt where key
    todos.findOne({ titel: "Buy milk" });
    // @ts-expect-error: misspelt where key
    todos.list({ where: { dne: true } });
    // @ts-expect-error: misspelt where key
    todos.count({ titel: "x" });
    // @ts-expect-error: misspelt where key
    todos.deleteWhere({ titel: "x" });
    // @ts-expect-error: misspelt update key
    todos.updateWhere({ id: 1 }, { dne: true });
    // @ts-expect-error: misspelt orderBy column
    todos.list({ orderBy: "titel DESC" });
    // @ts-expect-error: misspelt orderBy key
    todos.list({ orderBy: { titel: "asc" } });
    // @ts-expect-error: operator value of the wrong type
    todos.list({ where: { id: { gte: "1" } } });
    // @ts-expect-error: misspelt conflict column
    todos.upsert({ id: 1, title: "x" }, { conflictColumns: ["idd"] });
    // @ts-expect-error: misspelt key column
    todos.batchUpdate([{ id: 1, done: true }], { keyColumn: "idd" });
  };
  try {
    todos.batchCreate(TODOS);
    assert.deepEqual(ids(todos.list({ where: { id: { gte: 2 } }, orderBy: "id DESC" })), [3, 2]);
    assert.deepEqual(ids(todos.list({ orderBy: { priority: "asc", id: "desc" } })), [3, 2, 1]);
    assert.equal(todos.findOne({ title: { like: "Book%" } })?.id, 2);
    assert.equal(todos.count({ due: null }), 1);
    assert.deepEqual(ids(todos.updateWhere({ priority: "high" }, { done: true })), [2, 3]);
    assert.equal(todos.upsert({ id: 1, title: "Buy oat milk" }, { conflictColumns: ["id"] }).id, 1);
    assert.equal(todos.batchUpdate([{ id: 1, done: true }], { keyColumn: "id" }).length, 1);
    assert.equal(todos.deleteWhere({ done: true }), 3);
  } finally {
    db.dropTable(name);
  }
});
