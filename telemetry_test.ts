// What `_telemetry.ts` exports through Deno's built-in OpenTelemetry, read back from an OTLP
// receiver on loopback: this file runs itself as a child script (`deno run` with OTEL_DENO,
// against the test server) that emits statement, transaction, retry, failure and migration
// spans inside an application span, the spans of a worker thread carrying that span's
// context, and the metrics; the test checks every attribute, the parent links, and that no
// parameter value or literal reached the receiver. A second run without OTEL_DENO checks that
// the same calls work and send nothing.
import assert from "node:assert/strict";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { trace } from "@opentelemetry/api";
import { AsyncDatabase } from "./async_database.ts";
import { internalsOf } from "./_internal.ts";
import { type ExportedSpan, OtlpReceiver, type OtlpReceiver as Receiver } from "./_test_otlp.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  captureContext,
  dbSystemName,
  DEFAULT_PORTS,
  DURATION_BUCKETS,
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  observePool,
  SCHEMA_URL,
  startMigration,
  startTransaction,
  type StatementOperation,
  telemetryEnabled,
  TelemetryTarget,
  type TraceCarrier,
  traceStatement,
  withCapturedContext,
  withoutTelemetry,
} from "./_telemetry.ts";

const CONFIG = new URL("./deno.json", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;

/** What the parent hands the child (and the child its worker). */
interface Scenario {
  readonly mode: "on" | "off";
  readonly url: string;
  readonly table: string;
  readonly fail: string;
  readonly seq: string;
  /** A parameter value that must not be exported. */
  readonly secret: string;
  /** A literal of a statement sent without parameters, which must not be exported either. */
  readonly literal: string;
}

async function targetOf(db: AsyncDatabase): Promise<TelemetryTarget> {
  const internals = internalsOf(db);
  return new TelemetryTarget({
    system: dbSystemName(await internals.dialect()),
    namespace: internals.config.database,
    address: internals.config.hosts[0],
    port: internals.config.ports[0],
  });
}

// --- The child script. -------------------------------------------------------------------------

async function child(s: Scenario): Promise<void> {
  const on = s.mode === "on";
  if (telemetryEnabled() !== on) throw new Error(`telemetryEnabled() is not ${on}`);
  const created = performance.now();
  await using db = new AsyncDatabase(s.url, { minConnections: 1, maxConnections: 3 });
  await db.connect();
  const createSeconds = (performance.now() - created) / 1000;
  const target = await targetOf(db);
  const run = (sql: string, params: unknown[] = [], operation?: StatementOperation) =>
    traceStatement(target, sql, params.length > 0, () => db.execute(sql, params), operation);

  if (!on) {
    // Off: the statement's own promise comes back, untouched.
    const pending = db.execute("SELECT 1 AS one");
    if (traceStatement(target, "SELECT 1 AS one", false, () => pending) !== pending) {
      throw new Error("traceStatement() wrapped the promise with no provider");
    }
    await pending;
  }

  const app = trace.getTracer("telemetry-test");
  await app.startActiveSpan("app request", async (request) => {
    try {
      const migration = startMigration(target, {
        version: 1,
        name: "create_users",
        direction: "up",
      });
      try {
        await migration.run(() =>
          run(`CREATE TABLE "${s.table}" (id INT4 PRIMARY KEY, email TEXT UNIQUE NOT NULL)`)
        );
        migration.end();
      } catch (error) {
        migration.end(error);
        throw error;
      }
      await run(`INSERT INTO "${s.table}" (id, email) VALUES ($1, $2)`, [1, s.secret]);
      await run(`SELECT * FROM "${s.table}" WHERE "id" = $1`, [1], {
        operation: "SELECT",
        collection: s.table,
      });
      const echoed = await run(`SELECT '${s.literal}' AS x`);
      if (echoed[0]?.x !== s.literal) throw new Error("the literal did not come back");
      try {
        await run(`INSERT INTO "${s.table}" (id, email) VALUES ($1, $2)`, [2, s.secret]);
        throw new Error("no unique violation");
      } catch (error) {
        // The server quotes the value in its DETAIL: it was within the telemetry's reach.
        const e = error as { code?: string; detail?: string };
        if (e.code !== "23505" || !e.detail?.includes(s.secret)) throw error;
      }

      const tx = startTransaction(target);
      try {
        await tx.run(() =>
          db.transaction(async (t) => {
            const fail = `SELECT "${s.fail}"(1) AS ok`;
            await traceStatement(target, fail, false, () => t.execute(fail));
            const update = `UPDATE "${s.table}" SET email = $1 WHERE id = $2`;
            await traceStatement(target, update, true, () => t.execute(update, [s.secret, 1]));
          }, { onRetry: (info) => tx.retry(info.attempt, info.delayMs, info.error) })
        );
        tx.end();
      } catch (error) {
        tx.end(error);
        throw error;
      }

      const failed = startTransaction(target);
      try {
        await failed.run(() =>
          db.transaction(async (t) => {
            const insert = `INSERT INTO "${s.table}" (id, email) VALUES ($1, $2)`;
            await traceStatement(target, insert, true, () => t.execute(insert, [3, s.secret]));
          })
        );
        throw new Error("the failing transaction committed");
      } catch (error) {
        failed.end(error);
        if ((error as { code?: string }).code !== "23505") throw error;
      }

      // A batch helper's two statements, recorded as one operation.
      const batch = [
        `INSERT INTO "${s.table}" (id, email) VALUES ($1, $2)`,
        `INSERT INTO "${s.table}" (id, email) VALUES ($1, $2), ($3, $4)`,
      ];
      const params = [[10, `${s.secret}-10`], [11, `${s.secret}-11`, 12, `${s.secret}-12`]];
      await traceStatement(target, batch.join("; "), true, () =>
        withoutTelemetry(async () => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          const inner = startTransaction(target);
          await db.transaction(async (t) => {
            for (const [i, text] of batch.entries()) {
              await traceStatement(target, text, true, () => t.execute(text, params[i]));
            }
          });
          inner.end();
        }), { operation: "INSERT", collection: s.table, batchSize: 2 });

      await inWorker({ ...s }, captureContext());
    } finally {
      request.end();
    }
  });

  const internals = internalsOf(db);
  const waited = performance.now();
  const session = await internals.reserve();
  const waitSeconds = (performance.now() - waited) / 1000;
  session.release();
  const pool = observePool(target, () => ({ idle: 1, used: 0, pending: 0, max: 3 }));
  pool.connectionCreated(createSeconds);
  pool.connectionWaited(waitSeconds);
  try {
    // The parent closes stdin once a periodic export has brought the observed pool metrics
    // (the export on exit reads no observable instrument).
    if (on) { for await (const _ of Deno.stdin.readable) { /* until closed */ } }
  } finally {
    pool.close();
    await db.execute(`DROP TABLE IF EXISTS "${s.table}"`);
  }
  console.log("scenario ok");
}

/** Runs one statement in a worker thread, as the sync bridge's worker will. */
async function inWorker(s: Scenario, carrier: TraceCarrier | undefined): Promise<void> {
  if (s.mode === "on" && carrier === undefined) throw new Error("no context captured");
  if (s.mode === "off" && carrier !== undefined) throw new Error("a context captured when off");
  const worker = new Worker(new URL(import.meta.url), { workerData: { scenario: s, carrier } });
  const done = new Promise<void>((resolve, reject) => {
    worker.once("message", (m) => m === "done" ? resolve() : reject(new Error(String(m))));
    worker.once("error", reject);
  });
  const exited = new Promise((resolve) => worker.once("exit", resolve));
  await done;
  await exited;
}

async function worker(s: Scenario, carrier: TraceCarrier | undefined): Promise<void> {
  await using db = new AsyncDatabase(s.url, { minConnections: 1, maxConnections: 1 });
  await db.connect();
  const target = await targetOf(db);
  const echo = "SELECT $1::text AS echoed";
  await withCapturedContext(carrier, async () => {
    // Past an await, as a bridge request's work is.
    await new Promise((resolve) => setTimeout(resolve, 1));
    const rows = await traceStatement(target, echo, true, () => db.execute(echo, [s.secret]));
    if (rows[0]?.echoed !== s.secret) throw new Error("the worker's statement failed");
  });
  // Without the carrier: a trace of its own.
  const alone = "SELECT $1::text AS alone";
  await traceStatement(target, alone, true, () => db.execute(alone, [s.secret]));
}

if (!isMainThread && (workerData as { scenario?: Scenario })?.scenario) {
  const data = workerData as { scenario: Scenario; carrier: TraceCarrier | undefined };
  try {
    await worker(data.scenario, data.carrier);
    parentPort!.postMessage("done");
  } catch (error) {
    parentPort!.postMessage(`worker failed: ${(error as Error).stack}`);
  }
} else if (import.meta.main) {
  await child(JSON.parse(Deno.env.get("TELEMETRY_SCENARIO")!) as Scenario);
}

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
  const names = {
    table: uniqueName("otel"),
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
      ...names,
      secret: `s3cret-param-${crypto.randomUUID()}`,
      literal: `s3cret-literal-${crypto.randomUUID()}`,
    });
  } finally {
    await db.execute(
      `DROP TABLE IF EXISTS "${names.table}"; DROP FUNCTION IF EXISTS "${names.fail}"(int);
       DROP SEQUENCE IF EXISTS "${names.seq}"`,
    );
  }
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

async function finish(process: Deno.ChildProcess): Promise<string> {
  await process.stdin.close().catch(() => {});
  const { code, stdout, stderr } = await process.output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, output);
  assert.match(output, /scenario ok/);
  return output;
}

/** The span's ancestors' names, nearest first. */
function lineage(receiver: Receiver, span: ExportedSpan): string[] {
  return receiver.ancestorsOf(span).map((s) => s.name);
}

Deno.test("statements, transactions, retries, failures and migrations reach OTLP with the database conventions' attributes and links, and no parameter value", async () => {
  await withObjects(async (objects) => {
    await using receiver = OtlpReceiver.start();
    const s: Scenario = { mode: "on", ...objects };
    const process = spawnChild(
      s,
      receiver.env({ OTEL_METRIC_EXPORT_INTERVAL: "200", OTEL_SERVICE_NAME: "telemetry-test" }),
    );
    const exited = new AbortController();
    const status = process.status.then(() => exited.abort(new Error("the child exited")));
    try {
      await receiver.waitFor(
        () =>
          receiver.lastPoint("db.client.connection.count", {
            "db.client.connection.state": "used",
          }) !== undefined,
        "the observed pool metrics",
        { signal: exited.signal },
      );
    } catch (error) {
      await status;
      throw new Error(
        `${(error as Error).message}: ${await finish(process).catch((e) => e.message)}`,
      );
    }
    await finish(process);
    await status;

    // What the test server is, as the child saw it.
    await using db = new AsyncDatabase(testUrl(), { minConnections: 1 });
    const { config } = internalsOf(db);
    const system = dbSystemName(await internalsOf(db).dialect());
    const base: Record<string, string | bigint> = {
      "db.system.name": system,
      "db.namespace": config.database,
      "server.address": config.hosts[0],
    };
    if (config.ports[0] !== DEFAULT_PORTS[system]) base["server.port"] = BigInt(config.ports[0]);

    assert.deepEqual(receiver.refused, []);
    const ours = receiver.findSpans({ scope: INSTRUMENTATION_NAME });
    for (const span of ours) {
      assert.deepEqual(span.scope, {
        name: INSTRUMENTATION_NAME,
        version: INSTRUMENTATION_VERSION,
        schemaUrl: SCHEMA_URL,
      });
    }
    const app = receiver.span({ name: "app request" });
    const t = s.table;

    // A migration span, parent of its statement.
    const migration = receiver.span({ name: "apply migration" });
    assert.equal(migration.kind, "INTERNAL");
    assert.deepEqual(lineage(receiver, migration), ["app request"]);
    assert.deepEqual(migration.attributes, {
      ...base,
      "manticore.db.migration.version": 1n,
      "manticore.db.migration.name": "create_users",
      "manticore.db.migration.direction": "up",
    });
    const create = receiver.span({ name: `CREATE TABLE "${t}"` });
    assert.deepEqual(lineage(receiver, create), ["apply migration", "app request"]);
    assert.equal(create.kind, "CLIENT");
    assert.equal(create.status.code, "UNSET");

    // Raw SQL: summary and text, no operation or collection name (not read from the text).
    const inserts = receiver.findSpans({ name: `INSERT "${t}"` });
    assert.equal(inserts.length, 3); // the row, the duplicate, the failing transaction's
    const insert = inserts.find((x) => x.status.code === "UNSET")!;
    assert.deepEqual(insert.attributes, {
      ...base,
      "db.query.summary": `INSERT "${t}"`,
      "db.query.text": `INSERT INTO "${t}" (id, email) VALUES ($1, $2)`,
    });
    assert.deepEqual(lineage(receiver, insert), ["app request"]);
    assert.equal(insert.kind, "CLIENT");

    // A helper's statement names its operation and collection.
    const select = receiver.span({ name: `SELECT ${t}` });
    assert.deepEqual(select.attributes, {
      ...base,
      "db.operation.name": "SELECT",
      "db.collection.name": t,
      "db.query.summary": `SELECT ${t}`,
      "db.query.text": `SELECT * FROM "${t}" WHERE "id" = $1`,
    });

    // Text sent without parameters: the literal is hidden.
    const literal = receiver.span({
      name: "SELECT",
      attributes: { "db.query.text": "SELECT ? AS x" },
    });
    assert.deepEqual(lineage(receiver, literal), ["app request"]);

    // The unique violation: status ERROR, SQLSTATE, no message.
    const duplicate = inserts.find((x) =>
      x.status.code === "ERROR" && x.parentSpanId === app.spanId
    )!;
    assert.ok(duplicate, "the failed INSERT under the application span");
    assert.deepEqual(duplicate.status, { code: "ERROR", message: "" });
    assert.equal(duplicate.attributes["db.response.status_code"], "23505");
    assert.equal(duplicate.attributes["error.type"], "23505");
    assert.deepEqual(duplicate.events, []);

    // The transaction that retried once on 40001, parent of both attempts' statements.
    const [committed, failed] = ["committed", "failed"].map((outcome) =>
      receiver.span({
        name: "transaction",
        attributes: { "manticore.db.transaction.outcome": outcome },
      })
    );
    assert.equal(committed.kind, "INTERNAL");
    assert.deepEqual(lineage(receiver, committed), ["app request"]);
    assert.deepEqual(committed.status, { code: "UNSET", message: "" });
    assert.equal(committed.attributes["manticore.db.transaction.attempts"], 2n);
    assert.equal(committed.events.length, 1);
    const [retry] = committed.events;
    assert.equal(retry.name, "retry");
    assert.equal(retry.attributes["db.response.status_code"], "40001");
    assert.equal(retry.attributes["error.type"], "40001");
    assert.equal(retry.attributes["manticore.db.transaction.attempt"], 1n);
    assert.equal(typeof retry.attributes["manticore.db.transaction.backoff_ms"], "bigint");
    const attempts = receiver.childrenOf(committed).map((x) => `${x.name} ${x.status.code}`);
    assert.deepEqual(attempts.sort(), [
      "SELECT ERROR",
      "SELECT UNSET",
      `UPDATE "${t}" UNSET`,
    ]);
    const forced = receiver.childrenOf(committed).find((x) => x.status.code === "ERROR")!;
    assert.equal(forced.attributes["db.response.status_code"], "40001");
    assert.equal(forced.attributes["db.query.text"], `SELECT "${s.fail}"(?) AS ok`);

    // The transaction that failed on 23505.
    assert.deepEqual(failed.status, { code: "ERROR", message: "" });
    assert.equal(failed.attributes["error.type"], "23505");
    assert.equal(failed.attributes["manticore.db.transaction.attempts"], 1n);
    assert.equal(failed.attributes["db.response.status_code"], undefined);
    assert.deepEqual(receiver.childrenOf(failed).map((x) => x.status.code), ["ERROR"]);

    // The batch: one span, no spans of its own statements or transaction (counted above).
    const batch = receiver.span({ name: `BATCH INSERT ${t}` });
    assert.deepEqual(lineage(receiver, batch), ["app request"]);
    assert.deepEqual(receiver.childrenOf(batch), []);
    assert.deepEqual(batch.attributes, {
      ...base,
      "db.operation.name": "BATCH INSERT",
      "db.collection.name": t,
      "db.query.summary": `BATCH INSERT ${t}`,
      "db.query.text":
        `INSERT INTO "${t}" (id, email) VALUES ($1, $2); INSERT INTO "${t}" (id, email) VALUES ($1, $2), ($3, $4)`,
      "db.operation.batch.size": 2n,
    });

    // The worker thread's statement is in the caller's trace, under the application span; its
    // statement without the carrier starts a trace of its own.
    const echoed = receiver.span({ attributes: { "db.query.text": "SELECT $1::text AS echoed" } });
    assert.equal(echoed.traceId, app.traceId);
    assert.equal(echoed.parentSpanId, app.spanId);
    const alone = receiver.span({ attributes: { "db.query.text": "SELECT $1::text AS alone" } });
    assert.equal(alone.parentSpanId, "");
    assert.notEqual(alone.traceId, app.traceId);

    // Metrics.
    const durations = receiver.points("db.client.operation.duration");
    assert.ok(durations.length > 0);
    for (const p of durations) {
      assert.equal(p.type, "histogram");
      assert.equal(p.unit, "s");
      assert.deepEqual(p.explicitBounds, DURATION_BUCKETS);
      assert.deepEqual(p.scope, { name: INSTRUMENTATION_NAME, version: INSTRUMENTATION_VERSION });
    }
    // Cumulative: the last point of each attribute set counts every statement so far.
    const okInsert = { ...base, "db.query.summary": `INSERT "${t}"` };
    const duration = (attributes: Record<string, string | bigint>) =>
      receiver.lastPoint("db.client.operation.duration", attributes, true)?.count;
    assert.equal(duration(okInsert), 1);
    const failedInsert = { ...okInsert, "error.type": "23505", "db.response.status_code": "23505" };
    assert.equal(duration(failedInsert), 2);
    const helper = {
      ...base,
      "db.operation.name": "SELECT",
      "db.collection.name": t,
      "db.query.summary": `SELECT ${t}`,
    };
    assert.equal(duration(helper), 1);
    assert.equal(
      duration({
        ...base,
        "db.operation.name": "BATCH INSERT",
        "db.collection.name": t,
        "db.query.summary": `BATCH INSERT ${t}`,
      }),
      1,
    );
    // The main thread's and the worker's "SELECT" statements: the literal, the forced
    // retry's second call, the echo and the lone one (the first call failed).
    assert.equal(duration({ ...base, "db.query.summary": "SELECT" }), 4);
    const retries = receiver.lastPoint("manticore.db.client.transaction.retries", {
      ...base,
      "db.response.status_code": "40001",
      "error.type": "40001",
    }, true);
    assert.equal(retries?.type, "sum");
    assert.equal(retries?.monotonic, true);
    assert.equal(retries?.unit, "{retry}");
    assert.equal(retries?.value, 1);

    const poolName = `${config.hosts[0]}:${config.ports[0]}/${config.database}`;
    const pool = { "db.client.connection.pool.name": poolName };
    const observed = (metric: string, attributes: Record<string, string>) => {
      const p = receiver.lastPoint(metric, attributes);
      assert.ok(p, `${metric} ${JSON.stringify(attributes)}`);
      assert.equal(p.type, "sum");
      assert.equal(p.monotonic, false);
      assert.deepEqual(p.attributes, attributes);
      return p;
    };
    assert.equal(
      observed("db.client.connection.count", { ...pool, "db.client.connection.state": "idle" })
        .value,
      1,
    );
    assert.equal(
      observed("db.client.connection.count", { ...pool, "db.client.connection.state": "used" })
        .value,
      0,
    );
    assert.equal(observed("db.client.connection.max", pool).value, 3);
    assert.equal(observed("db.client.connection.pending_requests", pool).value, 0);
    assert.equal(receiver.lastPoint("db.client.connection.count", pool)?.unit, "{connection}");
    for (const metric of ["db.client.connection.create_time", "db.client.connection.wait_time"]) {
      const p = receiver.lastPoint(metric, pool);
      assert.equal(p?.count, 1, metric);
      assert.equal(p?.unit, "s");
    }

    // Nothing of the values anywhere: spans, metrics, logs.
    const everything = receiver.rawText();
    assert.ok(everything.includes(t), "the receiver holds the statements");
    assert.ok(!everything.includes(s.secret), "a parameter value was exported");
    assert.ok(!everything.includes(s.literal), "a literal was exported");
  });
});

Deno.test("with OpenTelemetry off the same calls run the statements and send nothing", async () => {
  await withObjects(async (objects) => {
    await using receiver = OtlpReceiver.start();
    const env = receiver.env();
    delete env.OTEL_DENO; // everything else points at the receiver
    await finish(spawnChild({ mode: "off", ...objects }, env));
    // Everything a process exports goes out before it exits.
    assert.deepEqual(receiver.requests, []);
    assert.deepEqual(receiver.refused, []);
  });
});
