// What `deno task test` runs: `deno test -A [args]` against a database from startTestDatabase()
// (a throwaway PostgreSQL server, or a fresh database on the server in TEST_DATABASE_URL), then,
// when COCKROACH_URL is set, the same suite once more against a fresh database on that server.
// Without arguments the JSDoc examples run too (`deno test --doc` over every module that has a
// runnable one), in a fresh database of the same server, with DATABASE_URL pointing at it.
// DATABASE_URL in the caller's environment is ignored: it may be their development database.
// Usage: deno run -A scripts/test.ts [deno test arguments, e.g. a file or --filter]
//        deno run -A scripts/test.ts --examples   (the JSDoc examples alone)
import { startTestDatabase, type TestDatabase, type TestDatabaseOptions } from "../testing.ts";
import { redact } from "../_testing/external.ts";

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

const ROOT = new URL("../", import.meta.url);
// Folders whose modules are not the package's (their examples are programs of their own).
const NOT_PACKAGE = new Set(["vendor", "bench", "soak", "scripts", "examples", "node_modules"]);
// A code block that runs: ```ts (or typescript) with no `ignore`.
const RUNNABLE_BLOCK = /^\s*\*\s*```(ts|typescript)\s*$/m;

/** The package's modules with a runnable JSDoc example, relative to the repository. */
export async function exampleModules(dir: URL = ROOT, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = prefix + entry.name;
    if (entry.name.startsWith(".")) continue;
    if (entry.isDirectory) {
      if (!NOT_PACKAGE.has(entry.name)) {
        found.push(...await exampleModules(new URL(`${entry.name}/`, dir), `${path}/`));
      }
    } else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      if (RUNNABLE_BLOCK.test(await Deno.readTextFile(new URL(entry.name, dir)))) {
        found.push(path);
      }
    }
  }
  return found.sort();
}

/**
 * Runs the suite against a database from startTestDatabase(), then (without arguments, or with
 * `--examples` alone) the JSDoc examples in a fresh database of the same server; removes both.
 */
async function runSuite(
  label: (database: TestDatabase) => string,
  options: TestDatabaseOptions = {},
): Promise<number> {
  const examplesOnly = Deno.args.length === 1 && Deno.args[0] === "--examples";
  const database = await startTestDatabase(options);
  try {
    console.log(`Testing against ${label(database)}: ${redact(database.url)}`);
    // A Ctrl-C while the server started is for the whole run, not for the start alone.
    if (interrupted) return 130;
    let code = examplesOnly ? 0 : await runTests(database.url, Deno.args);
    if ((examplesOnly || Deno.args.length === 0) && !interrupted) {
      await using examples = await startTestDatabase({ url: database.url });
      const modules = await exampleModules();
      console.log(`Running the JSDoc examples of ${modules.length} modules`);
      code ||= await runTests(examples.url, ["--doc", ...modules]);
    }
    return code;
  } finally {
    await database.stop();
  }
}

async function runTests(url: string, args: readonly string[]): Promise<number> {
  running = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...args],
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
