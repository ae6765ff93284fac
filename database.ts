/**
 * `Database`: the synchronous twin of `AsyncDatabase` — the same raw SQL, CRUD
 * helpers, streaming and retrying transactions, returning values instead of promises.
 *
 * It works without FFI: each `Database` starts one worker (a `node:worker_threads` worker,
 * unreferenced so that it never keeps the process alive) that owns an `AsyncDatabase`. A call
 * writes its request into a `SharedArrayBuffer`, wakes the worker and blocks the calling thread
 * (a brief spin, then `Atomics.wait`) until the answer is there. Values keep their types across
 * the bridge (`bigint`, `Date`, `Uint8Array`, parsed JSON, `null`, numeric strings) and errors
 * keep their classes, codes and causes.
 *
 * Importing this module starts nothing; constructing a `Database` starts its worker.
 * Each `Database` serves the one thread that uses it; several threads may each own one.
 *
 * @example Connect, write and read
 * ```ts ignore
 * import { Database } from "@manticore/cockroachdb/database";
 *
 * using db = new Database("postgresql://root@localhost:26257/defaultdb");
 * db.createTable("users", { id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()", name: "TEXT" });
 * const ada = db.insert("users", { name: "Ada" });
 * console.log(db.select("users", { where: { id: ada.id } }));
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import {
  type DatabaseOptions,
  describeTarget,
  type Notice,
  resolveConfig,
  type ResolvedConfig,
  type TransactionOptions,
} from "./_config.ts";
import { type SessionState, transactionSettings, transactionSteps } from "./_retry.ts";
import type {
  BatchInsertOptions,
  BatchUpdateOptions,
  CreateTableOptions,
  DropTableOptions,
  StreamOptions,
  UpsertOptions,
} from "./async_database.ts";
import type { Dialect, OrderBy, Row, SelectOptions, Where, WhereOperators } from "./_sql.ts";
import {
  BEAT,
  bootstrapSource,
  BRIDGE_MARK,
  type BridgeEvent,
  bridgeHooks,
  CALLER,
  createSharedBuffer,
  DEAD,
  deathReason,
  decodeError,
  decodeMessage,
  type EncodedMessage,
  encodeMessage,
  type ErrorRecord,
  findUncrossable,
  FORMAT,
  headerOf,
  HEARTBEAT_MS,
  KIND,
  KIND_ERROR,
  KIND_EVENTS,
  KIND_PART,
  KIND_REQUEST,
  readChunk,
  type Request,
  STARTING,
  STATUS,
  type StreamBatch,
  totalLength,
  type TransactionRef,
  TURN,
  WORKER,
  type WorkerData,
  writeChunk,
} from "./_bridge.ts";
import { ConnectionError, DatabaseError, ValidationError } from "./crud/exceptions.ts";
// The worker's module, imported here for its place in the module graph only (it does nothing
// outside a bridge worker): Deno then fetches and caches it and everything it imports before
// this module runs. A worker cannot fetch a remote module (JSR, https) while the thread that
// started it blocks in Atomics.wait, so without this the first Database of a remote import
// would wait for a worker that cannot load.
import "./_bridge_worker.ts";

export type {
  Int8Mode,
  IsolationLevel,
  Notice,
  RetryInfo,
  RetryOptions,
  SslMode,
} from "./_config.ts";
export type {
  BatchInsertOptions,
  BatchUpdateOptions,
  CreateTableOptions,
  DatabaseOptions,
  Dialect,
  DropTableOptions,
  OrderBy,
  Row,
  SelectOptions,
  StreamOptions,
  TransactionOptions,
  UpsertOptions,
  Where,
  WhereOperators,
};

/** Options of {@linkcode Database}: those of `AsyncDatabase`, and the bridge's. */
export interface SyncDatabaseOptions extends DatabaseOptions {
  /**
   * Milliseconds the calling thread waits for a sign of life from the worker before it gives
   * up with `ConnectionError` and ends the worker. The worker signs of life ten times a second
   * while its event loop runs, so a long query is never cut short: only a worker that crashed,
   * stopped, or is stuck in synchronous code is. Starting the worker may take up to this long,
   * or `connectTimeout`, whichever is longer.
   * @default {10000}
   */
  readonly bridgeTimeout?: number;
}

/** How long the calling thread spins on the answer before it sleeps in `Atomics.wait`. */
const SPIN_MS = 0.25;
/** Longest single `Atomics.wait`, between checks of the worker's heartbeat. */
const WAIT_SLICE_MS = HEARTBEAT_MS;
const DEFAULT_BRIDGE_TIMEOUT = 10_000;

let sleepCell: Int32Array | undefined;

function sleep(ms: number): void {
  sleepCell ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleepCell, 0, 0, ms);
}

const WORKER_URL = new URL("./_bridge_worker.ts", import.meta.url);

// A worker reads its modules with the permissions of the program: from a local copy of this
// package that takes read access to its directory. Asked here (a prompt, if the program runs
// in a terminal without the flag), because the worker cannot ask while this thread blocks.
function checkReadAccess(target: string): void {
  if (WORKER_URL.protocol !== "file:") return;
  const path = fileURLToPath(new URL(".", WORKER_URL));
  let state: string;
  try {
    const descriptor = { name: "read", path } as const;
    state = Deno.permissions.querySync(descriptor).state;
    if (state === "prompt") state = Deno.permissions.requestSync(descriptor).state;
  } catch {
    return;
  }
  if (state !== "granted") {
    throw new ConnectionError(
      `Cannot start the database worker for "${target}": it needs read access to "${path}" (run with --allow-read=${path})`,
      { code: "WORKER_PERMISSION" },
    );
  }
}

/** What a {@linkcode Bridge} is started with. */
interface BridgeSettings {
  /** The URL given to the `Database`, if any. */
  readonly url: string | undefined;
  /** The `AsyncDatabase` options for the worker (only values that can be cloned). */
  readonly options: Record<string, unknown>;
  /** Milliseconds without a heartbeat before the worker counts as gone. */
  readonly timeout: number;
  /** Milliseconds the worker may take to start. */
  readonly startTimeout: number;
  /** The target without secrets, for messages. */
  readonly target: string;
  /** Called on the calling thread with each notice; the worker then forwards them. */
  readonly onNotice: ((notice: Notice) => void) | undefined;
}

/** One worker and its shared buffer; a failed bridge stays failed and the database starts another. */
class Bridge {
  readonly #buffer: SharedArrayBuffer;
  readonly #header: Int32Array;
  readonly #worker: Worker;
  readonly #timeout: number;
  readonly #target: string;
  readonly #onNotice: ((notice: Notice) => void) | undefined;
  #failure: ConnectionError | undefined;
  /** Recent share of answers caught while spinning (an exponential moving average). */
  #spinScore = 1;
  #probes = 0;
  /** Connections of the pool held by open transactions and streams of the calling thread. */
  held = 0;
  connected = false;
  dialect: Dialect = "postgres";
  version = "";

  constructor(settings: BridgeSettings) {
    const { url, options, timeout, startTimeout, target, onNotice } = settings;
    this.#timeout = timeout;
    this.#target = target;
    this.#onNotice = onNotice;
    this.#buffer = createSharedBuffer();
    this.#header = headerOf(this.#buffer);
    const workerData: WorkerData = {
      bridge: BRIDGE_MARK,
      buffer: this.#buffer,
      url,
      options,
      events: onNotice !== undefined,
    };
    checkReadAccess(target);
    try {
      const source = bootstrapSource(WORKER_URL.href);
      this.#worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`), {
        workerData,
      });
    } catch (error) {
      throw new ConnectionError(
        `Cannot start the database worker for "${target}": ${(error as Error).message}`,
        { cause: error, code: "WORKER_START_FAILED" },
      );
    }
    // Unreferenced: a script that forgets close() still exits when its main module ends.
    this.#worker.unref();
    // The worker reports its own death through the shared buffer; these events arrive later,
    // when the calling thread's event loop runs, and must not crash it.
    this.#worker.on("error", (error: Error) => {
      this.#failure ??= this.#gone(`the worker crashed: ${error?.message ?? error}`);
    });
    this.#worker.on("exit", () => {
      this.#failure ??= this.#gone("the worker stopped");
    });
    this.#waitForStart(startTimeout);
  }

  /** False once the worker crashed, timed out or was ended. */
  get alive(): boolean {
    return this.#failure === undefined;
  }

  /** Sends one request and blocks until its answer; throws the error the worker answered. */
  call(request: Request): unknown {
    if (this.#failure !== undefined) throw this.#copyFailure();
    if (Atomics.load(this.#header, STATUS) === DEAD) {
      throw this.#fail(
        `the worker crashed: ${deathReason(this.#buffer, this.#header) || "no reason"}`,
      );
    }
    let message: EncodedMessage;
    try {
      message = encodeMessage(request);
    } catch (error) {
      throw new ValidationError(
        `Cannot send the arguments to the database worker: ${(error as Error).message}`,
        { field: "args", cause: error },
      );
    }
    const buffer = this.#buffer;
    const header = this.#header;
    let offset = 0;
    do {
      offset += writeChunk(buffer, header, KIND_REQUEST, message, offset);
      this.#handOver();
    } while (offset < message.bytes.byteLength);
    // The turn is back with the answer's first chunk.
    let parts: unknown[][] | undefined;
    let events: BridgeEvent[] | undefined;
    for (;;) {
      const kind = header[KIND];
      const format = header[FORMAT];
      const total = totalLength(header);
      // A fresh buffer: deserialized Uint8Arrays are views into it, so it must not be reused.
      const answer = new Uint8Array(total);
      let received = readChunk(buffer, header, answer, 0);
      while (received < total) {
        this.#handOver();
        received += readChunk(buffer, header, answer, received);
      }
      if (kind === KIND_PART || kind === KIND_EVENTS) {
        // Let the worker write the next slice while this one is decoded.
        this.#release();
        const decoded = decodeMessage(format, answer) as unknown[];
        if (kind === KIND_PART) (parts ??= []).push(decoded);
        else (events ??= []).push(...decoded as BridgeEvent[]);
        this.#await();
        continue;
      }
      const value = decodeMessage(format, answer);
      if (events !== undefined) this.#deliver(events);
      if (kind === KIND_ERROR) throw decodeError(value as ErrorRecord);
      if (parts === undefined) return value;
      parts.push(value as unknown[]);
      return parts.flat(1);
    }
  }

  // Events reach their handler on this thread, after the answer is in and before the call
  // returns; a handler that throws is reported, as an event listener's error is.
  #deliver(events: readonly BridgeEvent[]): void {
    for (const event of events) {
      try {
        if (event.type === "notice") this.#onNotice?.(event.notice);
      } catch (error) {
        reportError(error);
      }
    }
  }

  /** Ends the worker at once. */
  terminate(): void {
    this.#failure ??= new ConnectionError(
      `Cannot use the database "${this.#target}": it was closed`,
      { code: "CONNECTION_CLOSED" },
    );
    void this.#worker.terminate().catch(() => {});
  }

  /** Hands the turn to the worker and waits until it is back. */
  #handOver(): void {
    this.#release();
    this.#await();
  }

  #release(): void {
    Atomics.store(this.#header, TURN, WORKER);
    Atomics.notify(this.#header, TURN);
  }

  #await(): void {
    const header = this.#header;
    if (Atomics.load(header, TURN) === CALLER) return;
    // Spin briefly: a point query answers within a few hundred microseconds, and waking from
    // Atomics.wait costs about as much again. But a spinning thread takes a core from the
    // worker and the server: when spins keep missing (long statements, or a machine with no
    // idle core), stop spinning, and try again now and then.
    const spinning = this.#spinScore >= 0.5 || (++this.#probes & 31) === 0;
    if (spinning) {
      const until = performance.now() + SPIN_MS;
      let spins = 0;
      while (Atomics.load(header, TURN) !== CALLER) {
        if ((++spins & 127) === 0 && performance.now() > until) break;
      }
      if (Atomics.load(header, TURN) === CALLER) {
        this.#spinScore = Math.max(this.#spinScore * 0.875 + 0.125, 0.625);
        return;
      }
      this.#spinScore *= 0.875;
    }
    let beat = Atomics.load(header, BEAT);
    let lastBeat = performance.now();
    for (;;) {
      Atomics.wait(header, TURN, WORKER, WAIT_SLICE_MS);
      if (Atomics.load(header, TURN) === CALLER) return;
      if (Atomics.load(header, STATUS) === DEAD) {
        throw this.#fail(`the worker crashed: ${deathReason(this.#buffer, header) || "no reason"}`);
      }
      const now = performance.now();
      const current = Atomics.load(header, BEAT);
      if (current !== beat) {
        beat = current;
        lastBeat = now;
      } else if (now - lastBeat >= this.#timeout) {
        throw this.#fail(
          `the worker gave no sign of life for ${this.#timeout} ms`,
          "WORKER_TIMEOUT",
        );
      }
    }
  }

  #waitForStart(timeout: number): void {
    const header = this.#header;
    const started = performance.now();
    while (Atomics.load(header, STATUS) === STARTING) {
      Atomics.wait(header, STATUS, STARTING, WAIT_SLICE_MS);
      if (performance.now() - started >= timeout && Atomics.load(header, STATUS) === STARTING) {
        throw this.#fail(`the worker did not start within ${timeout} ms`, "WORKER_TIMEOUT");
      }
    }
    if (Atomics.load(header, STATUS) === DEAD) {
      throw this.#fail(
        `the worker failed to start: ${deathReason(this.#buffer, header) || "no reason"}`,
      );
    }
  }

  #gone(reason: string, code = "WORKER_CRASHED"): ConnectionError {
    return new ConnectionError(`Cannot reach the database "${this.#target}": ${reason}`, { code });
  }

  #fail(reason: string, code?: string): ConnectionError {
    this.#failure ??= this.#gone(reason, code);
    void this.#worker.terminate().catch(() => {});
    return this.#copyFailure();
  }

  // A new error per throw, so that each carries the stack of its own call.
  #copyFailure(): ConnectionError {
    const failure = this.#failure as ConnectionError;
    return new ConnectionError(failure.message, { code: failure.code });
  }
}

/** How a `Queryable` reaches the worker: the database itself, or one attempt of a transaction. */
interface Channel {
  /** The bridge to send to (started if needed; throws when it cannot be used). */
  bridge(): Bridge;
  /** The transaction attempt, for a transaction handle. */
  readonly ref: TransactionRef | undefined;
  /** Calls take a connection of the pool (the database, not a transaction handle). */
  readonly pooled: boolean;
  readonly maxConnections: number;
}

const channels = new WeakMap<Queryable, Channel>();
let streamCounter = 0;
let transactionCounter = 0;

function checkPool(bridge: Bridge, channel: Channel): void {
  if (channel.pooled && bridge.held >= channel.maxConnections) {
    throw new ConnectionError(
      `Cannot run the statement: all ${channel.maxConnections} connections of the pool are held by this thread's open transactions and streams, so it would wait forever (use the transaction handle, or raise maxConnections)`,
      { code: "POOL_EXHAUSTED" },
    );
  }
}

function channelOf(q: Queryable): Channel {
  const channel = channels.get(q);
  if (channel === undefined) {
    throw new TypeError("Cannot use object: not a Database or Transaction of this package");
  }
  return channel;
}

/** Refuses arguments that `node:v8` would change on the way to the worker. */
function checkCrossable(args: unknown): void {
  const uncrossable = findUncrossable(args);
  if (uncrossable !== undefined) {
    throw new ValidationError(
      `Cannot send ${uncrossable} to the database worker: pass plain objects, arrays, Dates, Uint8Arrays and primitives (String() a Decimal or a URL first)`,
      { field: "args" },
    );
  }
}

function invoke(q: Queryable, method: string, args: readonly unknown[]): unknown {
  const channel = channelOf(q);
  const bridge = channel.bridge();
  checkPool(bridge, channel);
  // Trailing undefined arguments, which a call without them means as well, are left out, and
  // so is an absent `ref`: a request without `undefined` in it can travel as JSON, the fast way.
  let length = args.length;
  while (length > 0 && args[length - 1] === undefined) length--;
  const trimmed = length === args.length ? args : args.slice(0, length);
  checkCrossable(trimmed);
  return bridge.call(
    channel.ref === undefined
      ? { op: "call", method, args: trimmed }
      : { op: "call", method, args: trimmed, ref: channel.ref },
  );
}

/**
 * The raw SQL and CRUD surface shared by {@linkcode Database} and its transaction handle
 * {@linkcode Transaction}: the synchronous twin of `AsyncQueryable`. Not constructed directly.
 */
export abstract class Queryable {
  /**
   * Runs SQL and returns its rows (`[]` for statements without rows). Placeholders are
   * `$1 … $n`; without params the text may hold several statements (the last one's rows are
   * returned).
   *
   * @example
   * ```ts ignore
   * const rows = db.execute<{ n: number }>("SELECT $1::int AS n", [1]);
   * ```
   * @param sql The statement text.
   * @param params The bind parameters.
   * @returns The rows.
   * @throws {DatabaseError} with the SQLSTATE in `code` when the server refuses the statement.
   * @throws {ConnectionError} when the server or the worker cannot be reached.
   */
  execute<T = Row>(sql: string, params?: readonly unknown[]): T[] {
    return invoke(this, "execute", [sql, params]) as T[];
  }

  /**
   * Runs SQL and returns its first row, or `null`.
   *
   * @example
   * ```ts ignore
   * const user = db.queryOne("SELECT * FROM users WHERE id = $1", [id]);
   * ```
   * @param sql The statement text.
   * @param params The bind parameters.
   * @returns The first row or `null`.
   * @throws {DatabaseError} when the server refuses the statement.
   */
  queryOne<T = Row>(sql: string, params?: readonly unknown[]): T | null {
    return invoke(this, "queryOne", [sql, params]) as T | null;
  }

  /**
   * `CREATE DATABASE IF NOT EXISTS`.
   *
   * @example
   * ```ts ignore
   * db.createDatabase("bank");
   * ```
   * @param name The database name.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  createDatabase(name: string): void {
    invoke(this, "createDatabase", [name]);
  }

  /**
   * `DROP DATABASE IF EXISTS`.
   *
   * @example
   * ```ts ignore
   * db.dropDatabase("bank");
   * ```
   * @param name The database name.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  dropDatabase(name: string): void {
    invoke(this, "dropDatabase", [name]);
  }

  /**
   * Creates a table; column names are quoted, type strings used as given, order kept.
   *
   * @example
   * ```ts ignore
   * db.createTable("users", { id: "INT PRIMARY KEY", name: "TEXT NOT NULL" });
   * ```
   * @param name The table name (`table` or `schema.table`).
   * @param columns Column name → SQL type (with constraints and defaults).
   * @param options `ifNotExists` (default true).
   * @throws {ValidationError} when a name cannot be an identifier.
   */
  createTable(
    name: string,
    columns: Readonly<Record<string, string>>,
    options?: CreateTableOptions,
  ): void {
    invoke(this, "createTable", [name, columns, options]);
  }

  /**
   * Drops a table.
   *
   * @example
   * ```ts ignore
   * db.dropTable("users", { cascade: true });
   * ```
   * @param name The table name.
   * @param options `ifExists` (default true), `cascade` (default false).
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  dropTable(name: string, options?: DropTableOptions): void {
    invoke(this, "dropTable", [name, options]);
  }

  /**
   * Whether a table exists (default schema `public`).
   *
   * @example
   * ```ts ignore
   * if (!db.tableExists("users")) console.log("not yet");
   * ```
   * @param name The table name (`table` or `schema.table`).
   * @returns True when the table exists.
   * @throws {ValidationError} when the name cannot be an identifier.
   */
  tableExists(name: string): boolean {
    return invoke(this, "tableExists", [name]) as boolean;
  }

  /**
   * Inserts one row and returns it; `{}` inserts `DEFAULT VALUES`.
   *
   * @example
   * ```ts ignore
   * const user = db.insert("users", { id: 1, name: "Ada" });
   * ```
   * @param table The table name.
   * @param data Column → value; `undefined` values are left out.
   * @returns The inserted row.
   * @throws {UniqueViolationError} on a duplicate key.
   */
  insert<T = Row>(table: string, data: Row): T {
    return invoke(this, "insert", [table, data]) as T;
  }

  /**
   * Selects rows.
   *
   * @example
   * ```ts ignore
   * const rows = db.select("users", { where: { age: { gte: 18 } }, orderBy: "name", limit: 10 });
   * ```
   * @param table The table name.
   * @param options `columns`, `where`, `orderBy`, `limit`, `offset`.
   * @returns The rows.
   * @throws {ValidationError} when an option is malformed.
   */
  select<T = Row>(table: string, options?: SelectOptions): T[] {
    return invoke(this, "select", [table, options]) as T[];
  }

  /**
   * Selects the first matching row, or `null`.
   *
   * @example
   * ```ts ignore
   * const ada = db.selectOne("users", { where: { name: "Ada" } });
   * ```
   * @param table The table name.
   * @param options As for `select`; `limit` is 1.
   * @returns The row or `null`.
   * @throws {ValidationError} when an option is malformed.
   */
  selectOne<T = Row>(table: string, options?: SelectOptions): T | null {
    return invoke(this, "selectOne", [table, options]) as T | null;
  }

  /**
   * Updates matching rows and returns every updated row.
   *
   * @example
   * ```ts ignore
   * const rows = db.update("users", { name: "Ada L." }, { id: 1 });
   * ```
   * @param table The table name.
   * @param data Column → new value (not empty).
   * @param where Conditions (not empty).
   * @returns The updated rows.
   * @throws {ValidationError} when `data` or `where` is empty.
   */
  update<T = Row>(table: string, data: Row, where: Where): T[] {
    return invoke(this, "update", [table, data, where]) as T[];
  }

  /**
   * Deletes matching rows.
   *
   * @example
   * ```ts ignore
   * const removed = db.delete("users", { id: [1, 2, 3] });
   * ```
   * @param table The table name.
   * @param where Conditions (not empty; use `TRUNCATE` to empty a table).
   * @returns The number of rows deleted.
   * @throws {ValidationError} when `where` is empty.
   */
  delete(table: string, where: Where): number {
    return invoke(this, "delete", [table, where]) as number;
  }

  /**
   * Inserts a row, or updates it when it conflicts: `UPSERT` on CockroachDB, `INSERT … ON
   * CONFLICT … DO UPDATE` otherwise (on the primary key unless `conflictColumns` is given).
   *
   * @example
   * ```ts ignore
   * db.upsert("accounts", { id: 1, balance: "100" });
   * ```
   * @param table The table name.
   * @param data Column → value.
   * @param options `conflictColumns`.
   * @returns The inserted or updated row.
   * @throws {ValidationError} when the table has no primary key and no `conflictColumns`.
   */
  upsert<T = Row>(table: string, data: Row, options?: UpsertOptions): T {
    return invoke(this, "upsert", [table, data, options]) as T;
  }

  /**
   * Inserts many rows, one round trip per chunk, all in one transaction. Every record must have
   * the same keys.
   *
   * @example
   * ```ts ignore
   * const rows = db.batchInsert("users", [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]);
   * ```
   * @param table The table name.
   * @param records The rows.
   * @param options `returning` (default true), `chunkSize`.
   * @returns The inserted rows, in input order.
   * @throws {ValidationError} when records have differing keys.
   */
  batchInsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: BatchInsertOptions & { readonly returning?: true },
  ): T[];
  /**
   * Inserts many rows without returning them (may use `COPY`).
   *
   * @example
   * ```ts ignore
   * const count = db.batchInsert("events", events, { returning: false });
   * ```
   * @param table The table name.
   * @param records The rows.
   * @param options `returning: false`, `chunkSize`.
   * @returns The number of rows inserted.
   * @throws {ValidationError} when records have differing keys.
   */
  batchInsert(
    table: string,
    records: readonly Row[],
    options: BatchInsertOptions & { readonly returning: false },
  ): number;
  batchInsert<T = Row>(
    table: string,
    records: readonly Row[],
    options?: BatchInsertOptions,
  ): T[] | number {
    return invoke(this, "batchInsert", [table, records, options]) as T[] | number;
  }

  /**
   * Upserts many rows (see `upsert`), one round trip per chunk, in one transaction.
   *
   * @example
   * ```ts ignore
   * db.batchUpsert("accounts", [{ id: 1, balance: "10" }, { id: 2, balance: "20" }]);
   * ```
   * @param table The table name.
   * @param records The rows.
   * @param options `conflictColumns`, `chunkSize`.
   * @returns The rows, in input order.
   * @throws {ValidationError} when records have differing keys.
   */
  batchUpsert<T = Row>(table: string, records: readonly Row[], options?: UpsertOptions): T[] {
    return invoke(this, "batchUpsert", [table, records, options]) as T[];
  }

  /**
   * Updates many rows by key, in one transaction.
   *
   * @example
   * ```ts ignore
   * db.batchUpdate("users", [{ id: 1, name: "A" }, { id: 2, name: "B" }]);
   * ```
   * @param table The table name.
   * @param records Each record holds the key column and the columns to set.
   * @param options `keyColumn` (default `"id"`).
   * @returns The updated rows, in input order (a key that matches nothing adds no row).
   * @throws {ValidationError} when a record lacks the key or has nothing to set.
   */
  batchUpdate<T = Row>(table: string, records: readonly Row[], options?: BatchUpdateOptions): T[] {
    return invoke(this, "batchUpdate", [table, records, options]) as T[];
  }

  /**
   * Counts rows.
   *
   * @example
   * ```ts ignore
   * const adults = db.count("users", { age: { gte: 18 } });
   * ```
   * @param table The table name.
   * @param where Conditions.
   * @returns The number of matching rows.
   * @throws {ValidationError} when `where` is malformed.
   */
  count(table: string, where?: Where): number {
    return invoke(this, "count", [table, where]) as number;
  }

  /**
   * Streams the rows of a query through a SQL cursor, fetching `batchSize` rows across the
   * bridge at a time: memory stays bounded whatever the result size. Breaking out of the loop
   * closes the cursor; a stream that is neither finished nor broken out of holds a connection
   * until the database is closed.
   *
   * @example
   * ```ts ignore
   * for (const row of db.stream("SELECT * FROM events ORDER BY id", [], { batchSize: 500 })) {
   *   console.log(row);
   * }
   * ```
   * @param sql A `SELECT` (or `VALUES`) statement.
   * @param params The bind parameters.
   * @param options `batchSize` (default 1000).
   * @returns An iterable of rows.
   * @throws {ValidationError} when `batchSize` is not a positive integer.
   */
  *stream<T = Row>(
    sql: string,
    params?: readonly unknown[],
    options?: StreamOptions,
  ): Generator<T, void, undefined> {
    const channel = channelOf(this);
    const bridge = channel.bridge();
    checkPool(bridge, channel);
    checkCrossable(params);
    const id = ++streamCounter;
    let batch = bridge.call({
      op: "streamOpen",
      id,
      sql,
      params: params ?? [],
      batchSize: options?.batchSize ?? 1000,
      ...(channel.ref === undefined ? {} : { ref: channel.ref }),
    }) as StreamBatch;
    // An unfinished stream of the database holds a connection of the pool.
    const holds = channel.pooled && !batch.done;
    if (holds) bridge.held++;
    let failed = false;
    try {
      for (;;) {
        for (const row of batch.rows) yield row as T;
        if (batch.done) return;
        batch = bridge.call({ op: "streamNext", id }) as StreamBatch;
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      if (holds) bridge.held--;
      if (!batch.done && !failed && bridge.alive) bridge.call({ op: "streamClose", id });
    }
  }
}

let makeTransaction: (channel: Channel) => Transaction;

/**
 * The handle a {@linkcode Database.transaction} callback receives: `execute`, `queryOne` and
 * every CRUD helper, all on the transaction's one connection. It cannot be used after the
 * callback returns.
 *
 * @example
 * ```ts ignore
 * db.transaction((tx) => {
 *   tx.update("accounts", { balance: "90" }, { id: 1 });
 *   tx.update("accounts", { balance: "110" }, { id: 2 });
 * });
 * ```
 */
export class Transaction extends Queryable {
  private constructor() {
    super();
  }

  static {
    makeTransaction = (channel) => {
      const tx = new Transaction();
      channels.set(tx, channel);
      return tx;
    };
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * A synchronous client: every method blocks until its result is there. Connects in the
 * constructor (unless `connect: false`); `close()` ends the worker and its pool, and every
 * later call fails with `ConnectionError`.
 *
 * While a transaction callback runs, the worker keeps serving: a call on the database (not on
 * the transaction handle) inside the callback runs on another connection of the pool. When the
 * thread's own open transactions and streams hold every connection, such a call throws
 * `ConnectionError` (code `POOL_EXHAUSTED`) instead of waiting forever.
 *
 * The worker is unreferenced: a program that forgets `close()` still exits when its main
 * module is done (its connections then simply drop). A worker that crashes, fails to load, or
 * gives no sign of life for `bridgeTimeout` milliseconds makes the call throw `ConnectionError`
 * (codes `WORKER_CRASHED`, `WORKER_TIMEOUT`); the next call starts a new worker. Loaded from a
 * local copy of the package, the worker needs read access to the package's directory (the
 * constructor asks for it, or throws `ConnectionError` with code `WORKER_PERMISSION`).
 *
 * @example Options, URL and environment
 * ```ts ignore
 * import { Database } from "@manticore/cockroachdb";
 *
 * using db = new Database({ host: "localhost", port: 26257, database: "bank" });
 * const fromUrl = Database.fromUrl("postgresql://root@localhost:26257/bank", { connect: false });
 * fromUrl.close();
 * ```
 */
export class Database extends Queryable implements Disposable {
  readonly #config: ResolvedConfig;
  readonly #url: string | undefined;
  readonly #workerOptions: Record<string, unknown>;
  readonly #bridgeTimeout: number;
  readonly #onNotice: ((notice: Notice) => void) | undefined;
  #bridge: Bridge | undefined;
  /** Set by close(): every later call fails. */
  #closed = false;

  /**
   * A database from options; `DATABASE_URL`, the `PG*` variables and the defaults fill the
   * rest. Connects at once unless `connect: false`.
   *
   * @param options Connection options, and `connect` and `bridgeTimeout`.
   * @throws {ConnectionError} naming host and port when it cannot connect within `connectTimeout`.
   * @throws {ValidationError} when an option is invalid.
   */
  constructor(options?: SyncDatabaseOptions);
  /**
   * A database from a URL; explicit options win over it. Connects at once unless
   * `connect: false`.
   *
   * @param url A `postgresql://` URL.
   * @param options Connection options, which win over the URL.
   * @throws {ConnectionError} naming host and port when it cannot connect within `connectTimeout`.
   * @throws {ValidationError} when the URL or an option is invalid.
   */
  constructor(url: string, options?: SyncDatabaseOptions);
  constructor(urlOrOptions?: string | SyncDatabaseOptions, options?: SyncDatabaseOptions) {
    super();
    const url = typeof urlOrOptions === "string" ? urlOrOptions : undefined;
    const given: SyncDatabaseOptions =
      (typeof urlOrOptions === "string" ? options : urlOrOptions ?? options) ?? {};
    this.#config = resolveConfig(url, given);
    const { bridgeTimeout = DEFAULT_BRIDGE_TIMEOUT, connect = true, onNotice, ...rest } = given;
    if (typeof bridgeTimeout !== "number" || !(bridgeTimeout > 0)) {
      throw new ValidationError(
        `Cannot use bridgeTimeout ${bridgeTimeout}: expected milliseconds above 0`,
        { field: "bridgeTimeout" },
      );
    }
    this.#url = url;
    this.#workerOptions = rest as Record<string, unknown>;
    // A function cannot cross to the worker: the worker forwards notices to this thread.
    this.#onNotice = onNotice;
    this.#bridgeTimeout = bridgeTimeout;
    const maxConnections = this.#config.maxConnections;
    channels.set(this, {
      bridge: () => this.#use(),
      ref: undefined,
      pooled: true,
      maxConnections,
    });
    bridgeHooks.set(this, (request) => this.#use().call(request));
    if (connect) {
      try {
        this.connect();
      } catch (error) {
        this.close();
        throw error;
      }
    }
  }

  /**
   * Same as `new Database(url, options)`.
   *
   * @example
   * ```ts ignore
   * using db = Database.fromUrl("postgresql://root@localhost:26257/defaultdb");
   * ```
   * @param url A `postgresql://` URL.
   * @param options Connection options, which win over the URL.
   * @returns A database, connected unless `connect: false`.
   * @throws {ConnectionError} when it cannot connect.
   */
  static fromUrl(url: string, options?: SyncDatabaseOptions): Database {
    return new Database(url, options);
  }

  /**
   * Starts the worker, opens the pool and checks the server (idempotent). Called by the
   * constructor, and lazily on first use after `connect: false`.
   *
   * @example
   * ```ts ignore
   * const db = new Database({ connect: false });
   * db.connect();
   * ```
   * @throws {ConnectionError} naming host and port, within `connectTimeout`.
   */
  connect(): void {
    this.#connected();
  }

  /**
   * Closes the pool and ends the worker (idempotent). Afterwards every call fails with
   * `ConnectionError` (code `CONNECTION_CLOSED`); make a new `Database` to connect again.
   *
   * @example
   * ```ts ignore
   * db.close();
   * ```
   */
  close(): void {
    this.#closed = true;
    const bridge = this.#bridge;
    this.#bridge = undefined;
    if (bridge === undefined) return;
    if (bridge.alive) {
      try {
        bridge.call({ op: "close" });
      } catch {
        // Ending the worker below closes its sockets anyway.
      }
    }
    bridge.terminate();
  }

  /** Closes the database: `using db = new Database(…)`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The server's `version()` string, once connected ("" before). */
  get serverVersion(): string {
    return this.#bridge?.version ?? "";
  }

  /**
   * `Database(postgresql://user@host:port/database)`, never with the password.
   *
   * @returns The description.
   */
  override toString(): string {
    return `Database(${describeTarget(this.#config)})`;
  }

  /**
   * Shown by `Deno.inspect` and `console.log`: no password.
   *
   * @returns The description.
   */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /**
   * Runs `fn` in a transaction and returns its value after a successful commit. The callback
   * runs on the calling thread; the worker keeps the transaction's connection. Serialization
   * failures (SQLSTATE `40001`, and PostgreSQL's `40P01`) run it again after a blocking,
   * capped exponential backoff with full jitter; a throw rolls back and re-throws the
   * callback's own error. The callback must be synchronous.
   *
   * @example A transfer
   * ```ts ignore
   * db.transaction((tx) => {
   *   tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", [from]);
   *   tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = $1", [to]);
   * });
   * ```
   * @param fn The work; it may run more than once.
   * @param options Retries, deadline, isolation, read-only, `asOfSystemTime`, `onRetry`.
   * @returns The callback's value.
   * @throws {TransactionRetryError} when retries run out.
   * @throws {AmbiguousCommitError} when the commit's outcome is unknown.
   * @throws {ValidationError} when `fn` is not a function or returns a promise.
   */
  transaction<T>(fn: (tx: Transaction) => T, options?: TransactionOptions): T {
    if (typeof fn !== "function") {
      throw new ValidationError("Cannot run transaction: the callback must be a function", {
        field: "fn",
      });
    }
    const settings = transactionSettings(options, this.#config.retry);
    let bridge = this.#connected();
    const steps = transactionSteps<T>(settings, bridge.dialect);
    const tx = ++transactionCounter;
    const maxConnections = this.#config.maxConnections;
    let attempt = 0;
    let holding: Bridge | undefined;
    const release = (): void => {
      if (holding === undefined) return;
      const held = holding;
      holding = undefined;
      held.held--;
      if (held.alive) {
        try {
          held.call({ op: "txRelease", tx });
        } catch {
          // A dead worker took the connection with it.
        }
      }
    };
    let input: { value?: unknown; error?: unknown } = {};
    for (;;) {
      const next = "error" in input ? steps.throw(input.error) : steps.next(input.value);
      if (next.done) return next.value;
      const step = next.value;
      try {
        switch (step.kind) {
          case "reserve":
            release();
            // After a crash this starts a new worker: the attempt runs again on a fresh connection.
            bridge = this.#connected();
            checkPool(bridge, {
              bridge: () => bridge,
              ref: undefined,
              pooled: true,
              maxConnections,
            });
            bridge.call({ op: "txReserve", tx });
            holding = bridge;
            bridge.held++;
            input = { value: undefined };
            break;
          case "query":
            input = { value: bridge.call({ op: "txQuery", tx, text: step.text }) };
            break;
          case "callback": {
            const ref: TransactionRef = { tx, attempt: ++attempt };
            const owner = bridge;
            let closed = false;
            const handle = makeTransaction({
              bridge: () => {
                if (closed) {
                  throw new DatabaseError("Cannot use transaction: it has already ended", {
                    code: "TRANSACTION_CLOSED",
                  });
                }
                return owner;
              },
              ref,
              pooled: false,
              maxConnections,
            });
            try {
              const value = fn(handle);
              if (isThenable(value)) {
                Promise.resolve(value).catch(() => {});
                throw new ValidationError(
                  "Cannot run transaction: the callback returned a promise; Database.transaction() takes a synchronous callback (use AsyncDatabase for asynchronous work)",
                  { field: "fn" },
                );
              }
              input = { value };
            } finally {
              closed = true;
            }
            break;
          }
          case "sleep":
            sleep(step.ms);
            input = { value: undefined };
            break;
          case "state": {
            let state: SessionState = { lost: true, sawRetryable: false };
            if (bridge.alive) {
              try {
                state = bridge.call({ op: "txState", ref: { tx, attempt } }) as SessionState;
              } catch {
                // The worker is gone, and the connection with it.
              }
            }
            input = { value: state };
            break;
          }
          case "release":
            release();
            input = { value: undefined };
            break;
        }
      } catch (error) {
        input = { error };
      }
    }
  }

  /** The running bridge, started (and connected) if needed. */
  #connected(): Bridge {
    const bridge = this.#use();
    if (!bridge.connected) {
      const { dialect, version } = bridge.call({ op: "connect" }) as {
        dialect: Dialect;
        version: string;
      };
      bridge.dialect = dialect;
      bridge.version = version;
      bridge.connected = true;
    }
    return bridge;
  }

  /** The running bridge; a failed one is replaced by a new worker. */
  #use(): Bridge {
    if (this.#bridge?.alive) return this.#bridge;
    if (this.#closed) {
      throw new ConnectionError(
        `Cannot use the database "${describeTarget(this.#config)}": it is closed`,
        { code: "CONNECTION_CLOSED" },
      );
    }
    this.#bridge?.terminate();
    this.#bridge = undefined;
    const bridge = new Bridge({
      url: this.#url,
      options: this.#workerOptions,
      timeout: this.#bridgeTimeout,
      startTimeout: Math.max(this.#bridgeTimeout, this.#config.connectTimeout * 1000),
      target: describeTarget(this.#config),
      onNotice: this.#onNotice,
    });
    this.#bridge = bridge;
    return bridge;
  }
}
