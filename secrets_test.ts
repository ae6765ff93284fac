// The password never shows: not in error messages, stack traces, causes, String() or
// Deno.inspect() of anything the library returns or throws, nor in what a program that logs
// those objects prints. A server of its own checks real passwords: its pg_hba.conf trusts root
// and asks every other user for a SCRAM password.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import { AsyncMigration } from "./async_migration.ts";
import { AsyncTable } from "./crud/async_table.ts";
import { Table } from "./crud/table.ts";
import { Migration } from "./migration.ts";
import {
  AmbiguousCommitError,
  ConnectionError,
  DatabaseError,
  TransactionRetryError,
} from "./errors.ts";
import { startTestDatabase, type TestDatabase } from "./testing.ts";

const USER = "secret_keeper";
// Distinctive, and full of what URLs and SQL escape: every form of it is searched for.
const CORE = `Zx9Qv${crypto.randomUUID().slice(0, 8)}`;
const PASSWORD = `${CORE}/p@ss:w%rd?#&'"\\ ünï`;
const FORMS = [PASSWORD, CORE, encodeURIComponent(PASSWORD), btoa(CORE)];

function assertClean(text: string, where: string): void {
  for (const form of FORMS) {
    assert.ok(
      !text.includes(form),
      `${where} shows the password (${JSON.stringify(form)}):\n${text}`,
    );
  }
}

/** Every way a caller may look at a value: String, inspect (hidden and deep), JSON, stack. */
function assertNothingShows(value: unknown, where: string): void {
  assertClean(String(value), `String(${where})`);
  assertClean(Deno.inspect(value), `Deno.inspect(${where})`);
  assertClean(
    Deno.inspect(value, { showHidden: true, depth: Infinity, getters: true }),
    `Deno.inspect(${where}, { showHidden, depth: Infinity })`,
  );
  try {
    assertClean(JSON.stringify(value) ?? "", `JSON.stringify(${where})`);
  } catch {
    // bigint or cycles: nothing printed.
  }
  // An error and every cause below it.
  let error: unknown = value;
  for (let depth = 0; error instanceof Error && depth < 10; depth++) {
    assertClean(error.message, `${where} message`);
    assertClean(error.stack ?? "", `${where} stack`);
    for (const key of Object.getOwnPropertyNames(error)) {
      assertClean(
        Deno.inspect((error as unknown as Record<string, unknown>)[key]),
        `${where}.${key}`,
      );
    }
    error = error.cause;
  }
}

async function rejection(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected an error");
}

function syncRejection(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected an error");
}

async function startPasswordServer(): Promise<{ server: TestDatabase; hbaDir: string }> {
  const hbaDir = await Deno.makeTempDir({ prefix: "manticore_hba_" });
  await Deno.chmod(hbaDir, 0o755); // the server may run as another user
  const hba = `${hbaDir}/pg_hba.conf`;
  await Deno.writeTextFile(
    hba,
    [
      "local all all trust",
      "host all root 127.0.0.1/32 trust",
      "host all all 127.0.0.1/32 scram-sha-256",
      "",
    ].join("\n"),
  );
  await Deno.chmod(hba, 0o644);
  try {
    const server = await startTestDatabase({ serverArgs: ["-c", `hba_file=${hba}`] });
    return { server, hbaDir };
  } catch (error) {
    await Deno.remove(hbaDir, { recursive: true });
    throw error;
  }
}

function passwordUrl(server: TestDatabase, password = PASSWORD, params = ""): string {
  return `postgresql://${USER}:${
    encodeURIComponent(password)
  }@127.0.0.1:${server.port}/postgres${params}`;
}

Deno.test("the password never shows in errors, String(), Deno.inspect() or logged output", async (t) => {
  const { server, hbaDir } = await startPasswordServer();
  try {
    {
      await using root = new AsyncDatabase(server.url, { minConnections: 1 });
      await root.execute(
        `CREATE ROLE ${USER} LOGIN PASSWORD '${PASSWORD.replaceAll("'", "''")}';
         GRANT ALL ON SCHEMA public TO ${USER};`,
      );
    }
    const url = passwordUrl(server);

    await t.step(
      "the password works, and the objects the async API returns do not show it",
      async () => {
        await using db = new AsyncDatabase(url, { minConnections: 1 });
        assertNothingShows(db, "db");
        assert.deepEqual(await db.execute("SELECT current_user AS who"), [{ who: USER }]);
        assertNothingShows(db, "db (connected)");
        await db.createTable("secret_rows", { id: "INT PRIMARY KEY", note: "TEXT" });
        const row = await db.insert("secret_rows", { id: 1, note: "x" });
        assertNothingShows(row, "an inserted row");
        assertNothingShows(await db.select("secret_rows"), "selected rows");
        await db.transaction(async (tx) => {
          assertNothingShows(tx, "a transaction handle");
          await tx.update("secret_rows", { note: "y" }, { id: 1 });
        });
        const table = new AsyncTable("secret_rows", { db });
        assertNothingShows(table, "an AsyncTable");
        assertNothingShows(await table.get(1), "a table row");
        const migration = new AsyncMigration(db, { migrationsDir: hbaDir });
        assertNothingShows(migration, "an AsyncMigration");
        assertNothingShows(await migration.status(), "a migration status");
        for await (const streamed of db.stream("SELECT * FROM secret_rows")) {
          assertNothingShows(streamed, "a streamed row");
        }
        // Errors thrown while connected: a server error, a validation error, a timeout.
        assertNothingShows(await rejection(() => db.execute("SELEC 1")), "a syntax error");
        assertNothingShows(
          await rejection(() => db.insert("secret_rows", { id: 1 })),
          "a unique violation",
        );
        assertNothingShows(await rejection(() => db.select("")), "a ValidationError");
        assertNothingShows(
          await rejection(() => db.update("secret_rows", {}, {})),
          "an empty update",
        );
        await db.dropTable("secret_rows");
      },
    );

    await t.step(
      "a wrong password fails with ConnectionError 28P01 that does not show either password",
      async () => {
        const wrong = `${CORE}-wrong`;
        await using db = new AsyncDatabase(passwordUrl(server, wrong), { minConnections: 1 });
        const error = await rejection(() => db.connect());
        assert.ok(error instanceof ConnectionError, Deno.inspect(error));
        assert.equal(error.code, "28P01");
        assertNothingShows(error, "the authentication error");
        assert.ok(!Deno.inspect(error).includes(wrong));
        assertNothingShows(db, "db after a failed connect");
      },
    );

    await t.step("connection, URL and TLS errors do not show the password", async () => {
      const refused = `postgresql://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:1/postgres`;
      await using db = new AsyncDatabase(refused, { connectTimeout: 5 });
      assertNothingShows(await rejection(() => db.connect()), "a refused connection");
      assertNothingShows(db, "db of a refused connection");
      for (
        const bad of [
          passwordUrl(server, PASSWORD, "?nonsense=1"),
          passwordUrl(server, PASSWORD, "?sslmode=sometimes"),
          passwordUrl(server, PASSWORD, "?connect_timeout=soon"),
          `postgresql://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:notaport/postgres`,
          `postgresql://${USER}:${PASSWORD}@127.0.0.1:${server.port}/postgres`, // not encoded
          `postgresql://${USER}:${CORE}%zz@127.0.0.1:${server.port}/postgres`, // bad encoding
          `mysql://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1/postgres`,
        ]
      ) {
        const error = syncRejection(() => new AsyncDatabase(bad).connect());
        // Some of these are refused when the URL is read, others when connecting.
        const settled = error instanceof Promise ? await rejection(() => error) : error;
        assert.ok(settled instanceof DatabaseError, Deno.inspect(settled));
        assertNothingShows(settled, `the error for a bad URL`);
      }
      await using tls = new AsyncDatabase(passwordUrl(server, PASSWORD, "?sslmode=require"), {
        connectTimeout: 5,
      });
      assertNothingShows(await rejection(() => tls.connect()), "a TLS refusal");
      // The password in options and in PGPASSWORD style options.
      await using byOptions = new AsyncDatabase({
        host: "127.0.0.1",
        port: server.port,
        user: USER,
        password: PASSWORD,
        database: "postgres",
      });
      assertNothingShows(byOptions, "db from options");
      assert.deepEqual(await byOptions.execute("SELECT 1 AS one"), [{ one: 1 }]);
    });

    await t.step(
      "errors of faults do not show it: lost connection, retries spent, timeout",
      async () => {
        await using root = new AsyncDatabase(server.url, { minConnections: 1 });
        await using db = new AsyncDatabase(url, { minConnections: 1, statementTimeout: 2000 });
        const sleeping = rejection(() => db.execute("SELECT pg_sleep(10) /* secret_sleeper */"));
        for (let i = 0; i < 400; i++) {
          const [terminated] = await root.execute<{ n: bigint }>(
            `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
            WHERE usename = $1 AND state = 'active' AND query LIKE '%secret_sleeper%'
              AND pid <> pg_backend_pid()`,
            [USER],
          );
          assert.ok(terminated);
          if (terminated.n > 0n) break;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        // Terminated while it ran: its fate is unknown (docs/retry-safety.md), so it is an
        // AmbiguousCommitError whose cause is the ConnectionError.
        const lost = await sleeping;
        assert.ok(lost instanceof AmbiguousCommitError, Deno.inspect(lost));
        assert.ok(lost.cause instanceof ConnectionError, Deno.inspect(lost.cause));
        assertNothingShows(lost, "a terminated connection");
        assertNothingShows(lost.cause, "a terminated connection's cause");
        const spent = await rejection(() =>
          db.transaction(async (tx) => {
            await tx.execute(
              `DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$`,
            );
          }, { maxRetries: 0 })
        );
        assert.ok(spent instanceof TransactionRetryError, Deno.inspect(spent));
        assertNothingShows(spent, "a TransactionRetryError");
        const timeout = await rejection(() => db.execute("SELECT pg_sleep(5)"));
        assert.equal((timeout as DatabaseError).code, "57014");
        assertNothingShows(timeout, "a statement timeout");
      },
    );

    await t.step("the sync Table and Migration do not show it", () => {
      using db = new Database(url, { minConnections: 1 });
      db.createTable("secret_sync_rows", { id: "INT PRIMARY KEY", note: "TEXT" });
      const table = new Table("secret_sync_rows", { db });
      assertNothingShows(table, "a Table");
      assertNothingShows(table.create({ id: 1, note: "x" }), "a Table row");
      const migration = new Migration(db, { migrationsDir: hbaDir });
      assertNothingShows(migration, "a Migration");
      assertNothingShows(migration.status(), "a sync migration status");
      db.dropTable("secret_sync_rows");
    });

    await t.step("the sync Database does not show it, connected or refused", () => {
      using db = new Database(url, { minConnections: 1 });
      assertNothingShows(db, "Database");
      assert.deepEqual(db.execute("SELECT current_user AS who"), [{ who: USER }]);
      db.transaction((tx) => assertNothingShows(tx, "a sync transaction handle"));
      assertNothingShows(syncRejection(() => db.execute("SELEC 1")), "a sync syntax error");
      const error = syncRejection(() => new Database(passwordUrl(server, `${CORE}-wrong`)));
      assert.ok(error instanceof ConnectionError, Deno.inspect(error));
      assertNothingShows(error, "a sync authentication error");
    });

    await t.step(
      "a program that logs every object and error it gets prints no password",
      async () => {
        const script = `
        import { AsyncDatabase, Database } from ${
          JSON.stringify(new URL("./mod.ts", import.meta.url).href)
        };
        const url = Deno.env.get("SECRET_URL");
        const db = new AsyncDatabase(url);
        console.log(db, String(db));
        console.log(await db.execute("SELECT current_user AS who"));
        for (const fn of [
          () => db.execute("SELEC 1"),
          () => new AsyncDatabase(url.replace("@127.0.0.1:", "@127.0.0.1:1").replace(/:(\\d+)1\\//, ":1/")).connect(),
          () => new AsyncDatabase(url + "?bogus=1").connect(),
          () => new AsyncDatabase(url.replace(/:[^:@]*@/, ":wrong@")).connect(),
        ]) {
          try { await fn(); } catch (error) { console.error(error); console.log(String(error)); }
        }
        // PGPASSWORD instead of the URL.
        const fromEnv = new AsyncDatabase({ host: "127.0.0.1", port: Number(Deno.env.get("PGPORT")), user: ${
          JSON.stringify(USER)
        }, database: "postgres" });
        console.log(fromEnv, await fromEnv.execute("SELECT current_user AS who"));
        await fromEnv.close();
        const sync = new Database(url);
        console.log(sync, sync.execute("SELECT 1 AS one"));
        try { sync.execute("SELEC 1"); } catch (error) { console.error(error); }
        sync.close();
        await db.close();
        // An unhandled rejection prints too.
        await new AsyncDatabase(url.replace(/:[^:@]*@/, ":wrong@")).connect();
      `;
        const file = `${hbaDir}/logs_everything.ts`;
        await Deno.writeTextFile(file, script);
        const output = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--no-lock",
            `--config=${new URL("./deno.json", import.meta.url).pathname}`,
            file,
          ],
          env: {
            SECRET_URL: url,
            PGPASSWORD: PASSWORD,
            PGPORT: String(server.port),
            NO_COLOR: "1",
          },
          stdin: "null",
        }).output();
        const decoder = new TextDecoder();
        const stdout = decoder.decode(output.stdout);
        const stderr = decoder.decode(output.stderr);
        assert.match(stdout, new RegExp(USER), stdout + stderr); // it did connect
        assert.match(stderr, /28P01|password authentication failed/, stderr); // and did fail
        assertClean(stdout, "the program's stdout");
        assertClean(stderr, "the program's stderr");
      },
    );

    await t.step("deno task migrate prints no password, connected or refused", async () => {
      const cli = new URL("./cli/migrate.ts", import.meta.url).pathname;
      for (const target of [url, passwordUrl(server, `${CORE}-wrong`)]) {
        const output = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", cli, "status", "--url", target, "--dir", `${hbaDir}/migrations`],
          env: { NO_COLOR: "1" },
          stdin: "null",
        }).output();
        const decoder = new TextDecoder();
        assertClean(decoder.decode(output.stdout), "migrate stdout");
        assertClean(decoder.decode(output.stderr), "migrate stderr");
      }
    });
  } finally {
    await server.stop();
    await Deno.remove(hbaDir, { recursive: true });
  }
});
