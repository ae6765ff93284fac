import assert from "node:assert/strict";
import { HOSTILE, HOSTILE_QUOTED, throwsValidation } from "../_test_util.ts";
import { buildCopyFrom, encodeCopyText } from "./copy.ts";

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
