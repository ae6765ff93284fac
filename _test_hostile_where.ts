// The model the where/orderBy property test (hostile_where_test.ts) checks the server against:
// for a table of `id INT8, t TEXT, i INT8` rows held in memory, which rows a where condition
// keeps (PostgreSQL's comparisons, LIKE with its backslash escape, NULL semantics, how untyped
// parameters are parsed by a column's type), in which order an orderBy puts them, or that the
// API must refuse the shape (ValidationError) or the server must (DatabaseError). And the
// generators of random where values and orderBy shapes, from plain to hostile.
import {
  type Canary,
  hostileString,
  int,
  INT8_MAX,
  INT8_MIN,
  isValidIdentifier,
  isValidText,
  pick,
  type Random,
  SYSTEM_COLUMNS,
} from "./_test_hostile.ts";

export interface ModelRow {
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
  let escaped = false;
  for (const char of pattern) {
    if (escaped) {
      source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      escaped = false;
    } else if (char === "\\") escaped = true;
    else if (char === "%") source += "[^]*";
    else if (char === "_") source += "[^]";
    else source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  if (escaped) return null; // LIKE pattern must not end with escape character
  return new RegExp(`^${source}$`, "u");
}

/** Code-point order: what the "C" collation gives for UTF-8 text. */
function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let k = 0; k < Math.min(x.length, y.length); k++) {
    const d = x[k]! - y[k]!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

export function compare(a: Comparable, b: Comparable): number {
  if (typeof a === "bigint" && typeof b === "bigint") return a < b ? -1 : a > b ? 1 : 0;
  return compareCodePoints(String(a), String(b));
}

/** The model's verdict for one condition: rows kept, or "reject" when the server must refuse. */
export type Verdict = ((row: ModelRow) => boolean) | "reject" | "validation" | "maybe";

/** Sets a key even when it is "__proto__" (an assignment would set the prototype). */
export function define(object: Record<string, unknown>, key: string, value: unknown): void {
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

export function condition(column: string, value: unknown): Verdict {
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

export function whereValue(
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

export type OrderSpec = { column: "id" | "t" | "i"; desc: boolean; nullsFirst?: boolean }[];

const ORDER_ITEM = /^([A-Za-z_][A-Za-z0-9_$]*)(?:\s+(asc|desc))?(?:\s+nulls\s+(first|last))?$/i;

/** The documented string forms of orderBy, as the model reads them. */
function orderText(text: string): OrderSpec | "validation" | "reject" {
  const spec: OrderSpec = [];
  let unknown = false;
  for (const raw of text.split(",")) {
    const [, column, direction, nulls] = ORDER_ITEM.exec(raw.trim()) ?? [];
    if (column === undefined) return "validation";
    if (!["id", "t", "i"].includes(column)) unknown = true;
    spec.push({
      column: column as "id" | "t" | "i",
      desc: direction?.toLowerCase() === "desc",
      nullsFirst: nulls === undefined ? undefined : nulls.toLowerCase() === "first",
    });
  }
  return unknown ? "reject" : spec;
}

/** A random orderBy and its meaning, or "validation" when it must be refused. */
export function orderBy(
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

export function sortedBy(rows: readonly ModelRow[], spec: OrderSpec): boolean {
  for (let k = 1; k < rows.length; k++) {
    const before = rows[k - 1]!;
    const row = rows[k]!;
    for (const { column, desc, nullsFirst } of spec) {
      const a = before[column];
      const b = row[column];
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
