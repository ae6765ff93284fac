// The `_telemetry*.ts` modules and `_query_summary.ts` without a server and without a provider:
// the query summary and literal hiding against the semantic conventions' own cases, error
// classification, the attributes of a target, and the path with nothing registered. With a
// provider registered through the API: `_telemetry_sdk_test.ts`; what Deno exports from the
// package's own instrumentation: `telemetry_test.ts`.
import assert from "node:assert/strict";
import { context, trace } from "@opentelemetry/api";
import { describeQuery } from "./_query_summary.ts";
import {
  DEFAULT_PORTS,
  errorCodes,
  INSTRUMENTATION_VERSION,
  refreshTelemetry,
  telemetryEnabled,
  TelemetryTarget,
} from "./_telemetry.ts";
import { startMigration, startTransaction, traceStatement } from "./_telemetry_spans.ts";
import { observePool } from "./_telemetry_pool.ts";
import { captureContext, withCapturedContext } from "./_telemetry_context.ts";
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  TransactionRetryError,
  UniqueViolationError,
} from "./errors.ts";

// With OTEL_DENO set, Deno's providers are registered for the whole test process: the tests
// of the unregistered path and of an SDK's registration cannot run then.
const DENO_OTEL = /^(true|1)$/i.test(Deno.env.get("OTEL_DENO") ?? "");

// --- Query summary and sanitization. -----------------------------------------------------------

// docs/non-normative/database-test-cases/db-sql-test-cases.json of the semantic conventions,
// v1.44.0: query → accepted sanitized texts, summary.
const CONVENTION_CASES: readonly [string, readonly string[], string][] = [
  ["SELECT 12, -12, +12", ["SELECT ?, ?, ?"], "SELECT"],
  ["SELECT 12.34, -12.34, +12.34, .01, -.01", ["SELECT ?, ?, ?, ?, ?"], "SELECT"],
  ["SELECT 12.34e56, -12.34e56, +12.34e56", ["SELECT ?, ?, ?"], "SELECT"],
  ["SELECT 12.34e-56, -12.34e-56, +12.34e-56", ["SELECT ?, ?, ?"], "SELECT"],
  ["SELECT 99+100", ["SELECT ??"], "SELECT"],
  ["SELECT 0xDEADBEEF, 0XdeadBEEF", ["SELECT ?, ?"], "SELECT"],
  ["SELECT 'hello'", ["SELECT ?"], "SELECT"],
  ["SELECT 'My name''s not important'", ["SELECT ?"], "SELECT"],
  ["SELECT 'My name is \n not important'", ["SELECT ?"], "SELECT"],
  [
    "SELECT c3po, r2d2 FROM covid19 WHERE n1h1=1234",
    ["SELECT c3po, r2d2 FROM covid19 WHERE n1h1=?"],
    "SELECT covid19",
  ],
  [
    "SELECT a FROM dbo.Table JOIN dbo.AnotherTable",
    ["SELECT a FROM dbo.Table JOIN dbo.AnotherTable"],
    "SELECT dbo.Table dbo.AnotherTable",
  ],
  [
    "INSERT INTO X VALUES(1, 23456, 123.456, 99+100)",
    ["INSERT INTO X VALUES(?, ?, ?, ??)"],
    "INSERT X",
  ],
  ["SELECT { guid '01234567-89ab-cdef-0123-456789abcdef' }", ["SELECT { guid ? }"], "SELECT"],
  [
    "SELECT * FROM table WHERE value IN (123, 456, 'abc')",
    ["SELECT * FROM table WHERE value IN (?)", "SELECT * FROM table WHERE value IN (?, ?, ?)"],
    "SELECT table",
  ],
  [
    "SELECT column -- end of line comment\nFROM /* block \n comment */ table",
    ["SELECT column \nFROM  table"],
    "SELECT table",
  ],
  [
    "INSERT INTO shipping_details\n(order_id,\naddress)\nSELECT order_id,\naddress\nFROM   orders\nWHERE  order_id = 1",
    [
      "INSERT INTO shipping_details\n(order_id,\naddress)\nSELECT order_id,\naddress\nFROM   orders\nWHERE  order_id = ?",
    ],
    "INSERT shipping_details SELECT orders",
  ],
  [
    "SELECT order_date\nFROM   (SELECT *\nFROM   orders o\nJOIN customers c\nON o.customer_id = c.customer_id)",
    [
      "SELECT order_date\nFROM   (SELECT *\nFROM   orders o\nJOIN customers c\nON o.customer_id = c.customer_id)",
    ],
    "SELECT SELECT orders customers",
  ],
  [
    "SELEcT order_date\nFROM   (sELECT *\nFROM   orders o\nJOIN customers c\nON o.customer_id = c.customer_id)",
    [
      "SELEcT order_date\nFROM   (sELECT *\nFROM   orders o\nJOIN customers c\nON o.customer_id = c.customer_id)",
    ],
    "SELEcT sELECT orders customers",
  ],
  ["SELEcT order_date\nFROM ORders", ["SELEcT order_date\nFROM ORders"], "SELEcT ORders"],
  [
    "SELECT * FROM Orders o CROSS JOIN OrderDetails od",
    ["SELECT * FROM Orders o CROSS JOIN OrderDetails od"],
    "SELECT Orders OrderDetails",
  ],
  [
    "SELECT * FROM Orders o, OrderDetails od",
    ["SELECT * FROM Orders o, OrderDetails od"],
    "SELECT Orders OrderDetails",
  ],
  [
    "CREATE  TABLE MyTable (\n    ID NOT NULL IDENTITY(1,1) PRIMARY KEY\n)",
    ["CREATE  TABLE MyTable (\n    ID NOT NULL IDENTITY(?,?) PRIMARY KEY\n)"],
    "CREATE TABLE MyTable",
  ],
  [
    "ALTER  TABLE MyTable ADD Name varchar(255)",
    ["ALTER  TABLE MyTable ADD Name varchar(?)"],
    "ALTER TABLE MyTable",
  ],
  ["DROP  TABLE MyTable", ["DROP  TABLE MyTable"], "DROP TABLE MyTable"],
];

Deno.test("describeQuery() gives the semantic conventions' summary and sanitized text for each of their cases", () => {
  assert.equal(CONVENTION_CASES.length, 24);
  for (const [query, texts, summary] of CONVENTION_CASES) {
    const d = describeQuery(query);
    assert.equal(d.summary, summary, query);
    assert.ok(
      texts.includes(d.sanitized),
      `${JSON.stringify(query)} → ${JSON.stringify(d.sanitized)}`,
    );
  }
});

// What the package and its users send to PostgreSQL and CockroachDB.
const POSTGRES_CASES: readonly [string, string | undefined, string][] = [
  [
    `SELECT * FROM "users" WHERE "id" = $1`,
    `SELECT "users"`,
    `SELECT * FROM "users" WHERE "id" = $1`,
  ],
  [
    `INSERT INTO "public"."users" ("a") VALUES ($1) ON CONFLICT ("a") DO UPDATE SET "a" = excluded."a" RETURNING *`,
    `INSERT "public"."users"`,
    `INSERT INTO "public"."users" ("a") VALUES ($1) ON CONFLICT ("a") DO UPDATE SET "a" = excluded."a" RETURNING *`,
  ],
  ["UPSERT INTO t (a) VALUES (1)", "UPSERT t", "UPSERT INTO t (a) VALUES (?)"],
  ["BEGIN; SAVEPOINT cockroach_restart", "BEGIN SAVEPOINT", "BEGIN; SAVEPOINT cockroach_restart"],
  ["RELEASE SAVEPOINT cockroach_restart", "RELEASE", "RELEASE SAVEPOINT cockroach_restart"],
  [
    "WITH x AS (SELECT * FROM t WHERE a = 'k') SELECT * FROM x JOIN y USING (id)",
    "SELECT t SELECT x y",
    "WITH x AS (SELECT * FROM t WHERE a = ?) SELECT * FROM x JOIN y USING (id)",
  ],
  ["SELECT * FROM t FOR UPDATE", "SELECT t", "SELECT * FROM t FOR UPDATE"],
  [
    "UPDATE ONLY accounts SET balance = balance - 10 FROM rates r WHERE id = $1",
    "UPDATE accounts rates",
    "UPDATE ONLY accounts SET balance = balance - ? FROM rates r WHERE id = $1",
  ],
  [
    "DELETE FROM t USING a, b WHERE t.id = a.id",
    "DELETE t a b",
    "DELETE FROM t USING a, b WHERE t.id = a.id",
  ],
  ["COPY t (a, b) FROM STDIN", "COPY t", "COPY t (a, b) FROM STDIN"],
  [
    "SELECT * FROM generate_series(1, 10) g, t",
    "SELECT t",
    "SELECT * FROM generate_series(?, ?) g, t",
  ],
  [
    `CREATE TABLE IF NOT EXISTS "u" (id INT PRIMARY KEY, e TEXT DEFAULT 'x' REFERENCES o(id) ON DELETE CASCADE)`,
    `CREATE TABLE "u"`,
    `CREATE TABLE IF NOT EXISTS "u" (id INT PRIMARY KEY, e TEXT DEFAULT ? REFERENCES o(id) ON DELETE CASCADE)`,
  ],
  [
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
    "CREATE INDEX i",
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
  ],
  [
    "CREATE TABLE t2 AS SELECT * FROM t",
    "CREATE TABLE t2 SELECT t",
    "CREATE TABLE t2 AS SELECT * FROM t",
  ],
  ["SET search_path = 'x'", "SET", "SET search_path = ?"],
  ["EXPLAIN ANALYZE SELECT * FROM t", "EXPLAIN SELECT t", "EXPLAIN ANALYZE SELECT * FROM t"],
  [
    "SELECT E'it\\'s', B'0101', X'FF', U&'d\\0061t', $q$k$q$, $$k$$, true, FALSE, 1_000, '{1}'::int[]",
    "SELECT",
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::int[]",
  ],
  ["select $1::text, a$1 from t", "select t", "select $1::text, a$1 from t"],
  ["", undefined, ""],
  ["-- only a comment", undefined, ""],
];

Deno.test("describeQuery() reads PostgreSQL's quoting, CTEs, DDL and CockroachDB's statements", () => {
  for (const [query, summary, sanitized] of POSTGRES_CASES) {
    const d = describeQuery(query);
    assert.equal(d.summary, summary, query);
    assert.equal(d.sanitized, sanitized, query);
  }
});

Deno.test("describeQuery() keeps the summary within 255 characters without cutting a name, and keeps no long text", () => {
  const tables = Array.from({ length: 40 }, (_, i) => `table_number_${i}`);
  const d = describeQuery(`SELECT * FROM ${tables.join(", ")}`);
  assert.ok(d.summary!.length <= 255, String(d.summary!.length));
  const parts = d.summary!.split(" ");
  assert.equal(parts[0], "SELECT");
  assert.deepEqual(parts.slice(1), tables.slice(0, parts.length - 1));
  assert.ok(d.summary!.length + " table_number_99".length > 255);
  assert.equal(describeQuery("SELECT 1"), describeQuery("SELECT 1"), "remembered");
  const long = `SELECT '${"x".repeat(10_000)}'`;
  assert.notEqual(describeQuery(long), describeQuery(long), "a long text is not kept");
  assert.equal(describeQuery(long).sanitized, "SELECT ?");
});

// --- Errors and attributes. --------------------------------------------------------------------

Deno.test("errorCodes() gives the SQLSTATE as status code and error type, the client's code or the error's name otherwise", () => {
  const server = new UniqueViolationError("Cannot write row: duplicate", {
    code: "23505",
    severity: "ERROR",
  });
  assert.deepEqual(errorCodes(server), { status: "23505", type: "23505" });
  // A postgres.js error as it comes from the server.
  assert.deepEqual(errorCodes({ code: "XX000", severity: "ERROR" }), {
    status: "XX000",
    type: "XX000",
  });
  assert.deepEqual(
    errorCodes(new TransactionRetryError("Cannot commit", { attempts: 3 })),
    { status: "40001", type: "40001" },
  );
  assert.deepEqual(errorCodes(new AmbiguousCommitError("Cannot tell")), {
    status: "40003",
    type: "40003",
  });
  assert.deepEqual(errorCodes(new ConnectionError("lost", { code: "CONNECTION_CLOSED" })), {
    status: undefined,
    type: "CONNECTION_CLOSED",
  });
  assert.deepEqual(errorCodes(Object.assign(new Error("pipe"), { code: "EPIPE" })), {
    status: undefined,
    type: "EPIPE",
  });
  assert.deepEqual(errorCodes(new DatabaseError("x")), {
    status: undefined,
    type: "DATABASE_ERROR",
  });
  assert.deepEqual(errorCodes(new TypeError("x")), { status: undefined, type: "TypeError" });
  assert.deepEqual(errorCodes(new DOMException("aborted", "AbortError")), {
    status: undefined,
    type: "AbortError",
  });
  assert.deepEqual(errorCodes("thrown text"), { status: undefined, type: "_OTHER" });
  assert.deepEqual(errorCodes(undefined), { status: undefined, type: "_OTHER" });
});

Deno.test("TelemetryTarget leaves out the system's default port and gives integers as bigints for Deno's exporter", () => {
  for (const system of ["postgresql", "cockroachdb"] as const) {
    const onDefault = new TelemetryTarget({
      system,
      namespace: "bank",
      address: "db.example",
      port: DEFAULT_PORTS[system],
    });
    assert.deepEqual(onDefault.base(false), {
      "db.system.name": system,
      "db.namespace": "bank",
      "server.address": "db.example",
    });
  }
  const other = new TelemetryTarget({ system: "postgresql", address: "127.0.0.1", port: 26257 });
  assert.deepEqual(other.base(false), {
    "db.system.name": "postgresql",
    "server.address": "127.0.0.1",
    "server.port": 26257,
  });
  assert.equal(other.base(true)["server.port"], 26257n as unknown as number);
  assert.ok(Object.isFrozen(other.base(false)));
  const a = other.durationAttributes(false, "SELECT t", undefined, undefined);
  assert.equal(other.durationAttributes(false, "SELECT t", undefined, undefined), a);
  assert.deepEqual(a, { ...other.base(false), "db.query.summary": "SELECT t" });
  assert.deepEqual(other.durationAttributes(false, "SELECT t", "SELECT", "t"), {
    ...other.base(false),
    "db.operation.name": "SELECT",
    "db.collection.name": "t",
    "db.query.summary": "SELECT t",
  });
});

Deno.test("INSTRUMENTATION_VERSION is the package's version", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("./deno.json", import.meta.url)));
  assert.equal(INSTRUMENTATION_VERSION, config.version);
});

// --- Nothing registered. -----------------------------------------------------------------------

const target = new TelemetryTarget({
  system: "cockroachdb",
  namespace: "defaultdb",
  address: "h",
  port: 26000,
});

Deno.test({
  name: "with nothing registered every call passes through and nothing is allocated for it",
  ignore: DENO_OTEL,
  fn() {
    refreshTelemetry();
    assert.equal(telemetryEnabled(), false);
    const answered = Promise.resolve([1]);
    assert.equal(traceStatement(target, "SELECT 1", false, () => answered), answered);
    const thrown = new Error("sync");
    assert.throws(() =>
      traceStatement(target, "SELECT 1", false, () => {
        throw thrown;
      }), thrown);
    const tx = startTransaction(target);
    assert.equal(startTransaction(target), tx, "one shared handle");
    assert.equal(tx.run(() => 42), 42);
    tx.retry(1, 10, new Error("x"));
    tx.end(new Error("y"));
    const migration = startMigration(target, { version: 1, name: "a", direction: "up" });
    assert.equal(migration.run(() => "m"), "m");
    migration.end();
    assert.equal(captureContext(), undefined);
    const carrier = { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01` };
    assert.equal(
      withCapturedContext(carrier, () => trace.getSpanContext(context.active())),
      undefined,
    );
    assert.equal(withCapturedContext(undefined, () => 7), 7);
  },
});

Deno.test("observePool() names pools address:port/namespace, unique among those open", () => {
  const first = observePool(target, () => ({ idle: 0, used: 0, pending: 0, max: 1 }));
  const second = observePool(target, () => ({ idle: 0, used: 0, pending: 0, max: 1 }));
  assert.equal(first.name, "h:26000/defaultdb");
  assert.equal(second.name, "h:26000/defaultdb#2");
  first.close();
  first.close();
  const third = observePool(target, () => ({ idle: 0, used: 0, pending: 0, max: 1 }));
  assert.equal(third.name, "h:26000/defaultdb");
  second.close();
  third.close();
});
