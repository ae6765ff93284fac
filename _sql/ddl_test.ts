import assert from "node:assert/strict";
import { HOSTILE, HOSTILE_QUOTED, throwsValidation } from "../_test_util.ts";
import {
  buildCreateDatabase,
  buildCreateTable,
  buildDatabaseExists,
  buildDropDatabase,
  buildDropTable,
  buildTableExists,
  buildTruncate,
} from "./ddl.ts";

// DDL

Deno.test("buildCreateTable() keeps column order and type strings", () => {
  assert.equal(
    buildCreateTable("users", {
      id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
      balance: "DECIMAL(19,4) DEFAULT 0",
      status: "TEXT CHECK (status IN ('a', 'b'))",
      note: "TEXT DEFAULT ')('",
      owner: 'INT REFERENCES "Users"("id") ON DELETE CASCADE',
    }),
    `CREATE TABLE IF NOT EXISTS "users" ("id" UUID PRIMARY KEY DEFAULT gen_random_uuid(), "balance" DECIMAL(19,4) DEFAULT 0, "status" TEXT CHECK (status IN ('a', 'b')), "note" TEXT DEFAULT ')(', "owner" INT REFERENCES "Users"("id") ON DELETE CASCADE)`,
  );
});

Deno.test("buildCreateTable() leaves out IF NOT EXISTS on request", () => {
  assert.equal(
    buildCreateTable("s.t", { a: "INT" }, { ifNotExists: false }),
    'CREATE TABLE "s"."t" ("a" INT)',
  );
});

Deno.test("buildCreateTable() quotes hostile names", () => {
  assert.equal(
    buildCreateTable(HOSTILE, { [HOSTILE]: "TEXT" }),
    `CREATE TABLE IF NOT EXISTS ${HOSTILE_QUOTED} (${HOSTILE_QUOTED} TEXT)`,
  );
});

Deno.test("buildCreateTable() rejects unsafe or empty types with field columns", () => {
  const bad = [
    "TEXT; DROP TABLE x",
    "TEXT -- x",
    "TEXT /* x */",
    "TEXT\0",
    "",
    "   ",
    "TEXT)",
    "TEXT) INHERITS (other",
    "DECIMAL(10",
    "TEXT DEFAULT 'x",
    'INT REFERENCES "Users',
  ];
  for (const type of bad) {
    throwsValidation(() => buildCreateTable("t", { a: type }), "columns");
  }
  throwsValidation(() => buildCreateTable("t", { a: 1 as unknown as string }), "columns");
});

Deno.test("buildCreateTable() rejects no columns", () => {
  throwsValidation(() => buildCreateTable("t", {}), "columns", /no columns/);
});

Deno.test("buildCreateTable() rejects a bad column name with field columns", () => {
  throwsValidation(() => buildCreateTable("t", { "": "INT" }), "columns");
});

Deno.test("buildDropTable() defaults to IF EXISTS without CASCADE", () => {
  assert.equal(buildDropTable("users"), 'DROP TABLE IF EXISTS "users"');
  assert.equal(
    buildDropTable("s.users", { ifExists: false, cascade: true }),
    'DROP TABLE "s"."users" CASCADE',
  );
});

Deno.test("buildCreateDatabase() and buildDropDatabase() quote the name", () => {
  assert.equal(buildCreateDatabase("shop"), 'CREATE DATABASE IF NOT EXISTS "shop"');
  assert.equal(buildDropDatabase("shop"), 'DROP DATABASE IF EXISTS "shop"');
  assert.equal(buildDropDatabase(HOSTILE), `DROP DATABASE IF EXISTS ${HOSTILE_QUOTED}`);
  throwsValidation(() => buildCreateDatabase(""), "database");
});

Deno.test("buildCreateDatabase() leaves out IF NOT EXISTS for PostgreSQL, which lacks it", () => {
  assert.equal(buildCreateDatabase("shop", { dialect: "postgres" }), 'CREATE DATABASE "shop"');
  assert.equal(
    buildCreateDatabase("shop", { dialect: "cockroach" }),
    'CREATE DATABASE IF NOT EXISTS "shop"',
  );
});

Deno.test("buildDatabaseExists() binds the database name", () => {
  assert.deepEqual(buildDatabaseExists(HOSTILE), {
    text: 'SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists"',
    params: [HOSTILE],
  });
  throwsValidation(() => buildDatabaseExists("x".repeat(64)), "database");
});

Deno.test("buildTableExists() binds schema public for an unqualified name", () => {
  assert.deepEqual(buildTableExists("users"), {
    text:
      'SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2) AS "exists"',
    params: ["public", "users"],
  });
});

Deno.test("buildTableExists() binds the schema of a qualified name", () => {
  assert.deepEqual(buildTableExists("audit.events").params, ["audit", "events"]);
  assert.deepEqual(buildTableExists(HOSTILE).params, ["public", HOSTILE]);
  throwsValidation(() => buildTableExists("a.b.c"), "table");
});

Deno.test("buildTruncate() truncates the quoted table", () => {
  assert.equal(buildTruncate("users"), 'TRUNCATE TABLE "users"');
  assert.equal(buildTruncate("s.t"), 'TRUNCATE TABLE "s"."t"');
});
