// postgres.js as the driver seam sees it: the vendored copy's import, the shapes of the objects
// of it that the seam uses, and a result read into the seam's form. Only the `_driver*.ts`
// modules import this.
import type postgresTypes from "npm:postgres@3.4.9";
import postgresJs from "./vendor/postgres/index.js";
import type { QueryResult, Row } from "./_driver.ts";

/** The vendored postgres.js, typed by the npm package of the same version. */
export const postgres = postgresJs as unknown as typeof postgresTypes;
export type { postgresTypes };

/** A pool of postgres.js. */
export type Sql = ReturnType<typeof postgres>;
/** One connection of it, reserved. */
export type ReservedSql = Awaited<ReturnType<Sql["reserve"]>>;
/** What postgres.js resolves a statement with. */
export type PgResult = Row[] & {
  command?: string;
  count?: number | null;
  columns?: PgColumn[] | null;
};

/** A result column as postgres.js describes it (the statement's, shared by its later runs). */
export interface PgColumn {
  readonly name: string;
  readonly type: number;
  parser?: (x: string) => unknown;
}

/** A `COPY … FROM STDIN` query of postgres.js. */
export interface CopyQuery {
  reject: (error: unknown) => unknown;
  writable(): Promise<import("node:stream").Writable>;
}

/** The parts of a postgres.js connection the driver uses (the vendored copy's). */
export interface PgConnection {
  readonly id: number;
  /** The index of the host it is connected to (patch 0015). */
  readonly hostIndex: number;
  /** The status byte of the last ReadyForQuery: `I` (73) idle, `T` in a transaction, `E` failed. */
  readonly status?: number;
  /** Sends Terminate and closes the socket; postgres.js then takes the slot back as closed. */
  terminate(): void;
}

/** Multi-statement simple queries answer one result per statement; the last one counts. */
export function lastResult(result: PgResult | PgResult[]): PgResult | undefined {
  return Array.isArray(result[0]) && (result as PgResult[]).every(Array.isArray)
    ? (result as PgResult[])[(result as PgResult[]).length - 1]
    : result as PgResult;
}

/** A postgres.js result in the seam's form. */
export function toResult(result: PgResult | PgResult[]): QueryResult {
  const last = lastResult(result);
  return {
    rows: Array.isArray(last) ? [...last] : [],
    command: last?.command ?? "",
    count: last?.count ?? 0,
  };
}
