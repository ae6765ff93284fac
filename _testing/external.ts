// A test database on a server this package did not start (TEST_DATABASE_URL or the url option):
// a fresh database with a unique name is created there (serializable by default on PostgreSQL),
// and stop() drops it, and only it, ending the sessions still inside.
import { AsyncDatabase } from "../async_database.ts";
import { quoteIdentifier } from "../_sql.ts";
import type { TestDatabase } from "../testing.ts";

// The same shape as the client's URL parser accepts: scheme, authority, path, query, fragment.
const URL_SHAPE = /^((?:postgres|postgresql|cockroachdb):\/\/[^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i;

/** A database created for this call on a server it did not start. */
export class ExternalDatabase implements TestDatabase {
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
        await admin.execute(`CREATE DATABASE ${quoteIdentifier(name)}`);
        if (server.cockroach) return;
        try {
          // Serializable like a server of its own, so that conflicts fail with 40001 here too.
          await admin.execute(
            `ALTER DATABASE ${
              quoteIdentifier(name)
            } SET default_transaction_isolation = 'serializable'`,
          );
        } catch (error) {
          await admin.execute(`DROP DATABASE ${quoteIdentifier(name)}`).catch(() => {});
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
    const name = quoteIdentifier(this.#name);
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
export function redact(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/?#@]*):[^/?#]*@/i, "$1:***@");
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
