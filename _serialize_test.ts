// The parameter serializers alone (values_test.ts runs them against the server).
import assert from "node:assert/strict";
import {
  describeValue,
  jsonText,
  strictArray,
  strictSerializers,
  timestampText,
} from "./_serialize.ts";
import { ValidationError } from "./errors.ts";

function year(y: number, month = 0, day = 1): Date {
  const d = new Date(Date.UTC(2000, month, day));
  d.setUTCFullYear(y);
  return d;
}

Deno.test("timestampText() writes ISO 8601 for years 1-9999 and the era outside them", () => {
  assert.equal(timestampText(new Date("2024-02-29T12:34:56.789Z")), "2024-02-29T12:34:56.789Z");
  assert.equal(timestampText(year(1)), "0001-01-01T00:00:00.000Z");
  assert.equal(timestampText(year(0)), "0001-01-01T00:00:00.000Z BC");
  assert.equal(timestampText(year(-43, 2, 15)), "0044-03-15T00:00:00.000Z BC");
  assert.equal(timestampText(year(12345)), "12345-01-01T00:00:00.000Z");
  assert.throws(() => timestampText(new Date(NaN)), ValidationError);
});

Deno.test("jsonText() writes JSON values and refuses what JSON would change", () => {
  assert.equal(
    jsonText({ a: [1, "x", null, true], d: new Date(0) }),
    '{"a":[1,"x",null,true],"d":"1970-01-01T00:00:00.000Z"}',
  );
  assert.equal(jsonText("s"), '"s"');
  assert.equal(jsonText({ toJSON: () => ({ ok: 1 }) }), '{"ok":1}');
  assert.equal(jsonText({ gone: undefined }), "{}");
  class Money {
    toJSON() {
      return 1;
    }
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  for (
    const bad of [
      new Map(),
      { s: new Set([1]) },
      [NaN],
      { n: Infinity },
      { b: 1n },
      { f() {} },
      [Symbol("s")],
      new Money(),
      { m: new Money() },
      { toJSON: () => new Map() },
      cyclic,
      undefined,
    ]
  ) {
    assert.throws(() => jsonText(bad), ValidationError, Deno.inspect(bad));
  }
});

Deno.test("the serializers write by type and refuse objects without a text of their own", () => {
  const s = strictSerializers();
  const serializer = (oid: number) => {
    const serialize = s[oid];
    assert.ok(serialize, `a serializer for type ${oid}`);
    return serialize;
  };
  assert.equal(serializer(16)(true), "t");
  assert.equal(serializer(16)("yes"), "yes");
  assert.equal(serializer(25)(12n), "12");
  assert.equal(serializer(25)(false), "false");
  assert.equal(serializer(25)(new URL("https://x.test/a")), "https://x.test/a");
  assert.equal(serializer(1700)({ toString: () => "1.10" }), "1.10");
  assert.equal(serializer(1184)("infinity"), "infinity");
  assert.equal(serializer(17)(new Uint8Array([1, 255])), "\\x01ff");
  assert.equal(s.unknown("happy"), "happy");
  for (
    const [oid, bad] of [
      [25, { a: 1 }],
      [25, [1, 2]],
      [25, new Int16Array(2)],
      [25, new Map()],
      [23, true],
      [1184, 0],
      [16, { a: 1 }],
      [17, [1, 2]],
      [0, () => 1],
    ] as [number, unknown][]
  ) {
    assert.throws(() => serializer(oid)(bad), ValidationError, `${oid} ${Deno.inspect(bad)}`);
  }
  assert.throws(() => s.unknown({ a: 1 }), ValidationError);
  const array = strictArray((xs) => Array.isArray(xs) ? `{${xs.join(",")}}` : String(xs));
  assert.equal(array([1, 2]), "{1,2}");
  assert.equal(array("{a,b}"), "{a,b}");
  assert.throws(() => array({ a: 1 }), ValidationError);
});

Deno.test("describeValue() names scalars as written and anything else by its kind only", () => {
  const cases: [unknown, string][] = [
    ['users "x"\n', '"users \\"x\\"\\n"'],
    [-1.5, "-1.5"],
    [NaN, "NaN"],
    [10n, "10n"],
    [true, "true"],
    [null, "null"],
    [undefined, "undefined"],
    [Symbol("s"), "a symbol"],
    [() => 1, "a function"],
    [[1, 2], "an array"],
    [{ secret: "x" }, "an object"],
    [Object.create(null), "an object"],
    [new Map([["secret", 1]]), "a Map"],
    [new Date(0), "a Date"],
    [new Uint8Array(1), "a Uint8Array"],
    [new ArrayBuffer(1), "an ArrayBuffer"],
  ];
  for (const [value, expected] of cases) assert.equal(describeValue(value), expected);
});
