// The protocol of the synchronous bridge, shared by the calling thread (`_bridge_client.ts`) and
// the worker (`_bridge_worker.ts`): the layout of the shared buffer, the requests, and how errors
// cross it. Pure: no worker is started and nothing blocks here.
//
// One `SharedArrayBuffer` carries everything. Its first 64 bytes are a header of Int32 slots;
// the rest holds one chunk of one message (JSON when that is exact, else `node:v8`). The `TURN` slot says
// whose move it is: the calling thread writes a request chunk, hands the turn to the worker and
// blocks; the worker answers with a response chunk and hands the turn back. A message larger
// than the buffer (which grows up to `MAX_BUFFER_BYTES`) travels as several chunks, the
// receiver handing the turn back after copying each one. A long array answer (100,000 rows)
// travels as slices of `PART_LENGTH` elements, each encoded on its own, so that the worker
// encodes the next slice while the calling thread decodes the last one.
import { deserialize, serialize } from "node:v8";
import type { Notice, QueryEvent } from "./_options.ts";
import type { TraceCarrier } from "./_telemetry_context.ts";
import type { AsyncQueryable } from "./async_database.ts";
import type { LinkOp } from "./_link.ts";
import { describeValue, isPlainObject } from "./_serialize.ts";
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  MigrationError,
  RecordNotFoundError,
  TableNotFoundError,
  TableNotInitializedError,
  TransactionRetryError,
  UniqueViolationError,
  ValidationError,
} from "./errors.ts";

/** Bytes of the header in front of the data region. */
export const HEADER_BYTES = 64;
/** The data region starts this small and grows on demand. */
export const INITIAL_BUFFER_BYTES: number = HEADER_BYTES + 64 * 1024;
/** The buffer never grows past this; longer messages are sent in chunks. */
export const MAX_BUFFER_BYTES: number = HEADER_BYTES + 16 * 1024 * 1024;
/** How often the worker signs of life, in milliseconds. */
export const HEARTBEAT_MS = 100;

// Header slots (Int32 indexes).
/** Whose move it is: {@linkcode CALLER} or {@linkcode WORKER}. */
export const TURN = 0;
/** Incremented by the worker every {@linkcode HEARTBEAT_MS} while its event loop runs. */
export const BEAT = 1;
/** {@linkcode STARTING}, {@linkcode READY} or {@linkcode DEAD}; notified on change. */
export const STATUS = 2;
/** What the current chunk belongs to: a request, an answer, an error or part of an answer. */
export const KIND = 3;
/** Total length of the message in bytes (low and high 31 bits). */
export const TOTAL_LOW = 4;
export const TOTAL_HIGH = 5;
/** Bytes of the message in the data region now. */
export const CHUNK = 6;
/** Byte length of the UTF-8 reason the worker wrote into the data region when it died. */
export const DEATH_REASON = 7;
/** How the message is encoded: {@linkcode FORMAT_V8} or {@linkcode FORMAT_JSON}. */
export const FORMAT = 8;

/** `node:v8` serialization: keeps bigint, Date, Uint8Array, undefined, … */
export const FORMAT_V8 = 0;
/** UTF-8 JSON, for values JSON carries exactly: several times faster for small messages. */
export const FORMAT_JSON = 1;

export const CALLER = 0;
export const WORKER = 1;

export const STARTING = 0;
export const READY = 1;
export const DEAD = 2;

export const KIND_REQUEST = 0;
export const KIND_OK = 1;
export const KIND_ERROR = 2;
/** One slice of a long array answer; more slices follow, the last one as `KIND_OK`. */
export const KIND_PART = 3;
/** Events of the worker's database (notices) that came before the answer that follows. */
export const KIND_EVENTS = 4;

/** Something the worker's database reported, delivered on the calling thread. */
export type BridgeEvent =
  | { readonly type: "notice"; readonly notice: Notice }
  | { readonly type: "query"; readonly event: QueryEvent }
  | {
    /** A retry of the call in progress (a `batch()` with `onRetry`), for its callback. */
    readonly type: "retry";
    readonly attempt: number;
    readonly delayMs: number;
    readonly error: ErrorRecord;
  };

/** Elements per slice of a long array answer (see `KIND_PART`). */
export const PART_LENGTH = 8192;

/**
 * The `AsyncQueryable` methods the bridge forwards as they are: the sync `Queryable`'s
 * generated methods call them by these names, and the worker dispatches on them. Checked
 * against `AsyncQueryable`, so a misspelt or removed name does not compile.
 */
export const FORWARDED_METHOD_NAMES = [
  "execute",
  "queryOne",
  "createDatabase",
  "dropDatabase",
  "createTable",
  "dropTable",
  "tableExists",
  "insert",
  "select",
  "selectOne",
  "update",
  "delete",
  "upsert",
  "batchInsert",
  "batchUpsert",
  "batchUpdate",
  "count",
  "batch",
] as const satisfies readonly (keyof AsyncQueryable)[];

/** A method the bridge forwards. */
export type ForwardedMethod = typeof FORWARDED_METHOD_NAMES[number];

/** The arguments of each forwarded method (of its last overload). */
export type ForwardedArgs = { [M in ForwardedMethod]: Parameters<AsyncQueryable[M]> };

/** What each forwarded method resolves to (type parameters at their constraint). */
export type ForwardedResult<M extends ForwardedMethod> = Awaited<ReturnType<AsyncQueryable[M]>>;

/** The forwarded methods as the worker calls them: `AsyncQueryable` is one of these. */
export type ForwardedTarget = {
  [M in ForwardedMethod]: (...args: ForwardedArgs[M]) => Promise<ForwardedResult<M>>;
};

/** The names of {@linkcode FORWARDED_METHOD_NAMES}, for the worker's check of a request. */
export const FORWARDED_METHODS: ReadonlySet<string> = new Set(FORWARDED_METHOD_NAMES);

/** A request to run one forwarded method, on the database or on a transaction attempt. */
export type CallRequest<M extends ForwardedMethod = ForwardedMethod> = {
  [K in M]: {
    readonly op: "call";
    readonly method: K;
    /** The arguments, without trailing `undefined`s (which the method reads the same). */
    readonly args: ForwardedArgs[K];
    readonly ref?: TransactionRef;
    /** What the transaction's link takes before the call (see `TransactionRef`). */
    readonly link?: readonly LinkOp[];
    /**
     * The call's options had an `onRetry` callback (a function cannot cross): the worker sends
     * each retry as an event, and the calling thread calls it.
     */
    readonly retries?: true;
  };
}[M];

/**
 * Which transaction attempt a request belongs to (absent: the database itself). A request of a
 * transaction may carry `link`: operations on the statements deferred to travel with its next
 * statement (BEGIN, RELEASE, a nested transaction's savepoint), which the calling thread's runner
 * decided since its last request and the worker applies first (`_link.ts`).
 */
export interface TransactionRef {
  /** The transaction's id, chosen by the calling thread. */
  readonly tx: number;
  /** The attempt (callback run) within the transaction. */
  readonly attempt: number;
}

/** A request from the calling thread, with the caller's trace context when it is traced. */
export type Request = RequestBody & { readonly trace?: TraceCarrier };

/** What a request asks. */
export type RequestBody =
  /** Open the pool and answer `{ dialect, version }`. */
  | { readonly op: "connect" }
  /**
   * Answer the server's dialect, a `postgres` reading confirmed with `SELECT version()` (for
   * `asOfSystemTime`, which only CockroachDB takes).
   */
  | { readonly op: "confirmDialect" }
  /** Close the pool (the calling thread then ends the worker). */
  | { readonly op: "close" }
  /** Run one `AsyncQueryable` method on the database or on a transaction attempt. */
  | CallRequest
  /**
   * Release the transaction's connection, if any, and reserve a fresh one; `deadline`
   * (milliseconds from now) aborts the transaction's statements when it passes.
   */
  | { readonly op: "txReserve"; readonly tx: number; readonly deadline?: number }
  /**
   * Send one statement of the retry protocol on the transaction's connection, the deferred ones
   * in front of it.
   */
  | {
    readonly op: "txQuery";
    readonly tx: number;
    readonly text: string;
    readonly link?: readonly LinkOp[];
  }
  /** Answer the `SessionState` of the transaction's connection and attempt. */
  | { readonly op: "txState"; readonly ref: TransactionRef; readonly link?: readonly LinkOp[] }
  /** Release the transaction's connection. */
  | { readonly op: "txRelease"; readonly tx: number }
  /** Start a cursor stream and answer its first batch. */
  | {
    readonly op: "streamOpen";
    readonly id: number;
    readonly sql: string;
    readonly params: readonly unknown[];
    readonly batchSize: number;
    readonly ref?: TransactionRef;
    readonly link?: readonly LinkOp[];
    /** Milliseconds the stream may take, from its start. */
    readonly timeout?: number;
  }
  /** Answer the database's `stats()`. */
  | { readonly op: "stats" }
  /** Answer the next batch of a stream. */
  | { readonly op: "streamNext"; readonly id: number }
  /** Close a stream early. */
  | { readonly op: "streamClose"; readonly id: number }
  /** Test hook: make the worker fail in the named way (`hang` busy-loops for `ms`). */
  | { readonly op: "crash"; readonly how: CrashMode; readonly ms?: number };

/** How the test hook makes the worker fail. */
export type CrashMode = "throw" | "exit" | "close" | "hang";

/** A batch of a stream. */
export interface StreamBatch {
  readonly rows: unknown[];
  readonly done: boolean;
}

/** Marks the `workerData` of a bridge worker. */
export const BRIDGE_MARK = "@manticore/cockroachdb sync bridge 1";

/** What the worker receives with `workerData`. */
export interface WorkerData {
  readonly bridge: typeof BRIDGE_MARK;
  readonly buffer: SharedArrayBuffer;
  readonly url: string | undefined;
  readonly options: Record<string, unknown>;
  /** Send the database's notices to the calling thread with each answer. */
  readonly events: boolean;
  /** Send the database's query events (`onQuery`) to the calling thread with each answer. */
  readonly queryEvents: boolean;
}

/**
 * The source of the module a bridge worker starts from (as a `data:` URL): it imports the
 * worker module, and reports at once through the shared buffer when that import fails (a
 * missing permission, a module that cannot load), instead of leaving the calling thread to
 * wait for a worker that will never answer. `node:worker_threads` takes `file:` and `data:`
 * URLs only; from a `data:` module the worker can come from anywhere (JSR, https).
 */
export function bootstrapSource(workerUrl: string): string {
  return `import { workerData } from "node:worker_threads";
import(${JSON.stringify(workerUrl)}).catch((error) => {
  const buffer = workerData.buffer;
  const header = new Int32Array(buffer, 0, ${HEADER_BYTES / 4});
  const reason = "the worker module failed to load: " + String(error?.message ?? error);
  const bytes = new TextEncoder().encode(reason.slice(0, 2000));
  new Uint8Array(buffer, ${HEADER_BYTES}, bytes.length).set(bytes);
  header[${DEATH_REASON}] = bytes.length;
  Atomics.store(header, ${STATUS}, ${DEAD});
  Atomics.notify(header, ${STATUS});
  Atomics.notify(header, ${TURN});
});
`;
}

/** True in a worker started by `Database` (the worker module is also imported elsewhere). */
export function isBridgeWorkerData(data: unknown): data is WorkerData {
  return typeof data === "object" && data !== null &&
    (data as { bridge?: unknown }).bridge === BRIDGE_MARK;
}

/** The header of a shared buffer as Int32 slots. */
export function headerOf(buffer: SharedArrayBuffer): Int32Array {
  return new Int32Array(buffer, 0, HEADER_BYTES / 4);
}

/** Reads a header slot (a plain read: the turn's `Atomics` calls order it). */
export function slot(header: Int32Array, index: number): number {
  const value = header[index];
  // Every slot constant above is below HEADER_BYTES / 4, the length of every header view.
  if (value === undefined) throw new RangeError(`Cannot read header slot ${index}: no such slot`);
  return value;
}

/** A new shared buffer, growable where the runtime allows it. */
export function createSharedBuffer(): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(INITIAL_BUFFER_BYTES, { maxByteLength: MAX_BUFFER_BYTES });
  } catch {
    return new SharedArrayBuffer(MAX_BUFFER_BYTES);
  }
}

/** Room for data in the buffer, grown (up to the maximum) to fit `wanted` bytes if possible. */
export function roomFor(buffer: SharedArrayBuffer, wanted: number): number {
  const room = buffer.byteLength - HEADER_BYTES;
  if (wanted <= room || !buffer.growable || buffer.byteLength >= buffer.maxByteLength) return room;
  // Grow in powers of two so that a run of growing messages grows the buffer a few times only.
  let size = buffer.byteLength;
  while (size - HEADER_BYTES < wanted && size < buffer.maxByteLength) size *= 2;
  buffer.grow(Math.min(size, buffer.maxByteLength));
  return buffer.byteLength - HEADER_BYTES;
}

/** A message ready to cross: its bytes and how they are encoded. */
export interface EncodedMessage {
  readonly format: number;
  readonly bytes: Uint8Array;
}

const MAX_JSON_DEPTH = 64;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// True when JSON.parse(JSON.stringify(value)) gives back an equal value: strings, booleans,
// null, finite numbers (not -0), dense arrays and plain objects of those.
function isJsonExact(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0);
    case "object": {
      if (value === null) return true;
      if (depth > MAX_JSON_DEPTH) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || !isJsonExact(value[i], depth + 1)) return false;
        }
        return true;
      }
      if (!isPlainObject(value)) return false;
      for (const key in value) {
        if (!isPlainKey(key)) return false;
        if (!isJsonExact((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

// Keys seen to need no escape in JSON (column names, mostly): a set lookup is cheaper than the
// test. Bounded in count and length, since keys inside JSON values are arbitrary.
const plainKeys = new Set<string>();
// deno-lint-ignore no-control-regex -- JSON escapes the control characters
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

// A key that JSON writes with an escape is read back wrongly by V8's JSON.parse in some
// states (see _json.ts); objects with such keys go through `node:v8` instead.
function isPlainKey(key: string): boolean {
  if (plainKeys.has(key)) return true;
  if (NEEDS_ESCAPE.test(key) || !key.isWellFormed()) return false;
  if (plainKeys.size < 10_000 && key.length <= 64) plainKeys.add(key);
  return true;
}

/**
 * What in `value` would not arrive as it is, or `undefined`: `node:v8` copies a class instance
 * as a plain object (its prototype and toJSON() lost) and a Map or a typed array other than
 * Uint8Array as itself, none of which the async API takes either. Plain objects, arrays,
 * Dates, Uint8Arrays and primitives cross.
 */
export function findUncrossable(value: unknown): string | undefined {
  const stack: unknown[] = [value];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === "function" || typeof item === "symbol") return `a ${typeof item}`;
    if (typeof item !== "object" || item === null || seen.has(item)) continue;
    seen.add(item);
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) stack.push(item[i]);
      continue;
    }
    if (item instanceof Date || item instanceof Uint8Array) continue;
    if (!isPlainObject(item)) return describeValue(item);
    for (const key in item) stack.push(item[key]);
  }
  return undefined;
}

/** Encodes a value as JSON when that is exact, else with `node:v8` (which may throw). */
export function encodeMessage(value: unknown): EncodedMessage {
  if (isJsonExact(value, 0)) {
    return { format: FORMAT_JSON, bytes: encoder.encode(JSON.stringify(value)) };
  }
  return { format: FORMAT_V8, bytes: serialize(value) };
}

/**
 * Decodes a message. `bytes` must be a fresh buffer: values deserialized by `node:v8`
 * (Uint8Arrays) may be views into it.
 */
export function decodeMessage(format: number, bytes: Uint8Array): unknown {
  return format === FORMAT_JSON ? JSON.parse(decoder.decode(bytes)) : deserialize(bytes);
}

/** Writes the chunk of `message` starting at `offset` and the header fields describing it. */
export function writeChunk(
  buffer: SharedArrayBuffer,
  header: Int32Array,
  kind: number,
  message: EncodedMessage,
  offset: number,
): number {
  const bytes = message.bytes;
  const room = roomFor(buffer, bytes.byteLength - offset);
  const length = Math.min(room, bytes.byteLength - offset);
  new Uint8Array(buffer, HEADER_BYTES, length).set(bytes.subarray(offset, offset + length));
  header[KIND] = kind;
  header[FORMAT] = message.format;
  header[TOTAL_LOW] = bytes.byteLength % 0x80000000;
  header[TOTAL_HIGH] = Math.floor(bytes.byteLength / 0x80000000);
  header[CHUNK] = length;
  return length;
}

/** The total length of the message whose chunk is in the buffer. */
export function totalLength(header: Int32Array): number {
  return slot(header, TOTAL_HIGH) * 0x80000000 + slot(header, TOTAL_LOW);
}

/** Copies the chunk in the buffer into `target` at `offset`; answers the bytes copied. */
export function readChunk(
  buffer: SharedArrayBuffer,
  header: Int32Array,
  target: Uint8Array,
  offset: number,
): number {
  const length = slot(header, CHUNK);
  target.set(new Uint8Array(buffer, HEADER_BYTES, length), offset);
  return length;
}

/** Writes why the worker died into the data region (best effort) and marks it dead. */
export function markDead(buffer: SharedArrayBuffer, header: Int32Array, reason: string): void {
  try {
    const bytes = new TextEncoder().encode(reason.slice(0, 2000));
    const length = Math.min(bytes.byteLength, buffer.byteLength - HEADER_BYTES);
    new Uint8Array(buffer, HEADER_BYTES, length).set(bytes.subarray(0, length));
    header[DEATH_REASON] = length;
  } catch {
    header[DEATH_REASON] = 0;
  }
  Atomics.store(header, STATUS, DEAD);
  Atomics.notify(header, STATUS);
  Atomics.notify(header, TURN);
}

/** The reason the worker wrote when it died, or `""`. */
export function deathReason(buffer: SharedArrayBuffer, header: Int32Array): string {
  const length = slot(header, DEATH_REASON);
  if (!(length > 0)) return "";
  return new TextDecoder().decode(new Uint8Array(buffer, HEADER_BYTES, length).slice());
}

// ---------------------------------------------------------------------------------------------
// Errors across the bridge. Each error travels as a plain record (its class name, message and
// own fields) and is rebuilt on the other side as an instance of the same class: `instanceof`,
// `name`, `code`, the server's fields and the chain of causes survive.

/** An error as it crosses the bridge. */
export interface ErrorRecord {
  readonly name: string;
  /** The constructor's name, to rebuild the same class. */
  readonly type: string;
  readonly message: string;
  /** Own enumerable fields with cloneable values (`code`, `detail`, `field`, `attempts`, …). */
  readonly fields: Record<string, unknown>;
  readonly cause?: ErrorRecord | { readonly value: unknown };
}

type ErrorClass = new (...args: never[]) => Error;

const ERROR_CLASSES: ReadonlyMap<string, ErrorClass> = new Map(Object.entries({
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
  DatabaseError,
  ConnectionError,
  ValidationError,
  TableNotInitializedError,
  TableNotFoundError,
  RecordNotFoundError,
  UniqueViolationError,
  TransactionRetryError,
  AmbiguousCommitError,
  MigrationError,
}));

const MAX_CAUSE_DEPTH = 5;

function cloneable(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  const type = typeof value;
  if (type === "string" || type === "number" || type === "boolean" || type === "bigint") {
    return true;
  }
  if (type === "function" || type === "symbol") return false;
  try {
    serialize(value);
    return true;
  } catch {
    return false;
  }
}

/** Turns any thrown value into a record that `node:v8` can serialize. */
export function encodeError(error: unknown, depth = 0): ErrorRecord {
  if (!(error instanceof Error)) {
    return {
      name: "Error",
      type: "Error",
      message: typeof error === "string" ? error : `Non-error thrown: ${String(error)}`,
      fields: {},
    };
  }
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    if (key === "message" || key === "stack" || key === "cause") continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    if (cloneable(value)) fields[key] = value;
  }
  let type = error.constructor?.name ?? "Error";
  if (!ERROR_CLASSES.has(type)) type = "Error";
  const record: {
    name: string;
    type: string;
    message: string;
    fields: Record<string, unknown>;
    cause?: ErrorRecord | { value: unknown };
  } = { name: error.name, type, message: error.message, fields };
  if ("cause" in error && error.cause !== undefined && depth < MAX_CAUSE_DEPTH) {
    record.cause = error.cause instanceof Error
      ? encodeError(error.cause, depth + 1)
      : { value: cloneable(error.cause) ? error.cause : String(error.cause) };
  }
  return record;
}

/**
 * Rebuilds an error of the same class from its record. The instance is made by the built-in
 * `Error` constructor with the class as `new.target`, so it is a real error (stack captured on
 * this thread) whose prototype is the class's, and then it receives the original's own fields.
 */
export function decodeError(record: ErrorRecord): Error {
  const type = ERROR_CLASSES.get(record.type) ?? Error;
  let cause: unknown = undefined;
  if (record.cause !== undefined) {
    cause = "type" in record.cause ? decodeError(record.cause) : record.cause.value;
  }
  const error = Reflect.construct(
    Error,
    cause === undefined ? [record.message] : [record.message, { cause }],
    type,
  ) as Error;
  for (const [key, value] of Object.entries(record.fields)) {
    Object.defineProperty(error, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  if (!Object.hasOwn(record.fields, "name") && record.name !== type.name) {
    Object.defineProperty(error, "name", {
      value: record.name,
      writable: true,
      enumerable: false,
      configurable: true,
    });
  }
  return error;
}
