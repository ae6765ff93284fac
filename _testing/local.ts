// A test database on a PostgreSQL server of its own: initdb in a temporary directory, postgres
// on a free loopback port (serializable, durability off), run as "postgres" when the caller is
// root and shut down with this process; stopped, started and restarted on the same port for
// fault tests, and removed with its directory by stop().
import { sleep } from "../_steps.ts";
import type { TestDatabase, TestDatabaseOptions } from "../testing.ts";
import { type Certificates, makeCertificates } from "./certificates.ts";
import { findBinDir, findOnPath, runTool, tail } from "./tools.ts";
import { type ServerUser, serverUser } from "./user.ts";

const HOST = "127.0.0.1";
const PORT_ATTEMPTS = 5;

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

/** A test database on a server started by this call. */
export class LocalDatabase implements TestDatabase {
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
