// Mistakes a new user makes fail at once, typed, naming what is wrong: a placeholder count that
// does not match the parameters is refused before anything is sent, in every API.
import assert from "node:assert/strict";
import { AsyncDatabase, Database, ValidationError } from "./mod.ts";
import { testUrl } from "./_test_util.ts";

function isCountError(expected: number, given: number) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ValidationError, Deno.inspect(error));
    assert.equal(error.field, "params");
    assert.match(error.message, new RegExp(`expects ${expected} parameters?\\b.* but ${given} `));
    return true;
  };
}

Deno.test("AsyncDatabase refuses a placeholder count that does not match the parameters, before sending", async () => {
  await using db = new AsyncDatabase(testUrl(), { maxConnections: 1 });
  await assert.rejects(() => db.execute("SELECT $1::int + $2::int", [1]), isCountError(2, 1));
  await assert.rejects(() => db.queryOne("SELECT $1::int", [1, 2]), isCountError(1, 2));
  await assert.rejects(() => db.execute("SELECT 1", [1]), isCountError(0, 1));
  await assert.rejects(
    () => db.transaction((tx) => tx.execute("SELECT $1::int + $2::int", [1])),
    isCountError(2, 1),
  );
  await assert.rejects(() => db.stream("SELECT $2::int", [1]).next(), isCountError(2, 1));
  // A "$1" in a literal, a quoted name or a comment is no placeholder.
  assert.deepEqual(
    await db.execute(`SELECT '$2' AS "$3", $1::int AS n /* $4 */`, [7]),
    [{ $3: "$2", n: 7 }],
  );
  // The connection was never taken: the pool of one still answers.
  assert.deepEqual(await db.execute("SELECT 1 AS one"), [{ one: 1 }]);
});

Deno.test("Database refuses a placeholder count that does not match the parameters", () => {
  using db = new Database(testUrl(), { maxConnections: 1 });
  assert.throws(() => db.execute("SELECT $1::int + $2::int", [1]), isCountError(2, 1));
  assert.throws(
    () => db.transaction((tx) => tx.execute("SELECT $1::int + $2::int", [1])),
    isCountError(2, 1),
  );
  assert.throws(() => [...db.stream("SELECT $2::int", [1])], isCountError(2, 1));
  assert.deepEqual(db.execute("SELECT 1 AS one"), [{ one: 1 }]);
});
