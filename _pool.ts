// The pool behind an `AsyncDatabase`: opening it lazily (once, however many callers wait),
// learning the server from the first connection's start-up, and closing it, including a connect
// still in progress. The public class passes statements through; everything about the driver's
// lifecycle is here.
import { describeTarget, hostList, type ResolvedConfig } from "./_config.ts";
import {
  createDriver,
  type Driver,
  loadTls,
  type QueryOptions,
  type QueryResult,
  type ReservedSession,
} from "./_driver.ts";
import { toDatabaseError } from "./_errors.ts";
import { Observer, type QueryCall } from "./_observe.ts";
import type { Dialect } from "./_sql.ts";
import { ConnectionError, DatabaseError } from "./errors.ts";

const PREPARED: QueryOptions = Object.freeze({ prepare: true });
const WITH_HOST: QueryOptions = Object.freeze({ prepare: true, host: true });

/**
 * How a statement is sent: prepared when it has parameters, asking for the host when the
 * observer shows it, with the signal that aborts it (the common case allocates nothing).
 */
export function statementOptions(
  wantsHost: boolean,
  params: readonly unknown[],
  signal: AbortSignal | undefined,
): QueryOptions | undefined {
  const base = wantsHost ? WITH_HOST : params.length === 0 ? undefined : PREPARED;
  return signal === undefined ? base : { ...base, signal };
}

/** One database's connections, opened on first use and closed once. */
export class Pool {
  readonly #config: ResolvedConfig;
  #driver: Driver | undefined;
  #connecting: Promise<Driver> | undefined;
  /** The close() in progress, for a second close() to wait on. */
  #ending: Promise<void> | undefined;
  /** The connect in progress, with its driver once made, so that close() can end it. */
  #opening: { driver?: Driver } | undefined;
  /** Set by close(): every later call fails. */
  #closed = false;
  #dialect: Dialect | undefined;
  /** `SELECT version()` confirmed the dialect (see dialect()). */
  #confirmed: Promise<Dialect> | undefined;
  /** What this pool tells about its work. */
  readonly observer: Observer;

  constructor(config: ResolvedConfig) {
    this.#config = config;
    this.observer = new Observer(config);
  }

  /**
   * The server's version as it reports it when a connection starts ("" before the first one):
   * CockroachDB's build (`crdb_version`, as `version()` gives it), or `PostgreSQL <version>`.
   */
  get version(): string {
    const parameters = this.#driver?.parameters;
    if (parameters === undefined) return "";
    const cockroach = parameters.crdb_version;
    if (cockroach !== undefined) return cockroach;
    const version = parameters.server_version;
    return version === undefined ? "" : `PostgreSQL ${version}`;
  }

  /** Runs a statement on any connection. Not async: once connected, no extra promise. */
  query(text: string, params: readonly unknown[] = [], call?: QueryCall): Promise<QueryResult> {
    const driver = this.#driver;
    if (driver === undefined) return this.#connect().then(() => this.query(text, params, call));
    const options = statementOptions(this.observer.wantsHost, params, call?.signal);
    return this.observer.statement(text, params, call, () => driver.query(text, params, options));
  }

  /** Runs `COPY … FROM STDIN` with text-format data. */
  async copyIn(text: string, data: string, call?: QueryCall): Promise<void> {
    const driver = this.#driver ?? await this.#connect();
    await this.observer.statement(
      text,
      [],
      call,
      () =>
        driver.copyIn(text, data, call?.signal).then(() => ({
          rows: [],
          command: "COPY",
          count: 0,
        })),
    );
  }

  /**
   * Opens the pool and checks the server (idempotent), with `minConnections` connections open:
   * they start in parallel, so this waits for one start-up.
   */
  async connect(): Promise<void> {
    const wanted = Math.max(1, this.#config.minConnections);
    const existed = this.#driver !== undefined || this.#connecting !== undefined;
    const driver = await this.#connect(wanted);
    if (!existed) return;
    const { idle, used } = driver.counts();
    // Idle ones are taken first, then closed slots opened: `wanted - used` reach `wanted`.
    if (idle + used < wanted) await this.#warm(driver, wanted - used);
  }

  /** A connection of its own, for a transaction or a cursor. */
  async reserve(): Promise<ReservedSession> {
    const driver = this.#driver ?? await this.#connect();
    return driver.reserve();
  }

  /**
   * Connects if needed and answers the server's family, as the first connection's start-up
   * told it: CockroachDB reports `crdb_version` there. With `confirm`, a `postgres` reading is
   * checked once with `SELECT version()`: a proxy that forwards only the settings it knows
   * (PgBouncer) hides `crdb_version`, and what only CockroachDB can do must not be refused then.
   */
  async dialect(confirm = false): Promise<Dialect> {
    if (this.#dialect === undefined || this.#driver === undefined) await this.#connect(1);
    if (!confirm || this.#dialect === "cockroach") return this.#dialect as Dialect;
    this.#confirmed ??= this.query("SELECT version() AS version").then(
      ({ rows }) => {
        const driver = this.#driver;
        if (String(rows[0]?.version ?? "").includes("CockroachDB") && driver !== undefined) {
          this.#dialect = "cockroach";
          this.observer.attach(this.#dialect, () => driver.counts());
        }
        return this.#dialect as Dialect;
      },
      (error) => {
        this.#confirmed = undefined;
        throw error;
      },
    );
    return await this.#confirmed;
  }

  /** Closes the pool (idempotent), waiting for statements in flight; later calls fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const driver = this.#driver;
    const connecting = this.#connecting;
    const opening = this.#opening;
    this.#driver = undefined;
    this.#connecting = undefined;
    this.#opening = undefined;
    this.observer.detach();
    const ending = driver ? driver.end() : connecting
      // A connect in progress is ended too (its server may never answer): its callers get a
      // ConnectionError, and a driver it completes with is closed, not kept.
      ? Promise.all([opening?.driver?.end(0), connecting.catch(() => {})]).then(() => {})
      : undefined;
    if (ending === undefined) {
      // Nothing left to close: a close() still in progress is waited for.
      await this.#ending;
      return;
    }
    this.#ending = ending.catch(() => {});
    await ending;
  }

  #connect(connections = 1): Promise<Driver> {
    if (this.#closed) {
      return Promise.reject(
        new ConnectionError(
          `Cannot use the database "${describeTarget(this.#config)}": it is closed`,
          { code: "CONNECTION_CLOSED" },
        ),
      );
    }
    if (this.#connecting) return this.#connecting;
    const attempt: { driver?: Driver } = {};
    const connecting: Promise<Driver> = this.#open(attempt, connections).then(
      async (driver) => {
        if (this.#connecting !== connecting) {
          // close() ran while this connect was in progress.
          await driver.end(0).catch(() => {});
          throw new ConnectionError(
            `Cannot connect to "${hostList(this.#config)}": the database was closed meanwhile`,
            { code: "CONNECTION_CLOSED" },
          );
        }
        this.#opening = undefined;
        this.#driver = driver;
        return driver;
      },
      (error) => {
        if (this.#connecting === connecting) {
          this.#connecting = undefined;
          this.#opening = undefined;
        }
        throw error;
      },
    );
    this.#connecting = connecting;
    this.#opening = attempt;
    return connecting;
  }

  // Sends nothing of its own: the first statement needs a connection anyway, and its start-up
  // tells the server (docs/round-trips.md, "Cold start"). `connections` start in parallel.
  async #open(attempt: { driver?: Driver }, connections: number): Promise<Driver> {
    const tls = await loadTls(this.#config);
    const driver = createDriver(this.#config, tls, this.observer.driverHooks());
    attempt.driver = driver;
    try {
      await this.#warm(driver, connections);
    } catch (error) {
      await driver.end(0).catch(() => {});
      throw error;
    }
    this.#dialect = driver.parameters.crdb_version === undefined ? "postgres" : "cockroach";
    this.observer.attach(this.#dialect, () => driver.counts());
    return driver;
  }

  /** Opens up to `connections` connections at once (idle ones count) and leaves them idle. */
  async #warm(driver: Driver, connections: number): Promise<void> {
    const target = hostList(this.#config);
    const reserved = await Promise.allSettled(
      Array.from({ length: connections }, () => driver.reserve()),
    );
    let failure: unknown;
    for (const r of reserved) {
      if (r.status === "fulfilled") r.value.release();
      else failure ??= r.reason;
    }
    if (failure === undefined) return;
    const e = toDatabaseError(failure, target);
    if (e instanceof ConnectionError) throw e;
    throw new ConnectionError(`Cannot connect to "${target}": ${reason(e)}`, {
      cause: e,
      code: e instanceof DatabaseError ? e.code : "CONNECTION_ERROR",
    });
  }
}

function reason(error: Error): string {
  const message = error.message;
  const colon = message.indexOf(": ");
  return colon >= 0 && message.startsWith("Cannot ") ? message.slice(colon + 2) : message;
}
