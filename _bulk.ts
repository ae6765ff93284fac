// The batch helpers' work: rows inserted by COPY when none is returned (json columns encoded
// as JSON first), else in chunks of multi-row statements in one transaction; upserts likewise,
// by the table's primary key or the given columns; updates by key, one statement per row.
import { checkRecords, helperCall } from "./_checks.ts";
import type { BatchInsertOptions, BatchUpdateOptions, UpsertOptions } from "./_options.ts";
import { jsonColumns, jsonEncoded, type Runner, runStatements, upsertPlan } from "./_runner.ts";
import {
  batchColumns,
  buildBatchInsert,
  buildBatchUpdate,
  buildCopyFrom,
  encodeCopyText,
  type Row,
  upsertVerb,
} from "./_sql.ts";

/** `batchInsert()`: the rows inserted, or their number with `returning: false`. */
export async function insertMany<T = Row>(
  runner: Runner,
  table: string,
  records: readonly Row[],
  options: BatchInsertOptions | undefined,
): Promise<T[] | number> {
  checkRecords(records);
  const returning = options?.returning ?? true;
  if (records.length === 0) return returning ? [] : 0;
  if (!returning && options?.chunkSize === undefined) {
    const columns = batchColumns(records);
    // COPY reads a json/jsonb column's text as JSON: encode those values as JSON first, as
    // the INSERT path does (a string "123" must stay a string, true must not become "t").
    const json = new Set(await jsonColumns(runner, table));
    const data = encodeCopyText(
      json.size === 0 || !columns.some((c) => json.has(c))
        ? records
        : records.map((r) => jsonEncoded(r, json)),
      columns,
    );
    if (data !== null) {
      await runner.copyIn(buildCopyFrom(table, columns), data, helperCall(options, "COPY", table));
      return records.length;
    }
  }
  const statements = buildBatchInsert(table, records, {
    returning,
    chunkSize: options?.chunkSize,
  });
  const results = await runStatements(runner, statements, helperCall(options, "INSERT", table));
  return returning
    ? results.flatMap((r) => r.rows) as T[]
    : results.reduce((n, r) => n + r.count, 0);
}

/** `batchUpsert()`: the rows inserted or updated, in input order. */
export async function upsertMany<T = Row>(
  runner: Runner,
  table: string,
  records: readonly Row[],
  options: UpsertOptions | undefined,
): Promise<T[]> {
  checkRecords(records);
  if (records.length === 0) return [];
  const upsert = await upsertPlan(runner, table, options);
  const statements = buildBatchInsert(table, records, {
    returning: true,
    chunkSize: options?.chunkSize,
    upsert,
  });
  return (await runStatements(runner, statements, helperCall(options, upsertVerb(upsert), table)))
    .flatMap((r) => r.rows) as T[];
}

/** `batchUpdate()`: the rows updated, in input order. */
export async function updateMany<T = Row>(
  runner: Runner,
  table: string,
  records: readonly Row[],
  options: BatchUpdateOptions | undefined,
): Promise<T[]> {
  checkRecords(records);
  if (records.length === 0) return [];
  const statements = buildBatchUpdate(table, records, options?.keyColumn ?? "id");
  return (await runStatements(runner, statements, helperCall(options, "UPDATE", table)))
    .flatMap((r) => r.rows) as T[];
}
