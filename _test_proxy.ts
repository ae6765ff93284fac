// A TCP proxy in front of a PostgreSQL server, for tests and benches: it adds latency, counts
// protocol round trips ("turns") exactly, and plays a node that drains, dies and comes back.
// It frames the wire protocol in both directions (the untyped startup message, then a type byte
// and an int32 length) to find message boundaries, but forwards the bytes as they come.
//
// Turns. A turn is one wait of the client for the server. The proxy counts one each time the
// client starts a message (other than Terminate, or a CancelRequest, which nothing answers)
// after the server delivered something the client may have been waiting for: any message but
// the unprompted NoticeResponse, NotificationResponse and ParameterStatus, or the one-byte
// answer to SSLRequest. So a pipelined batch sent at once is 1 turn however many ReadyForQuery
// come back; "BEGIN, wait, SELECT" is 2; a new connection costs 1 for its startup (trust
// authentication; each password exchange adds 1); a statement prepared with Parse/Describe/Flush
// before its Bind/Execute/Sync costs 2, as it should (counting ReadyForQuery would miss that
// wait). Turns are counted where the client's bytes arrive, and an answer counts as delivered
// once the proxy starts writing it to the client, so a delay does not change the count. A
// client that writes one batch in several pieces while answers come back can be counted more
// than once: that is a race of the client, not of the proxy.
//
// The delay applies to every chunk, each way, in order. The TCP handshake and the close of a
// connection are not delayed (a real network adds a round trip to connect, and up to one to a
// close that waits for the server's).
//
// The node's view of a connection (idle, in a transaction, answers owed) is taken where client
// bytes are forwarded to the server, after the delay: bytes still delayed are "on the wire", and
// a node that ends the session drops them, as a real one would.

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

// Pseudo message types for the untyped ones.
const UNTYPED = 0;
const RAW_BYTE = 1;

const code = (c: string): number => c.charCodeAt(0);
const TERMINATE = code("X");
const QUERY = code("Q");
const SYNC = code("S");
const FUNCTION_CALL = code("F");
const READY = code("Z");
// What the server sends without being asked: answers nothing the client waits for.
const UNPROMPTED: ReadonlySet<number> = new Set([code("N"), code("A"), code("S")]);
// Extended-protocol messages answered only at the next Sync (or Flush).
const EXTENDED: ReadonlySet<number> = new Set(
  ["P", "B", "E", "D", "C", "H"].map(code),
);

const encoder = new TextEncoder();

/** A message the framer found complete. */
interface Message {
  /** Type byte, or `UNTYPED` (startup-like) or `RAW_BYTE` (answer to SSLRequest). */
  readonly type: number;
  /** The first bytes of the body (up to 8): a startup code, a status, an auth code. */
  readonly head: Uint8Array;
  /** Offset in the chunk just after the message. */
  readonly end: number;
}

/** What one chunk held. */
interface Framed {
  /** Types of the messages that start in the chunk. */
  readonly started: number[];
  readonly completed: Message[];
}

/** Finds message boundaries in one direction of a connection, a chunk at a time. */
class Framer {
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
        if (this.#headerLength === 0) started.push(this.untyped ? UNTYPED : chunk[i]);
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
        this.#type = this.untyped ? UNTYPED : this.#header[0];
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

function int32(head: Uint8Array): number {
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

const TERMINATE_MESSAGE = new Uint8Array([TERMINATE, 0, 0, 0, 4]);
/** What PostgreSQL says to a session it ends on a smart or fast shutdown. */
const ADMIN_SHUTDOWN = fatal("57P01", "terminating connection due to administrator command");
/** What a draining CockroachDB node answers to a new connection. */
const NOT_ACCEPTING = fatal("57P01", "server is not accepting clients, try another node");

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

interface Item {
  readonly bytes: Uint8Array;
  /** `performance.now()` before which the bytes are not written. */
  readonly due: number;
  /** Runs just before the bytes are written: from then on the peer may see them. */
  readonly before?: () => void;
}

/** How late `setTimeout` fires in this thread, in ms: a moving average. */
let timerLateness = 0;

/** One direction of a connection: writes queued chunks in order, each at its due time. */
class Pipe {
  readonly #conn: () => Deno.Conn | undefined;
  readonly #onError: () => void;
  readonly #queue: Item[] = [];
  /** Wakes the writer waiting for a chunk, or for the end. */
  #wake: (() => void) | undefined;
  /** Cuts the writer's wait for a chunk's due time short. */
  #cancelSleep: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ending = false;
  #stopped = false;
  readonly done: Promise<void>;
  /** Chunks written after a delay. */
  delayed = 0;

  constructor(conn: () => Deno.Conn | undefined, onError: () => void) {
    this.#conn = conn;
    this.#onError = onError;
    this.done = this.#run();
  }

  push(item: Item): void {
    if (this.#ending || this.#stopped) return;
    this.#queue.push(item);
    this.#poke();
  }

  /** Writes what is queued, then stops. */
  end(): void {
    this.#ending = true;
    this.#poke();
  }

  /** Stops now; queued chunks are dropped. */
  stop(): void {
    this.#stopped = true;
    this.#queue.length = 0;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const cancel = this.#cancelSleep;
    this.#cancelSleep = undefined;
    cancel?.();
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #sleep(ms: number): Promise<void> {
    // Timers fire late (about a millisecond, more on a busy machine), which would add to every
    // chunk's delay: ask for that much less, so that chunks leave on time on average.
    const asked = Math.max(0, ms - timerLateness);
    const start = performance.now();
    return new Promise<void>((resolve) => {
      this.#cancelSleep = resolve;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#cancelSleep = undefined;
        const late = performance.now() - start - asked;
        timerLateness += (Math.min(Math.max(late, 0), 5) - timerLateness) / 16;
        resolve();
      }, asked);
    });
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const item = this.#queue.shift();
      if (item === undefined) {
        if (this.#ending) return;
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      const wait = item.due - performance.now();
      if (wait > 0) {
        await this.#sleep(wait);
        if (this.#stopped) return;
        this.delayed++;
      }
      const conn = this.#conn();
      if (conn === undefined) return;
      item.before?.();
      try {
        await writeAll(conn, item.bytes);
      } catch {
        this.#stopped = true;
        this.#onError();
        return;
      }
    }
  }
}

/** How a connection through the proxy ended. */
export type EndReason = "client" | "server" | "drain" | "reject" | "kill" | "close";

/** One connection through the proxy, as the proxy sees it. */
export interface ConnectionInfo {
  /** Number of the connection, from 1, in the order the proxy accepted them. */
  readonly id: number;
  /** Turns (client waits for the server) since the connection opened or `resetTurns()`. */
  readonly turns: number;
  /** The status of the server's last `ReadyForQuery`: idle, in a transaction, failed. */
  readonly status: "I" | "T" | "E" | undefined;
  /** Queries and Syncs forwarded to the server that it has not answered with ReadyForQuery. */
  readonly pending: number;
  /** How the connection ended; `undefined` while it is open. */
  readonly ended: EndReason | undefined;
}

interface LinkHost {
  readonly target: Deno.ConnectOptions;
  delayMs(): number;
  onTurn(delta: number): void;
  onRejected(): void;
  onEnded(link: Link): void;
}

/** One proxied connection. */
class Link {
  readonly id: number;
  readonly #host: LinkHost;
  readonly #client: Deno.Conn;
  #server: Deno.Conn | undefined;
  readonly #fromClient = new Framer(true);
  readonly #fromServer = new Framer(false);
  readonly #toServer: Pipe;
  readonly #toClient: Pipe;
  /** The node refuses this session: it answers the startup with FATAL 57P01, then closes. */
  #rejecting: boolean;
  /** The client's startup message went to the server: a session exists. */
  #startupSent = false;
  /** The client sent Terminate: an end of the server that follows is the client's doing. */
  #clientTerminated = false;
  /** The server delivered an answer since the client's last turn began. */
  #answered = true;
  /** The node's view: the client's last message forwarded was a complete one. */
  #clientAtBoundary = true;
  /** The node's view: extended-protocol messages forwarded without their Sync yet. */
  #unsynced = false;
  #draining = false;
  turns = 0;
  status: "I" | "T" | "E" | undefined;
  pending = 0;
  ended: EndReason | undefined;
  readonly done: Promise<void>;

  constructor(id: number, client: Deno.Conn, host: LinkHost, rejecting: boolean) {
    this.id = id;
    this.#client = client;
    this.#host = host;
    this.#rejecting = rejecting;
    this.#toServer = new Pipe(() => this.#server, () => this.#finish("server"));
    this.#toClient = new Pipe(() => this.#client, () => this.#finish("client"));
    this.done = this.#run();
  }

  /** Accepted while the node refused sessions: it answers the startup with an error, then ends. */
  get rejecting(): boolean {
    return this.#rejecting;
  }

  get delayedChunks(): number {
    return this.#toServer.delayed + this.#toClient.delayed;
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      turns: this.turns,
      status: this.status,
      pending: this.pending,
      ended: this.ended,
    };
  }

  /** Idle outside a transaction, as the server sees it: nothing asked, nothing owed. */
  get #idle(): boolean {
    return this.status === "I" && this.pending === 0 && !this.#unsynced &&
      this.#clientAtBoundary;
  }

  /** Ends the session with FATAL 57P01 once it is idle outside a transaction (now, if it is). */
  drain(): void {
    if (this.ended !== undefined || this.#rejecting) return;
    if (!this.#startupSent) {
      // No session yet: the draining node answers the startup as it answers new connections.
      this.#rejecting = true;
      this.#host.onRejected();
      this.#toServer.stop();
      closeQuietly(this.#server);
      if (this.#fromServer.rawByte) {
        this.#fromServer.rawByte = false;
        this.#sendToClient(new Uint8Array([code("N")]), true);
        this.#fromClient.untyped = true;
      }
      return;
    }
    this.#draining = true;
    if (this.#idle) this.#terminate();
  }

  /** Ends the session with FATAL 57P01 now, in a transaction or not (a fast shutdown). */
  terminate(): void {
    if (this.ended === undefined && !this.#rejecting) this.#terminate();
  }

  /** Stops draining (the node is back); the session goes on. */
  undrain(): void {
    this.#draining = false;
  }

  /** Closes both sockets at once. */
  abort(reason: "kill" | "close"): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.#toServer.stop();
    this.#toClient.stop();
    closeQuietly(this.#client);
    closeQuietly(this.#server);
    this.#host.onEnded(this);
  }

  async #run(): Promise<void> {
    if (!this.#rejecting) {
      // The client's first bytes wait in the socket until the server is there to take them.
      try {
        const server = await Deno.connect(this.#host.target);
        if (this.ended !== undefined || this.#rejecting) {
          closeQuietly(server);
        } else {
          server.setNoDelay(true);
          this.#server = server;
        }
      } catch {
        this.#finish("server");
      }
    }
    const clientReader = this.#readClient();
    const serverReader = this.#server ? this.#readServer(this.#server) : Promise.resolve();
    await Promise.all([
      clientReader,
      serverReader,
      this.#toServer.done,
      this.#toClient.done,
    ]);
  }

  async #read(conn: Deno.Conn, onChunk: (chunk: Uint8Array) => void): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    while (this.ended === undefined) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch {
        n = null;
      }
      if (n === null) return;
      if (this.ended === undefined) onChunk(buffer.slice(0, n));
    }
  }

  async #readClient(): Promise<void> {
    await this.#read(this.#client, (chunk) => this.#onClientChunk(chunk));
    // The client's last bytes (its Terminate) still go to the server.
    this.#finish("client");
  }

  async #readServer(server: Deno.Conn): Promise<void> {
    await this.#read(server, (chunk) => this.#onServerChunk(chunk));
    // A session that a drain turned away before its startup closed the server on purpose.
    if (!this.#rejecting) this.#finish(this.#clientTerminated ? "client" : "server");
  }

  #onClientChunk(chunk: Uint8Array): void {
    const { started, completed } = this.#fromClient.push(chunk);
    for (const type of started) {
      if (type !== TERMINATE && this.#answered) {
        this.#answered = false;
        this.turns++;
        this.#host.onTurn(1);
      }
    }
    let requests = 0;
    let startup = false;
    let extended = false;
    for (const m of completed) {
      if (m.type === UNTYPED) {
        const request = int32(m.head);
        if (request === SSL_REQUEST || request === GSSENC_REQUEST) {
          if (this.#rejecting) {
            this.#sendToClient(new Uint8Array([code("N")]), true);
            this.#fromClient.untyped = true;
          } else this.#fromServer.rawByte = true;
        } else if (request === CANCEL_REQUEST) {
          // Nothing waits for it: the server closes a cancel connection without an answer.
          // (Its first byte was counted before the message could be told from a startup.)
          this.turns--;
          this.#host.onTurn(-1);
        } else if (this.#rejecting) {
          this.#sendToClient(NOT_ACCEPTING, true);
          this.#finish("reject");
        } else {
          startup = true;
          this.#startupSent = true;
        }
      } else if (m.type === TERMINATE) {
        this.#clientTerminated = true;
      } else if (m.type === QUERY || m.type === SYNC || m.type === FUNCTION_CALL) {
        requests++;
        extended = false;
      } else if (EXTENDED.has(m.type)) extended = true;
    }
    if (this.#rejecting) return;
    const atBoundary = this.#fromClient.atBoundary;
    this.#toServer.push({
      bytes: chunk,
      due: performance.now() + this.#host.delayMs(),
      before: () => {
        // A startup is answered by ReadyForQuery too.
        this.pending += requests + (startup ? 1 : 0);
        if (requests > 0) this.#unsynced = false;
        if (extended) this.#unsynced = true;
        this.#clientAtBoundary = atBoundary;
      },
    });
  }

  #onServerChunk(chunk: Uint8Array): void {
    const { completed } = this.#fromServer.push(chunk);
    let answers = false;
    let cut = -1;
    for (const m of completed) {
      if (m.type === RAW_BYTE) {
        answers = true;
        if (m.head[0] === code("N")) this.#fromClient.untyped = true;
        else {
          // TLS or GSS encryption: nothing more can be framed.
          this.#fromClient.opaque = true;
          this.#fromServer.opaque = true;
        }
        continue;
      }
      if (!UNPROMPTED.has(m.type)) answers = true;
      if (m.type === READY) {
        this.pending = Math.max(0, this.pending - 1);
        const status = String.fromCharCode(m.head[0] ?? 0);
        this.status = status === "I" || status === "T" || status === "E" ? status : undefined;
        if (this.#draining && this.#idle) {
          cut = m.end;
          break;
        }
      }
    }
    if (this.#fromServer.opaque || this.#fromClient.opaque) answers = true;
    this.#sendToClient(cut < 0 ? chunk : chunk.subarray(0, cut), answers);
    if (cut >= 0) this.#terminate();
  }

  #sendToClient(bytes: Uint8Array, answers: boolean): void {
    this.#toClient.push({
      bytes,
      due: performance.now() + this.#host.delayMs(),
      // Set before the write, not after: a client in this process may answer before the
      // proxy's write resumes, and its next message must count as a new turn.
      before: answers ? () => this.#answered = true : undefined,
    });
  }

  /** Ends the session as a server does: FATAL 57P01 to the client, Terminate to the server. */
  #terminate(): void {
    this.ended = "drain";
    // Client bytes not yet forwarded were on the wire to a node that is going away.
    this.#toServer.stop();
    const server = this.#server;
    if (server) {
      writeAll(server, TERMINATE_MESSAGE).catch(() => {}).finally(() => closeQuietly(server));
    }
    // The client reads the error after what the server sent before it, then the close; a
    // client in the middle of a message gets no error, only the close.
    if (this.#fromServer.atBoundary && !this.#fromServer.opaque) {
      this.#toClient.push({
        bytes: ADMIN_SHUTDOWN,
        due: performance.now() + this.#host.delayMs(),
      });
    }
    this.#toClient.end();
    this.#toClient.done.then(() => closeQuietly(this.#client));
    this.#host.onEnded(this);
  }

  /** One side closed or failed: the other gets what was already on its way, then the close. */
  #finish(reason: EndReason): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    if (reason === "client") {
      this.#toClient.stop();
      this.#toServer.end();
      this.#toServer.done.then(() => {
        closeQuietly(this.#server);
        closeQuietly(this.#client);
      });
    } else {
      this.#toServer.stop();
      this.#toClient.end();
      this.#toClient.done.then(() => {
        closeQuietly(this.#client);
        closeQuietly(this.#server);
      });
    }
    this.#host.onEnded(this);
  }
}

/** Counters of a proxy's life (never reset). */
export interface ProxyStats {
  /** TCP connections accepted, the rejected ones included. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Sessions ended with FATAL 57P01 by `drain()` (or its timeout). */
  readonly endedByDrain: number;
  /** New connections answered with FATAL 57P01 because the proxy was draining. */
  readonly rejected: number;
  /** Connections cut by `kill()`. */
  readonly killed: number;
  /** Chunks written after a delay, both ways. */
  readonly delayedChunks: number;
}

/** Options of {@linkcode FaultProxy.start}. */
export interface FaultProxyOptions {
  /**
   * Milliseconds added to every chunk, each way (so a round trip gains twice this).
   * @default {0}
   */
  readonly delay?: number;
  /**
   * Port to listen on (127.0.0.1); 0 picks a free one.
   * @default {0}
   */
  readonly port?: number;
}

/** Options of {@linkcode FaultProxy.drain}. */
export interface DrainOptions {
  /**
   * What new connection attempts get: `"reject"` answers their startup with FATAL 57P01
   * "server is not accepting clients, try another node" (a draining CockroachDB node);
   * `"refuse"` closes the listening socket (connection refused, a node that has stopped).
   * @default {"reject"}
   */
  readonly newConnections?: "reject" | "refuse";
  /**
   * Milliseconds after which sessions still open (in a transaction) are ended with FATAL
   * 57P01 anyway, as a fast shutdown or CockroachDB's `server.shutdown.connection_wait` does.
   * @default {Infinity}
   */
  readonly timeout?: number;
}

/**
 * A TCP proxy in front of a PostgreSQL server that adds latency, counts round trips, and
 * drains, kills and restores like a database node. For tests and benches only.
 */
export class FaultProxy implements AsyncDisposable {
  /** Host the proxy listens on. */
  readonly hostname = "127.0.0.1";
  /** Port the proxy listens on (kept across `kill()` and `restore()`). */
  readonly port: number;
  /** Milliseconds added to every chunk, each way; may be changed at any time. */
  delay: number;
  #listener: Deno.TcpListener | undefined;
  readonly #links = new Set<Link>();
  /** Links that ended whose sockets are not closed yet. */
  readonly #closing = new Set<Link>();
  readonly #ended: Link[] = [];
  readonly #work = new Set<Promise<void>>();
  #nextId = 1;
  #turns = 0;
  #accepted = 0;
  #endedByDrain = 0;
  #rejected = 0;
  #killed = 0;
  #delayedOfEnded = 0;
  #draining = false;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #drainWaiters: (() => void)[] = [];
  #closed = false;
  readonly #host: LinkHost;

  private constructor(target: Deno.ConnectOptions, listener: Deno.TcpListener, delay: number) {
    this.port = (listener.addr as Deno.NetAddr).port;
    this.delay = delay;
    this.#host = {
      target,
      delayMs: () => this.delay,
      onTurn: (delta) => this.#turns += delta,
      onRejected: () => this.#rejected++,
      onEnded: (link) => this.#onEnded(link),
    };
    this.#listen(listener);
  }

  /**
   * Starts a proxy to the server of `target` (a `postgresql://` URL, whose first host is used,
   * or a host and port).
   */
  static start(
    target: string | Deno.ConnectOptions,
    options: FaultProxyOptions = {},
  ): Promise<FaultProxy> {
    const to = typeof target === "string" ? targetOf(target) : target;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
    return Promise.resolve(new FaultProxy(to, listener, options.delay ?? 0));
  }

  /** `host:port` of the proxy. */
  get address(): string {
    return `${this.hostname}:${this.port}`;
  }

  /** `url` (a `postgresql://` URL) with its host list replaced by this proxy. */
  url(url: string): string {
    return withHosts(url, [this.address]);
  }

  /** Turns counted on every connection since the start or `resetTurns()`. */
  get turns(): number {
    return this.#turns;
  }

  /** Connections open now, and those that ended since the start or `resetTurns()`. */
  connections(): ConnectionInfo[] {
    return [...this.#ended, ...this.#links].sort((a, b) => a.id - b.id).map((l) => l.info());
  }

  /** Sets every turn counter to 0 and forgets the connections that ended. */
  resetTurns(): void {
    this.#turns = 0;
    this.#ended.length = 0;
    for (const link of this.#links) link.turns = 0;
  }

  /** Counters of the proxy's life. */
  get stats(): ProxyStats {
    let delayed = this.#delayedOfEnded;
    for (const link of this.#links) delayed += link.delayedChunks;
    return {
      accepted: this.#accepted,
      open: this.#links.size,
      endedByDrain: this.#endedByDrain,
      rejected: this.#rejected,
      killed: this.#killed,
      delayedChunks: delayed,
    };
  }

  /**
   * Drains the node: new connections are rejected (or refused), and each open session is
   * ended with FATAL 57P01 "terminating connection due to administrator command" once it is
   * idle outside a transaction (the server's last ReadyForQuery said 'I' and nothing was sent
   * since) — a session in a transaction gets it when the transaction ends. A connection whose
   * startup has not reached the server yet is answered as a new one. Resolves once every
   * session has ended and its sockets are closed, or on `restore()`, `kill()` or `close()`.
   */
  drain(options: DrainOptions = {}): Promise<void> {
    this.#draining = true;
    if (options.newConnections === "refuse") this.#stopListening();
    const done = new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    for (const link of [...this.#links]) link.drain();
    const timeout = options.timeout ?? Infinity;
    if (Number.isFinite(timeout) && this.#drainTimer === undefined) {
      this.#drainTimer = setTimeout(() => {
        this.#drainTimer = undefined;
        for (const link of [...this.#links]) link.terminate();
      }, Math.max(0, timeout));
    }
    this.#checkDrained();
    return done;
  }

  /** Closes every connection at once, both sides, and refuses new ones until `restore()`. */
  kill(): void {
    this.#stopListening();
    for (const link of [...this.#links]) link.abort("kill");
    this.#endDrain();
  }

  /** Accepts connections again, after `drain()` or `kill()`, on the same port. */
  restore(): void {
    if (this.#closed) throw new Error(`Cannot restore proxy "${this.address}": it is closed`);
    this.#endDrain();
    for (const link of this.#links) link.undrain();
    if (this.#listener === undefined) {
      this.#listen(Deno.listen({ hostname: this.hostname, port: this.port }));
    }
  }

  /** Closes the listener and every connection, and waits until everything has ended. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopListening();
    for (const link of [...this.#links]) link.abort("close");
    this.#endDrain();
    while (this.#work.size > 0) await Promise.all([...this.#work]);
  }

  /** Same as `close()`: `await using proxy = await FaultProxy.start(url)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #stopListening(): void {
    const listener = this.#listener;
    this.#listener = undefined;
    try {
      listener?.close();
    } catch {
      // Already closed.
    }
  }

  #listen(listener: Deno.TcpListener): void {
    this.#listener = listener;
    const work = this.#accept(listener).finally(() => this.#work.delete(work));
    this.#work.add(work);
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // The listener was closed.
      }
      if (this.#closed || this.#listener !== listener) {
        closeQuietly(conn);
        continue;
      }
      conn.setNoDelay(true);
      this.#accepted++;
      if (this.#draining) this.#rejected++;
      const link = new Link(this.#nextId++, conn, this.#host, this.#draining);
      this.#links.add(link);
      const work = link.done.finally(() => this.#work.delete(work));
      this.#work.add(work);
    }
  }

  #onEnded(link: Link): void {
    if (!this.#links.delete(link)) return;
    this.#ended.push(link);
    if (link.ended === "drain") this.#endedByDrain++;
    if (link.ended === "kill") this.#killed++;
    this.#closing.add(link);
    // Its pipes stop counting once they are done; take the count then.
    const work = link.done.then(() => {
      this.#delayedOfEnded += link.delayedChunks;
      this.#closing.delete(link);
      this.#checkDrained();
    }).finally(() => this.#work.delete(work));
    this.#work.add(work);
  }

  #checkDrained(): void {
    if (!this.#draining) return;
    // Connections rejected at their startup are on their way out already.
    for (const link of [...this.#links, ...this.#closing]) if (!link.rejecting) return;
    this.#releaseDrainWaiters();
  }

  #endDrain(): void {
    this.#draining = false;
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    this.#releaseDrainWaiters();
  }

  #releaseDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Options of {@linkcode FaultCluster.start}. */
export interface FaultClusterOptions extends Omit<FaultProxyOptions, "port"> {
  /**
   * Number of nodes (proxies).
   * @default {3}
   */
  readonly nodes?: number;
}

/** N proxies in front of one server, standing for the nodes of a cluster. */
export class FaultCluster implements AsyncDisposable {
  /** The nodes, in the order of the URL's host list. */
  readonly nodes: readonly FaultProxy[];
  /** The server's URL with every node in its host list (`postgresql://u@h:p1,h:p2,h:p3/db`). */
  readonly url: string;

  private constructor(nodes: readonly FaultProxy[], url: string) {
    this.nodes = nodes;
    this.url = url;
  }

  /** Starts `nodes` proxies in front of the server of `url`. */
  static async start(url: string, options: FaultClusterOptions = {}): Promise<FaultCluster> {
    const count = options.nodes ?? 3;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`Cannot start cluster of "${count}" nodes: not a positive integer`);
    }
    const nodes: FaultProxy[] = [];
    for (let i = 0; i < count; i++) nodes.push(await FaultProxy.start(url, options));
    return new FaultCluster(nodes, withHosts(url, nodes.map((n) => n.address)));
  }

  /** Turns counted on every node. */
  get turns(): number {
    return this.nodes.reduce((sum, n) => sum + n.turns, 0);
  }

  /** Resets the turn counters of every node. */
  resetTurns(): void {
    for (const node of this.nodes) node.resetTurns();
  }

  /** Closes every node. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.close()));
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const URL_PARTS = /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/i;

/** The first host and port of a `postgresql://` URL. */
function targetOf(url: string): Deno.ConnectOptions {
  const match = URL_PARTS.exec(url);
  const first = match?.[3].split(",")[0] ?? "";
  const hostPort = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(first);
  if (!match || !hostPort || hostPort[1] === "") {
    throw new TypeError(`Cannot proxy "${url.replace(/:[^:@/]*@/, ":***@")}": no host in URL`);
  }
  return {
    hostname: hostPort[1].replace(/^\[|\]$/g, ""),
    port: hostPort[2] ? Number(hostPort[2]) : 5432,
  };
}

/** `url` with its host list replaced. */
function withHosts(url: string, hosts: readonly string[]): string {
  const match = URL_PARTS.exec(url);
  if (!match) throw new TypeError(`Cannot proxy URL: not a URL`);
  return `${match[1]}${match[2] ?? ""}${hosts.join(",")}${match[4]}`;
}
