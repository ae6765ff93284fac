// Notices and warnings the server sends (RAISE NOTICE / RAISE WARNING) reach `onNotice`, on the
// calling thread for the sync Database too; without it, warnings go to console.warn.
import assert from "node:assert/strict";
import { AsyncDatabase, Database, type Notice, ValidationError } from "./mod.ts";
import { testUrl } from "./_test_util.ts";

const RAISE = `DO $$ BEGIN
  RAISE NOTICE 'hello %', 1;
  RAISE WARNING 'careful' USING DETAIL = 'the detail', HINT = 'the hint';
END $$`;

const EXPECTED: Notice[] = [
  { severity: "NOTICE", code: "00000", message: "hello 1" },
  {
    severity: "WARNING",
    code: "01000",
    message: "careful",
    detail: "the detail",
    hint: "the hint",
  },
];

Deno.test("AsyncDatabase onNotice receives every notice and warning, in order", async () => {
  const seen: Notice[] = [];
  await using db = new AsyncDatabase(testUrl(), { onNotice: (n) => seen.push(n) });
  await db.execute(RAISE);
  assert.deepEqual(seen, EXPECTED);
  seen.length = 0;
  await db.transaction((tx) => tx.execute(RAISE));
  assert.deepEqual(seen, EXPECTED);
});

Deno.test("Database onNotice runs on the calling thread before the call returns, also when it fails", () => {
  const seen: Notice[] = [];
  using db = new Database(testUrl(), { onNotice: (n) => seen.push(n) });
  db.execute(RAISE);
  assert.deepEqual(seen, EXPECTED);
  seen.length = 0;
  assert.throws(() =>
    db.execute("DO $$ BEGIN RAISE NOTICE 'before'; RAISE EXCEPTION 'boom'; END $$")
  );
  assert.deepEqual(seen.map((n) => n.message), ["before"]);
  seen.length = 0;
  db.transaction((tx) => tx.execute(RAISE));
  assert.deepEqual(seen, EXPECTED);
});

Deno.test("without onNotice, warnings go to console.warn and notices are dropped", async () => {
  const warned: unknown[][] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warned.push(args);
  try {
    await using db = new AsyncDatabase(testUrl());
    await db.execute(RAISE);
  } finally {
    console.warn = original;
  }
  assert.deepEqual(warned, [["WARNING (01000): careful DETAIL: the detail HINT: the hint"]]);
});

Deno.test("onNotice must be a function", () => {
  assert.throws(
    () => new AsyncDatabase(testUrl(), { onNotice: "log" as unknown as () => void }),
    ValidationError,
  );
});
