// The engine's file system: reading the migrations directory and writing a new migration file,
// once with awaits and once blocking. The runners perform their `read` and `write` effects with
// these, and the CLI's offline `create` reads with them too; what the names and texts mean is
// `files.ts`'s job.
import { dirname, join } from "node:path";
import { type FileEntry, isMigrationFileName } from "./files.ts";

// Only files (or links to them) with a migration's name are read: a directory or a README next
// to the migrations is not.
function wanted(entry: Deno.DirEntry): boolean {
  return (entry.isFile || entry.isSymlink) && isMigrationFileName(entry.name);
}

/** The migration files of `dir` with their texts, or `null` when `dir` does not exist. */
export async function readMigrationDir(dir: string): Promise<FileEntry[] | null> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) if (wanted(entry)) names.push(entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  return await Promise.all(
    names.map(async (name) => ({ name, text: await Deno.readTextFile(join(dir, name)) })),
  );
}

/** {@linkcode readMigrationDir}, blocking. */
export function readMigrationDirSync(dir: string): FileEntry[] | null {
  const names: string[] = [];
  try {
    for (const entry of Deno.readDirSync(dir)) if (wanted(entry)) names.push(entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  return names.map((name) => ({ name, text: Deno.readTextFileSync(join(dir, name)) }));
}

/** Creates a file that must not exist yet, and its directory if needed. */
export async function writeMigrationFile(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, text, { createNew: true });
}

/** {@linkcode writeMigrationFile}, blocking. */
export function writeMigrationFileSync(path: string, text: string): void {
  Deno.mkdirSync(dirname(path), { recursive: true });
  Deno.writeTextFileSync(path, text, { createNew: true });
}
