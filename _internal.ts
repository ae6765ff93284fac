// Friend access: what the package's own modules may reach inside its public classes beyond their
// public API (the sync bridge's worker drives an `AsyncDatabase`'s connections; the tests make a
// `Database`'s worker fail on purpose). Each class hands over a reader of its `#private` state
// from a static block, once, when the class is defined. Nothing is kept per instance: the
// reader's private-field access is the brand check (it throws `TypeError` for any other object),
// and users cannot reach it, since no entry point exports this module.
import type { AsyncDatabase, AsyncTransaction } from "./async_database.ts";
import type { Database } from "./database.ts";
import type { ReservedSession } from "./_driver.ts";
import type { Request } from "./_bridge.ts";
import type { ResolvedConfig } from "./_config.ts";
import type { Dialect } from "./_sql.ts";
import type { Observer } from "./_observe.ts";
import type { Link } from "./_link.ts";

/** The state of one transaction attempt, shared by its handle and the runner that made it. */
export interface TransactionContext {
  readonly session: ReservedSession;
  /** The attempt, from 1: statements of a later one are retries. */
  readonly attempt: number;
  /** Aborts the whole transaction (its `signal` and `timeout`), if it has one. */
  readonly signal: AbortSignal | undefined;
  /** A statement of the attempt failed with a retryable SQLSTATE (even if the callback caught it). */
  sawRetryable: boolean;
  /** The attempt is over: the handle refuses every call. */
  closed: boolean;
  /** The statements deferred to travel with the next one on the connection (BEGIN, …). */
  readonly link: Link;
}

/** What the package's own modules may do with an `AsyncDatabase`. */
export interface DatabaseInternals {
  /** The resolved options. */
  readonly config: ResolvedConfig;
  /**
   * Connects if needed and answers the server's dialect; with `confirm`, a `postgres` reading
   * is checked with `SELECT version()` (see `Pool.dialect()`).
   */
  dialect(confirm?: boolean): Promise<Dialect>;
  /** A connection of the pool for one transaction. */
  reserve(): Promise<ReservedSession>;
  /** The handle of one transaction attempt, on `context.session`. */
  transaction(context: TransactionContext, dialect: Dialect): AsyncTransaction;
  /** What the database tells about its work (hook, telemetry, counts). */
  readonly observer: Observer;
}

let readDatabase: ((db: AsyncDatabase) => DatabaseInternals) | undefined;
let readSyncObserver: ((db: Database) => Observer) | undefined;
let sendRequest: ((db: Database, request: Request) => unknown) | undefined;

/** Called by `AsyncDatabase`'s static block. */
export function grantDatabaseInternals(reader: (db: AsyncDatabase) => DatabaseInternals): void {
  readDatabase = reader;
}

/** Called by `Database`'s static block. */
export function grantSyncObserver(reader: (db: Database) => Observer): void {
  readSyncObserver = reader;
}

/**
 * The observer on a sync `Database`'s own thread (transaction and migration spans).
 *
 * @throws {TypeError} when `db` is not a `Database`.
 */
export function syncObserverOf(db: Database): Observer {
  if (readSyncObserver === undefined) throw new TypeError("Cannot use object: not a Database");
  return readSyncObserver(db);
}

/** Called by `Database`'s static block. */
export function grantBridgeRequests(sender: (db: Database, request: Request) => unknown): void {
  sendRequest = sender;
}

/**
 * The internals of an `AsyncDatabase`.
 *
 * @throws {TypeError} when `db` is not an `AsyncDatabase`.
 */
export function internalsOf(db: AsyncDatabase): DatabaseInternals {
  if (readDatabase === undefined) throw new TypeError("Cannot use object: not an AsyncDatabase");
  return readDatabase(db);
}

/**
 * Test hook: sends a raw request over a `Database`'s bridge (starting its worker if needed) and
 * answers the worker's answer.
 *
 * @throws {TypeError} when `db` is not a `Database`.
 */
export function bridgeRequest(db: Database, request: Request): unknown {
  if (sendRequest === undefined) throw new TypeError("Cannot use object: not a Database");
  return sendRequest(db, request);
}
