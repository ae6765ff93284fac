// What the hostile-input property tests (hostile_identifiers_test.ts, hostile_values_test.ts,
// hostile_where_test.ts) share: the seed of each test's PRNG (printed; HOSTILE_SEED=<seed>
// replays a run), hostile strings, the canary table and the SQL injection payloads aimed at it,
// the server's rules for identifiers and text, and the checks of an outcome (a refusal, a
// hang, failures collected across a run).
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { ConnectionError, DatabaseError, ValidationError } from "./errors.ts";
import { testUrl, uniqueName } from "./_test_util.ts";

/** The seed of one test's PRNG: HOSTILE_SEED when set, else the clock's; printed for replay. */
export function seedFor(test: string): number {
  const fromEnv = Number(Deno.env.get("HOSTILE_SEED"));
  const seed = Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : Date.now() % 2 ** 31;
  console.log(`${test}: seed ${seed} (replay with HOSTILE_SEED=${seed})`);
  return seed;
}

/** A PRNG: `prng(seed)` from soak/_bank.ts. */
export type Random = () => number;

export function int(random: Random, n: number): number {
  return Math.floor(random() * n);
}

export function pick<T>(random: Random, items: readonly T[]): T {
  if (items.length === 0) throw new RangeError("Cannot pick an item: the list is empty");
  // Below the length: `random()` is below 1. A cast, not a check: an item may be undefined.
  return items[int(random, items.length)] as T;
}

const utf8 = new TextEncoder();

/** The canary and the payloads aimed at it. */
export interface Canary {
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

export const FRAGMENTS: readonly string[] = [
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
/** The columns every PostgreSQL table has, with types of their own. */
export const SYSTEM_COLUMNS = new Set(["tableoid", "cmax", "xmax", "cmin", "xmin", "ctid"]);

export const INT8_MAX = 2n ** 63n - 1n;
export const INT8_MIN = -(2n ** 63n);

/** A hostile string: fragments, injection payloads, sometimes a NUL or a lone surrogate. */
export function hostileString(random: Random, canary: Canary, rare = 0.03, parts = 6): string {
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

/** What PostgreSQL takes as a quoted identifier: no NUL, well-formed, at most 63 bytes. */
export function isValidIdentifier(name: string): boolean {
  return name.length > 0 && !name.includes("\0") && name.isWellFormed() &&
    utf8.encode(name).length <= 63;
}

/** What a TEXT value may hold: no NUL, no lone surrogate. */
export function isValidText(text: string): boolean {
  return !text.includes("\0") && text.isWellFormed();
}

// ---------------------------------------------------------------------------------------------
// Outcomes

/** Asserts that `error` is one of the package's refusals. */
export function assertRefusal(error: unknown, context: string): void {
  // A lost connection or a dead bridge worker is a failure of the library, not a refusal.
  assert.ok(
    (error instanceof ValidationError || error instanceof DatabaseError) &&
      !(error instanceof ConnectionError),
    `${context}: expected ValidationError or DatabaseError, got ${Deno.inspect(error)}`,
  );
}

/** Fails instead of hanging (async API only: a blocked sync call cannot be timed out). */
export async function within<T>(
  promise: T | Promise<T>,
  ms: number,
  what: () => string,
): Promise<T> {
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

/** What `fn` returned, or what it threw. */
export async function outcome<T>(
  fn: () => T | Promise<T>,
): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error };
  }
}

/** A value for a failure message, cut short. */
export function show(value: unknown): string {
  const text = Deno.inspect(value, { depth: 4, strAbbreviateSize: 200, iterableLimit: 20 });
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

/**
 * Collects the first failures of a property run instead of stopping at the first, so that one
 * run shows every kind of failure; `finish()` fails the test with all of them.
 */
export class Failures {
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

/** Runs `fn` with a canary table, and checks afterwards that no payload touched it. */
export async function withCanary(
  fn: (db: AsyncDatabase, canary: Canary) => Promise<void>,
): Promise<void> {
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
