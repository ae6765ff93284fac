// The options of a migration runner, checked and resolved once into a `RunnerConfig`: the
// directory, the quoted table names, the lock timings — and what the programs take from the
// world, injected here so that every other module of the engine stays pure: the monotonic
// clock, the random source of the lock wait's jitter, this runner's id (host name, pid and a
// random part), the numbering of its runs, and the current directory (to name a missing
// migrations directory). The defaults read them from Deno; tests pass their own.
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { quoteTableName } from "../_sql.ts";
import { ValidationError } from "../errors.ts";
import type { MigrationOptions } from "./types.ts";

/** What the programs take from the world besides their effects. */
export interface RunnerEnvironment {
  /** Milliseconds on a monotonic clock: durations, lease renewals, the lock wait. */
  readonly now: () => number;
  /** A number in [0, 1): the jitter of the lock wait. */
  readonly random: () => number;
  /** This runner's id; each of its runs holds the lock as `<owner>/<n>`. */
  readonly owner: string;
  /** The `n` of this runner's next run: 1, 2, … */
  readonly nextRun: () => number;
  /**
   * A path made absolute against the current directory, for error messages (the path as
   * given when the current directory cannot be read).
   */
  readonly resolvePath: (path: string) => string;
}

/** The runner's settings, resolved and checked once. */
export interface RunnerConfig extends RunnerEnvironment {
  /** The migrations directory as a path (a `file:` URL converted), relative or absolute. */
  readonly dir: string;
  /** The tracking table, as given. */
  readonly tableName: string;
  /** The tracking table, quoted. */
  readonly table: string;
  /** The lock table, as given. */
  readonly lockTableName: string;
  /** The lock table, quoted. */
  readonly lockTable: string;
  /** The progress table of no-transaction migrations, quoted. */
  readonly progressTable: string;
  /** Milliseconds to wait for another runner's lock. */
  readonly lockTimeout: number;
  /** Milliseconds a lease lasts without renewal. */
  readonly leaseDuration: number;
}

function checkMilliseconds(value: unknown, what: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(`Cannot use ${what} ${String(value)}: expected milliseconds from ${min}`);
  }
  return value;
}

function resolvePath(path: string): string {
  try {
    return resolve(path);
  } catch {
    // Without read access to the current directory, the path as given is all there is.
    return path;
  }
}

function hostName(): string {
  let host = "unknown";
  try {
    // Asked only when already allowed: a library must not raise a permission prompt for this.
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      host = Deno.hostname();
    }
  } catch {
    // Without --allow-sys the host name is not needed: the pid and random part identify us.
  }
  return host;
}

/** The environment of a runner on this process: its clock, `Math.random`, its own id. */
export function defaultEnvironment(): RunnerEnvironment {
  let runs = 0;
  return {
    now: () => performance.now(),
    random: Math.random,
    owner: `${hostName()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`,
    // Counted per runner: the random part of `owner` already tells two runners apart.
    nextRun: () => ++runs,
    resolvePath,
  };
}

function directoryPath(dir: unknown): string {
  if (dir instanceof URL) {
    if (dir.protocol !== "file:") {
      throw new ValidationError(
        `Cannot use migrationsDir "${dir.href}": only a file: URL names a directory`,
        { field: "migrationsDir" },
      );
    }
    try {
      return fileURLToPath(dir);
    } catch (error) {
      throw new ValidationError(
        `Cannot use migrationsDir "${dir.href}": ${(error as Error).message}`,
        { field: "migrationsDir", cause: error },
      );
    }
  }
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(
      "Cannot create migration runner: migrationsDir must be a non-empty string or a file: URL",
    );
  }
  return dir;
}

/**
 * Checks the options of a runner and resolves the table names; `environment` replaces parts of
 * {@linkcode defaultEnvironment} (tests pass a clock of their own).
 */
export function resolveRunnerConfig(
  options: MigrationOptions | undefined,
  environment: Partial<RunnerEnvironment> = {},
): RunnerConfig {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError("Cannot create migration runner: options must be an object");
  }
  const dir = directoryPath(options?.migrationsDir ?? "migrations");
  const tableName = options?.tableName ?? "_migrations";
  const lockTableName = options?.lockTableName ?? `${tableName}_lock`;
  const progressName = `${tableName}_progress`;
  return Object.freeze({
    dir,
    tableName,
    table: quoteTableName(tableName, "tableName"),
    lockTableName,
    lockTable: quoteTableName(lockTableName, "lockTableName"),
    progressTable: quoteTableName(progressName, "tableName"),
    lockTimeout: checkMilliseconds(options?.lockTimeout, "lockTimeout", 60_000, 0),
    leaseDuration: checkMilliseconds(options?.leaseDuration, "leaseDuration", 30_000, 100),
    ...defaultEnvironment(),
    ...environment,
  });
}
