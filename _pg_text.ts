// Readers of PostgreSQL's text output for the types postgres.js reads wrongly or not exactly:
// timestamps and dates of every year, INT8 by the pool's \`int8\` mode, bytea hex, and arrays
// (NULL elements, nested, every delimiter). Pure.
import { Buffer } from "node:buffer";
import type { Int8Mode } from "./_options.ts";

/** Reads bytea's hex output (`\\x…`). */
export function hexToBytes(hex: string): Uint8Array {
  const buf = Buffer.from(hex.slice(2), "hex");
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

// postgres.js reads dates and timestamps with new Date(text), which puts years 1-99 in the
// 1900s and cannot read BC years or years after 9999; this reads PostgreSQL's output exactly.
export function parseTimestamp(x: string): Date {
  if (x === "infinity") return new Date(8.64e15);
  if (x === "-infinity") return new Date(-8.64e15);
  const date = /^(\d{4,})-(\d\d)-(\d\d)( BC)?$/.exec(x);
  if (date) {
    // DATE: midnight UTC, as postgres.js reads it, for every year.
    const d = new Date(0);
    d.setUTCFullYear(
      date[4] ? 1 - Number(date[1]) : Number(date[1]),
      Number(date[2]) - 1,
      Number(date[3]),
    );
    return d;
  }
  const m =
    /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?( BC)?$/
      .exec(x);
  if (!m) return new Date(x);
  const year = m[12] ? 1 - Number(m[1]) : Number(m[1]);
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, "0")) : 0;
  const d = new Date(0);
  if (m[8] === undefined) {
    // TIMESTAMP without time zone: local time, as postgres.js reads it.
    d.setFullYear(year, Number(m[2]) - 1, Number(m[3]));
    d.setHours(Number(m[4]), Number(m[5]), Number(m[6]), ms);
    return d;
  }
  d.setUTCFullYear(year, Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), ms);
  const offset = (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)) *
    (m[8] === "-" ? -1 : 1);
  return new Date(d.getTime() - offset * 1000);
}

/** The reader of INT8 values for the pool's `int8` mode. */
export function int8Parser(mode: Int8Mode): (x: string) => unknown {
  if (mode === "string") return (x) => x;
  if (mode === "number") {
    return (x) => {
      const n = Number(x);
      if (!Number.isSafeInteger(n)) {
        throw new RangeError(
          `Cannot read INT8 value ${x} as a number: outside the safe integer range (use int8: "bigint")`,
        );
      }
      return n;
    };
  }
  return (x) => BigInt(x);
}

// postgres.js 3.4.9 parses an unquoted NULL element of an array as the text "NULL" (and an
// int4[] NULL as NaN). This parser follows PostgreSQL's array output format exactly.
export function parseArray(
  text: string,
  element: ((x: string) => unknown) | undefined,
  delimiter: string,
): unknown[] {
  let i = text[0] === "[" ? text.indexOf("=") + 1 : 0; // skip "[1:2]=" bounds decoration
  const value = (raw: string): unknown => element ? element(raw) : raw;
  function parse(): unknown[] {
    const out: unknown[] = [];
    i++; // "{"
    if (text[i] === "}") {
      i++;
      return out;
    }
    for (;;) {
      const c = text[i];
      if (c === "{") {
        out.push(parse());
      } else if (c === '"') {
        let s = "";
        for (i++; text[i] !== '"'; i++) {
          if (text[i] === "\\") i++;
          s += text[i];
        }
        i++;
        out.push(value(s));
      } else {
        let j = i;
        while (j < text.length && text[j] !== delimiter && text[j] !== "}") j++;
        const raw = text.slice(i, j);
        i = j;
        out.push(raw === "NULL" ? null : value(raw));
      }
      if (text[i] === delimiter) {
        i++;
      } else {
        i++; // "}"
        return out;
      }
    }
  }
  return parse();
}
