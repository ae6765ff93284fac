// One connection through the test proxy (a Link): it connects to the server, frames both
// directions (wire.ts), forwards the bytes through two delayed pipes (pipe.ts), counts turns,
// keeps the node's view of the session, and ends it as a node does (drained when idle,
// terminated, rejected at its startup, cut).
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
// The node's view of a connection (idle, in a transaction, answers owed) is taken where client
// bytes are forwarded to the server, after the delay: bytes still delayed are "on the wire", and
// a node that ends the session drops them, as a real one would.
import { closeQuietly, Pipe, writeAll } from "./pipe.ts";
import {
  ADMIN_SHUTDOWN,
  CANCEL_REQUEST,
  code,
  EXTENDED,
  Framer,
  FUNCTION_CALL,
  GSSENC_REQUEST,
  int32,
  NOT_ACCEPTING,
  QUERY,
  RAW_BYTE,
  READY,
  SSL_REQUEST,
  SYNC,
  TERMINATE,
  TERMINATE_MESSAGE,
  UNPROMPTED,
  UNTYPED,
} from "./wire.ts";

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

/** What a link needs of its proxy: the server, the delay, and where to report. */
export interface LinkHost {
  readonly target: Deno.ConnectOptions;
  delayMs(): number;
  /** The client's bytes as the server gets them (see `FaultProxy.rewrite()`). */
  rewrite(chunk: Uint8Array): Uint8Array;
  onTurn(delta: number): void;
  onRejected(): void;
  onEnded(link: Link): void;
}

/** One proxied connection. */
export class Link {
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
      bytes: this.#host.rewrite(chunk),
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
