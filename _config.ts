// Connection options resolved in one place: explicit options, then the URL, then the
// environment, then the defaults table. Pure apart from reading the environment and, for TLS,
// the certificate files named by the options.
import type { LoadBalanceHosts } from "./_hosts.ts";
import type { CallOptions } from "./_options.ts";

export type { LoadBalanceHosts };
import { ValidationError } from "./errors.ts";

/** How TLS is used, with libpq's meanings. */
export type SslMode = "disable" | "require" | "verify-ca" | "verify-full";

/** How `INT8` values (CockroachDB's `INT`) are returned. */
export type Int8Mode = "bigint" | "number" | "string";

/** Transaction isolation levels accepted by {@linkcode TransactionOptions}. */
export type IsolationLevel = "serializable" | "repeatable read" | "read committed";

/** Information passed to {@linkcode TransactionOptions.onRetry} before each retry. */
export interface RetryInfo {
  /** The attempt that failed, counting from 1. */
  readonly attempt: number;
  /** How long the runner waits before the next attempt, in milliseconds. */
  readonly delayMs: number;
  /** The error that caused the retry. */
  readonly error: Error;
}

/** Retry settings; the defaults of every transaction of a database. */
export interface RetryOptions {
  /**
   * How many times a transaction is run again after a retryable failure.
   * @default {10}
   */
  readonly maxRetries?: number;
  /**
   * The first backoff, in milliseconds; it doubles with each retry (full jitter).
   * @default {10}
   */
  readonly initialBackoff?: number;
  /**
   * The longest backoff, in milliseconds.
   * @default {2000}
   */
  readonly maxBackoff?: number;
}

/** Options of one `transaction()` call. */
export interface TransactionOptions extends RetryOptions, CallOptions {
  /**
   * Total time the transaction may take, retries included, in milliseconds. When the next
   * backoff would end past it, the runner stops with `TransactionRetryError`.
   * @default {undefined} no deadline
   */
  readonly deadline?: number;
  /**
   * Isolation level of the transaction.
   * @default {undefined} the server's default (serializable on CockroachDB)
   */
  readonly isolation?: IsolationLevel;
  /**
   * Run the transaction `READ ONLY`.
   * @default {false}
   */
  readonly readOnly?: boolean;
  /**
   * CockroachDB only: read at a past time (`AS OF SYSTEM TIME`), e.g. `"-10s"` or
   * `"follower_read_timestamp()"`; implies a read-only transaction.
   * @default {undefined}
   */
  readonly asOfSystemTime?: string;
  /**
   * The callback may safely run twice: an ambiguous commit is retried instead of throwing
   * `AmbiguousCommitError`.
   * @default {false}
   */
  readonly idempotent?: boolean;
  /**
   * Called before each retry.
   * @default {undefined}
   */
  readonly onRetry?: (info: RetryInfo) => void;
}

/** A notice or warning the server sent (`RAISE NOTICE`, `RAISE WARNING`, …). */
export interface Notice {
  /** `WARNING`, `NOTICE`, `INFO`, `LOG` or `DEBUG`. */
  readonly severity: string;
  /** The SQLSTATE, e.g. `01000` for a warning. */
  readonly code: string;
  /** The text. */
  readonly message: string;
  /** The server's `DETAIL` line, if any. */
  readonly detail?: string;
  /** The server's `HINT` line, if any. */
  readonly hint?: string;
}

/** What `onQuery` hears of one statement, after it answered or failed. */
export interface QueryEvent {
  /** The statement text as sent: placeholders, never values. */
  readonly text: string;
  /** The parameters, only with `logParameters: true`. */
  readonly params?: readonly unknown[];
  /** Milliseconds from the call to the answer (resends included). */
  readonly durationMs: number;
  /** Rows returned (0 for a statement without rows), absent on failure. */
  readonly rowCount?: number;
  /** Rows affected or returned, from the command tag, absent on failure. */
  readonly count?: number;
  /** The error it failed with. */
  readonly error?: Error;
  /** It ran again: a resend of the pool, or in a retried transaction attempt. */
  readonly retry: boolean;
  /** `host:port` of the connection that answered, when known. */
  readonly host?: string;
  /** The helper's operation (`SELECT`, `INSERT` …) and table, for the CRUD helpers. */
  readonly operation?: string;
  /** The table of a CRUD helper. */
  readonly collection?: string;
}

/** Options of `AsyncDatabase` and `Database`. */
export interface DatabaseOptions {
  /**
   * Server host name or address; several may be given, comma separated, for failover.
   * @default {"localhost"}
   */
  readonly host?: string;
  /**
   * Server port.
   * @default {26257}
   */
  readonly port?: number;
  /**
   * Database name.
   * @default {"defaultdb"}
   */
  readonly database?: string;
  /**
   * User name.
   * @default {"root"}
   */
  readonly user?: string;
  /**
   * Password; never shown in errors, logs or `String(db)`.
   * @default {undefined}
   */
  readonly password?: string;
  /**
   * TLS mode: `require` encrypts, `verify-ca` also checks the chain, `verify-full` also the name.
   * @default {"disable"}
   */
  readonly sslmode?: SslMode;
  /**
   * Path of the CA certificate file used to verify the server.
   * @default {undefined}
   */
  readonly sslrootcert?: string;
  /**
   * Path of the client certificate file.
   * @default {undefined}
   */
  readonly sslcert?: string;
  /**
   * Path of the client key file.
   * @default {undefined}
   */
  readonly sslkey?: string;
  /**
   * `application_name` reported to the server.
   * @default {"manticore-db"}
   */
  readonly applicationName?: string;
  /**
   * Connections opened by `connect()`; without it, 2 (or `maxConnections` when that is 1).
   * @default {2}
   */
  readonly minConnections?: number;
  /**
   * Most connections the pool holds.
   * @default {10}
   */
  readonly maxConnections?: number;
  /**
   * Seconds to wait for a connection.
   * @default {30}
   */
  readonly connectTimeout?: number;
  /**
   * Seconds an idle connection is kept; 0 keeps it.
   * @default {0}
   */
  readonly idleTimeout?: number;
  /**
   * Seconds a connection lives at most, with 10 % jitter (CockroachDB advises 5–30 minutes).
   * @default {1800}
   */
  readonly maxLifetime?: number;
  /**
   * Milliseconds a statement may run before the server cancels it; 0 means no limit.
   * @default {undefined} the server's setting
   */
  readonly statementTimeout?: number;
  /**
   * How new connections pick among several hosts, with libpq's names and meanings (URL
   * parameter `load_balance_hosts`): `"disable"` tries them in the order given and takes the
   * first that answers; `"random"` tries them in a random order, so a pool spreads over the
   * nodes. Either way a host that fails or refuses is tried last for a while (with backoff), a
   * host whose sessions were ended for a drain (`57P01`) is avoided for 30 s, and a connection
   * attempt moves on to the next host when one fails or does not answer within `connectTimeout`.
   * @default {"disable"}
   */
  readonly loadBalanceHosts?: LoadBalanceHosts;
  /**
   * Defaults for every transaction's retries.
   * @default {{ maxRetries: 10, initialBackoff: 10, maxBackoff: 2000 }}
   */
  readonly retry?: RetryOptions;
  /**
   * How `INT8` values are returned; `"number"` throws `RangeError` outside the safe range.
   * @default {"bigint"}
   */
  readonly int8?: Int8Mode;
  /**
   * Send a single statement run outside a transaction again when the server answers it with a
   * serialization failure (`40001`) or a deadlock (`40P01`): its implicit transaction rolled
   * back, so running it again is safe. Uses `retry`'s `maxRetries` and backoff; when they run
   * out the call throws `TransactionRetryError`. Text holding several statements is not resent.
   * @default {true}
   */
  readonly retryStatements?: boolean;
  /**
   * Called after every statement with its text, duration, rows, error, host and whether it ran
   * again; with the sync `Database` it runs on the calling thread, before the call returns. A
   * hook that throws is reported as an uncaught error, not to the caller.
   * @default {undefined}
   */
  readonly onQuery?: (event: QueryEvent) => void;
  /**
   * Give `onQuery` the parameters too. They may hold secrets: off by default, and never put in
   * a span or a metric.
   * @default {false}
   */
  readonly logParameters?: boolean;
  /**
   * Called with every notice the server sends (`RAISE NOTICE`, `RAISE WARNING`, …). With the
   * sync `Database` it runs on the calling thread, before the call that caused it returns.
   * @default {warnings go to console.warn, other notices are dropped}
   */
  readonly onNotice?: (notice: Notice) => void;
  /**
   * Synchronous `Database` only: connect in the constructor.
   * @default {true}
   */
  readonly connect?: boolean;
}

/** Options after resolution: every field has its value. */
export interface ResolvedConfig {
  readonly hosts: readonly string[];
  readonly ports: readonly number[];
  readonly database: string;
  readonly user: string;
  readonly password: string | undefined;
  readonly sslmode: SslMode;
  readonly sslrootcert: string | undefined;
  readonly sslcert: string | undefined;
  readonly sslkey: string | undefined;
  readonly applicationName: string;
  readonly minConnections: number;
  readonly maxConnections: number;
  readonly connectTimeout: number;
  readonly idleTimeout: number;
  readonly maxLifetime: number;
  readonly statementTimeout: number | undefined;
  readonly retry: Required<RetryOptions>;
  readonly int8: Int8Mode;
  /** `-c name=value` settings passed on in the startup `options` parameter. */
  readonly serverOptions: string | undefined;
  readonly onNotice: (notice: Notice) => void;
  readonly retryStatements: boolean;
  readonly loadBalanceHosts: LoadBalanceHosts;
  readonly onQuery: ((event: QueryEvent) => void) | undefined;
  readonly logParameters: boolean;
}

/** The default of `onNotice`: warnings to `console.warn`, other notices dropped. */
export function warnOnNotice(notice: Notice): void {
  if (notice.severity !== "WARNING") return;
  const extra = [notice.detail && `DETAIL: ${notice.detail}`, notice.hint && `HINT: ${notice.hint}`]
    .filter(Boolean).join(" ");
  console.warn(`WARNING (${notice.code}): ${notice.message}${extra ? ` ${extra}` : ""}`);
}

const DEFAULTS = {
  host: "localhost",
  port: 26257,
  database: "defaultdb",
  user: "root",
  sslmode: "disable" as SslMode,
  applicationName: "manticore-db",
  minConnections: 2,
  maxConnections: 10,
  connectTimeout: 30,
  idleTimeout: 0,
  maxLifetime: 1800,
  int8: "bigint" as Int8Mode,
} as const;

/** The retry defaults of every transaction. */
export const RETRY_DEFAULTS: Required<RetryOptions> = Object.freeze({
  maxRetries: 10,
  initialBackoff: 10,
  maxBackoff: 2000,
});

const SSL_MODES: readonly string[] = [
  "disable",
  "allow",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
];
const URL_PARAMETERS: readonly string[] = [
  "sslmode",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "application_name",
  "connect_timeout",
  "options",
  "statement_timeout",
  "load_balance_hosts",
];

interface UrlParts {
  hosts?: string[];
  ports?: number[];
  database?: string;
  user?: string;
  password?: string;
  sslmode?: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  applicationName?: string;
  connectTimeout?: number;
  statementTimeout?: number;
  serverOptions?: string;
  loadBalanceHosts?: LoadBalanceHosts;
}

function invalid(message: string, field: string): ValidationError {
  return new ValidationError(message, { field });
}

function readEnv(name: string): string | undefined {
  try {
    const value = Deno.env.get(name);
    return value === "" ? undefined : value;
  } catch {
    // Without --allow-env the environment simply does not take part.
    return undefined;
  }
}

function parseSslMode(value: string, field: string): SslMode {
  if (!SSL_MODES.includes(value)) {
    throw invalid(
      `Cannot use sslmode "${value}": expected disable, require, verify-ca or verify-full`,
      field,
    );
  }
  // libpq's allow and prefer try TLS opportunistically; the safe reading here is to encrypt.
  if (value === "allow" || value === "prefer") return "require";
  return value as SslMode;
}

function parseNumber(value: string, field: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw invalid(`Cannot parse URL parameter "${field}": "${value}" is not a number`, field);
  }
  return n;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) {
    // The value is not shown: in a URL without "@" it may be a password.
    throw invalid("Cannot parse URL: a port is not a number from 1 to 65535", "url");
  }
  return n;
}

function decode(value: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw invalid(`Cannot parse URL: ${what} is not valid percent-encoding`, "url");
  }
}

/**
 * Parses a `postgresql://` URL into its parts. Several `host:port` pairs may be given.
 * The URL itself never appears in an error, since it may hold a password.
 */
export function parseUrl(url: string): UrlParts {
  const match = /^(postgres|postgresql|cockroachdb):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i
    .exec(url.trim());
  if (!match) {
    throw invalid(
      "Cannot parse URL: expected postgresql://user:password@host:port/database?params",
      "url",
    );
  }
  const [, , authority, path, query] = match;
  const parts: UrlParts = {};
  const at = authority.lastIndexOf("@");
  const hostPart = at >= 0 ? authority.slice(at + 1) : authority;
  if (at >= 0) {
    const userInfo = authority.slice(0, at);
    const colon = userInfo.indexOf(":");
    const user = colon >= 0 ? userInfo.slice(0, colon) : userInfo;
    if (user !== "") parts.user = decode(user, "the user name");
    if (colon >= 0) parts.password = decode(userInfo.slice(colon + 1), "the password");
  }
  if (hostPart !== "") {
    const hosts: string[] = [];
    const ports: number[] = [];
    for (const item of hostPart.split(",")) {
      let host: string;
      let port: string | undefined;
      if (item.startsWith("[")) {
        const end = item.indexOf("]");
        if (end < 0) throw invalid("Cannot parse URL: unclosed [ in an IPv6 host", "url");
        host = item.slice(1, end);
        const rest = item.slice(end + 1);
        if (rest.startsWith(":")) port = rest.slice(1);
        else if (rest !== "") {
          throw invalid("Cannot parse URL: unexpected text after an IPv6 host", "url");
        }
      } else {
        const colon = item.lastIndexOf(":");
        host = colon >= 0 ? item.slice(0, colon) : item;
        if (colon >= 0) port = item.slice(colon + 1);
      }
      hosts.push(host === "" ? DEFAULTS.host : decode(host, "a host name"));
      ports.push(port === undefined || port === "" ? NaN : parsePort(port));
    }
    parts.hosts = hosts;
    parts.ports = ports;
  }
  if (path && path.length > 1) parts.database = decode(path.slice(1), "the database name");
  if (query && query.length > 1) {
    for (const [key, value] of new URLSearchParams(query.slice(1))) {
      if (!URL_PARAMETERS.includes(key)) {
        throw invalid(
          `Cannot use URL parameter "${key}": it is not supported (supported: ${
            URL_PARAMETERS.join(", ")
          })`,
          key,
        );
      }
      switch (key) {
        case "sslmode":
          parts.sslmode = parseSslMode(value, key);
          break;
        case "sslrootcert":
          parts.sslrootcert = value;
          break;
        case "sslcert":
          parts.sslcert = value;
          break;
        case "sslkey":
          parts.sslkey = value;
          break;
        case "application_name":
          parts.applicationName = value;
          break;
        case "connect_timeout":
          parts.connectTimeout = parseNumber(value, key);
          break;
        case "statement_timeout":
          parts.statementTimeout = parseNumber(value, key);
          break;
        case "options":
          parts.serverOptions = value;
          break;
        case "load_balance_hosts":
          parts.loadBalanceHosts = parseLoadBalance(value, key);
          break;
      }
    }
  }
  return parts;
}

function parseLoadBalance(value: unknown, field: string): LoadBalanceHosts {
  if (value !== "disable" && value !== "random") {
    throw invalid(
      `Cannot use ${field} ${JSON.stringify(value)}: expected "disable" or "random"`,
      field,
    );
  }
  return value;
}

function checkCount(value: number, field: string, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw invalid(`Cannot use ${field} ${value}: expected an integer of at least ${min}`, field);
  }
  return value;
}

// The options name their unit in their docs: the pool's timings are in seconds (as
// postgres.js takes them), the statement timeout and the backoffs in milliseconds.
function checkDuration(value: number, field: string, unit: "seconds" | "milliseconds"): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw invalid(`Cannot use ${field} ${value}: expected a non-negative number of ${unit}`, field);
  }
  return value;
}

/**
 * Resolves options: explicit options, then the URL, then `DATABASE_URL` and the `PG*`
 * environment variables, then the defaults.
 */
export function resolveConfig(
  url: string | undefined,
  options: DatabaseOptions = {},
): ResolvedConfig {
  if (url !== undefined && typeof url !== "string") {
    throw invalid("Cannot connect: the URL must be a string", "url");
  }
  const fromUrl = url === undefined ? {} : parseUrl(url);
  const envUrl = url === undefined ? readEnv("DATABASE_URL") : undefined;
  const fromEnvUrl = envUrl === undefined ? {} : parseUrl(envUrl);
  const envPort = readEnv("PGPORT");
  const envSslMode = readEnv("PGSSLMODE");
  const env: UrlParts = {
    hosts: readEnv("PGHOST")?.split(","),
    ports: envPort === undefined ? undefined : envPort.split(",").map(parsePort),
    database: readEnv("PGDATABASE"),
    user: readEnv("PGUSER"),
    password: readEnv("PGPASSWORD"),
    sslmode: envSslMode === undefined ? undefined : parseSslMode(envSslMode, "PGSSLMODE"),
  };
  const layers: UrlParts[] = [fromUrl, fromEnvUrl, env];
  function pick<K extends keyof UrlParts>(key: K): UrlParts[K] {
    for (const layer of layers) if (layer[key] !== undefined) return layer[key];
    return undefined;
  }

  let hosts: string[];
  let ports: number[];
  if (options.host !== undefined) {
    hosts = options.host.split(",").map((h) => h.trim());
    ports = hosts.map(() => NaN);
  } else {
    hosts = pick("hosts") ?? [DEFAULTS.host];
    ports = pick("ports") ?? hosts.map(() => NaN);
  }
  if (hosts.some((h) => h === "")) throw invalid("Cannot connect: a host name is empty", "host");
  // A host without a port takes the first port any layer gives (a URL without a port, PGPORT).
  const layerPort = layers.map((layer) => layer.ports?.find((p) => !Number.isNaN(p)))
    .find((p) => p !== undefined);
  const defaultPort = options.port ?? layerPort ?? DEFAULTS.port;
  if (options.port !== undefined) {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw invalid(`Cannot use port ${options.port}: expected an integer from 1 to 65535`, "port");
    }
    ports = hosts.map(() => options.port as number);
  }
  while (ports.length < hosts.length) ports.push(NaN);
  ports = ports.slice(0, hosts.length).map((p) => Number.isNaN(p) ? defaultPort : p);

  const sslmode = options.sslmode === undefined
    ? pick("sslmode") ?? DEFAULTS.sslmode
    : parseSslMode(options.sslmode, "sslmode");
  const maxConnections = checkCount(
    options.maxConnections ?? DEFAULTS.maxConnections,
    "maxConnections",
    1,
  );
  // The default floor follows a smaller explicit ceiling (`maxConnections: 1` alone is valid).
  const minConnections = checkCount(
    options.minConnections ?? Math.min(DEFAULTS.minConnections, maxConnections),
    "minConnections",
    0,
  );
  if (minConnections > maxConnections) {
    throw invalid(
      `Cannot use minConnections ${minConnections}: it exceeds maxConnections ${maxConnections}`,
      "minConnections",
    );
  }
  const int8 = options.int8 ?? DEFAULTS.int8;
  if (!["bigint", "number", "string"].includes(int8)) {
    throw invalid(`Cannot use int8 "${int8}": expected bigint, number or string`, "int8");
  }
  const statementTimeout = options.statementTimeout ?? pick("statementTimeout");
  const retry = { ...RETRY_DEFAULTS, ...stripUndefined(options.retry ?? {}) };
  checkRetry(retry);
  return Object.freeze({
    hosts: Object.freeze(hosts),
    ports: Object.freeze(ports),
    database: options.database ?? pick("database") ?? DEFAULTS.database,
    user: options.user ?? pick("user") ?? DEFAULTS.user,
    password: options.password ?? pick("password"),
    sslmode,
    sslrootcert: options.sslrootcert ?? pick("sslrootcert"),
    sslcert: options.sslcert ?? pick("sslcert"),
    sslkey: options.sslkey ?? pick("sslkey"),
    applicationName: options.applicationName ?? pick("applicationName") ??
      DEFAULTS.applicationName,
    minConnections,
    maxConnections,
    connectTimeout: checkDuration(
      options.connectTimeout ?? pick("connectTimeout") ?? DEFAULTS.connectTimeout,
      "connectTimeout",
      "seconds",
    ),
    idleTimeout: checkDuration(
      options.idleTimeout ?? DEFAULTS.idleTimeout,
      "idleTimeout",
      "seconds",
    ),
    maxLifetime: checkDuration(
      options.maxLifetime ?? DEFAULTS.maxLifetime,
      "maxLifetime",
      "seconds",
    ),
    statementTimeout: statementTimeout === undefined
      ? undefined
      : checkDuration(statementTimeout, "statementTimeout", "milliseconds"),
    retry: Object.freeze(retry),
    int8,
    serverOptions: pick("serverOptions"),
    onNotice: checkFunction(options.onNotice, "onNotice") ?? warnOnNotice,
    retryStatements: checkBoolean(options.retryStatements, "retryStatements") ?? true,
    onQuery: checkFunction(options.onQuery, "onQuery"),
    logParameters: checkBoolean(options.logParameters, "logParameters") ?? false,
    loadBalanceHosts: options.loadBalanceHosts === undefined
      ? pick("loadBalanceHosts") ?? "disable"
      : parseLoadBalance(options.loadBalanceHosts, "loadBalanceHosts"),
  });
}

function checkBoolean(value: boolean | undefined, field: string): boolean | undefined {
  if (value !== undefined && typeof value !== "boolean") {
    throw invalid(`Cannot use ${field}: expected true or false`, field);
  }
  return value;
}

function checkFunction<F>(value: F | undefined, field: string): F | undefined {
  if (value !== undefined && typeof value !== "function") {
    throw invalid(`Cannot use ${field}: expected a function`, field);
  }
  return value;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}

/** Throws `ValidationError` when retry settings are out of range. */
export function checkRetry(retry: RetryOptions): void {
  if (retry.maxRetries !== undefined) checkCount(retry.maxRetries, "maxRetries", 0);
  if (retry.initialBackoff !== undefined) {
    checkDuration(retry.initialBackoff, "initialBackoff", "milliseconds");
  }
  if (retry.maxBackoff !== undefined) {
    checkDuration(retry.maxBackoff, "maxBackoff", "milliseconds");
  }
}

/** The hosts and their ports, `h1:26257,h2:26257` (an IPv6 address in brackets). */
export function hostList(config: ResolvedConfig): string {
  return config.hosts.map((h, i) => `${h.includes(":") ? `[${h}]` : h}:${config.ports[i]}`)
    .join(",");
}

/** The connection target without secrets: `postgresql://user@host:port/database`. */
export function describeTarget(config: ResolvedConfig): string {
  return `postgresql://${encodeURIComponent(config.user)}@${hostList(config)}/${
    encodeURIComponent(config.database)
  }`;
}
