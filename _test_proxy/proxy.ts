// FaultProxy: a TCP proxy in front of a PostgreSQL server that adds latency, counts turns, and
// drains, kills and restores like a database node. It accepts connections, each a Link
// (link.ts), and keeps the counters of its life.
import { type ConnectionInfo, Link, type LinkHost } from "./link.ts";
import { closeQuietly } from "./pipe.ts";

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
      rewrite: (chunk) => this.#rewrite(chunk),
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

  #rewrites: { from: Uint8Array; to: Uint8Array; left: number }[] = [];

  /**
   * Test hook: the next `times` occurrences of `from` in what clients send (found within one
   * chunk) reach the server as `to`, which has the same length in UTF-8: a statement's text can
   * be made one that the server refuses (`BEGIN` into `BOGUS`), the protocol framing intact.
   */
  rewrite(from: string, to: string, times = 1): void {
    const encoder = new TextEncoder();
    const pair = { from: encoder.encode(from), to: encoder.encode(to), left: times };
    if (pair.from.length !== pair.to.length || pair.from.length === 0) {
      throw new RangeError(`Cannot rewrite "${from}" as "${to}": the lengths differ`);
    }
    this.#rewrites.push(pair);
  }

  #rewrite(chunk: Uint8Array): Uint8Array {
    if (this.#rewrites.length === 0) return chunk;
    for (const pair of this.#rewrites) {
      for (let i = 0; pair.left > 0 && i + pair.from.length <= chunk.length; i++) {
        let match = true;
        for (let j = 0; match && j < pair.from.length; j++) match = chunk[i + j] === pair.from[j];
        if (!match) continue;
        chunk.set(pair.to, i);
        pair.left--;
      }
    }
    this.#rewrites = this.#rewrites.filter((pair) => pair.left > 0);
    return chunk;
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

const URL_PARTS = /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/i;

/** The first host and port of a `postgresql://` URL. */
function targetOf(url: string): Deno.ConnectOptions {
  const match = URL_PARTS.exec(url);
  const first = match?.[3]?.split(",")[0] ?? "";
  const [, host, port] = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(first) ?? [];
  if (!match || !host) {
    throw new TypeError(`Cannot proxy "${url.replace(/:[^:@/]*@/, ":***@")}": no host in URL`);
  }
  return {
    hostname: host.replace(/^\[|\]$/g, ""),
    port: port ? Number(port) : 5432,
  };
}

/** `url` with its host list replaced. */
export function withHosts(url: string, hosts: readonly string[]): string {
  const match = URL_PARTS.exec(url);
  if (!match) throw new TypeError(`Cannot proxy URL: not a URL`);
  return `${match[1]}${match[2] ?? ""}${hosts.join(",")}${match[4]}`;
}
