// The `_telemetry*.ts` modules against a provider registered through the API, the way an SDK
// does (not Deno's: integers stay numbers): statement spans and duration points, transaction
// and migration spans, the carrier across threads, the pool metrics, batches. Without a
// provider: `_telemetry_test.ts`.
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
import { RECHECK, refreshTelemetry, telemetryEnabled, TelemetryTarget } from "./_telemetry.ts";
import {
  startMigration,
  startTransaction,
  traceStatement,
  withoutTelemetry,
} from "./_telemetry_spans.ts";
import { observePool } from "./_telemetry_pool.ts";
import { captureContext, withCapturedContext } from "./_telemetry_context.ts";
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  UniqueViolationError,
} from "./errors.ts";

// With OTEL_DENO set, Deno's providers are registered for the whole test process: an SDK's
// registration cannot be tested then.
const DENO_OTEL = /^(true|1)$/i.test(Deno.env.get("OTEL_DENO") ?? "");

const target = new TelemetryTarget({
  system: "cockroachdb",
  namespace: "defaultdb",
  address: "h",
  port: 26000,
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
      assert.ok(select && insert, "two spans");
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
      assert.deepEqual(durations[0]?.attributes, { ...base, "db.query.summary": "SELECT t" });
      assert.deepEqual(durations[1]?.attributes, {
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
      assert.ok(txSpan && statement, "two spans");
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
      const committedSpan = tracer.spans[2];
      assert.ok(committedSpan, "a third span");
      assert.equal(committedSpan.attributes["manticore.db.transaction.outcome"], "committed");
      assert.equal(committedSpan.attributes["manticore.db.transaction.attempts"], 1);
      assert.deepEqual(committedSpan.status, { code: 0 });

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
      assert.ok(m && drop, "a migration span and its statement's");
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
      const [callback] = callbacks;
      assert.ok(callback);
      const observed: [string, number, Attributes | undefined][] = [];
      const collect = () =>
        callback({
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
      assert.equal(tracer.spans[0]?.attributes["db.operation.batch.size"], 2);
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
