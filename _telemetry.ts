// What the package tells OpenTelemetry rests on this module: which providers are registered,
// the instruments made from them, and what every span and metric of one database says of its
// server. Everything goes through `npm:@opentelemetry/api` only: a no-op until a provider is
// registered. `OTEL_DENO=true` makes Deno register its built-in providers with that API
// (`globalThis[Symbol.for("opentelemetry.js.api.1")]`, version "1.999.999", so every 1.x copy of
// the API accepts them), and the package is traced with no configuration. The signals
// themselves: statement, transaction and migration spans in `_telemetry_spans.ts`, the pool
// metrics in `_telemetry_pool.ts`, the trace context across the sync bridge in
// `_telemetry_context.ts`.
//
// Names and attributes follow the OpenTelemetry semantic conventions v1.44.0 (docs/db/
// database-spans.md, sql.md, postgresql.md, database-metrics.md; general/recording-errors.md):
// - every span and metric point of a database has `db.system.name`, `db.namespace` (the
//   database of the connection string: the schema is not known without a query),
//   `server.address`, and `server.port` only when it is not the system's default port (a
//   Conditionally Required attribute whose condition fails is Opt-In);
// - a failure sets `error.type` (the error's `code`: the SQLSTATE, or the client's stable code
//   such as CONNECTION_CLOSED; else the error's name; else `_OTHER`), `db.response.status_code`
//   (when the code is a SQLSTATE) and status ERROR without a description: server and client
//   messages can quote parameter values (22P02 quotes the bad input);
// - `db.client.operation.duration` has the advised buckets.
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
  type Counter,
  createNoopMeter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableUpDownCounter,
  ProxyTracerProvider,
  type Span,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from "npm:@opentelemetry/api@1.10.0";

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

/** The retry counter: a name outside the conventions. */
const RETRIES = "manticore.db.client.transaction.retries";

interface DenoTelemetry {
  readonly tracerProvider?: unknown;
  readonly meterProvider?: unknown;
}

function denoTelemetry(): DenoTelemetry | undefined {
  return (globalThis as { Deno?: { telemetry?: DenoTelemetry } }).Deno?.telemetry;
}

/** An integer attribute: a bigint for Deno's exporter (else it sends a double), else a number. */
export function integer(n: number, asBigInt: boolean): number {
  return asBigInt && Number.isSafeInteger(n) ? BigInt(n) as unknown as number : n;
}

// --- What is registered. -----------------------------------------------------------------------
// Each API lookup reads the API's slot on Deno's global object, ~30 ns; a statement with
// nothing registered should cost next to nothing. So the providers are looked up every
// `RECHECK` calls, and by `refreshTelemetry()`: a provider registered (or removed) after
// statements began is seen within that many calls.

/** The tracer of the registered provider. */
export interface Tracing {
  readonly tracer: Tracer;
  readonly bigInts: boolean;
}

/** The instruments made from the registered meter provider. */
export interface Instruments {
  readonly duration: Histogram;
  readonly retries: Counter;
  readonly createTime: Histogram;
  readonly waitTime: Histogram;
  readonly bigInts: boolean;
}

/** The observable pool instruments, read at each metric collection. */
export interface PoolInstruments {
  /** `db.client.connection.count`, by `db.client.connection.state`. */
  readonly count: ObservableUpDownCounter;
  /** `db.client.connection.max`. */
  readonly max: ObservableUpDownCounter;
  /** `db.client.connection.pending_requests`. */
  readonly pending: ObservableUpDownCounter;
}

/** Reports one pool's numbers at a metric collection. */
export type PoolReporter = (result: BatchObservableResult, instruments: PoolInstruments) => void;

// The pools open now (`_telemetry_pool.ts` adds and removes them): the instruments, made once
// per meter provider, read whichever are there at each collection.
const poolReporters = new Set<PoolReporter>();

/**
 * Reports a pool at every metric collection until the returned function is called. Looks up
 * the providers, so that the collection callback is registered once a meter provider is there.
 *
 * @param reporter Reports the pool's numbers.
 * @returns Stops reporting it.
 */
export function reportPool(reporter: PoolReporter): () => void {
  poolReporters.add(reporter);
  currentInstruments();
  return () => poolReporters.delete(reporter);
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

/** The tracer, or `undefined` when no tracer provider is registered. */
export function currentTracing(): Tracing | undefined {
  if (--budget < 0) refreshTelemetry();
  return tracing;
}

/** The instruments, or `undefined` when no meter provider is registered. */
export function currentInstruments(): Instruments | undefined {
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
  const observed: PoolInstruments = { count, max, pending };
  meter.addBatchObservableCallback((result) => {
    for (const report of poolReporters) report(result, observed);
  }, [count, max, pending]);
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

/**
 * Marks `span` failed: `error.type`, status ERROR (no description: messages can quote values),
 * and `db.response.status_code` when asked and the code is a SQLSTATE.
 */
export function recordFailure(span: Span, codes: ErrorCodes, withStatusCode: boolean): void {
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

/** The attributes of a statement's span and duration points, but for its text. */
export function statementAttributes(
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
