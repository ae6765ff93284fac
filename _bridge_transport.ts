// The calling thread's end of the synchronous bridge to one worker (see `_bridge.ts` for the
// protocol): `Bridge` starts the worker, writes a request into the shared buffer, and blocks (a
// brief spin, then `Atomics.wait`) until the answer is in or the worker is found dead or silent.
// `_bridge_client.ts` builds the database's side on it.
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Notice, QueryEvent, RetryInfo } from "./_options.ts";
import { captureContext } from "./_telemetry_context.ts";
import type { Dialect } from "./_sql.ts";
import {
  BEAT,
  bootstrapSource,
  BRIDGE_MARK,
  type BridgeEvent,
  CALLER,
  createSharedBuffer,
  DEAD,
  deathReason,
  decodeError,
  decodeMessage,
  type EncodedMessage,
  encodeMessage,
  type ErrorRecord,
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
  slot,
  STARTING,
  STATUS,
  totalLength,
  TURN,
  WORKER,
  type WorkerData,
  writeChunk,
} from "./_bridge.ts";
import { AmbiguousCommitError, ConnectionError, ValidationError } from "./errors.ts";
// The worker's module, imported here for its place in the module graph only (it does nothing
// outside a bridge worker): Deno then fetches and caches it and everything it imports before
// this module runs. A worker cannot fetch a remote module (JSR, https) while the thread that
// started it blocks in Atomics.wait, so without this the first Database of a remote import
// would wait for a worker that cannot load.
import "./_bridge_worker.ts";

/** How long the calling thread spins on the answer before it sleeps in `Atomics.wait`. */
const SPIN_MS = 0.25;
/** Longest single `Atomics.wait`, between checks of the worker's heartbeat. */
const WAIT_SLICE_MS = HEARTBEAT_MS;
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
export interface BridgeSettings {
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
  /** Called on the calling thread after each statement; the worker then forwards events. */
  readonly onQuery: ((event: QueryEvent) => void) | undefined;
}

/** One worker and its shared buffer; a failed bridge stays failed and the database starts another. */
export class Bridge {
  readonly #buffer: SharedArrayBuffer;
  readonly #header: Int32Array;
  readonly #worker: Worker;
  readonly #timeout: number;
  readonly #target: string;
  readonly #onNotice: ((notice: Notice) => void) | undefined;
  readonly #onQuery: ((event: QueryEvent) => void) | undefined;
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
    const { url, options, timeout, startTimeout, target, onNotice, onQuery } = settings;
    this.#timeout = timeout;
    this.#target = target;
    this.#onNotice = onNotice;
    this.#onQuery = onQuery;
    this.#buffer = createSharedBuffer();
    this.#header = headerOf(this.#buffer);
    const workerData: WorkerData = {
      bridge: BRIDGE_MARK,
      buffer: this.#buffer,
      url,
      options,
      events: onNotice !== undefined,
      queryEvents: onQuery !== undefined,
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

  /**
   * Sends one request and blocks until its answer; throws the error the worker answered. A
   * statement (`call`) the worker took and then died under may have run: that failure is an
   * `AmbiguousCommitError`, whose cause is the `ConnectionError` (docs/retry-safety.md).
   */
  call(request: Request, onRetry?: (info: RetryInfo) => void): unknown {
    if (this.#failure !== undefined) throw this.#copyFailure();
    if (request.op !== "call") return this.#call(request);
    this.#onRetry = onRetry;
    try {
      return this.#call(request);
    } catch (error) {
      // Only the worker's own death counts; an error the worker answered is the statement's.
      if (this.#failure === undefined || !this.#handedOver) throw error;
      throw new AmbiguousCommitError(
        `Cannot tell whether the statement committed: ${(error as Error).message}`,
        { cause: error },
      );
    } finally {
      this.#onRetry = undefined;
    }
  }

  /** The `onRetry` of the call in progress, for its `retry` events. */
  #onRetry: ((info: RetryInfo) => void) | undefined;

  /** The current request reached the worker (its turn was handed over). */
  #handedOver = false;

  /** The last request reached the worker (false when it failed before: its encoding, say). */
  get delivered(): boolean {
    return this.#handedOver;
  }

  #call(request: Request): unknown {
    this.#handedOver = false;
    // The caller's span goes along, so that the worker's spans are its children.
    const trace = captureContext();
    if (trace !== undefined) request = { ...request, trace };
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
      this.#release();
      if (offset >= message.bytes.byteLength) this.#handedOver = true;
      this.#await();
    } while (offset < message.bytes.byteLength);
    // The turn is back with the answer's first chunk.
    let parts: unknown[][] | undefined;
    let events: BridgeEvent[] | undefined;
    for (;;) {
      const kind = slot(header, KIND);
      const format = slot(header, FORMAT);
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
        else if (event.type === "query") this.#onQuery?.(event.event);
        else {
          this.#onRetry?.({
            attempt: event.attempt,
            delayMs: event.delayMs,
            error: decodeError(event.error),
          });
        }
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
