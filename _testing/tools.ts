// The command-line tools a server of its own needs: where PostgreSQL's binaries are (initdb and
// postgres from one installation, on PATH or under /usr/lib/postgresql), where another tool is
// on PATH, and running one to completion with its output's tail in the error when it fails.
import type { ServerUser } from "./user.ts";

/** The path of the executable `name` on PATH, if any. */
export async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && await isExecutable(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** The directory holding `initdb` and `postgres`. */
export async function findBinDir(): Promise<string> {
  const initdbOnPath = await findOnPath("initdb");
  if (initdbOnPath) {
    // Through symlinks, so that postgres comes from the same installation as initdb.
    const initdb = await Deno.realPath(initdbOnPath);
    const binDir = initdb.slice(0, initdb.lastIndexOf("/"));
    if (await isExecutable(`${binDir}/postgres`)) return binDir;
  }
  const versions: string[] = [];
  try {
    for await (const { name } of Deno.readDir("/usr/lib/postgresql")) {
      if (/^\d+(\.\d+)?$/.test(name)) versions.push(name);
    }
  } catch {
    // No Debian-style installation.
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const binDir = `/usr/lib/postgresql/${version}/bin`;
    if (await isExecutable(`${binDir}/initdb`) && await isExecutable(`${binDir}/postgres`)) {
      return binDir;
    }
  }
  throw new Error(
    "Cannot find the PostgreSQL server: no initdb and postgres on PATH or under " +
      "/usr/lib/postgresql/*/bin; install PostgreSQL (Debian: apt-get install postgresql) " +
      "or pass binDir",
  );
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

interface ToolOptions {
  readonly cwd: string;
  readonly user?: ServerUser | undefined;
}

/** Runs a tool to completion; throws with the tail of its output when it fails. */
export async function runTool(
  command: string,
  args: readonly string[],
  options: ToolOptions,
): Promise<void> {
  const name = command.slice(command.lastIndexOf("/") + 1);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, {
      args: [...args],
      cwd: options.cwd,
      uid: options.user?.uid,
      gid: options.user?.gid,
      stdin: "null",
    }).output();
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot run "${command}" for the test database: ${detail}`, { cause: error });
  }
  if (!output.success) {
    const decoder = new TextDecoder();
    const text = decoder.decode(output.stdout) + decoder.decode(output.stderr);
    throw new Error(
      `Cannot prepare the test database: ${name} exited with code ${output.code}:\n${tail(text)}`,
    );
  }
}

/** The last `lines` lines of a tool's output or of a log. */
export function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
