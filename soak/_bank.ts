// The bank workload shared by reliability_test.ts, faults_test.ts and the soak: accounts, a
// ledger, and transfers through transaction(). Every transfer has a client-made id that the
// ledger records, so an audit can prove, per transfer, that it was applied exactly once when it
// committed, never when it failed, and at most once when its commit was ambiguous.
import type { AsyncDatabase, AsyncTransaction } from "../async_database.ts";
import type { Database, Transaction } from "../database.ts";
import { AmbiguousCommitError, DatabaseError } from "../errors.ts";

/** The two tables of one bank. */
export interface Bank {
  readonly accounts: string;
  readonly ledger: string;
  readonly accountCount: number;
  readonly initialBalance: number;
}

/** How one transfer ended. */
export type Outcome =
  | "committed"
  /** The callback refused it (not enough money); the transaction rolled back. */
  | "declined"
  /** AmbiguousCommitError: the audit decides whether it applied (at most once). */
  | "ambiguous"
  /** Any other typed error: it must not have applied. */
  | "failed";

/** One transfer and its fate. */
export interface Transfer {
  readonly id: string;
  readonly from: number;
  readonly to: number;
  readonly amount: number;
  outcome?: Outcome;
  /** The error's class and code, for failed and ambiguous transfers. */
  error?: string;
  /** How many times the callback ran. */
  runs: number;
}

/** What a run of transfers did. */
export interface WorkloadResult {
  readonly transfers: Transfer[];
  /** Retries reported through onRetry, by the code of the error that caused them. */
  readonly retries: Record<string, number>;
  /** Errors that were not `DatabaseError`s (each is a bug). */
  readonly untyped: unknown[];
}

/** The audit of a bank against the transfers made on it. */
export interface Audit {
  readonly total: bigint;
  readonly expectedTotal: bigint;
  readonly ledgerRows: number;
  /** Transfer ids recorded more than once. */
  readonly duplicates: string[];
  /** Committed transfers missing from the ledger. */
  readonly lost: string[];
  /** Failed or declined transfers found in the ledger. */
  readonly phantom: string[];
  /** Accounts whose balance differs from initial + ledger. */
  readonly unbalanced: number[];
  /** Negative balances (the CHECK constraint should make this impossible). */
  readonly negative: number[];
  /** Ambiguous transfers that turned out applied. */
  readonly ambiguousApplied: number;
}

/** A refusal raised inside the callback: not enough money. */
export class Declined extends Error {
  constructor() {
    super("Cannot transfer: insufficient funds");
    this.name = "Declined";
  }
}

/** Creates and fills the two tables of a bank. */
export async function createBank(
  db: AsyncDatabase,
  prefix: string,
  accountCount: number,
  initialBalance: number,
): Promise<Bank> {
  const bank: Bank = {
    accounts: `${prefix}_accounts`,
    ledger: `${prefix}_ledger`,
    accountCount,
    initialBalance,
  };
  await db.createTable(bank.accounts, {
    id: "INT4 PRIMARY KEY",
    balance: "INT8 NOT NULL CHECK (balance >= 0)",
  });
  // No unique key on transfer_id: a double apply must show up as a duplicate, not be refused.
  await db.createTable(bank.ledger, {
    transfer_id: "UUID NOT NULL",
    from_id: "INT4 NOT NULL",
    to_id: "INT4 NOT NULL",
    amount: "INT8 NOT NULL",
  });
  await db.batchInsert(
    bank.accounts,
    Array.from({ length: accountCount }, (_, i) => ({ id: i + 1, balance: initialBalance })),
  );
  return bank;
}

/** Drops the tables of a bank. */
export async function dropBank(db: AsyncDatabase, bank: Bank): Promise<void> {
  await db.dropTable(bank.ledger);
  await db.dropTable(bank.accounts);
}

/** A deterministic PRNG (mulberry32), so that a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Plans `count` transfers between distinct accounts. */
export function planTransfers(
  bank: Bank,
  count: number,
  random: () => number,
  maxAmount = 50,
): Transfer[] {
  return Array.from({ length: count }, () => {
    const from = 1 + Math.floor(random() * bank.accountCount);
    const to = 1 + (from + Math.floor(random() * (bank.accountCount - 1))) % bank.accountCount;
    return {
      id: crypto.randomUUID(),
      from,
      to,
      amount: 1 + Math.floor(random() * maxAmount),
      runs: 0,
    };
  });
}

/** The body of one transfer: read, check, move the money, write the ledger row. */
export async function transferBody(
  tx: AsyncTransaction,
  bank: Bank,
  transfer: Transfer,
): Promise<void> {
  const from = await tx.queryOne<{ balance: bigint }>(
    `SELECT balance FROM "${bank.accounts}" WHERE id = $1`,
    [transfer.from],
  );
  if (from === null || from.balance < BigInt(transfer.amount)) throw new Declined();
  await tx.execute(`UPDATE "${bank.accounts}" SET balance = balance - $1 WHERE id = $2`, [
    transfer.amount,
    transfer.from,
  ]);
  await tx.execute(`UPDATE "${bank.accounts}" SET balance = balance + $1 WHERE id = $2`, [
    transfer.amount,
    transfer.to,
  ]);
  await tx.insert(bank.ledger, {
    transfer_id: transfer.id,
    from_id: transfer.from,
    to_id: transfer.to,
    amount: transfer.amount,
  });
}

/** Options of {@linkcode runTransfers}. */
export interface RunOptions {
  /** Concurrent tasks. */
  readonly workers: number;
  /** Stop starting new transfers after this time (ms since the start). */
  readonly deadline?: number;
  /** Called after each transfer, e.g. to inject a fault after the n-th. */
  readonly onSettled?: (done: number) => void | Promise<void>;
  /** Retry settings for each transaction. */
  readonly maxRetries?: number;
}

/** Runs the transfers through `db.transaction()` with `workers` concurrent tasks. */
export async function runTransfers(
  db: AsyncDatabase,
  bank: Bank,
  transfers: Transfer[],
  options: RunOptions,
): Promise<WorkloadResult> {
  const retries: Record<string, number> = {};
  const untyped: unknown[] = [];
  const started = performance.now();
  let next = 0;
  let done = 0;
  async function worker(): Promise<void> {
    for (;;) {
      if (options.deadline !== undefined && performance.now() - started > options.deadline) return;
      const transfer = transfers[next++];
      if (transfer === undefined) return;
      try {
        await db.transaction(async (tx) => {
          transfer.runs++;
          await transferBody(tx, bank, transfer);
        }, {
          maxRetries: options.maxRetries ?? 30,
          maxBackoff: 200,
          onRetry: ({ error }) => {
            const code = (error as DatabaseError).code ?? error.name;
            retries[code] = (retries[code] ?? 0) + 1;
          },
        });
        transfer.outcome = "committed";
      } catch (error) {
        classify(transfer, error, untyped);
      }
      await options.onSettled?.(++done);
    }
  }
  await Promise.all(Array.from({ length: options.workers }, () => worker()));
  return { transfers: transfers.filter((t) => t.outcome !== undefined), retries, untyped };
}

/** Records how a transfer failed; anything but a package error is kept as untyped. */
export function classify(transfer: Transfer, error: unknown, untyped: unknown[]): void {
  if (error instanceof Declined) {
    transfer.outcome = "declined";
  } else if (error instanceof AmbiguousCommitError) {
    transfer.outcome = "ambiguous";
    transfer.error = `${error.name} ${error.code}`;
  } else if (error instanceof DatabaseError) {
    transfer.outcome = "failed";
    transfer.error = `${error.name} ${error.code}`;
  } else {
    transfer.outcome = "failed";
    transfer.error = String(error);
    untyped.push(error);
  }
}

/** Checks the bank against the transfers; see {@linkcode Audit}. */
export async function auditBank(
  db: AsyncDatabase,
  bank: Bank,
  transfers: readonly Transfer[],
): Promise<Audit> {
  const accounts = await db.execute<{ id: number; balance: bigint }>(
    `SELECT id, balance FROM "${bank.accounts}" ORDER BY id`,
  );
  const ledger = await db.execute<
    { transfer_id: string; from_id: number; to_id: number; amount: bigint }
  >(
    `SELECT transfer_id, from_id, to_id, amount FROM "${bank.ledger}"`,
  );
  const seen = new Map<string, number>();
  const expected = new Map<number, bigint>();
  for (let id = 1; id <= bank.accountCount; id++) expected.set(id, BigInt(bank.initialBalance));
  for (const row of ledger) {
    seen.set(row.transfer_id, (seen.get(row.transfer_id) ?? 0) + 1);
    expected.set(row.from_id, (expected.get(row.from_id) ?? 0n) - row.amount);
    expected.set(row.to_id, (expected.get(row.to_id) ?? 0n) + row.amount);
  }
  const lost: string[] = [];
  const phantom: string[] = [];
  let ambiguousApplied = 0;
  for (const t of transfers) {
    const n = seen.get(t.id) ?? 0;
    if (t.outcome === "committed" && n === 0) lost.push(t.id);
    if ((t.outcome === "failed" || t.outcome === "declined") && n > 0) phantom.push(t.id);
    if (t.outcome === "ambiguous" && n > 0) ambiguousApplied++;
  }
  return {
    total: accounts.reduce((sum, a) => sum + a.balance, 0n),
    expectedTotal: BigInt(bank.accountCount) * BigInt(bank.initialBalance),
    ledgerRows: ledger.length,
    duplicates: [...seen].filter(([, n]) => n > 1).map(([id]) => id),
    lost,
    phantom,
    unbalanced: accounts.filter((a) => a.balance !== expected.get(a.id)).map((a) => a.id),
    negative: accounts.filter((a) => a.balance < 0n).map((a) => a.id),
    ambiguousApplied,
  };
}

/** Counts transfers by outcome. */
export function countOutcomes(transfers: readonly Transfer[]): Record<Outcome, number> {
  const counts: Record<Outcome, number> = { committed: 0, declined: 0, ambiguous: 0, failed: 0 };
  for (const t of transfers) if (t.outcome) counts[t.outcome]++;
  return counts;
}

/** Counts failed transfers by error. */
export function countErrors(transfers: readonly Transfer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of transfers) if (t.error) counts[t.error] = (counts[t.error] ?? 0) + 1;
  return counts;
}

/** The sync twin of {@linkcode transferBody}, for `Database.transaction()`. */
export function transferBodySync(
  tx: Transaction,
  bank: Bank,
  transfer: Transfer,
  /** Called between the debit and the credit (a test's fault goes there). */
  midway?: () => void,
): void {
  const from = tx.queryOne<{ balance: bigint }>(
    `SELECT balance FROM "${bank.accounts}" WHERE id = $1`,
    [transfer.from],
  );
  if (from === null || from.balance < BigInt(transfer.amount)) throw new Declined();
  tx.execute(`UPDATE "${bank.accounts}" SET balance = balance - $1 WHERE id = $2`, [
    transfer.amount,
    transfer.from,
  ]);
  midway?.();
  tx.execute(`UPDATE "${bank.accounts}" SET balance = balance + $1 WHERE id = $2`, [
    transfer.amount,
    transfer.to,
  ]);
  tx.insert(bank.ledger, {
    transfer_id: transfer.id,
    from_id: transfer.from,
    to_id: transfer.to,
    amount: transfer.amount,
  });
}

/** Runs transfers one after another through the sync `Database.transaction()`. */
export function runTransfersSync(
  db: Database,
  bank: Bank,
  transfers: Transfer[],
  deadline?: number,
  progress?: Int32Array,
): WorkloadResult {
  const retries: Record<string, number> = {};
  const untyped: unknown[] = [];
  const started = performance.now();
  for (const transfer of transfers) {
    if (deadline !== undefined && performance.now() - started > deadline) break;
    try {
      db.transaction((tx) => {
        transfer.runs++;
        transferBodySync(tx, bank, transfer);
      }, {
        maxRetries: 30,
        maxBackoff: 200,
        onRetry: ({ error }) => {
          const code = (error as DatabaseError).code ?? error.name;
          retries[code] = (retries[code] ?? 0) + 1;
        },
      });
      transfer.outcome = "committed";
    } catch (error) {
      classify(transfer, error, untyped);
    }
    if (progress) Atomics.add(progress, 0, 1);
  }
  return { transfers: transfers.filter((t) => t.outcome !== undefined), retries, untyped };
}

/**
 * What the main thread sends a sync bank worker (`_bank_sync_worker.ts`): first `start` (the
 * worker connects its `Database` and answers `ready`), then `go` (it runs its transfers and
 * answers `done`).
 */
export type SyncWorkerRequest =
  | {
    readonly kind: "start";
    readonly url: string;
    readonly bank: Bank;
    readonly transfers: Transfer[];
    readonly deadline?: number;
    /** A shared counter of settled transfers, for progress reports. */
    readonly progress?: Int32Array;
  }
  | { readonly kind: "go" };

/** What a sync bank worker answers. */
export type SyncWorkerAnswer =
  /** Its `Database` is connected (the constructor connects). */
  | { readonly kind: "ready" }
  | {
    readonly kind: "done";
    readonly transfers: Transfer[];
    readonly retries: Record<string, number>;
    /** Non-package errors, as text. */
    readonly untyped: string[];
  };

type WorkerResult = Extract<SyncWorkerAnswer, { kind: "done" }>;

/** One sync bank worker: `ready` once it connected, `finished` with its result. */
interface BankThread {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  readonly finished: Promise<WorkerResult>;
}

function startThread(request: SyncWorkerRequest): BankThread {
  const worker = new Worker(new URL("./_bank_sync_worker.ts", import.meta.url), {
    type: "module",
  });
  const ready = Promise.withResolvers<void>();
  const finished = Promise.withResolvers<WorkerResult>();
  // Awaited only once every thread is ready: a failure before then must not go unhandled.
  finished.promise.catch(() => {});
  let connected = false;
  worker.onmessage = (event: MessageEvent<SyncWorkerAnswer>) => {
    const answer = event.data;
    if (answer.kind === "ready") {
      connected = true;
      ready.resolve();
    } else {
      finished.resolve(answer);
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    const error = new Error(`The bank worker failed: ${event.message}`);
    if (connected) finished.reject(error);
    else ready.reject(error);
  };
  worker.postMessage(request);
  return { worker, ready: ready.promise, finished: finished.promise };
}

/**
 * Runs transfers through the sync API from `threads` Workers, each with its own `Database`
 * (the sync API serves one thread per `Database`): contention between threads, as in a
 * multi-threaded program. No transfer starts before every thread has connected, so `progress`
 * counts from the moment all of them run: a fault injected after N settled transfers finds
 * every thread past its `new Database()`, however slowly one of them started.
 */
export async function runTransfersInThreads(
  url: string,
  bank: Bank,
  transfers: Transfer[],
  threads: number,
  deadline?: number,
  progress?: Int32Array,
): Promise<WorkloadResult> {
  const slices = Array.from(
    { length: threads },
    (_, i) => transfers.filter((_, j) => j % threads === i),
  );
  const started = slices.map((slice) =>
    startThread({ kind: "start", url, bank, transfers: slice, deadline, progress })
  );
  let answers: WorkerResult[];
  try {
    await Promise.all(started.map((thread) => thread.ready));
    for (const thread of started) {
      thread.worker.postMessage({ kind: "go" } satisfies SyncWorkerRequest);
    }
    answers = await Promise.all(started.map((thread) => thread.finished));
  } finally {
    for (const thread of started) thread.worker.terminate();
  }
  const retries: Record<string, number> = {};
  for (const answer of answers) {
    for (const [code, n] of Object.entries(answer.retries)) {
      retries[code] = (retries[code] ?? 0) + n;
    }
  }
  // The workers answer copies: bring the outcomes back onto the caller's objects.
  const byId = new Map(transfers.map((t) => [t.id, t]));
  const done: Transfer[] = [];
  for (const answer of answers) {
    for (const copy of answer.transfers) {
      const original = byId.get(copy.id)!;
      original.outcome = copy.outcome;
      original.error = copy.error;
      original.runs = copy.runs;
      done.push(original);
    }
  }
  return { transfers: done, retries, untyped: answers.flatMap((a) => a.untyped) };
}
