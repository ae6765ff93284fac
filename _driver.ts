// The driver seam: the only modules that import postgres.js are this one and the `_driver_*.ts`
// modules it is made of. Everything above it sees sessions that run text with bind parameters
// and answer rows, a command tag and a count, and errors already turned into this package's
// classes. This module holds the seam's interfaces and opens the pool; the statement path is in
// `_driver_statement.ts`, a reserved connection in `_driver_reserved.ts`, the pool's types in
// `_driver_types.ts`, postgres.js's shapes in `_driver_pg.ts` (docs/vendored-driver.md says what
// the vendored copy fixes and which workarounds stay).
// No patch covers end() waiting its whole timeout after a backend was terminated under a
// statement (hence timeout 0 when nothing is in flight), nor the COPY error after the data that
// 3.4.9 drops (hence copy()'s reject hook).
import { createHostChooser, type HostChooser } from "./_hosts.ts";
import { hexToBytes, int8Parser, parseTimestamp } from "./_pg_text.ts";
import type { TlsSettings } from "./_tls.ts";
import type { ResolvedConfig } from "./_config.ts";
import { describeTarget, hostList } from "./_config.ts";
import { type PgConnection, postgres, type postgresTypes, type Sql } from "./_driver_pg.ts";
import { createPoolTypes } from "./_driver_types.ts";
import { copy, pooled } from "./_driver_statement.ts";
import { reserve, type ReservedState, type ReservingPool } from "./_driver_reserved.ts";
import { parseJson } from "./_json.ts";

// The pool is opened with the TLS settings of loadTls(); re-exported for the database module.
export { loadTls, type TlsSettings } from "./_tls.ts";
export { aborted } from "./_driver_statement.ts";
export { PipelineRefused } from "./_driver_reserved.ts";

/** A row as returned by the driver: column name → value. */
export type Row = Record<string, unknown>;

/** What one statement returned. */
export interface QueryResult {
  /** The rows of the statement (of the last statement, for multi-statement text). */
  readonly rows: Row[];
  /** The command tag's verb, e.g. `INSERT`, `COMMIT`, `ROLLBACK`. */
  readonly command: string;
  /** Rows affected or returned, from the command tag. */
  readonly count: number;
  /** Sends it took (more than 1 when the pool sent it again: a conflict, or a provable loss). */
  readonly attempts?: number;
  /** `host:port` of the connection that answered, when asked for (`QueryOptions.host`). */
  readonly host?: string;
}

/** How a statement is sent. */
export interface QueryOptions {
  /**
   * Use a named prepared statement (cached per connection by text).
   * @default {true}
   */
  readonly prepare?: boolean;
  /**
   * Use the simple query protocol (several statements, no parameters).
   * @default {true when there are no parameters}
   */
  readonly simple?: boolean;
  /** Aborts the statement: a cancel request when it runs, nothing sent when it has not yet. */
  readonly signal?: AbortSignal;
  /** Answer the connection's `host:port` in the result (costs a callback per statement). */
  readonly host?: boolean;
}

/** One statement of a chain (see {@linkcode ReservedSession.pipeline}). */
export interface PipelineItem {
  readonly text: string;
  readonly params?: readonly unknown[];
  /**
   * Use a named prepared statement (cached per connection by text).
   * @default {true with parameters, false without}
   */
  readonly prepare?: boolean;
  /** Its signal and whether to answer the host; it always goes by the extended protocol. */
  readonly options?: Pick<QueryOptions, "signal" | "host">;
}

/** Something statements can be sent to: the pool, or one reserved connection. */
export interface Session {
  query(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult>;
  /** Runs `COPY … FROM STDIN` with the given text-format data. */
  copyIn(text: string, data: string, signal?: AbortSignal): Promise<void>;
}

/** One connection taken out of the pool until `release()`. */
export interface ReservedSession extends Session {
  /** True once the connection was closed under the session; nothing more is sent on it. */
  readonly lost: boolean;
  /**
   * The statement whose failure lost the connection provably never ran: never written, queued
   * behind another, or met by the server's session-end error before any answer.
   */
  readonly unsent: boolean;
  /** Returns the connection to the pool (or drops it, if it was lost). */
  release(): void;
  /**
   * Sends the statements at once, with one Sync after the last: a chain. They run in order
   * until one fails; those after it do not run, and fail with code `CHAIN_SKIPPED` (the failure
   * as `cause`). Without a `BEGIN` among them they run as one implicit transaction. Every
   * statement but the last must need no describe round trip: no parameters, or parameter types
   * the pool knows (`known()`). Values are checked before anything is sent: for a refused one it
   * throws `PipelineRefused`, and sends nothing.
   */
  pipeline(items: readonly PipelineItem[]): Promise<QueryResult>[];
  /**
   * The transaction status of the connection's last ReadyForQuery: `I` idle, `T` in a
   * transaction, `E` in a failed one; undefined before its first statement.
   */
  readonly status: "I" | "T" | "E" | undefined;
  /**
   * Makes every statement fit anywhere in a chain: those whose parameter types the pool does
   * not know yet are described, all in one write (one round trip), and the server's types they
   * use are read if the pool has not met them. Resolves with the first statement that failed
   * (its index and error), or undefined.
   */
  describe(items: readonly PipelineItem[]): Promise<{ index: number; error: Error } | undefined>;
  /**
   * Whether the statement fits anywhere in a chain now: no parameters, or parameter types the
   * pool (or this connection) knows, of types the pool has read. A refused value counts as
   * known: `pipeline()` refuses it before anything is sent.
   */
  known(item: PipelineItem): boolean;
}

/** The answer to item `index` of a chain: `pipeline()` gives one per item, in order. */
export function answerOf(
  answers: readonly Promise<QueryResult>[],
  index: number,
): Promise<QueryResult> {
  const answer = answers[index];
  if (answer === undefined) {
    throw new RangeError(`Cannot find the answer to item ${index} of a chain of ${answers.length}`);
  }
  return answer;
}

/** The pool. */
export interface Driver extends Session {
  reserve(): Promise<ReservedSession>;
  /** The pool's numbers now: connections idle and used, requests waiting, and since start. */
  counts(): DriverCounts;
  /** Closes every connection, waiting at most `timeout` seconds for work in flight. */
  end(timeout?: number): Promise<void>;
  /** Human-readable target, without secrets. */
  readonly target: string;
  /**
   * The server's settings as it reported them when a connection started (ParameterStatus:
   * `server_version`, and on CockroachDB `crdb_version`); empty until one has started.
   */
  readonly parameters: Readonly<Record<string, string>>;
}

/** The pool's numbers: the connections now, and the connections opened and closed so far. */
export interface DriverCounts {
  readonly idle: number;
  readonly used: number;
  readonly pending: number;
  readonly max: number;
  readonly opened: number;
  readonly closed: number;
}

/** What the driver tells whoever observes the pool. */
export interface DriverHooks {
  /** A connection opened, after `ms` milliseconds (its failed hosts included). */
  connected?(ms: number): void;
  /** A request waited `ms` milliseconds for a connection of its own. */
  waited?(ms: number): void;
  /** The pool sends a statement again, after it failed with `code`. */
  resent?(code: string): void;
}

/** Opens a pool for the resolved configuration. Nothing connects until the first statement. */
export function createDriver(
  config: ResolvedConfig,
  tls: TlsSettings | undefined,
  hooks: DriverHooks = {},
): Driver {
  const target = describeTarget(config);
  const hostPort = (index: number): string =>
    `${config.hosts[index] ?? config.hosts[0]}:${config.ports[index] ?? config.ports[0]}`;
  const hostPorts = hostList(config);
  const reservedById = new Map<number, ReservedState>();
  const connection: Record<string, string> = { application_name: config.applicationName };
  if (config.statementTimeout !== undefined) {
    connection.statement_timeout = String(Math.round(config.statementTimeout));
  }
  if (config.serverOptions !== undefined) connection.options = config.serverOptions;
  const sql: Sql = postgres({
    host: [...config.hosts] as unknown as string,
    port: [...config.ports] as unknown as number,
    database: config.database,
    user: config.user,
    ...(config.password === undefined ? {} : { password: config.password }),
    // Never pass the ssl key as undefined: postgres.js then disables TLS whatever the URL says.
    ssl: tls === undefined ? false : tls as unknown as boolean,
    max: config.maxConnections,
    // postgres.js grows its reconnect delay with every errored close and never lowers it for
    // reserved connections (up to 20 s); keep it short and capped.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2),
    idle_timeout: config.idleTimeout === 0 ? null as unknown as number : config.idleTimeout,
    connect_timeout: config.connectTimeout,
    // A function is evaluated per connection: each gets its own ±10 % jitter.
    max_lifetime: config.maxLifetime === 0
      ? null
      : (() => config.maxLifetime * (0.9 + Math.random() * 0.2)) as unknown as number,
    prepare: true,
    fetch_types: false,
    debug: false,
    target_session_attrs: undefined,
    connection,
    onnotice: (notice: Record<string, string | undefined>) => {
      const n = {
        severity: notice.severity ?? notice.severity_local ?? "NOTICE",
        code: notice.code ?? "00000",
        message: notice.message ?? "",
        ...(notice.detail === undefined ? {} : { detail: notice.detail }),
        ...(notice.hint === undefined ? {} : { hint: notice.hint }),
      };
      try {
        config.onNotice(n);
      } catch (error) {
        // A throwing handler must not break the connection's message loop.
        queueMicrotask(() => {
          throw error;
        });
      }
    },
    onclose: (id: number) => {
      const session = reservedById.get(id);
      if (session) {
        session.lost = true;
        session.closed = true;
        session.onClosed?.();
        if (session.released) reservedById.delete(id);
      }
    },
    types: {
      timestamp: {
        to: 1184,
        from: [1082, 1114, 1184],
        parse: parseTimestamp,
      },
      // postgres.js reads json with JSON.parse, which V8 gets wrong for some escaped keys.
      // (Serializers are set below, for every type.)
      json: { to: 114, from: [114, 3802], parse: parseJson },
      int8: {
        to: 20,
        from: [20],
        parse: int8Parser(config.int8),
      },
      bytea: {
        to: 17,
        from: [17],
        parse: hexToBytes,
      },
    } as unknown as Record<string, postgresTypes.PostgresType>,
  } as postgresTypes.Options<Record<string, postgresTypes.PostgresType>>);
  // Before anything connects: the serializers and the built-in array types, for the pool.
  const pool: ReservingPool = {
    sql,
    hostPorts,
    hostPort,
    types: createPoolTypes(sql, hostPorts),
    hooks,
    retry: { enabled: config.retryStatements, ...config.retry },
    inFlight: 0,
    ending: false,
    reservedById,
    closing: new Set(),
    reservedCount: 0,
  };
  // Which host each new connection tries first, and next (patch 0015). When a drain is seen on
  // a host, its idle connections are closed before they are used: they are about to be ended.
  const pg = sql as unknown as {
    retire(test: (c: PgConnection) => boolean): void;
    counts(): Omit<DriverCounts, "opened" | "closed"> & { connecting: number };
  };
  const chooser = createHostChooser(config.hosts.length, {
    mode: config.loadBalanceHosts,
    now: () => performance.now(),
    random: Math.random,
    onDrain: (index) => pg.retire((c) => c.hostIndex === index),
  });
  // The chooser hears every connection open and close: the pool's counts since start.
  let opened = 0;
  let closedCount = 0;
  (sql.options as unknown as { shared: { hosts: HostChooser } }).shared.hosts = {
    next: (tried) => chooser.next(tried),
    failed: (index, error) => chooser.failed(index, error),
    connected(index, ms) {
      opened++;
      chooser.connected(index, ms);
      if (ms !== undefined) hooks.connected?.(ms);
    },
    ended(index, error) {
      closedCount++;
      chooser.ended(index, error);
    },
  };

  return {
    target,
    get parameters() {
      return sql.parameters as Record<string, string>;
    },
    query: (text, params = [], options) => pooled(pool, text, params, options, 1),
    counts() {
      const { idle, used, pending, max } = pg.counts();
      return { idle, used, pending, max, opened, closed: closedCount };
    },
    copyIn: (text, data, signal) => copy(pool, sql, text, data, signal),
    reserve: () => reserve(pool),
    async end(timeout = 5): Promise<void> {
      pool.ending = true;
      // postgres.js waits the whole timeout for a connection whose backend was killed under a
      // statement; with nothing of ours in flight there is nothing to wait for.
      await sql.end({
        timeout: pool.inFlight === 0 && pool.reservedCount === 0 ? 0 : timeout,
      });
    },
  };
}
