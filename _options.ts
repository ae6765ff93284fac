// The options of the CRUD helpers, one set for `AsyncQueryable` and `Queryable` (re-exported by
// both entry points). `_sql/ddl.ts` builds from `CreateTableOptions` and `DropTableOptions` as
// they are; the upsert and batch builders take plans resolved from these against the server's
// dialect (`UpsertPlan`, `BatchInsertPlan` in `_sql/`).

/** Options of `createTable`. */
export interface CreateTableOptions {
  /**
   * Add `IF NOT EXISTS`.
   * @default {true}
   */
  readonly ifNotExists?: boolean;
}

/** Options of `dropTable`. */
export interface DropTableOptions {
  /**
   * Add `IF EXISTS`.
   * @default {true}
   */
  readonly ifExists?: boolean;
  /**
   * Add `CASCADE`.
   * @default {false}
   */
  readonly cascade?: boolean;
}

/** Options of `upsert` and `batchUpsert`. */
export interface UpsertOptions {
  /**
   * The columns whose conflict turns the insert into an update. Without them, CockroachDB uses
   * `UPSERT` (the primary key) and PostgreSQL uses the table's primary key.
   * @default {undefined}
   */
  readonly conflictColumns?: readonly string[];
  /**
   * Most records per statement (`batchUpsert` only).
   * @default {as many as fit under 65,534 bind parameters}
   */
  readonly chunkSize?: number;
}

/** Options of `batchInsert`. */
export interface BatchInsertOptions {
  /**
   * Return the inserted rows (in input order); `false` returns the count and may use `COPY`.
   * @default {true}
   */
  readonly returning?: boolean;
  /**
   * Most records per statement.
   * @default {as many as fit under 65,534 bind parameters}
   */
  readonly chunkSize?: number;
}

/** Options of `batchUpdate`. */
export interface BatchUpdateOptions {
  /**
   * The column that identifies each record.
   * @default {"id"}
   */
  readonly keyColumn?: string;
}

/** Options of `stream`. */
export interface StreamOptions {
  /**
   * Rows fetched from the cursor per round trip.
   * @default {1000}
   */
  readonly batchSize?: number;
}
