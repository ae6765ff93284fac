// Everything the package tells OpenTelemetry, through `npm:@opentelemetry/api` only: a no-op
// until a provider is registered. `OTEL_DENO=true` makes Deno register its built-in providers
// with that API (`globalThis[Symbol.for("opentelemetry.js.api.1")]`, version "1.999.999", so
// every 1.x copy of the API accepts them), and the package is traced with no configuration.
//
// Names and attributes follow the OpenTelemetry semantic conventions v1.44.0 (docs/db/
// database-spans.md, sql.md, postgresql.md, database-metrics.md; general/recording-errors.md):
// - a statement is a CLIENT span named `{db.query.summary}` (else `{db.system.name}`), with
//   `db.system.name`, `db.namespace` (the database of the connection string: the schema is not
//   known without a query), `db.query.text`, `db.query.summary`, `server.address`, and
//   `server.port` only when it is not the system's default port (a Conditionally Required
//   attribute whose condition fails is Opt-In). Raw SQL gets no `db.operation.name` or
//   `db.collection.name` ("SHOULD NOT be extracted from db.query.text"); the CRUD helpers name
//   them. Text sent without bind parameters has its literals replaced by `?`.
// - a failure sets `error.type` (the error's `code`: the SQLSTATE, or the client's stable code
//   such as CONNECTION_CLOSED; else the error's name; else `_OTHER`), `db.response.status_code`
//   (when the code is a SQLSTATE) and status ERROR without a description: server and client
//   messages can quote parameter values (22P02 quotes the bad input).
// - `db.client.operation.duration` (with the advised buckets) and the pool metrics
//   (`db.client.connection.*`, attribute `db.client.connection.pool.name`).
// The conventions have nothing for transactions, retries or migrations: those names carry the
// `manticore.` prefix the naming guide asks of names outside the conventions.
//
// Measured with Deno 2.9.6: integer attributes given as numbers are exported as `doubleValue`
// and bigints as `intValue`, so with Deno's own providers integers go as bigints (the types
// the conventions give); another provider gets numbers, which its API typing demands.
// Observable instruments are read at each periodic export (`OTEL_METRIC_EXPORT_INTERVAL`, 60 s
// by default), not at the export on exit; spans, counters and histograms are flushed on exit.
import {
  type Attributes,
  type BatchObservableResult,
  type Context,
  context,
  type Counter,
  createContextKey,
  createNoopMeter,
  createTraceState,
  type Histogram,
  isSpanContextValid,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableUpDownCounter,
  ProxyTracerProvider,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from "npm:@opentelemetry/api@1.10.0";
import { describeQuery } from "./_query_summary.ts";
import { AmbiguousCommitError } from "./crud/exceptions.ts";

/** The instrumentation scope's name. */
export const INSTRUMENTATION_NAME = "@manticore/cockroachdb";
/** The instrumentation scope's version: the package's (checked against deno.json by a test). */
export const INSTRUMENTATION_VERSION = "0.1.0";
/** The semantic conventions followed, as the scope's schema URL. */
export const SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0";
/** The bucket boundaries the conventions advise for `db.client.operation.duration`, seconds. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  10,
]);

/** `db.system.name` of the two servers the package speaks to. */
export type DbSystemName = "cockroachdb" | "postgresql";

/** The default port of each system: `server.port` is set only for another port. */
export const DEFAULT_PORTS: Readonly<Record<DbSystemName, number>> = Object.freeze({
  cockroachdb: 26257,
  postgresql: 5432,
});

/** Where statements go: what every span and metric of one database says of its server. */
export interface DatabaseEndpoint {
  /** From the server's `version()`: `cockroachdb` or `postgresql`. */
  readonly system: DbSystemName;
  /** The database named when connecting (`db.namespace`). */
  readonly namespace?: string;
  /** The host connected to (`server.address`). */
  readonly address: string;
  /** The port connected to (`server.port`). */
  readonly port: number;
}

/** What a CRUD helper knows of its statement; raw SQL passes none. */
export interface StatementOperation {
  /** `db.operation.name` as the helper sends it: `SELECT`, `INSERT`, … */
  readonly operation: string;
  /** `db.collection.name`: the table, as the application named it. */
  readonly collection?: string;
  /**
   * Set for a batch of two or more statements sent by one call (and 0 for an empty one):
   * `db.operation.batch.size`, and the operation and summary get the prefix `BATCH `.
   */
  readonly batchSize?: number;
}

/** How a transaction ended: `manticore.db.transaction.outcome`. */
export type TransactionOutcome = "committed" | "failed" | "ambiguous";

/** The transaction span of one `transaction()` call. */
export interface TransactionTelemetry {
  /** Runs `fn` with the transaction's span active: statements sent meanwhile are its children. */
  run<T>(fn: () => T): T;
  /** Records a retry: a `retry` span event and one more retry in the retry counter. */
  retry(attempt: number, backoffMs: number, error: unknown): void;
  /** Ends the span; the outcome follows from `error` (none: committed). Once only. */
  end(error?: unknown): void;
}

/** One migration applied or reverted. */
export interface MigrationInfo {
  /** The migration's version. */
  readonly version: number;
  /** The migration's name. */
  readonly name: string;
  /** `up` when applied, `down` when reverted. */
  readonly direction: "up" | "down";
}

/** The span of one migration. */
export interface MigrationTelemetry {
  /** Runs `fn` with the migration's span active: its statements become its children. */
  run<T>(fn: () => T): T;
  /** Ends the span, failed when `error` is given. Once only. */
  end(error?: unknown): void;
}

/** The pool's numbers at one moment, as the pool metrics report them. */
export interface PoolCounts {
  /** Open connections waiting for work. */
  readonly idle: number;
  /** Open connections running a statement or held by a transaction or cursor. */
  readonly used: number;
  /** Requests waiting for a connection. */
  readonly pending: number;
  /** The most connections the pool opens. */
  readonly max: number;
}

/** The metrics of one pool; `close()` when the pool is closed. */
export interface PoolTelemetry {
  /** `db.client.connection.pool.name`: `address:port/namespace`, `#2`… when already in use. */
  readonly name: string;
  /** Records how long a new connection took to open (`db.client.connection.create_time`). */
  connectionCreated(seconds: number): void;
  /** Records how long a request waited for a connection (`db.client.connection.wait_time`). */
  connectionWaited(seconds: number): void;
  /** Stops reporting the pool. */
  close(): void;
}

/**
 * The caller's trace context as plain data, to cross the sync bridge: a W3C `traceparent`
 * (and `tracestate`) of the span active on the calling thread.
 */
export interface TraceCarrier {
  /** `00-{trace id}-{span id}-{flags}`. */
  readonly traceparent: string;
  /** The W3C `tracestate`, when the span has one. */
  readonly tracestate?: string;
}

// Names outside the conventions.
const OUTCOME = "manticore.db.transaction.outcome";
const ATTEMPTS = "manticore.db.transaction.attempts";
const ATTEMPT = "manticore.db.transaction.attempt";
const BACKOFF = "manticore.db.transaction.backoff_ms";
const MIGRATION_VERSION = "manticore.db.migration.version";
const MIGRATION_NAME = "manticore.db.migration.name";
const MIGRATION_DIRECTION = "manticore.db.migration.direction";
const RETRIES = "manticore.db.client.transaction.retries";
const POOL_NAME = "db.client.connection.pool.name";
const STATE = "db.client.connection.state";

interface DenoTelemetry {
  readonly tracerProvider?: unknown;
  readonly meterProvider?: unknown;
}

function denoTelemetry(): DenoTelemetry | undefined {
  return (globalThis as { Deno?: { telemetry?: DenoTelemetry } }).Deno?.telemetry;
}

// An integer attribute: a bigint for Deno's exporter (else it sends a double), else a number.
function integer(n: number, asBigInt: boolean): number {
  return asBigInt && Number.isSafeInteger(n) ? BigInt(n) as unknown as number : n;
}

// --- What is registered. -----------------------------------------------------------------------
// Each API lookup reads the API's slot on Deno's global object, ~30 ns; a statement with
// nothing registered should cost next to nothing. So the providers are looked up every
// `RECHECK` calls, and by `refreshTelemetry()`: a provider registered (or removed) after
// statements began is seen within that many calls.

interface Tracing {
  readonly tracer: Tracer;
  readonly bigInts: boolean;
}

interface Instruments {
  readonly duration: Histogram;
  readonly retries: Counter;
  readonly createTime: Histogram;
  readonly waitTime: Histogram;
  readonly bigInts: boolean;
}

/** Calls between two lookups of the registered providers. */
export const RECHECK = 1000;

// A fresh proxy has no delegate: what it answers is the API's no-op provider.
const NOOP_TRACER_PROVIDER: TracerProvider = new ProxyTracerProvider().getDelegate();
const NOOP_METER: Meter = createNoopMeter();
let budget = 0;
let tracerKey: unknown = NOOP_TRACER_PROVIDER;
let tracing: Tracing | undefined;
let meterKey: MeterProvider | undefined;
let instruments: Instruments | undefined;

/**
 * Looks up the registered providers now (a database calls it when created, so that a provider
 * registered before it is used from its first statement).
 */
export function refreshTelemetry(): void {
  budget = RECHECK;
  let provider = trace.getTracerProvider();
  // `setGlobalTracerProvider` registers the API's proxy and sets the provider as its delegate.
  if (provider instanceof ProxyTracerProvider) provider = provider.getDelegate();
  if (provider !== tracerKey) {
    tracerKey = provider;
    tracing = provider === NOOP_TRACER_PROVIDER ? undefined : {
      tracer: provider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION, {
        schemaUrl: SCHEMA_URL,
      }),
      bigInts: provider === denoTelemetry()?.tracerProvider,
    };
  }
  const meterProvider = metrics.getMeterProvider();
  if (meterProvider !== meterKey) {
    meterKey = meterProvider;
    const meter = meterProvider.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION, {
      schemaUrl: SCHEMA_URL,
    });
    instruments = meter === NOOP_METER
      ? undefined
      : createInstruments(meter, meterProvider === denoTelemetry()?.meterProvider);
  }
}

function currentTracing(): Tracing | undefined {
  if (--budget < 0) refreshTelemetry();
  return tracing;
}

function currentInstruments(): Instruments | undefined {
  if (--budget < 0) refreshTelemetry();
  return instruments;
}

function createInstruments(meter: Meter, bigInts: boolean): Instruments {
  const advice = { explicitBucketBoundaries: [...DURATION_BUCKETS] };
  const count = meter.createObservableUpDownCounter("db.client.connection.count", {
    description:
      "The number of connections that are currently in state described by the state attribute.",
    unit: "{connection}",
  });
  const max = meter.createObservableUpDownCounter("db.client.connection.max", {
    description: "The maximum number of open connections allowed.",
    unit: "{connection}",
  });
  const pending = meter.createObservableUpDownCounter("db.client.connection.pending_requests", {
    description: "The number of current pending requests for an open connection.",
    unit: "{request}",
  });
  meter.addBatchObservableCallback(
    (result) => observePools(result, count, max, pending),
    [count, max, pending],
  );
  return {
    duration: meter.createHistogram("db.client.operation.duration", {
      description: "Duration of database client operations.",
      unit: "s",
      advice,
    }),
    retries: meter.createCounter(RETRIES, {
      description: "Transactions run again after a retryable failure, by SQLSTATE.",
      unit: "{retry}",
    }),
    // The conventions advise no buckets for these; the SDK's default ones are for
    // milliseconds, so the operation duration's are used.
    createTime: meter.createHistogram("db.client.connection.create_time", {
      description: "The time it took to create a new connection.",
      unit: "s",
      advice,
    }),
    waitTime: meter.createHistogram("db.client.connection.wait_time", {
      description: "The time it took to obtain an open connection from the pool.",
      unit: "s",
      advice,
    }),
    bigInts,
  };
}

/**
 * True when a tracer or meter provider is registered. Statements check it first: without one,
 * nothing is allocated and the statement runs as it would without this module.
 */
export function telemetryEnabled(): boolean {
  return currentTracing() !== undefined || currentInstruments() !== undefined;
}

// --- Errors. -----------------------------------------------------------------------------------

/** How a failure is recorded. */
export interface ErrorCodes {
  /** `db.response.status_code`: a SQLSTATE. */
  readonly status: string | undefined;
  /** `error.type`. */
  readonly type: string;
}

/** `error.type` and `db.response.status_code` of a failure (see the header). */
export function errorCodes(error: unknown): ErrorCodes {
  const e = typeof error === "object" && error !== null
    ? error as { code?: unknown; severity?: unknown; name?: unknown }
    : undefined;
  const code = e?.code;
  if (typeof code === "string" && code !== "") {
    // A SQLSTATE: reported by the server (it sends a severity), or one the package reports for
    // the server's answer (40001 for a COMMIT answered with ROLLBACK, 40003). Every SQLSTATE
    // class the package meets begins with a digit; Node's codes (EPIPE) do not.
    const sqlstate = code.length === 5 &&
      (typeof e?.severity === "string" || (code.charCodeAt(0) >= 48 && code.charCodeAt(0) <= 57));
    return { status: sqlstate ? code : undefined, type: code };
  }
  const name = e?.name;
  return { status: undefined, type: typeof name === "string" && name !== "" ? name : "_OTHER" };
}

function recordFailure(span: Span, codes: ErrorCodes, withStatusCode: boolean): void {
  if (withStatusCode && codes.status !== undefined) {
    span.setAttribute("db.response.status_code", codes.status);
  }
  span.setAttribute("error.type", codes.type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

// --- Per database. -----------------------------------------------------------------------------

/** The attributes of one database, made once; statements add theirs. */
export class TelemetryTarget {
  /** What the target describes. */
  readonly endpoint: DatabaseEndpoint;
  readonly #base: readonly [Attributes, Attributes];
  // Duration attributes of successful statements by summary: a hot statement allocates none.
  readonly #durations = new Map<string, Attributes>();

  /**
   * Makes the attributes of one database.
   * @param endpoint The server and database.
   */
  constructor(endpoint: DatabaseEndpoint) {
    this.endpoint = Object.freeze({ ...endpoint });
    const make = (bigInts: boolean): Attributes => {
      const a: Attributes = { "db.system.name": endpoint.system };
      if (endpoint.namespace) a["db.namespace"] = endpoint.namespace;
      a["server.address"] = endpoint.address;
      if (endpoint.port !== DEFAULT_PORTS[endpoint.system]) {
        a["server.port"] = integer(endpoint.port, bigInts);
      }
      return Object.freeze(a);
    };
    this.#base = [make(false), make(true)];
  }

  /** `db.system.name`, `db.namespace`, `server.address`, `server.port`. */
  base(bigInts: boolean): Attributes {
    return this.#base[bigInts ? 1 : 0];
  }

  /** The duration histogram's attributes of a successful statement. */
  durationAttributes(
    bigInts: boolean,
    summary: string | undefined,
    operation: string | undefined,
    collection: string | undefined,
  ): Attributes {
    const key = `${bigInts ? 1 : 0}${operation ?? ""}\u0000${collection ?? ""}\u0000${
      summary ?? ""
    }`;
    let attributes = this.#durations.get(key);
    if (attributes === undefined) {
      attributes = Object.freeze(
        statementAttributes(this.base(bigInts), summary, operation, collection),
      );
      if (this.#durations.size >= 1000) this.#durations.clear();
      this.#durations.set(key, attributes);
    }
    return attributes;
  }
}

/** `cockroachdb` or `postgresql` for the package's dialect names. */
export function dbSystemName(dialect: "cockroach" | "postgres"): DbSystemName {
  return dialect === "cockroach" ? "cockroachdb" : "postgresql";
}

function statementAttributes(
  base: Attributes,
  summary: string | undefined,
  operation: string | undefined,
  collection: string | undefined,
): Attributes {
  const a: Attributes = { ...base };
  if (operation !== undefined) a["db.operation.name"] = operation;
  if (collection !== undefined) a["db.collection.name"] = collection;
  if (summary !== undefined) a["db.query.summary"] = summary;
  return a;
}

// --- Statements. -------------------------------------------------------------------------------

/**
 * Runs one statement (`run` sends it) inside a CLIENT span, and records its duration. With no
 * provider registered it returns `run()` itself.
 *
 * @param target The database's attributes.
 * @param text The statement text as sent.
 * @param parameterized The text went with bind parameters (else its literals are hidden).
 * @param run Sends the statement.
 * @param operation What a CRUD helper knows of it.
 * @returns What `run` returns.
 */
export function traceStatement<T>(
  target: TelemetryTarget,
  text: string,
  parameterized: boolean,
  run: () => Promise<T>,
  operation?: StatementOperation,
): Promise<T> {
  const tracing = currentTracing();
  const instruments = currentInstruments();
  if (tracing === undefined && instruments === undefined) return run();
  if (suppressed()) return run();
  return observeStatement(target, text, parameterized, run, operation, tracing, instruments);
}

const SUPPRESSED = createContextKey("@manticore/cockroachdb: no statement telemetry");

function suppressed(): boolean {
  return context.active().getValue(SUPPRESSED) === true;
}

/**
 * Runs `fn` so that the statements and transactions it starts make no spans and no points of
 * their own: for a batch helper whose statements are recorded as one operation (a
 * `traceStatement` with `batchSize` around this). Needs a context manager, which Deno
 * registers with its tracing.
 *
 * @param fn The work.
 * @returns What `fn` returns.
 */
export function withoutTelemetry<T>(fn: () => T): T {
  if (currentTracing() === undefined && currentInstruments() === undefined) return fn();
  return context.with(context.active().setValue(SUPPRESSED, true), fn);
}

function observeStatement<T>(
  target: TelemetryTarget,
  text: string,
  parameterized: boolean,
  run: () => Promise<T>,
  operation: StatementOperation | undefined,
  tracing: Tracing | undefined,
  instruments: Instruments | undefined,
): Promise<T> {
  // A helper's parameterized text needs no reading: it names its operation and collection.
  const query = operation === undefined || !parameterized ? describeQuery(text) : undefined;
  let name: string | undefined;
  let collection: string | undefined;
  let summary: string | undefined;
  if (operation === undefined) {
    summary = query!.summary;
  } else {
    name = operation.batchSize === undefined ? operation.operation : `BATCH ${operation.operation}`;
    collection = operation.collection;
    summary = collection === undefined ? name : `${name} ${collection}`;
  }
  let span: Span | undefined;
  if (tracing !== undefined) {
    const attributes = statementAttributes(target.base(tracing.bigInts), summary, name, collection);
    attributes["db.query.text"] = parameterized ? text : query!.sanitized;
    if (operation?.batchSize !== undefined) {
      attributes["db.operation.batch.size"] = integer(operation.batchSize, tracing.bigInts);
    }
    // Attributes at creation, as the conventions ask, for samplers.
    span = tracing.tracer.startSpan(summary ?? target.endpoint.system, {
      kind: SpanKind.CLIENT,
      attributes,
    });
  }
  const start = performance.now();
  const finish = (failed: boolean, error: unknown): void => {
    const seconds = (performance.now() - start) / 1000;
    const codes = failed ? errorCodes(error) : undefined;
    if (span !== undefined) {
      if (codes !== undefined) recordFailure(span, codes, true);
      span.end();
    }
    if (instruments !== undefined) {
      let attributes = target.durationAttributes(instruments.bigInts, summary, name, collection);
      if (codes !== undefined) {
        attributes = { ...attributes, "error.type": codes.type };
        if (codes.status !== undefined) attributes["db.response.status_code"] = codes.status;
      }
      instruments.duration.record(seconds, attributes);
    }
  };
  let pending: Promise<T>;
  try {
    pending = run();
  } catch (error) {
    finish(true, error);
    throw error;
  }
  return pending.then((value) => {
    finish(false, undefined);
    return value;
  }, (error) => {
    finish(true, error);
    throw error;
  });
}

// --- Transactions and migrations. --------------------------------------------------------------

const NOOP_RUN = <T>(fn: () => T): T => fn();

/** What a span-owning handle needs: its span and the context that makes it active. */
class ActiveSpan {
  readonly span: Span;
  readonly #context: Context;
  #ended = false;

  constructor(span: Span) {
    this.span = span;
    this.#context = trace.setSpan(context.active(), span);
  }

  run<T>(fn: () => T): T {
    return context.with(this.#context, fn);
  }

  /** True the first time only. */
  ending(): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    return true;
  }
}

/**
 * Starts the span of one `transaction()` call (INTERNAL: its statements are the CLIENT spans).
 * With no provider registered it returns a handle that does nothing.
 *
 * @param target The database's attributes.
 * @returns The transaction's handle.
 */
export function startTransaction(target: TelemetryTarget): TransactionTelemetry {
  const tracing = currentTracing();
  const instruments = currentInstruments();
  if (tracing === undefined && instruments === undefined) return NOOP_TRANSACTION;
  if (suppressed()) return NOOP_TRANSACTION;
  const active = tracing === undefined ? undefined : new ActiveSpan(
    tracing.tracer.startSpan("transaction", {
      kind: SpanKind.INTERNAL,
      attributes: target.base(tracing.bigInts),
    }),
  );
  let attempts = 1;
  return {
    run: active === undefined ? NOOP_RUN : (fn) => active.run(fn),
    retry(attempt, backoffMs, error) {
      attempts = attempt + 1;
      const codes = errorCodes(error);
      if (active !== undefined) {
        const bigInts = tracing?.bigInts ?? false;
        const event: Attributes = {};
        if (codes.status !== undefined) event["db.response.status_code"] = codes.status;
        event["error.type"] = codes.type;
        event[ATTEMPT] = integer(attempt, bigInts);
        event[BACKOFF] = integer(backoffMs, bigInts);
        active.span.addEvent("retry", event);
      }
      const current = currentInstruments();
      if (current !== undefined) {
        const attributes: Attributes = { ...target.base(current.bigInts) };
        if (codes.status !== undefined) attributes["db.response.status_code"] = codes.status;
        attributes["error.type"] = codes.type;
        current.retries.add(1, attributes);
      }
    },
    end(error) {
      if (active === undefined || !active.ending()) return;
      const outcome: TransactionOutcome = error === undefined
        ? "committed"
        : error instanceof AmbiguousCommitError
        ? "ambiguous"
        : "failed";
      active.span.setAttribute(OUTCOME, outcome);
      active.span.setAttribute(ATTEMPTS, integer(attempts, tracing?.bigInts ?? false));
      if (error !== undefined) recordFailure(active.span, errorCodes(error), false);
      active.span.end();
    },
  };
}

const NOOP_TRANSACTION: TransactionTelemetry = Object.freeze({
  run: NOOP_RUN,
  retry(): void {},
  end(): void {},
});

/**
 * Starts the span of one migration, applied (`apply migration`) or reverted (`revert
 * migration`). With no tracer provider registered it returns a handle that does nothing.
 *
 * @param target The database's attributes.
 * @param info The migration.
 * @returns The migration's handle.
 */
export function startMigration(target: TelemetryTarget, info: MigrationInfo): MigrationTelemetry {
  const tracing = currentTracing();
  if (tracing === undefined) return NOOP_MIGRATION;
  const attributes: Attributes = { ...target.base(tracing.bigInts) };
  attributes[MIGRATION_VERSION] = integer(info.version, tracing.bigInts);
  attributes[MIGRATION_NAME] = info.name;
  attributes[MIGRATION_DIRECTION] = info.direction;
  const active = new ActiveSpan(
    tracing.tracer.startSpan(info.direction === "up" ? "apply migration" : "revert migration", {
      kind: SpanKind.INTERNAL,
      attributes,
    }),
  );
  return {
    run: (fn) => active.run(fn),
    end(error) {
      if (!active.ending()) return;
      if (error !== undefined) recordFailure(active.span, errorCodes(error), false);
      active.span.end();
    },
  };
}

const NOOP_MIGRATION: MigrationTelemetry = Object.freeze({ run: NOOP_RUN, end(): void {} });

// --- Pools. ------------------------------------------------------------------------------------

interface ObservedPool {
  readonly read: () => PoolCounts;
  readonly named: Attributes;
  readonly idle: Attributes;
  readonly used: Attributes;
}

const pools = new Set<ObservedPool>();
const poolNames = new Set<string>();

function observePools(
  result: BatchObservableResult,
  count: ObservableUpDownCounter,
  max: ObservableUpDownCounter,
  pending: ObservableUpDownCounter,
): void {
  for (const pool of pools) {
    let counts: PoolCounts;
    try {
      counts = pool.read();
    } catch {
      continue; // a pool closing meanwhile: reported at the next collection, or no more
    }
    result.observe(count, counts.idle, pool.idle);
    result.observe(count, counts.used, pool.used);
    result.observe(max, counts.max, pool.named);
    result.observe(pending, counts.pending, pool.named);
  }
}

/**
 * Reports a pool in the connection metrics until `close()`: `read` is called at each metric
 * collection. The name is `address:port/namespace`, with `#2`, `#3`… for a second pool of the
 * same name open at the same time (the conventions want it unique in the application).
 *
 * @param target The database's attributes.
 * @param read The pool's numbers now.
 * @returns The pool's handle.
 */
export function observePool(target: TelemetryTarget, read: () => PoolCounts): PoolTelemetry {
  const { address, port, namespace } = target.endpoint;
  const base = `${address}:${port}/${namespace ?? ""}`;
  let name = base;
  for (let n = 2; poolNames.has(name); n++) name = `${base}#${n}`;
  poolNames.add(name);
  const named = Object.freeze({ [POOL_NAME]: name });
  const pool: ObservedPool = {
    read,
    named,
    idle: Object.freeze({ [POOL_NAME]: name, [STATE]: "idle" }),
    used: Object.freeze({ [POOL_NAME]: name, [STATE]: "used" }),
  };
  pools.add(pool);
  currentInstruments(); // registers the collection callback once a provider is there
  let closed = false;
  return {
    name,
    connectionCreated(seconds) {
      if (!closed) currentInstruments()?.createTime.record(seconds, named);
    },
    connectionWaited(seconds) {
      if (!closed) currentInstruments()?.waitTime.record(seconds, named);
    },
    close() {
      if (closed) return;
      closed = true;
      pools.delete(pool);
      poolNames.delete(name);
    },
  };
}

// --- Across the sync bridge. -------------------------------------------------------------------

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The calling thread's active span as plain data for the bridge's worker, or `undefined` when
 * nothing is traced (no provider, or no valid span active). Built from the span context itself,
 * not through the propagation API: `OTEL_PROPAGATORS=none` must not cut the sync API's spans
 * out of the caller's trace.
 *
 * @returns The carrier, or `undefined`.
 */
export function captureContext(): TraceCarrier | undefined {
  if (currentTracing() === undefined) return undefined;
  const spanContext = trace.getSpanContext(context.active());
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return undefined;
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  const traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/**
 * Runs `fn` in the worker with the caller's span (from {@linkcode captureContext}) as the
 * active parent, so that the spans made meanwhile are its children. Without a carrier, a
 * provider or a readable `traceparent`, it runs `fn` as it is.
 *
 * @param carrier What `captureContext()` gave on the calling thread.
 * @param fn The work.
 * @returns What `fn` returns.
 */
export function withCapturedContext<T>(carrier: TraceCarrier | undefined, fn: () => T): T {
  if (carrier === undefined || currentTracing() === undefined) return fn();
  const match = typeof carrier.traceparent === "string"
    ? TRACEPARENT.exec(carrier.traceparent)
    : null;
  if (match === null) return fn();
  const spanContext: SpanContext = {
    traceId: match[1],
    spanId: match[2],
    traceFlags: parseInt(match[3], 16),
    isRemote: true,
  };
  if (!isSpanContextValid(spanContext)) return fn(); // all-zero ids
  if (typeof carrier.tracestate === "string" && carrier.tracestate !== "") {
    spanContext.traceState = createTraceState(carrier.tracestate);
  }
  return context.with(trace.setSpanContext(context.active(), spanContext), fn);
}
