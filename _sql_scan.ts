// Reads SQL text the way the server's lexer does, as far as this package needs it: one scanner
// (`SqlScanner`) cuts the text into tokens — where the quoted strings, quoted identifiers,
// dollar quotes and comments are — and the readers below use it to find what lies outside
// them: the `$n` placeholders of a statement, and the top-level semicolons between the
// statements of a script (as psql splits them). Pure.

/**
 * What a token of {@linkcode SqlScanner} is:
 * - `space`: whitespace;
 * - `comment`: `-- …` up to the end of the line (the newline excluded), or a nested `/* … *\/`;
 * - `string`: `'…'`, or `E'…'` with backslash escapes (the `E` is the word before it);
 * - `identifier`: `"…"`;
 * - `dollar`: a dollar-quoted string, `$$…$$` or `$tag$…$tag$`;
 * - `placeholder`: `$n`;
 * - `word`: a keyword or an unquoted name;
 * - `other`: anything else — a character of punctuation or an operator, or a run of name
 *   characters that cannot start a name (a number, or what follows a `$` inside a name).
 */
export type SqlTokenKind =
  | "space"
  | "comment"
  | "string"
  | "identifier"
  | "dollar"
  | "placeholder"
  | "word"
  | "other";

function isIdentChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) ||
    code === 95 || code === 36 || code >= 128;
}

function isIdentStart(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code >= 128;
}

function isSpace(code: number): boolean {
  // " ", \t, \n, \v, \f, \r
  return code === 32 || (code >= 9 && code <= 13);
}

const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

/**
 * Cuts SQL text into tokens, one per `next()`; `kind`, `start` and `end` (exclusive) describe
 * the current one. An unterminated quote or comment runs to the end of the text.
 */
export class SqlScanner {
  readonly #sql: string;
  #kind: SqlTokenKind = "space";
  #start = 0;
  #end = 0;

  /** A scanner at the start of `sql`. */
  constructor(sql: string) {
    this.#sql = sql;
  }

  /** The current token's kind. */
  get kind(): SqlTokenKind {
    return this.#kind;
  }

  /** Where the current token starts. */
  get start(): number {
    return this.#start;
  }

  /** Where the current token ends (exclusive). */
  get end(): number {
    return this.#end;
  }

  /** Moves to the next token; false at the end of the text. */
  next(): boolean {
    const sql = this.#sql;
    const n = sql.length;
    const i = this.#end;
    if (i >= n) return false;
    this.#start = i;
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    let k = i + 1;
    let kind: SqlTokenKind = "other";
    if (isSpace(c)) {
      kind = "space";
      while (k < n && isSpace(sql.charCodeAt(k))) k++;
    } else if (c === 45 && next === 45) { // --
      kind = "comment";
      const end = sql.indexOf("\n", i);
      k = end < 0 ? n : end;
    } else if (c === 47 && next === 42) { // /* nested */
      kind = "comment";
      let depth = 1;
      k = i + 2;
      while (k < n && depth > 0) {
        if (sql.charCodeAt(k) === 47 && sql.charCodeAt(k + 1) === 42) {
          depth++;
          k += 2;
        } else if (sql.charCodeAt(k) === 42 && sql.charCodeAt(k + 1) === 47) {
          depth--;
          k += 2;
        } else k++;
      }
    } else if (c === 39) { // '…', E'…' with backslash escapes
      kind = "string";
      const prev = i > 0 ? sql.charCodeAt(i - 1) : 0;
      const escapes = (prev === 69 || prev === 101) &&
        (i < 2 || !isIdentChar(sql.charCodeAt(i - 2)));
      while (k < n) {
        const q = sql.charCodeAt(k);
        if (escapes && q === 92) k += 2;
        else if (q === 39 && sql.charCodeAt(k + 1) === 39) k += 2;
        else if (q === 39) break;
        else k++;
      }
      k++;
    } else if (c === 34) { // "identifier"
      kind = "identifier";
      while (k < n) {
        if (sql.charCodeAt(k) === 34 && sql.charCodeAt(k + 1) === 34) k += 2;
        else if (sql.charCodeAt(k) === 34) break;
        else k++;
      }
      k++;
    } else if (c === 36 && (i === 0 || !isIdentChar(sql.charCodeAt(i - 1)))) { // $n or $tag$
      while (k < n && sql.charCodeAt(k) >= 48 && sql.charCodeAt(k) <= 57) k++;
      if (k > i + 1) kind = "placeholder";
      else {
        const tag = DOLLAR_TAG.exec(sql.slice(i, i + 70));
        if (tag) {
          kind = "dollar";
          const close = sql.indexOf(tag[0], i + tag[0].length);
          k = close < 0 ? n : close + tag[0].length;
        }
      }
    } else if (isIdentChar(c)) {
      // A name, or a number; a "$" inside either (a$1, 1$2) belongs to it, not a placeholder.
      if (isIdentStart(c)) kind = "word";
      while (k < n && isIdentChar(sql.charCodeAt(k))) k++;
    }
    this.#kind = kind;
    this.#end = Math.min(k, n);
    return true;
  }
}

/**
 * The highest `$n` placeholder in `sql` outside quotes, quoted identifiers, dollar quotes and
 * comments; 0 when there is none. (The server numbers a statement's parameters up to its
 * highest placeholder, so that is how many it expects.)
 */
export function highestPlaceholder(sql: string): number {
  // Nothing to read in the common case of a statement without "$".
  if (!sql.includes("$")) return 0;
  const scan = new SqlScanner(sql);
  let highest = 0;
  while (scan.next()) {
    if (scan.kind === "placeholder") {
      highest = Math.max(highest, Number(sql.slice(scan.start + 1, scan.end)));
    }
  }
  return highest;
}

/** One statement of a script. */
export interface Statement {
  /** The text, without the `;` and without comments before it. */
  readonly text: string;
  /** The 1-based line of its first character in the SQL it came from. */
  readonly line: number;
}

/**
 * Splits SQL into statements at top-level semicolons, as `psql` does: not inside quotes,
 * quoted identifiers, dollar quotes, comments, or a `BEGIN ATOMIC … END` function body.
 * Chunks holding only comments and whitespace are dropped.
 */
export function splitStatements(sql: string): Statement[] {
  const out: Statement[] = [];
  const scan = new SqlScanner(sql);
  let start = -1; // first significant character of the current statement
  let startLine = 1;
  let line = 1;
  let counted = 0; // the newlines before this position are counted in `line`
  let parens = 0;
  let beginDepth = 0;
  const words: string[] = []; // the first words of the statement, lower-case
  let wordCount = 0;
  const finish = (end: number): void => {
    if (start >= 0) out.push({ text: sql.slice(start, end).trim(), line: startLine });
    start = -1;
    parens = 0;
    beginDepth = 0;
    words.length = 0;
    wordCount = 0;
  };
  while (scan.next()) {
    const kind = scan.kind;
    if (kind === "space" || kind === "comment") continue;
    const c = sql[scan.start];
    if (kind === "other" && c === ";") {
      if (parens === 0 && beginDepth === 0) finish(scan.start);
      continue;
    }
    if (start < 0) {
      for (; counted < scan.start; counted++) if (sql.charCodeAt(counted) === 10) line++;
      start = scan.start;
      startLine = line;
    }
    if (kind === "word") {
      const word = sql.slice(scan.start, scan.end).toLowerCase();
      if (wordCount < 4) words.push(word);
      wordCount++;
      // psql's heuristic: in CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN … END (with CASE … END
      // inside it) is a body whose semicolons do not end the statement.
      const routine = words[0] === "create" &&
        (words[1] === "function" || words[1] === "procedure" ||
          (words[1] === "or" && words[2] === "replace" &&
            (words[3] === "function" || words[3] === "procedure")));
      if (routine && parens === 0) {
        if (word === "begin") beginDepth++;
        else if (word === "case" && beginDepth >= 1) beginDepth++;
        else if (word === "end" && beginDepth > 0) beginDepth--;
      }
    } else if (kind === "other") {
      if (c === "(") parens++;
      else if (c === ")" && parens > 0) parens--;
    }
  }
  finish(sql.length);
  return out;
}

const TRANSACTION_CONTROL = /^(begin|start|commit|end|abort|rollback|prepare\s+transaction)\b/i;
const ROLLBACK_TO = /^rollback(\s+(work|transaction))?\s+to\b/i;

/** Whether a statement starts or ends a transaction (which a migration must not do). */
export function isTransactionControl(text: string): boolean {
  return TRANSACTION_CONTROL.test(text) && !ROLLBACK_TO.test(text) &&
    !/^begin\s+atomic\b/i.test(text);
}
