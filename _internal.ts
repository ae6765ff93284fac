// Hooks into an AsyncDatabase for the package's own modules (the sync bridge's worker), kept
// out of the public classes.
import type { Dialect } from "./_sql.ts";
import type { ReservedSession } from "./_driver.ts";
import type { ResolvedConfig } from "./_config.ts";

/** What the package's own modules may reach inside an `AsyncDatabase`. */
export interface DatabaseInternals {
  readonly config: ResolvedConfig;
  /** Connects if needed and answers the server's dialect. */
  dialect(): Promise<Dialect>;
  /** A connection of the pool for one transaction. */
  reserve(): Promise<ReservedSession>;
}

const registry = new WeakMap<object, DatabaseInternals>();

/** Registers the internals of a database object. */
export function registerInternals(db: object, internals: DatabaseInternals): void {
  registry.set(db, internals);
}

/** The internals of a database object created by this package. */
export function internalsOf(db: object): DatabaseInternals {
  const internals = registry.get(db);
  if (internals === undefined) throw new TypeError("Cannot use object: not an AsyncDatabase");
  return internals;
}
