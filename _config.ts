// Connection options resolved in one place: explicit options, then the URL, then the
// environment, then the defaults table. Pure apart from reading the environment and, for TLS,
// the certificate files named by the options.
import type {
  DatabaseOptions,
  Int8Mode,
  Notice,
  QueryEvent,
  RetryOptions,
  SslMode,
} from "./_options.ts";
import {
  DEFAULT_HOST,
  invalid,
  parseLoadBalance,
  parsePort,
  parseSslMode,
  parseUrl,
  readEnv,
  type UrlParts,
} from "./_url.ts";
import type { LoadBalanceHosts } from "./_hosts.ts";

// The option types live in _options.ts; the modules that resolve options import them from here.
export type {
  DatabaseOptions,
  Int8Mode,
  IsolationLevel,
  LoadBalanceHosts,
  Notice,
  QueryEvent,
  RetryInfo,
  RetryOptions,
  SslMode,
  TransactionOptions,
} from "./_options.ts";

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
function warnOnNotice(notice: Notice): void {
  if (notice.severity !== "WARNING") return;
  const extra = [notice.detail && `DETAIL: ${notice.detail}`, notice.hint && `HINT: ${notice.hint}`]
    .filter(Boolean).join(" ");
  console.warn(`WARNING (${notice.code}): ${notice.message}${extra ? ` ${extra}` : ""}`);
}

const DEFAULTS = {
  host: DEFAULT_HOST,
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
