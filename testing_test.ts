import assert from "node:assert/strict";
import { startTestDatabase, type TestDatabase } from "./testing.ts";

// The database client is tested elsewhere; these tests talk to the server through psql.
async function psql(conninfo: string, sql: string): Promise<string> {
  const output = await new Deno.Command("psql", {
    args: [conninfo, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
    env: { PGCONNECT_TIMEOUT: "10" },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  if (!output.success) throw new Error(decoder.decode(output.stderr).trim());
  return decoder.decode(output.stdout).trim();
}

async function withEnv<T>(
  name: string,
  value: string | undefined,
  action: () => Promise<T>,
): Promise<T> {
  const saved = Deno.env.get(name);
  const put = (next: string | undefined) =>
    next === undefined ? Deno.env.delete(name) : Deno.env.set(name, next);
  put(value);
  try {
    return await action();
  } finally {
    put(saved);
  }
}

function directoryOf(server: TestDatabase): string {
  assert.ok(server.logFile);
  return server.logFile.slice(0, server.logFile.lastIndexOf("/"));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("startTestDatabase() starts a serializable server that stop() removes", async () => {
  // A DATABASE_URL that must not be used: ignoreEnv asks for a server of its own.
  const server = await withEnv(
    "DATABASE_URL",
    "postgresql://nobody@192.0.2.1:1/none",
    () => startTestDatabase({ ignoreEnv: true }),
  );
  const dir = directoryOf(server);
  try {
    assert.equal(server.external, false);
    assert.equal(server.host, "127.0.0.1");
    assert.equal(server.url, `postgresql://root@127.0.0.1:${server.port}/postgres`);
    assert.equal(await psql(server.url, "SHOW default_transaction_isolation"), "serializable");
    assert.equal(await psql(server.url, "SELECT current_user"), "root");
    assert.ok(await exists(dir));
  } finally {
    await server.stop();
  }
  assert.equal(await exists(dir), false);
  await assert.rejects(psql(server.url, "SELECT 1"));
  await server.stop();
});

Deno.test("startTestDatabase() uses DATABASE_URL when set and starts nothing", async () => {
  const url = "postgresql://someone@db.example:26257/defaultdb";
  await using server = await withEnv("DATABASE_URL", url, () => startTestDatabase());
  assert.equal(server.url, url);
  assert.equal(server.external, true);
  assert.equal(server.logFile, undefined);
  assert.throws(() => server.port, /external/);
  await assert.rejects(server.restart(), /Cannot restart the test database: .*external/);
  await assert.rejects(server.stopServer(), /external/);
  await assert.rejects(server.startServer(), /external/);
  await server.stop();
});

Deno.test("startTestDatabase() passes serverArgs to the server", async () => {
  await using server = await startTestDatabase({
    ignoreEnv: true,
    serverArgs: ["-c", "statement_timeout=1234"],
  });
  assert.equal(await psql(server.url, "SHOW statement_timeout"), "1234ms");
});

Deno.test("startTestDatabase() rejects with the server log when postgres cannot start", async () => {
  await assert.rejects(
    startTestDatabase({ serverArgs: ["-c", "no_such_setting=1"] }),
    /Cannot start the test database: postgres exited .*\n.*unrecognized configuration parameter "no_such_setting"/,
  );
});

Deno.test("restart() keeps the data and the port", async () => {
  await using server = await startTestDatabase({ ignoreEnv: true });
  const { port, url } = server;
  await psql(url, "CREATE TABLE kept (id INT PRIMARY KEY); INSERT INTO kept VALUES (7)");
  await server.restart();
  assert.equal(server.port, port);
  assert.equal(await psql(url, "SELECT id FROM kept"), "7");
});

Deno.test("stopServer() stops the server until startServer() starts it again", async () => {
  await using server = await startTestDatabase({ ignoreEnv: true });
  await psql(server.url, "CREATE TABLE kept (id INT)");
  await server.stopServer();
  await server.stopServer();
  await assert.rejects(psql(server.url, "SELECT 1"));
  await server.startServer();
  await server.startServer();
  assert.equal(await psql(server.url, "SELECT count(*) FROM kept"), "0");
});

Deno.test("startServer() throws when another process took the port", async () => {
  await using server = await startTestDatabase({ ignoreEnv: true });
  await server.stopServer();
  const squatter = Deno.listen({ hostname: server.host, port: server.port });
  try {
    await assert.rejects(server.startServer(), /another process uses the port/);
  } finally {
    squatter.close();
  }
  await server.startServer();
  assert.equal(await psql(server.url, "SELECT 1"), "1");
});

Deno.test("startTestDatabase({ tls: true }) serves TLS that verifies with caFile only", async () => {
  await using server = await startTestDatabase({ tls: true });
  assert.ok(server.caFile && server.wrongCaFile && server.clientCertFile && server.clientKeyFile);
  const conninfo = `port=${server.port} user=root dbname=postgres sslmode=verify-full`;
  const ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

  assert.equal(await psql(`host=localhost ${conninfo} sslrootcert=${server.caFile}`, ssl), "t");
  assert.equal(await psql(`host=127.0.0.1 ${conninfo} sslrootcert=${server.caFile}`, ssl), "t");
  await assert.rejects(
    psql(`host=localhost ${conninfo} sslrootcert=${server.wrongCaFile}`, ssl),
    /certificate verify failed/,
  );
  const withClientCertificate = `host=localhost ${conninfo} sslrootcert=${server.caFile} ` +
    `sslcert=${server.clientCertFile} sslkey=${server.clientKeyFile}`;
  assert.equal(
    await psql(
      withClientCertificate,
      "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    ),
    "/CN=root",
  );
  assert.equal(await psql(`${server.url}?sslmode=disable`, ssl), "f");
});
