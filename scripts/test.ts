// What `deno task test` runs: `deno test -A [args]` against the server in DATABASE_URL, or
// against a throwaway PostgreSQL server started once for the whole run; then, when
// COCKROACH_URL is set, the same suite once more against that server.
// Usage: deno run -A scripts/test.ts [deno test arguments, e.g. a file or --filter]
import { startTestDatabase, type TestDatabase } from "../testing.ts";

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

async function runSuite(label: string, url: string): Promise<number> {
  console.log(`Testing against ${label}: ${redact(url)}`);
  running = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...Deno.args],
    env: { DATABASE_URL: url },
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
  let server: TestDatabase | undefined;
  try {
    const external = Deno.env.get("DATABASE_URL");
    let code: number;
    if (external) {
      code = await runSuite("the server in DATABASE_URL", external);
    } else {
      server = await startTestDatabase();
      code = await runSuite("a throwaway PostgreSQL server", server.url);
    }
    const cockroach = Deno.env.get("COCKROACH_URL");
    if (cockroach && !interrupted) {
      const cockroachCode = await runSuite("the CockroachDB server in COCKROACH_URL", cockroach);
      code ||= cockroachCode;
    }
    return code;
  } finally {
    await server?.stop();
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
}

// `deno test` collects files named test.ts as test modules: imported, this script does nothing,
// rather than start the suite inside itself.
if (import.meta.main) Deno.exit(await main());
