import assert from "node:assert/strict";
import { HOSTILE, HOSTILE_QUOTED, throwsValidation } from "../_test_util.ts";
import { batchColumns, buildBatchInsert, buildBatchUpdate, MAX_BIND_PARAMETERS } from "./batch.ts";
import type { Row } from "./types.ts";

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
  const [first, second, third] = statements;
  assert.ok(first && second && third);
  assert.deepEqual(second.params.slice(0, 3), [21_844, "n21844", true]);
  assert.deepEqual(third.params.slice(-3), [49_999, "n49999", false]);
  assert.equal(first.text, second.text);
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
    buildBatchInsert(HOSTILE, [{ [HOSTILE]: 1 }])[0]?.text,
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
    buildBatchUpdate(HOSTILE, [{ [HOSTILE]: 1, v: 2 }], HOSTILE)[0]?.text,
    `UPDATE ${HOSTILE_QUOTED} SET "v" = $1 WHERE ${HOSTILE_QUOTED} = $2 RETURNING *`,
  );
});
