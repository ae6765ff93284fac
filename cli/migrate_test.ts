// The CLI, run as a separate process each time, as a user runs it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AsyncDatabase } from "../async_database.ts";
import { AsyncMigration } from "../async_migration.ts";
import { testUrl, uniqueName, withRestrictedRole } from "../_test_util.ts";

const root = new URL("..", import.meta.url).pathname;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function command(
  args: readonly string[],
  env: Record<string, string> = {},
  permissions: readonly string[] = ["-A"],
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, "cli/migrate.ts", ...args],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  });
}

async function cli(
  args: readonly string[],
  env?: Record<string, string>,
  permissions?: readonly string[],
): Promise<Run> {
  const { code, stdout, stderr } = await command(args, env, permissions).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

interface Fixture {
  readonly db: AsyncDatabase;
  readonly url: string;
  readonly s: string;
  readonly dir: string;
  /** --url, --dir and --table for this fixture. */
  readonly flags: readonly string[];
  write(name: string, text: string): Promise<void>;
}

async function withFixture(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const url = testUrl();
  await using db = new AsyncDatabase(url, { minConnections: 1 });
  const s = uniqueName("cli");
  const dir = await Deno.makeTempDir({ prefix: "migrations_" });
  await db.execute(`CREATE SCHEMA ${s}`);
  try {
    await fn({
      db,
      url,
      s,
      dir,
      flags: ["--url", url, "--dir", dir, "--table", `${s}._migrations`],
      write: (name, text) => Deno.writeTextFile(join(dir, name), text),
    });
  } finally {
    await db.execute(`DROP SCHEMA ${s} CASCADE`);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli: --help prints the usage, with the deno.json task that sets it up, and exits 0", async () => {
  const run = await cli(["--help"]);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /^Usage: deno task migrate <command>/);
  assert.ok(
    run.stdout.includes(
      `"tasks": { "migrate": "deno run -A jsr:@manticore/cockroachdb/cli/migrate" }`,
    ),
    run.stdout,
  );
  assert.match(run.stdout, /--allow-net --allow-env --allow-read --allow-write/);
  for (const c of ["status", "up", "down", "create", "history", "verify", "unlock"]) {
    assert.match(run.stdout, new RegExp(`\\n  ${c}\\b`));
  }
  // The module's own documentation shows the same task.
  const source = await Deno.readTextFile(join(root, "cli", "migrate.ts"));
  assert.ok(source.includes(`"migrate": "deno run -A jsr:@manticore/cockroachdb/cli/migrate"`));
});

Deno.test("cli: bad usage exits 2 with the reason and the usage text", async () => {
  const cases: [string[], RegExp][] = [
    [[], /no command given/],
    [["migrate"], /"migrate": unknown command/],
    [["up", "--bogus"], /bogus/],
    [["up", "--to", "abc"], /--to "abc"/],
    [["down", "--to", "1", "--steps", "1"], /--to with --steps/],
    [["create"], /no migration name/],
    [["status", "--dry-run"], /--dry-run with "status"/],
    [["up", "--steps", "2"], /--steps with "up"/],
    [["history", "extra"], /unexpected argument "extra"/],
  ];
  const runs = await Promise.all(
    cases.map(async ([args, reason]) => ({ args, reason, run: await cli(args) })),
  );
  for (const { args, reason, run } of runs) {
    assert.equal(run.code, 2, args.join(" "));
    assert.match(run.stderr, reason);
    assert.match(run.stderr, /Usage: deno task migrate/);
  }
});

Deno.test("cli: create writes the next V file, offline without a database", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await cli(["create", "add", "users", "--dir", join(dir, "m")], {
      DATABASE_URL: "",
    });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Created .*V1__add_users\.sql/);
    const text = await Deno.readTextFile(join(dir, "m", "V1__add_users.sql"));
    assert.match(text, /\n-- DOWN\n/);
    await Deno.writeTextFile(join(dir, "m", "V7__later.sql"), "SELECT 1");
    const second = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "cli/migrate.ts", "create", "next", "--dir", join(dir, "m"), "--json"],
      cwd: root,
      clearEnv: true,
      env: { NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(second.code, 0, new TextDecoder().decode(second.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(second.stdout)), {
      path: join(dir, "m", "V8__next.sql"),
    });
    const bad = await cli(["create", "../escape", "--dir", dir]);
    assert.equal(bad.code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: up, status, history, verify and down work end to end, with per-migration progress", async () => {
  await withFixture(async ({ db, s, flags, write }) => {
    await write(
      "V1__users.sql",
      `CREATE TABLE ${s}.users (id INT);\n-- DOWN\nDROP TABLE ${s}.users;`,
    );
    await write(
      "V2__email.sql",
      `ALTER TABLE ${s}.users ADD COLUMN email TEXT;\n-- DOWN\nALTER TABLE ${s}.users DROP COLUMN email;`,
    );
    await write("V3__idx.sql", `CREATE INDEX ON ${s}.users (email);`);

    const status = await cli(["status", ...flags]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /pending\s+V1 users/);
    assert.match(status.stdout, /0 applied, 3 pending/);

    const up = await cli(["up", "--to", "2", ...flags]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /Applying V1 users[\s\S]*✓ applied V1 users in \d+ ms/);
    assert.match(up.stdout, /✓ applied V2 email in \d+ ms/);
    assert.match(up.stdout, /Applied 2 migrations: version 0 → 2/);
    assert.equal(await db.tableExists(`${s}.users`), true);

    const json = await cli(["status", "--json", ...flags]);
    assert.deepEqual(JSON.parse(json.stdout).map((x: { state: string }) => x.state), [
      "applied",
      "applied",
      "pending",
    ]);

    const history = await cli(["history", ...flags]);
    assert.match(history.stdout, /V1 users[\s\S]*V2 email/);
    const historyJson = JSON.parse((await cli(["history", "--json", ...flags])).stdout);
    assert.deepEqual(historyJson.map((h: { version: number }) => h.version), [1, 2]);

    const verify = await cli(["verify", ...flags]);
    assert.equal(verify.code, 0);
    assert.match(verify.stdout, /OK/);

    const upAll = JSON.parse((await cli(["up", "--json", ...flags])).stdout);
    assert.deepEqual([upAll.applied, upAll.fromVersion, upAll.toVersion], [1, 2, 3]);

    const down = await cli(["down", "--to", "1", ...flags]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /V3__idx\.sql.*no down SQL/);
    await write("V3__idx.sql", `CREATE INDEX ON ${s}.users (email);\n-- DOWN\nSELECT 1;`);
    const modified = await cli(["verify", ...flags]);
    assert.equal(modified.code, 1);
    assert.match(modified.stdout, /modified V3 idx/);
    const refused = await cli(["down", "--steps", "2", ...flags]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /changed since it was applied \(checksum differs\); restore the file, or pass --allow-modified to run anyway\n/,
    );
    assert.doesNotMatch(refused.stderr, /allowModified/);
    const reverted = await cli(["down", "--steps", "2", "--allow-modified", ...flags]);
    assert.equal(reverted.code, 0, reverted.stderr);
    assert.match(reverted.stdout, /✓ reverted V3 idx[\s\S]*✓ reverted V2 email/);
    assert.match(reverted.stdout, /Reverted 2 migrations: version 3 → 1/);
    const nothing = await cli(["down", "--steps", "0", ...flags]);
    assert.match(nothing.stdout, /Nothing to do: at version 1/);
  });
});

Deno.test("cli: --dry-run prints the plan and the SQL and changes nothing", async () => {
  await withFixture(async ({ db, s, flags, write }) => {
    await write(
      "V1__users.sql",
      `CREATE TABLE ${s}.users (id INT);\n-- DOWN\nDROP TABLE ${s}.users;`,
    );
    const dry = await cli(["up", "--dry-run", ...flags]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /Dry run: would apply 1 migration \(version 0 → 1\)/);
    assert.match(dry.stdout, new RegExp(`CREATE TABLE ${s}\\.users \\(id INT\\);`));
    assert.equal(await db.tableExists(`${s}.users`), false);
    assert.equal(await db.tableExists(`${s}._migrations`), false);
    await cli(["up", ...flags]);
    const dryDown = await cli(["down", "--dry-run", "--json", ...flags]);
    const plan = JSON.parse(dryDown.stdout);
    assert.deepEqual([plan.dryRun, plan.direction, plan.migrations[0].sql], [
      true,
      "down",
      `DROP TABLE ${s}.users;`,
    ]);
    assert.equal(await db.tableExists(`${s}.users`), true);
  });
});

Deno.test("cli: a failed migration exits 1 naming the file, the statement and the cause", async () => {
  await withFixture(async ({ db, s, flags, write }) => {
    await write("V1__ok.sql", `CREATE TABLE ${s}.ok (id INT);`);
    await write(
      "V2__bad.sql",
      `CREATE TABLE ${s}.bad (id INT);\nINSERT INTO ${s}.missing VALUES (1);`,
    );
    const run = await cli(["up", ...flags]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /✓ applied V1 ok/);
    assert.match(
      run.stderr,
      /error: Cannot apply migration ".*V2__bad\.sql" \(statement 2 of 2, line 2/,
    );
    assert.match(run.stderr, /does not exist/);
    assert.equal(await db.tableExists(`${s}.bad`), false);
    const json = await cli(["up", "--json", ...flags]);
    assert.equal(json.code, 1);
    const { error } = JSON.parse(json.stdout);
    assert.equal(error.name, "MigrationError");
    assert.equal(error.version, 2);
    assert.equal(error.code, "42P01");
    assert.equal(error.statement, `INSERT INTO ${s}.missing VALUES (1)`);
  });
});

Deno.test("cli: an unreachable database exits 1", async () => {
  const run = await cli([
    "status",
    "--dir",
    "cli",
    "--url",
    "postgresql://root@127.0.0.1:1/none?connect_timeout=5",
  ]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /127\.0\.0\.1:1/);
});

Deno.test("cli: unlock removes a lock left by a runner that died", async () => {
  await withFixture(async ({ db, s, flags, write }) => {
    await write("V1__a.sql", `CREATE TABLE ${s}.a (id INT);`);
    await new AsyncMigration(db, { tableName: `${s}._migrations` }).initialize();
    await db.execute(
      `INSERT INTO ${s}._migrations_lock (id, owner, expires_at) VALUES (1, 'gone', now() + INTERVAL '1 hour')`,
    );
    const blocked = await cli(["up", "--lock-timeout", "100", ...flags]);
    assert.equal(blocked.code, 1);
    assert.match(blocked.stdout, /Waiting for the migration lock held by "gone"/);
    assert.match(
      blocked.stderr,
      /Cannot acquire the migration lock .*; raise --lock-timeout to wait longer, or run the unlock command if that runner is gone\n/,
    );
    const unlock = await cli(["unlock", ...flags]);
    assert.equal(unlock.code, 0);
    assert.match(unlock.stdout, /Released the migration lock/);
    assert.equal((await cli(["up", ...flags])).code, 0);
  });
});

Deno.test("cli: two processes started at once apply each migration exactly once", async () => {
  await withFixture(async ({ db, s, flags, write }) => {
    await write(
      "V1__log.sql",
      // Takes a moment, so that the two runs overlap.
      `CREATE TABLE ${s}.log (version INT NOT NULL);\nINSERT INTO ${s}.log VALUES (1);\nSELECT pg_sleep(0.3);`,
    );
    for (let v = 2; v <= 8; v++) {
      await write(
        `V${v}__step.sql`,
        `CREATE TABLE ${s}.t${v} (id INT);\nINSERT INTO ${s}.log VALUES (${v});`,
      );
    }
    const runs = await Promise.all([cli(["up", ...flags]), cli(["up", ...flags])]);
    for (const run of runs) assert.equal(run.code, 0, run.stderr);
    const rows = await db.execute<{ version: number; n: bigint }>(
      `SELECT version, count(*) AS n FROM ${s}.log GROUP BY version ORDER BY version`,
    );
    assert.deepEqual(
      rows.map((r) => [r.version, Number(r.n)]),
      [1, 2, 3, 4, 5, 6, 7, 8].map((v) => [v, 1]),
    );
    const applied = runs.map((r) => /Applied (\d+) migration/.exec(r.stdout)?.[1] ?? "0");
    assert.equal(applied.map(Number).reduce((a, b) => a + b), 8);
  });
});

Deno.test("cli: a missing migrations directory exits 1 naming it; history and unlock do not read it; create makes it", async () => {
  await withFixture(async ({ db, s, flags, dir }) => {
    const missing = join(dir, "nope");
    const withDir = (args: string[]) => [...args, ...flags, "--dir", missing];
    const runs = await Promise.all(
      [["up"], ["up", "--dry-run"], ["down"], ["status"], ["verify"]].map((args) =>
        cli(withDir(args))
      ),
    );
    for (const run of runs) {
      assert.equal(run.code, 1, run.stdout);
      assert.equal(
        run.stderr,
        `error: Cannot load migrations from "${missing}": no such directory; check --dir, or make the directory (the create command makes it with its first file)\n`,
      );
    }
    // Relative to the current directory (the repository's root here), it is named both ways.
    const relative = await cli(["status", ...flags, "--dir", "no_such_migrations"]);
    assert.equal(relative.code, 1);
    assert.match(
      relative.stderr,
      new RegExp(
        `"no_such_migrations": no such directory \\("${root}no_such_migrations", resolved against the current directory\\)`,
      ),
    );
    const json = JSON.parse((await cli(withDir(["status", "--json"]))).stdout);
    assert.deepEqual([json.error.code, json.error.path], [
      "MIGRATION_DIRECTORY_NOT_FOUND",
      missing,
    ]);
    // These two read only the tracking table, which does not exist: nothing to show.
    const history = await cli(withDir(["history"]));
    assert.deepEqual([history.code, history.stdout], [0, "No migrations applied.\n"]);
    const unlock = await cli(withDir(["unlock"]));
    assert.deepEqual([unlock.code, unlock.stdout], [0, "No migration lock was held.\n"]);
    assert.equal(await db.tableExists(`${s}._migrations`), false);
    assert.equal(await db.tableExists(`${s}._migrations_lock`), false);
    // With a database, create numbers after the applied rows and makes the directory.
    const create = await cli(withDir(["create", "first"]));
    assert.equal(create.code, 0, create.stderr);
    assert.equal(create.stdout, `Created ${join(missing, "V1__first.sql")}\n`);
    assert.equal((await cli(withDir(["status"]))).code, 0);
  });
});

Deno.test("cli: status, history, verify and --dry-run work for a read-only role and create no table", async () => {
  await withFixture(async ({ db, url, s, flags, write }) => {
    await withRestrictedRole(
      db,
      { prefix: "cli_reader", schema: s, url },
      async (role, readerUrl) => {
        // The reader's URL comes last, so it wins over the fixture's.
        const as = (args: string[]) => [...args, ...flags, "--url", readerUrl.href];
        await write("V1__a.sql", `CREATE TABLE ${s}.a (id INT);\n-- DOWN\nDROP TABLE ${s}.a;`);
        const tables = () =>
          Promise.all(
            ["_migrations", "_migrations_lock", "_migrations_progress"].map((t) =>
              db.tableExists(`${s}.${t}`)
            ),
          );
        // What each read-only command prints.
        const reads = async () => {
          const [status, history, verify, up, down] = await Promise.all([
            cli(as(["status"])),
            cli(as(["history"])),
            cli(as(["verify"])),
            cli(as(["up", "--dry-run"])),
            cli(as(["down", "--dry-run"])),
          ]);
          for (const run of [status, history, verify, up, down]) {
            assert.equal(run.code, 0, run.stderr);
          }
          return {
            status: status.stdout,
            history: history.stdout,
            verify: verify.stdout,
            up: up.stdout,
            down: down.stdout,
          };
        };
        const { status, history, verify, up } = await reads();
        assert.match(status, /pending\s+V1 a/);
        assert.equal(history, "No migrations applied.\n");
        assert.match(verify, /^OK/);
        assert.match(up, /Dry run: would apply 1 migration/);
        assert.deepEqual(await tables(), [false, false, false]);
        // Applying is the first write: refused, naming the tables.
        const refused = await cli(as(["up"]));
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /Cannot create the migration tables .*permission denied/);
        assert.deepEqual(await tables(), [false, false, false]);
        // Applied by a role that may; the reader sees it.
        assert.equal((await cli(["up", ...flags])).code, 0);
        await db.execute(`GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${role}`);
        const { status: status2, history: history2, down } = await reads();
        assert.match(status2, /applied\s+V1 a/);
        assert.match(history2, /V1 a/);
        assert.match(down, /Dry run: would revert 1 migration/);
        assert.deepEqual(await tables(), [true, true, false]);
      },
    );
  });
});

Deno.test("cli: hints name the flags: --allow-out-of-order, and --allow-modified for a partial run", async () => {
  await withFixture(async ({ s, flags, write, dir }) => {
    await write("V1__a.sql", `CREATE TABLE ${s}.a (id INT);`);
    await write("V3__c.sql", `CREATE TABLE ${s}.c (id INT);`);
    assert.equal((await cli(["up", ...flags])).code, 0);
    await write("V2__b.sql", `CREATE TABLE ${s}.b (id INT);`);
    const early = await cli(["up", ...flags]);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /; pass --allow-out-of-order to apply them anyway\n/);
    assert.doesNotMatch(early.stderr, /allowOutOfOrder/);
    assert.equal((await cli(["up", "--allow-out-of-order", ...flags])).code, 0);

    await write(
      "V4__no_tx.sql",
      `-- migrate:no-transaction\nCREATE TABLE ${s}.d (id INT);\nSELECT * FROM ${s}.nope;\n`,
    );
    assert.equal((await cli(["up", ...flags])).code, 1);
    await Deno.writeTextFile(
      join(dir, "V4__no_tx.sql"),
      `-- migrate:no-transaction\nCREATE TABLE ${s}.d2 (id INT);\nSELECT 1;\n`,
    );
    const partial = await cli(["up", ...flags]);
    assert.equal(partial.code, 1);
    assert.match(
      partial.stderr,
      /committed 1 of its statements, which have changed since; undo them by hand, then pass --allow-modified to run it from its first statement\n/,
    );
    assert.doesNotMatch(partial.stderr, /allowModified/);
  });
});

Deno.test("cli: runs with --allow-net --allow-env --allow-read, and create with --allow-write instead of -A", async () => {
  await withFixture(async ({ s, flags, write, dir }) => {
    const narrow = ["--allow-net", "--allow-env", "--allow-read"];
    await write("V1__a.sql", `CREATE TABLE ${s}.a (id INT);\n-- DOWN\nDROP TABLE ${s}.a;`);
    for (const args of [["status"], ["up"], ["history"], ["verify"], ["down"], ["unlock"]]) {
      const run = await cli([...args, ...flags], {}, narrow);
      assert.equal(run.code, 0, `${args}: ${run.stderr}`);
    }
    const denied = await cli(["create", "b", ...flags], {}, narrow);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /--allow-write/);
    const create = await cli(["create", "b", ...flags], {}, [...narrow, "--allow-write"]);
    assert.equal(create.code, 0, create.stderr);
    assert.equal(create.stdout, `Created ${join(dir, "V2__b.sql")}\n`);
  });
});
