// Shared by the test modules: the server URL the test task started, and unique names.

/** The URL of the server the tests use (set by `deno task test`, or by the caller). */
export function testUrl(): string {
  const url = Deno.env.get("DATABASE_URL");
  if (!url) {
    throw new Error(
      "Cannot run integration tests: DATABASE_URL is not set (run them with `deno task test`, which starts a throwaway server)",
    );
  }
  return url;
}

let counter = 0;

/** A table or database name no other test uses. */
export function uniqueName(prefix = "t"): string {
  return `${prefix}_${Date.now().toString(36)}_${(++counter).toString(36)}_${
    Math.random().toString(36).slice(2, 6)
  }`;
}
