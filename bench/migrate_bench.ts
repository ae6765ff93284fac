// Applies 200 small migrations to an empty database with AsyncMigration, and the same files
// with psql, and prints the times.
//
// Usage: deno run -A bench/migrate_bench.ts [--count 200] [--rounds 5] [--json]
// Uses a fresh database on the server in TEST_DATABASE_URL when set; otherwise starts a
// throwaway PostgreSQL server and stops it after.
//
// Every variant does the same work: for each file, in its own transaction, the file's three
// statements (CREATE TABLE, INSERT of two rows, CREATE INDEX) and one tracking row; each starts
// on a freshly created empty database (not timed). The variants:
// - library: `new AsyncDatabase(url)` + `new AsyncMigration(db).migrate()` + `close()` in this
//   process (reading the files, checksums, lock, tracking table, one transaction per file);
// - cli: `deno run -A cli/migrate.ts up`, a process of its own (Deno's start-up included);
// - psql session: one `psql -v ON_ERROR_STOP=1` process running a script that, per file, does
//   `BEGIN; \i file; INSERT INTO tracking …; COMMIT;` — the least work a migration tool can do;
// - psql per file: `psql -1 -v ON_ERROR_STOP=1 -f file -c "INSERT …"` per file, as a shell
//   loop would (a process and a connection per file).
// The goal is library ≤ 2× psql session.
import { parseArgs } from "node:util";
import { join } from "node:path";
import { AsyncDatabase } from "../async_database.ts";
import { AsyncMigration } from "../async_migration.ts";
import { startTestDatabase } from "../testing.ts";
import { median, rotated } from "./_harness.ts";

const root = new URL("..", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string", default: "200" },
    rounds: { type: "string", default: "5" },
    json: { type: "boolean", default: false },
  },
  strict: true,
});
const COUNT = Number(values.count);
const ROUNDS = Number(values.rounds);
const log = (line: string) => console.error(line);

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.href;
}

async function writeFiles(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Promise.all(Array.from({ length: COUNT }, (_, k) => {
    const i = k + 1;
    return Deno.writeTextFile(
      join(dir, `V${i}__create_t${i}.sql`),
      `CREATE TABLE t${i} (id INT8 PRIMARY KEY, name TEXT NOT NULL, created_at TIMESTAMPTZ DEFAULT now());
INSERT INTO t${i} (id, name) VALUES (1, 'a'), (2, 'b');
CREATE INDEX t${i}_name ON t${i} (name);
`,
    );
  }));
}

const TRACKING = "CREATE TABLE IF NOT EXISTS psql_migrations (version INT8 PRIMARY KEY, " +
  "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

async function psql(url: string, args: readonly string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("psql", {
    args: ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`psql failed: ${new TextDecoder().decode(stderr)}`);
}

type Variant = { readonly id: string; readonly label: string; run(url: string): Promise<void> };

function variants(dir: string, tmp: string): Variant[] {
  const script = join(tmp, "all.sql");
  return [
    {
      id: "library",
      label: "AsyncMigration.migrate() in process",
      async run(url) {
        await using db = new AsyncDatabase(url, { minConnections: 1 });
        const result = await new AsyncMigration(db, { migrationsDir: dir }).migrate();
        if (result.applied !== COUNT) throw new Error(`applied ${result.applied}`);
      },
    },
    {
      id: "cli",
      label: "deno task migrate up (a process)",
      async run(url) {
        const { code, stderr } = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "cli/migrate.ts", "up", "--url", url, "--dir", dir, "--json"],
          cwd: root,
          stdout: "null",
          stderr: "piped",
        }).output();
        if (code !== 0) throw new Error(new TextDecoder().decode(stderr));
      },
    },
    {
      id: "psql-session",
      label: "psql, one session, BEGIN / \\i file / INSERT / COMMIT per file",
      async run(url) {
        await Deno.writeTextFile(
          script,
          [
            `${TRACKING};`,
            ...Array.from({ length: COUNT }, (_, k) => {
              const i = k + 1;
              return `BEGIN;\n\\i ${join(dir, `V${i}__create_t${i}.sql`)}\n` +
                `INSERT INTO psql_migrations (version, name) VALUES (${i}, 'create_t${i}');\nCOMMIT;`;
            }),
          ].join("\n"),
        );
        await psql(url, ["-f", script]);
      },
    },
    {
      id: "psql-per-file",
      label: "psql -1 -f file per file (a process each)",
      async run(url) {
        await psql(url, ["-c", TRACKING]);
        for (let i = 1; i <= COUNT; i++) {
          await psql(url, [
            "-1",
            "-f",
            join(dir, `V${i}__create_t${i}.sql`),
            "-c",
            `INSERT INTO psql_migrations (version, name) VALUES (${i}, 'create_t${i}')`,
          ]);
        }
      },
    },
  ];
}

async function main(): Promise<void> {
  await using server = await startTestDatabase();
  const tmp = await Deno.makeTempDir({ prefix: "migrate_bench_" });
  const dir = join(tmp, "migrations");
  await using admin = new AsyncDatabase(server.url, { minConnections: 1 });
  const created: string[] = [];
  try {
    await writeFiles(dir);
    const list = variants(dir, tmp);
    const times = new Map<string, number[]>(list.map((v) => [v.id, []]));
    log(`${COUNT} migrations, ${ROUNDS} rounds (+1 warm-up), server ${admin.toString()}`);
    for (let round = 0; round <= ROUNDS; round++) {
      // Rotate the order each round so that drift falls on every variant alike.
      const order = rotated(list, round);
      for (const v of order) {
        const name = `migrate_bench_${round}_${v.id.replaceAll("-", "_")}_${
          Date.now().toString(36)
        }`;
        await admin.createDatabase(name);
        created.push(name);
        const started = performance.now();
        await v.run(withDatabase(server.url, name));
        const ms = performance.now() - started;
        if (round > 0) times.get(v.id)!.push(ms);
        log(`  round ${round}${round === 0 ? " (warm-up)" : ""}: ${v.id} ${ms.toFixed(0)} ms`);
        await admin.dropDatabase(name);
        created.pop();
      }
    }
    const results = list.map((v) => {
      const ms = median(times.get(v.id)!);
      return { id: v.id, label: v.label, medianMs: ms, perMigrationMs: ms / COUNT };
    });
    const base = results.find((r) => r.id === "psql-session")!.medianMs;
    const lib = results.find((r) => r.id === "library")!.medianMs;
    const ratio = lib / base;
    if (values.json) {
      console.log(
        JSON.stringify({ count: COUNT, rounds: ROUNDS, results, ratio, goal: 2 }, null, 2),
      );
      return;
    }
    console.log(`\n${COUNT} migrations into an empty database, median of ${ROUNDS} rounds:\n`);
    console.log("| variant | total | per migration | vs psql session |");
    console.log("| --- | ---: | ---: | ---: |");
    for (const r of results) {
      console.log(
        `| ${r.label} | ${r.medianMs.toFixed(0)} ms | ${r.perMigrationMs.toFixed(2)} ms | ${
          (r.medianMs / base).toFixed(2)
        }× |`,
      );
    }
    console.log(
      `\nlibrary / psql session: ${ratio.toFixed(2)}× (goal ≤ 2×: ${
        ratio <= 2 ? "met" : "NOT met"
      })`,
    );
  } finally {
    for (const name of created) await admin.dropDatabase(name).catch(() => {});
    await Deno.remove(tmp, { recursive: true });
  }
}

await main();
