// The sync Database's worker and bridge: a worker that crashes or cannot load, connecting in the
// constructor, close(), no password shown, arguments that cannot cross, and scripts that forget
// close(), import the package over http, or start workers from several threads.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { Database } from "./database.ts";
import { testUrl } from "./_test_util.ts";
import { ConnectionError, ValidationError } from "./errors.ts";
import { caught, caughtSync, crash } from "./_test_database.ts";

Deno.test("Database throws ConnectionError when its worker crashes, and starts a new one on the next call", async (t) => {
  for (const how of ["throw", "exit", "close", "hang"] as const) {
    await t.step(how, () => {
      // A short bridgeTimeout: "close" and "hang" are only seen through the missing heartbeat.
      using db = new Database(testUrl(), { bridgeTimeout: 1000 });
      assert.deepEqual(db.execute("SELECT 1 AS one"), [{ one: 1 }]);
      const error = caughtSync(() => crash(db, how));
      assert.ok(error instanceof ConnectionError, String(error));
      assert.match(error.message, /127\.0\.0\.1|localhost/);
      if (how === "throw") assert.match(error.message, /crashed on purpose/);
      if (how === "exit") assert.match(error.message, /exited with code 70/);
      assert.equal(
        error.code,
        how === "hang" || how === "close" ? "WORKER_TIMEOUT" : "WORKER_CRASHED",
      );
      // The same database starts a new worker.
      assert.deepEqual(db.execute("SELECT 2 AS two"), [{ two: 2 }]);
      // And a new database works as well.
      using other = new Database(testUrl());
      assert.deepEqual(other.execute("SELECT 3 AS three"), [{ three: 3 }]);
    });
  }
  await t.step("inside a transaction: the attempt runs again on a fresh worker", () => {
    using db = new Database(testUrl(), { bridgeTimeout: 1000 });
    let attempts = 0;
    const value = db.transaction((tx) => {
      attempts++;
      if (attempts === 1) crash(db, "exit");
      return tx.queryOne<{ n: number }>("SELECT 5 AS n")?.n;
    });
    assert.equal(value, 5);
    assert.equal(attempts, 2);
  });
});

Deno.test("Database connects in the constructor unless connect is false", async (t) => {
  const refused = "postgresql://root:hunter2@127.0.0.1:1/postgres";
  await t.step("async", async () => {
    await using db = new AsyncDatabase(refused, { connectTimeout: 5 });
    const error = await caught(() => db.connect());
    assert.ok(error instanceof ConnectionError);
    assert.match(error.message, /127\.0\.0\.1:1/);
    assert.doesNotMatch(error.message, /hunter2/);
  });
  await t.step("sync", () => {
    const error = caughtSync(() => new Database(refused, { connectTimeout: 5 }));
    assert.ok(error instanceof ConnectionError);
    assert.match(error.message, /127\.0\.0\.1:1/);
    assert.doesNotMatch(error.message, /hunter2/);
    // connect: false defers it to the first use.
    using lazy = new Database(refused, { connect: false, connectTimeout: 5 });
    assert.equal(lazy.serverVersion, "");
    assert.throws(() => lazy.execute("SELECT 1"), ConnectionError);
    assert.throws(() => lazy.connect(), ConnectionError);
    using fine = Database.fromUrl(testUrl(), { connect: false });
    assert.equal(fine.serverVersion, "");
    fine.connect();
    assert.match(fine.serverVersion, /PostgreSQL|CockroachDB/);
  });
  await t.step(
    "lazy: stats() connects nothing; the first call connects, as the async twin's",
    async () => {
      await using a = new AsyncDatabase(testUrl());
      using s = new Database(testUrl(), { connect: false });
      assert.equal(s.stats().opened, a.stats().opened);
      assert.equal(s.stats().opened, 0);
      await a.execute("SELECT 1");
      s.execute("SELECT 1");
      assert.equal(s.serverVersion, a.serverVersion);
      assert.match(s.serverVersion, /PostgreSQL|CockroachDB/);
    },
  );
});

Deno.test("an ended Transaction refuses a nested transaction, as an ended AsyncTransaction does", async (t) => {
  await t.step("async", async () => {
    await using db = new AsyncDatabase(testUrl());
    let kept: import("./async_database.ts").AsyncTransaction | undefined;
    await db.transaction((tx) => {
      kept = tx;
    });
    const error = await caught(() => kept!.transaction(() => 42));
    assert.equal((error as { code?: string }).code, "TRANSACTION_CLOSED");
  });
  await t.step("sync", () => {
    using db = new Database(testUrl());
    let kept: import("./database.ts").Transaction | undefined;
    db.transaction((tx) => {
      kept = tx;
    });
    const error = caughtSync(() => kept!.transaction(() => 42));
    assert.equal((error as { code?: string }).code, "TRANSACTION_CLOSED");
  });
});

Deno.test("Database.close() is idempotent and every later call fails with ConnectionError", () => {
  const db = new Database(testUrl());
  assert.deepEqual(db.execute("SELECT 1 AS one"), [{ one: 1 }]);
  db.close();
  db.close();
  assert.equal(db.serverVersion, "");
  for (
    const call of [
      () => db.execute("SELECT 2"),
      () => db.connect(),
      () => db.select("t"),
      () => db.transaction((tx) => tx.execute("SELECT 3")),
      () => [...db.stream("SELECT 4")],
    ]
  ) {
    assert.throws(call, (error: unknown) => {
      assert.ok(error instanceof ConnectionError, Deno.inspect(error));
      assert.equal(error.code, "CONNECTION_CLOSED");
      assert.match(error.message, /^Cannot use the database ".*": it is closed$/);
      return true;
    });
  }
  {
    using scoped = new Database(testUrl());
    scoped.execute("SELECT 1");
  }
});

Deno.test("Database never shows the password", () => {
  using db = new Database("postgresql://ada:s3cret%21@db.example.com:26257/bank", {
    connect: false,
  });
  assert.equal(String(db), "Database(postgresql://ada@db.example.com:26257/bank)");
  assert.doesNotMatch(Deno.inspect(db), /s3cret/);
  assert.doesNotMatch(Deno.inspect({ db }), /s3cret/);
});

Deno.test("Database rejects a bad bridgeTimeout and arguments that cannot cross the bridge", () => {
  assert.throws(
    () => new Database(testUrl(), { bridgeTimeout: 0, connect: false }),
    ValidationError,
  );
  using db = new Database(testUrl(), { connect: false });
  assert.throws(() => db.execute("SELECT $1::text", [() => 1]), ValidationError);
  assert.deepEqual(db.execute("SELECT $1::text AS s", ["still fine"]), [{ s: "still fine" }]);
});

Deno.test("a script that forgets Database.close() still exits, importing the package from another directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "manticore_sync_exit_" });
  try {
    const url = new URL("./database.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/forgets_close.ts`,
      `import { Database } from ${JSON.stringify(url)};
const db = new Database(Deno.env.get("DATABASE_URL"));
const n = db.queryOne("SELECT 40 + 2 AS n").n;
db.transaction((tx) => tx.execute("SELECT 1"));
console.log("answer", n);
`,
    );
    const config = new URL("./deno.json", import.meta.url).pathname;
    const result = await runScript(["--config", config, "forgets_close.ts"], { cwd: dir });
    assert.equal(result.code, 0, `the script did not exit by itself: ${result.stderr}`);
    assert.equal(result.stdout, "answer 42");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs a script with `deno run` (`-A` unless other permissions are given), killed after a
 * minute; answers its exit code and output.
 */
async function runScript(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; permissions?: string[] },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.permissions ?? ["-A"]), ...args],
    cwd: options.cwd,
    env: { DATABASE_URL: testUrl(), ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, 60_000);
  try {
    const output = await child.output();
    return {
      code: output.code,
      stdout: new TextDecoder().decode(output.stdout).trim(),
      stderr: new TextDecoder().decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("Database works when the package is imported over http, its modules not yet cached", async () => {
  // As from JSR: the worker's URL is not a file URL, and nothing is in the module cache yet.
  const root = new URL(".", import.meta.url);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    try {
      const file = new URL(`.${new URL(request.url).pathname}`, root);
      return new Response(await Deno.readFile(file), {
        headers: {
          "content-type": file.pathname.endsWith(".js")
            ? "application/javascript"
            : "application/typescript",
        },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const dir = await Deno.makeTempDir({ prefix: "manticore_sync_http_" });
  try {
    const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
    const { denoDir } = JSON.parse(new TextDecoder().decode(info.stdout));
    // A module cache of its own (the npm packages shared), so every module is fetched afresh.
    await Deno.mkdir(`${dir}/deno_dir`);
    await Deno.symlink(`${denoDir}/npm`, `${dir}/deno_dir/npm`);
    const { imports } = JSON.parse(await Deno.readTextFile(new URL("./deno.json", root)));
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ imports }));
    const base = `http://127.0.0.1:${server.addr.port}`;
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `import { Database } from "${base}/database.ts";
const db = new Database(Deno.env.get("DATABASE_URL"), { bridgeTimeout: 20000 });
console.log("answer", db.queryOne("SELECT 6 * 7 AS n").n);
`,
    );
    const result = await runScript(["--no-lock", "--config", `${dir}/deno.json`, "main.ts"], {
      cwd: dir,
      env: { DENO_DIR: `${dir}/deno_dir` },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "answer 42");
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "importing database.ts starts no worker; a Database with connect: false neither",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "manticore_sync_import_" });
    try {
      const url = new URL("./database.ts", import.meta.url).href;
      // Deno names worker threads "worker-<n>".
      await Deno.writeTextFile(
        `${dir}/threads.ts`,
        `const workers = () => [...Deno.readDirSync("/proc/self/task")]
  .map((t) => Deno.readTextFileSync(\`/proc/self/task/\${t.name}/comm\`).trim())
  .filter((name) => name.startsWith("worker")).length;
const before = workers();
const { Database } = await import(${JSON.stringify(url)});
const imported = workers();
const lazy = new Database(Deno.env.get("DATABASE_URL"), { connect: false });
const deferred = workers();
lazy.execute("SELECT 1");
const started = workers();
lazy.close();
console.log(JSON.stringify({ before, imported, deferred, started }));
`,
      );
      const config = new URL("./deno.json", import.meta.url).pathname;
      const result = await runScript(["--config", config, "threads.ts"], { cwd: dir });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), {
        before: 0,
        imported: 0,
        deferred: 0,
        started: 1,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("Database throws ConnectionError at once when its worker cannot load", async () => {
  const dir = await Deno.makeTempDir({ prefix: "manticore_sync_load_" });
  try {
    const root = new URL(".", import.meta.url).pathname;
    await Deno.writeTextFile(
      `${dir}/load.ts`,
      `import { Database } from ${JSON.stringify(new URL("./database.ts", import.meta.url).href)};
try {
  new Database(Deno.env.get("DATABASE_URL"), { connectTimeout: 30 });
  console.log("connected");
} catch (error) {
  console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message }));
}
`,
    );
    const config = `${root}deno.json`;
    const run = async (...permissions: string[]) => {
      const result = await runScript(["--config", config, "load.ts"], { cwd: dir, permissions });
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout);
    };
    // Without read access to the package, the worker could not read its modules.
    const denied = await run("--allow-net", "--allow-env", `--allow-read=${dir}`);
    assert.equal(denied.name, "ConnectionError");
    assert.equal(denied.code, "WORKER_PERMISSION");
    assert.match(denied.message, /--allow-read=/);
    // A module the worker needs cannot be read: the worker says so instead of never answering.
    const broken = await run(
      "--allow-net",
      "--allow-env",
      `--allow-read=${root}`,
      `--deny-read=${root}_sql.ts`,
    );
    assert.equal(broken.name, "ConnectionError");
    assert.equal(broken.code, "WORKER_CRASHED");
    assert.match(broken.message, /failed to load: .*_sql\.ts/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
