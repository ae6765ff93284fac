import assert from "node:assert/strict";
import { ValidationError } from "./errors.ts";
import {
  batchColumns,
  buildBatchInsert,
  buildBatchUpdate,
  buildCopyFrom,
  buildCount,
  buildCreateDatabase,
  buildCreateTable,
  buildDatabaseExists,
  buildDelete,
  buildDropDatabase,
  buildDropTable,
  buildInsert,
  buildOrderBy,
  buildSelect,
  buildTableExists,
  buildTruncate,
  buildUpdate,
  buildUpsert,
  buildWhere,
  encodeCopyText,
  MAX_BIND_PARAMETERS,
  type OrderBy,
  quoteIdentifier,
  quoteTableName,
  type Row,
  type Where,
} from "./_sql.ts";

const HOSTILE = 'a"; DROP TABLE x; --';
const HOSTILE_QUOTED = '"a""; DROP TABLE x; --"';

/** Asserts that `fn` throws a ValidationError with `field` (and a message matching `message`). */
function throwsValidation(fn: () => unknown, field: string | undefined, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ValidationError, `expected ValidationError, got ${error}`);
    assert.equal(error.field, field);
    assert.equal(error.code, "VALIDATION_ERROR");
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

function where(clause: Where | undefined): { text: string; params: unknown[] } {
  const params: unknown[] = [];
  return { text: buildWhere(clause, params), params };
}

// quoteIdentifier / quoteTableName

Deno.test("quoteIdentifier() wraps a name in double quotes", () => {
  assert.equal(quoteIdentifier("users"), '"users"');
  assert.equal(quoteIdentifier("CamelCase"), '"CamelCase"');
  assert.equal(quoteIdentifier("with space"), '"with space"');
});

Deno.test("quoteIdentifier() doubles embedded double quotes", () => {
  assert.equal(quoteIdentifier('na"me'), '"na""me"');
  assert.equal(quoteIdentifier('"'), '""""');
});

Deno.test("quoteIdentifier() quotes a hostile name instead of rejecting it", () => {
  assert.equal(quoteIdentifier(HOSTILE), HOSTILE_QUOTED);
  assert.equal(quoteIdentifier("x'; --"), `"x'; --"`);
});

Deno.test("quoteIdentifier() rejects an empty name", () => {
  throwsValidation(() => quoteIdentifier("", "table"), "table", /empty/);
});

Deno.test("quoteIdentifier() rejects a NUL byte", () => {
  throwsValidation(() => quoteIdentifier("a\0b", "data"), "data", /NUL/);
});

Deno.test("quoteIdentifier() rejects a lone surrogate", () => {
  throwsValidation(() => quoteIdentifier("a\ud800", "data"), "data", /surrogate/);
});

Deno.test("quoteIdentifier() rejects a non-string", () => {
  throwsValidation(() => quoteIdentifier(42 as unknown as string, "where"), "where", /string/);
  throwsValidation(() => quoteIdentifier(undefined as unknown as string), "identifier");
});

Deno.test("quoteIdentifier() accepts 63 UTF-8 bytes and rejects 64", () => {
  assert.equal(quoteIdentifier("a".repeat(63)), `"${"a".repeat(63)}"`);
  throwsValidation(() => quoteIdentifier("a".repeat(64), "table"), "table", /63 bytes \(64\)/);
  // 21 three-byte characters are 63 bytes; 22 are 66.
  assert.equal(quoteIdentifier("€".repeat(21)), `"${"€".repeat(21)}"`);
  throwsValidation(() => quoteIdentifier("€".repeat(22), "table"), "table", /\(66\)/);
  // 16 four-byte characters (32 UTF-16 units) are 64 bytes.
  throwsValidation(() => quoteIdentifier("😀".repeat(16), "table"), "table", /\(64\)/);
});

Deno.test("quoteTableName() quotes an unqualified name", () => {
  assert.equal(quoteTableName("users"), '"users"');
});

Deno.test("quoteTableName() splits schema.table on its one dot", () => {
  assert.equal(quoteTableName("audit.events"), '"audit"."events"');
  assert.equal(quoteTableName(`s.${HOSTILE}`), `"s".${HOSTILE_QUOTED}`);
});

Deno.test("quoteTableName() rejects more than one dot", () => {
  throwsValidation(() => quoteTableName("a.b.c"), "table", /"a\.b\.c"/);
  throwsValidation(() => quoteTableName("db.s.t", "name"), "name");
});

Deno.test("quoteTableName() rejects an empty part", () => {
  throwsValidation(() => quoteTableName(".t"), "table");
  throwsValidation(() => quoteTableName("s."), "table");
  throwsValidation(() => quoteTableName(""), "table");
});

Deno.test("quoteTableName() validates each part's length", () => {
  assert.equal(
    quoteTableName(`${"s".repeat(63)}.${"t".repeat(63)}`),
    `"${"s".repeat(63)}"."${"t".repeat(63)}"`,
  );
  throwsValidation(() => quoteTableName(`s.${"t".repeat(64)}`), "table");
});

// buildWhere

Deno.test("buildWhere() returns an empty clause for undefined or {}", () => {
  assert.deepEqual(where(undefined), { text: "", params: [] });
  assert.deepEqual(where({}), { text: "", params: [] });
});

Deno.test("buildWhere() turns a plain value into = $n", () => {
  assert.deepEqual(where({ id: 7 }), { text: ' WHERE "id" = $1', params: [7] });
});

Deno.test("buildWhere() joins conditions with AND in key order", () => {
  assert.deepEqual(where({ b: "x", a: true }), {
    text: ' WHERE "b" = $1 AND "a" = $2',
    params: ["x", true],
  });
});

Deno.test("buildWhere() numbers placeholders after the params already pushed", () => {
  const params: unknown[] = ["set"];
  assert.equal(buildWhere({ id: 1 }, params), ' WHERE "id" = $2');
  assert.deepEqual(params, ["set", 1]);
});

Deno.test("buildWhere() turns null into IS NULL", () => {
  assert.deepEqual(where({ deleted_at: null }), {
    text: ' WHERE "deleted_at" IS NULL',
    params: [],
  });
});

Deno.test("buildWhere() refuses an undefined value, naming the key", () => {
  throwsValidation(
    () => where({ id: undefined }),
    "id",
    /^Cannot use where: "id" is undefined \(use null for IS NULL\)$/,
  );
  // After other conditions too: the whole where is refused, not the rest of it kept.
  throwsValidation(() => where({ name: "x", deleted_at: undefined }), "deleted_at");
  throwsValidation(() => where({ [HOSTILE]: undefined }), HOSTILE, /"a\\"; DROP TABLE x; --"/);
});

Deno.test("buildWhere() refuses undefined as an operator's value, naming key and operator", () => {
  for (const op of ["gt", "gte", "lt", "lte", "in", "like"]) {
    throwsValidation(
      () => where({ id: { [op]: undefined } }),
      "id",
      new RegExp(`^Cannot use where: "id" operator "${op}" is undefined$`),
    );
  }
  // ne: undefined would otherwise read as IS NOT NULL, which matches nearly every row.
  throwsValidation(
    () => where({ id: { ne: undefined } }),
    "id",
    /^Cannot use where: "id" operator "ne" is undefined \(use null for IS NOT NULL\)$/,
  );
  throwsValidation(() => where({ id: { gte: 1, lt: undefined } }), "id", /"lt" is undefined/);
});

Deno.test("buildWhere() refuses undefined in an array, in, or ne list, naming the index", () => {
  throwsValidation(
    () => where({ id: [1, undefined, 3] }),
    "id",
    /^Cannot use where: "id" holds undefined at index 1$/,
  );
  throwsValidation(
    () => where({ id: { in: [undefined] } }),
    "id",
    /^Cannot use where: "id" operator "in" holds undefined at index 0$/,
  );
  throwsValidation(
    () => where({ id: { ne: [1, 2, undefined] } }),
    "id",
    /^Cannot use where: "id" operator "ne" holds undefined at index 2$/,
  );
  // A hole in a sparse array reads as undefined.
  // deno-lint-ignore no-sparse-arrays
  throwsValidation(() => where({ id: [1, , 3] }), "id", /at index 1$/);
});

Deno.test("buildWhere() keeps null as IS NULL, IS NOT NULL and an element of a list", () => {
  assert.deepEqual(where({ a: null, b: { ne: null }, c: [1, null], d: { in: [null] } }), {
    text: ' WHERE "a" IS NULL AND "b" IS NOT NULL AND "c" = ANY($1) AND "d" = ANY($2)',
    params: [[1, null], [null]],
  });
});

Deno.test("every builder that takes a where refuses undefined in it", () => {
  const bad = { id: undefined };
  throwsValidation(() => buildSelect("t", { where: bad }), "id", /"id" is undefined/);
  throwsValidation(() => buildUpdate("t", { done: true }, bad), "id", /"id" is undefined/);
  throwsValidation(() => buildDelete("t", bad), "id", /"id" is undefined/);
  throwsValidation(() => buildCount("t", bad), "id", /"id" is undefined/);
  throwsValidation(() => buildDelete("t", { id: { in: [1, undefined] } }), "id", /index 1/);
});

Deno.test("buildWhere() turns an array into = ANY($n) with one array parameter", () => {
  assert.deepEqual(where({ id: [1, 2, 3] }), {
    text: ' WHERE "id" = ANY($1)',
    params: [[1, 2, 3]],
  });
});

Deno.test("buildWhere() turns an empty array into FALSE", () => {
  assert.deepEqual(where({ id: [], name: "x" }), {
    text: ' WHERE FALSE AND "name" = $1',
    params: ["x"],
  });
});

Deno.test("buildWhere() maps every comparison operator", () => {
  assert.deepEqual(where({ a: { gt: 1 }, b: { gte: 2 }, c: { lt: 3 }, d: { lte: 4 } }), {
    text: ' WHERE "a" > $1 AND "b" >= $2 AND "c" < $3 AND "d" <= $4',
    params: [1, 2, 3, 4],
  });
  assert.deepEqual(where({ a: { ne: 5 }, b: { like: "x%" } }), {
    text: ' WHERE "a" <> $1 AND "b" LIKE $2',
    params: [5, "x%"],
  });
});

Deno.test("buildWhere() ANDs several operators of one column in key order", () => {
  assert.deepEqual(where({ age: { lt: 65, gte: 18 } }), {
    text: ' WHERE "age" < $1 AND "age" >= $2',
    params: [65, 18],
  });
});

Deno.test("buildWhere() turns ne: null into IS NOT NULL", () => {
  assert.deepEqual(where({ email: { ne: null } }), {
    text: ' WHERE "email" IS NOT NULL',
    params: [],
  });
});

Deno.test("buildWhere() turns ne: array into <> ALL($n), and an empty one into TRUE", () => {
  assert.deepEqual(where({ id: { ne: [1, 2] } }), {
    text: ' WHERE "id" <> ALL($1)',
    params: [[1, 2]],
  });
  assert.deepEqual(where({ id: { ne: [] } }), { text: " WHERE TRUE", params: [] });
});

Deno.test("buildWhere() turns in into = ANY($n), and an empty in into FALSE", () => {
  assert.deepEqual(where({ id: { in: ["a", "b"] } }), {
    text: ' WHERE "id" = ANY($1)',
    params: [["a", "b"]],
  });
  assert.deepEqual(where({ id: { in: [] } }), { text: " WHERE FALSE", params: [] });
});

Deno.test("buildWhere() treats Date, Uint8Array and bigint as plain values", () => {
  const date = new Date("2024-01-02T03:04:05Z");
  const bytes = new Uint8Array([1, 2]);
  assert.deepEqual(where({ at: date, blob: bytes, big: 9007199254740993n }), {
    text: ' WHERE "at" = $1 AND "blob" = $2 AND "big" = $3',
    params: [date, bytes, 9007199254740993n],
  });
});

Deno.test("buildWhere() rejects an operator object with an unknown key, naming the column", () => {
  throwsValidation(() => where({ meta: { a: 1 } }), "meta", /unknown operator "a"/);
  throwsValidation(() => where({ age: { gt: 1, between: [1, 2] } }), "age", /"between"/);
});

Deno.test("buildWhere() rejects an empty operator object", () => {
  throwsValidation(() => where({ meta: {} }), "meta", /empty/);
});

Deno.test("buildWhere() rejects in without an array and like without a string", () => {
  throwsValidation(() => where({ id: { in: 1 } }), "id", /"in" needs an array/);
  throwsValidation(() => where({ name: { like: 1 } }), "name", /"like" needs a string/);
});

Deno.test("buildWhere() rejects a null bound for gt, gte, lt and lte", () => {
  for (const op of ["gt", "gte", "lt", "lte"]) {
    throwsValidation(() => where({ age: { [op]: null } }), "age", new RegExp(`"${op}"`));
    throwsValidation(() => where({ age: { [op]: undefined } }), "age");
  }
});

Deno.test("buildWhere() quotes hostile keys", () => {
  assert.deepEqual(where({ [HOSTILE]: 1 }), {
    text: ` WHERE ${HOSTILE_QUOTED} = $1`,
    params: [1],
  });
});

Deno.test("buildWhere() rejects an invalid key with field where", () => {
  throwsValidation(() => where({ "": 1 }), "where");
  throwsValidation(() => where({ ["x".repeat(64)]: 1 }), "where");
});

Deno.test("buildWhere() rejects a where that is not a plain object", () => {
  throwsValidation(() => where("id = 1" as unknown as Where), "where");
  throwsValidation(() => where([1] as unknown as Where), "where");
});

Deno.test("buildWhere() gives the same text for the same shape with different values", () => {
  assert.equal(where({ a: 1, b: { gt: 2 } }).text, where({ a: 99, b: { gt: -5 } }).text);
});

// buildOrderBy

Deno.test("buildOrderBy() returns an empty clause for undefined", () => {
  assert.equal(buildOrderBy(undefined), "");
});

Deno.test("buildOrderBy() quotes a bare column", () => {
  assert.equal(buildOrderBy("name"), ' ORDER BY "name"');
});

Deno.test("buildOrderBy() upper-cases directions and NULLS", () => {
  assert.equal(buildOrderBy("age desc"), ' ORDER BY "age" DESC');
  assert.equal(buildOrderBy("a ASC, b Desc"), ' ORDER BY "a" ASC, "b" DESC');
  assert.equal(
    buildOrderBy("a desc nulls last,b NULLS first"),
    ' ORDER BY "a" DESC NULLS LAST, "b" NULLS FIRST',
  );
  assert.equal(buildOrderBy("  createdAt   DESC  "), ' ORDER BY "createdAt" DESC');
  assert.equal(buildOrderBy("_x$1"), ' ORDER BY "_x$1"');
});

Deno.test("buildOrderBy() reads each array element as a string form", () => {
  assert.equal(buildOrderBy(["a", "b DESC"]), ' ORDER BY "a", "b" DESC');
  assert.equal(buildOrderBy(["a, b", "c asc"]), ' ORDER BY "a", "b", "c" ASC');
});

Deno.test("buildOrderBy() quotes any column name in the object form", () => {
  assert.equal(buildOrderBy({ a: "asc", b: "DESC" }), ' ORDER BY "a" ASC, "b" DESC');
  assert.equal(buildOrderBy({ [HOSTILE]: "desc" }), ` ORDER BY ${HOSTILE_QUOTED} DESC`);
});

Deno.test("buildOrderBy() rejects SQL fragments in the string form", () => {
  const attacks = [
    "name; DROP TABLE users",
    "name -- comment",
    "(SELECT 1)",
    "lower(name)",
    '"name"',
    "name'",
    "t.name",
    "1",
    "name DESC DESC",
    "name sideways",
    "name NULLS",
    "name NULLS LAST DESC",
    "a,,b",
    "a,",
    "",
    "   ",
    "a /* x */",
    "CASE WHEN 1=1 THEN a END",
  ];
  for (const attack of attacks) {
    throwsValidation(() => buildOrderBy(attack), "orderBy");
  }
});

Deno.test("buildOrderBy() rejects empty and malformed forms", () => {
  throwsValidation(() => buildOrderBy([]), "orderBy", /empty array/);
  throwsValidation(() => buildOrderBy({}), "orderBy", /empty object/);
  throwsValidation(() => buildOrderBy(["a", 1] as unknown as OrderBy), "orderBy");
  throwsValidation(() => buildOrderBy(["a; --"]), "orderBy");
  throwsValidation(() => buildOrderBy(42 as unknown as OrderBy), "orderBy");
  throwsValidation(() => buildOrderBy(null as unknown as OrderBy), "orderBy");
});

Deno.test("buildOrderBy() validates the direction of the object form", () => {
  throwsValidation(
    () => buildOrderBy({ a: "desc; DROP TABLE x" } as unknown as OrderBy),
    "orderBy",
    /"asc" or "desc"/,
  );
  throwsValidation(() => buildOrderBy({ a: 1 } as unknown as OrderBy), "orderBy");
  throwsValidation(() => buildOrderBy({ "": "asc" }), "orderBy");
});

Deno.test("buildOrderBy() rejects a column over 63 bytes", () => {
  throwsValidation(() => buildOrderBy("a".repeat(64)), "orderBy");
});

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

// batchColumns

Deno.test("batchColumns() returns the first record's keys", () => {
  assert.deepEqual(batchColumns([{ a: 1, b: 2 }]), ["a", "b"]);
});

Deno.test("batchColumns() accepts the same keys in another order", () => {
  assert.deepEqual(batchColumns([{ a: 1, b: 2 }, { b: 3, a: 4 }]), ["a", "b"]);
});

Deno.test("batchColumns() names the record index and the differing keys", () => {
  throwsValidation(
    () => batchColumns([{ a: 1, b: 2 }, { a: 1, b: 2 }, { a: 1, c: 3 }]),
    "records",
    /record 2 .*missing "b"; unexpected "c"/,
  );
  throwsValidation(() => batchColumns([{ a: 1 }, { a: 1, b: 2 }]), "records", /record 1.*"b"/);
  throwsValidation(() => batchColumns([{ a: 1, b: 2 }, { a: 1 }]), "records", /missing "b"/);
});

Deno.test("batchColumns() counts an undefined value as an absent key", () => {
  assert.deepEqual(batchColumns([{ a: 1, b: undefined }, { a: 2 }]), ["a"]);
  throwsValidation(() => batchColumns([{ a: 1, b: 2 }, { a: 1, b: undefined }]), "records");
});

Deno.test("batchColumns() rejects no records, empty keys and non-objects", () => {
  throwsValidation(() => batchColumns([]), "records", /no records/);
  throwsValidation(() => batchColumns([{}, {}], "rows"), "rows", /no keys/);
  throwsValidation(() => batchColumns([{ a: 1 }, null as unknown as Row]), "records", /record 1/);
});

// buildBatchInsert

Deno.test("buildBatchInsert() returns no statement for no records", () => {
  assert.deepEqual(buildBatchInsert("t", []), []);
});

Deno.test("buildBatchInsert() builds one multi-row INSERT in input order", () => {
  assert.deepEqual(buildBatchInsert("t", [{ a: 1, b: 2 }, { b: 4, a: 3 }, { a: 5, b: 6 }]), [
    {
      text: 'INSERT INTO "t" ("a", "b") VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING *',
      params: [1, 2, 3, 4, 5, 6],
    },
  ]);
});

Deno.test("buildBatchInsert() leaves out RETURNING when returning is false", () => {
  assert.deepEqual(buildBatchInsert("t", [{ a: 1 }], { returning: false }), [
    { text: 'INSERT INTO "t" ("a") VALUES ($1)', params: [1] },
  ]);
});

Deno.test("buildBatchInsert() splits 3 columns × 50,000 records into 3 chunks under 65,534 params", () => {
  const records = Array.from({ length: 50_000 }, (_, i) => ({ a: i, b: `n${i}`, c: i % 2 === 0 }));
  const statements = buildBatchInsert("t", records, { returning: false });
  assert.equal(statements.length, 3);
  const perChunk = Math.floor(MAX_BIND_PARAMETERS / 3);
  assert.equal(perChunk, 21_844);
  assert.deepEqual(statements.map((s) => s.params.length / 3), [21_844, 21_844, 6_312]);
  for (const statement of statements) {
    assert.ok(statement.params.length <= MAX_BIND_PARAMETERS);
    const placeholders = statement.text.match(/\$\d+/g) ?? [];
    assert.equal(placeholders.length, statement.params.length);
    assert.equal(placeholders.at(-1), `$${statement.params.length}`);
  }
  // Every chunk restarts at $1 and the values keep the input order across chunks.
  assert.deepEqual(statements[1].params.slice(0, 3), [21_844, "n21844", true]);
  assert.deepEqual(statements[2].params.slice(-3), [49_999, "n49999", false]);
  assert.equal(statements[0].text, statements[1].text);
});

Deno.test("buildBatchInsert() fits exactly 65,534 params into one chunk", () => {
  const one = Array.from({ length: MAX_BIND_PARAMETERS }, (_, i) => ({ a: i }));
  assert.equal(buildBatchInsert("t", one).length, 1);
  assert.equal(buildBatchInsert("t", [...one, { a: -1 }]).length, 2);
  const two = Array.from({ length: 32_768 }, (_, i) => ({ a: i, b: i }));
  assert.deepEqual(buildBatchInsert("t", two).map((s) => s.params.length), [65_534, 2]);
});

Deno.test("buildBatchInsert() honours chunkSize", () => {
  const records = Array.from({ length: 5 }, (_, i) => ({ a: i }));
  const statements = buildBatchInsert("t", records, { chunkSize: 2 });
  assert.deepEqual(statements, [
    { text: 'INSERT INTO "t" ("a") VALUES ($1), ($2) RETURNING *', params: [0, 1] },
    { text: 'INSERT INTO "t" ("a") VALUES ($1), ($2) RETURNING *', params: [2, 3] },
    { text: 'INSERT INTO "t" ("a") VALUES ($1) RETURNING *', params: [4] },
  ]);
});

Deno.test("buildBatchInsert() keeps the parameter limit below a large chunkSize", () => {
  const records = Array.from({ length: 40_000 }, (_, i) => ({ a: i, b: i }));
  const statements = buildBatchInsert("t", records, { chunkSize: 1_000_000 });
  assert.deepEqual(statements.map((s) => s.params.length), [65_534, 14_466]);
});

Deno.test("buildBatchInsert() rejects a chunkSize that is not a positive integer", () => {
  for (const bad of [0, -1, 1.5, NaN, Infinity]) {
    throwsValidation(() => buildBatchInsert("t", [{ a: 1 }], { chunkSize: bad }), "chunkSize");
  }
});

Deno.test("buildBatchInsert() rejects records with differing keys", () => {
  throwsValidation(() => buildBatchInsert("t", [{ a: 1 }, { b: 1 }]), "records", /record 1/);
});

Deno.test("buildBatchInsert() builds UPSERT chunks on CockroachDB", () => {
  assert.deepEqual(
    buildBatchInsert("t", [{ id: 1, a: "x" }, { id: 2, a: "y" }], {
      upsert: { dialect: "cockroach" },
    }),
    [{
      text: 'UPSERT INTO "t" ("id", "a") VALUES ($1, $2), ($3, $4) RETURNING *',
      params: [1, "x", 2, "y"],
    }],
  );
});

Deno.test("buildBatchInsert() builds ON CONFLICT chunks with conflict columns", () => {
  const statements = buildBatchInsert("t", [{ id: 1, a: "x" }, { id: 2, a: "y" }, {
    id: 3,
    a: "z",
  }], {
    chunkSize: 2,
    upsert: { conflictColumns: ["id"], dialect: "postgres" },
  });
  assert.deepEqual(statements.map((s) => s.text), [
    'INSERT INTO "t" ("id", "a") VALUES ($1, $2), ($3, $4) ON CONFLICT ("id") DO UPDATE SET "a" = EXCLUDED."a" RETURNING *',
    'INSERT INTO "t" ("id", "a") VALUES ($1, $2) ON CONFLICT ("id") DO UPDATE SET "a" = EXCLUDED."a" RETURNING *',
  ]);
  assert.deepEqual(statements.map((s) => s.params), [[1, "x", 2, "y"], [3, "z"]]);
});

Deno.test("buildBatchInsert() requires conflict columns for a PostgreSQL upsert", () => {
  throwsValidation(
    () => buildBatchInsert("t", [{ id: 1 }], { upsert: { dialect: "postgres" } }),
    "conflictColumns",
  );
});

Deno.test("buildBatchInsert() quotes hostile names and rejects bad ones with field records", () => {
  assert.equal(
    buildBatchInsert(HOSTILE, [{ [HOSTILE]: 1 }])[0].text,
    `INSERT INTO ${HOSTILE_QUOTED} (${HOSTILE_QUOTED}) VALUES ($1) RETURNING *`,
  );
  throwsValidation(() => buildBatchInsert("t", [{ "": 1 }]), "records");
  throwsValidation(() => buildBatchInsert("a.b.c", [{ a: 1 }]), "table");
});

// buildBatchUpdate

Deno.test("buildBatchUpdate() returns no statement for no records", () => {
  assert.deepEqual(buildBatchUpdate("t", []), []);
});

Deno.test("buildBatchUpdate() builds one UPDATE per record in input order", () => {
  assert.deepEqual(
    buildBatchUpdate("users", [{ id: 1, name: "a", age: 2 }, { age: 5, id: 2 }]),
    [
      {
        text: 'UPDATE "users" SET "name" = $1, "age" = $2 WHERE "id" = $3 RETURNING *',
        params: ["a", 2, 1],
      },
      { text: 'UPDATE "users" SET "age" = $1 WHERE "id" = $2 RETURNING *', params: [5, 2] },
    ],
  );
});

Deno.test("buildBatchUpdate() uses another key column", () => {
  assert.deepEqual(buildBatchUpdate("t", [{ sku: "x", qty: 3 }], "sku"), [
    { text: 'UPDATE "t" SET "qty" = $1 WHERE "sku" = $2 RETURNING *', params: [3, "x"] },
  ]);
});

Deno.test("buildBatchUpdate() rejects a record without the key, naming its index", () => {
  throwsValidation(
    () => buildBatchUpdate("t", [{ id: 1, a: 1 }, { a: 2 }]),
    "records",
    /record 1 has no key column "id"/,
  );
  throwsValidation(() => buildBatchUpdate("t", [{ id: null, a: 2 }]), "records", /record 0/);
  throwsValidation(() => buildBatchUpdate("t", [{ id: undefined, a: 2 }]), "records");
});

Deno.test("buildBatchUpdate() rejects a record with nothing but the key", () => {
  throwsValidation(
    () => buildBatchUpdate("t", [{ id: 1, a: 1 }, { id: 2 }]),
    "records",
    /record 1 has nothing to set/,
  );
  throwsValidation(() => buildBatchUpdate("t", [{ id: 2, a: undefined }]), "records");
});

Deno.test("buildBatchUpdate() validates every record before returning any statement", () => {
  const records = [{ id: 1, a: 1 }, { id: 2, a: 2 }, { id: 3, "": 3 }];
  throwsValidation(() => buildBatchUpdate("t", records), "records");
  throwsValidation(() => buildBatchUpdate("t", [{ id: 1, a: 1 }], ""), "keyColumn");
});

Deno.test("buildBatchUpdate() quotes hostile names", () => {
  assert.equal(
    buildBatchUpdate(HOSTILE, [{ [HOSTILE]: 1, v: 2 }], HOSTILE)[0].text,
    `UPDATE ${HOSTILE_QUOTED} SET "v" = $1 WHERE ${HOSTILE_QUOTED} = $2 RETURNING *`,
  );
});

// DDL

Deno.test("buildCreateTable() keeps column order and type strings", () => {
  assert.equal(
    buildCreateTable("users", {
      id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
      balance: "DECIMAL(19,4) DEFAULT 0",
      status: "TEXT CHECK (status IN ('a', 'b'))",
      note: "TEXT DEFAULT ')('",
      owner: 'INT REFERENCES "Users"("id") ON DELETE CASCADE',
    }),
    `CREATE TABLE IF NOT EXISTS "users" ("id" UUID PRIMARY KEY DEFAULT gen_random_uuid(), "balance" DECIMAL(19,4) DEFAULT 0, "status" TEXT CHECK (status IN ('a', 'b')), "note" TEXT DEFAULT ')(', "owner" INT REFERENCES "Users"("id") ON DELETE CASCADE)`,
  );
});

Deno.test("buildCreateTable() leaves out IF NOT EXISTS on request", () => {
  assert.equal(
    buildCreateTable("s.t", { a: "INT" }, { ifNotExists: false }),
    'CREATE TABLE "s"."t" ("a" INT)',
  );
});

Deno.test("buildCreateTable() quotes hostile names", () => {
  assert.equal(
    buildCreateTable(HOSTILE, { [HOSTILE]: "TEXT" }),
    `CREATE TABLE IF NOT EXISTS ${HOSTILE_QUOTED} (${HOSTILE_QUOTED} TEXT)`,
  );
});

Deno.test("buildCreateTable() rejects unsafe or empty types with field columns", () => {
  const bad = [
    "TEXT; DROP TABLE x",
    "TEXT -- x",
    "TEXT /* x */",
    "TEXT\0",
    "",
    "   ",
    "TEXT)",
    "TEXT) INHERITS (other",
    "DECIMAL(10",
    "TEXT DEFAULT 'x",
    'INT REFERENCES "Users',
  ];
  for (const type of bad) {
    throwsValidation(() => buildCreateTable("t", { a: type }), "columns");
  }
  throwsValidation(() => buildCreateTable("t", { a: 1 as unknown as string }), "columns");
});

Deno.test("buildCreateTable() rejects no columns", () => {
  throwsValidation(() => buildCreateTable("t", {}), "columns", /no columns/);
});

Deno.test("buildCreateTable() rejects a bad column name with field columns", () => {
  throwsValidation(() => buildCreateTable("t", { "": "INT" }), "columns");
});

Deno.test("buildDropTable() defaults to IF EXISTS without CASCADE", () => {
  assert.equal(buildDropTable("users"), 'DROP TABLE IF EXISTS "users"');
  assert.equal(
    buildDropTable("s.users", { ifExists: false, cascade: true }),
    'DROP TABLE "s"."users" CASCADE',
  );
});

Deno.test("buildCreateDatabase() and buildDropDatabase() quote the name", () => {
  assert.equal(buildCreateDatabase("shop"), 'CREATE DATABASE IF NOT EXISTS "shop"');
  assert.equal(buildDropDatabase("shop"), 'DROP DATABASE IF EXISTS "shop"');
  assert.equal(buildDropDatabase(HOSTILE), `DROP DATABASE IF EXISTS ${HOSTILE_QUOTED}`);
  throwsValidation(() => buildCreateDatabase(""), "database");
});

Deno.test("buildCreateDatabase() leaves out IF NOT EXISTS for PostgreSQL, which lacks it", () => {
  assert.equal(buildCreateDatabase("shop", { dialect: "postgres" }), 'CREATE DATABASE "shop"');
  assert.equal(
    buildCreateDatabase("shop", { dialect: "cockroach" }),
    'CREATE DATABASE IF NOT EXISTS "shop"',
  );
});

Deno.test("buildDatabaseExists() binds the database name", () => {
  assert.deepEqual(buildDatabaseExists(HOSTILE), {
    text: 'SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists"',
    params: [HOSTILE],
  });
  throwsValidation(() => buildDatabaseExists("x".repeat(64)), "database");
});

Deno.test("buildTableExists() binds schema public for an unqualified name", () => {
  assert.deepEqual(buildTableExists("users"), {
    text:
      'SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2) AS "exists"',
    params: ["public", "users"],
  });
});

Deno.test("buildTableExists() binds the schema of a qualified name", () => {
  assert.deepEqual(buildTableExists("audit.events").params, ["audit", "events"]);
  assert.deepEqual(buildTableExists(HOSTILE).params, ["public", HOSTILE]);
  throwsValidation(() => buildTableExists("a.b.c"), "table");
});

Deno.test("buildTruncate() truncates the quoted table", () => {
  assert.equal(buildTruncate("users"), 'TRUNCATE TABLE "users"');
  assert.equal(buildTruncate("s.t"), 'TRUNCATE TABLE "s"."t"');
});

// COPY

Deno.test("buildCopyFrom() lists the quoted columns", () => {
  assert.equal(buildCopyFrom("users", ["id", "name"]), 'COPY "users" ("id", "name") FROM STDIN');
  assert.equal(
    buildCopyFrom(HOSTILE, [HOSTILE]),
    `COPY ${HOSTILE_QUOTED} (${HOSTILE_QUOTED}) FROM STDIN`,
  );
  throwsValidation(() => buildCopyFrom("t", []), "columns");
});

Deno.test("encodeCopyText() writes tab-separated, newline-terminated rows", () => {
  assert.equal(
    encodeCopyText([{ a: "x", b: 1 }, { b: 2, a: "y" }], ["a", "b"]),
    "x\t1\ny\t2\n",
  );
  assert.equal(encodeCopyText([], ["a"]), "");
});

Deno.test("encodeCopyText() writes \\N for null and undefined", () => {
  assert.equal(encodeCopyText([{ a: null, b: undefined }], ["a", "b"]), "\\N\t\\N\n");
  assert.equal(encodeCopyText([{ a: "\\N" }], ["a"]), "\\\\N\n");
});

Deno.test("encodeCopyText() escapes backslash, tab, newline and carriage return", () => {
  assert.equal(
    encodeCopyText([{ a: "a\\b\tc\nd\re" }], ["a"]),
    "a\\\\b\\tc\\nd\\re\n",
  );
  assert.equal(encodeCopyText([{ a: "\\." }], ["a"]), "\\\\.\n");
  // The escape state does not leak between values.
  assert.equal(encodeCopyText([{ a: "\t", b: "\t" }], ["a", "b"]), "\\t\t\\t\n");
});

Deno.test("encodeCopyText() encodes numbers, bigints and booleans", () => {
  assert.equal(
    encodeCopyText([{ a: 1.5, b: -2, c: 12345678901234567890n, d: true, e: false }], [
      "a",
      "b",
      "c",
      "d",
      "e",
    ]),
    "1.5\t-2\t12345678901234567890\ttrue\tfalse\n",
  );
});

Deno.test("encodeCopyText() encodes a Date as ISO 8601", () => {
  assert.equal(
    encodeCopyText([{ at: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)) }], ["at"]),
    "2024-01-02T03:04:05.006Z\n",
  );
});

Deno.test("encodeCopyText() encodes a Uint8Array as escaped bytea hex", () => {
  assert.equal(
    encodeCopyText([{ b: new Uint8Array([0, 1, 171, 255]) }], ["b"]),
    "\\\\x0001abff\n",
  );
  assert.equal(encodeCopyText([{ b: new Uint8Array() }], ["b"]), "\\\\x\n");
});

Deno.test("encodeCopyText() leaves objects to INSERT (JSON columns arrive as text)", () => {
  // batchInsert encodes JSON columns first; an object here is bound for another column.
  assert.equal(encodeCopyText([{ j: { a: 1 } }], ["j"]), null);
  assert.equal(encodeCopyText([{ j: Object.create(null) }], ["j"]), null);
  assert.equal(encodeCopyText([{ j: '{"a":"q\\"\\n"}' }], ["j"]), '{"a":"q\\\\"\\\\n"}\n');
});

Deno.test("encodeCopyText() writes years outside 1-9999 as PostgreSQL reads them", () => {
  const bc = new Date(Date.UTC(2000, 0, 1));
  bc.setUTCFullYear(-43); // 44 BC
  assert.equal(encodeCopyText([{ d: bc }], ["d"]), "0044-01-01T00:00:00.000Z BC\n");
  const far = new Date(Date.UTC(2000, 0, 1));
  far.setUTCFullYear(12345);
  assert.equal(encodeCopyText([{ d: far }], ["d"]), "12345-01-01T00:00:00.000Z\n");
});

Deno.test("encodeCopyText() returns null for values COPY cannot carry", () => {
  const cases: unknown[] = [
    "a\0b",
    [1, 2],
    NaN,
    Infinity,
    -Infinity,
    new Date(NaN),
    Symbol("s"),
    () => 1,
    new Map(),
    new ArrayBuffer(2),
    { big: 1n },
  ];
  for (const value of cases) {
    assert.equal(encodeCopyText([{ a: 1 }, { a: value }], ["a"]), null, String(value));
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.equal(encodeCopyText([{ a: cyclic }], ["a"]), null);
});
