/**
 * A throwaway PostgreSQL database for tests.
 *
 * {@linkcode startTestDatabase} gives each call a database of its own, and
 * {@linkcode TestDatabase.stop} removes it. Where it comes from:
 *
 * - By default, a PostgreSQL server started from the binaries installed on the machine, in a
 *   temporary directory, on a free loopback port, with
 *   `default_transaction_isolation = serializable` (CockroachDB's default), so that transactions
 *   conflict and fail with SQLSTATE `40001` as they do on CockroachDB. It works when run as root:
 *   the server then runs as the unprivileged user `postgres` (created with `useradd` if missing).
 * - When the `TEST_DATABASE_URL` environment variable (or the `url` option) names a server, such
 *   as a CockroachDB node, nothing is started: a fresh database with a unique name is created on
 *   that server, and `stop()` drops it, and only it.
 *
 * It never reads `DATABASE_URL`: in a project that is the development database, and tests must
 * not write into it.
 *
 * Linux and macOS only; needs `--allow-env --allow-read --allow-write --allow-run --allow-net
 * --allow-sys` (or `-A`).
 *
 * @example A test with a database of its own
 * ```ts
 * import { AsyncDatabase } from "@manticore/cockroachdb";
 * import { startTestDatabase } from "@manticore/cockroachdb/testing";
 *
 * Deno.test("todos are stored", async () => {
 *   await using server = await startTestDatabase();
 *   await using db = new AsyncDatabase(server.url);
 *   await db.execute("CREATE TABLE todos (id INT PRIMARY KEY, title TEXT)");
 *   await db.execute("INSERT INTO todos VALUES (1, 'write tests')");
 *   console.log(await db.queryOne("SELECT title FROM todos")); // { title: "write tests" }
 * });
 * ```
 *
 * @example Against an existing server (CockroachDB, say)
 * ```sh
 * TEST_DATABASE_URL=postgresql://root@localhost:26257/defaultdb?sslmode=disable deno test -A
 * ```
 *
 * @module
 */
import { ExternalDatabase } from "./_testing/external.ts";
import { LocalDatabase } from "./_testing/local.ts";

/** Options for {@linkcode startTestDatabase}. */
export interface TestDatabaseOptions {
  /**
   * A server to create the test database on, instead of starting one, such as
   * `postgresql://root@localhost:26257/defaultdb?sslmode=disable`. The helper connects to the
   * database in the URL to run `CREATE DATABASE` and `DROP DATABASE`, so the user needs the
   * right to create databases; {@linkcode TestDatabase.url} is this URL with the fresh
   * database in place of that one. Cannot be combined with `ownServer`, `tls` or `serverArgs`.
   *
   * @default {the `TEST_DATABASE_URL` environment variable; when it is unset or empty, a server of its own is started}
   */
  readonly url?: string;
  /**
   * Start a server of its own even when `TEST_DATABASE_URL` is set, for tests that stop,
   * restart or reconfigure the server (see {@linkcode TestDatabase.restart}).
   *
   * @default {false}
   */
  readonly ownServer?: boolean;
  /**
   * Serve TLS with certificates made by `openssl` for this server: a CA, a server certificate
   * for `localhost` and `127.0.0.1`, a client certificate for `root`, and an unrelated CA for
   * negative tests (see {@linkcode TestDatabase.caFile} and its neighbours). Implies a server of
   * its own. Plain connections are still accepted.
   *
   * @default {false}
   */
  readonly tls?: boolean;
  /**
   * Extra command-line arguments for `postgres`, such as `["-c", "statement_timeout=0"]`.
   * Implies a server of its own when not empty, since an existing server cannot take them.
   *
   * @default {[]}
   */
  readonly serverArgs?: readonly string[];
  /**
   * The directory holding `initdb` and `postgres`; used only when a server is started.
   *
   * @default {the directory of `initdb` on `PATH`, else the newest `/usr/lib/postgresql/<version>/bin`}
   */
  readonly binDir?: string;
  /**
   * How long to wait for a started server to accept connections, in milliseconds.
   *
   * @default {30000}
   */
  readonly startTimeout?: number;
}

/**
 * A test database, from {@linkcode startTestDatabase}.
 *
 * `await using` stops it at the end of the scope.
 */
export interface TestDatabase extends AsyncDisposable {
  /**
   * The connection URL: `postgresql://root@127.0.0.1:<port>/postgres` on a server of its own;
   * on an existing server, that server's URL with the fresh database, e.g.
   * `postgresql://root@localhost:26257/test_m1k2x3_9f3a0c1e?sslmode=disable`.
   */
  readonly url: string;
  /**
   * True when the database was created on an existing server (`TEST_DATABASE_URL` or the
   * `url` option) rather than on a server started by this call. Then {@linkcode host},
   * {@linkcode port}, {@linkcode stopServer}, {@linkcode startServer} and {@linkcode restart}
   * throw, and the file properties are undefined.
   */
  readonly external: boolean;
  /**
   * The host the server listens on (`127.0.0.1`).
   *
   * @throws {Error} When the database is on an existing server.
   */
  readonly host: string;
  /**
   * The TCP port the server listens on; it stays the same across restarts.
   *
   * @throws {Error} When the database is on an existing server.
   */
  readonly port: number;
  /** The server's log file; undefined when the database is on an existing server. */
  readonly logFile?: string;
  /** The CA certificate that signed the server certificate (`tls: true` only). */
  readonly caFile?: string;
  /** A CA certificate unrelated to the server, for verification failures (`tls: true` only). */
  readonly wrongCaFile?: string;
  /** A client certificate for the user `root`, signed by {@linkcode caFile} (`tls: true` only). */
  readonly clientCertFile?: string;
  /** The private key of {@linkcode clientCertFile}, mode 0600 (`tls: true` only). */
  readonly clientKeyFile?: string;
  /**
   * Removes the test database. A server of its own is stopped and its directory removed. On an
   * existing server, the sessions still connected to the database are ended and the database
   * is dropped (`WITH (FORCE)` on PostgreSQL 13 and later, `CASCADE` on CockroachDB); nothing
   * else on that server is touched. Idempotent.
   *
   * @returns A promise that resolves once the database is gone.
   * @throws {Error} When the existing server cannot be reached or refuses the drop; a later
   * call tries again.
   */
  stop(): Promise<void>;
  /**
   * Stops the server process (fast shutdown) and keeps its data, for fault tests.
   * Does nothing when the server is not running.
   *
   * @returns A promise that resolves once the server has exited.
   * @throws {Error} When the database is on an existing server.
   */
  stopServer(): Promise<void>;
  /**
   * Starts the server process again on the same port and data directory.
   * Does nothing when the server is running.
   *
   * @returns A promise that resolves once the server accepts connections.
   * @throws {Error} When the database is on an existing server, the server was removed by
   * {@linkcode stop}, or it cannot start (for example because another process took its port).
   */
  startServer(): Promise<void>;
  /**
   * Stops the server process and starts it again on the same port and data directory.
   * Open connections are closed by the server.
   *
   * @returns A promise that resolves once the server accepts connections again.
   * @throws {Error} Under the same conditions as {@linkcode startServer}.
   */
  restart(): Promise<void>;
}

/**
 * Gives the caller a test database of its own: a throwaway PostgreSQL server, or a fresh
 * database on the server named by `TEST_DATABASE_URL` or the `url` option. It never reads
 * `DATABASE_URL`.
 *
 * Unless a server is named (and none of `ownServer`, `tls`, `serverArgs` asks for a server of
 * its own), this runs `initdb` in a new temporary directory and starts `postgres` on a free
 * port of `127.0.0.1`, with `default_transaction_isolation = serializable`, durability turned
 * off for speed, and the server log written to {@linkcode TestDatabase.logFile}. The superuser
 * is `root`, authentication is `trust`, the database is `postgres`. As root, the server runs as
 * the user `postgres`, which is created when missing. A program that ends without
 * {@linkcode TestDatabase.stop} still shuts its server down.
 *
 * On a named server it creates a database called `test_<time>_<random>` (on PostgreSQL with
 * `default_transaction_isolation = serializable`, like a server of its own). A program killed
 * before {@linkcode TestDatabase.stop} leaves that database behind; the name says what it is.
 *
 * @param options Where the database lives and how to start the server.
 * @returns The database; call {@linkcode TestDatabase.stop} (or use `await using`) to remove it.
 * @throws {TypeError} When `url` is not a `postgresql://` URL, or is combined with an option
 * that needs a server of its own.
 * @throws {Error} When no PostgreSQL binaries are found, `initdb` or `openssl` fails, or the
 * server does not accept connections within `startTimeout` (the message holds the tail of the
 * tool's output or of the server log); or when the named server cannot be reached or refuses
 * `CREATE DATABASE` (the message names the server, without its password).
 *
 * @example A server of its own, restarted
 * ```ts
 * import { startTestDatabase } from "@manticore/cockroachdb/testing";
 *
 * await using server = await startTestDatabase({ ownServer: true });
 * await server.restart();
 * console.log(server.url); // the same URL: the port is kept
 * ```
 *
 * @example A fresh database on an existing server
 * ```ts
 * import { startTestDatabase } from "@manticore/cockroachdb/testing";
 *
 * // Any server the user may create databases on, such as the CockroachDB node at
 * // postgresql://root@localhost:26257/defaultdb?sslmode=disable.
 * const server = Deno.env.get("DATABASE_URL")!;
 * await using test = await startTestDatabase({ url: server });
 * console.log(test.url); // there: postgresql://root@localhost:26257/test_…?sslmode=disable
 * ```
 */
export async function startTestDatabase(
  options: TestDatabaseOptions = {},
): Promise<TestDatabase> {
  const needsOwnServer = [
    options.ownServer === true && "ownServer",
    options.tls === true && "tls",
    (options.serverArgs?.length ?? 0) > 0 && "serverArgs",
  ].find((name) => name !== false);
  if (options.url !== undefined) {
    if (needsOwnServer) {
      throw new TypeError(
        `Cannot use the url option with ${needsOwnServer}: ${needsOwnServer} needs a server ` +
          "started by this call, and url names an existing one",
      );
    }
    return await ExternalDatabase.create(options.url, "the url option");
  }
  if (!needsOwnServer) {
    const url = Deno.env.get(TEST_DATABASE_URL);
    if (url) return await ExternalDatabase.create(url, TEST_DATABASE_URL);
  }
  return await LocalDatabase.start(options);
}

const TEST_DATABASE_URL = "TEST_DATABASE_URL";
