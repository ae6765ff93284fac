// The database's side of the synchronous bridge, on the calling thread: the `Channel` through
// which a `Queryable` reaches the worker (the database's, or one transaction attempt's), and the
// `BridgeClient` of a `Database`, which starts a new worker (`Bridge`, `_bridge_transport.ts`)
// when one failed and runs the transaction protocol with blocking steps. `database.ts` holds the
// public classes.
import { describeTarget, type ResolvedConfig } from "./_config.ts";
import type { Notice, QueryEvent, RetryInfo, StreamOptions } from "./_options.ts";
import { aborted } from "./_driver.ts";
import { Observer, type PoolStats } from "./_observe.ts";
import { type SessionState, type TransactionSettings, transactionSteps } from "./_retry.ts";
import type { LinkOp } from "./_link.ts";
import type { Dialect } from "./_sql.ts";
import { runSync, sleepSync } from "./_steps.ts";
import { checkTimeout } from "./_checks.ts";
import { streamBatchSize } from "./_cursor.ts";
import {
  type CallRequest,
  decodeError,
  type ErrorRecord,
  findUncrossable,
  type ForwardedArgs,
  type ForwardedMethod,
  type ForwardedResult,
  type StreamBatch,
  type TransactionRef,
} from "./_bridge.ts";
import { ConnectionError, DatabaseError, ValidationError } from "./errors.ts";
import { Bridge } from "./_bridge_transport.ts";

let streamCounter = 0;
let transactionCounter = 0;

function checkPool(bridge: Bridge, maxConnections: number): void {
  if (bridge.held >= maxConnections) {
    throw new ConnectionError(
      `Cannot run the statement: all ${maxConnections} connections of the pool are held by this thread's open transactions and streams, so it would wait forever (use the transaction handle, or raise maxConnections)`,
      { code: "POOL_EXHAUSTED" },
    );
  }
}

/** The synchronous Database takes `timeout`, never `signal`. */
function signalRefused(): ValidationError {
  return new ValidationError(
    "Cannot use signal: the synchronous Database blocks its thread, so it takes timeout (milliseconds) instead",
    { field: "signal" },
  );
}

/** Refuses arguments that `node:v8` would change on the way to the worker. */
function checkCrossable(args: unknown): void {
  const options = Array.isArray(args) ? args[args.length - 1] : undefined;
  if (
    typeof options === "object" && options !== null &&
    (options as { signal?: unknown }).signal instanceof AbortSignal
  ) {
    throw signalRefused();
  }
  const uncrossable = findUncrossable(args);
  if (uncrossable !== undefined) {
    throw new ValidationError(
      `Cannot send ${uncrossable} to the database worker: pass plain objects, arrays, Dates, Uint8Arrays and primitives (String() a Decimal or a URL first)`,
      { field: "args" },
    );
  }
}

/**
 * What a transaction's runner on the calling thread decided about its deferred statements since
 * its last request (`_link.ts`): the next request of the transaction carries it to the worker.
 */
export class LinkOps {
  #ops: LinkOp[] = [];

  /** One more operation for the next request. */
  push(op: LinkOp): void {
    this.#ops.push(op);
  }

  /** The operations to send, or undefined; they are then the worker's. */
  take(): readonly LinkOp[] | undefined {
    if (this.#ops.length === 0) return undefined;
    const ops = this.#ops;
    this.#ops = [];
    return ops;
  }

  /** Takes back operations whose request never reached the worker. */
  restore(ops: readonly LinkOp[] | undefined): void {
    if (ops !== undefined) this.#ops = [...ops, ...this.#ops];
  }
}

/** What a {@linkcode Channel} sends through. */
export interface ChannelSettings {
  /** The bridge to send to (started if needed; throws when it cannot be used). */
  readonly bridge: () => Bridge;
  /** The transaction attempt, for a transaction handle; none for the database itself. */
  readonly ref?: TransactionRef;
  /** The transaction's link operations, which its requests carry. */
  readonly link?: LinkOps;
  /** The size of the pool, which the database's own calls must not exhaust. */
  readonly maxConnections: number;
}

/** The `onRetry` function of a call's options, when it has one. */
function retryCallback(options: unknown): ((info: RetryInfo) => void) | undefined {
  if (typeof options !== "object" || options === null) return undefined;
  const onRetry = (options as { onRetry?: unknown }).onRetry;
  return typeof onRetry === "function" ? onRetry as (info: RetryInfo) => void : undefined;
}

/**
 * How a `Queryable` reaches the worker: the database itself, whose calls take a connection of
 * the pool, or one attempt of a transaction, whose calls run on its connection.
 */
export class Channel {
  readonly #bridge: () => Bridge;
  readonly #ref: TransactionRef | undefined;
  readonly #maxConnections: number;
  readonly #link: LinkOps | undefined;

  constructor(settings: ChannelSettings) {
    this.#bridge = settings.bridge;
    this.#ref = settings.ref;
    this.#maxConnections = settings.maxConnections;
    this.#link = settings.link;
  }

  /** The transaction's link operations (a nested transaction adds its own). */
  get link(): LinkOps | undefined {
    // An ended transaction takes no nested one: its bridge refuses (TRANSACTION_CLOSED).
    this.#bridge();
    return this.#link;
  }

  /** Runs one `AsyncQueryable` method in the worker and answers its value. */
  invoke<M extends ForwardedMethod>(method: M, args: ForwardedArgs[M]): ForwardedResult<M> {
    const bridge = this.#bridge();
    if (this.#ref === undefined) checkPool(bridge, this.#maxConnections);
    // Trailing undefined arguments, which a call without them means as well, are left out, and
    // so is an absent `ref`: a request without `undefined` in it can travel as JSON, the fast way.
    let length = args.length;
    while (length > 0 && args[length - 1] === undefined) length--;
    let trimmed = (length === args.length ? args : args.slice(0, length)) as ForwardedArgs[M];
    // A batch's `onRetry` stays on this thread: the worker reports each retry as an event.
    const onRetry = method === "batch" ? retryCallback(trimmed[1]) : undefined;
    if (onRetry !== undefined) {
      const { onRetry: _, ...rest } = trimmed[1] as { onRetry?: unknown };
      trimmed = [trimmed[0], rest] as unknown as ForwardedArgs[M];
    }
    checkCrossable(trimmed);
    // The wire carries the arguments of the method it names (TypeScript does not narrow a
    // generic method name to one member of the request union).
    const link = this.#link?.take();
    let request =
      (this.#ref === undefined
        ? { op: "call", method, args: trimmed }
        : link === undefined
        ? { op: "call", method, args: trimmed, ref: this.#ref }
        : { op: "call", method, args: trimmed, ref: this.#ref, link }) as CallRequest;
    if (onRetry !== undefined) request = { ...request, retries: true };
    try {
      return bridge.call(request, onRetry) as ForwardedResult<M>;
    } catch (error) {
      // A request that never reached the worker leaves the deferred statements (BEGIN) to the
      // next one.
      if (!bridge.delivered) this.#link?.restore(link);
      throw error;
    }
  }

  /** `AsyncQueryable.stream()` in the worker, `batchSize` rows across the bridge at a time. */
  *stream<T>(
    sql: string,
    params?: readonly unknown[],
    options?: StreamOptions,
  ): Generator<T, void, undefined> {
    const bridge = this.#bridge();
    const pooled = this.#ref === undefined;
    if (pooled) checkPool(bridge, this.#maxConnections);
    checkCrossable([params, options]);
    const id = ++streamCounter;
    const link = this.#link?.take();
    let batch: StreamBatch;
    try {
      batch = bridge.call({
        op: "streamOpen",
        id,
        sql,
        params: params ?? [],
        batchSize: streamBatchSize(options?.batchSize),
        ...(this.#ref === undefined ? {} : { ref: this.#ref }),
        ...(link === undefined ? {} : { link }),
        ...(options?.timeout === undefined ? {} : { timeout: options.timeout }),
      }) as StreamBatch;
    } catch (error) {
      if (!bridge.delivered) this.#link?.restore(link);
      // The worker may have opened the stream and failed only to send its rows.
      else closeStream(bridge, id);
      throw error;
    }
    // An unfinished stream of the database holds a connection of the pool.
    const holds = pooled && !batch.done;
    if (holds) bridge.held++;
    try {
      for (;;) {
        for (const row of batch.rows) yield row as T;
        if (batch.done) return;
        batch = bridge.call({ op: "streamNext", id }) as StreamBatch;
      }
    } finally {
      if (holds) bridge.held--;
      // Left early, or failed: a worker that failed to send a batch still holds the stream and
      // its connection (one that failed reading it dropped it; the close is then a no-op).
      if (!batch.done) closeStream(bridge, id);
    }
  }
}

/** Ends a stream in the worker (nothing if it has none by that id); never throws. */
function closeStream(bridge: Bridge, id: number): void {
  if (!bridge.alive) return;
  try {
    bridge.call({ op: "streamClose", id });
  } catch {
    // The worker is gone, or failing: its streams end with it.
  }
}

/** What a {@linkcode BridgeClient} starts its workers with. */
export interface BridgeClientSettings {
  readonly config: ResolvedConfig;
  /** The URL given to the `Database`, if any. */
  readonly url: string | undefined;
  /** The `AsyncDatabase` options for the worker (only values that can be cloned). */
  readonly workerOptions: Record<string, unknown>;
  /** Milliseconds without a heartbeat before a worker counts as gone. */
  readonly bridgeTimeout: number;
  /** Called on the calling thread with each notice. */
  readonly onNotice: ((notice: Notice) => void) | undefined;
  /** Called on the calling thread after each statement. */
  readonly onQuery: ((event: QueryEvent) => void) | undefined;
}

/**
 * The worker side of one `Database`: the running bridge, replaced by a new worker when it
 * failed, and the transaction protocol driven from the calling thread.
 */
export class BridgeClient {
  readonly #settings: BridgeClientSettings;
  #bridge: Bridge | undefined;
  /** Set by close(): every later call fails. */
  #closed = false;
  /** The database's own channel. */
  readonly channel: Channel;
  /** This thread's side of the telemetry: transaction spans and their retries. */
  readonly #observer: Observer;

  constructor(settings: BridgeClientSettings) {
    this.#settings = settings;
    this.#observer = new Observer({ ...settings.config, onQuery: undefined });
    // The first call connects (as `connect()` would): the version and dialect are known after it,
    // after a lazy start and after a new worker alike.
    this.channel = new Channel({
      bridge: () => this.connected(),
      maxConnections: settings.config.maxConnections,
    });
  }

  /** The server's version as it reports it at start-up, once connected ("" before). */
  get version(): string {
    return this.#bridge?.version ?? "";
  }

  /** This thread's side of the telemetry (transaction and migration spans, retries). */
  get observer(): Observer {
    return this.#observer;
  }

  /** The running bridge; a failed one is replaced by a new worker. */
  use(): Bridge {
    if (this.#bridge?.alive) return this.#bridge;
    const { config, url, workerOptions, bridgeTimeout, onNotice, onQuery } = this.#settings;
    if (this.#closed) {
      throw new ConnectionError(
        `Cannot use the database "${describeTarget(config)}": it is closed`,
        { code: "CONNECTION_CLOSED" },
      );
    }
    this.#bridge?.terminate();
    this.#bridge = undefined;
    const bridge = new Bridge({
      url,
      options: workerOptions,
      timeout: bridgeTimeout,
      startTimeout: Math.max(bridgeTimeout, config.connectTimeout * 1000),
      target: describeTarget(config),
      onNotice,
      onQuery,
    });
    this.#bridge = bridge;
    return bridge;
  }

  /** The running bridge, started (and connected) if needed. */
  connected(): Bridge {
    const bridge = this.use();
    if (!bridge.connected) {
      const { dialect, version } = bridge.call({ op: "connect" }) as {
        dialect: Dialect;
        version: string;
      };
      bridge.dialect = dialect;
      bridge.version = version;
      bridge.connected = true;
      this.#observer.attach(dialect);
    }
    return bridge;
  }

  /** Closes the pool and ends the worker (idempotent); every later call fails. */
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

  /**
   * The worker's `stats()`, with this thread's transaction retries (the sync runner retries
   * here).
   */
  stats(): PoolStats {
    // As the async stats(): nothing connects for them.
    const worker = this.use().call({ op: "stats" }) as PoolStats;
    const retries = { ...worker.retries };
    for (const [code, n] of Object.entries(this.#observer.stats().retries)) {
      retries[code] = (retries[code] ?? 0) + n;
    }
    return { ...worker, retries };
  }

  /**
   * Runs the transaction protocol of `_retry.ts` with blocking steps: the worker holds the
   * connection, this thread runs `fn` (with the channel of the attempt) and sleeps between
   * attempts.
   */
  transaction<T>(settings: TransactionSettings, fn: (channel: Channel) => T): T {
    if (settings.signal !== undefined) throw signalRefused();
    checkTimeout(settings.timeout);
    const telemetry = this.#observer.transaction();
    try {
      const value = telemetry.run(() => this.#transact(settings, fn, telemetry));
      telemetry.end();
      return value;
    } catch (error) {
      telemetry.end(error);
      throw error;
    }
  }

  #transact<T>(
    settings: TransactionSettings,
    fn: (channel: Channel) => T,
    telemetry: ReturnType<Observer["transaction"]>,
  ): T {
    let bridge = this.connected();
    // asOfSystemTime is refused on PostgreSQL: a postgres reading is confirmed first.
    if (settings.asOfSystemTime !== undefined && bridge.dialect === "postgres") {
      bridge.dialect = bridge.call({ op: "confirmDialect" }) as Dialect;
    }
    const observer = this.#observer;
    const steps = transactionSteps<T>({
      ...settings,
      onRetry: observer.retrying(telemetry, settings.onRetry),
    }, bridge.dialect);
    // The transaction's timeout: its statements in the worker are aborted when it passes, and
    // nothing but the rollback is sent afterwards.
    const deadline = settings.timeout === undefined
      ? undefined
      : performance.now() + settings.timeout;
    const timeoutSignal = { reason: new DOMException("The transaction timed out", "TimeoutError") };
    const stop = (): void => {
      if (deadline !== undefined && performance.now() >= deadline) {
        throw aborted(timeoutSignal as AbortSignal, true);
      }
    };
    const tx = ++transactionCounter;
    const maxConnections = this.#settings.config.maxConnections;
    // defer and discard are taken in the worker, with the next request of the transaction.
    const link = new LinkOps();
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
    return runSync(steps, (step) => {
      switch (step.kind) {
        case "reserve":
          release();
          // After a crash this starts a new worker: the attempt runs again on a fresh connection.
          bridge = this.connected();
          checkPool(bridge, maxConnections);
          stop();
          bridge.call(
            deadline === undefined
              ? { op: "txReserve", tx }
              : { op: "txReserve", tx, deadline: deadline - performance.now() },
          );
          holding = bridge;
          bridge.held++;
          return undefined;
        case "defer":
          link.push({ op: "defer", texts: step.texts });
          return undefined;
        case "discard":
          link.push({ op: "discard" });
          return undefined;
        case "query": {
          if (!step.text.startsWith("ROLLBACK")) stop();
          const ops = link.take();
          return bridge.call(
            ops === undefined
              ? { op: "txQuery", tx, text: step.text }
              : { op: "txQuery", tx, text: step.text, link: ops },
          );
        }
        case "callback": {
          stop();
          const ref: TransactionRef = { tx, attempt: ++attempt };
          const owner = bridge;
          let closed = false;
          const channel = new Channel({
            bridge: () => {
              if (closed) {
                throw new DatabaseError("Cannot use transaction: it has already ended", {
                  code: "TRANSACTION_CLOSED",
                });
              }
              return owner;
            },
            ref,
            maxConnections,
            link,
          });
          try {
            return fn(channel);
          } finally {
            closed = true;
          }
        }
        case "sleep":
          sleepSync(
            deadline === undefined ? step.ms : Math.min(step.ms, deadline - performance.now()),
          );
          stop();
          return undefined;
        case "state": {
          let state: SessionState = { lost: true, sawRetryable: false };
          if (bridge.alive) {
            try {
              const ops = link.take();
              const ref = { tx, attempt };
              const answer = bridge.call(
                ops === undefined ? { op: "txState", ref } : { op: "txState", ref, link: ops },
              ) as SessionState & { deferredError?: ErrorRecord };
              state = answer.deferredError === undefined
                ? answer
                : { ...answer, deferredError: decodeError(answer.deferredError) };
            } catch {
              // The worker is gone, and the connection with it.
            }
          }
          return state;
        }
        case "release":
          release();
          return undefined;
      }
    });
  }
}
