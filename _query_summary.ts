// The query text as telemetry may show it: `db.query.summary` (operations and their targets, in
// the order written) and, for text sent without bind parameters, the text with its literals
// replaced by `?`. OpenTelemetry semantic conventions v1.44.0, docs/db/database-spans.md,
// "Sanitization of db.query.text" and "Generating a summary of the query"; checked against the
// conventions' own cases (docs/non-normative/database-test-cases/db-sql-test-cases.json).
// One pass of a lexer that knows PostgreSQL's quoting (as `_sql_scan.ts` does), then a small
// reader of the words outside quotes. Pure.

/** What telemetry records of one statement text. */
export interface QueryDescription {
  /** `{operation} {target} …`, at most 255 characters; `undefined` when no operation is known. */
  readonly summary: string | undefined;
  /** The text with comments removed and every literal replaced by `?`. */
  readonly sanitized: string;
}

// A token the summary reader sees: a word or quoted identifier, or one punctuation character.
interface Token {
  readonly text: string;
  /** Upper case of a bare word; "" for a quoted identifier or punctuation. */
  readonly word: string;
  /** A quoted identifier. */
  readonly quoted: boolean;
}

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
}

function isIdentChar(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;
// Letters that make the quoted string after them a literal of another kind: E'…' (escapes),
// B'…' and X'…' (bit strings), N'…' (national), U&'…' (Unicode escapes).
const STRING_PREFIXES: ReadonlySet<string> = new Set(["E", "B", "X", "N"]);

/** Reads `sql` once: the sanitized text and the tokens outside quotes and comments. */
function lex(sql: string): { sanitized: string; tokens: Token[] } {
  const n = sql.length;
  const tokens: Token[] = [];
  let out = "";
  let i = 0;
  // Index after the last character copied to `out` unchanged.
  let copied = 0;
  const replace = (from: number, to: number, by: string): void => {
    out += sql.slice(copied, from) + by;
    copied = to;
  };
  const skipString = (start: number, escapes: boolean): number => {
    let k = start + 1;
    while (k < n) {
      const c = sql.charCodeAt(k);
      if (escapes && c === 92) k += 2;
      else if (c === 39 && sql.charCodeAt(k + 1) === 39) k += 2;
      else if (c === 39) return k + 1;
      else k++;
    }
    return n;
  };
  const skipNumber = (start: number): number => {
    let k = start;
    if (sql.charCodeAt(k) === 48 && /[xXoObB]/.test(sql[k + 1] ?? "")) {
      k += 2;
      while (k < n && (isIdentChar(sql.charCodeAt(k)))) k++;
      return k;
    }
    while (k < n && (isDigit(sql.charCodeAt(k)) || sql.charCodeAt(k) === 95)) k++;
    if (sql.charCodeAt(k) === 46) {
      k++;
      while (k < n && (isDigit(sql.charCodeAt(k)) || sql.charCodeAt(k) === 95)) k++;
    }
    const e = sql.charCodeAt(k);
    if (e === 69 || e === 101) {
      let m = k + 1;
      if (sql.charCodeAt(m) === 43 || sql.charCodeAt(m) === 45) m++;
      if (isDigit(sql.charCodeAt(m))) {
        k = m;
        while (k < n && isDigit(sql.charCodeAt(k))) k++;
      }
    }
    return k;
  };
  const startsNumber = (k: number): boolean =>
    isDigit(sql.charCodeAt(k)) || (sql.charCodeAt(k) === 46 && isDigit(sql.charCodeAt(k + 1)));
  while (i < n) {
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (c === 45 && next === 45) { // -- comment: removed, its line break kept
      const end = sql.indexOf("\n", i);
      replace(i, end < 0 ? n : end, "");
      i = end < 0 ? n : end;
    } else if (c === 47 && next === 42) { // /* nested */ comment: removed
      let depth = 1;
      let k = i + 2;
      while (k < n && depth > 0) {
        if (sql.charCodeAt(k) === 47 && sql.charCodeAt(k + 1) === 42) {
          depth++;
          k += 2;
        } else if (sql.charCodeAt(k) === 42 && sql.charCodeAt(k + 1) === 47) {
          depth--;
          k += 2;
        } else k++;
      }
      replace(i, k, "");
      i = k;
    } else if (c === 39) { // 'string'
      const end = skipString(i, false);
      replace(i, end, "?");
      i = end;
    } else if (c === 34) { // "identifier"
      let k = i + 1;
      while (k < n) {
        if (sql.charCodeAt(k) === 34 && sql.charCodeAt(k + 1) === 34) k += 2;
        else if (sql.charCodeAt(k) === 34) break;
        else k++;
      }
      k = Math.min(k + 1, n);
      tokens.push({ text: sql.slice(i, k), word: "", quoted: true });
      i = k;
    } else if (c === 36) { // $1 stays; $tag$…$tag$ is a string
      let k = i + 1;
      while (k < n && isDigit(sql.charCodeAt(k))) k++;
      if (k > i + 1) {
        i = k;
        continue;
      }
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 70));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        const end = close < 0 ? n : close + tag[0].length;
        replace(i, end, "?");
        i = end;
      } else i++;
    } else if (startsNumber(i) || ((c === 43 || c === 45) && startsNumber(i + 1))) {
      // A number, with the sign in front of it (as the conventions' cases read `99+100`).
      const end = skipNumber(c === 43 || c === 45 ? i + 1 : i);
      replace(i, end, "?");
      i = end;
    } else if (isIdentStart(c)) {
      let k = i + 1;
      while (k < n && isIdentChar(sql.charCodeAt(k))) k++;
      const text = sql.slice(i, k);
      const word = text.toUpperCase();
      if (sql.charCodeAt(k) === 39 && STRING_PREFIXES.has(word)) {
        const end = skipString(k, word === "E");
        replace(i, end, "?");
        i = end;
      } else if (word === "U" && sql.charCodeAt(k) === 38 && sql.charCodeAt(k + 1) === 39) {
        const end = skipString(k + 1, false);
        replace(i, end, "?");
        i = end;
      } else if (word === "TRUE" || word === "FALSE") {
        replace(i, k, "?");
        i = k;
      } else {
        tokens.push({ text, word, quoted: false });
        i = k;
      }
    } else {
      if (c === 40 || c === 41 || c === 44 || c === 59 || c === 46) {
        tokens.push({ text: sql.charAt(i), word: "", quoted: false });
      }
      i++;
    }
  }
  return { sanitized: out + sql.slice(copied), tokens };
}

// Words that name the kind of object after CREATE, ALTER and DROP.
const OBJECT_KINDS: ReadonlySet<string> = new Set([
  "TABLE",
  "INDEX",
  "VIEW",
  "SEQUENCE",
  "SCHEMA",
  "DATABASE",
  "TYPE",
  "FUNCTION",
  "PROCEDURE",
  "TRIGGER",
  "EXTENSION",
  "ROLE",
  "USER",
  "DOMAIN",
  "CHANGEFEED",
]);
// Words between CREATE and the kind of object that are left out of the summary.
const OBJECT_MODIFIERS: ReadonlySet<string> = new Set([
  "OR",
  "REPLACE",
  "TEMP",
  "TEMPORARY",
  "UNLOGGED",
  "UNIQUE",
  "GLOBAL",
  "LOCAL",
  "MATERIALIZED",
  "IF",
  "NOT",
  "EXISTS",
  "CONCURRENTLY",
  "ONLY",
]);
// Operations recognised wherever they stand (subqueries, CTE bodies, INSERT … SELECT).
const QUERY_OPERATIONS: ReadonlySet<string> = new Set([
  "SELECT",
  "INSERT",
  "UPDATE",
  "DELETE",
  "UPSERT",
  "MERGE",
]);
// First words after which the rest of the statement names no target worth summarising
// (BEGIN, SET, SHOW, SAVEPOINT, …) unless it holds a query (EXPLAIN, PREPARE, DECLARE).
const QUERY_WRAPPERS: ReadonlySet<string> = new Set([
  "EXPLAIN",
  "PREPARE",
  "DECLARE",
  "CREATE",
]);
// Words that end a FROM list (anything else after a table name is its alias).
const CLAUSE_WORDS: ReadonlySet<string> = new Set([
  "WHERE",
  "GROUP",
  "ORDER",
  "HAVING",
  "LIMIT",
  "OFFSET",
  "FETCH",
  "FOR",
  "UNION",
  "INTERSECT",
  "EXCEPT",
  "JOIN",
  "INNER",
  "LEFT",
  "RIGHT",
  "FULL",
  "CROSS",
  "NATURAL",
  "OUTER",
  "ON",
  "USING",
  "RETURNING",
  "SET",
  "VALUES",
  "WINDOW",
  "SELECT",
  "DEFAULT",
  "AS",
  "WITH",
  "TABLESAMPLE",
  "LATERAL",
  "ONLY",
  "OF",
  "WHEN",
  "THEN",
  "DO",
]);

// Words after which UPDATE or DELETE is part of a clause.
const NOT_AN_OPERATION_AFTER: ReadonlySet<string> = new Set(["DO", "FOR", "KEY", "ON"]);

// What the reader sees before the first token and past the last: no word, no punctuation.
const NO_TOKEN: Token = { text: "", word: "", quoted: false };

const SUMMARY_LIMIT = 255;

type Expect = "none" | "one" | "list";

/** Reads operations and targets from the tokens, in the order written. */
function summarize(tokens: readonly Token[]): string | undefined {
  const parts: string[] = [];
  let length = -1;
  let full = false;
  const add = (part: string): void => {
    if (full) return;
    // Truncated at 255 characters, never inside an operation or a target.
    if (length + 1 + part.length > SUMMARY_LIMIT) {
      full = true;
      return;
    }
    parts.push(part);
    length += 1 + part.length;
  };
  // Where a table name is expected: one (after INTO, UPDATE, JOIN, TABLE) or a list (FROM).
  let expect: Expect = "none";
  // In a FROM list, after a table name: an alias may follow, then "," or a clause word.
  let afterTarget = false;
  let statementStart = true;
  let skipStatement = false;
  // The FROM-list state of the enclosing parentheses.
  const stack: { expect: Expect; afterTarget: boolean }[] = [];
  let i = 0;
  const at = (k: number): Token => tokens[k] ?? NO_TOKEN;
  const name = (): string => {
    // A qualified name: a.b, "a"."b".
    let text = at(i).text;
    while (at(i + 1).text === "." && (at(i + 2).word || at(i + 2).quoted)) {
      text += "." + at(i + 2).text;
      i += 2;
    }
    return text;
  };
  for (; i < tokens.length; i++) {
    const t = at(i);
    if (t.text === ";") {
      statementStart = true;
      skipStatement = false;
      expect = "none";
      afterTarget = false;
      stack.length = 0;
      continue;
    }
    if (skipStatement) continue;
    if (statementStart) {
      statementStart = false;
      if (t.word === "") continue;
      if (t.word === "CREATE" || t.word === "ALTER" || t.word === "DROP") {
        let k = i + 1;
        while (OBJECT_MODIFIERS.has(at(k).word)) k++;
        const kind = at(k);
        if (OBJECT_KINDS.has(kind.word)) {
          add(`${t.text} ${kind.text}`);
          i = k + 1;
          while (OBJECT_MODIFIERS.has(at(i).word)) i++;
          if (at(i).quoted || (at(i).word && at(i).word !== "ON")) {
            add(name());
          } else i--;
          // CREATE … AS SELECT goes on to its query; ALTER and DROP name no more targets.
          skipStatement = t.word !== "CREATE";
          continue;
        }
        add(t.text);
        skipStatement = t.word !== "CREATE";
        continue;
      }
      if (t.word === "TRUNCATE") {
        let op = t.text;
        if (at(i + 1).word === "TABLE") op += ` ${at(++i).text}`;
        add(op);
        expect = "list";
        afterTarget = false;
        continue;
      }
      if (t.word === "COPY") {
        add(t.text);
        // COPY t [(columns)] FROM …: one target; COPY (query) TO …: the query's.
        if (at(i + 1).quoted || at(i + 1).word) {
          i++;
          add(name());
          skipStatement = true;
        }
        continue;
      }
      if (t.word === "WITH") continue;
      if (!QUERY_OPERATIONS.has(t.word)) {
        add(t.text);
        if (!QUERY_WRAPPERS.has(t.word)) skipStatement = true;
        continue;
      }
    }
    if (t.text === "(") {
      stack.push({ expect, afterTarget });
      // A parenthesis right after INTO t is a column list; after FROM, a subquery.
      expect = "none";
      afterTarget = false;
      continue;
    }
    if (t.text === ")") {
      const outer = stack.pop();
      if (outer) {
        expect = outer.expect;
        // A subquery in a FROM list stands where a table name would, alias and all.
        afterTarget = outer.expect === "list" ? true : outer.afterTarget;
        if (outer.expect === "one") expect = "none";
      }
      continue;
    }
    if (t.text === ",") {
      if (expect === "list") afterTarget = false;
      continue;
    }
    if (t.text === ".") continue;
    if (expect !== "none" && !afterTarget && (t.quoted || (t.word && !CLAUSE_WORDS.has(t.word)))) {
      const target = name();
      // In a FROM list a name followed by "(" is a function (generate_series(…)), not a table.
      if (expect === "list" && at(i + 1).text === "(") {
        afterTarget = true;
        continue;
      }
      add(target);
      if (expect === "one") expect = "none";
      else afterTarget = true;
      continue;
    }
    if (t.word === "") continue;
    if (expect === "list" && afterTarget && !CLAUSE_WORDS.has(t.word)) continue; // an alias
    if (t.word === "AS" || t.word === "ONLY" || t.word === "LATERAL") continue;
    expect = "none";
    afterTarget = false;
    // ON CONFLICT DO UPDATE, FOR [NO KEY] UPDATE, ON DELETE CASCADE: clauses, not operations.
    if (QUERY_OPERATIONS.has(t.word) && !NOT_AN_OPERATION_AFTER.has(at(i - 1).word)) {
      add(t.text);
      if (t.word === "UPDATE") expect = "one";
    } else if (t.word === "FROM" || t.word === "USING") {
      expect = "list";
    } else if (t.word === "JOIN" || t.word === "INTO") {
      expect = "one";
    }
  }
  return parts.length === 0 ? undefined : parts.join(" ");
}

// Texts a program sends are few, and most are short; a long one (a batch's VALUES, a statement
// with a large literal) is read again each time rather than kept.
const cache = new Map<string, QueryDescription>();
const CACHED_TEXT_LIMIT = 8192;
const CACHE_CHARS_LIMIT = 1 << 20;
let cachedChars = 0;

/**
 * The summary and the sanitized text of a statement text, remembered for the next statement
 * with the same text (texts up to 8 KiB, 1 Mi characters in all, then the cache starts over).
 */
export function describeQuery(sql: string): QueryDescription {
  let description = cache.get(sql);
  if (description === undefined) {
    const { sanitized, tokens } = lex(sql);
    description = Object.freeze({ summary: summarize(tokens), sanitized });
    if (sql.length <= CACHED_TEXT_LIMIT) {
      if (cachedChars + 2 * sql.length > CACHE_CHARS_LIMIT) {
        cache.clear();
        cachedChars = 0;
      }
      cache.set(sql, description);
      cachedChars += sql.length + sanitized.length;
    }
  }
  return description;
}
