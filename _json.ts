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
    const close = stringEnd(text, open);
    if (close === -1) return false;
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

/** The index of the quote that closes the string opening at `open`, or -1. */
function stringEnd(text: string, open: number): number {
  let close = open;
  for (;;) {
    close = text.indexOf('"', close + 1);
    if (close === -1) return -1;
    let backslashes = 0;
    while (text.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return close;
  }
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

type Frame =
  | { readonly array: unknown[]; readonly object?: undefined }
  | { readonly object: Record<string, unknown>; key: string; readonly array?: undefined };

/**
 * A reader of RFC 8259 JSON with JSON.parse's results. Iterative, with a stack of its own: a
 * value nested thousands deep (PostgreSQL stores them) must not overflow the call stack.
 */
class StrictReader {
  #text: string;
  #at = 0;

  constructor(text: string) {
    this.#text = text;
  }

  document(): unknown {
    const text = this.#text;
    const stack: Frame[] = [];
    let value: unknown;
    for (;;) {
      // Read a value; an opened container is pushed and its first member read next.
      this.#skipSpace();
      const c = text.charCodeAt(this.#at);
      if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        this.#at++;
        this.#skipSpace();
        const close = c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
        if (text.charCodeAt(this.#at) === close) {
          this.#at++;
          value = c === OPEN_BRACE ? {} : [];
        } else {
          stack.push(c === OPEN_BRACE ? { object: {}, key: this.#key() } : { array: [] });
          continue;
        }
      } else {
        value = this.#scalar();
      }
      // Hand the value to its container, closing the containers that end here.
      for (;;) {
        const top = stack.at(-1);
        if (top === undefined) {
          this.#skipSpace();
          if (this.#at !== text.length) this.#fail("unexpected text after the value");
          return value;
        }
        if (top.array) top.array.push(value);
        else define(top.object, top.key, value);
        this.#skipSpace();
        const d = text.charCodeAt(this.#at++);
        if (d === COMMA) {
          if (top.object) top.key = this.#key();
          break;
        }
        if (d !== (top.array ? CLOSE_BRACKET : CLOSE_BRACE)) {
          this.#at--;
          this.#fail(top.array ? "expected , or ]" : "expected , or }");
        }
        stack.pop();
        value = top.array ?? top.object;
      }
    }
  }

  #fail(why: string): never {
    throw new SyntaxError(`Cannot parse JSON: ${why} at position ${this.#at}`);
  }

  #skipSpace(): void {
    const text = this.#text;
    while (this.#at < text.length && isSpace(text.charCodeAt(this.#at))) this.#at++;
  }

  /** A member's key and its colon. */
  #key(): string {
    this.#skipSpace();
    if (this.#text.charCodeAt(this.#at) !== QUOTE) this.#fail("expected a key");
    const key = this.#string();
    this.#skipSpace();
    if (this.#text.charCodeAt(this.#at) !== COLON) this.#fail("expected :");
    this.#at++;
    return key;
  }

  #scalar(): unknown {
    const text = this.#text;
    if (text.charCodeAt(this.#at) === QUOTE) return this.#string();
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
    const close = stringEnd(text, open);
    if (close === -1) this.#fail("unterminated string");
    this.#at = close + 1;
    // A string literal alone is read correctly by JSON.parse, which also checks its escapes
    // and refuses control characters.
    return JSON.parse(text.slice(open, close + 1));
  }
}

function define(out: Record<string, unknown>, key: string, value: unknown): void {
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
}

const LITERALS: readonly (readonly [string, unknown])[] = [
  ["true", true],
  ["false", false],
  ["null", null],
];
