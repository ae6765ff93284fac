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
import { AsyncDatabase } from "./async_database.ts";

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
 * ```ts ignore
 * import { startTestDatabase } from "@manticore/cockroachdb/testing";
 *
 * await using test = await startTestDatabase({
 *   url: "postgresql://root@localhost:26257/defaultdb?sslmode=disable",
 * });
 * console.log(test.url); // postgresql://root@localhost:26257/test_…?sslmode=disable
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
const HOST = "127.0.0.1";
const SERVER_USER = "postgres";
const PORT_ATTEMPTS = 5;
// The same shape as the client's URL parser accepts: scheme, authority, path, query, fragment.
const URL_SHAPE = /^((?:postgres|postgresql|cockroachdb):\/\/[^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i;

/** A database created for this call on a server it did not start. */
class ExternalDatabase implements TestDatabase {
  readonly url: string;
  readonly external = true;
  readonly #serverUrl: string;
  readonly #name: string;
  readonly #source: string;
  #dropping: Promise<void> | undefined;

  static async create(serverUrl: string, source: string): Promise<ExternalDatabase> {
    if (typeof serverUrl !== "string" || !URL_SHAPE.test(serverUrl.trim())) {
      throw new TypeError(
        `Cannot use the server ${
          typeof serverUrl === "string" ? `"${redact(serverUrl)}"` : String(serverUrl)
        } from ${source}: expected postgresql://user@host:port/database`,
      );
    }
    const name = `test_${Date.now().toString(36)}_${randomHex(4)}`;
    try {
      await onServer(serverUrl, async (admin, server) => {
        await admin.execute(`CREATE DATABASE ${quote(name)}`);
        if (server.cockroach) return;
        try {
          // Serializable like a server of its own, so that conflicts fail with 40001 here too.
          await admin.execute(
            `ALTER DATABASE ${quote(name)} SET default_transaction_isolation = 'serializable'`,
          );
        } catch (error) {
          await admin.execute(`DROP DATABASE ${quote(name)}`).catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      throw new Error(
        `Cannot create a test database on "${redact(serverUrl)}" (from ${source}): ${
          messageOf(error)
        }`,
        { cause: error },
      );
    }
    return new ExternalDatabase(serverUrl, name, source);
  }

  private constructor(serverUrl: string, name: string, source: string) {
    this.#serverUrl = serverUrl;
    this.#name = name;
    this.#source = source;
    // The server's URL with the fresh database in its path; the fragment means nothing here.
    const [, base, , query = ""] = URL_SHAPE.exec(serverUrl.trim())!;
    this.url = `${base}/${name}${query}`;
  }

  get host(): string {
    throw this.#unsupported("read the host of");
  }

  get port(): number {
    throw this.#unsupported("read the port of");
  }

  stop(): Promise<void> {
    this.#dropping ??= this.#drop().catch((error) => {
      this.#dropping = undefined; // a later stop() tries again
      throw new Error(
        `Cannot drop the test database "${this.#name}" on "${redact(this.#serverUrl)}": ${
          messageOf(error)
        }`,
        { cause: error },
      );
    });
    return this.#dropping;
  }

  stopServer(): Promise<void> {
    return Promise.reject(this.#unsupported("stop the server of"));
  }

  startServer(): Promise<void> {
    return Promise.reject(this.#unsupported("start the server of"));
  }

  restart(): Promise<void> {
    return Promise.reject(this.#unsupported("restart the server of"));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #drop(): Promise<void> {
    const name = quote(this.#name);
    return onServer(this.#serverUrl, async (admin, server) => {
      if (server.cockroach) {
        // CockroachDB drops a database with open sessions; CASCADE takes its tables along.
        await admin.execute(`DROP DATABASE IF EXISTS ${name} CASCADE`);
      } else if (server.version >= 130000) {
        await admin.execute(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } else {
        // Before PostgreSQL 13: shut the door, end the sessions inside, then drop (DROP waits
        // a few seconds for terminated sessions to exit).
        const exists = await admin.queryOne("SELECT 1 FROM pg_database WHERE datname = $1", [
          this.#name,
        ]);
        if (!exists) return;
        await admin.execute(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
        await admin.execute(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity " +
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
          [this.#name],
        );
        await admin.execute(`DROP DATABASE IF EXISTS ${name}`);
      }
    });
  }

  #unsupported(action: string): Error {
    return new Error(
      `Cannot ${action} the test database "${this.#name}": it is on an existing server ` +
        `(from ${this.#source}), not on one started by this call; pass { ownServer: true } ` +
        "for a server of its own",
    );
  }
}

interface ServerKind {
  readonly cockroach: boolean;
  /** `server_version_num`, e.g. 150004. */
  readonly version: number;
}

/** Runs `action` on one connection to the database named in `url`, then closes it. */
async function onServer(
  url: string,
  action: (admin: AsyncDatabase, server: ServerKind) => Promise<void>,
): Promise<void> {
  await using admin = new AsyncDatabase(url, { minConnections: 1, maxConnections: 1 });
  await admin.connect();
  const cockroach = admin.serverVersion.includes("CockroachDB");
  const row = await admin.queryOne<{ version: number }>(
    "SELECT current_setting('server_version_num')::int4 AS version",
  );
  await action(admin, { cockroach, version: row?.version ?? 0 });
}

/** The URL with its password replaced by `***`. */
function redact(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/?#@]*):[^/?#]*@/i, "$1:***@");
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface ServerUser {
  readonly uid: number;
  readonly gid: number;
}

interface Certificates {
  readonly caFile: string;
  readonly wrongCaFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly serverArgs: readonly string[];
}

interface Server {
  readonly process: Deno.ChildProcess;
  exited: boolean;
}

/** What every start of one server shares. */
interface Setup {
  readonly dir: string;
  readonly binDir: string;
  readonly user: ServerUser | undefined;
  readonly setpriv: string | undefined;
  readonly certificates: Certificates | undefined;
  readonly options: TestDatabaseOptions;
}

class LocalDatabase implements TestDatabase {
  readonly external = false;
  readonly host: string = HOST;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  readonly caFile?: string;
  readonly wrongCaFile?: string;
  readonly clientCertFile?: string;
  readonly clientKeyFile?: string;
  readonly #dir: string;
  readonly #command: readonly string[];
  readonly #user: ServerUser | undefined;
  readonly #startTimeout: number;
  #server: Server | undefined;
  #removed = false;
  // Serialises start, stop and removal, so that concurrent calls see a consistent state.
  #queue: Promise<void> = Promise.resolve();

  static async start(options: TestDatabaseOptions): Promise<LocalDatabase> {
    const binDir = options.binDir ?? await findBinDir();
    const dir = await Deno.makeTempDir({ prefix: "manticore_pg_" });
    try {
      const user = Deno.uid() === 0 ? await serverUser() : undefined;
      if (user) await Deno.chown(dir, user.uid, user.gid);
      const certificates = options.tls ? await makeCertificates(dir, user) : undefined;
      const setpriv = Deno.build.os === "linux" ? await findOnPath("setpriv") : undefined;
      await runTool(
        `${binDir}/initdb`,
        ["-D", `${dir}/data`, "-A", "trust", "-U", "root", "--no-sync", "-E", "UTF8", "--locale=C"],
        { cwd: dir, user },
      );
      const setup: Setup = { dir, binDir, user, setpriv, certificates, options };
      for (let attempt = 1;; attempt++) {
        const database = new LocalDatabase(setup, freePort());
        if (await database.#launch()) {
          globalThis.addEventListener("unload", database.#onUnload);
          return database;
        }
        if (attempt === PORT_ATTEMPTS) {
          throw new Error(
            `Cannot start the test database: ${PORT_ATTEMPTS} free ports were taken by others`,
          );
        }
      }
    } catch (error) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw error;
    }
  }

  private constructor(setup: Setup, port: number) {
    const { dir, user, certificates, options } = setup;
    this.#dir = dir;
    this.#user = user;
    this.#startTimeout = options.startTimeout ?? 30_000;
    this.port = port;
    this.url = `postgresql://root@${HOST}:${port}/postgres`;
    this.logFile = `${dir}/server.log`;
    this.caFile = certificates?.caFile;
    this.wrongCaFile = certificates?.wrongCaFile;
    this.clientCertFile = certificates?.clientCertFile;
    this.clientKeyFile = certificates?.clientKeyFile;
    // `exec` keeps the shell's pid for postgres, and the shell sends the server's output to
    // the log file, which Deno's spawn cannot do. On Linux, setpriv's parent-death signal
    // shuts the server down when this process dies without stop(), even by SIGKILL.
    this.#command = [
      setup.setpriv ? [setup.setpriv, "--pdeathsig", "SIGQUIT", "--"] : [],
      ["/bin/sh", "-c", 'exec "$@" >>"$0" 2>&1', this.logFile, `${setup.binDir}/postgres`],
      ["-D", `${dir}/data`, "-p", String(port), "-k", dir],
      ["-c", `listen_addresses=${HOST}`],
      ["-c", "default_transaction_isolation=serializable"],
      ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
      ["-c", "max_connections=200", "-c", "logging_collector=off"],
      certificates?.serverArgs ?? [],
      options.serverArgs ?? [],
    ].flat();
  }

  stop(): Promise<void> {
    return this.#serialise(async () => {
      if (this.#removed) return;
      this.#removed = true;
      globalThis.removeEventListener("unload", this.#onUnload);
      await this.#halt();
      await Deno.remove(this.#dir, { recursive: true }).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    });
  }

  stopServer(): Promise<void> {
    return this.#serialise(() => this.#halt());
  }

  startServer(): Promise<void> {
    return this.#serialise(async () => {
      if (this.#server && !this.#server.exited) return;
      await this.#relaunch();
    });
  }

  restart(): Promise<void> {
    return this.#serialise(async () => {
      await this.#halt();
      await this.#relaunch();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #serialise(action: () => Promise<void>): Promise<void> {
    const result = this.#queue.then(action);
    this.#queue = result.catch(() => {});
    return result;
  }

  async #relaunch(): Promise<void> {
    if (this.#removed) {
      throw new Error("Cannot start the test database: stop() has removed it");
    }
    if (!await this.#launch()) {
      throw new Error(
        `Cannot start the test database on port ${this.port}: another process uses the port`,
      );
    }
  }

  /** Starts `postgres`; resolves to false when the port is taken, throws on other failures. */
  async #launch(): Promise<boolean> {
    const logStart = await fileSize(this.logFile);
    // `detached` keeps a terminal's Ctrl-C away from the server: #halt() stops it in order.
    const child = new Deno.Command(this.#command[0]!, {
      args: this.#command.slice(1),
      cwd: this.#dir,
      uid: this.#user?.uid,
      gid: this.#user?.gid,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    const server: Server = { process: child, exited: false };
    child.status.then(() => {
      server.exited = true;
    });
    this.#server = server;

    const deadline = Date.now() + this.#startTimeout;
    while (!await this.#isReady(child.pid)) {
      if (server.exited) {
        const { code } = await child.status;
        const log = await readFrom(this.logFile, logStart);
        if (log.includes("Address already in use")) return false;
        throw new Error(
          `Cannot start the test database: postgres exited with code ${code}:\n${tail(log)}`,
        );
      }
      if (Date.now() > deadline) {
        await this.#halt();
        const log = await readFrom(this.logFile, logStart);
        throw new Error(
          `Cannot start the test database: no connections accepted after ` +
            `${this.#startTimeout} ms:\n${tail(log)}`,
        );
      }
      await sleep(20);
    }
    // A forgotten stop() must not keep the program alive; #onUnload then ends the server.
    child.unref();
    return true;
  }

  // postgres writes "ready" into line 8 of postmaster.pid once it accepts connections (what
  // `pg_ctl -w` waits for). The pid check skips a stale file left by a killed server.
  async #isReady(pid: number): Promise<boolean> {
    try {
      const lines = (await Deno.readTextFile(`${this.#dir}/data/postmaster.pid`)).split("\n");
      return lines[0] === String(pid) && lines[7]?.trim() === "ready";
    } catch {
      return false;
    }
  }

  /** Stops the server: fast shutdown, then immediate shutdown, then SIGKILL. */
  async #halt(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    server.process.ref();
    const steps: [Deno.Signal, number][] = [["SIGINT", 30_000], ["SIGQUIT", 10_000]];
    for (const [signal, timeout] of steps) {
      if (server.exited) break;
      signalProcess(server.process, signal);
      if (await settlesWithin(server.process.status, timeout)) break;
    }
    if (!server.exited) signalProcess(server.process, "SIGKILL");
    await server.process.status;
  }

  // Last resort when the program ends without stop(): an immediate shutdown, so that no server
  // outlives the program, and the removal of what can be removed without waiting (unlinked
  // files the server still holds open go when it exits).
  readonly #onUnload = (): void => {
    if (this.#server && !this.#server.exited) signalProcess(this.#server.process, "SIGQUIT");
    try {
      Deno.removeSync(this.#dir, { recursive: true });
    } catch {
      // The exiting server raced the removal; the rest is left to the temporary directory.
    }
  };
}

function signalProcess(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // It has exited in the meantime.
  }
}

async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && await isExecutable(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

async function findBinDir(): Promise<string> {
  const initdbOnPath = await findOnPath("initdb");
  if (initdbOnPath) {
    // Through symlinks, so that postgres comes from the same installation as initdb.
    const initdb = await Deno.realPath(initdbOnPath);
    const binDir = initdb.slice(0, initdb.lastIndexOf("/"));
    if (await isExecutable(`${binDir}/postgres`)) return binDir;
  }
  const versions: string[] = [];
  try {
    for await (const { name } of Deno.readDir("/usr/lib/postgresql")) {
      if (/^\d+(\.\d+)?$/.test(name)) versions.push(name);
    }
  } catch {
    // No Debian-style installation.
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const binDir = `/usr/lib/postgresql/${version}/bin`;
    if (await isExecutable(`${binDir}/initdb`) && await isExecutable(`${binDir}/postgres`)) {
      return binDir;
    }
  }
  throw new Error(
    "Cannot find the PostgreSQL server: no initdb and postgres on PATH or under " +
      "/usr/lib/postgresql/*/bin; install PostgreSQL (Debian: apt-get install postgresql) " +
      "or pass binDir",
  );
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

// initdb and postgres refuse to run as root.
async function serverUser(): Promise<ServerUser> {
  const existing = await lookUpUser(SERVER_USER);
  if (existing) return existing;
  const created = await new Deno.Command("useradd", {
    args: [
      "--system",
      "--user-group",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      SERVER_USER,
    ],
    stdin: "null",
  }).output().catch((error: Error) => error);
  // Another process may have created the user meanwhile: look again before failing.
  const user = await lookUpUser(SERVER_USER);
  if (user) return user;
  const detail = created instanceof Error
    ? created.message
    : new TextDecoder().decode(created.stderr).trim();
  throw new Error(
    `Cannot create the user "${SERVER_USER}" to run the test database as root: ${detail}`,
  );
}

async function lookUpUser(name: string): Promise<ServerUser | undefined> {
  const output = await new Deno.Command("id", { args: [name], stdin: "null" }).output();
  const match = /uid=(\d+).*?gid=(\d+)/.exec(new TextDecoder().decode(output.stdout));
  return output.success && match ? { uid: Number(match[1]), gid: Number(match[2]) } : undefined;
}

interface ToolOptions {
  readonly cwd: string;
  readonly user?: ServerUser | undefined;
}

/** Runs a tool to completion; throws with the tail of its output when it fails. */
async function runTool(
  command: string,
  args: readonly string[],
  options: ToolOptions,
): Promise<void> {
  const name = command.slice(command.lastIndexOf("/") + 1);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, {
      args: [...args],
      cwd: options.cwd,
      uid: options.user?.uid,
      gid: options.user?.gid,
      stdin: "null",
    }).output();
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot run "${command}" for the test database: ${detail}`, { cause: error });
  }
  if (!output.success) {
    const decoder = new TextDecoder();
    const text = decoder.decode(output.stdout) + decoder.decode(output.stderr);
    throw new Error(
      `Cannot prepare the test database: ${name} exited with code ${output.code}:\n${tail(text)}`,
    );
  }
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
async function makeCertificates(
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

function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  try {
    return listener.addr.port;
  } finally {
    listener.close();
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

async function readFrom(path: string, offset: number): Promise<string> {
  try {
    return new TextDecoder().decode((await Deno.readFile(path)).subarray(offset));
  } catch {
    return "";
  }
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves to true when `promise` settles within `ms`, and clears its timer either way. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
