// The package's own OpenTelemetry instrumentation, with zero configuration, as Deno exports it:
// this file runs itself as a child script (`deno run` with `OTEL_DENO=true` and
// `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`, against the test server and an OTLP receiver on
// loopback) that uses the package as an application would, inside an application span: raw
// SQL, the CRUD helpers, a batch, a transaction that retries on a forced 40001, a unique
// violation, an `AsyncMigration`, and the sync `Database`, whose statements run in its worker.
// The test reads back every span and metric and checks the attributes, the parent links, and
// that neither a parameter value nor a literal reached the receiver. A second run without
// `OTEL_DENO` does the same work and sends nothing. (The units of the `_telemetry*.ts` modules
// are `_telemetry_test.ts` and `_telemetry_sdk_test.ts`.)
import assert from "node:assert/strict";
import { join } from "node:path";
import { trace } from "@opentelemetry/api";
import { AsyncDatabase } from "./async_database.ts";
import { AsyncMigration } from "./async_migration.ts";
import { Database } from "./database.ts";
import { internalsOf } from "./_internal.ts";
import { type ExportedSpan, OtlpReceiver, type OtlpReceiver as Receiver } from "./_test_otlp.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  dbSystemName,
  DEFAULT_PORTS,
  DURATION_BUCKETS,
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  SCHEMA_URL,
  telemetryEnabled,
} from "./_telemetry.ts";

const CONFIG = new URL("./deno.json", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;

/** What the parent hands the child. */
interface Scenario {
  readonly mode: "on" | "off";
  readonly url: string;
  /**
   * The sync `Database`'s: another database of the server. A pool's name is
   * `address:port/namespace`, unique only among the pools of one thread, so the sync
   * `Database`'s pool (in its worker) would otherwise share the series of the application's.
   */
  readonly syncUrl: string;
  /** The application's table, created by the migration. */
  readonly table: string;
  /** The migration runner's tracking table. */
  readonly migrations: string;
  /** A function failing with 40001 on its first call, counted by `seq`. */
  readonly fail: string;
  readonly seq: string;
  /** A parameter value that must not be exported. */
  readonly secret: string;
  /** A literal of a statement sent without parameters, which must not be exported either. */
  readonly literal: string;
}

/** What the child saw, printed as its last line for the parent. */
interface Outcome {
  /** The pool's numbers once its work was done: the metrics must report the same. */
  readonly stats: { idle: number; used: number; pending: number; opened: number };
}

// --- The child script: an application. ---------------------------------------------------------

async function child(s: Scenario): Promise<void> {
  const on = s.mode === "on";
  const t = s.table;
  const dir = await Deno.makeTempDir({ prefix: "otel_migrations_" });
  await Deno.writeTextFile(
    join(dir, "V1__create_users.sql"),
    `CREATE TABLE "${t}" (id INT4 PRIMARY KEY, email TEXT UNIQUE NOT NULL);\n-- DOWN\nDROP TABLE "${t}";\n`,
  );
  await using db = new AsyncDatabase(s.url, { minConnections: 1, maxConnections: 3 });
  const sync = new Database(s.syncUrl, { minConnections: 1, maxConnections: 1 });
  try {
    const app = trace.getTracer("app");
    await app.startActiveSpan("app request", async (request) => {
      try {
        const migrated = await new AsyncMigration(db, {
          migrationsDir: dir,
          tableName: s.migrations,
        }).migrate();
        assert.equal(migrated.applied, 1);

        // Raw SQL, with parameters and without.
        await db.execute(`INSERT INTO "${t}" (id, email) VALUES ($1, $2)`, [1, s.secret]);
        const echoed = await db.queryOne(`SELECT '${s.literal}' AS x`);
        assert.equal(echoed?.x, s.literal);

        // The CRUD helpers; five rows in chunks of two are three statements, one operation.
        await db.insert(t, { id: 2, email: `${s.secret}-2` });
        assert.equal((await db.select(t, { where: { id: 2 } })).length, 1);
        await db.update(t, { email: `${s.secret}-2b` }, { id: 2 });
        const rows = [3, 4, 5, 6, 7].map((id) => ({ id, email: `${s.secret}-${id}` }));
        assert.equal((await db.batchInsert(t, rows, { chunkSize: 2 })).length, 5);

        // A unique violation, whose message quotes the value: within the telemetry's reach.
        await assert.rejects(
          db.execute(`INSERT INTO "${t}" (id, email) VALUES ($1, $2)`, [8, s.secret]),
          (error: { code?: string; detail?: string }) =>
            error.code === "23505" && error.detail?.includes(s.secret) === true,
        );

        // A transaction whose first attempt fails with 40001: retried once, then committed.
        await db.transaction(async (tx) => {
          await tx.execute(`SELECT "${s.fail}"(1) AS ok`);
          await tx.update(t, { email: s.secret }, { id: 1 });
        });

        // The sync API: its statements run in its worker, in this span's trace.
        const [row] = sync.execute("SELECT $1::text AS echoed", [s.secret]);
        assert.equal(row?.echoed, s.secret);
        sync.transaction((tx) => {
          tx.execute("SELECT $1::text AS in_tx", [s.secret]);
        });
      } finally {
        request.end();
      }
    });
    // Outside the application span: a trace of its own, not the last request's.
    sync.execute("SELECT $1::text AS alone", [s.secret]);
  } finally {
    sync.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(telemetryEnabled(), on);
  const { idle, used, pending, opened } = db.stats();
  const outcome: Outcome = { stats: { idle, used, pending, opened } };
  // No value of the scenario is printed: console output is exported as logs.
  console.log(JSON.stringify(outcome));
  // The pool metrics are read only for a periodic export: the parent closes stdin once one
  // has brought them, and the pool stays open until then.
  if (on) { for await (const _ of Deno.stdin.readable) { /* until closed */ } }
}

if (import.meta.main) await child(JSON.parse(Deno.env.get("TELEMETRY_SCENARIO")!) as Scenario);

// --- The tests. --------------------------------------------------------------------------------

function inherited(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function withObjects<T>(fn: (s: Omit<Scenario, "mode">) => Promise<T>): Promise<T> {
  await using db = new AsyncDatabase(testUrl(), { minConnections: 1 });
  const syncDatabase = uniqueName("otel_sync");
  await db.createDatabase(syncDatabase);
  const names = {
    table: uniqueName("otel"),
    migrations: uniqueName("otel_migrations"),
    fail: uniqueName("otel_fail"),
    seq: uniqueName("otel_seq"),
  };
  await db.execute(
    `CREATE SEQUENCE "${names.seq}";
     CREATE FUNCTION "${names.fail}"(times int) RETURNS int LANGUAGE plpgsql AS $$
     BEGIN
       IF nextval('"${names.seq}"') <= times THEN
         RAISE EXCEPTION 'restart transaction (forced)' USING ERRCODE = '40001';
       END IF;
       RETURN 1;
     END $$`,
  );
  try {
    return await fn({
      url: testUrl(),
      syncUrl: withDatabase(testUrl(), syncDatabase),
      ...names,
      secret: `s3cret-param-${crypto.randomUUID()}`,
      literal: `s3cret-literal-${crypto.randomUUID()}`,
    });
  } finally {
    await db.execute(
      `DROP TABLE IF EXISTS "${names.table}", "${names.migrations}", "${names.migrations}_lock";
       DROP FUNCTION IF EXISTS "${names.fail}"(int); DROP SEQUENCE IF EXISTS "${names.seq}"`,
    );
    await db.dropDatabase(syncDatabase);
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.href;
}

function spawnChild(s: Scenario, env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, SELF],
    env: { ...inherited(), ...env, TELEMETRY_SCENARIO: JSON.stringify(s) },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Closes the child's stdin, waits for its exit, and reads what it saw. */
async function finish(process: Deno.ChildProcess): Promise<Outcome> {
  await process.stdin.close().catch(() => {});
  const { code, stdout, stderr } = await process.output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, out + new TextDecoder().decode(stderr));
  return JSON.parse(out.trim().split("\n").at(-1)!) as Outcome;
}

/** The span's ancestors' names, nearest first, as far as they were received. */
function lineage(receiver: Receiver, span: ExportedSpan): string[] {
  return receiver.ancestorsOf(span).map((s) => s.name);
}

/** The children of `span`, as `name status`, sorted. */
function children(receiver: Receiver, span: ExportedSpan): string[] {
  return receiver.childrenOf(span).map((x) => `${x.name} ${x.status.code}`).sort();
}

Deno.test("the package's statements, helpers, batches, transactions, retries, failures, migrations and sync calls reach OTLP with the conventions' attributes and links, its pool metrics too, and no parameter value or literal", async () => {
  await withObjects(async (objects) => {
    await using receiver = OtlpReceiver.start();
    const s: Scenario = { mode: "on", ...objects };
    const process = spawnChild(
      s,
      receiver.env({ OTEL_METRIC_EXPORT_INTERVAL: "200", OTEL_SERVICE_NAME: "telemetry-test" }),
    );
    // The pool metrics come with a periodic export after the child's work, whose end its
    // output tells.
    const exited = new AbortController();
    const status = process.status.then((x) => {
      exited.abort(new Error("the child exited"));
      return x;
    });
    const errors = new Response(process.stderr).text();
    const out = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let output = "";
    let outcome: Outcome;
    try {
      while (!output.includes("\n")) {
        const { value, done } = await out.read();
        if (done) throw new Error("the child ended its output");
        output += value;
      }
      outcome = JSON.parse(output.trim()) as Outcome;
      const after = receiver.requests.length;
      await receiver.waitFor(
        () =>
          receiver.requests.slice(after).some((r) => r.signal === "metrics") &&
          receiver.lastPoint("db.client.connection.count") !== undefined,
        "the pool metrics after the work",
        { signal: exited.signal },
      );
    } catch (error) {
      await process.stdin.close().catch(() => {});
      await status;
      throw new Error(`${(error as Error).message}: ${output}${await errors}`);
    } finally {
      await out.cancel();
    }
    await process.stdin.close();
    assert.equal((await status).code, 0, await errors);

    // What the test server is, as the child saw it.
    await using db = new AsyncDatabase(testUrl(), { minConnections: 1 });
    const { config } = internalsOf(db);
    const system = dbSystemName(await internalsOf(db).dialect());
    const [host] = config.hosts;
    const [port] = config.ports;
    assert.ok(host !== undefined && port !== undefined, "the test server's host and port");
    const base: Record<string, string | bigint> = {
      "db.system.name": system,
      "db.namespace": config.database,
      "server.address": host,
    };
    if (port !== DEFAULT_PORTS[system]) base["server.port"] = BigInt(port);
    const syncBase = { ...base, "db.namespace": new URL(s.syncUrl).pathname.slice(1) };
    const t = s.table;

    assert.deepEqual(receiver.refused, []);
    const ours = receiver.findSpans({ scope: INSTRUMENTATION_NAME });
    assert.ok(ours.length > 20, `${ours.length} spans of the package`);
    const sent = ours.filter((x) => x.attributes["db.namespace"] === base["db.namespace"]);
    const sentSync = ours.filter((x) => x.attributes["db.namespace"] === syncBase["db.namespace"]);
    assert.equal(sent.length + sentSync.length, ours.length);
    for (const [spans, attributes] of [[sent, base], [sentSync, syncBase]] as const) {
      for (const span of spans) {
        assert.deepEqual(span.scope, {
          name: INSTRUMENTATION_NAME,
          version: INSTRUMENTATION_VERSION,
          schemaUrl: SCHEMA_URL,
        });
        assert.ok(span.kind === "CLIENT" || span.kind === "INTERNAL", span.name);
        for (const [key, value] of Object.entries(attributes)) {
          assert.equal(span.attributes[key], value, `${span.name}: ${key}`);
        }
        if (config.ports[0] === DEFAULT_PORTS[system]) {
          assert.equal(span.attributes["server.port"], undefined);
        }
      }
    }
    const app = receiver.span({ name: "app request" });
    assert.equal(app.scope.name, "app");
    // Every statement the application sent is in its trace, but the one sent after it.
    for (const span of ours) {
      if (span.attributes["db.query.text"] === "SELECT $1::text AS alone") continue;
      assert.equal(span.traceId, app.traceId, `${span.name} is in the application's trace`);
    }

    // The migration: its span under the application's, its transaction and statements under it.
    const migration = receiver.span({ name: "apply migration" });
    assert.equal(migration.kind, "INTERNAL");
    assert.deepEqual(lineage(receiver, migration), ["app request"]);
    assert.deepEqual(migration.attributes, {
      ...base,
      "manticore.db.migration.version": 1n,
      "manticore.db.migration.name": "create_users",
      "manticore.db.migration.direction": "up",
    });
    assert.deepEqual(migration.status, { code: "UNSET", message: "" });
    const create = receiver.span({ name: `CREATE TABLE "${t}"` });
    assert.equal(create.kind, "CLIENT");
    assert.deepEqual(lineage(receiver, create), ["transaction", "apply migration", "app request"]);
    assert.equal(
      create.attributes["db.query.text"],
      `CREATE TABLE "${t}" (id INT4 PRIMARY KEY, email TEXT UNIQUE NOT NULL)`,
    );
    const [migrationTx] = receiver.childrenOf(migration);
    assert.deepEqual(receiver.childrenOf(migration).map((x) => x.name), ["transaction"]);
    assert.ok(migrationTx);
    assert.ok(
      receiver.childrenOf(migrationTx).some((x) =>
        /^INSERT /.test(x.name) && x.name.includes(s.migrations)
      ),
      "the tracking row is written in the migration's transaction",
    );
    // The runner's own statements (tracking and lock tables) are the application's children.
    assert.ok(
      receiver.childrenOf(app).filter((x) => x.name.includes(`${s.migrations}_lock`)).length > 0,
    );

    // Raw SQL: summary and text, no operation or collection name (not read from the text).
    const inserts = receiver.findSpans({ name: `INSERT "${t}"` });
    assert.deepEqual(inserts.map((x) => x.status.code).sort(), ["ERROR", "UNSET"]);
    const insert = inserts.find((x) => x.status.code === "UNSET")!;
    assert.equal(insert.kind, "CLIENT");
    assert.deepEqual(lineage(receiver, insert), ["app request"]);
    assert.deepEqual(insert.attributes, {
      ...base,
      "db.query.summary": `INSERT "${t}"`,
      "db.query.text": `INSERT INTO "${t}" (id, email) VALUES ($1, $2)`,
    });
    assert.deepEqual(insert.events, []);

    // Text sent without parameters: its literal is hidden.
    const literal = receiver.span({ attributes: { "db.query.text": "SELECT ? AS x" } });
    assert.equal(literal.name, "SELECT");
    assert.deepEqual(lineage(receiver, literal), ["app request"]);

    // The helpers name their operation and collection.
    for (const operation of ["INSERT", "SELECT"]) {
      const span = receiver.span({ name: `${operation} ${t}` });
      assert.deepEqual(lineage(receiver, span), ["app request"]);
      assert.deepEqual(
        Object.keys(span.attributes).sort(),
        [
          ...Object.keys(base),
          "db.collection.name",
          "db.operation.name",
          "db.query.summary",
          "db.query.text",
        ].sort(),
      );
      assert.equal(span.attributes["db.operation.name"], operation);
      assert.equal(span.attributes["db.collection.name"], t);
      assert.equal(span.attributes["db.query.summary"], `${operation} ${t}`);
      assert.match(String(span.attributes["db.query.text"]), /\$1/);
    }
    const updates = receiver.findSpans({ name: `UPDATE ${t}` });
    assert.deepEqual(updates.map((x) => lineage(receiver, x)[0]).sort(), [
      "app request",
      "transaction",
    ]);
    for (const update of updates) {
      assert.equal(update.attributes["db.operation.name"], "UPDATE");
      assert.equal(update.attributes["db.collection.name"], t);
      assert.match(String(update.attributes["db.query.text"]), /^UPDATE "[^"]+" SET .*\$1/);
    }

    // The batch: one operation of three statements, no spans of its own statements or of the
    // transaction it runs in.
    const batch = receiver.span({ name: `BATCH INSERT ${t}` });
    assert.equal(batch.kind, "CLIENT");
    assert.deepEqual(lineage(receiver, batch), ["app request"]);
    assert.deepEqual(receiver.childrenOf(batch), []);
    assert.equal(batch.attributes["db.operation.batch.size"], 3n);
    assert.equal(batch.attributes["db.operation.name"], "BATCH INSERT");
    assert.equal(batch.attributes["db.collection.name"], t);
    const texts = String(batch.attributes["db.query.text"]).split("; ");
    assert.equal(texts.length, 3);
    for (const text of texts) assert.match(text, /^INSERT INTO "[^"]+" .*VALUES \(\$1, \$2\)/);

    // The unique violation: status ERROR without a message, the SQLSTATE as status code and
    // error type.
    const duplicate = inserts.find((x) => x.status.code === "ERROR")!;
    assert.deepEqual(lineage(receiver, duplicate), ["app request"]);
    assert.deepEqual(duplicate.status, { code: "ERROR", message: "" });
    assert.equal(duplicate.attributes["db.response.status_code"], "23505");
    assert.equal(duplicate.attributes["error.type"], "23505");
    assert.deepEqual(duplicate.events, []);

    // The transaction: one span for both attempts, a retry event, its statements under it.
    const transactions = receiver.findSpans({ name: "transaction" });
    const retried = transactions.filter((x) => x.events.length > 0);
    assert.equal(retried.length, 1);
    const [tx] = retried;
    assert.ok(tx);
    assert.equal(tx.kind, "INTERNAL");
    assert.deepEqual(lineage(receiver, tx), ["app request"]);
    assert.deepEqual(tx.status, { code: "UNSET", message: "" });
    assert.deepEqual(tx.attributes, {
      ...base,
      "manticore.db.transaction.outcome": "committed",
      "manticore.db.transaction.attempts": 2n,
    });
    assert.equal(tx.events.length, 1);
    const [retry] = tx.events;
    assert.ok(retry);
    assert.equal(retry.name, "retry");
    assert.equal(retry.attributes["db.response.status_code"], "40001");
    assert.equal(retry.attributes["error.type"], "40001");
    assert.equal(retry.attributes["manticore.db.transaction.attempt"], 1n);
    assert.equal(typeof retry.attributes["manticore.db.transaction.backoff_ms"], "bigint");
    const statements = children(receiver, tx);
    for (const expected of ["SELECT ERROR", "SELECT UNSET", `UPDATE ${t} UNSET`]) {
      assert.ok(statements.includes(expected), `${expected} in ${statements.join(", ")}`);
    }
    assert.equal(statements.filter((x) => x.startsWith("BEGIN ")).length, 2, statements.join());
    assert.ok(statements.includes("COMMIT UNSET"), statements.join(", "));
    assert.ok(receiver.childrenOf(tx).every((x) => x.kind === "CLIENT"));
    const forced = receiver.childrenOf(tx).find((x) => x.status.code === "ERROR")!;
    assert.equal(forced.attributes["db.response.status_code"], "40001");
    assert.equal(forced.attributes["db.query.text"], `SELECT "${s.fail}"(?) AS ok`);

    // The sync API: the statement in its worker is a child of the caller's span; its
    // transaction's span is made on the calling thread, its statements under it.
    const echoed = receiver.span({ attributes: { "db.query.text": "SELECT $1::text AS echoed" } });
    assert.equal(echoed.traceId, app.traceId);
    assert.equal(echoed.parentSpanId, app.spanId);
    assert.equal(echoed.kind, "CLIENT");
    const inTx = receiver.span({ attributes: { "db.query.text": "SELECT $1::text AS in_tx" } });
    const syncTx = receiver.parentOf(inTx)!;
    assert.equal(syncTx?.name, "transaction");
    assert.deepEqual(lineage(receiver, syncTx), ["app request"]);
    assert.equal(syncTx.attributes["manticore.db.transaction.outcome"], "committed");
    assert.deepEqual(children(receiver, syncTx), ["BEGIN UNSET", "COMMIT UNSET", "SELECT UNSET"]);
    const alone = receiver.span({ attributes: { "db.query.text": "SELECT $1::text AS alone" } });
    assert.equal(alone.parentSpanId, "");
    assert.notEqual(alone.traceId, app.traceId);
    // The application's transactions: the migration's, the retried one, the sync one; the
    // batch's is none of them.
    assert.equal(transactions.length, 3 + lockTransactions(receiver, app, s.migrations));

    // Metrics: the operation duration of every statement, cumulative per attribute set.
    const durations = receiver.points("db.client.operation.duration");
    assert.ok(durations.length > 0);
    for (const p of durations) {
      assert.equal(p.type, "histogram");
      assert.equal(p.unit, "s");
      assert.deepEqual(p.explicitBounds, DURATION_BUCKETS);
      assert.deepEqual(p.scope, { name: INSTRUMENTATION_NAME, version: INSTRUMENTATION_VERSION });
    }
    const duration = (attributes: Record<string, string | bigint>) =>
      receiver.lastPoint("db.client.operation.duration", { ...base, ...attributes }, true)?.count;
    const rawInsert = { "db.query.summary": `INSERT "${t}"` };
    assert.equal(duration(rawInsert), 1);
    assert.equal(
      duration({ ...rawInsert, "error.type": "23505", "db.response.status_code": "23505" }),
      1,
    );
    const helper = (operation: string) => ({
      "db.operation.name": operation,
      "db.collection.name": t,
      "db.query.summary": `${operation} ${t}`,
    });
    assert.equal(duration(helper("INSERT")), 1);
    assert.equal(duration(helper("SELECT")), 1);
    assert.equal(duration(helper("UPDATE")), 2);
    assert.equal(duration(helper("BATCH INSERT")), 1);
    assert.equal(
      duration({
        "db.query.summary": "SELECT",
        "error.type": "40001",
        "db.response.status_code": "40001",
      }),
      1,
    );

    // The retry counter, by SQLSTATE.
    const retries = receiver.lastPoint("manticore.db.client.transaction.retries", {
      ...base,
      "db.response.status_code": "40001",
      "error.type": "40001",
    }, true);
    assert.equal(retries?.type, "sum");
    assert.equal(retries?.monotonic, true);
    assert.equal(retries?.unit, "{retry}");
    assert.equal(retries?.value, 1);

    // The pool metrics of the child's database, the numbers its stats() gave.
    const pool = {
      "db.client.connection.pool.name": `${config.hosts[0]}:${config.ports[0]}/${config.database}`,
    };
    const observed = (metric: string, attributes: Record<string, string>) => {
      const p = receiver.lastPoint(metric, attributes);
      assert.ok(p, `${metric} ${JSON.stringify(attributes)}`);
      assert.equal(p.type, "sum");
      assert.equal(p.monotonic, false);
      assert.deepEqual(p.attributes, attributes);
      return p;
    };
    const state = (name: string) => ({ ...pool, "db.client.connection.state": name });
    assert.equal(observed("db.client.connection.count", state("idle")).value, outcome.stats.idle);
    assert.equal(observed("db.client.connection.count", state("used")).value, 0);
    assert.equal(observed("db.client.connection.count", state("used")).unit, "{connection}");
    assert.equal(observed("db.client.connection.max", pool).value, 3);
    assert.equal(observed("db.client.connection.pending_requests", pool).value, 0);
    assert.equal(outcome.stats.used, 0);
    assert.equal(outcome.stats.pending, 0);
    const created = receiver.lastPoint("db.client.connection.create_time", pool, true);
    // Every connection opened, the ones opened before the server was known included.
    assert.equal(created?.count, outcome.stats.opened);
    const waited = receiver.lastPoint("db.client.connection.wait_time", pool, true);
    assert.ok((waited?.count ?? 0) >= 1, "a wait for a connection of its own");
    for (const p of [created!, waited!]) {
      assert.equal(p.type, "histogram");
      assert.equal(p.unit, "s");
      assert.deepEqual(p.explicitBounds, DURATION_BUCKETS);
    }

    // Nothing of the values anywhere: spans, metrics, logs.
    const everything = receiver.rawText();
    assert.ok(everything.includes(t), "the receiver holds the statements");
    assert.ok(!everything.includes(s.secret), "a parameter value was exported");
    assert.ok(!everything.includes(s.literal), "a literal was exported");
  });
});

/** The transactions of the migration runner's lock (taken and released), under `app`. */
function lockTransactions(receiver: Receiver, app: ExportedSpan, migrations: string): number {
  return receiver.childrenOf(app).filter((x) =>
    x.name === "transaction" &&
    receiver.childrenOf(x).some((c) => c.name.includes(`${migrations}_lock`))
  ).length;
}

Deno.test("with OpenTelemetry off the same application works and sends nothing", async () => {
  await withObjects(async (objects) => {
    await using receiver = OtlpReceiver.start();
    const env = receiver.env();
    delete env.OTEL_DENO; // everything else points at the receiver
    const outcome = await finish(spawnChild({ mode: "off", ...objects }, env));
    assert.equal(outcome.stats.used, 0);
    // Everything a process exports goes out before it exits.
    assert.deepEqual(receiver.requests, []);
    assert.deepEqual(receiver.refused, []);
  });
});
