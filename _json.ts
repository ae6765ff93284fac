// JSON text to values, safe from a V8 bug in JSON.parse: once an object with a key ending in a
// backslash has been parsed, a later object with the same keys before it may read an escaped key
// (`"\n"`, `"\""`, `"\t"`, …) as that backslash key instead (V8 12.8 to at least 15.0, so Deno
// 2.x; https://issues.chromium.org/issues/521080746, nodejs/node#63785). The value is silently
// wrong. Only object keys are affected, and only keys written with an escape, so texts without
// such a key go to JSON.parse, and the rest to the strict reader below, which reads strings with
// JSON.parse (string literals are not affected) and builds objects itself.

/**
 * `JSON.parse(text)`, exact for every text: falls back to a strict reader when a key of `text`
 * holds an escape. Throws `SyntaxError` for text that is not JSON.
 */
export function parseJson(text: string): unknown {
  return hasEscapedKey(text) ? readJsonStrictly(text) : JSON.parse(text);
}

/** The strict reader alone: JSON.parse's results for any text, without JSON.parse's speed. */
export function readJsonStrictly(text: string): unknown {
  return new StrictReader(text).document();
}

/**
 * True when an object key of `text` holds a backslash. For text that is not JSON the answer
 * does not matter: both readers throw.
 */
export function hasEscapedKey(text: string): boolean {
  // The next backslash at or after the current string; it only moves forward.
  let backslash = text.indexOf("\\");
  const length = text.length;
  let position = 0;
  while (backslash !== -1) {
    const open = text.indexOf('"', position);
    if (open === -1) return false;
    let close = open;
    for (;;) {
      close = text.indexOf('"', close + 1);
      if (close === -1) return false;
      let backslashes = 0;
      while (text.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) break;
    }
    if (backslash < open) backslash = text.indexOf("\\", open);
    if (backslash !== -1 && backslash < close) {
      let next = close + 1;
      while (next < length && isSpace(text.charCodeAt(next))) next++;
      if (text.charCodeAt(next) === COLON) return true;
    }
    position = close + 1;
  }
  return false;
}

const BACKSLASH = 92;
const COLON = 58;
const QUOTE = 34;
const COMMA = 44;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** A recursive-descent reader of RFC 8259 JSON with JSON.parse's results. */
class StrictReader {
  #text: string;
  #at = 0;

  constructor(text: string) {
    this.#text = text;
  }

  document(): unknown {
    const value = this.#value();
    this.#skipSpace();
    if (this.#at !== this.#text.length) this.#fail("unexpected text after the value");
    return value;
  }

  #fail(why: string): never {
    throw new SyntaxError(`Cannot parse JSON: ${why} at position ${this.#at}`);
  }

  #skipSpace(): void {
    const text = this.#text;
    while (this.#at < text.length && isSpace(text.charCodeAt(this.#at))) this.#at++;
  }

  #value(): unknown {
    this.#skipSpace();
    const text = this.#text;
    const c = text.charCodeAt(this.#at);
    if (c === OPEN_BRACE) return this.#object();
    if (c === OPEN_BRACKET) return this.#array();
    if (c === QUOTE) return this.#string();
    for (const [word, value] of LITERALS) {
      if (text.startsWith(word, this.#at)) {
        this.#at += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = this.#at;
    const match = NUMBER.exec(text);
    if (match === null) {
      this.#fail(this.#at >= text.length ? "unexpected end" : "unexpected character");
    }
    this.#at += match[0].length;
    return Number(match[0]);
  }

  #string(): string {
    const text = this.#text;
    const open = this.#at;
    let close = open;
    for (;;) {
      close = text.indexOf('"', close + 1);
      if (close === -1) this.#fail("unterminated string");
      let backslashes = 0;
      while (text.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) break;
    }
    this.#at = close + 1;
    // A string literal alone is read correctly by JSON.parse, which also checks its escapes
    // and refuses control characters.
    return JSON.parse(text.slice(open, close + 1));
  }

  #array(): unknown[] {
    this.#at++; // [
    const out: unknown[] = [];
    this.#skipSpace();
    if (this.#text.charCodeAt(this.#at) === CLOSE_BRACKET) {
      this.#at++;
      return out;
    }
    for (;;) {
      out.push(this.#value());
      this.#skipSpace();
      const c = this.#text.charCodeAt(this.#at++);
      if (c === CLOSE_BRACKET) return out;
      if (c !== COMMA) {
        this.#at--;
        this.#fail("expected , or ]");
      }
    }
  }

  #object(): Record<string, unknown> {
    this.#at++; // {
    const out: Record<string, unknown> = {};
    this.#skipSpace();
    if (this.#text.charCodeAt(this.#at) === CLOSE_BRACE) {
      this.#at++;
      return out;
    }
    for (;;) {
      this.#skipSpace();
      if (this.#text.charCodeAt(this.#at) !== QUOTE) this.#fail("expected a key");
      const key = this.#string();
      this.#skipSpace();
      if (this.#text.charCodeAt(this.#at) !== COLON) this.#fail("expected :");
      this.#at++;
      const value = this.#value();
      if (key === "__proto__") {
        // An own property, as JSON.parse makes it; assignment would set the prototype.
        Object.defineProperty(out, key, {
          value,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      } else {
        out[key] = value;
      }
      this.#skipSpace();
      const c = this.#text.charCodeAt(this.#at++);
      if (c === CLOSE_BRACE) return out;
      if (c !== COMMA) {
        this.#at--;
        this.#fail("expected , or }");
      }
    }
  }
}

const LITERALS: readonly (readonly [string, unknown])[] = [
  ["true", true],
  ["false", false],
  ["null", null],
];
