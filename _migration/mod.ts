// The migration engine, shared by `AsyncMigration`, `Migration` and the CLI: what they import.
// Internal (not an entry of deno.json). The layout, one job per module:
//
//   types.ts      the public shapes (options, files, results, progress, status)
//   files.ts      the rules of file names and texts: versions, `-- DOWN`, checksums (pure)
//   plan.ts       which migrations a run applies or reverts, checked up front (pure)
//   status.ts     status and verify, and the programs that read them
//   messages.ts   the wording of errors: hints in the API's and the CLI's spelling
//   config.ts     options resolved once, with the clock, owner id and cwd injected (the impure
//                 defaults live here only)
//   effects.ts    the effects the programs yield, and the small programs that yield them
//   tables.ts     the tracking and progress tables: create, read, record
//   lock.ts       the lease lock: take, renew, release, wait
//   directory.ts  the programs that load the directory and create a file
//   run.ts        migrate() and rollback() as programs
//   disk.ts       the file system: the runners perform `read` and `write` effects with it
//
// The SQL splitter (`splitStatements`, `isTransactionControl`) is `../_sql_scan.ts`, which the
// placeholder count of every statement shares.
export type * from "./types.ts";
export { resolveRunnerConfig, type RunnerConfig } from "./config.ts";
export { type Effect, type Program } from "./effects.ts";
export {
  migrationFileStem,
  migrationFileText,
  newMigrationPath,
  parseMigrationFiles,
} from "./files.ts";
export {
  readMigrationDir,
  readMigrationDirSync,
  writeMigrationFile,
  writeMigrationFileSync,
} from "./disk.ts";
export { createProgram, loadProgram } from "./directory.ts";
export { respell } from "./messages.ts";
export { pendingProgram, statusProgram, verifyStatus } from "./status.ts";
export { historyProgram, initializeProgram, readAppliedProgram } from "./tables.ts";
export { unlockProgram } from "./lock.ts";
export { migrateProgram, rollbackProgram } from "./run.ts";
