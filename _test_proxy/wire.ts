// The PostgreSQL wire protocol as the test proxy needs it: message boundaries found in one
// direction of a connection, a chunk at a time (the untyped startup message, then a type byte
// and an int32 length; an opaque stream once TLS starts), the message types that matter to
// turns and to the node's view of a session, and the FATAL messages a node sends when it ends a
// session or turns a new one away.

export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

// Pseudo message types for the untyped ones.
export const UNTYPED = 0;
export const RAW_BYTE = 1;

export const code = (c: string): number => c.charCodeAt(0);
export const TERMINATE = code("X");
export const QUERY = code("Q");
export const SYNC = code("S");
export const FUNCTION_CALL = code("F");
export const READY = code("Z");
// What the server sends without being asked: answers nothing the client waits for.
export const UNPROMPTED: ReadonlySet<number> = new Set([code("N"), code("A"), code("S")]);
// Extended-protocol messages answered only at the next Sync (or Flush).
export const EXTENDED: ReadonlySet<number> = new Set(
  ["P", "B", "E", "D", "C", "H"].map(code),
);

const encoder = new TextEncoder();

/** A message the framer found complete. */
export interface Message {
  /** Type byte, or `UNTYPED` (startup-like) or `RAW_BYTE` (answer to SSLRequest). */
  readonly type: number;
  /** The first bytes of the body (up to 8): a startup code, a status, an auth code. */
  readonly head: Uint8Array;
  /** Offset in the chunk just after the message. */
  readonly end: number;
}

/** What one chunk held. */
export interface Framed {
  /** Types of the messages that start in the chunk. */
  readonly started: number[];
  readonly completed: Message[];
}

/** Finds message boundaries in one direction of a connection, a chunk at a time. */
export class Framer {
  /** The next message has no type byte (a client's first message, and its next after 'N'). */
  untyped: boolean;
  /** The next byte is a bare answer to SSLRequest or GSSENCRequest. */
  rawByte = false;
  /** Framing lost (TLS, or bytes that are not the protocol): bytes pass uncounted. */
  opaque = false;
  readonly #header = new Uint8Array(5);
  #headerLength = 0;
  #inBody = false;
  #remaining = 0;
  #type = 0;
  readonly #head = new Uint8Array(8);
  #headLength = 0;

  constructor(untyped: boolean) {
    this.untyped = untyped;
  }

  /** True between messages. */
  get atBoundary(): boolean {
    return !this.#inBody && this.#headerLength === 0;
  }

  push(chunk: Uint8Array): Framed {
    const started: number[] = [];
    const completed: Message[] = [];
    let i = 0;
    while (i < chunk.length && !this.opaque) {
      if (this.rawByte) {
        this.rawByte = false;
        started.push(RAW_BYTE);
        completed.push({ type: RAW_BYTE, head: chunk.slice(i, i + 1), end: i + 1 });
        i++;
        continue;
      }
      if (!this.#inBody) {
        const size = this.untyped ? 4 : 5;
        if (this.#headerLength === 0) started.push(this.untyped ? UNTYPED : chunk[i]!);
        const n = Math.min(size - this.#headerLength, chunk.length - i);
        this.#header.set(chunk.subarray(i, i + n), this.#headerLength);
        this.#headerLength += n;
        i += n;
        if (this.#headerLength < size) break;
        const view = new DataView(this.#header.buffer);
        const length = view.getInt32(size - 4);
        if (length < 4) {
          this.opaque = true;
          break;
        }
        this.#type = this.untyped ? UNTYPED : view.getUint8(0);
        this.untyped = false;
        this.#remaining = length - 4;
        this.#headLength = 0;
        this.#inBody = true;
      }
      const n = Math.min(this.#remaining, chunk.length - i);
      const keep = Math.min(n, this.#head.length - this.#headLength);
      this.#head.set(chunk.subarray(i, i + keep), this.#headLength);
      this.#headLength += keep;
      this.#remaining -= n;
      i += n;
      if (this.#remaining === 0) {
        completed.push({ type: this.#type, head: this.#head.slice(0, this.#headLength), end: i });
        this.#inBody = false;
        this.#headerLength = 0;
      }
    }
    return { started, completed };
  }
}

/** The int32 a message's head starts with (a startup code, an auth code), or -1. */
export function int32(head: Uint8Array): number {
  return head.length >= 4 ? new DataView(head.buffer, head.byteOffset).getInt32(0) : -1;
}

/** An `ErrorResponse` with severity FATAL, as a server sends before it closes a session. */
function fatal(sqlState: string, message: string): Uint8Array {
  const fields = [["S", "FATAL"], ["V", "FATAL"], ["C", sqlState], ["M", message]]
    .map(([tag, value]) => `${tag}${value}\0`).join("") + "\0";
  const body = encoder.encode(fields);
  const bytes = new Uint8Array(5 + body.length);
  bytes[0] = code("E");
  new DataView(bytes.buffer).setInt32(1, 4 + body.length);
  bytes.set(body, 5);
  return bytes;
}

export const TERMINATE_MESSAGE = new Uint8Array([TERMINATE, 0, 0, 0, 4]);
/** What PostgreSQL says to a session it ends on a smart or fast shutdown. */
export const ADMIN_SHUTDOWN = fatal("57P01", "terminating connection due to administrator command");
/** What a draining CockroachDB node answers to a new connection. */
export const NOT_ACCEPTING = fatal("57P01", "server is not accepting clients, try another node");
