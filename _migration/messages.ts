// The wording of the migration engine's errors: the hints that end a `MigrationError`'s message
// (written once, in the API's spelling, and respelled for the command line), and the helpers
// that quote a statement or a server error inside a message. Pure.
import { MigrationError, type MigrationErrorOptions } from "../errors.ts";

/** Whose words a hint uses: the API's option names, or the command line's flags. */
export type HintSpelling = "api" | "cli";

// How each interface spells what a hint tells the user to do; each hint below is written once
// over these words. Errors are built in the API's spelling and the CLI respells them
// (`respell()`), so a hint never names an option the user cannot type where they are.
const SPELLINGS = {
  api: {
    allowModified: "pass allowModified: true",
    allowOutOfOrder: "pass allowOutOfOrder: true",
    lockTimeout: "raise lockTimeout",
    unlock: "call unlock()",
    migrationsDir: "check migrationsDir",
    create: "createMigration()",
  },
  cli: {
    allowModified: "pass --allow-modified",
    allowOutOfOrder: "pass --allow-out-of-order",
    lockTimeout: "raise --lock-timeout",
    unlock: "run the unlock command",
    migrationsDir: "check --dir",
    create: "the create command",
  },
} as const satisfies Record<HintSpelling, Record<string, string>>;

type Words = (typeof SPELLINGS)[HintSpelling];

/** The hint that ends the message of a `MigrationError` of each of these codes. */
const HINTS = {
  MIGRATION_MODIFIED: (w: Words) => `restore the file, or ${w.allowModified} to run anyway`,
  MIGRATION_OUT_OF_ORDER: (w: Words) => `${w.allowOutOfOrder} to apply them anyway`,
  MIGRATION_PARTIAL: (w: Words) =>
    `undo them by hand, then ${w.allowModified} to run it from its first statement`,
  MIGRATION_LOCKED: (w: Words) =>
    `${w.lockTimeout} to wait longer, or ${w.unlock} if that runner is gone`,
  MIGRATION_DIRECTORY_NOT_FOUND: (w: Words) =>
    `${w.migrationsDir}, or make the directory (${w.create} makes it with its first file)`,
} as const;

type HintedCode = keyof typeof HINTS;

/** A `MigrationError` whose message ends with the hint of its code, in the API's spelling. */
export function hinted(
  message: string,
  options: MigrationErrorOptions & { readonly code: HintedCode },
): MigrationError {
  return new MigrationError(`${message}; ${HINTS[options.code](SPELLINGS.api)}`, options);
}

/**
 * The same error with the hint at the end of its message in another spelling: the CLI passes
 * every error through this with `"cli"`. Anything else is returned as it is.
 */
export function respell(error: unknown, spelling: HintSpelling): unknown {
  if (!(error instanceof MigrationError) || !Object.hasOwn(HINTS, error.code)) return error;
  const hint = HINTS[error.code as HintedCode];
  const api = hint(SPELLINGS.api);
  if (spelling === "api" || !error.message.endsWith(`; ${api}`)) return error;
  return new MigrationError(
    `${error.message.slice(0, -api.length)}${hint(SPELLINGS[spelling])}`,
    {
      cause: error.cause,
      code: error.code,
      version: error.version,
      path: error.path,
      statement: error.statement,
      detail: error.detail,
      hint: error.hint,
    },
  );
}

/** A statement on one line, cut to `max` characters, to quote in a message. */
export function shorten(text: string, max = 80): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

/** The detail of an error's message, without the prefix of the query that failed. */
export function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^Cannot execute query: /, "");
}
