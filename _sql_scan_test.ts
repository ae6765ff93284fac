import assert from "node:assert/strict";
import {
  highestPlaceholder,
  isTransactionControl,
  splitStatements,
  SqlScanner,
  type SqlTokenKind,
} from "./_sql_scan.ts";

function texts(sql: string): string[] {
  return splitStatements(sql).map((s) => s.text);
}

function tokens(sql: string): [SqlTokenKind, string][] {
  const scan = new SqlScanner(sql);
  const out: [SqlTokenKind, string][] = [];
  while (scan.next()) out.push([scan.kind, sql.slice(scan.start, scan.end)]);
  return out;
}

Deno.test("SqlScanner cuts SQL into tokens the way the server's lexer sees them", () => {
  assert.deepEqual(
    tokens("SELECT 'a;b', \"c\"\"d\" -- x;\n/* y /* z */ */$1+a$2 1$3 $f$;$f$ E'\\'';"),
    [
      ["word", "SELECT"],
      ["space", " "],
      ["string", "'a;b'"],
      ["other", ","],
      ["space", " "],
      ["identifier", '"c""d"'],
      ["space", " "],
      ["comment", "-- x;"],
      ["space", "\n"],
      ["comment", "/* y /* z */ */"],
      ["placeholder", "$1"],
      ["other", "+"],
      ["word", "a$2"],
      ["space", " "],
      ["other", "1$3"],
      ["space", " "],
      ["dollar", "$f$;$f$"],
      ["space", " "],
      ["word", "E"],
      ["string", "'\\''"],
      ["other", ";"],
    ],
  );
  // Unterminated quotes and comments run to the end of the text.
  for (const sql of ["'open", '"open', "$q$ open", "/* open"]) {
    assert.deepEqual(tokens(sql).length, 1, sql);
  }
  assert.deepEqual(tokens(""), []);
});

Deno.test("highestPlaceholder() answers the highest $n outside quotes and comments", () => {
  const cases: [string, number][] = [
    ["SELECT 1", 0],
    ["SELECT $1", 1],
    ["SELECT $2, $1", 2],
    ["SELECT $1 + $10", 10],
    ["SELECT '$3' , $1", 1],
    ["SELECT 'it''s $4', $1", 1],
    ["SELECT E'\\' $5', $1", 1],
    ['SELECT "$6" FROM t WHERE a = $1', 1],
    ["SELECT $$ $7 $$, $1", 1],
    ["SELECT $fn$ $8 $fn$, $2", 2],
    ["SELECT 1 -- $9\n, $1", 1],
    ["SELECT /* $9 /* nested $9 */ $9 */ $1", 1],
    ["SELECT a$1 FROM t", 0],
    ["SELECT x FROM t WHERE a=$1", 1],
    ["SELECT ($1)", 1],
    ["SELECT 'unterminated $1", 0],
  ];
  for (const [sql, expected] of cases) assert.equal(highestPlaceholder(sql), expected, sql);
});

Deno.test("splitStatements() splits at top-level semicolons and keeps line numbers", () => {
  const statements = splitStatements(
    "-- head\nCREATE TABLE a (x INT);\n\nINSERT INTO a VALUES (1);  \n",
  );
  assert.deepEqual(statements, [
    { text: "CREATE TABLE a (x INT)", line: 2 },
    { text: "INSERT INTO a VALUES (1)", line: 4 },
  ]);
  assert.deepEqual(texts("SELECT 1"), ["SELECT 1"]);
  assert.deepEqual(texts(";;  ; -- only comments\n/* x */"), []);
});

Deno.test("splitStatements() ignores semicolons in strings, identifiers and comments", () => {
  assert.deepEqual(texts(`SELECT 'a;b', 'it''s;'; SELECT "c;d"`), [
    `SELECT 'a;b', 'it''s;'`,
    `SELECT "c;d"`,
  ]);
  assert.deepEqual(texts(`SELECT E'x\\';y'; SELECT 2`), [`SELECT E'x\\';y'`, "SELECT 2"]);
  assert.deepEqual(texts("SELECT 1 -- ; not here\n; SELECT /* ; /* nested ; */ ; */ 2"), [
    "SELECT 1 -- ; not here",
    "SELECT /* ; /* nested ; */ ; */ 2",
  ]);
});

Deno.test("splitStatements() keeps dollar-quoted function bodies whole", () => {
  const sql = `CREATE FUNCTION f() RETURNS INT AS $body$
BEGIN
  PERFORM 1; RETURN $$;$$::text::int;
END;
$body$ LANGUAGE plpgsql;
SELECT $1, a$b$c FROM t;
DO $$ BEGIN RAISE NOTICE ';'; END $$;`;
  const out = texts(sql);
  assert.equal(out.length, 3);
  const [body] = out;
  assert.ok(body !== undefined);
  assert.match(body, /^CREATE FUNCTION[\s\S]*LANGUAGE plpgsql$/);
  assert.equal(out[1], "SELECT $1, a$b$c FROM t");
  assert.equal(out[2], "DO $$ BEGIN RAISE NOTICE ';'; END $$");
});

Deno.test("splitStatements() keeps BEGIN ATOMIC bodies whole, as psql does", () => {
  const sql = `CREATE OR REPLACE FUNCTION f(x INT) RETURNS INT LANGUAGE SQL
BEGIN ATOMIC
  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;
  SELECT x;
END;
SELECT CASE WHEN true THEN 1 END; BEGIN; COMMIT;`;
  const out = texts(sql);
  assert.equal(out.length, 4);
  const [body] = out;
  assert.ok(body !== undefined);
  assert.match(body, /^CREATE OR REPLACE FUNCTION[\s\S]*SELECT x;\nEND$/);
  assert.deepEqual(out.slice(1), ["SELECT CASE WHEN true THEN 1 END", "BEGIN", "COMMIT"]);
});

Deno.test("isTransactionControl() spots BEGIN, COMMIT and the like but not savepoints", () => {
  for (
    const s of [
      "BEGIN",
      "begin transaction",
      "START TRANSACTION",
      "COMMIT",
      "END",
      "ROLLBACK",
      "ABORT",
      "PREPARE TRANSACTION 'x'",
    ]
  ) {
    assert.equal(isTransactionControl(s), true, s);
  }
  for (
    const s of [
      "SAVEPOINT a",
      "ROLLBACK TO SAVEPOINT a",
      "rollback work to a",
      "RELEASE a",
      "BEGIN ATOMIC SELECT 1; END",
      "CREATE TABLE begin_x (id INT)",
      "BEGINNING",
    ]
  ) {
    assert.equal(isTransactionControl(s), false, s);
  }
});
