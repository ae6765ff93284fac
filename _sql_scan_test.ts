import assert from "node:assert/strict";
import { highestPlaceholder } from "./_sql_scan.ts";

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
