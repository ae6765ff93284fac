// The failure modes of the pool-invariant tests (`pool_invariant_test.ts`), shared by the async
// run and the sync run (in a child process, so that a hang fails the test instead of blocking
// it): statements that fail on the server in each error class, on a live connection or by
// ending their own session.

/** A statement that fails, and the error class it fails with. */
export interface FailingStatement {
  readonly name: string;
  readonly sql: string;
  readonly params?: readonly unknown[];
  /** The SQLSTATE (or package code) the error carries. */
  readonly code: string;
}

/** The tables and functions the cases use, created by the test before it runs them. */
export function setupSql(table: string): string {
  return `CREATE TABLE ${table} (id INT PRIMARY KEY, v INT NOT NULL);
    INSERT INTO ${table} VALUES (1, 1);
    CREATE OR REPLACE FUNCTION ${table}_conflict() RETURNS int LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001'; END $$;`;
}

/** Server errors of each class, each on a connection that stays open. */
export function failingStatements(table: string): readonly FailingStatement[] {
  return [
    { name: "22012 division by zero", sql: "SELECT 1 / $1::int AS x", params: [0], code: "22012" },
    {
      name: "23505 unique violation",
      sql: `INSERT INTO ${table} (id, v) VALUES ($1, 1)`,
      params: [1],
      code: "23505",
    },
    { name: "42601 syntax error", sql: "SELEC 1", code: "42601" },
    { name: "42P01 missing table", sql: "SELECT * FROM inv_no_such_table", code: "42P01" },
    { name: "40001 serialization failure", sql: `SELECT ${table}_conflict()`, code: "40001" },
    {
      name: "57014 statement timeout",
      sql: "SET statement_timeout = 20; SELECT pg_sleep(1); RESET statement_timeout",
      code: "57014",
    },
    {
      name: "P0001 raised exception",
      sql: "DO $$ BEGIN RAISE EXCEPTION 'boom'; END $$",
      code: "P0001",
    },
    {
      name: "parameter count",
      sql: "SELECT $1::int + $2::int AS x",
      params: [1],
      code: "VALIDATION_ERROR",
    },
    {
      name: "parameter that cannot be sent",
      sql: "SELECT $1::text AS x",
      params: ["\ud800"],
      code: "VALIDATION_ERROR",
    },
  ];
}

/** Ends the statement's own session: the server reports FATAL 57P01 and closes it. */
export const SELF_TERMINATE = "SELECT pg_terminate_backend(pg_backend_pid())";

/** Rows enough for a stream of several batches, failing at row 15. */
export const FAILING_STREAM = "SELECT 1 / (15 - g) AS x FROM generate_series(1, 30) AS g";

/** How many times each failure mode runs. */
export const REPEAT = 20;
