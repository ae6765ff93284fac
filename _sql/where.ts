// `WHERE` and `ORDER BY` clauses from their safe descriptions: `where` objects (values always
// bound, `undefined` refused) and `orderBy` strings, arrays and objects (columns and
// directions only, raw SQL refused). Pure.
import { ValidationError } from "../errors.ts";
import { describeValue, isPlainObject } from "../_serialize.ts";
import { quoteIdentifier } from "./identifiers.ts";
import type { OrderBy, Where } from "./types.ts";

const WHERE_OPERATORS: ReadonlySet<string> = new Set([
  "gt",
  "gte",
  "lt",
  "lte",
  "ne",
  "in",
  "like",
]);

const COMPARISONS: Readonly<Record<string, string>> = {
  gt: ">",
  gte: ">=",
  lt: "<",
  lte: "<=",
};

const ORDER_ITEM = /^([A-Za-z_][A-Za-z0-9_$]*)(?:\s+(asc|desc))?(?:\s+nulls\s+(first|last))?$/i;

// `undefined` in a `where` is almost always a field the caller forgot to fill: refused, never
// read as NULL, so that a missing value cannot turn an UPDATE or DELETE onto other rows.
function undefinedInWhere(column: string, detail: string): ValidationError {
  return new ValidationError(`Cannot use where: ${describeValue(column)}${detail}`, {
    field: column,
  });
}

function checkElements(column: string, values: readonly unknown[], operator: string): void {
  for (let i = 0; i < values.length; i++) {
    // `=== undefined` also catches a hole in a sparse array.
    if (values[i] === undefined) {
      throw undefinedInWhere(column, `${operator} holds undefined at index ${i}`);
    }
  }
}

function operatorCondition(
  column: string,
  quoted: string,
  operator: string,
  value: unknown,
  params: unknown[],
): string {
  switch (operator) {
    case "ne":
      if (value === null) return `${quoted} IS NOT NULL`;
      if (Array.isArray(value)) {
        if (value.length === 0) return "TRUE";
        checkElements(column, value, ' operator "ne"');
        params.push(value);
        return `${quoted} <> ALL($${params.length})`;
      }
      params.push(value);
      return `${quoted} <> $${params.length}`;
    case "in":
      if (!Array.isArray(value)) {
        throw new ValidationError(
          `Cannot build WHERE for column ${describeValue(column)}: "in" needs an array, got ${
            describeValue(value)
          }`,
          { field: column },
        );
      }
      if (value.length === 0) return "FALSE";
      checkElements(column, value, ' operator "in"');
      params.push(value);
      return `${quoted} = ANY($${params.length})`;
    case "like":
      if (typeof value !== "string") {
        throw new ValidationError(
          `Cannot build WHERE for column ${describeValue(column)}: "like" needs a string, got ${
            describeValue(value)
          }`,
          { field: column },
        );
      }
      // A pattern ending in a lone escape character fails on the server only when a row is
      // compared; refuse it whatever the table holds.
      if (/(^|[^\\])(\\\\)*\\$/.test(value)) {
        throw new ValidationError(
          `Cannot build WHERE for column ${
            describeValue(column)
          }: the "like" pattern ends with a lone "\\"`,
          { field: column },
        );
      }
      params.push(value);
      return `${quoted} LIKE $${params.length}`;
    default:
      // A comparison with NULL is never true: a null bound is a bug, not a filter.
      if (value === null) {
        throw new ValidationError(
          `Cannot build WHERE for column ${
            describeValue(column)
          }: "${operator}" needs a value, got ${describeValue(value)}`,
          { field: column },
        );
      }
      params.push(value);
      return `${quoted} ${COMPARISONS[operator]} $${params.length}`;
  }
}

/**
 * Builds a `WHERE` clause, appending its values to `params`.
 *
 * Per column: a plain value → `"c" = $n`; `null` → `"c" IS NULL`; an array → `"c" = ANY($n)`
 * (empty → `FALSE`); an operator object (`WhereOperators`, every key an operator) →
 * the comparisons ANDed. `Date`, `Uint8Array`, bigint and other non-plain objects are plain
 * values. Conditions keep the key order. `undefined` as a column's value, an operator's value
 * or an array element is refused.
 *
 * @example
 * ```ts
 * import { buildWhere } from "./where.ts";
 *
 * const params: unknown[] = [];
 * console.log(buildWhere({ age: { gte: 18 }, deleted_at: null }, params));
 * // WHERE "age" >= $1 AND "deleted_at" IS NULL
 * ```
 *
 * @param where The conditions; `undefined` or `{}` gives `""`.
 * @param params The parameters so far; the clause's values are pushed onto it.
 * @returns `""` or `" WHERE …"`.
 * @throws {ValidationError} If a key is not a valid identifier (field `where`), a value is or
 * holds `undefined`, or an object value is not a valid operator object (field: the column).
 */
export function buildWhere(where: Where | undefined, params: unknown[]): string {
  if (where === undefined || where === null) return "";
  if (!isPlainObject(where)) {
    throw new ValidationError(
      `Cannot build WHERE: expected an object, got ${describeValue(where)}`,
      {
        field: "where",
      },
    );
  }
  let text = "";
  for (const column of Object.keys(where)) {
    const quoted = quoteIdentifier(column, "where");
    const value = where[column];
    let condition: string;
    if (value === undefined) {
      throw undefinedInWhere(column, " is undefined (use null for IS NULL)");
    } else if (value === null) {
      condition = `${quoted} IS NULL`;
    } else if (Array.isArray(value)) {
      if (value.length === 0) {
        condition = "FALSE";
      } else {
        checkElements(column, value, "");
        params.push(value);
        condition = `${quoted} = ANY($${params.length})`;
      }
    } else if (isPlainObject(value)) {
      const operators = Object.keys(value);
      if (operators.length === 0) {
        throw new ValidationError(
          `Cannot build WHERE for column ${describeValue(column)}: operator object is empty`,
          { field: column },
        );
      }
      const unknown = operators.filter((key) => !WHERE_OPERATORS.has(key));
      if (unknown.length > 0) {
        throw new ValidationError(
          `Cannot build WHERE for column ${describeValue(column)}: unknown operator ${
            unknown.map(describeValue).join(", ")
          } (expected gt, gte, lt, lte, ne, in or like)`,
          { field: column },
        );
      }
      condition = "";
      for (const operator of operators) {
        const operand = value[operator];
        if (operand === undefined) {
          throw undefinedInWhere(
            column,
            ` operator "${operator}" is undefined${
              operator === "ne" ? " (use null for IS NOT NULL)" : ""
            }`,
          );
        }
        const part = operatorCondition(column, quoted, operator, operand, params);
        condition += condition === "" ? part : ` AND ${part}`;
      }
    } else {
      params.push(value);
      condition = `${quoted} = $${params.length}`;
    }
    text += text === "" ? ` WHERE ${condition}` : ` AND ${condition}`;
  }
  return text;
}

function orderByError(detail: string): ValidationError {
  return new ValidationError(`Cannot build ORDER BY: ${detail}`, { field: "orderBy" });
}

function orderItems(text: string, into: string[]): void {
  if (typeof text !== "string") throw orderByError(`expected a string, got ${describeValue(text)}`);
  for (const raw of text.split(",")) {
    const item = raw.trim();
    const [, column, direction, nulls] = ORDER_ITEM.exec(item) ?? [];
    if (column === undefined) {
      throw orderByError(
        item === ""
          ? `empty item in ${describeValue(text)}`
          : `${
            describeValue(item)
          } is not "column", "column ASC" or "column DESC" (optionally NULLS FIRST or NULLS LAST)`,
      );
    }
    let sql = quoteIdentifier(column, "orderBy");
    if (direction !== undefined) sql += ` ${direction.toUpperCase()}`;
    if (nulls !== undefined) sql += ` NULLS ${nulls.toUpperCase()}`;
    into.push(sql);
  }
}

/**
 * Builds an `ORDER BY` clause from a safe description; raw SQL is refused.
 *
 * String items are `column`, `column ASC|DESC` (any case), optionally followed by
 * `NULLS FIRST|LAST`, separated by commas; the column must match `[A-Za-z_][A-Za-z0-9_$]*`.
 * The object form takes any column name.
 *
 * @example
 * ```ts
 * import { buildOrderBy } from "./where.ts";
 *
 * console.log(buildOrderBy("name, created_at desc")); // ORDER BY "name", "created_at" DESC
 * console.log(buildOrderBy({ "Last Name": "asc" })); // ORDER BY "Last Name" ASC
 * ```
 *
 * @param orderBy The order; `undefined` gives `""`.
 * @returns `""` or `" ORDER BY …"`.
 * @throws {ValidationError} (field `orderBy`) If the order is empty or anything but columns
 * and directions.
 */
export function buildOrderBy(orderBy: OrderBy | undefined): string {
  if (orderBy === undefined) return "";
  const items: string[] = [];
  if (typeof orderBy === "string") {
    orderItems(orderBy, items);
  } else if (Array.isArray(orderBy)) {
    if (orderBy.length === 0) throw orderByError("empty array");
    for (const element of orderBy) orderItems(element, items);
  } else if (isPlainObject(orderBy)) {
    const columns = Object.keys(orderBy);
    if (columns.length === 0) throw orderByError("empty object");
    for (const column of columns) {
      const direction = (orderBy as Record<string, unknown>)[column];
      const upper = typeof direction === "string" ? direction.toUpperCase() : "";
      if (upper !== "ASC" && upper !== "DESC") {
        throw orderByError(
          `direction of column ${describeValue(column)} must be "asc" or "desc", got ${
            describeValue(direction)
          }`,
        );
      }
      items.push(`${quoteIdentifier(column, "orderBy")} ${upper}`);
    }
  } else {
    throw orderByError(`expected a string, an array or an object, got ${describeValue(orderBy)}`);
  }
  return ` ORDER BY ${items.join(", ")}`;
}
