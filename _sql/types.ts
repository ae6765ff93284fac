// The shapes the SQL builders take and give, which the public API re-exports: rows, statements,
// the server dialect, `where` conditions, `orderBy` and the options of a select. Types only.

/** A row or a record: column names to values. */
export type Row = Record<string, unknown>;

/** A SQL text with its bind parameters (`$1` is `params[0]`). */
export interface Statement {
  /** The SQL text, with `$n` placeholders. */
  readonly text: string;
  /** The values bound to the placeholders, in order. */
  readonly params: unknown[];
}

/** The server family, which decides between `UPSERT` and `INSERT … ON CONFLICT`. */
export type Dialect = "postgres" | "cockroach";

/**
 * The comparisons a `where` value may hold instead of a plain value; several are ANDed. `V` is
 * the column's type (without `null`): a table with a row type checks the operands against it.
 */
export interface WhereOperators<V = unknown> {
  /** `column > value`. */
  readonly gt?: V;
  /** `column >= value`. */
  readonly gte?: V;
  /** `column < value`. */
  readonly lt?: V;
  /** `column <= value`. */
  readonly lte?: V;
  /** `column <> value`; `null` means `IS NOT NULL`; an array means "none of these". */
  readonly ne?: V | null | readonly V[];
  /** `column = ANY(values)`; an empty array matches nothing. */
  readonly in?: readonly V[];
  /** `column LIKE pattern`; with a row type, only on a column whose type includes `string`. */
  readonly like?: unknown extends V ? string
    : [Extract<V, string>] extends [never] ? never
    : string;
}

/**
 * Conditions joined with `AND`, one per column: a plain value (`=`), `null` (`IS NULL`), an array
 * (`= ANY(…)`) or a {@linkcode WhereOperators} object. `undefined` anywhere in it is refused with
 * `ValidationError` (use `null` for `IS NULL`).
 *
 * `T` is the row type. With one, the keys are `T`'s columns and the values are checked against
 * the column's type; with the default `Row`, any key and value are accepted.
 *
 * @example A typed where
 * ```ts
 * import type { Where } from "./types.ts";
 *
 * interface Todo {
 *   id: number;
 *   title: string;
 *   due: Date | null;
 * }
 *
 * // A misspelt column ({ titel: … }) or a string bound for `due` would not compile.
 * const overdue: Where<Todo> = { due: { lt: new Date() }, title: { like: "%urgent%" } };
 * console.log(overdue);
 * ```
 */
export type Where<T = Row> = {
  readonly [K in keyof T]?: unknown extends T[K] ? unknown
    :
      | NonNullable<T[K]>
      | null
      | readonly NonNullable<T[K]>[]
      | WhereOperators<NonNullable<T[K]>>;
};

/**
 * `"col"`, `"col DESC"`, `"col ASC NULLS LAST"`, an array of those, a comma-separated list
 * (`"a ASC, b DESC"`), or `{ col: "asc" }`.
 *
 * `T` is the row type. With one, the object form's keys and the column of each single item are
 * checked against `T`'s columns (directions and `NULLS FIRST`/`NULLS LAST` in upper or lower
 * case); a comma-separated list is not checked, so write several columns as an array to have
 * each checked. With the default `Row`, any column is accepted (the server is the judge).
 */
export type OrderBy<T = Row> =
  | `${keyof T & string}${"" | ` ${"asc" | "desc" | "ASC" | "DESC"}`}${
    | ""
    | ` ${"NULLS FIRST" | "NULLS LAST" | "nulls first" | "nulls last"}`}`
  | `${string},${string}`
  | readonly (
    | `${keyof T & string}${"" | ` ${"asc" | "desc" | "ASC" | "DESC"}`}${
      | ""
      | ` ${"NULLS FIRST" | "NULLS LAST" | "nulls first" | "nulls last"}`}`
    | `${string},${string}`
  )[]
  | { readonly [K in keyof T]?: "asc" | "desc" | "ASC" | "DESC" };

/**
 * Options of `buildSelect`. `T` is the row type: with one, `columns`, `where` and
 * `orderBy` name only `T`'s columns.
 */
export interface SelectOptions<T = Row> {
  /**
   * The columns to return.
   *
   * @default {all columns (`*`)}
   */
  readonly columns?: readonly (keyof T & string)[];
  /**
   * The rows to return.
   *
   * @default {every row}
   */
  readonly where?: Where<T>;
  /**
   * The order of the rows.
   *
   * @default {the server's order}
   */
  readonly orderBy?: OrderBy<T>;
  /**
   * The most rows to return; `0` returns none.
   *
   * @default {no limit}
   */
  readonly limit?: number;
  /**
   * The rows to skip first.
   *
   * @default {0}
   */
  readonly offset?: number;
}
