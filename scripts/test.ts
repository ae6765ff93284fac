// What `deno task test` runs: `deno test -A [args]` against a database from startTestDatabase()
// (a throwaway PostgreSQL server, or a fresh database on the server in TEST_DATABASE_URL), then,
// when COCKROACH_URL is set, the same suite once more against a fresh database on that server.
// DATABASE_URL in the caller's environment is ignored: it may be their development database.
// Usage: deno run -A scripts/test.ts [deno test arguments, e.g. a file or --filter]
import { startTestDatabase, type TestDatabase, type TestDatabaseOptions } from "../testing.ts";

const SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

let running: Deno.ChildProcess | undefined;
let interrupted = false;

// The signal also reaches `deno test` from the terminal; the listener keeps this script alive
// long enough to stop the server, and passes on a signal sent to this script alone.
function onSignal(signal: Deno.Signal): () => void {
  return () => {
    interrupted = true;
    try {
      running?.kill(signal);
    } catch {
      // It has exited already.
    }
  };
}

/** Hides the password of a connection URL. */
function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@/]*@/, "$1:***@");
}

/** Runs the suite against a database from startTestDatabase(), and removes it afterwards. */
async function runSuite(
  label: (database: TestDatabase) => string,
  options: TestDatabaseOptions = {},
): Promise<number> {
  const database = await startTestDatabase(options);
  try {
    console.log(`Testing against ${label(database)}: ${redact(database.url)}`);
    // A Ctrl-C while the server started is for the whole run, not for the start alone.
    if (interrupted) return 130;
    return await runTests(database.url);
  } finally {
    await database.stop();
  }
}

async function runTests(url: string): Promise<number> {
  running = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...Deno.args],
    // The test modules read MANTICORE_TEST_URL (through testUrl() in _test_util.ts); DATABASE_URL is
    // overridden too, for code under test that reads it, such as `deno test --doc` examples.
    env: { MANTICORE_TEST_URL: url, DATABASE_URL: url },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  try {
    return (await running.status).code;
  } finally {
    running = undefined;
  }
}

async function main(): Promise<number> {
  const listeners = SIGNALS.map((signal) => [signal, onSignal(signal)] as const);
  for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  try {
    let code = await runSuite((database) =>
      database.external
        ? "a fresh database on the server in TEST_DATABASE_URL"
        : "a throwaway PostgreSQL server"
    );
    const cockroach = Deno.env.get("COCKROACH_URL");
    if (cockroach && !interrupted) {
      const cockroachCode = await runSuite(
        () => "a fresh database on the CockroachDB server in COCKROACH_URL",
        { url: cockroach },
      );
      code ||= cockroachCode;
    }
    return code;
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
}

// `deno test` collects files named test.ts as test modules: imported, this script does nothing,
// rather than start the suite inside itself.
if (import.meta.main) Deno.exit(await main());
