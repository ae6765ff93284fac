import assert from "node:assert/strict";
import { HOSTILE, HOSTILE_QUOTED, throwsValidation } from "../_test_util.ts";
import { buildCount, buildDelete, buildSelect, buildUpdate } from "./dml.ts";
import type { OrderBy, Where } from "./types.ts";
import { buildOrderBy, buildWhere } from "./where.ts";

function where(clause: Where | undefined): { text: string; params: unknown[] } {
  const params: unknown[] = [];
  return { text: buildWhere(clause, params), params };
}

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
