import assert from "node:assert/strict";
import { join } from "node:path";
import {
  readMigrationDir,
  readMigrationDirSync,
  writeMigrationFile,
  writeMigrationFileSync,
} from "./disk.ts";

Deno.test("readMigrationDir() reads the migration files only, and answers null for no directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "V1__one.sql"), "SELECT 1");
    await Deno.writeTextFile(join(dir, "U1__one.sql"), "SELECT 0");
    await Deno.writeTextFile(join(dir, "README.md"), "not a migration");
    await Deno.mkdir(join(dir, "V2__a_directory.sql"));
    const expected = [
      { name: "U1__one.sql", text: "SELECT 0" },
      { name: "V1__one.sql", text: "SELECT 1" },
    ];
    const byName = (a: { name: string }, b: { name: string }) => a.name < b.name ? -1 : 1;
    assert.deepEqual((await readMigrationDir(dir))?.sort(byName), expected);
    assert.deepEqual(readMigrationDirSync(dir)?.sort(byName), expected);
    assert.equal(await readMigrationDir(join(dir, "nope")), null);
    assert.equal(readMigrationDirSync(join(dir, "nope")), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeMigrationFile() creates the directory, and never overwrites a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "new", "V1__one.sql");
    await writeMigrationFile(path, "SELECT 1\n");
    assert.equal(await Deno.readTextFile(path), "SELECT 1\n");
    await assert.rejects(() => writeMigrationFile(path, "SELECT 2\n"), Deno.errors.AlreadyExists);
    assert.throws(() => writeMigrationFileSync(path, "SELECT 2\n"), Deno.errors.AlreadyExists);
    writeMigrationFileSync(join(dir, "sync", "V2__two.sql"), "SELECT 2\n");
    assert.equal(await Deno.readTextFile(join(dir, "sync", "V2__two.sql")), "SELECT 2\n");
    assert.equal(await Deno.readTextFile(path), "SELECT 1\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
