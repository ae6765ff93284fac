// Connection URLs (`postgresql://user:password@h1:p1,h2:p2/db?params`) and the environment
// variables they stand beside: read into their parts, with every parameter checked. The URL itself
// never appears in an error, since it may hold a password. Pure apart from reading the
// environment.
import type { LoadBalanceHosts, SslMode } from "./_options.ts";
import { ValidationError } from "./errors.ts";

/** The host of a URL that names none (`postgresql:///db`), and of no options at all. */
export const DEFAULT_HOST = "localhost";

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

/** What a URL (or the environment) gives. */
export interface UrlParts {
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

/** A `ValidationError` naming the field. */
export function invalid(message: string, field: string): ValidationError {
  return new ValidationError(message, { field });
}

/** An environment variable, or `undefined` when empty or not allowed. */
export function readEnv(name: string): string | undefined {
  try {
    const value = Deno.env.get(name);
    return value === "" ? undefined : value;
  } catch {
    // Without --allow-env the environment simply does not take part.
    return undefined;
  }
}

/** Checks an `sslmode` (libpq's `allow` and `prefer` read as `require`). */
export function parseSslMode(value: string, field: string): SslMode {
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

/** Checks a port of a URL or `PGPORT`. */
export function parsePort(value: string): number {
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
  // The authority group always takes part (it may be empty); the path and query may not.
  const [, , authority = "", path, query] = match;
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
      hosts.push(host === "" ? DEFAULT_HOST : decode(host, "a host name"));
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

/** Checks a `load_balance_hosts` value. */
export function parseLoadBalance(value: unknown, field: string): LoadBalanceHosts {
  if (value !== "disable" && value !== "random") {
    throw invalid(
      `Cannot use ${field} ${JSON.stringify(value)}: expected "disable" or "random"`,
      field,
    );
  }
  return value;
}
