// Parameter values to PostgreSQL text, by the type the server gives the parameter. postgres.js
// writes `'' + x` where it has no rule (an object into a TEXT column is stored as
// "[object Object]", an array as "1,2"), sends a boolean column `'f'` for anything but `true`
// (the string "true" included), and reads timestamp strings with `new Date()` (microseconds
// lost, "infinity" thrown as a RangeError, 2024-02-30 rolled over to March 1). These rules
// pass strings through for the server to read, write JavaScript values exactly, and refuse
// the rest with ValidationError.
import { Buffer } from "node:buffer";
import { ValidationError } from "./errors.ts";

/** A serializer of one PostgreSQL type: the value's text, or a thrown ValidationError. */
export type Serializer = (value: unknown) => string;

/** True for `{}` and `Object.create(null)`: no class, no Map, no array. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * A value as an error message names it — the one describer of the package: a string as JSON
 * (`"users"`, quotes and control characters escaped), a number or boolean as written, a bigint
 * with its `n`, `null`, `undefined`; anything else by its kind (`an array`, `a Map`, `a Date`,
 * `a function`, `an object`), never its contents.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "bigint":
      return `${value}n`;
    case "number":
    case "boolean":
    case "undefined":
      return String(value);
    case "symbol":
    case "function":
      return `a ${typeof value}`;
  }
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)
    ?.constructor?.name;
  if (!name || name === "Object") return "an object";
  // "a Uint8Array": a U reads as "you".
  return /^[AEIO]/.test(name) ? `an ${name}` : `a ${name}`;
}

function refuse(value: unknown, type: string, hint = ""): never {
  throw new ValidationError(
    `Cannot send ${describeValue(value)} as a ${type} parameter${hint ? `: ${hint}` : ""}`,
    { field: "params" },
  );
}

/**
 * A `Date` as PostgreSQL timestamp text: ISO 8601 for years 1 to 9999, and the era for the
 * others (PostgreSQL reads neither ISO's signed years nor year 0).
 * @throws {ValidationError} For an invalid Date.
 */
export function timestampText(date: Date): string {
  const time = date.getTime();
  if (Number.isNaN(time)) refuse(date, "timestamp", "the Date is invalid");
  const iso = date.toISOString();
  const year = date.getUTCFullYear();
  if (year >= 1 && year <= 9999) return iso;
  const rest = iso.slice(iso.indexOf("-", 1)); // -MM-DDTHH:mm:ss.sssZ
  return year > 9999 ? `${year}${rest}` : `${String(1 - year).padStart(4, "0")}${rest} BC`;
}

function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  // `value` is after toJSON(); the holder still has the original.
  const original = (this as Record<string, unknown>)[key];
  switch (typeof original) {
    case "string":
    case "boolean":
    case "undefined": // dropped from objects and null in arrays, as JSON.stringify does
      return value;
    case "number":
      if (!Number.isFinite(original)) {
        refuse(original, "JSON", `at ${jsonPosition(key)}, JSON has no ${original}`);
      }
      return value;
    case "object": {
      if (original === null || original instanceof Date) return value;
      if (!Array.isArray(original) && !isPlainObject(original)) {
        return refuse(
          original,
          "JSON",
          `at ${jsonPosition(key)}: only plain objects, arrays and Dates`,
        );
      }
      // A plain object's own toJSON() may answer anything: it must be JSON too.
      if (
        value !== original && typeof value === "object" && value !== null &&
        !Array.isArray(value) && !isPlainObject(value)
      ) {
        return refuse(value, "JSON", `at ${jsonPosition(key)}, from toJSON()`);
      }
      return value;
    }
    default:
      return refuse(original, "JSON", `at ${jsonPosition(key)}`);
  }
}

function jsonPosition(key: string): string {
  return key === "" ? "the top" : JSON.stringify(key);
}

/**
 * A value as JSON text: plain objects, arrays, strings, finite numbers, booleans, null, and
 * Dates (as their ISO string). A Map, a Set, a bigint, a function, NaN or another class's
 * instance anywhere inside is refused instead of being written as `{}`, `null`, left out, or
 * as its toJSON() (which the sync bridge could not reproduce).
 * @throws {ValidationError} For a value JSON cannot hold exactly.
 */
export function jsonText(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, jsonReplacer);
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    // A cycle (TypeError) or nesting deeper than the stack (RangeError).
    throw new ValidationError(
      `Cannot send ${describeValue(value)} as a JSON parameter: ${(error as Error).message}`,
      { field: "params", cause: error },
    );
  }
  if (text === undefined) refuse(value, "JSON");
  return text;
}

/**
 * The text of an object that defines its own `toString` (a Decimal, a URL), or `undefined`
 * for the others: a plain object, an array or typed array ("1,2"), a Map or a Set.
 */
function ownText(value: object): string | undefined {
  const toString = (value as { toString?: unknown }).toString;
  if (
    typeof toString !== "function" || toString === Object.prototype.toString ||
    toString === Array.prototype.toString || ArrayBuffer.isView(value)
  ) {
    return undefined;
  }
  try {
    return String(value);
  } catch {
    return undefined; // a toString that throws: refused below
  }
}

/** Strings, numbers, bigints and booleans as text; a Date as a timestamp. */
function text(type: string): Serializer {
  return (value) => {
    switch (typeof value) {
      case "string":
        return value;
      case "number":
      case "bigint":
        return String(value);
      case "boolean":
        return value ? "true" : "false";
      case "object": {
        if (value === null) break;
        if (value instanceof Date) return timestampText(value);
        const own = ownText(value);
        if (own !== undefined) return own;
      }
    }
    return refuse(value, type);
  };
}

function numeric(type: string): Serializer {
  return (value) => {
    switch (typeof value) {
      case "string": // the server reads it ("-0" from a -0 too)
        return value;
      case "number":
      case "bigint":
        return String(value);
      case "object": {
        // A decimal library's number, by its own toString().
        const own = value === null ? undefined : ownText(value);
        if (own !== undefined) return own;
      }
    }
    return refuse(value, type);
  };
}

const bool: Serializer = (value) => {
  switch (typeof value) {
    case "boolean":
      return value ? "t" : "f";
    case "string": // "true", "yes", "1", …: the server reads it or refuses it
      return value;
    case "number":
    case "bigint":
      return String(value);
  }
  return refuse(value, "boolean");
};

function timestamp(type: string): Serializer {
  return (value) => {
    if (typeof value === "string") return value; // the server reads it: µs, infinity, zones
    if (value instanceof Date) return timestampText(value);
    return refuse(value, type, "pass a Date or a string");
  };
}

const bytea: Serializer = (value) => {
  if (value instanceof Uint8Array) return "\\x" + Buffer.from(value).toString("hex");
  if (typeof value === "string") return "\\x" + Buffer.from(value, "utf8").toString("hex");
  return refuse(value, "bytea", "pass a Uint8Array");
};

const json: Serializer = (value) => jsonText(value);

/**
 * Wraps postgres.js's serializer of an array type: an array or an array literal string goes
 * through; anything else is refused (postgres.js would write the object itself).
 */
export function strictArray(serialize: Serializer): Serializer {
  return (value) =>
    Array.isArray(value) || typeof value === "string"
      ? serialize(value)
      : refuse(value, "array", "pass an array");
}

/**
 * The serializers by type OID, and `unknown` for the types without one (enums, domains,
 * `citext`, …; postgres.js writes `'' + x` there).
 */
export function strictSerializers(): Record<number, Serializer> & { unknown: Serializer } {
  const out: Record<number, Serializer> & { unknown: Serializer } = { unknown: text("text") };
  for (const [oid, name] of TEXT_TYPES) out[oid] = text(name);
  for (const [oid, name] of NUMERIC_TYPES) out[oid] = numeric(name);
  for (const [oid, name] of TIMESTAMP_TYPES) out[oid] = timestamp(name);
  out[16] = bool;
  out[17] = bytea;
  out[114] = json;
  out[3802] = json;
  return out;
}

const TEXT_TYPES: readonly (readonly [number, string])[] = [
  [0, "text"],
  [18, "char"],
  [19, "name"],
  [25, "text"],
  [142, "xml"],
  [1042, "character"],
  [1043, "varchar"],
  [2950, "uuid"],
  [1186, "interval"],
  [1083, "time"],
  [1266, "timetz"],
  [869, "inet"],
  [650, "cidr"],
  [829, "macaddr"],
];

const NUMERIC_TYPES: readonly (readonly [number, string])[] = [
  [20, "int8"],
  [21, "int2"],
  [23, "int4"],
  [26, "oid"],
  [700, "float4"],
  [701, "float8"],
  [790, "money"],
  [1700, "numeric"],
];

const TIMESTAMP_TYPES: readonly (readonly [number, string])[] = [
  [1082, "date"],
  [1114, "timestamp"],
  [1184, "timestamptz"],
];
