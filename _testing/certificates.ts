// Certificates for a server of its own that serves TLS (`tls: true`), made by openssl: a CA, a
// server certificate for localhost and 127.0.0.1 signed by it, a client certificate for root,
// an unrelated CA for verification failures, and the server arguments that turn TLS on.
import { runTool } from "./tools.ts";
import type { ServerUser } from "./user.ts";

/** The files made, and the arguments that give them to postgres. */
export interface Certificates {
  readonly caFile: string;
  readonly wrongCaFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly serverArgs: readonly string[];
}

const OPENSSL_CONFIG = `[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/** Makes a CA, a server and a client certificate signed by it, and an unrelated CA. */
export async function makeCertificates(
  dir: string,
  user: ServerUser | undefined,
): Promise<Certificates> {
  const tls = `${dir}/tls`;
  await Deno.mkdir(tls);
  const config = `${tls}/openssl.cnf`;
  await Deno.writeTextFile(config, OPENSSL_CONFIG);
  const openssl = (...args: string[]) => runTool("openssl", args, { cwd: tls });
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const makeCa = (name: string, subject: string) =>
    openssl(
      "req",
      "-x509",
      "-new",
      "-config",
      config,
      "-extensions",
      "ca",
      ...newKey,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      "30",
      "-subj",
      subject,
    );
  const makeSigned = async (name: string, subject: string) => {
    await openssl(
      "req",
      "-new",
      "-config",
      config,
      ...newKey,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    );
    await openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-set_serial",
      randomSerial(),
      "-days",
      "30",
      "-extfile",
      config,
      "-extensions",
      name,
      "-out",
      `${name}.crt`,
    );
  };
  await makeCa("ca", "/CN=manticore test CA");
  await Promise.all([
    makeCa("wrong-ca", "/CN=manticore unrelated test CA"),
    makeSigned("server", "/CN=localhost"),
    makeSigned("client", "/CN=root"),
  ]);
  for (const key of ["ca", "wrong-ca", "server", "client"]) {
    await Deno.chmod(`${tls}/${key}.key`, 0o600);
  }
  // postgres insists on owning its key (mode 0600); the client key stays the caller's.
  if (user) {
    for (const file of ["", "/ca.crt", "/server.crt", "/server.key"]) {
      await Deno.chown(`${tls}${file}`, user.uid, user.gid);
    }
  }
  return {
    caFile: `${tls}/ca.crt`,
    wrongCaFile: `${tls}/wrong-ca.crt`,
    clientCertFile: `${tls}/client.crt`,
    clientKeyFile: `${tls}/client.key`,
    serverArgs: [
      ["-c", "ssl=on"],
      ["-c", `ssl_cert_file=${tls}/server.crt`, "-c", `ssl_key_file=${tls}/server.key`],
      // Lets the server verify client certificates that are offered; trust still admits all.
      ["-c", `ssl_ca_file=${tls}/ca.crt`],
    ].flat(),
  };
}

function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return `0x${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}
