// The worker behind the synchronous `Database`: it owns an `AsyncDatabase` and serves the
// requests the calling thread writes into the shared buffer (see `_bridge.ts`), one at a time.
// No SQL is built here: every request is a method call on the `AsyncDatabase`, on a transaction
// handle of it, or one step of the retry protocol that the calling thread drives.
//
// The calling thread blocks while a request is served, so requests never overlap; the worker
// waits with `Atomics.waitAsync`, which leaves its event loop free for the pool's sockets and
// for the heartbeat that tells the calling thread it is alive.
import process from "node:process";
import { workerData } from "node:worker_threads";
import { AsyncDatabase, type AsyncQueryable, type AsyncTransaction } from "./async_database.ts";
import { type DatabaseInternals, internalsOf, type TransactionContext } from "./_internal.ts";
import type { ReservedSession } from "./_driver.ts";
import type { SessionState } from "./_retry.ts";
import { applyLinkOp, type Link, type LinkOp, newLink } from "./_link.ts";
import { protocolQuery, sessionState } from "./_runner.ts";
import type { Notice, QueryEvent } from "./_options.ts";
import { aborted } from "./_driver.ts";
import { withCapturedContext } from "./_telemetry_context.ts";
import {
  BEAT,
  type BridgeEvent,
  CALLER,
  type CallRequest,
  type CrashMode,
  decodeMessage,
  type EncodedMessage,
  encodeError,
  encodeMessage,
  FORMAT,
  FORWARDED_METHODS,
  type ForwardedMethod,
  type ForwardedTarget,
  headerOf,
  HEARTBEAT_MS,
  isBridgeWorkerData,
  KIND_ERROR,
  KIND_EVENTS,
  KIND_OK,
  KIND_PART,
  markDead,
  PART_LENGTH,
  readChunk,
  READY,
  type Request,
  slot,
  STATUS,
  type StreamBatch,
  totalLength,
  type TransactionRef,
  TURN,
  WORKER,
  type WorkerData,
  writeChunk,
} from "./_bridge.ts";
import { ConnectionError, DatabaseError } from "./errors.ts";

// Set by start(): this module is also imported, inertly, by `_bridge_client.ts` on the calling
// thread.
let buffer: SharedArrayBuffer;
let header: Int32Array;
let db: AsyncDatabase;
let internals: DatabaseInternals;

let dying = false;
function die(reason: string): void {
  if (dying) return;
  dying = true;
  markDead(buffer, header, reason);
}
interface TransactionEntry {
  session: ReservedSession;
  /** Aborts the transaction's statements when its deadline passes. */
  signal: AbortSignal | undefined;
  attempt: number;
  context: TransactionContext | undefined;
  handle: AsyncTransaction | undefined;
  /** The statements deferred to travel with the next one on the connection. */
  link: Link;
}

const transactions = new Map<number, TransactionEntry>();
const streams = new Map<
  number,
  { iterator: AsyncGenerator<unknown>; batchSize: number; tx: number | undefined }
>();

function transactionEntry(tx: number): TransactionEntry {
  const entry = transactions.get(tx);
  if (entry === undefined) {
    throw new ConnectionError("Cannot use transaction: its connection is gone", {
      code: "TRANSACTION_CLOSED",
    });
  }
  return entry;
}

// Applies what the calling thread's runner decided about the deferred statements.
function applyLink(tx: number, ops: readonly LinkOp[] | undefined): void {
  if (ops === undefined) return;
  const entry = transactionEntry(tx);
  for (const op of ops) applyLinkOp(entry.link, op, entry.context?.sawRetryable ?? false);
}

// The handle of one attempt: a new attempt closes the previous handle, as the async runner does.
async function targetOf(
  ref: TransactionRef | undefined,
  link?: readonly LinkOp[],
): Promise<AsyncQueryable> {
  if (ref === undefined) return db;
  const entry = transactionEntry(ref.tx);
  applyLink(ref.tx, link);
  if (entry.attempt !== ref.attempt || entry.handle === undefined) {
    if (entry.context) entry.context.closed = true;
    entry.context = {
      session: entry.session,
      attempt: ref.attempt,
      signal: entry.signal,
      sawRetryable: false,
      closed: false,
      link: entry.link,
    };
    entry.handle = internals.transaction(entry.context, await internals.dialect());
    entry.attempt = ref.attempt;
  }
  return entry.handle;
}

// Generic in the method, so that its arguments are the ones the method takes.
function call<M extends ForwardedMethod>(
  target: ForwardedTarget,
  request: CallRequest<M>,
): Promise<unknown> {
  return target[request.method](...request.args);
}

function releaseTransaction(tx: number): void {
  const entry = transactions.get(tx);
  if (entry === undefined) return;
  transactions.delete(tx);
  if (entry.context) entry.context.closed = true;
  // Cursors of the transaction end with it (a stream the caller left unfinished).
  for (const [id, stream] of streams) if (stream.tx === tx) streams.delete(id);
  entry.session.release();
}

async function nextBatch(id: number): Promise<StreamBatch> {
  const stream = streams.get(id);
  if (stream === undefined) return { rows: [], done: true };
  const rows: unknown[] = [];
  try {
    while (rows.length < stream.batchSize) {
      const next = await stream.iterator.next();
      if (next.done) {
        streams.delete(id);
        return { rows, done: true };
      }
      rows.push(next.value);
    }
  } catch (error) {
    streams.delete(id);
    throw error;
  }
  return { rows, done: false };
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case "call": {
      if (!FORWARDED_METHODS.has(request.method)) {
        throw new TypeError(`Cannot call "${request.method}": not a database method`);
      }
      const target = await targetOf(request.ref, request.link);
      if (request.retries === true && request.method === "batch") {
        // The caller's onRetry stayed on its thread: each retry goes there as an event.
        const [statements, options] = request.args;
        return await target.batch(statements, {
          ...options,
          onRetry: (info) =>
            events.push({
              type: "retry",
              attempt: info.attempt,
              delayMs: info.delayMs,
              error: encodeError(info.error),
            }),
        });
      }
      return await call(target, request);
    }
    case "connect":
      await db.connect();
      return { dialect: await internals.dialect(), version: db.serverVersion };
    case "confirmDialect":
      return await internals.dialect(true);
    case "close":
      for (const id of [...streams.keys()]) await closeStream(id);
      for (const tx of [...transactions.keys()]) releaseTransaction(tx);
      await db.close();
      return undefined;
    case "txReserve": {
      releaseTransaction(request.tx);
      const signal = request.deadline === undefined
        ? undefined
        : AbortSignal.timeout(Math.max(1, request.deadline));
      if (signal?.aborted) throw aborted(signal, false);
      const session = await internals.reserve();
      transactions.set(request.tx, {
        session,
        signal,
        attempt: -1,
        context: undefined,
        handle: undefined,
        link: newLink(),
      });
      return undefined;
    }
    case "txQuery": {
      const entry = transactionEntry(request.tx);
      applyLink(request.tx, request.link);
      // Once the transaction's deadline passed, nothing but the rollback is sent.
      if (entry.signal?.aborted && !request.text.startsWith("ROLLBACK")) {
        throw aborted(entry.signal, true);
      }
      return await protocolQuery(entry.session, entry.link, request.text, internals.observer);
    }
    case "stats":
      return db.stats();
    case "txState": {
      const entry = transactions.get(request.ref.tx);
      if (entry !== undefined) applyLink(request.ref.tx, request.link);
      if (entry === undefined) {
        return { lost: true, sawRetryable: false, unsent: false } satisfies SessionState;
      }
      const current = entry.attempt === request.ref.attempt;
      const state = sessionState(
        entry.session,
        entry.link,
        current ? entry.context?.sawRetryable ?? false : false,
      );
      // The deferred error crosses as a record, rebuilt with its class on the calling thread.
      return state.deferredError === undefined
        ? state
        : { ...state, deferredError: encodeError(state.deferredError) };
    }
    case "txRelease":
      releaseTransaction(request.tx);
      return undefined;
    case "streamOpen": {
      const target = await targetOf(request.ref, request.link);
      // The calling thread checked it (streamBatchSize).
      const batchSize = request.batchSize;
      const iterator = target.stream(request.sql, request.params, {
        batchSize,
        ...(request.timeout === undefined ? {} : { timeout: request.timeout }),
      });
      streams.set(request.id, { iterator, batchSize, tx: request.ref?.tx });
      return await nextBatch(request.id);
    }
    case "streamNext":
      return await nextBatch(request.id);
    case "streamClose":
      await closeStream(request.id);
      return undefined;
    case "crash":
      crash(request.how, request.ms ?? 3000);
      return new Promise(() => {});
    default:
      throw new DatabaseError(
        `Cannot serve request "${(request as { op: string }).op}": unknown operation`,
        { code: "BRIDGE_PROTOCOL" },
      );
  }
}

async function closeStream(id: number): Promise<void> {
  const stream = streams.get(id);
  if (stream === undefined) return;
  streams.delete(id);
  await stream.iterator.return(undefined);
}

// Test hook: fail in one of the ways a real worker can fail.
function crash(how: CrashMode, ms: number): void {
  switch (how) {
    case "throw":
      setTimeout(() => {
        throw new Error("The bridge worker crashed on purpose (test hook)");
      }, 0);
      break;
    case "exit":
      setTimeout(() => process.exit(70), 0);
      break;
    case "close":
      // Stops the worker without any event: only the heartbeat tells.
      setTimeout(() => (globalThis as unknown as { close(): void }).close(), 0);
      break;
    case "hang":
      // Stuck in synchronous code: the event loop, and so the heartbeat, stop. Bounded, because
      // Deno cannot end a worker thread while it runs synchronous code: terminate() takes effect
      // when the loop ends.
      setTimeout(() => {
        const end = Date.now() + ms;
        while (Date.now() < end) {
          // Busy.
        }
      }, 0);
      break;
  }
}

const SPIN_MS = 0.05;

async function waitForTurn(): Promise<void> {
  // A synchronous caller often sends its next request right after reading an answer: a brief
  // spin catches it without the cost of waking the event loop from Atomics.waitAsync.
  const until = performance.now() + SPIN_MS;
  let spins = 0;
  while (Atomics.load(header, TURN) !== WORKER) {
    if ((++spins & 127) === 0 && performance.now() > until) break;
  }
  while (Atomics.load(header, TURN) !== WORKER) {
    const waiting = Atomics.waitAsync(header, TURN, CALLER);
    if (waiting.async) await waiting.value;
  }
}

async function receive(): Promise<Request> {
  await waitForTurn();
  const format = slot(header, FORMAT);
  const total = totalLength(header);
  const message = new Uint8Array(total);
  let offset = readChunk(buffer, header, message, 0);
  while (offset < total) {
    // Hand the turn back for the next chunk.
    Atomics.store(header, TURN, CALLER);
    Atomics.notify(header, TURN);
    await waitForTurn();
    offset += readChunk(buffer, header, message, offset);
  }
  return decodeMessage(format, message) as Request;
}

async function send(kind: number, message: EncodedMessage): Promise<void> {
  let offset = 0;
  for (;;) {
    offset += writeChunk(buffer, header, kind, message, offset);
    Atomics.store(header, TURN, CALLER);
    Atomics.notify(header, TURN);
    if (offset >= message.bytes.byteLength) return;
    await waitForTurn();
  }
}

function encode(kind: number, value: unknown): { kind: number; message: EncodedMessage } {
  try {
    return { kind, message: encodeMessage(value) };
  } catch (error) {
    const failure = new DatabaseError(
      `Cannot send the result across the bridge: ${(error as Error).message}`,
      { code: "BRIDGE_SERIALIZE", cause: error },
    );
    return { kind: KIND_ERROR, message: encodeMessage(encodeError(failure)) };
  }
}

// A long array goes out in slices: while the calling thread decodes one, this encodes the next.
async function sendParts(value: unknown[]): Promise<void> {
  let next = encode(KIND_PART, value.slice(0, PART_LENGTH));
  for (let start = PART_LENGTH;; start += PART_LENGTH) {
    const last = start >= value.length;
    const current = next;
    await send(last && current.kind === KIND_PART ? KIND_OK : current.kind, current.message);
    if (last || current.kind === KIND_ERROR) return;
    next = encode(KIND_PART, value.slice(start, start + PART_LENGTH));
    await waitForTurn();
  }
}

// Events of the database since the last answer, sent ahead of the next one.
const events: BridgeEvent[] = [];

async function sendEvents(): Promise<void> {
  if (events.length === 0) return;
  const batch = events.splice(0);
  const message = encode(KIND_EVENTS, batch);
  if (message.kind !== KIND_EVENTS) return;
  await send(KIND_EVENTS, message.message);
  await waitForTurn();
}

async function serve(): Promise<void> {
  for (;;) {
    const request = await receive();
    let value: unknown;
    try {
      value = await withCapturedContext(request.trace, () => handle(request));
    } catch (error) {
      await sendEvents();
      const reply = encode(KIND_ERROR, encodeError(error));
      await send(reply.kind, reply.message);
      continue;
    }
    await sendEvents();
    if (Array.isArray(value) && value.length > PART_LENGTH) {
      await sendParts(value);
    } else {
      const reply = encode(KIND_OK, value);
      await send(reply.kind, reply.message);
    }
  }
}

function start(data: WorkerData): void {
  buffer = data.buffer;
  header = headerOf(buffer);
  // An error nothing caught ends the worker; its message travels in the ConnectionError the
  // calling thread throws, rather than as a second report on stderr.
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    die(`uncaught ${(event as ErrorEvent).message}`);
    process.exit(1);
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const reason = (event as PromiseRejectionEvent).reason;
    die(`unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}`);
    process.exit(1);
  });
  process.on("exit", (code: number) => die(`the worker exited with code ${code}`));
  const options = {
    ...data.options,
    ...(data.events
      ? { onNotice: (notice: Notice) => events.push({ type: "notice", notice }) }
      : {}),
    ...(data.queryEvents
      ? { onQuery: (event: QueryEvent) => events.push({ type: "query", event }) }
      : {}),
  };
  db = typeof data.url === "string"
    ? new AsyncDatabase(data.url, options)
    : new AsyncDatabase(options);
  internals = internalsOf(db);
  // The heartbeat also keeps the worker's event loop alive between requests.
  setInterval(() => Atomics.add(header, BEAT, 1), HEARTBEAT_MS);
  Atomics.add(header, BEAT, 1);
  Atomics.store(header, STATUS, READY);
  Atomics.notify(header, STATUS);
  serve().catch((error) => die(`the request loop failed: ${(error as Error)?.message ?? error}`));
}

if (isBridgeWorkerData(workerData)) start(workerData);
