// The runner's operations are generators that yield effects (a statement, a transaction, a
// sleep, reading or writing files, the lease heartbeat) and receive their answers: the async
// runner performs them with awaits and the sync runner with blocking calls, so the locking,
// ordering, bookkeeping and error reporting are written once (as `_retry.ts` does for
// transactions). This module defines the effects and the small programs that yield them. Pure.
import type { Row } from "../_sql.ts";
import { DatabaseError } from "../errors.ts";
import type { MigrationDirection } from "./types.ts";

/** A migration as its span names it. */
export interface MigrationSpanInfo {
  readonly version: number;
  readonly name: string;
  readonly direction: MigrationDirection;
}

/** Something a runner's driver performs and answers. */
export type Effect =
  /** Run one statement (on the database, or on the transaction of the body running); answer its rows. */
  | { readonly kind: "query"; readonly text: string; readonly params?: readonly unknown[] }
  /** Run `body()` as the callback of `db.transaction()` (it may run more than once); answer its value. */
  | { readonly kind: "transaction"; readonly body: () => Program<unknown> }
  /**
   * Run `body()` as the work of one migration applied or reverted: its statements and
   * transactions are traced as the children of the migration's span; answer its value.
   */
  | {
    readonly kind: "migration";
    readonly info: MigrationSpanInfo;
    readonly body: () => Program<unknown>;
  }
  /** Wait; answer nothing. */
  | { readonly kind: "sleep"; readonly ms: number }
  /**
   * Read the migrations directory (`readMigrationDir` of `disk.ts`); answer `FileEntry[]`, or
   * `null` when it does not exist.
   */
  | { readonly kind: "read"; readonly dir: string }
  /**
   * Create a file (and its directory) that must not exist yet (`writeMigrationFile` of
   * `disk.ts`); answer nothing.
   */
  | { readonly kind: "write"; readonly path: string; readonly text: string }
  /**
   * Start (with `text`, `params`, `intervalMs`) or stop (without) renewing the lease in the
   * background, where the driver can; answer nothing.
   */
  | {
    readonly kind: "heartbeat";
    readonly text?: string;
    readonly params?: readonly unknown[];
    readonly intervalMs?: number;
  };

/** A runner operation: yields effects, returns its result. */
export type Program<T> = Generator<Effect, T, unknown>;

/** A row as the database answers it. */
export type { Row } from "../_sql.ts";

/** Runs one statement; answers its rows. */
export function* query(text: string, params?: readonly unknown[]): Program<Row[]> {
  return (yield params === undefined
    ? { kind: "query", text }
    : { kind: "query", text, params }) as Row[];
}

/** Runs `body()` as a transaction's callback; answers its value. */
export function* transaction<T>(body: () => Program<T>): Program<T> {
  return (yield { kind: "transaction", body }) as T;
}

/** Runs `body()` as the work of one migration (its span); answers its value. */
export function* migration<T>(info: MigrationSpanInfo, body: () => Program<T>): Program<T> {
  return (yield { kind: "migration", info, body }) as T;
}

/** Waits `ms` milliseconds. */
export function* sleep(ms: number): Program<void> {
  yield { kind: "sleep", ms };
}

/** The SQLSTATE (or UPPER_SNAKE code) of a `DatabaseError`, else `undefined`. */
export function codeOf(error: unknown): string | undefined {
  return error instanceof DatabaseError ? error.code : undefined;
}
