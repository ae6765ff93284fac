// `batch()` on the pool: the statements as one transaction in one write (BEGIN, the statements,
// COMMIT, one Sync), sent again whole on a serialization failure and when its connection was
// lost before anything of it could have committed (docs/round-trips.md, "batch"). The sync
// `Database` forwards its `batch()` to its worker, which runs this.
import { answerOf, PipelineRefused, type QueryResult } from "./_driver.ts";
import { errorCode, isConnectionLoss, isRetryable } from "./_errors.ts";
import { BatchFailure, type BatchMember } from "./_link.ts";
import type { Observer } from "./_observe.ts";
import type { Pool } from "./_pool.ts";
import { buildBegin, nextRetry, type TransactionSettings } from "./_retry.ts";
import { sleep } from "./_steps.ts";
import { callSignal } from "./_checks.ts";
import { aborted } from "./_driver.ts";
import { AmbiguousCommitError, DatabaseError, TransactionRetryError } from "./errors.ts";
import type { RetryInfo } from "./_options.ts";

/**
 * Runs the statements of a batch as one transaction on a connection of `pool`. Resolves with
 * each statement's result; rejects with a `BatchFailure` when one of them failed (after the
 * retries a serialization failure gets), with `TransactionRetryError` when retries ran out,
 * `AmbiguousCommitError` when the connection was lost and the COMMIT may have run.
 */
export async function poolBatch(
  pool: Pool,
  members: readonly BatchMember[],
  settings: TransactionSettings,
  now: () => number = () => performance.now(),
): Promise<QueryResult[]> {
  const signal = callSignal(settings);
  if (signal?.aborted) throw aborted(signal, false);
  // No retry savepoint: the batch is sent again whole, and CockroachDB can retry it itself.
  const [begin] = buildBegin(settings, await pool.dialect(settings.asOfSystemTime !== undefined));
  const observer = pool.observer;
  const started = now();
  const stop = (): void => {
    if (signal?.aborted) throw aborted(signal, true);
  };
  for (let attempt = 1;; attempt++) {
    stop();
    const failure = await attemptBatch(pool, observer, members, begin, attempt > 1, signal);
    if (!("index" in failure)) return failure.results;
    const { error } = failure;
    if (!failure.again && !isRetryable(error)) throw new BatchFailure(failure.index, error);
    const code = errorCode(error);
    const delayMs = nextRetry(settings, attempt, now() - started, error as Error, {
      action: "run batch",
      failing: code ?? "a lost connection",
      ...(code === undefined ? {} : { code }),
    });
    if (delayMs instanceof TransactionRetryError) throw delayMs;
    observer.countRetry(code ?? "UNKNOWN");
    settings.onRetry?.({ attempt, delayMs, error: error as Error } satisfies RetryInfo);
    if (delayMs > 0) await sleep(delayMs, signal);
  }
}

/** One attempt: its results, or how it failed and whether it may be sent again. */
type Attempt =
  | { readonly results: QueryResult[] }
  | { readonly index: number; readonly error: unknown; readonly again: boolean };

async function attemptBatch(
  pool: Pool,
  observer: Observer,
  members: readonly BatchMember[],
  begin: string,
  retry: boolean,
  signal: AbortSignal | undefined,
): Promise<Attempt> {
  const session = await pool.reserve();
  const info = retry ? { retry } : undefined;
  try {
    // The statements the pool has not seen are described first, together (one round trip).
    const refused = await session.describe(members);
    if (refused !== undefined) {
      // Nothing ran: a connection lost meanwhile is tried again.
      return { ...refused, again: isConnectionLoss(refused.error) };
    }
    const items = [
      { text: begin, prepare: !begin.includes("AS OF SYSTEM TIME") },
      ...members.map((m) => ({
        text: m.text,
        params: m.params,
        ...(signal === undefined ? {} : { options: { signal } }),
      })),
      { text: "COMMIT", prepare: true },
    ];
    let results: Promise<QueryResult>[];
    try {
      results = session.pipeline(items);
    } catch (error) {
      // A value refused before anything was sent (describe() checks them first).
      if (!(error instanceof PipelineRefused)) throw error;
      return { index: error.index - 1, error: error.error, again: false };
    }
    const settled = await Promise.allSettled(
      items.map((item, i) =>
        observer.statement(
          item.text,
          members[i - 1]?.params ?? [],
          info,
          () => answerOf(results, i),
        )
      ),
    );
    const first = settled.findIndex((r) => r.status === "rejected");
    if (first < 0) {
      const committed = (settled[settled.length - 1] as PromiseFulfilledResult<QueryResult>).value;
      if (committed.command === "COMMIT") {
        return {
          results: settled.slice(1, -1).map((r) =>
            (r as PromiseFulfilledResult<QueryResult>).value
          ),
        };
      }
      return {
        index: -1,
        error: new DatabaseError("Cannot run batch: the server rolled it back", {
          code: "TRANSACTION_ROLLED_BACK",
        }),
        again: false,
      };
    }
    const error = (settled[first] as PromiseRejectedResult).reason;
    // The index of the statement; -1 for BEGIN, the batch's length for COMMIT.
    const index = first - 1;
    if (isConnectionLoss(error)) {
      // The write held COMMIT: unless the driver saw that it never ran (docs/retry-safety.md),
      // the batch may have committed.
      if (!session.unsent) {
        throw new AmbiguousCommitError(
          `Cannot tell whether the batch committed: ${(error as Error).message}`,
          { cause: error },
        );
      }
      return { index, error, again: true };
    }
    // Undone at once (the connection then goes back to the pool): one more round trip, on the
    // failure path only.
    if (session.status === "T" || session.status === "E") {
      await observer.statement(
        "ROLLBACK",
        [],
        info,
        () => session.query("ROLLBACK", [], { simple: true }),
      ).catch(() => {});
    }
    return { index: index < members.length ? index : -1, error, again: false };
  } finally {
    session.release();
  }
}
