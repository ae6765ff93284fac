// `stream()`: a query's rows through a SQL cursor, `batchSize` rows per round trip, in a
// transaction of its own on a connection of the pool (or in the caller's transaction); the
// cursor is closed, and the connection given back, however the iteration ends.
import { callSignal, checkSql } from "./_checks.ts";
import { aborted } from "./_driver.ts";
import type { StreamOptions } from "./_options.ts";
import type { Runner } from "./_runner.ts";
import { quoteIdentifier, type Row } from "./_sql.ts";
import { ValidationError } from "./errors.ts";

let cursorCounter = 0;
const SIMPLE = Object.freeze({ simple: true });

/** A stream's `batchSize` (default 1,000), refused unless a positive integer. */
export function streamBatchSize(batchSize: unknown): number {
  const size = batchSize ?? 1000;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 1) {
    throw new ValidationError(
      `Cannot stream: batchSize ${String(size)} is not a positive integer`,
      {
        field: "batchSize",
      },
    );
  }
  return size;
}

/** The rows of `sql` through a cursor on `runner` (see `AsyncQueryable.stream()`). */
export async function* streamRows<T = Row>(
  runner: Runner,
  sql: string,
  params: readonly unknown[] | undefined,
  options: StreamOptions | undefined,
): AsyncGenerator<T, void, undefined> {
  checkSql(sql, params);
  const batchSize = streamBatchSize(options?.batchSize);
  const signal = callSignal(options);
  if (signal?.aborted) throw aborted(signal, false);
  const { session, own, release } = await runner.cursorSession();
  const cursor = quoteIdentifier(`manticore_cursor_${++cursorCounter}`);
  const simple = signal === undefined ? SIMPLE : { simple: true, signal };
  let open = false;
  let failed = false;
  try {
    if (own) await session.query("BEGIN", [], simple);
    open = own;
    await session.query(
      `DECLARE ${cursor} NO SCROLL CURSOR FOR ${sql}`,
      params ?? [],
      { prepare: false, ...(signal === undefined ? {} : { signal }) },
    );
    const fetch = `FETCH ${batchSize} FROM ${cursor}`;
    for (;;) {
      const { rows } = await session.query(fetch, [], simple);
      for (const row of rows) yield row as T;
      if (rows.length < batchSize) break;
    }
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    try {
      if (own) {
        if (open) await session.query(failed ? "ROLLBACK" : "COMMIT", [], SIMPLE);
      } else if (!failed) {
        await session.query(`CLOSE ${cursor}`, [], SIMPLE);
      }
    } finally {
      release();
    }
  }
}
