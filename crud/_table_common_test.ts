import assert from "node:assert/strict";
import { ValidationError } from "../errors.ts";
import { byId, checkIds } from "./_table_common.ts";

Deno.test("byId() and checkIds() name a refused value as the parameter checks do", () => {
  const refused = (fn: () => unknown, message: string, field: string) => {
    assert.throws(fn, (error) => {
      assert.ok(error instanceof ValidationError);
      assert.equal(error.message, message);
      assert.equal(error.field, field);
      return true;
    });
  };
  refused(
    () => byId("users", "id", { ne: 1 }, "read a record"),
    'Cannot read a record in table "users": expected one id, got an object',
    "id",
  );
  refused(
    () => byId("users", "id", [1], "read a record"),
    'Cannot read a record in table "users": expected one id, got an array',
    "id",
  );
  refused(
    () => checkIds("users", new Set([1n])),
    'Cannot get records from table "users": ids must be an array, got a Set',
    "ids",
  );
  refused(
    () => checkIds("users", 7n),
    'Cannot get records from table "users": ids must be an array, got 7n',
    "ids",
  );
  refused(
    () => checkIds("users", ["a", null]),
    'Cannot get records in table "users": expected one id, got null',
    "id",
  );
  assert.deepEqual(byId("users", "code", "a", "read a record"), { code: "a" });
});
