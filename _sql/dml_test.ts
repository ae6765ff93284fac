import assert from "node:assert/strict";
import { HOSTILE, HOSTILE_QUOTED, throwsValidation } from "../_test_util.ts";
import {
  buildCount,
  buildDelete,
  buildInsert,
  buildSelect,
  buildUpdate,
  buildUpsert,
} from "./dml.ts";
import type { Row, Where } from "./types.ts";

// buildSelect / buildCount

Deno.test("buildSelect() selects every column of a table", () => {
  assert.deepEqual(buildSelect("users"), { text: 'SELECT * FROM "users"', params: [] });
  assert.deepEqual(buildSelect("s.users", {}), { text: 'SELECT * FROM "s"."users"', params: [] });
});

Deno.test("buildSelect() quotes the column list", () => {
  assert.deepEqual(buildSelect("t", { columns: ["a", 'b"c'] }), {
    text: 'SELECT "a", "b""c" FROM "t"',
    params: [],
  });
});

Deno.test("buildSelect() puts WHERE, ORDER BY, LIMIT and OFFSET in order", () => {
  assert.deepEqual(
    buildSelect("t", {
      columns: ["id"],
      where: { active: true, age: { gte: 18 } },
      orderBy: "id DESC",
      limit: 10,
      offset: 20,
    }),
    {
      text:
        'SELECT "id" FROM "t" WHERE "active" = $1 AND "age" >= $2 ORDER BY "id" DESC LIMIT $3 OFFSET $4',
      params: [true, 18, 10, 20],
    },
  );
});

Deno.test("buildSelect() binds limit and offset alone", () => {
  assert.deepEqual(buildSelect("t", { limit: 5 }), {
    text: 'SELECT * FROM "t" LIMIT $1',
    params: [5],
  });
  assert.deepEqual(buildSelect("t", { offset: 5 }), {
    text: 'SELECT * FROM "t" OFFSET $1',
    params: [5],
  });
});

Deno.test("buildSelect() keeps limit 0", () => {
  assert.deepEqual(buildSelect("t", { limit: 0 }), {
    text: 'SELECT * FROM "t" LIMIT $1',
    params: [0],
  });
});

Deno.test("buildSelect() rejects a limit or offset that is not a non-negative safe integer", () => {
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, "5", null]) {
    throwsValidation(() => buildSelect("t", { limit: bad as number }), "limit");
    throwsValidation(() => buildSelect("t", { offset: bad as number }), "offset");
  }
});

Deno.test("buildSelect() rejects an empty column list", () => {
  throwsValidation(() => buildSelect("t", { columns: [] }), "columns");
  throwsValidation(() => buildSelect("t", { columns: [""] }), "columns");
});

Deno.test("buildSelect() rejects a bad table name with field table", () => {
  throwsValidation(() => buildSelect(""), "table");
  throwsValidation(() => buildSelect("a.b.c"), "table");
});

Deno.test("buildSelect() quotes a hostile table name", () => {
  assert.equal(buildSelect(HOSTILE).text, `SELECT * FROM ${HOSTILE_QUOTED}`);
});

Deno.test("buildCount() counts every row without a where", () => {
  assert.deepEqual(buildCount("users"), {
    text: 'SELECT count(*) AS "count" FROM "users"',
    params: [],
  });
});

Deno.test("buildCount() counts the rows of a where", () => {
  assert.deepEqual(buildCount("users", { active: true, role: ["a", "b"] }), {
    text: 'SELECT count(*) AS "count" FROM "users" WHERE "active" = $1 AND "role" = ANY($2)',
    params: [true, ["a", "b"]],
  });
});

// buildInsert

Deno.test("buildInsert() binds every value and returns the row", () => {
  assert.deepEqual(buildInsert("users", { name: "Ada", age: 36 }), {
    text: 'INSERT INTO "users" ("name", "age") VALUES ($1, $2) RETURNING *',
    params: ["Ada", 36],
  });
});

Deno.test("buildInsert() inserts DEFAULT VALUES for {}", () => {
  assert.deepEqual(buildInsert("users", {}), {
    text: 'INSERT INTO "users" DEFAULT VALUES RETURNING *',
    params: [],
  });
});

Deno.test("buildInsert() skips keys whose value is undefined, keeping null", () => {
  assert.deepEqual(buildInsert("t", { a: undefined, b: null, c: 1 }), {
    text: 'INSERT INTO "t" ("b", "c") VALUES ($1, $2) RETURNING *',
    params: [null, 1],
  });
  assert.deepEqual(buildInsert("t", { a: undefined }), {
    text: 'INSERT INTO "t" DEFAULT VALUES RETURNING *',
    params: [],
  });
});

Deno.test("buildInsert() gives identical text for the same shape and fresh params each time", () => {
  const first = buildInsert("t", { a: 1, b: 2 });
  const second = buildInsert("t", { a: 3, b: 4 });
  assert.equal(first.text, second.text);
  assert.deepEqual(first.params, [1, 2]);
  assert.deepEqual(second.params, [3, 4]);
  assert.notEqual(buildInsert("t", { b: 1, a: 2 }).text, first.text);
});

Deno.test("buildInsert() quotes hostile table and column names", () => {
  assert.deepEqual(buildInsert(HOSTILE, { [HOSTILE]: "v" }), {
    text: `INSERT INTO ${HOSTILE_QUOTED} (${HOSTILE_QUOTED}) VALUES ($1) RETURNING *`,
    params: ["v"],
  });
});

Deno.test("buildInsert() rejects a bad column with field data, even after caching the shape", () => {
  buildInsert("t", { b: 1, c: 2 });
  throwsValidation(() => buildInsert("t", { "b\0c": 1 }), "data");
  throwsValidation(() => buildInsert("t", { ["x".repeat(64)]: 1 }), "data");
  throwsValidation(() => buildInsert("", { a: 1 }), "table");
});

Deno.test("buildInsert() rejects data that is not a plain object", () => {
  throwsValidation(() => buildInsert("t", null as unknown as Row), "data");
  throwsValidation(() => buildInsert("t", [1] as unknown as Row), "data");
});

// buildUpdate / buildDelete

Deno.test("buildUpdate() binds the data first, then the where", () => {
  assert.deepEqual(buildUpdate("users", { name: "Ada", age: 37 }, { id: 7 }), {
    text: 'UPDATE "users" SET "name" = $1, "age" = $2 WHERE "id" = $3 RETURNING *',
    params: ["Ada", 37, 7],
  });
});

Deno.test("buildUpdate() accepts operators and null in the where", () => {
  assert.deepEqual(buildUpdate("t", { a: null }, { b: null, c: { lt: 3 } }), {
    text: 'UPDATE "t" SET "a" = $1 WHERE "b" IS NULL AND "c" < $2 RETURNING *',
    params: [null, 3],
  });
});

Deno.test("buildUpdate() skips undefined data values", () => {
  assert.deepEqual(buildUpdate("t", { a: undefined, b: 2 }, { id: 1 }), {
    text: 'UPDATE "t" SET "b" = $1 WHERE "id" = $2 RETURNING *',
    params: [2, 1],
  });
});

Deno.test("buildUpdate() rejects empty data with field data", () => {
  throwsValidation(
    () => buildUpdate("users", {}, { id: 1 }),
    "data",
    /^Cannot build UPDATE for "users": data is empty$/,
  );
  throwsValidation(() => buildUpdate("users", { a: undefined }, { id: 1 }), "data");
});

Deno.test("buildUpdate() rejects an empty or absent where with field where", () => {
  throwsValidation(
    () => buildUpdate("users", { a: 1 }, {}),
    "where",
    /^Cannot build UPDATE for "users": where is empty$/,
  );
  throwsValidation(() => buildUpdate("users", { a: 1 }, undefined as unknown as Where), "where");
  throwsValidation(() => buildUpdate("users", { a: 1 }, null as unknown as Where), "where");
});

Deno.test("buildUpdate() quotes hostile names", () => {
  assert.equal(
    buildUpdate(HOSTILE, { [HOSTILE]: 1 }, { [HOSTILE]: 2 }).text,
    `UPDATE ${HOSTILE_QUOTED} SET ${HOSTILE_QUOTED} = $1 WHERE ${HOSTILE_QUOTED} = $2 RETURNING *`,
  );
});

Deno.test("buildDelete() deletes the rows of a where without RETURNING", () => {
  assert.deepEqual(buildDelete("users", { id: [1, 2] }), {
    text: 'DELETE FROM "users" WHERE "id" = ANY($1)',
    params: [[1, 2]],
  });
  assert.deepEqual(buildDelete("s.t", { a: 1, b: { ne: null } }), {
    text: 'DELETE FROM "s"."t" WHERE "a" = $1 AND "b" IS NOT NULL',
    params: [1],
  });
});

Deno.test("buildDelete() rejects an empty or absent where with field where", () => {
  throwsValidation(
    () => buildDelete("users", {}),
    "where",
    /^Cannot build DELETE for "users": where is empty$/,
  );
  throwsValidation(() => buildDelete("users", undefined as unknown as Where), "where");
});

// buildUpsert

Deno.test("buildUpsert() uses UPSERT on CockroachDB without conflict columns", () => {
  assert.deepEqual(buildUpsert("t", { id: 1, a: "x" }, { dialect: "cockroach" }), {
    text: 'UPSERT INTO "t" ("id", "a") VALUES ($1, $2) RETURNING *',
    params: [1, "x"],
  });
});

Deno.test("buildUpsert() uses ON CONFLICT DO UPDATE with conflict columns", () => {
  const expected = {
    text:
      'INSERT INTO "t" ("id", "a", "b") VALUES ($1, $2, $3) ON CONFLICT ("id") DO UPDATE SET "a" = EXCLUDED."a", "b" = EXCLUDED."b" RETURNING *',
    params: [1, "x", "y"],
  };
  const data = { id: 1, a: "x", b: "y" };
  assert.deepEqual(
    buildUpsert("t", data, { conflictColumns: ["id"], dialect: "postgres" }),
    expected,
  );
  assert.deepEqual(
    buildUpsert("t", data, { conflictColumns: ["id"], dialect: "cockroach" }),
    expected,
  );
});

Deno.test("buildUpsert() accepts several conflict columns", () => {
  assert.equal(
    buildUpsert("t", { a: 1, b: 2, c: 3 }, { conflictColumns: ["b", "a"], dialect: "postgres" })
      .text,
    'INSERT INTO "t" ("a", "b", "c") VALUES ($1, $2, $3) ON CONFLICT ("b", "a") DO UPDATE SET "c" = EXCLUDED."c" RETURNING *',
  );
});

Deno.test("buildUpsert() sets the first conflict column to itself when nothing else is set", () => {
  assert.equal(
    buildUpsert("t", { a: 1, b: 2 }, { conflictColumns: ["b", "a"], dialect: "postgres" }).text,
    'INSERT INTO "t" ("a", "b") VALUES ($1, $2) ON CONFLICT ("b", "a") DO UPDATE SET "b" = EXCLUDED."b" RETURNING *',
  );
});

Deno.test("buildUpsert() requires conflict columns on PostgreSQL", () => {
  throwsValidation(
    () => buildUpsert("t", { id: 1 }, { dialect: "postgres" }),
    "conflictColumns",
    /required on PostgreSQL/,
  );
});

Deno.test("buildUpsert() rejects conflict columns that are empty, repeated or not in the data", () => {
  throwsValidation(
    () => buildUpsert("t", { id: 1 }, { conflictColumns: [], dialect: "postgres" }),
    "conflictColumns",
  );
  throwsValidation(
    () => buildUpsert("t", { id: 1 }, { conflictColumns: ["id", "id"], dialect: "postgres" }),
    "conflictColumns",
    /repeated/,
  );
  throwsValidation(
    () => buildUpsert("t", { id: 1 }, { conflictColumns: ["email"], dialect: "cockroach" }),
    "conflictColumns",
    /"email" is not in the data/,
  );
  throwsValidation(
    () =>
      buildUpsert("t", { id: undefined, a: 1 }, { conflictColumns: ["id"], dialect: "postgres" }),
    "conflictColumns",
  );
  throwsValidation(
    () => buildUpsert("t", { id: 1 }, { conflictColumns: [""], dialect: "postgres" }),
    "conflictColumns",
  );
});

Deno.test("buildUpsert() rejects empty data", () => {
  throwsValidation(() => buildUpsert("t", {}, { dialect: "cockroach" }), "data", /data is empty/);
  throwsValidation(() => buildUpsert("t", { a: undefined }, { dialect: "cockroach" }), "data");
});

Deno.test("buildUpsert() rejects an unknown dialect", () => {
  throwsValidation(
    () => buildUpsert("t", { a: 1 }, { dialect: "mysql" as "postgres" }),
    "dialect",
  );
});

Deno.test("buildUpsert() quotes hostile names in the conflict clause", () => {
  assert.equal(
    buildUpsert("t", { [HOSTILE]: 1, v: 2 }, { conflictColumns: [HOSTILE], dialect: "postgres" })
      .text,
    `INSERT INTO "t" (${HOSTILE_QUOTED}, "v") VALUES ($1, $2) ON CONFLICT (${HOSTILE_QUOTED}) DO UPDATE SET "v" = EXCLUDED."v" RETURNING *`,
  );
});
