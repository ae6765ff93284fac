/**
 * The migration command line, over {@linkcode AsyncMigration}. In your project, add a task to
 * `deno.json` once:
 *
 * ```json
 * {
 *   "tasks": {
 *     "migrate": "deno run -A jsr:@manticore/cockroachdb/cli/migrate"
 *   }
 * }
 * ```
 *
 * then run it with the database in `DATABASE_URL` (or `--url`). `deno task` runs it in the
 * directory of `deno.json`, against which the migrations directory (`migrations`, or
 * `--dir`) is resolved:
 *
 * ```sh
 * deno task migrate create add_users      # writes migrations/V1__add_users.sql
 * deno task migrate up [--to N] [--dry-run]
 * deno task migrate down [--to N | --steps N] [--dry-run]
 * deno task migrate status | history | verify | unlock
 * deno task migrate --help
 * ```
 *
 * `-A` may be narrowed to `--allow-net --allow-env --allow-read --allow-write`
 * (`--allow-write` is used only by `create`).
 *
 * `status`, `history`, `verify` and dry runs write nothing to the database, so they work for a
 * role that may only read; the tracking tables are created when a migration is first applied.
 * A migrations directory that does not exist is an error (exit 1) for `up`, `down`, `status`
 * and `verify`; `create` creates it; `history` and `unlock` read only the database, not the
 * directory.
 *
 * Exit status: 0 on success, 1 when a migration fails, a check fails, the directory is missing
 * or the database cannot be reached, 2 on bad usage (with the usage text).
 *
 * @example Run it from code
 * ```ts
 * import { main } from "@manticore/cockroachdb/cli/migrate";
 *
 * // In a script of your own: Deno.exit(await main(Deno.args));
 * const dir = await Deno.makeTempDir(); // in a project: "migrations", the default
 * const code = await main(["up", "--dir", dir]); // the database in DATABASE_URL, or --url
 * console.log(code); // 0 (it printed "Nothing to do: at version 0.")
 * await Deno.remove(dir);
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { AsyncDatabase } from "../async_database.ts";
import {
  AsyncMigration,
  type MigrateResult,
  type MigrationHistoryEntry,
  type MigrationProgress,
  type MigrationState,
  type MigrationStatus,
  type VerifyResult,
} from "../async_migration.ts";
import {
  migrationFileStem,
  migrationFileText,
  newMigrationPath,
  parseMigrationFiles,
  readMigrationDir,
  respell,
  writeMigrationFile,
} from "../_migration/mod.ts";
import { DatabaseError, type MigrationError, ValidationError } from "../errors.ts";

/** The usage text, printed by `--help` and after a usage error. */
export const USAGE = `Usage: deno task migrate <command> [options]

Set it up once, in your project's deno.json:
  "tasks": { "migrate": "deno run -A jsr:@manticore/cockroachdb/cli/migrate" }
  (-A may be narrowed to --allow-net --allow-env --allow-read --allow-write;
  only create writes files)

Commands:
  status                      every migration: applied, pending, modified or missing
  up [--to N]                 apply the pending migrations (up to version N)
  down [--to N | --steps N]   revert the last migration (the last N, or down to version N)
  create <name>               write migrations/V<next>__<name>.sql with a -- DOWN section
  history                     the applied migrations, oldest first
  verify                      check the applied files' checksums; exit 1 on a problem
  unlock                      remove the migration lock of a runner that died

Options:
  --url <url>             the database (default: $DATABASE_URL, then PG* variables)
  --dir <dir>             the migrations directory (default: migrations), relative to the
                          current directory, which deno task sets to the one of deno.json;
                          it must exist, except for create, which makes it; history and
                          unlock do not read it
  --table <name>          the tracking table (default: _migrations)
  --dry-run               up/down: print the plan and its SQL, change nothing
  --json                  print the result as JSON
  --allow-modified        up/down: run although an applied file changed
  --allow-out-of-order    up: apply pending versions below the current one
  --lock-timeout <ms>     wait at most this long for another runner's lock (default: 60000)
  -h, --help              show this text

status, history, verify and --dry-run write nothing to the database (a read-only role may
run them); the tracking tables are created when a migration is first applied.

Exit status: 0 success, 1 failed migration, check, missing directory or connection,
2 bad usage.`;

const COMMANDS = new Set(["status", "up", "down", "create", "history", "verify", "unlock"]);

class UsageError extends Error {}

/** Where the command line prints: `console` by default. */
export interface Output {
  /** Results and progress (stdout). */
  log(...data: unknown[]): void;
  /** Errors and usage after a usage error (stderr). */
  error(...data: unknown[]): void;
}

/** Prints a line whose `%c` parts are coloured, unless NO_COLOR is set. */
function paint(out: Output["log"], text: string, ...css: string[]): void {
  if (Deno.noColor) out(text.replaceAll("%c", ""));
  else out(text, ...css);
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function parseNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`Cannot use ${flag} "${value}": expected a whole number from 0`);
  }
  return Number(value);
}

interface Parsed {
  readonly command: string;
  readonly name: string;
  readonly url: string | undefined;
  readonly dir: string;
  readonly table: string | undefined;
  readonly to: number | undefined;
  readonly steps: number | undefined;
  readonly dryRun: boolean;
  readonly json: boolean;
  readonly allowModified: boolean;
  readonly allowOutOfOrder: boolean;
  readonly lockTimeout: number | undefined;
  readonly help: boolean;
}

function parse(args: readonly string[]): Parsed {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: "string" },
        dir: { type: "string" },
        table: { type: "string" },
        to: { type: "string" },
        steps: { type: "string" },
        "dry-run": { type: "boolean" },
        json: { type: "boolean" },
        "allow-modified": { type: "boolean" },
        "allow-out-of-order": { type: "boolean" },
        "lock-timeout": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const help = values.help === true;
  const [command = "", ...rest] = positionals;
  if (help) return { command, help } as Parsed;
  if (command === "") throw new UsageError("Cannot run: no command given");
  if (!COMMANDS.has(command)) throw new UsageError(`Cannot run "${command}": unknown command`);
  const to = parseNumber(values.to, "--to");
  const steps = parseNumber(values.steps, "--steps");
  const lockTimeout = parseNumber(values["lock-timeout"], "--lock-timeout");
  const only = (flag: string, set: boolean, commands: readonly string[]) => {
    if (set && !commands.includes(command)) {
      throw new UsageError(
        `Cannot use ${flag} with "${command}": it applies to ${commands.join(" and ")}`,
      );
    }
  };
  only("--to", to !== undefined, ["up", "down"]);
  only("--steps", steps !== undefined, ["down"]);
  only("--dry-run", values["dry-run"] === true, ["up", "down"]);
  only("--allow-modified", values["allow-modified"] === true, ["up", "down"]);
  only("--allow-out-of-order", values["allow-out-of-order"] === true, ["up"]);
  if (to !== undefined && steps !== undefined) {
    throw new UsageError("Cannot use --to with --steps: give one");
  }
  if (command === "create" && rest.length === 0) {
    throw new UsageError('Cannot run "create": no migration name given');
  }
  if (command !== "create" && rest.length > 0) {
    throw new UsageError(`Cannot run "${command}": unexpected argument "${rest[0]}"`);
  }
  if (values.dir === "") throw new UsageError("Cannot use --dir: it is empty");
  return {
    command,
    name: rest.join(" "),
    url: values.url,
    dir: values.dir ?? "migrations",
    table: values.table,
    to,
    steps,
    dryRun: values["dry-run"] === true,
    json: values.json === true,
    allowModified: values["allow-modified"] === true,
    allowOutOfOrder: values["allow-out-of-order"] === true,
    lockTimeout,
    help,
  };
}

function progress(out: Output, json: boolean): ((event: MigrationProgress) => void) | undefined {
  if (json) return undefined;
  return (event) => {
    if (event.type === "waiting") {
      paint(
        out.log,
        `%cWaiting%c for the migration lock held by "${event.owner}" (lease ends ${event.expiresAt.toISOString()})`,
        "color: yellow",
        "",
      );
    } else if (event.type === "start") {
      const verb = event.direction === "up" ? "Applying" : "Reverting";
      out.log(`${verb} V${event.version} ${event.name} (${event.path})`);
    } else {
      const verb = event.direction === "up" ? "applied" : "reverted";
      paint(
        out.log,
        `  %c✓ ${verb}%c V${event.version} ${event.name} in ${event.durationMs} ms`,
        "color: green",
        "",
      );
    }
  };
}

function printResult(out: Output, result: MigrateResult, elapsed: number): void {
  if (result.dryRun) {
    if (result.applied === 0) {
      out.log(`Dry run: nothing to do; at version ${result.fromVersion}.`);
      return;
    }
    const verb = result.direction === "up" ? "apply" : "revert";
    out.log(
      `Dry run: would ${verb} ${
        count(result.applied, "migration")
      } (version ${result.fromVersion} → ${result.toVersion}); nothing was changed.`,
    );
    for (const m of result.migrations) {
      out.log("");
      paint(
        out.log,
        `%c-- ${m.direction} V${m.version} ${m.name} (${m.path})%c`,
        "color: cyan",
        "",
      );
      out.log(m.sql ?? "");
    }
    return;
  }
  if (result.applied === 0) {
    paint(out.log, `%cNothing to do:%c at version ${result.fromVersion}.`, "color: green", "");
    return;
  }
  const verb = result.direction === "up" ? "Applied" : "Reverted";
  paint(
    out.log,
    `%c${verb} ${
      count(result.applied, "migration")
    }%c: version ${result.fromVersion} → ${result.toVersion} in ${Math.round(elapsed)} ms.`,
    "color: green",
    "",
  );
}

const STATE_COLOR: Readonly<Record<MigrationState, string>> = {
  applied: "color: green",
  pending: "color: yellow",
  modified: "color: red",
  missing: "color: red",
};

function printStatus(out: Output, status: readonly MigrationStatus[], dir: string): void {
  if (status.length === 0) {
    out.log(`No migrations in ${dir}, none applied.`);
    return;
  }
  const width = Math.max(...status.map((s) => String(s.version).length)) + 1;
  for (const s of status) {
    const notes: string[] = [];
    if (s.appliedAt) notes.push(`applied ${s.appliedAt.toISOString()} in ${s.durationMs} ms`);
    if (s.outOfOrder) notes.push("out of order");
    if (s.partial) {
      notes.push(
        `stopped after ${s.partial.statementsDone} of ${s.partial.statementsTotal} statements (${s.partial.direction})`,
      );
    }
    if (s.state === "missing") notes.push("file missing");
    paint(
      out.log,
      `%c${s.state.padEnd(8)}%c ${`V${s.version}`.padEnd(width)} ${s.name}${
        notes.length ? `  (${notes.join("; ")})` : ""
      }`,
      STATE_COLOR[s.state],
      "",
    );
  }
  const by = (state: string) => status.filter((s) => s.state === state).length;
  out.log(
    `${by("applied")} applied, ${by("pending")} pending, ${by("modified")} modified, ${
      by("missing")
    } missing.`,
  );
}

function printHistory(out: Output, history: readonly MigrationHistoryEntry[]): void {
  if (history.length === 0) {
    out.log("No migrations applied.");
    return;
  }
  for (const h of history) {
    out.log(`${h.appliedAt.toISOString()}  V${h.version} ${h.name}  ${h.durationMs} ms`);
  }
}

function printVerify(out: Output, report: VerifyResult): void {
  if (report.ok) {
    paint(out.log, "%cOK:%c every applied migration matches its file.", "color: green", "");
    return;
  }
  const list = (label: string, items: readonly MigrationStatus[], why: string) => {
    for (const s of items) {
      paint(out.log, `%c${label}%c V${s.version} ${s.name}: ${why}`, "color: red", "");
    }
  };
  list("modified", report.modified, "the file changed since it was applied (checksum differs)");
  list("missing", report.missing, "applied, but its file is gone");
  list("out of order", report.outOfOrder, "pending below the highest applied version");
  list("partial", report.partial, "a no-transaction run stopped part way");
}

function errorJson(error: unknown): Record<string, unknown> {
  const e = error as Partial<MigrationError>;
  const out: Record<string, unknown> = {
    name: e.name ?? "Error",
    message: e.message ?? String(error),
  };
  for (const key of ["code", "version", "path", "statement", "detail", "hint"] as const) {
    if (e[key] !== undefined) out[key] = e[key];
  }
  return out;
}

function printError(out: Output, failure: unknown, json: boolean): void {
  // Hints name the flags a user of the command line types, not the API's option names.
  const error = respell(failure, "cli");
  if (json) {
    out.log(JSON.stringify({ error: errorJson(error) }, null, 2));
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  paint(out.error, `%cerror%c: ${message}`, "color: red; font-weight: bold", "");
  if (error instanceof DatabaseError) {
    if (error.detail) out.error(`  detail: ${error.detail}`);
    if (error.hint) out.error(`  hint: ${error.hint}`);
  }
}

async function createOffline(dir: string, name: string, json: boolean, out: Output): Promise<void> {
  const stem = migrationFileStem(name);
  const entries = await readMigrationDir(dir) ?? [];
  const path = newMigrationPath(dir, stem, parseMigrationFiles(dir, entries), []);
  await writeMigrationFile(path, migrationFileText(TEMPLATE_UP, TEMPLATE_DOWN));
  printCreated(out, path, json);
}

const TEMPLATE_UP = "-- Write the migration here; each migration runs in one transaction.\n" +
  "-- Put -- migrate:no-transaction on the first line to run the statements one by one.";
const TEMPLATE_DOWN =
  "-- Write the SQL that reverts it here; without any, the migration cannot be reverted.";

function printCreated(out: Output, path: string, json: boolean): void {
  if (json) out.log(JSON.stringify({ path }, null, 2));
  else paint(out.log, `%cCreated%c ${path}`, "color: green", "");
}

/**
 * Runs the command line and answers the exit status (it does not exit).
 *
 * @example
 * ```ts
 * import { main } from "@manticore/cockroachdb/cli/migrate";
 *
 * const dir = await Deno.makeTempDir();
 * await main(["create", "add users", "--dir", dir]); // writes V1__add_users.sql, prints its path
 * const code = await main(["status", "--json", "--dir", dir]);
 * // prints [{ "version": 1, "name": "add_users", "state": "pending", … }]
 * console.log(code); // 0
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @param args The arguments after the script name.
 * @param out Where to print; the console by default.
 * @returns 0 on success, 1 on a failed migration, check or connection, 2 on bad usage.
 */
export async function main(args: readonly string[], out: Output = console): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    paint(out.error, `%cerror%c: ${error.message}`, "color: red; font-weight: bold", "");
    out.error("");
    out.error(USAGE);
    return 2;
  }
  if (parsed.help) {
    out.log(USAGE);
    return 0;
  }
  const p = parsed;
  const url = p.url ?? (Deno.env.get("DATABASE_URL") || undefined);
  if (p.command === "create" && url === undefined) {
    try {
      await createOffline(p.dir, p.name, p.json, out);
      return 0;
    } catch (error) {
      printError(out, error, p.json);
      return error instanceof TypeError ? 2 : 1;
    }
  }
  let db: AsyncDatabase | undefined;
  try {
    db = url === undefined
      ? new AsyncDatabase({ minConnections: 1 })
      : new AsyncDatabase(url, { minConnections: 1 });
    const m = new AsyncMigration(db, {
      migrationsDir: p.dir,
      ...(p.table === undefined ? {} : { tableName: p.table }),
      ...(p.lockTimeout === undefined ? {} : { lockTimeout: p.lockTimeout }),
    });
    const show = (value: unknown) => out.log(JSON.stringify(value, null, 2));
    const started = performance.now();
    switch (p.command) {
      case "status": {
        const status = await m.status();
        if (p.json) show(status);
        else printStatus(out, status, p.dir);
        return 0;
      }
      case "up":
      case "down": {
        const options = {
          dryRun: p.dryRun,
          allowModified: p.allowModified,
          onProgress: progress(out, p.json),
        };
        const result = p.command === "up"
          ? await m.migrate({
            ...options,
            allowOutOfOrder: p.allowOutOfOrder,
            ...(p.to === undefined ? {} : { targetVersion: p.to }),
          })
          : await m.rollback(
            p.to === undefined
              ? { ...options, count: p.steps ?? 1 }
              : { ...options, targetVersion: p.to },
          );
        if (p.json) show(result);
        else printResult(out, result, performance.now() - started);
        return 0;
      }
      case "create": {
        printCreated(
          out,
          await m.createMigration(p.name, TEMPLATE_UP, TEMPLATE_DOWN),
          p.json,
        );
        return 0;
      }
      case "history": {
        const history = await m.getMigrationHistory();
        if (p.json) show(history);
        else printHistory(out, history);
        return 0;
      }
      case "verify": {
        const report = await m.verify();
        if (p.json) show(report);
        else printVerify(out, report);
        return report.ok ? 0 : 1;
      }
      default: {
        const held = await m.unlock();
        if (p.json) show({ released: held });
        else out.log(held ? "Released the migration lock." : "No migration lock was held.");
        return 0;
      }
    }
  } catch (error) {
    printError(out, error, p.json);
    // A bad name or table name is the caller's mistake, not the database's.
    const usage = error instanceof TypeError || error instanceof RangeError ||
      (error instanceof ValidationError);
    return usage ? 2 : 1;
  } finally {
    await db?.close();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
