// `_telemetry.ts` and `_query_summary.ts` without a server: the query summary and literal
// hiding against the semantic conventions' own cases, error classification, the attributes of
// a target, the path with nothing registered, and a provider registered through the API the
// way an SDK does (not Deno's: integers stay numbers). What Deno exports is `telemetry_test.ts`.
import assert from "node:assert/strict";
import {
  type Attributes,
  type AttributeValue,
  type BatchObservableCallback,
  type Context,
  context,
  type ContextManager,
  type Meter,
  type MeterProvider,
  metrics,
  type Observable,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { describeQuery } from "./_query_summary.ts";
import {
  captureContext,
  DEFAULT_PORTS,
  errorCodes,
  INSTRUMENTATION_VERSION,
  observePool,
  RECHECK,
  refreshTelemetry,
  startMigration,
  startTransaction,
  telemetryEnabled,
  TelemetryTarget,
  traceStatement,
  withCapturedContext,
  withoutTelemetry,
} from "./_telemetry.ts";
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

// --- A provider registered through the API, as an SDK does. ------------------------------------

class RecordedSpan implements Span {
  readonly attributes: Record<string, AttributeValue | undefined> = {};
  readonly events: { name: string; attributes?: Attributes }[] = [];
  status: SpanStatus = { code: 0 };
  ended = 0;
  readonly #context: SpanContext;

  constructor(readonly name: string, readonly options: SpanOptions, readonly parent: Context) {
    Object.assign(this.attributes, options.attributes);
    const id = (RecordedSpan.next++).toString(16).padStart(16, "0");
    this.#context = { traceId: "ab".repeat(16), spanId: id, traceFlags: 1 };
  }

  static next = 1;
  spanContext(): SpanContext {
    return this.#context;
  }
  setAttribute(key: string, value: AttributeValue): this {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent(name: string, attributes?: Attributes): this {
    this.events.push({ name, attributes });
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {
    this.ended++;
  }
  isRecording(): boolean {
    return true;
  }
  recordException(): void {}
}

class RecordingTracer implements Tracer {
  readonly spans: RecordedSpan[] = [];
  startSpan(name: string, options: SpanOptions = {}, parent = context.active()): Span {
    const span = new RecordedSpan(name, options, parent);
    this.spans.push(span);
    return span;
  }
  startActiveSpan(): never {
    throw new Error("not used by the package");
  }
}

interface Recorded {
  readonly instrument: string;
  readonly value: number;
  readonly attributes?: Attributes;
}

function recordingMeter(records: Recorded[], callbacks: BatchObservableCallback[]): Meter {
  const instrument = (name: string) => ({
    record: (value: number, attributes?: Attributes) =>
      records.push({ instrument: name, value, attributes }),
    add: (value: number, attributes?: Attributes) =>
      records.push({ instrument: name, value, attributes }),
    addCallback() {},
    removeCallback() {},
    name,
  });
  const meter = {
    createHistogram: instrument,
    createCounter: instrument,
    createUpDownCounter: instrument,
    createGauge: instrument,
    createObservableGauge: instrument,
    createObservableCounter: instrument,
    createObservableUpDownCounter: instrument,
    addBatchObservableCallback: (callback: BatchObservableCallback) => callbacks.push(callback),
    removeBatchObservableCallback() {},
  };
  return meter as unknown as Meter;
}

// A synchronous context manager: enough for `run()` and the carrier, without async hooks.
class StackContextManager implements ContextManager {
  #stack: Context[] = [];
  active(): Context {
    return this.#stack.at(-1) ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    this.#stack.push(ctx);
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#stack.pop();
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

async function withSdk(
  fn: (
    tracer: RecordingTracer,
    records: Recorded[],
    callbacks: BatchObservableCallback[],
  ) => void | Promise<void>,
): Promise<void> {
  const tracer = new RecordingTracer();
  const records: Recorded[] = [];
  const callbacks: BatchObservableCallback[] = [];
  const meterProvider: MeterProvider = { getMeter: () => recordingMeter(records, callbacks) };
  assert.ok(trace.setGlobalTracerProvider({ getTracer: () => tracer }));
  assert.ok(metrics.setGlobalMeterProvider(meterProvider));
  assert.ok(context.setGlobalContextManager(new StackContextManager()));
  try {
    await fn(tracer, records, callbacks);
  } finally {
    trace.disable();
    metrics.disable();
    context.disable();
    refreshTelemetry();
  }
}

Deno.test({
  name:
    "a provider registered through the API gets CLIENT spans and duration points with the conventions' attributes",
  ignore: DENO_OTEL,
  async fn() {
    await withSdk(async (tracer, records) => {
      refreshTelemetry();
      assert.equal(telemetryEnabled(), true);
      assert.deepEqual(
        await traceStatement(
          target,
          "SELECT * FROM t WHERE a = 'k'",
          false,
          () => Promise.resolve([1]),
        ),
        [1],
      );
      const duplicate = new UniqueViolationError("dup", { code: "23505", severity: "ERROR" });
      await assert.rejects(
        traceStatement(target, "INSERT INTO t VALUES ($1)", true, () => Promise.reject(duplicate), {
          operation: "INSERT",
          collection: "t",
          batchSize: 3,
        }),
        duplicate,
      );
      const [select, insert] = tracer.spans;
      const base = {
        "db.system.name": "cockroachdb",
        "db.namespace": "defaultdb",
        "server.address": "h",
        "server.port": 26000,
      };
      assert.equal(select.name, "SELECT t");
      assert.equal(select.options.kind, 2); // CLIENT
      assert.deepEqual(select.attributes, {
        ...base,
        "db.query.summary": "SELECT t",
        "db.query.text": "SELECT * FROM t WHERE a = ?",
      });
      assert.deepEqual(select.status, { code: 0 });
      assert.equal(select.ended, 1);
      assert.equal(insert.name, "BATCH INSERT t");
      assert.deepEqual(insert.attributes, {
        ...base,
        "db.operation.name": "BATCH INSERT",
        "db.collection.name": "t",
        "db.query.summary": "BATCH INSERT t",
        "db.query.text": "INSERT INTO t VALUES ($1)",
        "db.operation.batch.size": 3,
        "db.response.status_code": "23505",
        "error.type": "23505",
      });
      assert.deepEqual(insert.status, { code: 2 });
      const durations = records.filter((r) => r.instrument === "db.client.operation.duration");
      assert.equal(durations.length, 2);
      assert.ok(durations.every((r) => r.value >= 0 && r.value < 10));
      assert.deepEqual(durations[0].attributes, { ...base, "db.query.summary": "SELECT t" });
      assert.deepEqual(durations[1].attributes, {
        ...base,
        "db.operation.name": "BATCH INSERT",
        "db.collection.name": "t",
        "db.query.summary": "BATCH INSERT t",
        "error.type": "23505",
        "db.response.status_code": "23505",
      });
    });
  },
});

Deno.test({
  name:
    "a transaction span parents its statements, records retries and its outcome; a migration span its statements",
  ignore: DENO_OTEL,
  async fn() {
    await withSdk(async (tracer, records) => {
      refreshTelemetry();
      const tx = startTransaction(target);
      const retryable = new DatabaseError("serialization", { code: "40001", severity: "ERROR" });
      await tx.run(() => traceStatement(target, "SELECT 1", false, () => Promise.resolve(1)));
      tx.retry(1, 12, retryable);
      tx.retry(2, 30, new ConnectionError("lost", { code: "CONNECTION_CLOSED" }));
      tx.end(new AmbiguousCommitError("Cannot tell"));
      tx.end();
      const [txSpan, statement] = tracer.spans;
      assert.equal(txSpan.name, "transaction");
      assert.equal(txSpan.options.kind, 0); // INTERNAL
      assert.equal(trace.getSpan(statement.parent), txSpan);
      assert.equal(txSpan.ended, 1);
      assert.equal(txSpan.attributes["manticore.db.transaction.outcome"], "ambiguous");
      assert.equal(txSpan.attributes["manticore.db.transaction.attempts"], 3);
      assert.equal(txSpan.attributes["error.type"], "40003");
      assert.deepEqual(txSpan.status, { code: 2 });
      assert.deepEqual(txSpan.events, [
        {
          name: "retry",
          attributes: {
            "db.response.status_code": "40001",
            "error.type": "40001",
            "manticore.db.transaction.attempt": 1,
            "manticore.db.transaction.backoff_ms": 12,
          },
        },
        {
          name: "retry",
          attributes: {
            "error.type": "CONNECTION_CLOSED",
            "manticore.db.transaction.attempt": 2,
            "manticore.db.transaction.backoff_ms": 30,
          },
        },
      ]);
      const retries = records.filter((r) =>
        r.instrument === "manticore.db.client.transaction.retries"
      );
      assert.deepEqual(
        retries.map((
          r,
        ) => [r.value, r.attributes?.["db.response.status_code"], r.attributes?.["error.type"]]),
        [
          [1, "40001", "40001"],
          [1, undefined, "CONNECTION_CLOSED"],
        ],
      );

      const committed = startTransaction(target);
      committed.end();
      assert.equal(tracer.spans[2].attributes["manticore.db.transaction.outcome"], "committed");
      assert.equal(tracer.spans[2].attributes["manticore.db.transaction.attempts"], 1);
      assert.deepEqual(tracer.spans[2].status, { code: 0 });

      const migration = startMigration(target, {
        version: 7,
        name: "add_index",
        direction: "down",
      });
      await migration.run(() =>
        traceStatement(target, "DROP INDEX i", false, () => Promise.resolve(0))
      );
      migration.end(new DatabaseError("x", { code: "42P01", severity: "ERROR" }));
      const [m, drop] = tracer.spans.slice(3);
      assert.equal(m.name, "revert migration");
      assert.deepEqual(m.attributes, {
        "db.system.name": "cockroachdb",
        "db.namespace": "defaultdb",
        "server.address": "h",
        "server.port": 26000,
        "manticore.db.migration.version": 7,
        "manticore.db.migration.name": "add_index",
        "manticore.db.migration.direction": "down",
        "error.type": "42P01",
      });
      assert.equal(trace.getSpan(drop.parent), m);
    });
  },
});

Deno.test({
  name:
    "the carrier holds the active span's traceparent and tracestate, and makes it the parent on the other side",
  ignore: DENO_OTEL,
  async fn() {
    await withSdk(() => {
      refreshTelemetry();
      assert.equal(captureContext(), undefined, "no active span");
      const tx = startTransaction(target);
      const carrier = tx.run(() => captureContext());
      const own = tracerSpanContext(tx);
      assert.deepEqual(carrier, { traceparent: `00-${own.traceId}-${own.spanId}-01` });
      const seen = withCapturedContext(
        { ...carrier!, tracestate: "k=v,a=b" },
        () => trace.getSpanContext(context.active()),
      );
      assert.equal(seen?.traceId, own.traceId);
      assert.equal(seen?.spanId, own.spanId);
      assert.equal(seen?.traceFlags, 1);
      assert.equal(seen?.isRemote, true);
      assert.equal(seen?.traceState?.serialize(), "k=v,a=b");
      for (
        const traceparent of [
          `00-${"0".repeat(32)}-${own.spanId}-01`,
          `01-${own.traceId}-${own.spanId}-01`,
          `00-${own.traceId.toUpperCase()}-${own.spanId}-01`,
          "garbage",
        ]
      ) {
        assert.equal(
          withCapturedContext({ traceparent }, () => trace.getSpanContext(context.active())),
          undefined,
          traceparent,
        );
      }
      tx.end();
    });
  },
});

function tracerSpanContext(tx: ReturnType<typeof startTransaction>): SpanContext {
  return tx.run(() => trace.getSpanContext(context.active())!);
}

Deno.test({
  name:
    "pools are observed at each collection until closed, and a provider registered later is seen within RECHECK calls",
  ignore: DENO_OTEL,
  async fn() {
    refreshTelemetry();
    assert.equal(telemetryEnabled(), false);
    await withSdk((_tracer, records, callbacks) => {
      // Registered after the last lookup: seen at the next one, RECHECK calls away at most.
      let calls = 0;
      while (calls <= RECHECK && !telemetryEnabled()) calls++;
      assert.ok(calls < RECHECK, String(calls));
      let idle = 2;
      const pool = observePool(target, () => ({ idle, used: 1, pending: 4, max: 5 }));
      pool.connectionCreated(0.25);
      pool.connectionWaited(0.5);
      assert.equal(callbacks.length, 1);
      const observed: [string, number, Attributes | undefined][] = [];
      const collect = () =>
        callbacks[0]({
          observe: (metric: Observable, value: number, attributes?: Attributes) =>
            observed.push([(metric as unknown as { name: string }).name, value, attributes]),
        });
      collect();
      idle = 3;
      collect();
      pool.close();
      collect();
      const name = { "db.client.connection.pool.name": pool.name };
      const once = (n: number): [string, number, Attributes][] => [
        ["db.client.connection.count", n, { ...name, "db.client.connection.state": "idle" }],
        ["db.client.connection.count", 1, { ...name, "db.client.connection.state": "used" }],
        ["db.client.connection.max", 5, name],
        ["db.client.connection.pending_requests", 4, name],
      ];
      assert.deepEqual(observed, [...once(2), ...once(3)]);
      assert.deepEqual(
        records.filter((r) => r.instrument.startsWith("db.client.connection.")).map((
          r,
        ) => [r.instrument, r.value, r.attributes]),
        [
          ["db.client.connection.create_time", 0.25, name],
          ["db.client.connection.wait_time", 0.5, name],
        ],
      );
    });
  },
});

Deno.test({
  name:
    "withoutTelemetry() leaves a batch's own statements and transaction to the batch's one span",
  ignore: DENO_OTEL,
  async fn() {
    assert.equal(withoutTelemetry(() => 5), 5, "nothing registered");
    await withSdk(async (tracer, records) => {
      refreshTelemetry();
      const texts = ["INSERT INTO t VALUES ($1)", "INSERT INTO t VALUES ($1), ($2)"];
      const inserted = await traceStatement(
        target,
        texts.join("; "),
        true,
        () =>
          withoutTelemetry(async () => {
            const tx = startTransaction(target);
            const counts = await Promise.all(
              texts.map((text, i) =>
                traceStatement(target, text, true, () => Promise.resolve(i + 1))
              ),
            );
            tx.end();
            return counts;
          }),
        { operation: "INSERT", collection: "t", batchSize: 2 },
      );
      assert.deepEqual(inserted, [1, 2]);
      assert.deepEqual(tracer.spans.map((s) => s.name), ["BATCH INSERT t"]);
      assert.equal(tracer.spans[0].attributes["db.operation.batch.size"], 2);
      assert.deepEqual(
        records.filter((r) => r.instrument === "db.client.operation.duration").map((r) =>
          r.attributes?.["db.query.summary"]
        ),
        ["BATCH INSERT t"],
      );
      // Outside it, statements are traced again.
      await traceStatement(target, "SELECT 1", false, () => Promise.resolve(1));
      assert.equal(tracer.spans.length, 2);
    });
  },
});
