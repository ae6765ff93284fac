// The public option and event types, one set for both APIs (re-exported by the entry points):
// the connection options, the transaction options, what the hooks receive, and the options of
// the CRUD helpers. `_sql/ddl.ts` builds from `CreateTableOptions` and `DropTableOptions` as
// they are; the upsert and batch builders take plans resolved from these against the server's
// dialect (`UpsertPlan`, `BatchInsertPlan` in `_sql/`).
import type { LoadBalanceHosts } from "./_hosts.ts";

export type { LoadBalanceHosts };

/**
 * How to stop one call: every method takes these, as its last argument or inside its options.
 *
 * An aborted call rejects with `DatabaseError` whose `cause` is the signal's reason: code
 * `57014` when the server cancelled the statement it was running, `ABORTED` when nothing had
 * been sent. An aborted transaction rolls back and is not retried; an aborted stream closes its
 * cursor. The connection goes back to the pool usable.
 */
export interface CallOptions {
  /**
   * Aborts the call. Asynchronous API only: the synchronous `Database` blocks its thread, so it
   * takes `timeout` (a signal is refused with `ValidationError`).
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
  /**
   * Milliseconds the call may take; then it is aborted as by `signal` (the reason is a
   * `TimeoutError` `DOMException`).
   * @default {undefined} no limit
   */
  readonly timeout?: number;
}

/** One statement of a `batch()`: a single statement, with its bind parameters. */
export interface BatchStatement {
  /** The statement: one statement, placeholders `$1 … $n`. */
  readonly sql: string;
  /**
   * The bind parameters.
   * @default {[]}
   */
  readonly params?: readonly unknown[];
}

/** Options of `createTable`. */
export interface CreateTableOptions extends CallOptions {
  /**
   * Add `IF NOT EXISTS`.
   * @default {true}
   */
  readonly ifNotExists?: boolean;
}

/** Options of `dropTable`. */
export interface DropTableOptions extends CallOptions {
  /**
   * Add `IF EXISTS`.
   * @default {true}
   */
  readonly ifExists?: boolean;
  /**
   * Add `CASCADE`.
   * @default {false}
   */
  readonly cascade?: boolean;
}

/** Options of `upsert` and `batchUpsert`. */
export interface UpsertOptions extends CallOptions {
  /**
   * The columns whose conflict turns the insert into an update. Without them, CockroachDB uses
   * `UPSERT` (the primary key) and PostgreSQL uses the table's primary key.
   * @default {undefined}
   */
  readonly conflictColumns?: readonly string[];
  /**
   * Most records per statement (`batchUpsert` only).
   * @default {as many as fit under 65,534 bind parameters}
   */
  readonly chunkSize?: number;
}

/** Options of `batchInsert`. */
export interface BatchInsertOptions extends CallOptions {
  /**
   * Return the inserted rows (in input order); `false` returns the count and may use `COPY`.
   * @default {true}
   */
  readonly returning?: boolean;
  /**
   * Most records per statement.
   * @default {as many as fit under 65,534 bind parameters}
   */
  readonly chunkSize?: number;
}

/** Options of `batchUpdate`. */
export interface BatchUpdateOptions extends CallOptions {
  /**
   * The column that identifies each record.
   * @default {"id"}
   */
  readonly keyColumn?: string;
}

/** Options of `stream`. */
export interface StreamOptions extends CallOptions {
  /**
   * Rows fetched from the cursor per round trip.
   * @default {1000}
   */
  readonly batchSize?: number;
}

/** How TLS is used, with libpq's meanings. */
export type SslMode = "disable" | "require" | "verify-ca" | "verify-full";

/** How `INT8` values (CockroachDB's `INT`) are returned. */
export type Int8Mode = "bigint" | "number" | "string";

/** Transaction isolation levels accepted by {@linkcode TransactionOptions}. */
export type IsolationLevel = "serializable" | "repeatable read" | "read committed";

/** Information passed to {@linkcode TransactionOptions.onRetry} before each retry. */
export interface RetryInfo {
  /** The attempt that failed, counting from 1. */
  readonly attempt: number;
  /** How long the runner waits before the next attempt, in milliseconds. */
  readonly delayMs: number;
  /** The error that caused the retry. */
  readonly error: Error;
}

/** Retry settings; the defaults of every transaction of a database. */
export interface RetryOptions {
  /**
   * How many times a transaction is run again after a retryable failure.
   * @default {10}
   */
  readonly maxRetries?: number;
  /**
   * The first backoff, in milliseconds; it doubles with each retry (full jitter).
   * @default {10}
   */
  readonly initialBackoff?: number;
  /**
   * The longest backoff, in milliseconds.
   * @default {2000}
   */
  readonly maxBackoff?: number;
}

/** Options of one `transaction()` call. */
export interface TransactionOptions extends RetryOptions, CallOptions {
  /**
   * Total time the transaction may take, retries included, in milliseconds. When the next
   * backoff would end past it, the runner stops with `TransactionRetryError`.
   * @default {undefined} no deadline
   */
  readonly deadline?: number;
  /**
   * Isolation level of the transaction.
   * @default {undefined} the server's default (serializable on CockroachDB)
   */
  readonly isolation?: IsolationLevel;
  /**
   * Run the transaction `READ ONLY`.
   * @default {false}
   */
  readonly readOnly?: boolean;
  /**
   * CockroachDB only: read at a past time (`AS OF SYSTEM TIME`), e.g. `"-10s"` or
   * `"follower_read_timestamp()"`; implies a read-only transaction.
   * @default {undefined}
   */
  readonly asOfSystemTime?: string;
  /**
   * The callback may safely run twice: an ambiguous commit is retried instead of throwing
   * `AmbiguousCommitError`.
   * @default {false}
   */
  readonly idempotent?: boolean;
  /**
   * Called before each retry.
   * @default {undefined}
   */
  readonly onRetry?: (info: RetryInfo) => void;
}

/** A notice or warning the server sent (`RAISE NOTICE`, `RAISE WARNING`, …). */
export interface Notice {
  /** `WARNING`, `NOTICE`, `INFO`, `LOG` or `DEBUG`. */
  readonly severity: string;
  /** The SQLSTATE, e.g. `01000` for a warning. */
  readonly code: string;
  /** The text. */
  readonly message: string;
  /** The server's `DETAIL` line, if any. */
  readonly detail?: string;
  /** The server's `HINT` line, if any. */
  readonly hint?: string;
}

/** What `onQuery` hears of one statement, after it answered or failed. */
export interface QueryEvent {
  /** The statement text as sent: placeholders, never values. */
  readonly text: string;
  /** The parameters, only with `logParameters: true`. */
  readonly params?: readonly unknown[];
  /** Milliseconds from the call to the answer (resends included). */
  readonly durationMs: number;
  /** Rows returned (0 for a statement without rows), absent on failure. */
  readonly rowCount?: number;
  /** Rows affected or returned, from the command tag, absent on failure. */
  readonly count?: number;
  /** The error it failed with. */
  readonly error?: Error;
  /** It ran again: a resend of the pool, or in a retried transaction attempt. */
  readonly retry: boolean;
  /** `host:port` of the connection that answered, when known. */
  readonly host?: string;
  /** The helper's operation (`SELECT`, `INSERT` …) and table, for the CRUD helpers. */
  readonly operation?: string;
  /** The table of a CRUD helper. */
  readonly collection?: string;
}

/** Options of `AsyncDatabase` and `Database`. */
export interface DatabaseOptions {
  /**
   * Server host name or address; several may be given, comma separated, for failover.
   * @default {"localhost"}
   */
  readonly host?: string;
  /**
   * Server port.
   * @default {26257}
   */
  readonly port?: number;
  /**
   * Database name.
   * @default {"defaultdb"}
   */
  readonly database?: string;
  /**
   * User name.
   * @default {"root"}
   */
  readonly user?: string;
  /**
   * Password; never shown in errors, logs or `String(db)`.
   * @default {undefined}
   */
  readonly password?: string;
  /**
   * TLS mode: `require` encrypts, `verify-ca` also checks the chain, `verify-full` also the name.
   * @default {"disable"}
   */
  readonly sslmode?: SslMode;
  /**
   * Path of the CA certificate file used to verify the server.
   * @default {undefined}
   */
  readonly sslrootcert?: string;
  /**
   * Path of the client certificate file.
   * @default {undefined}
   */
  readonly sslcert?: string;
  /**
   * Path of the client key file.
   * @default {undefined}
   */
  readonly sslkey?: string;
  /**
   * `application_name` reported to the server.
   * @default {"manticore-db"}
   */
  readonly applicationName?: string;
  /**
   * Connections opened by `connect()`; without it, 2 (or `maxConnections` when that is 1).
   * @default {2}
   */
  readonly minConnections?: number;
  /**
   * Most connections the pool holds.
   * @default {10}
   */
  readonly maxConnections?: number;
  /**
   * Seconds to wait for a connection.
   * @default {30}
   */
  readonly connectTimeout?: number;
  /**
   * Seconds an idle connection is kept; 0 keeps it.
   * @default {0}
   */
  readonly idleTimeout?: number;
  /**
   * Seconds a connection lives at most, with 10 % jitter (CockroachDB advises 5–30 minutes).
   * @default {1800}
   */
  readonly maxLifetime?: number;
  /**
   * Milliseconds a statement may run before the server cancels it; 0 means no limit.
   * @default {undefined} the server's setting
   */
  readonly statementTimeout?: number;
  /**
   * How new connections pick among several hosts, with libpq's names and meanings (URL
   * parameter `load_balance_hosts`): `"disable"` tries them in the order given and takes the
   * first that answers; `"random"` tries them in a random order, so a pool spreads over the
   * nodes. Either way a host that fails or refuses is tried last for a while (with backoff), a
   * host whose sessions were ended for a drain (`57P01`) is avoided for 30 s, and a connection
   * attempt moves on to the next host when one fails or does not answer within `connectTimeout`.
   * @default {"disable"}
   */
  readonly loadBalanceHosts?: LoadBalanceHosts;
  /**
   * Defaults for every transaction's retries.
   * @default {{ maxRetries: 10, initialBackoff: 10, maxBackoff: 2000 }}
   */
  readonly retry?: RetryOptions;
  /**
   * How `INT8` values are returned; `"number"` throws `RangeError` outside the safe range.
   * @default {"bigint"}
   */
  readonly int8?: Int8Mode;
  /**
   * Send a single statement run outside a transaction again when the server answers it with a
   * serialization failure (`40001`) or a deadlock (`40P01`): its implicit transaction rolled
   * back, so running it again is safe. Uses `retry`'s `maxRetries` and backoff; when they run
   * out the call throws `TransactionRetryError`. Text holding several statements is not resent.
   * @default {true}
   */
  readonly retryStatements?: boolean;
  /**
   * Called after every statement with its text, duration, rows, error, host and whether it ran
   * again; with the sync `Database` it runs on the calling thread, before the call returns. A
   * hook that throws is reported as an uncaught error, not to the caller.
   * @default {undefined}
   */
  readonly onQuery?: (event: QueryEvent) => void;
  /**
   * Give `onQuery` the parameters too. They may hold secrets: off by default, and never put in
   * a span or a metric.
   * @default {false}
   */
  readonly logParameters?: boolean;
  /**
   * Called with every notice the server sends (`RAISE NOTICE`, `RAISE WARNING`, …). With the
   * sync `Database` it runs on the calling thread, before the call that caused it returns.
   * @default {warnings go to console.warn, other notices are dropped}
   */
  readonly onNotice?: (notice: Notice) => void;
}
