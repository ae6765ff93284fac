import assert from "node:assert/strict";
import { startTestDatabase, type TestDatabase, type TestDatabaseOptions } from "./testing.ts";

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

/** Runs `action` with the environment variables set (undefined: unset), then restores them. */
async function withEnv<T>(
  values: Readonly<Record<string, string | undefined>>,
  action: () => Promise<T>,
): Promise<T> {
  const saved = Object.keys(values).map((name) => [name, Deno.env.get(name)] as const);
  const put = (name: string, value: string | undefined) =>
    value === undefined ? Deno.env.delete(name) : Deno.env.set(name, value);
  for (const [name, value] of Object.entries(values)) put(name, value);
  try {
    return await action();
  } finally {
    for (const [name, value] of saved) put(name, value);
  }
}

// Addresses that must not be used: TEST-NET-1 (RFC 5737) and a closed port.
const BOGUS_URL = "postgresql://nobody@192.0.2.1:1/none";
const REFUSING_URL = "postgresql://nobody@127.0.0.1:1/nope";

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

Deno.test("startTestDatabase() ignores DATABASE_URL and starts a serializable server that stop() removes", async () => {
  const server = await withEnv(
    { DATABASE_URL: BOGUS_URL, TEST_DATABASE_URL: undefined },
    () => startTestDatabase(),
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

/** The database a URL names. */
function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

async function databaseExists(server: TestDatabase, name: string): Promise<boolean> {
  const count = await psql(
    server.url,
    `SELECT count(*) FROM pg_database WHERE datname = '${name.replaceAll("'", "''")}'`,
  );
  return count === "1";
}

Deno.test("startTestDatabase() on an existing server creates a fresh database that stop() drops", async (t) => {
  // The existing server, started by the helper itself; a marker shows that stop() leaves the
  // rest of the server alone.
  await using host = await startTestDatabase({ ownServer: true });
  await psql(host.url, "CREATE TABLE marker (id INT); INSERT INTO marker VALUES (42)");
  const hostPrefix = `postgresql://root@127.0.0.1:${host.port}/`;

  await t.step("TEST_DATABASE_URL: a usable, serializable database per call", async () => {
    const [first, second] = await withEnv(
      { TEST_DATABASE_URL: host.url, DATABASE_URL: BOGUS_URL },
      async () => [await startTestDatabase(), await startTestDatabase()],
    );
    try {
      const names = [databaseOf(first.url), databaseOf(second.url)] as const;
      for (const database of [first, second]) {
        const name = databaseOf(database.url);
        assert.equal(database.external, true);
        assert.ok(database.url.startsWith(hostPrefix), database.url);
        assert.match(name, /^test_[0-9a-z]+_[0-9a-f]{8}$/);
        assert.equal(await psql(database.url, "SELECT current_database()"), name);
        assert.equal(
          await psql(database.url, "SHOW default_transaction_isolation"),
          "serializable",
        );
      }
      assert.notEqual(names[0], names[1]);

      // Isolated: a table made in one is not in the other, nor in the server's own database.
      await psql(first.url, "CREATE TABLE only_here (id INT); INSERT INTO only_here VALUES (1)");
      assert.equal(await psql(first.url, "SELECT count(*) FROM only_here"), "1");
      assert.equal(await psql(second.url, "SELECT to_regclass('only_here')"), "");
      assert.equal(await psql(host.url, "SELECT to_regclass('only_here')"), "");

      // A session left open in the database (a test that forgot close()) does not stop the drop.
      const leftover = new Deno.Command("psql", {
        args: [first.url, "-X", "-c", "SELECT pg_sleep(600)"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let ended: Deno.CommandOutput;
      let dropped = false;
      try {
        const sleeping = `SELECT count(*) FROM pg_stat_activity WHERE datname = '${
          names[0]
        }' AND query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()`;
        for (let i = 0; (await psql(host.url, sleeping)) !== "1"; i++) {
          assert.ok(i < 500, "the leftover session never started");
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await first.stop();
        dropped = true;
      } finally {
        // Once the database is dropped, no session can be left in it: psql has exited.
        if (!dropped) leftover.kill("SIGKILL");
        ended = await leftover.output();
      }
      assert.equal(ended.success, false);
      assert.match(new TextDecoder().decode(ended.stderr), /terminat/);
      assert.equal(await databaseExists(host, names[0]), false);
      assert.equal(await databaseExists(host, names[1]), true);
      assert.equal(await psql(second.url, "SELECT 1"), "1");
      assert.equal(await psql(host.url, "SELECT id FROM marker"), "42");
      await first.stop(); // idempotent

      await second.stop();
      assert.equal(await databaseExists(host, names[1]), false);
    } finally {
      // Leaves no database behind without hiding the failure that brought us here.
      await Promise.allSettled([first.stop(), second.stop()]);
    }
  });

  await t.step("the url option: the same, over TEST_DATABASE_URL, keeping the query", async () => {
    const url = `${host.url}?sslmode=disable&application_name=testing_test`;
    const database = await withEnv(
      { TEST_DATABASE_URL: BOGUS_URL, DATABASE_URL: BOGUS_URL },
      () => startTestDatabase({ url }),
    );
    const name = databaseOf(database.url);
    try {
      assert.equal(database.external, true);
      assert.equal(
        database.url,
        `${hostPrefix}${name}?sslmode=disable&application_name=testing_test`,
      );
      assert.equal(await psql(database.url, "SELECT current_database()"), name);
      assert.equal(await databaseExists(host, name), true);
    } finally {
      await database.stop();
    }
    assert.equal(await databaseExists(host, name), false);
    assert.equal(await psql(host.url, "SELECT id FROM marker"), "42");
  });

  await t.step("the server methods refuse, naming the database and the way out", async () => {
    await using database = await startTestDatabase({ url: host.url });
    const name = databaseOf(database.url);
    const refusal = (action: string) => ({
      message: new RegExp(
        `^Cannot ${action} the test database "${name}": it is on an existing server ` +
          `\\(from the url option\\).*pass \\{ ownServer: true \\}`,
      ),
    });
    assert.equal(database.logFile, undefined);
    assert.equal(database.caFile, undefined);
    assert.throws(() => database.host, refusal("read the host of"));
    assert.throws(() => database.port, refusal("read the port of"));
    await assert.rejects(database.restart(), refusal("restart the server of"));
    await assert.rejects(database.stopServer(), refusal("stop the server of"));
    await assert.rejects(database.startServer(), refusal("start the server of"));
    assert.equal(await psql(database.url, "SELECT 1"), "1");
  });

  await t.step("a role that may not create databases gets the server's refusal", async () => {
    await psql(host.url, "CREATE ROLE plain LOGIN");
    const url = `postgresql://plain@127.0.0.1:${host.port}/postgres`;
    await assert.rejects(
      startTestDatabase({ url }),
      (error: Error) => {
        assert.match(
          error.message,
          new RegExp(
            `^Cannot create a test database on "${url}" \\(from the url option\\): .*` +
              "permission denied to create database",
          ),
        );
        assert.ok(error.cause instanceof Error);
        return true;
      },
    );
  });
});

Deno.test("startTestDatabase() names the server in TEST_DATABASE_URL, without its password, when it cannot create the database", async () => {
  const url = "postgresql://someone:hunter2@127.0.0.1:1/postgres?connect_timeout=5";
  await assert.rejects(
    withEnv({ TEST_DATABASE_URL: url }, () => startTestDatabase()),
    (error: Error) => {
      assert.match(
        error.message,
        /^Cannot create a test database on "postgresql:\/\/someone:\*\*\*@127\.0\.0\.1:1\/postgres\?connect_timeout=5" \(from TEST_DATABASE_URL\): .*127\.0\.0\.1:1/,
      );
      assert.ok(!error.message.includes("hunter2"), error.message);
      return true;
    },
  );
});

Deno.test("startTestDatabase() refuses a url that is not a server URL, or with an option that needs a server of its own", async () => {
  for (
    const url of ["", "localhost:5432", "mysql://root@localhost/db", 5432 as unknown as string]
  ) {
    await assert.rejects(
      startTestDatabase({ url }),
      {
        name: "TypeError",
        message: /^Cannot use the server .* from the url option: expected postgresql:\/\//,
      },
    );
  }
  await assert.rejects(
    withEnv({ TEST_DATABASE_URL: "localhost:5432" }, () => startTestDatabase()),
    {
      name: "TypeError",
      message: /^Cannot use the server "localhost:5432" from TEST_DATABASE_URL/,
    },
  );
  const options: TestDatabaseOptions[] = [
    { ownServer: true },
    { tls: true },
    { serverArgs: ["-c", "work_mem=8MB"] },
  ];
  for (const option of options) {
    const name = Object.keys(option)[0];
    await assert.rejects(
      startTestDatabase({ url: REFUSING_URL, ...option }),
      {
        name: "TypeError",
        message: new RegExp(
          `^Cannot use the url option with ${name}: ${name} needs a server started`,
        ),
      },
    );
  }
});

Deno.test("startTestDatabase() passes serverArgs to a server of its own, over TEST_DATABASE_URL", async () => {
  await using server = await withEnv(
    { TEST_DATABASE_URL: BOGUS_URL },
    () => startTestDatabase({ serverArgs: ["-c", "statement_timeout=1234"] }),
  );
  assert.equal(server.external, false);
  assert.equal(await psql(server.url, "SHOW statement_timeout"), "1234ms");
});

Deno.test("startTestDatabase() rejects with the server log when postgres cannot start", async () => {
  await assert.rejects(
    startTestDatabase({ serverArgs: ["-c", "no_such_setting=1"] }),
    /Cannot start the test database: postgres exited .*\n.*unrecognized configuration parameter "no_such_setting"/,
  );
});

Deno.test("restart() keeps the data and the port", async () => {
  // ownServer: a server of its own although TEST_DATABASE_URL names one.
  await using server = await withEnv(
    { TEST_DATABASE_URL: BOGUS_URL },
    () => startTestDatabase({ ownServer: true }),
  );
  assert.equal(server.external, false);
  const { port, url } = server;
  await psql(url, "CREATE TABLE kept (id INT PRIMARY KEY); INSERT INTO kept VALUES (7)");
  await server.restart();
  assert.equal(server.port, port);
  assert.equal(await psql(url, "SELECT id FROM kept"), "7");
});

Deno.test("stopServer() stops the server until startServer() starts it again", async () => {
  await using server = await withEnv(
    { TEST_DATABASE_URL: BOGUS_URL },
    () => startTestDatabase({ ownServer: true }),
  );
  assert.equal(server.external, false);
  await psql(server.url, "CREATE TABLE kept (id INT)");
  await server.stopServer();
  await server.stopServer();
  await assert.rejects(psql(server.url, "SELECT 1"));
  await server.startServer();
  await server.startServer();
  assert.equal(await psql(server.url, "SELECT count(*) FROM kept"), "0");
});

Deno.test("startServer() throws when another process took the port", async () => {
  await using server = await startTestDatabase({ ownServer: true });
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
  await using server = await withEnv(
    { TEST_DATABASE_URL: BOGUS_URL },
    () => startTestDatabase({ tls: true }),
  );
  assert.equal(server.external, false);
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
