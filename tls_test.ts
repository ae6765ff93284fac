// TLS against a real server with certificates made at test time (startTestDatabase({ tls: true })):
// which sslmode verifies what, what a refusal looks like, and that the connection is encrypted
// (pg_stat_ssl). A small TCP relay on 127.0.0.2 reaches the server under an address its
// certificate does not name.
import assert from "node:assert/strict";
import { AsyncDatabase, type DatabaseOptions } from "./async_database.ts";
import { Database } from "./database.ts";
import { ConnectionError } from "./errors.ts";
import { startTestDatabase, type TestDatabase } from "./testing.ts";

interface SslRow {
  ssl: boolean;
  version: string | null;
  client_dn: string | null;
}

const SSL_QUERY = "SELECT ssl, version, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

function urlOf(
  server: TestDatabase,
  host: string,
  params: Record<string, string>,
  port = server.port,
): string {
  const query = new URLSearchParams(params).toString();
  return `postgresql://root@${host.includes(":") ? `[${host}]` : host}:${port}/postgres?${query}`;
}

async function sslOf(url: string, options?: DatabaseOptions): Promise<SslRow> {
  await using db = new AsyncDatabase(url, { minConnections: 1, connectTimeout: 10, ...options });
  return (await db.queryOne<SslRow>(SSL_QUERY))!;
}

async function refusal(url: string, options?: DatabaseOptions): Promise<ConnectionError> {
  await using db = new AsyncDatabase(url, { minConnections: 1, connectTimeout: 10, ...options });
  try {
    await db.connect();
  } catch (error) {
    assert.ok(
      error instanceof ConnectionError,
      `expected ConnectionError, got ${Deno.inspect(error)}`,
    );
    return error;
  }
  assert.fail("expected the connection to be refused");
}

/** A TCP relay from `hostname`:random port to the server; closes everything on dispose. */
function relay(hostname: string, port: number): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname, port: 0 });
  const pipes: Promise<unknown>[] = [];
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const inbound of listener) {
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(inbound, outbound);
      pipes.push(
        inbound.readable.pipeTo(outbound.writable).catch(() => {}),
        outbound.readable.pipeTo(inbound.writable).catch(() => {}),
      );
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by its pipe.
        }
      }
      await Promise.all(pipes);
    },
  };
}

/** A host name other than "localhost" that reaches 127.0.0.1 on this machine, if any. */
async function loopbackAlias(): Promise<string | undefined> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    for (const name of new Set([Deno.hostname(), "localhost.localdomain", "ip6-localhost"])) {
      if (name === "" || name === "localhost") continue;
      let conn: Deno.Conn | undefined;
      try {
        conn = await Deno.connect({ hostname: name, port });
      } catch {
        continue;
      }
      const accepted = await listener.accept();
      accepted.close();
      conn.close();
      return name;
    }
    return undefined;
  } finally {
    listener.close();
  }
}

Deno.test("TLS: each sslmode verifies what it promises, and refusals are clear ConnectionErrors", async (t) => {
  await using server = await startTestDatabase({ tls: true });
  const ca = server.caFile!;
  const wrongCa = server.wrongCaFile!;

  await t.step(
    "verify-full with sslrootcert connects to localhost and 127.0.0.1, encrypted",
    async () => {
      for (const host of ["localhost", "127.0.0.1"]) {
        const row = await sslOf(urlOf(server, host, { sslmode: "verify-full", sslrootcert: ca }));
        assert.equal(row.ssl, true, host);
        assert.match(row.version ?? "", /^TLSv1\.[23]$/);
      }
      // The same through options instead of URL parameters.
      const row = await sslOf(`postgresql://root@localhost:${server.port}/postgres`, {
        sslmode: "verify-full",
        sslrootcert: ca,
      });
      assert.equal(row.ssl, true);
    },
  );

  await t.step(
    "verify-full refuses a certificate from another CA, or with no CA given",
    async () => {
      for (const host of ["localhost", "127.0.0.1"]) {
        const error = await refusal(
          urlOf(server, host, { sslmode: "verify-full", sslrootcert: wrongCa }),
        );
        assert.match(
          error.message,
          new RegExp(`^Cannot connect to "${host.replaceAll(".", "\\.")}:${server.port}": `),
        );
        assert.match(error.message, /certificate/i);
        assert.ok(error.code.length > 0);
      }
      const error = await refusal(urlOf(server, "localhost", { sslmode: "verify-full" }));
      assert.match(error.message, /certificate/i);
      // verify-ca checks the chain too.
      await refusal(urlOf(server, "localhost", { sslmode: "verify-ca", sslrootcert: wrongCa }));
    },
  );

  await t.step(
    "verify-full refuses an IP address the certificate does not name; verify-ca accepts it",
    async () => {
      await using other = relay("127.0.0.2", server.port);
      const error = await refusal(
        urlOf(server, "127.0.0.2", { sslmode: "verify-full", sslrootcert: ca }, other.port),
      );
      assert.match(error.message, /127\.0\.0\.2/);
      assert.match(error.message, /does not match the server certificate/);
      const row = await sslOf(
        urlOf(server, "127.0.0.2", { sslmode: "verify-ca", sslrootcert: ca }, other.port),
      );
      assert.equal(row.ssl, true);
    },
  );

  const alias = await loopbackAlias();
  await t.step({
    name: `verify-full refuses a host name the certificate does not name (${
      alias ?? "no alias of localhost on this machine"
    })`,
    ignore: alias === undefined,
    fn: async () => {
      const error = await refusal(
        urlOf(server, alias!, { sslmode: "verify-full", sslrootcert: ca }),
      );
      assert.match(error.message, new RegExp(alias!.replaceAll(".", "\\.")));
      const row = await sslOf(urlOf(server, alias!, { sslmode: "verify-ca", sslrootcert: ca }));
      assert.equal(row.ssl, true);
    },
  });

  await t.step(
    "sslmode=require encrypts without verifying; sslmode=disable does not encrypt",
    async () => {
      await using other = relay("127.0.0.2", server.port);
      const required = await sslOf(urlOf(server, "127.0.0.2", { sslmode: "require" }, other.port));
      assert.equal(required.ssl, true);
      const plain = await sslOf(urlOf(server, "127.0.0.1", { sslmode: "disable" }));
      assert.deepEqual(plain, { ssl: false, version: null, client_dn: null });
      // PGSSLMODE-style options object, and the default, are plain too.
      assert.equal((await sslOf(server.url)).ssl, false);
    },
  );

  await t.step("sslcert and sslkey present a client certificate", async () => {
    const row = await sslOf(urlOf(server, "localhost", {
      sslmode: "verify-full",
      sslrootcert: ca,
      sslcert: server.clientCertFile!,
      sslkey: server.clientKeyFile!,
    }));
    assert.equal(row.client_dn, "/CN=root");
  });

  await t.step("a missing certificate file is a ConnectionError naming the file", async () => {
    const missing = `${ca}.missing`;
    const error = await refusal(
      urlOf(server, "localhost", { sslmode: "verify-full", sslrootcert: missing }),
    );
    assert.equal(error.code, "TLS_FILE_ERROR");
    assert.ok(error.message.includes(missing));
  });

  await t.step("the sync Database connects with verify-full and is refused with another CA", () => {
    {
      using db = new Database(
        urlOf(server, "localhost", { sslmode: "verify-full", sslrootcert: ca }),
      );
      assert.equal(db.queryOne<SslRow>(SSL_QUERY)?.ssl, true);
    }
    let error: unknown;
    try {
      using _db = new Database(
        urlOf(server, "localhost", { sslmode: "verify-full", sslrootcert: wrongCa }),
      );
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ConnectionError, String(error));
    assert.match(error.message, /certificate/i);
  });
});

Deno.test("TLS: sslmode=require against a server without TLS is refused with a clear ConnectionError", async () => {
  await using server = await startTestDatabase({ ownServer: true });
  const error = await refusal(`${server.url}?sslmode=require`);
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
  assert.match(error.message, /SSL|TLS/i);
});
