// Shared by the test modules: the URL of the database the test task made, unique names, a
// server-side killer of backends, a role that may only read, and the assertion of a
// ValidationError.
import assert from "node:assert/strict";
import type { AsyncDatabase } from "./async_database.ts";
import { ValidationError } from "./errors.ts";

/**
 * The URL of the database the tests use, which `deno task test` (scripts/test.ts) puts in
 * MANTICORE_TEST_URL. DATABASE_URL is not read here: a developer's DATABASE_URL is their own
 * database, and a bare `deno test` must not write into it.
 */
export function testUrl(): string {
  const url = Deno.env.get("MANTICORE_TEST_URL");
  if (!url) {
    throw new Error(
      "Cannot run integration tests: MANTICORE_TEST_URL is not set; run them with " +
        "`deno task test [file]`, which starts a throwaway server (or creates a fresh database " +
        "on the server in TEST_DATABASE_URL)",
    );
  }
  return url;
}

let counter = 0;

/** A table or database name no other test uses. */
export function uniqueName(prefix = "t"): string {
  return `${prefix}_${Date.now().toString(36)}_${(++counter).toString(36)}_${
    Math.random().toString(36).slice(2, 6)
  }`;
}

/** A SQL string literal. */
export function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * Starts a server-side killer on `admin`: a DO block that waits (up to `seconds`) for an active
 * statement of `application` whose text matches the LIKE `pattern` (and, given `waitEvent`,
 * that waits on it), and terminates its backend.
 * It runs on the server, so it works while the calling thread is blocked in the sync API.
 * Resolves once the killer runs, to an object whose `struck` settles when it has struck (a
 * promise returned directly would be awaited along).
 */
export async function armKiller(
  admin: AsyncDatabase,
  application: string,
  pattern: string,
  waitEvent?: string,
  seconds = 20,
): Promise<{ readonly struck: Promise<unknown> }> {
  const marker = uniqueName("killer");
  const struck = admin.execute(`DO $killer$ /* ${marker} */
    DECLARE target int;
    BEGIN
      FOR i IN 1..${seconds * 200} LOOP
        PERFORM pg_stat_clear_snapshot();
        SELECT pid INTO target FROM pg_stat_activity
         WHERE application_name = ${literal(application)} AND state = 'active'
           AND query LIKE ${literal(pattern)}${
    waitEvent === undefined ? "" : ` AND wait_event = ${literal(waitEvent)}`
  } LIMIT 1;
        IF target IS NOT NULL THEN
          PERFORM pg_terminate_backend(target);
          RETURN;
        END IF;
        PERFORM pg_sleep(0.005);
      END LOOP;
      RAISE EXCEPTION 'killer found no statement like %', ${literal(pattern)};
    END $killer$`);
  struck.catch(() => {}); // awaited by the caller
  for (let i = 0; i < 1000; i++) {
    const running = await admin.queryOne(
      `SELECT 1 AS one FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1`,
      [`%${marker}%`],
    );
    if (running) return { struck };
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("The killer did not start");
}

/**
 * Runs `fn` with a new role (named from `prefix`) that may log in to the database of `db` and use
 * `schema`, and nothing more until `fn` grants it; `fn` gets the role and `url` with the role as
 * its user, without a password. The role and what it owns are dropped afterwards.
 */
export async function withRestrictedRole(
  db: AsyncDatabase,
  options: { readonly prefix: string; readonly schema: string; readonly url: string },
  fn: (role: string, url: URL) => Promise<void>,
): Promise<void> {
  const role = uniqueName(options.prefix);
  const [database] = await db.execute<{ name: string }>("SELECT current_database() AS name");
  assert.ok(database);
  const { name } = database;
  await db.execute(`CREATE ROLE ${role} LOGIN`);
  try {
    await db.execute(`GRANT CONNECT ON DATABASE "${name}" TO ${role}`);
    await db.execute(`GRANT USAGE ON SCHEMA ${options.schema} TO ${role}`);
    const url = new URL(options.url);
    url.username = role;
    url.password = "";
    await fn(role, url);
  } finally {
    await db.execute(`DROP OWNED BY ${role}`);
    await db.execute(`DROP ROLE ${role}`);
  }
}

/** A name that would end the statement if it were not quoted. */
export const HOSTILE = 'a"; DROP TABLE x; --';
/** {@linkcode HOSTILE}, quoted. */
export const HOSTILE_QUOTED = '"a""; DROP TABLE x; --"';

/** Asserts that `fn` throws a ValidationError with `field` (and a message matching `message`). */
export function throwsValidation(
  fn: () => unknown,
  field: string | undefined,
  message?: RegExp,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ValidationError, `expected ValidationError, got ${error}`);
    assert.equal(error.field, field);
    assert.equal(error.code, "VALIDATION_ERROR");
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}
