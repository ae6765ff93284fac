import assert from "node:assert/strict";
import { HOSTILE, HOSTILE_QUOTED, throwsValidation } from "../_test_util.ts";
import { quoteIdentifier, quoteTableName } from "./identifiers.ts";

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
