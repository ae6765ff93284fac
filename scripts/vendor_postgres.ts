// Rebuilds vendor/postgres/ from the postgres.js npm tarball and the patch series in
// vendor/postgres_patches/ (see docs/vendored-driver.md), or checks that it is that rebuild.
//
//   deno task vendor                    rebuild vendor/postgres/
//   deno task vendor --check            fail when vendor/postgres/ differs from the rebuild
//   deno task vendor --out DIR [--upto N]
//                                       write the package's src/ with the first N patches
//                                       applied (all by default) to DIR/src/, to make a patch
//   --tarball FILE                      use this tarball (verified all the same)
//
// The tarball is verified against the manifest's sha512 integrity and sha256 before use, and
// cached under $XDG_CACHE_HOME (or ~/.cache)/manticore-cockroachdb/. The patches are applied
// here, strictly, rather than by `patch -p1 --fuzz=0`, which a CI image may lack: each hunk
// must match the file exactly at the line it names (no fuzz, no offset).

/** vendor/postgres_patches/manifest.json: what is vendored, and the patches in order. */
export interface Manifest {
  readonly package: string;
  readonly version: string;
  readonly repository: string;
  readonly license: string;
  readonly tarball: string;
  readonly integrity: string;
  readonly sha256: string;
  readonly patches: readonly string[];
}

/** One hunk of a unified diff, its lines with their ' ', '-' or '+' prefix. */
interface Hunk {
  readonly oldStart: number;
  readonly oldCount: number;
  readonly newStart: number;
  readonly newCount: number;
  readonly lines: readonly string[];
  /** The last old line (or new line) has no newline after it ("\ No newline at end of file"). */
  readonly oldNoEol: boolean;
  readonly newNoEol: boolean;
}

/** The changes of one patch to one file; a null path is /dev/null (a file created or deleted). */
interface FilePatch {
  readonly oldPath: string | null;
  readonly newPath: string | null;
  readonly hunks: readonly Hunk[];
}

/** A parsed patch: its header (the text before the diff) and its changes, by file. */
export interface Patch {
  readonly name: string;
  readonly header: string;
  readonly files: readonly FilePatch[];
}

const ROOT = new URL("../", import.meta.url);
const PATCH_DIR = new URL("vendor/postgres_patches/", ROOT);
const TARGET = new URL("vendor/postgres/", ROOT);
const NPM_REGISTRY = "https://registry.npmjs.org/";
/** What a patch header must state (docs/vendored-driver.md). */
const HEADER_FIELDS = ["Subject", "What", "Why", "Upstream", "Test"] as const;

// ---- manifest and tarball -------------------------------------------------------------------

/** Reads and checks the manifest: fields, patch names in order, no patch file left out. */
export async function readManifest(dir: URL = PATCH_DIR): Promise<Manifest> {
  const path = new URL("manifest.json", dir);
  const manifest = JSON.parse(await Deno.readTextFile(path)) as Manifest;
  const keys = ["package", "version", "repository", "license", "tarball", "integrity", "sha256"];
  for (const key of keys as (keyof Manifest & string)[]) {
    if (typeof manifest[key] !== "string" || manifest[key] === "") {
      throw new Error(`Cannot read "${path.pathname}": "${key}" must be a non-empty string`);
    }
  }
  if (!manifest.integrity.startsWith("sha512-") || !/^[0-9a-f]{64}$/.test(manifest.sha256)) {
    throw new Error(
      `Cannot read "${path.pathname}": "integrity" must be sha512-<base64> and "sha256" 64 hex digits`,
    );
  }
  if (!Array.isArray(manifest.patches)) {
    throw new Error(`Cannot read "${path.pathname}": "patches" must be a list of file names`);
  }
  manifest.patches.forEach((name, i) => {
    const number = String(i + 1).padStart(4, "0");
    if (!new RegExp(`^${number}-[a-z0-9-]+\\.patch$`).test(name)) {
      throw new Error(
        `Cannot read "${path.pathname}": patch ${
          i + 1
        } is "${name}", expected "${number}-<name>.patch"`,
      );
    }
  });
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".patch") && !manifest.patches.includes(entry.name)) {
      throw new Error(`Cannot read "${path.pathname}": "${entry.name}" is not in "patches"`);
    }
  }
  return manifest;
}

async function digest(algorithm: "SHA-256" | "SHA-512", bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest(algorithm, bytes as Uint8Array<ArrayBuffer>));
}

/** The npm integrity string (sha512-<base64>) and the sha256 (hex) of `bytes`. */
export async function checksums(
  bytes: Uint8Array,
): Promise<{ readonly integrity: string; readonly sha256: string }> {
  const sha512 = await digest("SHA-512", bytes);
  const sha256 = await digest("SHA-256", bytes);
  return {
    integrity: `sha512-${btoa(String.fromCharCode(...sha512))}`,
    sha256: Array.from(sha256, (b) => b.toString(16).padStart(2, "0")).join(""),
  };
}

async function verify(bytes: Uint8Array, manifest: Manifest, source: string): Promise<void> {
  const actual = await checksums(bytes);
  for (const key of ["integrity", "sha256"] as const) {
    if (actual[key] !== manifest[key]) {
      throw new Error(
        `Cannot use the tarball "${source}": its ${key} is ${actual[key]}, the manifest names ${
          manifest[key]
        }`,
      );
    }
  }
}

function cacheFile(manifest: Manifest): string | undefined {
  const base = Deno.env.get("XDG_CACHE_HOME") ||
    (Deno.env.get("HOME") ? `${Deno.env.get("HOME")}/.cache` : undefined);
  return base && `${base}/manticore-cockroachdb/${manifest.package}-${manifest.version}.tgz`;
}

// The registry Deno itself uses for npm: specifiers, for a mirror; the checksums decide.
function tarballUrl(manifest: Manifest): string {
  const registry = Deno.env.get("NPM_CONFIG_REGISTRY");
  if (!registry || !manifest.tarball.startsWith(NPM_REGISTRY)) return manifest.tarball;
  return registry.replace(/\/?$/, "/") + manifest.tarball.slice(NPM_REGISTRY.length);
}

/** The verified tarball: from `file`, else from the cache, else downloaded (and cached). */
export async function loadTarball(manifest: Manifest, file?: string): Promise<Uint8Array> {
  if (file !== undefined) {
    const bytes = await Deno.readFile(file);
    await verify(bytes, manifest, file);
    return bytes;
  }
  const cached = cacheFile(manifest);
  if (cached) {
    try {
      const bytes = await Deno.readFile(cached);
      await verify(bytes, manifest, cached);
      return bytes;
    } catch {
      // Missing or not the tarball: download it again.
    }
  }
  const url = tarballUrl(manifest);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`Cannot download "${url}": ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`Cannot download "${url}": HTTP ${response.status} ${response.statusText}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  await verify(bytes, manifest, url);
  if (cached) {
    try {
      await Deno.mkdir(cached.slice(0, cached.lastIndexOf("/")), { recursive: true });
      const temporary = `${cached}.${crypto.randomUUID()}`;
      await Deno.writeFile(temporary, bytes);
      await Deno.rename(temporary, cached);
    } catch {
      // A cache that cannot be written only costs a download next time.
    }
  }
  return bytes;
}

// ---- tar ------------------------------------------------------------------------------------

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
}

/** The regular files of a .tgz (ustar, with pax and GNU long names), by path. */
export async function untgz(tgz: Uint8Array): Promise<Map<string, Uint8Array>> {
  const tar = await gunzip(tgz);
  const files = new Map<string, Uint8Array>();
  let longName: string | undefined;
  for (let offset = 0; offset + 512 <= tar.length;) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(cString(header.subarray(124, 136)).trim() || "0", 8);
    const type = String.fromCharCode(header[156] || 0x30);
    const prefix = cString(header.subarray(345, 500));
    const name = longName ?? (prefix ? `${prefix}/` : "") + cString(header.subarray(0, 100));
    const data = tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    longName = undefined;
    if (type === "x") {
      // pax: "<length> path=<name>\n" records; only the path matters here.
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(data))?.[1];
    } else if (type === "L") {
      longName = cString(data);
    } else if (type === "0" || type === "7") {
      files.set(name, data);
    }
  }
  return files;
}

/** The package's `src/` files as text, by path ("src/index.js"), from the tarball's files. */
export function packageSources(files: Map<string, Uint8Array>): Map<string, string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const sources = new Map<string, string>();
  for (const [path, data] of files) {
    if (!path.startsWith("package/src/") || path.split("/").includes("..")) continue;
    sources.set(path.slice("package/".length), decoder.decode(data));
  }
  if (sources.size === 0) throw new Error("Cannot find package/src/ in the tarball");
  return sources;
}

// ---- patches --------------------------------------------------------------------------------

function patchPath(raw: string, patch: string): string | null {
  const path = raw.replace(/\t.*$/, "");
  if (path === "/dev/null") return null;
  const slash = path.indexOf("/");
  const stripped = path.slice(slash + 1); // -p1
  if (slash === -1 || !stripped.startsWith("src/") || stripped.split("/").includes("..")) {
    throw new Error(`Cannot apply "${patch}": it names "${path}", not a file under a/src/`);
  }
  return stripped;
}

/** Parses a unified diff (as `git diff` or `diff -u` writes it) with a header before it. */
export function parsePatch(name: string, text: string): Patch {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  let i = lines.findIndex((line) => line.startsWith("diff ") || line.startsWith("--- "));
  if (i === -1) throw new Error(`Cannot apply "${name}": it holds no diff`);
  const header = lines.slice(0, i).join("\n").trim();
  for (const field of HEADER_FIELDS) {
    if (!new RegExp(`^${field}: \\S`, "m").test(header)) {
      throw new Error(`Cannot apply "${name}": its header has no "${field}:" line`);
    }
  }
  const files: FilePatch[] = [];
  while (i < lines.length) {
    const line = lines[i]!;
    if (/^(diff |index |new file mode |deleted file mode )/.test(line)) {
      i++;
      continue;
    }
    const next = lines[i + 1];
    if (!line.startsWith("--- ") || !next?.startsWith("+++ ")) {
      throw new Error(`Cannot apply "${name}": line ${i + 1} is not part of a diff: ${line}`);
    }
    const oldPath = patchPath(line.slice(4), name);
    const newPath = patchPath(next.slice(4), name);
    i += 2;
    const hunks: Hunk[] = [];
    for (let head = lines[i]; head?.startsWith("@@ "); head = lines[i]) {
      const [, oldStart, oldCount = "1", newStart, newCount = "1"] =
        /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(head) ?? [];
      if (oldStart === undefined || newStart === undefined) {
        throw new Error(`Cannot apply "${name}": bad hunk header at line ${i + 1}`);
      }
      const numbers = {
        oldStart: Number(oldStart),
        oldCount: Number(oldCount),
        newStart: Number(newStart),
        newCount: Number(newCount),
      };
      const body: string[] = [];
      let [oldLeft, newLeft, oldNoEol, newNoEol] = [
        numbers.oldCount,
        numbers.newCount,
        false,
        false,
      ];
      for (i++; oldLeft > 0 || newLeft > 0; i++) {
        const text = lines[i];
        if (text === undefined) throw new Error(`Cannot apply "${name}": its last hunk is cut`);
        // An editor may strip the space of an empty context line.
        const raw = text === "" ? " " : text;
        const kind = raw[0];
        if (kind === " ") [oldLeft, newLeft] = [oldLeft - 1, newLeft - 1];
        else if (kind === "-") oldLeft--;
        else if (kind === "+") newLeft--;
        else throw new Error(`Cannot apply "${name}": bad hunk line ${i + 1}: ${raw}`);
        if (oldLeft < 0 || newLeft < 0) {
          throw new Error(
            `Cannot apply "${name}": the hunk at line ${i + 1} is longer than it says`,
          );
        }
        body.push(raw);
        if (lines[i + 1]?.startsWith("\\")) {
          if (kind !== "+") oldNoEol = true;
          if (kind !== "-") newNoEol = true;
          i++;
        }
      }
      hunks.push({ ...numbers, lines: body, oldNoEol, newNoEol });
    }
    if (hunks.length === 0) throw new Error(`Cannot apply "${name}": no hunk for "${newPath}"`);
    files.push({ oldPath, newPath, hunks });
  }
  return { name, header, files };
}

function applyToFile(
  text: string | undefined,
  file: FilePatch,
  patch: string,
): string | undefined {
  const path = file.oldPath ?? file.newPath;
  const fail = (why: string): never => {
    throw new Error(`Cannot apply "${patch}" to "${path}": ${why}`);
  };
  if (file.oldPath === null && text !== undefined) fail("the file it creates exists");
  if (file.oldPath !== null && text === undefined) fail("no such file");
  const lines = text === undefined || text === "" ? [] : text.split("\n");
  let eol = lines.at(-1) === "";
  if (eol) lines.pop();
  const out: string[] = [];
  let cursor = 0;
  file.hunks.forEach((hunk, h) => {
    // A hunk that only adds lines names the line after which they go.
    const start = hunk.oldCount === 0 ? hunk.oldStart : hunk.oldStart - 1;
    if (start < cursor) fail(`hunk ${h + 1} overlaps the one before`);
    if (start + hunk.oldCount > lines.length) fail(`hunk ${h + 1} runs past the end of the file`);
    out.push(...lines.slice(cursor, start));
    const expectedNew = hunk.newCount === 0 ? out.length : out.length + 1;
    if (hunk.newStart !== expectedNew) {
      fail(`hunk ${h + 1} says it starts at new line ${hunk.newStart}, not ${expectedNew}`);
    }
    let at = start;
    for (const line of hunk.lines) {
      const kind = line[0];
      const content = line.slice(1);
      if (kind !== "+") {
        if (lines[at] !== content) {
          fail(`hunk ${h + 1} does not match line ${at + 1} (no fuzz, no offset)`);
        }
        at++;
      }
      if (kind !== "-") out.push(content);
    }
    if (at === lines.length) {
      if (hunk.oldNoEol === eol) fail(`hunk ${h + 1} disagrees on the final newline`);
      eol = !hunk.newNoEol;
    }
    cursor = at;
  });
  out.push(...lines.slice(cursor));
  if (file.newPath === null) {
    if (out.length > 0) fail("the file it deletes is not empty afterwards");
    return undefined;
  }
  return out.join("\n") + (eol && out.length > 0 ? "\n" : "");
}

/** Applies `patch` to `sources` (path → text) in place; each hunk exactly where it says. */
export function applyPatch(sources: Map<string, string>, patch: Patch): void {
  for (const file of patch.files) {
    const path = (file.oldPath ?? file.newPath)!;
    const result = applyToFile(sources.get(path), file, patch.name);
    if (file.oldPath !== null && file.newPath !== file.oldPath) sources.delete(file.oldPath);
    if (result !== undefined) sources.set(file.newPath!, result);
  }
}

// ---- the vendored copy ----------------------------------------------------------------------

function subject(patch: Patch): string {
  const [, text] = /^Subject: (.*)$/m.exec(patch.header) ?? [];
  if (text === undefined) throw new Error("Cannot read the patch's subject: no Subject: line");
  return text;
}

/** vendor/postgres/README.md, from the manifest and the patch subjects. */
export function readme(manifest: Manifest, patches: readonly Patch[]): string {
  const { package: name, version } = manifest;
  return [
    `# Vendored postgres.js ${version}`,
    "",
    `Generated by \`deno task vendor\`; do not edit. These are the \`src/\` files of the npm`,
    `tarball of [postgres.js](${manifest.repository}) ${version} (released under the`,
    `${manifest.license}) with the patches in \`../postgres_patches/\` applied in order. To change a file,`,
    "change or add a patch and run `deno task vendor`; `deno task ok` fails while this folder",
    "differs from that rebuild. Why each patch exists, its upstream issue and its test, and how",
    "to move to a new upstream version: `docs/vendored-driver.md`.",
    "",
    `- Tarball: ${manifest.tarball}`,
    `- Integrity: \`${manifest.integrity}\``,
    `- sha256: \`${manifest.sha256}\``,
    "",
    "Patches:",
    "",
    ...patches.map((patch) => `- \`${patch.name}\`: ${subject(patch)}`),
    "",
    "Only `../../_driver_pg.ts` and `../../_driver_types.ts` (and `../../vendor_postgres_test.ts`)",
    "import this copy. Its types come from the npm package, pinned to the same version",
    `(\`npm:${name}@${version}\`).`,
    "",
  ].join("\n");
}

/** The patches of the manifest, read and parsed. */
export async function readPatches(
  manifest: Manifest,
  dir: URL = PATCH_DIR,
): Promise<Patch[]> {
  return await Promise.all(
    manifest.patches.map(async (name) =>
      parsePatch(name, await Deno.readTextFile(new URL(name, dir)))
    ),
  );
}

/** The package's src/ files (path → text) with the first `upto` patches applied. */
export async function build(
  manifest: Manifest,
  patches: readonly Patch[],
  options: { readonly tarball?: string; readonly upto?: number } = {},
): Promise<Map<string, string>> {
  const sources = packageSources(await untgz(await loadTarball(manifest, options.tarball)));
  for (const patch of patches.slice(0, options.upto ?? patches.length)) {
    applyPatch(sources, patch);
  }
  return sources;
}

/** What vendor/postgres/ holds: the patched src/ files (flattened) and the README. */
function vendored(
  manifest: Manifest,
  patches: readonly Patch[],
  sources: Map<string, string>,
): Map<string, string> {
  const files = new Map<string, string>();
  for (const [path, text] of [...sources].sort(([a], [b]) => a < b ? -1 : 1)) {
    files.set(path.slice("src/".length), text);
  }
  files.set("README.md", readme(manifest, patches));
  return files;
}

async function readTree(dir: URL, base = ""): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(new URL(base, dir))) {
    if (entry.name.startsWith(".")) continue; // .DS_Store and the like
    const path = base + entry.name;
    if (entry.isDirectory) {
      for (const [p, t] of await readTree(dir, `${path}/`)) files.set(p, t);
    } else {
      files.set(path, await Deno.readTextFile(new URL(path, dir)));
    }
  }
  return files;
}

/** How `actual` (the vendored files) differs from `expected` (the rebuild); empty if not. */
export function differences(
  expected: Map<string, string>,
  actual: Map<string, string>,
): string[] {
  const out: string[] = [];
  for (const [path, text] of expected) {
    const have = actual.get(path);
    if (have === undefined) {
      out.push(`${path}: missing`);
    } else if (have !== text) {
      const a = have.split("\n");
      const b = text.split("\n");
      let line = 0;
      while (a[line] === b[line]) line++;
      out.push(
        `${path}: line ${line + 1} differs`,
        `  vendored: ${a[line] ?? "(end of file)"}`,
        `  rebuilt:  ${b[line] ?? "(end of file)"}`,
      );
    }
  }
  for (const path of actual.keys()) {
    if (!expected.has(path)) out.push(`${path}: not part of the rebuild`);
  }
  return out;
}

async function writeTree(dir: URL, files: Map<string, string>, prune: boolean): Promise<number> {
  let changed = 0;
  if (prune) {
    for (const path of (await readTree(dir)).keys()) {
      if (!files.has(path)) {
        await Deno.remove(new URL(path, dir));
        changed++;
      }
    }
  }
  for (const [path, text] of files) {
    const url = new URL(path, dir);
    const old = await Deno.readTextFile(url).catch(() => undefined);
    if (old === text) continue;
    await Deno.mkdir(new URL(".", url), { recursive: true });
    await Deno.writeTextFile(url, text);
    changed++;
  }
  return changed;
}

interface Args {
  readonly check: boolean;
  readonly tarball?: string;
  readonly out?: string;
  readonly upto?: number;
}

function parseArgs(args: readonly string[]): Args {
  const out: { check: boolean; tarball?: string; out?: string; upto?: number } = {
    check: false,
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split(/=(.*)/s, 2);
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new TypeError(`Cannot parse "${flag}": it needs a value`);
      return v;
    };
    if (flag === "--check") out.check = true;
    else if (flag === "--tarball") out.tarball = value();
    else if (flag === "--out") out.out = value();
    else if (flag === "--upto") {
      const v = value();
      if (!/^\d+$/.test(v)) throw new TypeError(`Cannot parse "--upto ${v}": not a count`);
      out.upto = Number(v);
    } else throw new TypeError(`Cannot parse "${args[i]}": unknown argument`);
  }
  if (out.upto !== undefined && out.out === undefined) {
    throw new TypeError(
      `Cannot parse "--upto": it goes with --out (vendor/postgres/ has them all)`,
    );
  }
  if (out.check && out.out !== undefined) {
    throw new TypeError(`Cannot parse "--check": it compares vendor/postgres/, not --out`);
  }
  return out;
}

async function main(args: readonly string[]): Promise<number> {
  const options = parseArgs(args);
  const manifest = await readManifest();
  const patches = await readPatches(manifest);
  if (options.upto !== undefined && options.upto > patches.length) {
    throw new RangeError(`Cannot apply ${options.upto} patches: there are ${patches.length}`);
  }
  const what = `${manifest.package} ${manifest.version} with ${
    options.upto ?? patches.length
  } of its ${patches.length} patches`;
  const sources = await build(manifest, patches, options);
  if (options.out !== undefined) {
    const dir = new URL(`${options.out.replace(/\/?$/, "/")}`, `file://${Deno.cwd()}/`);
    const existing = await readTree(dir).catch(() => new Map());
    if (existing.size > 0) {
      throw new Error(`Cannot write to "${options.out}": the directory is not empty`);
    }
    await writeTree(dir, sources, false);
    console.log(`${options.out}/src/: ${what}`);
    return 0;
  }
  const files = vendored(manifest, patches, sources);
  if (options.check) {
    const diff = differences(files, await readTree(TARGET));
    if (diff.length > 0) {
      console.error(
        `vendor/postgres/ is not the rebuild of ${what}:\n  ${
          diff.join("\n  ")
        }\nChange a patch (docs/vendored-driver.md) and run \`deno task vendor\`.`,
      );
      return 1;
    }
    console.log(`vendor/postgres/ is the rebuild of ${what}`);
    return 0;
  }
  const changed = await writeTree(TARGET, files, true);
  console.log(
    `vendor/postgres/: rebuilt from ${what} (${changed} file${changed === 1 ? "" : "s"} changed)`,
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
