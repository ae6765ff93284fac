/**
 * Internal, pure SQL text builders shared by every caller: `AsyncDatabase`, its transaction
 * handle, the sync `Database` (through its worker) and the tables. This module is their index;
 * each job is a module of `_sql/`:
 *
 * | module | job |
 * | --- | --- |
 * | `types.ts` | the shapes: `Row`, `Statement`, `Dialect`, `Where`, `OrderBy`, `SelectOptions` |
 * | `identifiers.ts` | validating and quoting names, `schema.table` |
 * | `where.ts` | `WHERE` and `ORDER BY` clauses |
 * | `dml.ts` | `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `count`, upsert |
 * | `batch.ts` | batch columns, multi-row `INSERT` chunks under the parameter limit, batch `UPDATE` |
 * | `ddl.ts` | create, drop, truncate and look up tables and databases |
 * | `copy.ts` | `COPY … FROM STDIN` and the COPY text of records |
 * | `cache.ts` | the bounded caches of built text |
 *
 * Rules every builder keeps:
 * - values are always bind parameters (`$1 … $n`), never interpolated;
 * - identifiers are always double-quoted, with `"` doubled, after validation;
 * - the text depends only on the statement's shape (table, columns, operators, which clauses
 *   are present), never on the values, so the driver's prepared-statement cache keeps hitting.
 *
 * A key whose value is `undefined` in `data` or in a batch record counts as absent (JavaScript's
 * usual meaning of an optional field). In `where`, `undefined` is refused wherever it appears (a
 * column's value, an operator's value, an element of an array): it is almost always a field the
 * caller forgot to fill, and reading it as `IS NULL` would make an UPDATE or DELETE hit the rows
 * where that column is null. `null` is the way to say `IS NULL`.
 *
 * @module
 */
export type { Dialect, OrderBy, Row, SelectOptions, Where, WhereOperators } from "./_sql/types.ts";
export { quoteIdentifier, quoteTableName } from "./_sql/identifiers.ts";
export {
  buildCount,
  buildDelete,
  buildInsert,
  buildSelect,
  buildUpdate,
  buildUpsert,
  type UpsertPlan,
  upsertVerb,
} from "./_sql/dml.ts";
export { batchColumns, buildBatchInsert, buildBatchUpdate } from "./_sql/batch.ts";
export {
  buildCreateDatabase,
  buildCreateTable,
  buildDatabaseExists,
  buildDropDatabase,
  buildDropTable,
  buildTableExists,
  buildTruncate,
} from "./_sql/ddl.ts";
export { buildCopyFrom, encodeCopyText } from "./_sql/copy.ts";
