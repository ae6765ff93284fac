// TLS for the driver: the node:tls options of each \`sslmode\` (libpq's meanings), the certificate
// files read, and the server's name checked for every host, IP addresses included.
import type { ResolvedConfig } from "./_config.ts";
import { ConnectionError } from "./errors.ts";

/** TLS settings handed to the driver (node:tls connect options). */
export interface TlsSettings {
  readonly rejectUnauthorized: boolean;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly servername?: string;
  readonly checkServerIdentity?: (host: string, cert: unknown) => Error | undefined;
}

/** Builds the node:tls options for the configured `sslmode`, reading the certificate files. */
export async function loadTls(config: ResolvedConfig): Promise<TlsSettings | undefined> {
  if (config.sslmode === "disable") return undefined;
  async function read(path: string | undefined, what: string): Promise<string | undefined> {
    if (path === undefined) return undefined;
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      throw new ConnectionError(`Cannot read ${what} "${path}": ${(error as Error).message}`, {
        cause: error,
        code: "TLS_FILE_ERROR",
      });
    }
  }
  const [ca, cert, key] = await Promise.all([
    read(config.sslrootcert, "sslrootcert"),
    read(config.sslcert, "sslcert"),
    read(config.sslkey, "sslkey"),
  ]);
  const base = {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
  if (config.sslmode === "require") return { ...base, rejectUnauthorized: false };
  if (config.sslmode === "verify-ca") {
    return { ...base, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  }
  return {
    ...base,
    rejectUnauthorized: true,
    checkServerIdentity: (_servername: string, certificate: unknown) =>
      checkIdentity(config.hosts, certificate),
  };
}

interface PeerCertificate {
  readonly subject?: { readonly CN?: string };
  readonly subjectaltname?: string;
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

function matchesName(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (p === h) return true;
  if (p.startsWith("*.")) {
    const rest = h.slice(h.indexOf(".") + 1);
    return h.indexOf(".") > 0 && rest === p.slice(2);
  }
  return false;
}

// node:tls in Deno checks names for host names only; for an IP address nothing checks it, so
// every host is checked here against the certificate's subjectAltName (or CN without SANs).
function checkIdentity(
  hosts: readonly string[],
  certificate: unknown,
): Error | undefined {
  const cert = (certificate ?? {}) as PeerCertificate;
  const sans = (cert.subjectaltname ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const dns = sans.filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4));
  const ips = sans.filter((s) => s.startsWith("IP Address:")).map((s) => s.slice(11));
  for (const host of hosts) {
    if (isIpAddress(host)) {
      if (ips.includes(host)) return undefined;
    } else if (dns.some((name) => matchesName(name, host))) {
      return undefined;
    } else if (sans.length === 0 && cert.subject?.CN && matchesName(cert.subject.CN, host)) {
      return undefined;
    }
  }
  return new Error(
    `Host "${hosts.join(",")}" does not match the server certificate (${
      sans.join(", ") || "no subjectAltName"
    })`,
  );
}
