// The user a server of its own runs as when the caller is root (initdb and postgres refuse to
// run as root): the unprivileged user "postgres", created with useradd when missing.

const SERVER_USER = "postgres";

/** The ids the server's processes and files take. */
export interface ServerUser {
  readonly uid: number;
  readonly gid: number;
}

/** The user "postgres", created when missing (another process may create it meanwhile). */
export async function serverUser(): Promise<ServerUser> {
  const existing = await lookUpUser(SERVER_USER);
  if (existing) return existing;
  const created = await new Deno.Command("useradd", {
    args: [
      "--system",
      "--user-group",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      SERVER_USER,
    ],
    stdin: "null",
  }).output().catch((error: Error) => error);
  // Another process may have created the user meanwhile: look again before failing.
  const user = await lookUpUser(SERVER_USER);
  if (user) return user;
  const detail = created instanceof Error
    ? created.message
    : new TextDecoder().decode(created.stderr).trim();
  throw new Error(
    `Cannot create the user "${SERVER_USER}" to run the test database as root: ${detail}`,
  );
}

async function lookUpUser(name: string): Promise<ServerUser | undefined> {
  const output = await new Deno.Command("id", { args: [name], stdin: "null" }).output();
  const match = /uid=(\d+).*?gid=(\d+)/.exec(new TextDecoder().decode(output.stdout));
  return output.success && match ? { uid: Number(match[1]), gid: Number(match[2]) } : undefined;
}
