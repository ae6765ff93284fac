// Hostile values through every write helper, on the real server: generated records (text with
// injection payloads, NULs and lone surrogates, deep and hostile JSON, bytes, int8 at and past
// its bounds, floats, numerics, timestamps, arrays) are written by insert, batchInsert, COPY,
// upsert, batchUpsert, update, batchUpdate, execute and a transaction, through AsyncDatabase and
// the sync Database. Each record either reads back exactly (select, selectOne, stream) or is
// refused with ValidationError or DatabaseError, as predicted, leaving nothing behind.
//
// Inputs come from a seeded PRNG; the seed is printed, and HOSTILE_SEED=<seed> replays a run.
import assert from "node:assert/strict";
import type { AsyncDatabase, AsyncQueryable, Row } from "./async_database.ts";
import { Database } from "./database.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  assertRefusal,
  type Canary,
  Failures,
  FRAGMENTS,
  hostileString,
  int,
  INT8_MAX,
  INT8_MIN,
  isValidText,
  outcome,
  pick,
  type Random,
  seedFor,
  show,
  withCanary,
  within,
} from "./_test_hostile.ts";
import { prng } from "./soak/_bank.ts";

type Expect = "roundtrip" | "reject" | "either";

const VALUE_COLUMNS = {
  id: "INT8 PRIMARY KEY",
  t: "TEXT",
  j: "JSONB",
  b: "BYTEA",
  i: "INT8",
  f: "FLOAT8",
  n: "NUMERIC",
  ts: "TIMESTAMPTZ",
  ta: "TEXT[]",
  ia: "INT8[]",
  bo: "BOOL",
} as const;
type ValueColumn = Exclude<keyof typeof VALUE_COLUMNS, "id">;
const VALUE_NAMES = Object.keys(VALUE_COLUMNS).filter((c) => c !== "id") as ValueColumn[];

interface Generated {
  readonly value: unknown;
  readonly expect: Expect;
  /** What comes back when it round-trips (default: the value itself). */
  readonly back?: unknown;
}

/**
 * `JSON.parse(JSON.stringify(value))` built without JSON.parse, which V8 (Deno 2.x) gets wrong
 * for some escaped keys (see _json.ts).
 */
function jsonCopy(value: unknown): unknown {
  if (typeof value === "number") return Number.isFinite(value) ? value + 0 : null;
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => v === undefined ? null : jsonCopy(v));
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, jsonCopy(v)]),
  );
}

/** Every string inside a JSON value (keys included). */
function jsonStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) { for (const item of value) jsonStrings(item, out); }
  else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      out.push(key);
      jsonStrings(item, out);
    }
  }
  return out;
}

function randomJson(random: Random, canary: Canary, depth: number): unknown {
  const roll = random();
  if (depth <= 0 || roll < 0.35) {
    const leaf = random();
    if (leaf < 0.35) return hostileString(random, canary, 0.01);
    if (leaf < 0.55) {
      return pick(random, [0, -1, 1.5, 1e21, 5e-324, Number.MAX_SAFE_INTEGER, -0.1, 1e300]);
    }
    if (leaf < 0.65) return random() < 0.5;
    if (leaf < 0.75) return null;
    if (leaf < 0.77) return "\u0000".repeat(int(random, 2)) + "x"; // \u0000 is refused by jsonb
    return String(int(random, 1000));
  }
  if (roll < 0.65) {
    return Array.from({ length: int(random, 5) }, () => randomJson(random, canary, depth - 1));
  }
  const object: Record<string, unknown> = {};
  for (let k = int(random, 5); k > 0; k--) {
    Object.defineProperty(object, hostileString(random, canary, 0.02, 2), {
      value: randomJson(random, canary, depth - 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return object;
}

function deepJson(levels: number): unknown {
  let value: unknown = "bottom";
  for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { [`k${i}`]: value };
  return value;
}

function generate(column: ValueColumn, random: Random, canary: Canary): Generated {
  if (random() < 0.08) return { value: null, expect: "roundtrip" };
  if (random() < 0.03) return { value: undefined, expect: "roundtrip", back: null };
  switch (column) {
    case "t": {
      const roll = random();
      const text = roll < 0.02
        ? "x".repeat(1 + int(random, 1_000_000))
        : roll < 0.04
        ? hostileString(random, canary, 0).repeat(2000)
        : hostileString(random, canary, 0.02);
      return { value: text, expect: isValidText(text) ? "roundtrip" : "reject" };
    }
    case "j": {
      const roll = random();
      const value = roll < 0.03
        ? deepJson(200 + int(random, 800))
        : roll < 0.1
        ? hostileString(random, canary, 0) // a top-level JSON string
        : roll < 0.13
        ? JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": 1}}')
        : roll < 0.16
        ? { big: 1n }
        : randomJson(random, canary, 5);
      if (value === null) return { value, expect: "roundtrip" };
      try {
        JSON.stringify(value);
      } catch {
        return { value, expect: "reject" }; // a bigint inside
      }
      const valid = jsonStrings(value).every(isValidText);
      return { value, expect: valid ? "roundtrip" : "reject", back: jsonCopy(value) };
    }
    case "b": {
      const length = random() < 0.02 ? 200_000 : int(random, 300);
      const bytes = new Uint8Array(length);
      for (let k = 0; k < length; k++) bytes[k] = int(random, 256);
      return { value: bytes, expect: "roundtrip" };
    }
    case "i": {
      const roll = random();
      if (roll < 0.5) {
        return {
          value: pick(random, [0n, 1n, -1n, INT8_MAX, INT8_MIN, 2n ** 53n + 1n, -(2n ** 31n)]),
          expect: "roundtrip",
        };
      }
      if (roll < 0.58) {
        const value = pick(random, [INT8_MAX + 1n, INT8_MIN - 1n, 2n ** 64n, -(10n ** 30n)]);
        return { value, expect: "reject" };
      }
      if (roll < 0.75) {
        const value = pick(random, [0, 42, -7, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);
        return { value, expect: "roundtrip", back: BigInt(value) };
      }
      if (roll < 0.9) return { value: "12345", expect: "roundtrip", back: 12345n };
      return {
        value: pick(random, [1.5, "1.5", "abc", "", "1; DROP TABLE x", NaN]),
        expect: "reject",
      };
    }
    case "f": {
      const value = pick(random, [
        0,
        -0,
        1.5,
        -2.25,
        0.1 + 0.2,
        NaN,
        Infinity,
        -Infinity,
        Number.MAX_VALUE,
        Number.MIN_VALUE,
        -1e-300,
        123456789.123456789,
        random() * 1e6 - 5e5,
      ]);
      return { value, expect: "roundtrip" };
    }
    case "n": {
      const value = pick(random, [
        "0",
        "1.50",
        "-123.4500",
        "123456789012345678901234567890.123456789012345678901234567890",
        "NaN",
        "0.000000000000000000000000000001",
        "99999999999999999999",
      ]);
      return { value, expect: "roundtrip" };
    }
    case "ts": {
      const roll = random();
      if (roll < 0.04) return { value: new Date(Number.NaN), expect: "reject" };
      if (roll < 0.14) {
        // Years 1 to 99 (Date.UTC would read them as 1901 to 1999).
        const value = new Date(Date.UTC(2000, 0, 1, 1, 2, 3));
        value.setUTCFullYear(1 + int(random, 99), int(random, 12), 1 + int(random, 28));
        return { value, expect: "roundtrip" };
      }
      if (roll < 0.25) return { value: new Date("9999-12-31T23:59:59.999Z"), expect: "roundtrip" };
      const value = new Date(Date.UTC(1900, 0, 1) + Math.floor(random() * 1e13));
      return { value, expect: "roundtrip" };
    }
    case "ta": {
      const value = Array.from(
        { length: int(random, 6) },
        () =>
          random() < 0.15 ? null : pick(random, [
            "NULL",
            "",
            "{}",
            "a,b",
            '"',
            "\\",
            ...FRAGMENTS,
            hostileString(random, canary, 0.02),
          ]),
      );
      const valid = value.every((item) => item === null || isValidText(item));
      return { value, expect: valid ? "roundtrip" : "reject" };
    }
    case "ia": {
      const roll = random();
      if (roll < 0.6) {
        const value = Array.from(
          { length: 1 + int(random, 4) },
          () => pick(random, [1n, -1n, INT8_MAX, INT8_MIN, 0n]),
        );
        return { value, expect: "roundtrip" };
      }
      if (roll < 0.8) {
        const value = Array.from({ length: 1 + int(random, 4) }, () => int(random, 1000));
        return { value, expect: "roundtrip", back: value.map(BigInt) };
      }
      if (roll < 0.95) return { value: [], expect: "roundtrip" };
      return { value: [1n, INT8_MAX + 1n], expect: "reject" };
    }
    case "bo":
      return { value: random() < 0.5, expect: "roundtrip" };
  }
}

interface Case {
  readonly record: Row;
  readonly expected: Row;
  readonly expect: Expect;
  readonly why: string[];
}

function makeCase(id: bigint, random: Random, canary: Canary): Case {
  const record: Row = { id };
  const expected: Row = { id };
  const why: string[] = [];
  let expect: Expect = "roundtrip";
  // Some records fill every column, most a few: failures then point at the culprit.
  const columns = random() < 0.3 ? VALUE_NAMES : VALUE_NAMES.filter(() => random() < 0.35);
  for (const column of VALUE_NAMES) {
    if (!columns.includes(column)) {
      expected[column] = null;
      continue;
    }
    const generated = generate(column, random, canary);
    record[column] = generated.value;
    expected[column] = "back" in generated ? generated.back : generated.value;
    if (generated.expect !== "roundtrip") {
      why.push(column);
      if (generated.expect === "reject" || expect === "roundtrip") expect = generated.expect;
    }
  }
  return { record, expected, expect, why };
}

type Helper =
  | "insert"
  | "batchInsert"
  | "copy"
  | "upsert"
  | "batchUpsert"
  | "update"
  | "batchUpdate"
  | "execute"
  | "transaction";
const HELPERS: readonly Helper[] = [
  "insert",
  "batchInsert",
  "copy",
  "upsert",
  "batchUpsert",
  "update",
  "batchUpdate",
  "execute",
  "transaction",
];

/** Every column, absent and undefined ones as null: batches need the same keys in each record. */
function full(record: Row): Row {
  return Object.fromEntries([["id", record.id], ...VALUE_NAMES.map((c) => [c, record[c] ?? null])]);
}

/** Writes `cases` with one helper; answers the rows the helper returned (if it returns rows). */
async function write(
  q: AsyncQueryable,
  sync: boolean,
  table: string,
  helper: Helper,
  cases: readonly Case[],
): Promise<Row[] | undefined> {
  const records = cases.length === 1
    ? cases.map((c) => c.record)
    : cases.map((c) => full(c.record));
  const [first] = records;
  assert.ok(first, "one record at least");
  switch (helper) {
    case "insert":
      return [await q.insert(table, first)];
    case "batchInsert":
      return await q.batchInsert(table, records);
    case "copy":
      assert.equal(await q.batchInsert(table, records, { returning: false }), records.length);
      return undefined;
    case "upsert":
      // Insert a placeholder first: the upsert then updates every column.
      await q.insert(table, { id: first.id, t: "placeholder", bo: true });
      return [await q.upsert(table, full(first), { conflictColumns: ["id"] })];
    case "batchUpsert":
      return await q.batchUpsert(table, records, { conflictColumns: ["id"] });
    case "update": {
      await q.insert(table, { id: first.id });
      const { id, ...data } = first;
      const defined = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
      if (Object.keys(defined).length === 0) return undefined;
      return await q.update(table, defined, { id: id as bigint });
    }
    case "batchUpdate": {
      await q.batchInsert(table, records.map((r) => ({ id: r.id })));
      return await q.batchUpdate(table, records.map(full));
    }
    case "execute": {
      const columns = Object.keys(first).filter((c) => first[c] !== undefined);
      return await q.execute(
        `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) VALUES (${
          columns.map((_, i) => `$${i + 1}`).join(", ")
        }) RETURNING *`,
        columns.map((c) => first[c]),
      );
    }
    case "transaction":
      if (sync) {
        return (q as unknown as Database).transaction((tx) => {
          const row = tx.insert(table, first);
          assert.deepEqual(tx.selectOne(table, { where: { id: first.id as bigint } }), row);
          return [row];
        });
      }
      return await (q as AsyncDatabase).transaction(async (tx) => {
        const row = await tx.insert(table, first);
        assert.deepEqual(
          await tx.selectOne(table, { where: { id: first.id as bigint } }),
          row,
        );
        return [row];
      });
  }
}

const BATCHED: ReadonlySet<Helper> = new Set(["batchInsert", "copy", "batchUpsert", "batchUpdate"]);

async function valueRoundTrips(
  q: AsyncQueryable,
  api: string,
  count: number,
  random: Random,
  canary: Canary,
): Promise<{ roundtrips: number; refusals: number }> {
  const table = uniqueName("values");
  await q.createTable(table, VALUE_COLUMNS);
  let roundtrips = 0;
  let refusals = 0;
  let nextId = 1n;
  const failures = new Failures();
  try {
    for (let done = 0; done < count && !failures.full;) {
      const helper = pick(random, HELPERS);
      const size = BATCHED.has(helper) ? 1 + int(random, 4) : 1;
      const cases = Array.from({ length: size }, () => makeCase(nextId++, random, canary));
      done += size;
      const ids = cases.map((c) => c.record.id as bigint);
      const context = () =>
        `${api} ${helper} of ${
          cases.map((c) => `${show(c.record)} (${c.expect} ${c.why.join(",")})`).join("; ")
        }`;
      await failures.check(async () => {
        const written = await outcome(() =>
          within(write(q, api === "sync", table, helper, cases), 20_000, context)
        );
        const rejected = cases.some((c) => c.expect === "reject");
        const either = cases.some((c) => c.expect === "either");
        if (written.error instanceof Error && written.error.message.startsWith("Hung for")) {
          throw written.error; // a hang is not a refusal: stop the test at once
        }
        if (written.error !== undefined) {
          assertRefusal(written.error, context());
          assert.ok(rejected || either, `${context()}\nwas refused: ${show(written.error)}`);
          // A refused write leaves nothing of its records (batches are atomic). The helpers that
          // insert a placeholder first may leave it.
          if (helper !== "upsert" && helper !== "update" && helper !== "batchUpdate") {
            assert.equal(
              await q.count(table, { id: { in: ids.map(Number) } }),
              0,
              `${context()} left rows`,
            );
          }
          refusals += size;
          return;
        }
        assert.ok(
          !rejected,
          `${context()}\nmust be refused, but was written: ${show(written.value)}`,
        );
        if (written.value !== undefined) {
          assert.deepEqual(
            written.value,
            cases.map((c) => c.expected),
            `${context()}: the returned rows`,
          );
        }
        // Read back three ways: select, selectOne, stream.
        const read = await q.select(table, {
          where: { id: { in: ids.map(Number) } },
          orderBy: "id",
        });
        assert.deepEqual(read, cases.map((c) => c.expected), `${context()}: the rows read back`);
        assert.deepEqual(await q.selectOne(table, { where: { id: ids[0] } }), cases[0]?.expected);
        let streamed = 0;
        for await (const row of q.stream(`SELECT * FROM "${table}" WHERE id = $1`, [ids[0]])) {
          assert.deepEqual(row, cases[0]?.expected, `${context()}: streamed`);
          streamed++;
        }
        assert.equal(streamed, 1);
        roundtrips += size;
      });
    }
  } finally {
    await q.dropTable(table);
  }
  console.log(
    `${api} values: ${roundtrips + refusals} records tried (each through one write helper and ` +
      `read back through select, selectOne and stream), ${roundtrips} round-tripped, ${refusals} refused`,
  );
  failures.finish(`${api} value cases`);
  return { roundtrips, refusals };
}

Deno.test("hostile values round-trip exactly through every write helper of AsyncDatabase, or are refused", async () => {
  const random = prng(seedFor("async values"));
  await withCanary(async (db, canary) => {
    await valueRoundTrips(db, "async", 2000, random, canary);
  });
});

Deno.test("hostile values round-trip exactly through the sync Database, or are refused", async () => {
  const random = prng(seedFor("sync values"));
  await withCanary(async (_db, canary) => {
    using sync = new Database(testUrl(), { minConnections: 1, maxConnections: 2 });
    await valueRoundTrips(
      sync as unknown as AsyncQueryable,
      "sync",
      600,
      random,
      canary,
    );
  });
});
