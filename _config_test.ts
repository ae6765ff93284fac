import assert from "node:assert/strict";
import { describeTarget, hostList, resolveConfig } from "./_config.ts";
import { parseUrl } from "./_url.ts";
import { AsyncDatabase } from "./async_database.ts";
import { ValidationError } from "./errors.ts";

const ENV_NAMES = [
  "DATABASE_URL",
  "PGHOST",
  "PGPORT",
  "PGDATABASE",
  "PGUSER",
  "PGPASSWORD",
  "PGSSLMODE",
] as const;

/**
 * Runs `action` with exactly the given connection variables set (the others unset), then puts
 * the environment back. Synchronous, so no other test can see the change.
 */
function withEnv<T>(vars: Partial<Record<(typeof ENV_NAMES)[number], string>>, action: () => T): T {
  const saved = new Map(ENV_NAMES.map((name) => [name, Deno.env.get(name)]));
  for (const name of ENV_NAMES) {
    const value = vars[name];
    if (value === undefined) Deno.env.delete(name);
    else Deno.env.set(name, value);
  }
  try {
    return action();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
}

function throwsValidation(fn: () => unknown, field?: string, forbidden?: string): ValidationError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ValidationError, `expected ValidationError, got ${caught}`);
  assert.equal(caught.code, "VALIDATION_ERROR");
  if (field !== undefined) assert.equal(caught.field, field);
  if (forbidden !== undefined) {
    assert.ok(!caught.message.includes(forbidden), `"${forbidden}" leaked: ${caught.message}`);
    assert.ok(!String(caught.stack).includes(forbidden), `"${forbidden}" leaked into the stack`);
  }
  return caught;
}

Deno.test("resolveConfig() falls back to the defaults table when nothing is given", () => {
  const config = withEnv({}, () => resolveConfig(undefined, {}));
  assert.deepEqual(config.hosts, ["localhost"]);
  assert.deepEqual(config.ports, [26257]);
  assert.equal(config.database, "defaultdb");
  assert.equal(config.user, "root");
  assert.equal(config.password, undefined);
  assert.equal(config.sslmode, "disable");
  assert.equal(config.applicationName, "manticore-db");
  assert.equal(config.minConnections, 2);
  assert.equal(config.maxConnections, 10);
  assert.equal(config.connectTimeout, 30);
  assert.equal(config.idleTimeout, 0);
  assert.equal(config.maxLifetime, 1800);
  assert.equal(config.statementTimeout, undefined);
  assert.equal(config.int8, "bigint");
  assert.equal(config.serverOptions, undefined);
  assert.deepEqual({ ...config.retry }, { maxRetries: 10, initialBackoff: 10, maxBackoff: 2000 });
  assert.ok(Object.isFrozen(config));
});

Deno.test("resolveConfig() takes PG* variables over the defaults", () => {
  const config = withEnv({
    PGHOST: "pghost",
    PGPORT: "5555",
    PGDATABASE: "pgdb",
    PGUSER: "pguser",
    PGPASSWORD: "pgpass",
    PGSSLMODE: "require",
  }, () => resolveConfig(undefined));
  assert.deepEqual(config.hosts, ["pghost"]);
  assert.deepEqual(config.ports, [5555]);
  assert.equal(config.database, "pgdb");
  assert.equal(config.user, "pguser");
  assert.equal(config.password, "pgpass");
  assert.equal(config.sslmode, "require");
});

Deno.test("resolveConfig() takes DATABASE_URL over PG* variables, which fill its gaps", () => {
  const config = withEnv({
    DATABASE_URL: "postgresql://envuser@envhost:7777/envdb",
    PGHOST: "pghost",
    PGPORT: "5555",
    PGDATABASE: "pgdb",
    PGUSER: "pguser",
    PGPASSWORD: "pgpass",
  }, () => resolveConfig(undefined));
  assert.deepEqual(config.hosts, ["envhost"]);
  assert.deepEqual(config.ports, [7777]);
  assert.equal(config.database, "envdb");
  assert.equal(config.user, "envuser");
  assert.equal(config.password, "pgpass");
});

Deno.test("resolveConfig() takes the URL over DATABASE_URL and PG* variables", () => {
  const config = withEnv({
    DATABASE_URL: "postgresql://envuser:envpass@envhost:7777/envdb?application_name=env",
    PGHOST: "pghost",
    PGDATABASE: "pgdb",
  }, () => resolveConfig("postgresql://urluser@urlhost:6666/urldb"));
  assert.deepEqual(config.hosts, ["urlhost"]);
  assert.deepEqual(config.ports, [6666]);
  assert.equal(config.database, "urldb");
  assert.equal(config.user, "urluser");
  // DATABASE_URL is not consulted at all when a URL is given.
  assert.equal(config.password, undefined);
  assert.equal(config.applicationName, "manticore-db");
});

Deno.test("resolveConfig() takes explicit options over the URL and the environment", () => {
  const config = withEnv({
    DATABASE_URL: "postgresql://envuser@envhost:7777/envdb",
    PGPASSWORD: "pgpass",
  }, () =>
    resolveConfig("postgresql://urluser:urlpass@urlhost:6666/urldb?sslmode=require", {
      host: "explicit",
      port: 1234,
      database: "exdb",
      user: "exuser",
      password: "expass",
      sslmode: "disable",
      applicationName: "exapp",
      minConnections: 0,
      maxConnections: 3,
      connectTimeout: 2,
      idleTimeout: 5,
      maxLifetime: 60,
      statementTimeout: 1000,
      int8: "string",
      retry: { maxRetries: 3, initialBackoff: undefined },
    }));
  assert.deepEqual(config.hosts, ["explicit"]);
  assert.deepEqual(config.ports, [1234]);
  assert.equal(config.database, "exdb");
  assert.equal(config.user, "exuser");
  assert.equal(config.password, "expass");
  assert.equal(config.sslmode, "disable");
  assert.equal(config.applicationName, "exapp");
  assert.equal(config.minConnections, 0);
  assert.equal(config.maxConnections, 3);
  assert.equal(config.connectTimeout, 2);
  assert.equal(config.idleTimeout, 5);
  assert.equal(config.maxLifetime, 60);
  assert.equal(config.statementTimeout, 1000);
  assert.equal(config.int8, "string");
  assert.deepEqual({ ...config.retry }, { maxRetries: 3, initialBackoff: 10, maxBackoff: 2000 });
});

Deno.test("resolveConfig() fills a port missing from the URL from PGPORT", () => {
  const fromUrl = withEnv({ PGPORT: "5555" }, () => resolveConfig("postgresql://u@h/db"));
  assert.deepEqual(fromUrl.ports, [5555]);
  const fromEnvUrl = withEnv(
    { DATABASE_URL: "postgresql://u@h1,h2:7777/db", PGPORT: "5555" },
    () => resolveConfig(undefined),
  );
  // A port the URL gives wins over PGPORT, for the hosts without one too.
  assert.deepEqual(fromEnvUrl.ports, [7777, 7777]);
});

Deno.test("resolveConfig() treats an empty environment variable as unset", () => {
  const config = withEnv(
    { DATABASE_URL: "", PGHOST: "", PGUSER: "" },
    () => resolveConfig(undefined),
  );
  assert.deepEqual(config.hosts, ["localhost"]);
  assert.equal(config.user, "root");
});

Deno.test("parseUrl() reads several host:port pairs for failover", () => {
  const parts = parseUrl("postgresql://u@h1:26257,h2:26258,[::1]:5432,h4/db");
  assert.deepEqual(parts.hosts, ["h1", "h2", "::1", "h4"]);
  assert.deepEqual(parts.ports?.slice(0, 3), [26257, 26258, 5432]);
  assert.ok(Number.isNaN(parts.ports?.[3]));
  const config = withEnv({}, () => resolveConfig("postgresql://u@h1:26257,h2:26258,h3/db"));
  assert.deepEqual(config.hosts, ["h1", "h2", "h3"]);
  assert.deepEqual(config.ports, [26257, 26258, 26257]);
  assert.equal(
    describeTarget(config),
    "postgresql://u@h1:26257,h2:26258,h3:26257/db",
  );
});

Deno.test("resolveConfig() reads several hosts from the host option and PGHOST", () => {
  const explicit = withEnv({}, () => resolveConfig(undefined, { host: "a, b", port: 5433 }));
  assert.deepEqual(explicit.hosts, ["a", "b"]);
  assert.deepEqual(explicit.ports, [5433, 5433]);
  const env = withEnv({ PGHOST: "x,y", PGPORT: "1,2" }, () => resolveConfig(undefined));
  assert.deepEqual(env.hosts, ["x", "y"]);
  assert.deepEqual(env.ports, [1, 2]);
});

Deno.test("parseUrl() percent-decodes the user name, password, host and database", () => {
  const parts = parseUrl("postgresql://us%40er%20x:p%40ss%3Aw%2Frd%25@my%2Dhost:5432/d%C3%A9b");
  assert.equal(parts.user, "us@er x");
  assert.equal(parts.password, "p@ss:w/rd%");
  assert.deepEqual(parts.hosts, ["my-host"]);
  assert.equal(parts.database, "déb");
});

Deno.test("parseUrl() accepts postgres://, postgresql:// and cockroachdb:// without a path", () => {
  for (const scheme of ["postgres", "postgresql", "cockroachdb", "PostgreSQL"]) {
    const parts = parseUrl(`${scheme}://root@localhost:26257`);
    assert.deepEqual(parts.hosts, ["localhost"]);
    assert.equal(parts.database, undefined);
  }
  assert.deepEqual(parseUrl("postgresql:///mydb"), { database: "mydb" });
});

Deno.test("parseUrl() passes options=-c name=value on as server options", () => {
  const parts = parseUrl(
    "postgresql://root@h/db?options=-c%20statement_timeout%3D5000%20-c%20search_path%3Dapp",
  );
  assert.equal(parts.serverOptions, "-c statement_timeout=5000 -c search_path=app");
  const config = withEnv(
    {},
    () => resolveConfig("postgresql://root@h/db?options=-c%20application_name%3Dx"),
  );
  assert.equal(config.serverOptions, "-c application_name=x");
});

Deno.test("parseUrl() reads sslmode, certificate paths, application_name and timeouts", () => {
  const parts = parseUrl(
    "postgresql://root@h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.crt&sslcert=c.crt&sslkey=c.key&application_name=my%20app&connect_timeout=7&statement_timeout=250",
  );
  assert.equal(parts.sslmode, "verify-full");
  assert.equal(parts.sslrootcert, "/tmp/ca.crt");
  assert.equal(parts.sslcert, "c.crt");
  assert.equal(parts.sslkey, "c.key");
  assert.equal(parts.applicationName, "my app");
  assert.equal(parts.connectTimeout, 7);
  assert.equal(parts.statementTimeout, 250);
  // libpq's opportunistic modes encrypt.
  assert.equal(parseUrl("postgresql://h/db?sslmode=prefer").sslmode, "require");
  assert.equal(parseUrl("postgresql://h/db?sslmode=allow").sslmode, "require");
});

Deno.test("parseUrl() refuses an unknown URL parameter with ValidationError naming it", () => {
  const error = throwsValidation(
    () => parseUrl("postgresql://root:hunter2secret@h/db?sslmode=disable&pool_size=5"),
    "pool_size",
    "hunter2secret",
  );
  assert.match(error.message, /"pool_size"/);
  throwsValidation(
    () => new AsyncDatabase("postgresql://root@h/db?target_session_attrs=any"),
    "target_session_attrs",
  );
});

Deno.test("parseUrl() refuses a bad port with ValidationError", () => {
  for (const port of ["99999", "0", "abc", "-1", "12x", "1.5"]) {
    throwsValidation(() => parseUrl(`postgresql://root:pw@h:${port}/db`), "url", "pw@");
  }
  throwsValidation(() => withEnv({ PGPORT: "nope" }, () => resolveConfig(undefined)), "url");
  throwsValidation(() => withEnv({}, () => resolveConfig(undefined, { port: 0 })), "port");
  throwsValidation(() => withEnv({}, () => resolveConfig(undefined, { port: 70000 })), "port");
  throwsValidation(() => withEnv({}, () => resolveConfig(undefined, { port: 1.5 })), "port");
});

Deno.test("parseUrl() refuses what is not a postgresql:// URL without echoing it", () => {
  throwsValidation(() => parseUrl("mysql://root:topsecretpw@h/db"), "url", "topsecretpw");
  throwsValidation(() => parseUrl("root:topsecretpw@h/db"), "url", "topsecretpw");
  throwsValidation(() => parseUrl("postgresql://root:%zz-topsecretpw@h/db"), "url", "topsecretpw");
  throwsValidation(() => parseUrl("postgresql://[::1/db"), "url");
});

Deno.test("resolveConfig() lowers the default minConnections to a smaller maxConnections", () => {
  withEnv({}, () => {
    const one = resolveConfig(undefined, { maxConnections: 1 });
    assert.equal(one.minConnections, 1);
    assert.equal(one.maxConnections, 1);
    assert.equal(resolveConfig(undefined, { maxConnections: 3 }).minConnections, 2);
    assert.equal(
      resolveConfig(undefined, { minConnections: 0, maxConnections: 1 }).minConnections,
      0,
    );
  });
});

Deno.test("resolveConfig() refuses bad sslmode, counts, timeouts and int8 with ValidationError", () => {
  withEnv({}, () => {
    throwsValidation(() => resolveConfig("postgresql://h/db?sslmode=sometimes"), "sslmode");
    throwsValidation(
      () => resolveConfig(undefined, { sslmode: "on" as unknown as "disable" }),
      "sslmode",
    );
    throwsValidation(() => resolveConfig(undefined, { maxConnections: 0 }), "maxConnections");
    throwsValidation(() => resolveConfig(undefined, { minConnections: -1 }), "minConnections");
    throwsValidation(
      () => resolveConfig(undefined, { minConnections: 5, maxConnections: 4 }),
      "minConnections",
    );
    throwsValidation(() => resolveConfig(undefined, { connectTimeout: -1 }), "connectTimeout");
    throwsValidation(() => resolveConfig(undefined, { idleTimeout: NaN }), "idleTimeout");
    throwsValidation(
      () => resolveConfig(undefined, { int8: "float" as unknown as "bigint" }),
      "int8",
    );
    throwsValidation(
      () => resolveConfig(undefined, { retry: { maxRetries: -1 } }),
      "maxRetries",
    );
    throwsValidation(
      () => resolveConfig("postgresql://h/db?connect_timeout=soon"),
      "connect_timeout",
    );
    throwsValidation(() => resolveConfig(undefined, { host: "a,,b" }), "host");
  });
  throwsValidation(
    () => withEnv({ PGSSLMODE: "bogus" }, () => resolveConfig(undefined)),
    "PGSSLMODE",
  );
});

Deno.test("the password never appears in String(db), Deno.inspect(db) or describeTarget()", () => {
  const secret = "Sup3r-Secret-Pw";
  const fromUrl = new AsyncDatabase(`postgresql://alice:${secret}@db.example:26257/bank`);
  const fromOptions = withEnv(
    {},
    () => new AsyncDatabase({ host: "db.example", password: secret }),
  );
  const fromEnv = withEnv({ PGPASSWORD: secret, PGHOST: "db.example" }, () => new AsyncDatabase());
  for (const db of [fromUrl, fromOptions, fromEnv]) {
    for (const shown of [String(db), `${db}`, Deno.inspect(db), Deno.inspect({ db })]) {
      assert.ok(!shown.includes(secret), `password leaked: ${shown}`);
      assert.match(shown, /db\.example:26257/);
    }
  }
  assert.equal(String(fromUrl), "AsyncDatabase(postgresql://alice@db.example:26257/bank)");
  assert.equal(
    describeTarget(withEnv({}, () => resolveConfig(`postgresql://alice:${secret}@[::1]:5/x`))),
    "postgresql://alice@[::1]:5/x",
  );
});

Deno.test("the password never appears in a configuration error", () => {
  const secret = "Sup3r-Secret-Pw";
  const urls = [
    `postgresql://alice:${secret}@h:notaport/db`,
    `postgresql://alice:${secret}@h/db?unknown=1`,
    `postgresql://alice:${secret}@h/db?sslmode=${secret}`,
    `postgresql://alice:${secret}@h/db?connect_timeout=x`,
  ];
  for (const url of urls) {
    let caught: unknown;
    try {
      new AsyncDatabase(url);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ValidationError, `no ValidationError for ${url}`);
    assert.ok(!Deno.inspect(caught).includes(`alice:${secret}`), Deno.inspect(caught));
  }
  throwsValidation(
    () => new AsyncDatabase({ password: secret, maxConnections: -5 }),
    "maxConnections",
    secret,
  );
});

Deno.test("new AsyncDatabase() refuses a URL that is not a string with ValidationError", () => {
  throwsValidation(() => resolveConfig(42 as unknown as string), "url");
});

Deno.test("hostList() names every host with its port, an IPv6 address in brackets", () => {
  const config = withEnv({}, () => resolveConfig("postgresql://u@h1:26257,[::1]:5432,h3/db"));
  assert.equal(hostList(config), "h1:26257,[::1]:5432,h3:26257");
});

Deno.test("resolveConfig() names the unit of a duration it refuses", () => {
  for (
    const [options, message] of [
      [
        { connectTimeout: -1 },
        "Cannot use connectTimeout -1: expected a non-negative number of seconds",
      ],
      [
        { idleTimeout: Infinity },
        "Cannot use idleTimeout Infinity: expected a non-negative number of seconds",
      ],
      [
        { statementTimeout: -5 },
        "Cannot use statementTimeout -5: expected a non-negative number of milliseconds",
      ],
      [
        { retry: { maxBackoff: -1 } },
        "Cannot use maxBackoff -1: expected a non-negative number of milliseconds",
      ],
    ] as const
  ) {
    assert.throws(
      () => withEnv({}, () => resolveConfig(undefined, options)),
      (e: unknown) => e instanceof ValidationError && e.message === message,
    );
  }
});
