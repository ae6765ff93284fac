// The pool behind an `AsyncDatabase`: opening it lazily (once, however many callers wait),
// checking the server on connect, and closing it, including a connect still in progress. The
// public class passes statements through; everything about the driver's lifecycle is here.
import { describeTarget, type ResolvedConfig } from "./_config.ts";
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
  #version = "";
  /** What this pool tells about its work. */
  readonly observer: Observer;

  constructor(config: ResolvedConfig) {
    this.#config = config;
    this.observer = new Observer(config);
  }

  /** The server's `version()` string, once connected ("" before). */
  get version(): string {
    return this.#version;
  }

  /** Runs a statement on any connection. Not async: once connected, no extra promise. */
  query(text: string, params: readonly unknown[] = [], call?: QueryCall): Promise<QueryResult> {
    const driver = this.#driver;
    if (driver === undefined) return this.#connect().then(() => this.query(text, params, call));
    const base = this.observer.wantsHost ? WITH_HOST : params.length === 0 ? undefined : PREPARED;
    const signal = call?.signal;
    const options = signal === undefined ? base : { ...base, signal };
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

  /** Opens the pool and checks the server (idempotent). */
  async connect(): Promise<void> {
    if (this.#driver === undefined) await this.#connect();
  }

  /** A connection of its own, for a transaction or a cursor. */
  async reserve(): Promise<ReservedSession> {
    const driver = this.#driver ?? await this.#connect();
    return driver.reserve();
  }

  /** Connects if needed and answers the server's family. */
  async dialect(): Promise<Dialect> {
    if (this.#dialect === undefined || this.#driver === undefined) await this.connect();
    return this.#dialect as Dialect;
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

  #connect(): Promise<Driver> {
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
    const connecting: Promise<Driver> = this.#open(attempt).then(
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

  async #open(attempt: { driver?: Driver }): Promise<Driver> {
    const config = this.#config;
    const target = hostList(config);
    const tls = await loadTls(config);
    const driver = createDriver(config, tls, this.observer.driverHooks());
    attempt.driver = driver;
    try {
      const { rows } = await driver.query("SELECT version() AS version", [], { simple: true });
      this.#version = String(rows[0]?.version ?? "");
      this.#dialect = this.#version.includes("CockroachDB") ? "cockroach" : "postgres";
      this.observer.attach(this.#dialect, () => driver.counts());
      // Warm the pool to minConnections: concurrent statements open concurrent connections.
      if (config.minConnections > 1) {
        await Promise.all(
          Array.from(
            { length: config.minConnections - 1 },
            () => driver.query("SELECT 1", [], { simple: true }),
          ),
        );
      }
      return driver;
    } catch (error) {
      await driver.end(0).catch(() => {});
      const e = toDatabaseError(error, target);
      if (e instanceof ConnectionError) throw e;
      throw new ConnectionError(`Cannot connect to "${target}": ${reason(e)}`, {
        cause: e,
        code: e instanceof DatabaseError ? e.code : "CONNECTION_ERROR",
      });
    }
  }
}

function hostList(config: ResolvedConfig): string {
  return config.hosts.map((h, i) => `${h}:${config.ports[i]}`).join(",");
}

function reason(error: Error): string {
  const message = error.message;
  const colon = message.indexOf(": ");
  return colon >= 0 && message.startsWith("Cannot ") ? message.slice(colon + 2) : message;
}
