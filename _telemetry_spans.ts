// The spans of a database's work, and the duration of its statements: one CLIENT span per
// statement (a batch helper's statements as one), one INTERNAL span per `transaction()` call
// with a `retry` event per retry and its outcome, one per migration applied or reverted. The
// attributes every span shares, the error recording and the provider lookup are
// `_telemetry.ts`'s.
//
// Per the semantic conventions v1.44.0 (docs/db/database-spans.md, sql.md): a statement's span
// is named `{db.query.summary}` (else `{db.system.name}`) and has `db.query.text` and
// `db.query.summary`. Raw SQL gets no `db.operation.name` or `db.collection.name` ("SHOULD NOT
// be extracted from db.query.text"); the CRUD helpers name them. Text sent without bind
// parameters has its literals replaced by `?` (`_query_summary.ts`). A batch of several
// statements sent by one call is one span with `db.operation.batch.size`, its operation named
// `BATCH {operation}`. Transactions and migrations are outside the conventions: their spans
// and attributes carry the `manticore.` prefix.
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  type Span,
  SpanKind,
  trace,
} from "npm:@opentelemetry/api@1.10.0";
import { describeQuery } from "./_query_summary.ts";
import {
  currentInstruments,
  currentTracing,
  errorCodes,
  type Instruments,
  integer,
  recordFailure,
  statementAttributes,
  type TelemetryTarget,
  type Tracing,
} from "./_telemetry.ts";
import { AmbiguousCommitError } from "./errors.ts";

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

// Names outside the conventions.
const OUTCOME = "manticore.db.transaction.outcome";
const ATTEMPTS = "manticore.db.transaction.attempts";
const ATTEMPT = "manticore.db.transaction.attempt";
const BACKOFF = "manticore.db.transaction.backoff_ms";
const MIGRATION_VERSION = "manticore.db.migration.version";
const MIGRATION_NAME = "manticore.db.migration.name";
const MIGRATION_DIRECTION = "manticore.db.migration.direction";

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
    // A batch of unlike statements (db.batch) names no operation: it is just a BATCH.
    name = operation.batchSize === undefined
      ? operation.operation
      : operation.operation === ""
      ? "BATCH"
      : `BATCH ${operation.operation}`;
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

/** The span of a transaction when nothing is traced: runs, records nothing. */
export const NOOP_TRANSACTION: TransactionTelemetry = Object.freeze({
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

/** The span of a migration when nothing is traced. */
export const NOOP_MIGRATION: MigrationTelemetry = Object.freeze({ run: NOOP_RUN, end(): void {} });
