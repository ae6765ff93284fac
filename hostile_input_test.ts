// A property test of hostile input on the real server. Thousands of generated identifiers,
// values and where/orderBy shapes go through every helper of both APIs; each input either
// round-trips exactly or is refused with ValidationError or DatabaseError, as predicted from
// the rules of the API and of PostgreSQL. SQL injection payloads aimed at a canary table ride
// in every string: the canary proves that none of them ran.
//
// Inputs come from a seeded PRNG; the seed is printed, and HOSTILE_SEED=<seed> replays a run.
import assert from "node:assert/strict";
import { AsyncDatabase, type AsyncQueryable, type Row } from "./async_database.ts";
import { Database } from "./database.ts";
import { AsyncTable } from "./crud/async_table.ts";
import { ConnectionError, DatabaseError, ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import { prng } from "./soak/_bank.ts";

// ---------------------------------------------------------------------------------------------
// Seed, generators and predictions

function seedFor(test: string): number {
  const fromEnv = Number(Deno.env.get("HOSTILE_SEED"));
  const seed = Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : Date.now() % 2 ** 31;
  console.log(`${test}: seed ${seed} (replay with HOSTILE_SEED=${seed})`);
  return seed;
}

type Random = () => number;

function int(random: Random, n: number): number {
  return Math.floor(random() * n);
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[int(random, items.length)];
}

const utf8 = new TextEncoder();

/** The canary and the payloads aimed at it. */
interface Canary {
  readonly table: string;
  /** A table the payloads try to create. */
  readonly injected: string;
  readonly payloads: readonly string[];
}

function makeCanary(): Canary {
  const table = uniqueName("canary");
  const injected = uniqueName("injected");
  return {
    table,
    injected,
    payloads: [
      `'); DROP TABLE "${table}"; --`,
      `"; DROP TABLE "${table}"; --`,
      `'; DELETE FROM "${table}"; --`,
      `\\'; INSERT INTO "${table}" VALUES (666, 'pwned'); --`,
      `$$; DROP TABLE "${table}"; $$`,
      `x" = 'x' OR 1=1; UPDATE "${table}" SET note = 'pwned'; --`,
      `1; CREATE TABLE ${injected} (x int); --`,
      `"${table}"`,
      `${table}; TRUNCATE ${table}`,
      `*/ DROP TABLE "${table}" /*`,
      `E'\\x27; DROP TABLE "${table}"; --'`,
    ],
  };
}

const FRAGMENTS: readonly string[] = [
  "a",
  "B",
  "z9",
  "_",
  "0",
  "1e3",
  " ",
  "  ",
  ".",
  ",",
  ";",
  ":",
  "::",
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
  "=",
  "<>",
  "@",
  "?",
  "$1",
  "$$",
  "$tag$",
  "%",
  "%%",
  "_%",
  "\\",
  "\\\\",
  "'",
  "''",
  '"',
  '""',
  "`",
  "--",
  "/*",
  "*/",
  "\n",
  "\r\n",
  "\t",
  "\u0001",
  "\u007f",
  "é",
  "ß",
  "İ",
  "ﬁ",
  "e\u0301",
  "\u200b",
  "\u202e",
  "\ufeff",
  "😀",
  "👩‍👩‍👧",
  "𝔘",
  "中文",
  "العربية",
  "NULL",
  "null",
  "DEFAULT",
  "SELECT",
  "DROP TABLE",
  "id",
  "ctid",
  "xmin",
  "__proto__",
  "constructor",
];
const RARE: readonly string[] = ["\0", "\uD800", "\uDFFF", "x\uDBFFy"];
const SYSTEM_COLUMNS = new Set(["tableoid", "cmax", "xmax", "cmin", "xmin", "ctid"]);

/** A hostile string: fragments, injection payloads, sometimes a NUL or a lone surrogate. */
function hostileString(random: Random, canary: Canary, rare = 0.03, parts = 6): string {
  let text = "";
  for (let i = 1 + int(random, parts); i > 0; i--) {
    const roll = random();
    text += roll < rare
      ? pick(random, RARE)
      : roll < 0.15
      ? pick(random, canary.payloads)
      : pick(random, FRAGMENTS);
  }
  return text;
}

function isValidIdentifier(name: string): boolean {
  return name.length > 0 && !name.includes("\0") && name.isWellFormed() &&
    utf8.encode(name).length <= 63;
}

function isValidText(text: string): boolean {
  return !text.includes("\0") && text.isWellFormed();
}

/** Every string inside a JSON value (keys included). */
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

// ---------------------------------------------------------------------------------------------
// Outcomes

type Expect = "roundtrip" | "reject" | "either";

/** Asserts that `error` is one of the package's refusals. */
function assertRefusal(error: unknown, context: string): void {
  // A lost connection or a dead bridge worker is a failure of the library, not a refusal.
  assert.ok(
    (error instanceof ValidationError || error instanceof DatabaseError) &&
      !(error instanceof ConnectionError),
    `${context}: expected ValidationError or DatabaseError, got ${Deno.inspect(error)}`,
  );
}

/** Fails instead of hanging (async API only: a blocked sync call cannot be timed out). */
async function within<T>(promise: T | Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Hung for ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

async function outcome<T>(fn: () => T | Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error };
  }
}

function show(value: unknown): string {
  const text = Deno.inspect(value, { depth: 4, strAbbreviateSize: 200, iterableLimit: 20 });
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

/**
 * Collects the first failures of a property run instead of stopping at the first, so that one
 * run shows every kind of failure; `finish()` fails the test with all of them.
 */
class Failures {
  readonly #messages: string[] = [];
  constructor(readonly limit = 12) {}

  get full(): boolean {
    return this.#messages.length >= this.limit;
  }

  /** Runs one case; an assertion failure is recorded, anything else is thrown. */
  async check(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      if (!(error instanceof assert.AssertionError)) throw error;
      this.#messages.push(String(error.stack).split("\n").slice(0, 40).join("\n"));
    }
  }

  finish(what: string): void {
    if (this.#messages.length === 0) return;
    assert.fail(
      `${this.#messages.length}${this.full ? "+" : ""} ${what} failed:\n\n${
        this.#messages.join("\n\n---\n\n")
      }`,
    );
  }
}

async function assertCanaryAlive(db: AsyncDatabase, canary: Canary): Promise<void> {
  const rows = await db.execute(`SELECT id, note FROM "${canary.table}" ORDER BY id`);
  assert.deepEqual(rows, [{ id: 1, note: "alive" }], "the canary row is untouched");
  const injected = await db.queryOne<{ found: string | null }>(
    "SELECT to_regclass($1)::text AS found",
    [canary.injected],
  );
  assert.equal(injected?.found, null, "no injected table exists");
}

async function withCanary(fn: (db: AsyncDatabase, canary: Canary) => Promise<void>): Promise<void> {
  await using db = new AsyncDatabase(testUrl(), { minConnections: 1, maxConnections: 4 });
  const canary = makeCanary();
  await db.execute(`CREATE TABLE "${canary.table}" (id INT PRIMARY KEY, note TEXT)`);
  await db.execute(`INSERT INTO "${canary.table}" VALUES (1, 'alive')`);
  try {
    await fn(db, canary);
    await assertCanaryAlive(db, canary);
  } finally {
    await db.execute(`DROP TABLE IF EXISTS "${canary.table}"`);
  }
}

// ---------------------------------------------------------------------------------------------
// Identifiers

Deno.test("hostile identifiers go through DDL, every CRUD helper and AsyncTable: quoted exactly, or refused", async () => {
  const random = prng(seedFor("identifiers"));
  let tried = 0;
  let created = 0;
  let refused = 0;
  const failures = new Failures();
  await withCanary(async (db, canary) => {
    for (let batch = 0; batch < 160; batch++) {
      const prefix = `h${batch}_${uniqueName("").slice(1, 7)}_`;
      const roll = random();
      let base = prefix + hostileString(random, canary, 0.05, 3);
      if (random() < 0.8) {
        while (!isValidIdentifier(base)) base = prefix + hostileString(random, canary, 0.05, 3);
      }
      // Mostly plain names, some schema-qualified (public or a schema that does not exist), some
      // with more than one dot.
      const table = roll < 0.7
        ? base
        : roll < 0.85
        ? `public.${base}`
        : roll < 0.93
        ? `${hostileString(random, canary, 0.05, 2)}.${base}`
        : `a.b.${base}`;
      // Most batches hold valid names only (generated until valid); the others one invalid name.
      const invalidAt = random() < 0.7 ? -1 : int(random, 12);
      const columns = new Set<string>();
      while (columns.size < 12) {
        const name = columns.size === invalidAt
          ? pick(random, ["", "\0", "a\0b", "x\uD800", "\uDFFFy", "é".repeat(32), "x".repeat(64)]) +
            hostileString(random, canary, 0, 1).slice(0, 3)
          : hostileString(random, canary, 0.05, 3);
        if (name === "id" || (columns.size !== invalidAt && !isValidIdentifier(name))) continue;
        columns.add(name);
      }
      const names = [...columns];
      tried += 1 + names.length;

      const dot = table.indexOf(".");
      const tableParts = dot === -1 ? [table] : [table.slice(0, dot), table.slice(dot + 1)];
      const validNames = !table.slice(dot + 1).includes(".") &&
        tableParts.every(isValidIdentifier) && names.every(isValidIdentifier);
      const definition = Object.fromEntries([
        ["id", "INT8 PRIMARY KEY"],
        ...names.map((n) => [n, "TEXT"]),
      ]);
      const result = await outcome(() => db.createTable(table, definition));
      if (!validNames) {
        assert.ok(
          result.error instanceof ValidationError,
          `createTable(${show(table)}, ${show(names)}) must throw ValidationError, got ${
            show(result.error ?? "success")
          }`,
        );
        refused++;
        continue;
      }
      const schemaMissing = dot !== -1 && tableParts[0] !== "public";
      if (schemaMissing || names.some((n) => SYSTEM_COLUMNS.has(n))) {
        assert.ok(
          result.error instanceof DatabaseError && !(result.error instanceof ValidationError),
          `createTable(${show(table)}) must throw DatabaseError, got ${
            show(result.error ?? "success")
          }`,
        );
        refused++;
        continue;
      }
      assert.equal(
        result.error,
        undefined,
        `createTable(${show(table)}, ${show(names)}): ${show(result.error)}`,
      );
      created++;
      await failures.check(async () => {
        try {
          await crudWithIdentifiers(db, table, names, random, canary);
        } finally {
          await db.dropTable(table);
        }
        assert.equal(await db.tableExists(table), false);
      });
      if (failures.full) break;
    }
    // Column type strings that try to end the statement are refused before any SQL runs.
    for (const payload of canary.payloads) {
      tried++;
      const result = await outcome(() =>
        db.createTable(uniqueName("typed"), {
          id: `INT PRIMARY KEY${payload.startsWith("*/") ? "" : ","} ${payload}`,
        })
      );
      assertRefusal(result.error, `a column type holding ${show(payload)}`);
    }
  });
  console.log(
    `identifiers: ${tried} tried, ${created} tables created and used, ${refused} refused`,
  );
  failures.finish("identifier batches");
  assert.ok(
    created > 20 && refused > 5,
    `too few of either kind: ${created} created, ${refused} refused`,
  );
});

async function crudWithIdentifiers(
  db: AsyncDatabase,
  table: string,
  names: readonly string[],
  random: Random,
  canary: Canary,
): Promise<void> {
  const context = `table ${show(table)}, columns ${show(names)}`;
  const [a, b] = names;
  const value = () => {
    let text = hostileString(random, canary, 0);
    while (!isValidText(text)) text = hostileString(random, canary, 0);
    return text;
  };
  const record = (id: bigint) =>
    Object.fromEntries([["id", id], ...names.map((n) => [n, value()])]) as Row;

  assert.equal(await db.tableExists(table), true, context);
  const first = record(1n);
  assert.deepEqual(await db.insert(table, first), first, `insert: ${context}`);
  assert.deepEqual(
    await db.select(table, { where: { [a]: first[a] } }),
    [first],
    `select: ${context}`,
  );
  assert.deepEqual(
    await db.select(table, {
      columns: [a, b],
      where: { [b]: { in: [first[b]] } },
      orderBy: { [a]: "desc" },
    }),
    [{ [a]: first[a], [b]: first[b] }],
    `select columns: ${context}`,
  );
  assert.deepEqual(await db.selectOne(table, { where: { [a]: { like: "%" } } }), first);
  const changed = value();
  assert.deepEqual(await db.update(table, { [b]: changed }, { [a]: first[a] }), [{
    ...first,
    [b]: changed,
  }]);
  first[b] = changed;
  assert.equal(await db.count(table, { [b]: changed }), 1, `count: ${context}`);
  const upserted = { ...record(1n) };
  assert.deepEqual(
    await db.upsert(table, upserted, { conflictColumns: ["id"] }),
    upserted,
    `upsert: ${context}`,
  );
  const batch = [record(2n), record(3n), record(4n)];
  assert.deepEqual(await db.batchInsert(table, batch), batch, `batchInsert: ${context}`);
  const copied = [record(5n), record(6n)];
  assert.equal(await db.batchInsert(table, copied, { returning: false }), 2);
  assert.deepEqual(
    await db.select(table, { where: { id: { gte: 5 } }, orderBy: { id: "asc" } }),
    copied,
  );
  const upserts = [record(2n), record(7n)];
  assert.deepEqual(await db.batchUpsert(table, upserts, { conflictColumns: ["id"] }), upserts);
  const updates = [{ id: 3n, [a]: value() }, { id: 4n, [a]: value() }];
  const updated = await db.batchUpdate(table, updates);
  assert.deepEqual(updated.map((r) => [r.id, r[a]]), updates.map((r) => [r.id, r[a]]));
  assert.equal(
    await db.delete(table, { [a]: updates[0][a] as string, id: 3n }),
    1,
    `delete: ${context}`,
  );
  assert.equal(await db.count(table), 6);
  for await (const row of db.stream(`SELECT * FROM ${quoteForTest(table)} WHERE id = $1`, [1n])) {
    assert.deepEqual(row, upserted);
  }

  // The same names through AsyncTable.
  const tableObject = new AsyncTable(table, { db });
  const created = record(10n);
  assert.deepEqual(await tableObject.create(created), created, `AsyncTable.create: ${context}`);
  assert.deepEqual(await tableObject.read(10n), created);
  assert.deepEqual(await tableObject.get(10n), created);
  // With the id too: a short random value may also stand in another row.
  assert.deepEqual(await tableObject.findOne({ [a]: created[a], id: 10n }), created);
  assert.deepEqual(
    await tableObject.getMany([10n, 1n]),
    [upserted, created],
    `getMany: ${context}`,
  );
  // Unique, so that the filters below match this row only.
  const renamed = value() + uniqueName("|");
  assert.deepEqual(await tableObject.update(10n, { [a]: renamed }), { ...created, [a]: renamed });
  assert.equal(
    (await tableObject.updateWhere({ [a]: renamed }, { [b]: renamed })).length,
    1,
    `updateWhere: ${context}`,
  );
  assert.deepEqual(
    (await tableObject.list({ where: { id: { in: [10, 1] } }, orderBy: { [b]: "asc" }, limit: 5 }))
      .length,
    2,
  );
  assert.equal(await tableObject.exists(10n), true);
  assert.equal(await tableObject.count({ [a]: renamed }), 1, `count: ${context}`);
  const more = [record(11n), record(12n)];
  assert.deepEqual(await tableObject.batchCreate(more), more);
  assert.equal(await tableObject.delete(11n), true);
  assert.equal(await tableObject.deleteWhere({ id: 12n }), 1);
  await tableObject.truncate();
  assert.equal(await db.count(table), 0);
}

/** Quotes a table name the way the API documents it (for the raw `stream` call). */
function quoteForTest(table: string): string {
  const dot = table.indexOf(".");
  const parts = dot === -1 ? [table] : [table.slice(0, dot), table.slice(dot + 1)];
  return parts.map((p) => `"${p.replaceAll('"', '""')}"`).join(".");
}

Deno.test("hostile database names are quoted exactly or refused by createDatabase() and dropDatabase()", async () => {
  const random = prng(seedFor("database names"));
  await withCanary(async (db, canary) => {
    for (let i = 0; i < 6; i++) {
      const name = `${uniqueName("hdb").slice(0, 16)}${hostileString(random, canary, 0.2, 3)}`;
      const created = await outcome(() => db.createDatabase(name));
      if (!isValidIdentifier(name)) {
        assert.ok(
          created.error instanceof ValidationError,
          `createDatabase(${show(name)}): ${show(created.error)}`,
        );
        continue;
      }
      assert.equal(
        created.error,
        undefined,
        `createDatabase(${show(name)}): ${show(created.error)}`,
      );
      const found = await db.queryOne("SELECT 1 AS one FROM pg_database WHERE datname = $1", [
        name,
      ]);
      assert.deepEqual(found, { one: 1 }, `database ${show(name)} exists under its exact name`);
      await db.dropDatabase(name);
      assert.equal(await db.queryOne("SELECT 1 FROM pg_database WHERE datname = $1", [name]), null);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Values

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

const INT8_MAX = 2n ** 63n - 1n;
const INT8_MIN = -(2n ** 63n);

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
  switch (helper) {
    case "insert":
      return [await q.insert(table, records[0])];
    case "batchInsert":
      return await q.batchInsert(table, records);
    case "copy":
      assert.equal(await q.batchInsert(table, records, { returning: false }), records.length);
      return undefined;
    case "upsert":
      // Insert a placeholder first: the upsert then updates every column.
      await q.insert(table, { id: records[0].id, t: "placeholder", bo: true });
      return [await q.upsert(table, full(records[0]), { conflictColumns: ["id"] })];
    case "batchUpsert":
      return await q.batchUpsert(table, records, { conflictColumns: ["id"] });
    case "update": {
      await q.insert(table, { id: records[0].id });
      const { id, ...data } = records[0];
      const defined = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
      if (Object.keys(defined).length === 0) return undefined;
      return await q.update(table, defined, { id: id as bigint });
    }
    case "batchUpdate": {
      await q.batchInsert(table, records.map((r) => ({ id: r.id })));
      return await q.batchUpdate(table, records.map(full));
    }
    case "execute": {
      const columns = Object.keys(records[0]).filter((c) => records[0][c] !== undefined);
      return await q.execute(
        `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) VALUES (${
          columns.map((_, i) => `$${i + 1}`).join(", ")
        }) RETURNING *`,
        columns.map((c) => records[0][c]),
      );
    }
    case "transaction":
      if (sync) {
        return (q as unknown as Database).transaction((tx) => {
          const row = tx.insert(table, records[0]);
          assert.deepEqual(tx.selectOne(table, { where: { id: records[0].id as bigint } }), row);
          return [row];
        });
      }
      return await (q as AsyncDatabase).transaction(async (tx) => {
        const row = await tx.insert(table, records[0]);
        assert.deepEqual(
          await tx.selectOne(table, { where: { id: records[0].id as bigint } }),
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
        assert.deepEqual(await q.selectOne(table, { where: { id: ids[0] } }), cases[0].expected);
        let streamed = 0;
        for await (const row of q.stream(`SELECT * FROM "${table}" WHERE id = $1`, [ids[0]])) {
          assert.deepEqual(row, cases[0].expected, `${context()}: streamed`);
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

// ---------------------------------------------------------------------------------------------
// where and orderBy shapes, checked against a model of the rows

interface ModelRow {
  id: bigint;
  t: string | null;
  i: bigint | null;
  /** Never in a where: update() sets it. */
  u: number | null;
}

type Comparable = bigint | string;

/** PostgreSQL's LIKE (backslash escape) as a RegExp over code points; null when invalid. */
function likeRegExp(pattern: string): RegExp | null {
  let source = "";
  const chars = [...pattern];
  for (let k = 0; k < chars.length; k++) {
    const char = chars[k];
    if (char === "\\") {
      if (k === chars.length - 1) return null; // LIKE pattern must not end with escape character
      source += chars[++k].replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    } else if (char === "%") source += "[^]*";
    else if (char === "_") source += "[^]";
    else source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "u");
}

/** Code-point order: what the "C" collation gives for UTF-8 text. */
function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let k = 0; k < Math.min(x.length, y.length); k++) {
    const d = x[k].codePointAt(0)! - y[k].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function compare(a: Comparable, b: Comparable): number {
  if (typeof a === "bigint" && typeof b === "bigint") return a < b ? -1 : a > b ? 1 : 0;
  return compareCodePoints(String(a), String(b));
}

/** The model's verdict for one condition: rows kept, or "reject" when the server must refuse. */
type Verdict = ((row: ModelRow) => boolean) | "reject" | "validation" | "maybe";

/** Sets a key even when it is "__proto__" (an assignment would set the prototype). */
function define(object: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(object, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/**
 * A bound value as the server sees it for a column, or undefined when the server refuses it:
 * numbers and strings are sent untyped and parsed by the column's type; a bigint is sent as
 * INT8, which a TEXT column cannot be compared with.
 */
function asColumnValue(column: "id" | "t" | "i", value: unknown): Comparable | undefined {
  if (column === "t") {
    if (typeof value === "number") return String(value);
    return typeof value === "string" && isValidText(value) ? value : undefined;
  }
  let parsed: bigint | undefined;
  if (typeof value === "bigint") parsed = value;
  else if (typeof value === "number") {
    parsed = Number.isSafeInteger(value) ? BigInt(value) : undefined;
  } // int8in: blanks around an optional sign and decimal digits.
  else if (typeof value === "string" && /^[ \t\n\v\f\r]*[+-]?\d+[ \t\n\v\f\r]*$/.test(value)) {
    parsed = BigInt(value.trim());
  }
  return parsed !== undefined && parsed >= INT8_MIN && parsed <= INT8_MAX ? parsed : undefined;
}

/**
 * The elements of an array parameter as the server sees them for a column: arrays go untyped,
 * their elements as text, parsed by the column's element type.
 */
function asColumnArray(
  column: "id" | "t" | "i",
  values: readonly unknown[],
): (Comparable | null)[] | undefined {
  const items: (Comparable | null)[] = [];
  for (const v of values) {
    if (v === null) {
      items.push(null);
      continue;
    }
    if (typeof v === "string" && !isValidText(v)) return undefined;
    const item = column === "t"
      ? String(v)
      : asColumnValue(column, typeof v === "bigint" ? v : String(v));
    if (item === undefined) return undefined;
    items.push(item);
  }
  return items;
}

function isOperators(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const OPERATORS = ["gt", "gte", "lt", "lte", "ne", "in", "like"];

function condition(column: string, value: unknown): Verdict {
  if (!isValidIdentifier(column)) return "validation";
  const known = column === "id" || column === "t" || column === "i";
  // An empty array becomes FALSE without naming the column.
  if (Array.isArray(value) && value.length === 0) return () => false;
  if (isOperators(value)) {
    const operators = Object.keys(value);
    if (operators.length === 0 || operators.some((op) => !OPERATORS.includes(op))) {
      return "validation";
    }
    const parts: Verdict[] = operators.map((op) => {
      const operand = value[op];
      // `in: []` and `ne: []` become FALSE and TRUE without naming the column.
      if ((op === "in" || op === "ne") && Array.isArray(operand) && operand.length === 0) {
        return op === "in" ? () => false : () => true;
      }
      if (op === "in" && !Array.isArray(operand)) return "validation";
      if (op === "like" && typeof operand !== "string") return "validation";
      if (!["ne", "in", "like"].includes(op) && (operand === null || operand === undefined)) {
        return "validation";
      }
      return known ? operator(column as "id" | "t" | "i", op, operand) : "reject";
    });
    if (parts.includes("validation")) return "validation";
    if (parts.includes("reject")) return "reject";
    if (parts.includes("maybe")) return "maybe";
    return (row) => parts.every((p) => (p as (r: ModelRow) => boolean)(row));
  }
  if (!known) return "reject"; // no such column
  const get = (row: ModelRow) => row[column];
  // undefined is refused (almost always a missing field), also inside a list.
  if (value === undefined) return "validation";
  if (value === null) return (row) => get(row) === null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (value[i] === undefined) return "validation";
    const items = asColumnArray(column, value);
    if (items === undefined) return "reject";
    return (row) =>
      get(row) !== null && items.some((v) => v !== null && compare(get(row)!, v) === 0);
  }
  const bound = asColumnValue(column, value);
  if (bound === undefined) return "reject";
  return (row) => get(row) !== null && compare(get(row)!, bound) === 0;
}

/** One operator on a known column; its operand already passed the API's own checks. */
function operator(column: "id" | "t" | "i", op: string, value: unknown): Verdict {
  const get = (row: ModelRow) => row[column];
  switch (op) {
    case "in":
      return condition(column, value);
    case "ne": {
      if (value === undefined) return "validation";
      if (value === null) return (row) => get(row) !== null;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (value[i] === undefined) return "validation";
        const items = asColumnArray(column, value);
        if (items === undefined) return "reject";
        // <> ALL(...): NULL (so not kept) when the row's value or any item is NULL.
        return (row) =>
          get(row) !== null && items.every((v) => v !== null && compare(get(row)!, v) !== 0);
      }
      const bound = asColumnValue(column, value);
      if (bound === undefined) return "reject";
      return (row) => get(row) !== null && compare(get(row)!, bound) !== 0;
    }
    case "like": {
      if (column !== "t" || !isValidText(value as string)) return "reject";
      const regexp = likeRegExp(value as string);
      // A pattern ending in the escape character fails when a row reaches it, so only maybe.
      if (regexp === null) return "maybe";
      return (row) => row.t !== null && regexp.test(row.t);
    }
    default: {
      const bound = asColumnValue(column, value);
      if (bound === undefined) return "reject";
      const test = {
        gt: (d: number) => d > 0,
        gte: (d: number) => d >= 0,
        lt: (d: number) => d < 0,
        lte: (d: number) => d <= 0,
      }[op]!;
      return (row) => get(row) !== null && test(compare(get(row)!, bound));
    }
  }
}

function whereValue(
  column: string,
  random: Random,
  canary: Canary,
  rows: readonly ModelRow[],
): unknown {
  const existing = pick(random, rows);
  const sample = () => {
    const roll = random();
    if (roll < 0.45) return column === "t" ? existing.t : existing.i ?? existing.id;
    if (roll < 0.75) {
      return column === "t"
        ? hostileString(random, canary, 0.02, 3)
        : pick(random, [0, 1, 5n, -3, 7n, INT8_MAX, INT8_MIN, "7", " -3 ", 2 ** 40]);
    }
    // What the column's type refuses, or cannot be compared with.
    if (roll < 0.85) {
      return pick(random, [INT8_MAX + 1n, "x", 1.5, "1e3", hostileString(random, canary, 0.3, 2)]);
    }
    return null;
  };
  const roll = random();
  if (roll < 0.3) return sample();
  if (roll < 0.45) return Array.from({ length: int(random, 4) }, sample);
  if (roll < 0.48) return pick(random, [{}, { eq: 1 }, { $gt: 1 }, { gt: 1, or: 2 }, new Date(0)]);
  const operators: Record<string, unknown> = {};
  for (let k = 1 + int(random, 2); k > 0; k--) {
    const op = pick(random, ["gt", "gte", "lt", "lte", "ne", "in", "like"]);
    operators[op] = op === "in" || (op === "ne" && random() < 0.3)
      ? Array.from({ length: int(random, 4) }, sample)
      : op === "like"
      ? pick(random, [
        "%",
        "_",
        "a%",
        "%\\%",
        "\\",
        "%é_",
        `%${existing.t ?? ""}%`,
        hostileString(random, canary, 0.05, 2),
      ])
      : sample();
  }
  return operators;
}

type OrderSpec = { column: "id" | "t" | "i"; desc: boolean; nullsFirst?: boolean }[];

const ORDER_ITEM = /^([A-Za-z_][A-Za-z0-9_$]*)(?:\s+(asc|desc))?(?:\s+nulls\s+(first|last))?$/i;

/** The documented string forms of orderBy, as the model reads them. */
function orderText(text: string): OrderSpec | "validation" | "reject" {
  const spec: OrderSpec = [];
  let unknown = false;
  for (const raw of text.split(",")) {
    const match = ORDER_ITEM.exec(raw.trim());
    if (match === null) return "validation";
    if (!["id", "t", "i"].includes(match[1])) unknown = true;
    spec.push({
      column: match[1] as "id" | "t" | "i",
      desc: match[2]?.toLowerCase() === "desc",
      nullsFirst: match[3] === undefined ? undefined : match[3].toLowerCase() === "first",
    });
  }
  return unknown ? "reject" : spec;
}

/** A random orderBy and its meaning, or "validation" when it must be refused. */
function orderBy(
  random: Random,
  canary: Canary,
): { value: unknown; spec: OrderSpec | "validation" | "reject" } {
  const roll = random();
  const column = () => pick(random, ["id", "t", "i"] as const);
  if (roll < 0.35) {
    const items = Array.from({ length: 1 + int(random, 3) }, () => {
      const c = column();
      const dir = pick(random, ["", " asc", " DESC", " desc nulls first", " ASC NULLS LAST"]);
      return {
        text: c + dir,
        spec: {
          column: c,
          desc: /desc/i.test(dir),
          nullsFirst: /nulls first/i.test(dir) ? true : /nulls last/i.test(dir) ? false : undefined,
        },
      };
    });
    return random() < 0.5
      ? { value: items.map((i) => i.text).join(", "), spec: items.map((i) => i.spec) }
      : { value: items.map((i) => i.text), spec: items.map((i) => i.spec) };
  }
  if (roll < 0.65) {
    const entries = Array.from(
      { length: 1 + int(random, 2) },
      () => [column(), pick(random, ["asc", "desc", "ASC"])] as const,
    );
    const object = Object.fromEntries(entries);
    return {
      value: object,
      spec: Object.entries(object).map(([c, d]) => ({
        column: c as "id" | "t" | "i",
        desc: d.toLowerCase() === "desc",
      })),
    };
  }
  if (roll < 0.8) {
    // A hostile column in object form: quoted, so the server refuses an unknown column.
    let name = hostileString(random, canary, 0.05, 2);
    while (SYSTEM_COLUMNS.has(name)) name = hostileString(random, canary, 0.05, 2);
    const value: Record<string, unknown> = {};
    define(value, name, "asc");
    return {
      value,
      spec: !isValidIdentifier(name)
        ? "validation"
        : ["id", "t", "i"].includes(name)
        ? [{ column: name as "id" | "t" | "i", desc: false }]
        : "reject",
    };
  }
  // Anything else is not a column list: refused before any SQL, unless trimming makes it one.
  const value = pick(random, [
    "",
    "id;",
    "id DESC;",
    "id, ",
    "(SELECT 1)",
    "id DESC --",
    "1",
    'id COLLATE "C"',
    "random()",
    `id; DROP TABLE "${canary.table}"`,
    { id: "up" },
    { id: 1 },
    [],
    {},
    ["id", 2],
    42,
    null,
    `t ${hostileString(random, canary, 0, 2)}`,
  ]);
  if (typeof value === "string") return { value, spec: orderText(value) };
  return { value, spec: "validation" };
}

function sortedBy(rows: readonly ModelRow[], spec: OrderSpec): boolean {
  for (let k = 1; k < rows.length; k++) {
    for (const { column, desc, nullsFirst } of spec) {
      const a = rows[k - 1][column];
      const b = rows[k][column];
      if (a === b) continue;
      // PostgreSQL: NULLS LAST for ASC, NULLS FIRST for DESC, unless told.
      const nullFirst = nullsFirst ?? desc;
      let d: number;
      if (a === null) d = nullFirst ? -1 : 1;
      else if (b === null) d = nullFirst ? 1 : -1;
      else d = compare(a, b) * (desc ? -1 : 1);
      if (d < 0) break;
      if (d > 0) return false;
      // Equal values: the next key decides.
    }
  }
  return true;
}

Deno.test("hostile where and orderBy shapes select exactly the rows a model selects, or are refused, through both APIs", async () => {
  const random = prng(seedFor("where shapes"));
  let tried = 0;
  let refused = 0;
  const failures = new Failures();
  await withCanary(async (db, canary) => {
    const collation = await db.queryOne<{ c: string }>(
      "SELECT datcollate AS c FROM pg_database WHERE datname = current_database()",
    );
    const codePointOrder = collation?.c === "C" || collation?.c === "POSIX";
    const table = uniqueName("shapes");
    await db.createTable(table, { id: "INT8 PRIMARY KEY", t: "TEXT", i: "INT8", u: "INT4" });
    const rows: ModelRow[] = [];
    for (let id = 1n; id <= 60n; id++) {
      let t: string | null = random() < 0.15 ? null : hostileString(random, canary, 0, 3);
      while (t !== null && !isValidText(t)) t = hostileString(random, canary, 0, 3);
      const i = random() < 0.15
        ? null
        : pick(random, [0n, 1n, -3n, 5n, 7n, INT8_MAX, INT8_MIN, BigInt(int(random, 20))]);
      rows.push({ id, t, i, u: null });
    }
    await db.batchInsert(table, rows as unknown as Row[]);
    const columns = ["id", "t", "i"];
    // The same shapes through one API: q is the AsyncDatabase or the sync Database.
    const shapes = async (q: AsyncQueryable, api: "async" | "sync", count: number) => {
      for (let n = 0; n < count && !failures.full; n++) {
        tried++;
        const where: Record<string, unknown> = {};
        for (let k = int(random, 3); k >= 0; k--) {
          let column = random() < 0.93
            ? pick(random, columns)
            : hostileString(random, canary, 0.1, 2);
          // System columns (ctid, xmin, …) exist on every table, with types of their own.
          while (SYSTEM_COLUMNS.has(column)) column = hostileString(random, canary, 0.1, 2);
          define(where, column, whereValue(column, random, canary, rows));
        }
        const order = orderBy(random, canary);
        const verdicts = Object.entries(where).map(([c, v]) => condition(c, v));
        const options = { where, orderBy: order.value } as Parameters<AsyncDatabase["select"]>[1];
        const context = `${api} select(where ${show(where)}, orderBy ${show(order.value)})`;
        await failures.check(async () => {
          const result = await outcome(() => q.select<ModelRow>(table, options));
          const validation = verdicts.includes("validation") || order.spec === "validation";
          if (validation) {
            assert.ok(
              result.error instanceof ValidationError,
              `${context} must throw ValidationError, got ${show(result.error ?? result.value)}`,
            );
            refused++;
            return;
          }
          if (verdicts.includes("reject") || order.spec === "reject") {
            assertRefusal(result.error, context);
            refused++;
            return;
          }
          // A condition that fails when a row reaches it: refused, or no row reached it.
          const maybe = verdicts.includes("maybe");
          if (maybe && result.error !== undefined) {
            assertRefusal(result.error, context);
            refused++;
            return;
          }
          assert.equal(result.error, undefined, `${context}: ${show(result.error)}`);
          const kept = maybe
            ? []
            : rows.filter((row) => verdicts.every((v) => (v as (r: ModelRow) => boolean)(row)));
          const got = result.value!;
          const textOrder = (order.spec as OrderSpec).some((s) => s.column === "t");
          assert.deepEqual(
            [...got].map((r) => r.id).sort(compare),
            kept.map((r) => r.id),
            `${context}: the rows`,
          );
          if (!textOrder || codePointOrder) {
            assert.ok(
              sortedBy(got, order.spec as OrderSpec),
              `${context}: the order ${show(got.map((r) => r.id))}`,
            );
          }
          // count(), and update()/delete() inside a rolled-back transaction, agree with select().
          if (n % 5 === 0 && !maybe) {
            assert.equal(await q.count(table, where as Row), kept.length, `count: ${context}`);
          }
          if (n % 10 === 0 && !maybe && Object.keys(where).length > 0) {
            const rollback = new Error("roll back");
            const counted = await outcome(() =>
              api === "sync"
                ? (q as unknown as Database).transaction((tx) => {
                  assert.equal(tx.update(table, { u: 1 }, where as Row).length, kept.length);
                  assert.equal(tx.delete(table, where as Row), kept.length);
                  throw rollback;
                })
                : db.transaction(async (tx) => {
                  assert.equal(
                    (await tx.update(table, { u: 1 }, where as Row)).length,
                    kept.length,
                  );
                  assert.equal(await tx.delete(table, where as Row), kept.length);
                  throw rollback;
                })
            );
            assert.equal(
              counted.error,
              rollback,
              `update/delete: ${context}: ${show(counted.error)}`,
            );
          }
        });
      }
    };
    try {
      await shapes(db, "async", 3000);
      using sync = new Database(testUrl(), { minConnections: 1, maxConnections: 2 });
      await shapes(sync as unknown as AsyncQueryable, "sync", 1000);
      // Nothing was changed by any of it.
      assert.deepEqual(await db.select(table, { orderBy: "id" }), rows);
    } finally {
      await db.dropTable(table);
    }
  });
  console.log(`where shapes: ${tried} tried, ${refused} refused`);
  failures.finish("where/orderBy shapes");
});
