// Reads SQL text the way the server's lexer does, as far as this package needs it: where the
// quoted strings, quoted identifiers, dollar quotes and comments are, so that what is outside
// them (placeholders) can be found. Pure.

function isIdentChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) ||
    code === 95 || code === 36 || code >= 128;
}

const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

/**
 * The highest `$n` placeholder in `sql` outside quotes, quoted identifiers, dollar quotes and
 * comments; 0 when there is none. (The server numbers a statement's parameters up to its
 * highest placeholder, so that is how many it expects.)
 */
export function highestPlaceholder(sql: string): number {
  // Nothing to read in the common case of a statement without "$".
  if (!sql.includes("$")) return 0;
  const n = sql.length;
  let highest = 0;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (c === 45 && next === 45) { // --
      const end = sql.indexOf("\n", i);
      i = end < 0 ? n : end + 1;
    } else if (c === 47 && next === 42) { // /* nested */
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
        } else i++;
      }
    } else if (c === 39) { // '…', E'…' with backslash escapes
      const prev = i > 0 ? sql.charCodeAt(i - 1) : 0;
      const escapes = (prev === 69 || prev === 101) &&
        (i < 2 || !isIdentChar(sql.charCodeAt(i - 2)));
      i++;
      while (i < n) {
        const k = sql.charCodeAt(i);
        if (escapes && k === 92) i += 2;
        else if (k === 39 && sql.charCodeAt(i + 1) === 39) i += 2;
        else if (k === 39) break;
        else i++;
      }
      i++;
    } else if (c === 34) { // "identifier"
      i++;
      while (i < n) {
        if (sql.charCodeAt(i) === 34 && sql.charCodeAt(i + 1) === 34) i += 2;
        else if (sql.charCodeAt(i) === 34) break;
        else i++;
      }
      i++;
    } else if (c === 36 && (i === 0 || !isIdentChar(sql.charCodeAt(i - 1)))) { // $n or $tag$
      let k = i + 1;
      while (k < n && sql.charCodeAt(k) >= 48 && sql.charCodeAt(k) <= 57) k++;
      if (k > i + 1) {
        highest = Math.max(highest, Number(sql.slice(i + 1, k)));
        i = k;
        continue;
      }
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 70));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close < 0 ? n : close + tag[0].length;
      } else i++;
    } else if (isIdentChar(c)) {
      // A word: a "$" inside it (a$1) is part of the name, not a placeholder.
      i++;
      while (i < n && isIdentChar(sql.charCodeAt(i))) i++;
    } else i++;
  }
  return highest;
}
