// Generates the synchronous twins from their async sources, as psycopg 3 does with
// `tools/async_to_sync.py`: the async side is the one written by hand, the sync side follows.
//
//   crud/async_table.ts                          → crud/table.ts
//   async_migration.ts                           → migration.ts
//   AsyncQueryable's public methods (_async_queryable.ts)
//                                                → the generated region of Queryable (_queryable.ts)
//
// Usage: deno task sync           writes the generated files
//        deno task sync --check   exits 1, with a summary, when a generated file differs from
//                                 what this script produces (part of `deno task ok`)
//
// The code is rewritten on TypeScript's syntax tree (npm:typescript, pinned here and used by this
// script only: it is not a dependency of the package): `async` and `await` go, `Promise<T>`
// becomes `T`, `Promise.all(x)` and `Promise.resolve(x)` become `x`, `for await` becomes `for`,
// `AsyncX` names become `X` (`AsyncGenerator`, `AsyncDisposable`, `AsyncTable`, …),
// `Symbol.asyncDispose` becomes `Symbol.dispose`, the Deno file calls become their `…Sync`
// forms, `runAsync`/`sleep` (`_steps.ts`) become `runSync`/`sleepSync`, `readMigrationDir`/
// `writeMigrationFile` (`_migration/disk.ts`) their `…Sync` twins, and module paths point
// to the sync modules. Comments and strings get the same renames as prose (with "an
// `AsyncDatabase`" becoming "a `Database`"), and the code blocks of doc comments are rewritten
// as code. The output is formatted with `deno fmt`.
//
// Where the twins must differ, the async source holds both variants, the sync one commented
// out, between marker lines:
//
//   // #if async            // #if sync
//   …async code…            // …sync code…
//   // #else                // #endif
//   // …sync code…
//   // #endif
import ts from "npm:typescript@6.0.3";

const ROOT = new URL("../", import.meta.url);

/** Identifiers renamed in code (and in prose where they appear as words). */
const RENAMES: ReadonlyMap<string, string> = new Map([
  ["asyncDispose", "dispose"],
  ["runAsync", "runSync"],
  ["sleep", "sleepSync"],
  // `_migration/disk.ts`: the file system of the migration runners.
  ["readMigrationDir", "readMigrationDirSync"],
  ["writeMigrationFile", "writeMigrationFileSync"],
]);

/** `Deno.<name>` calls that have a `Deno.<name>Sync` twin. */
const DENO_SYNC: ReadonlySet<string> = new Set([
  "makeTempDir",
  "makeTempFile",
  "readDir",
  "readTextFile",
  "readFile",
  "writeTextFile",
  "writeFile",
  "mkdir",
  "remove",
  "stat",
  "lstat",
  "realPath",
]);

/** Module paths of the async modules and their sync twins. */
const MODULES: readonly (readonly [string, string])[] = [
  ["@manticore/cockroachdb/async-database", "@manticore/cockroachdb/database"],
  ["@manticore/cockroachdb/async-migration", "@manticore/cockroachdb/migration"],
  ["_async_queryable.ts", "_queryable.ts"],
  ["async_database.ts", "database.ts"],
  ["async_migration.ts", "migration.ts"],
  ["async_table.ts", "table.ts"],
];

/** Marks the end of a removed keyword: the whitespace after it goes too. */
const GONE = "\u0000";

// ---------------------------------------------------------------------------------------------
// Markers

const MARKER = /^\s*\/\/ #(if async|if sync|else|endif)\s*$/;
const COMMENTED = /^(\s*)\/\/ ?(.*)$/;

/** Keeps the sync variant of each marked region: the async lines go, the sync ones are uncommented. */
export function selectSync(text: string, path: string): string {
  const out: string[] = [];
  let mode: "both" | "async" | "sync" = "both";
  let opened = 0;
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    const where = `${path}:${i + 1}`;
    const marker = MARKER.exec(line)?.[1];
    if (marker === "if async" || marker === "if sync") {
      if (mode !== "both") throw new Error(`Cannot nest marker regions at ${where}`);
      mode = marker === "if async" ? "async" : "sync";
      opened = i + 1;
    } else if (marker === "else") {
      if (mode !== "async") {
        throw new Error(`Cannot use "// #else" outside "// #if async" at ${where}`);
      }
      mode = "sync";
    } else if (marker === "endif") {
      if (mode === "both") throw new Error(`Cannot close a region that is not open at ${where}`);
      mode = "both";
    } else if (mode === "both") {
      out.push(line);
    } else if (mode === "sync") {
      const [, indent, code] = COMMENTED.exec(line) ?? [];
      if (indent === undefined || code === undefined) {
        throw new Error(
          `Cannot read the sync line at ${where}: sync lines are commented out (// …)`,
        );
      }
      out.push(code === "" ? "" : indent + code);
    }
  });
  if (mode !== "both") {
    throw new Error(`Cannot find the "// #endif" of the region at ${path}:${opened}`);
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Prose: comments and strings

function article(original: string, word: string): string {
  const vowel = /^[AEIOU]/i.test(word);
  const lower = vowel ? "an" : "a";
  return original[0] === "A" ? lower.charAt(0).toUpperCase() + lower.slice(1) : lower;
}

/** Renames in text that is not code: comments, strings, the prose of doc comments. */
export function syncProse(text: string): string {
  let out = text;
  for (const [from, to] of MODULES) out = out.replaceAll(from, to);
  out = out.replace(
    /\b(an|An|a|A) ((?:\{@linkcode |`)?)Async([A-Z]\w*)/g,
    (_, a: string, prefix: string, rest: string) => `${article(a, rest)} ${prefix}${rest}`,
  );
  out = out.replace(
    /\b(an|An|a|A) async ([a-z]\w*)/g,
    (_, a: string, rest: string) => `${article(a, rest)} ${rest}`,
  );
  out = out.replace(/\b(?<![\w$])Async(?=[A-Z])/g, "");
  out = out.replace(/\bSymbol\.asyncDispose\b/g, "Symbol.dispose");
  // Inline code: `await db.close()`, `await using db = …`.
  out = out.replace(
    /`([^`\n]*\b(?:await|async)\b[^`\n]*)`/g,
    (_, code: string) =>
      "`" + code.replace(/\bawait\s+/g, "").replace(/\basync\s+(?=\(|function\b|\*)/g, "") + "`",
  );
  for (const [from, to] of RENAMES) {
    if (from !== "sleep") out = out.replace(new RegExp(`\\b${from}\\b`, "g"), to);
  }
  return out;
}

const FENCE_OPEN = /^```(ts|typescript|js|javascript)\b/;

/** A comment's sync form; the code blocks of a doc comment are rewritten as code. */
function syncComment(comment: string): string {
  if (!comment.startsWith("/*")) return syncProse(comment);
  const lines = comment.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const prefix = /^\s*\*( |$)/.exec(line)?.[0] ?? "";
    const content = line.slice(prefix.length);
    out.push(prefix + syncProse(content));
    if (!FENCE_OPEN.test(content)) continue;
    const code: string[] = [];
    let end = i + 1;
    for (; end < lines.length; end++) {
      const inner = lines[end]!;
      const p = /^\s*\*( |$)/.exec(inner)?.[0] ?? "";
      if (inner.slice(p.length).startsWith("```")) break;
      code.push(inner.slice(p.length));
    }
    const margin = prefix.endsWith(" ") ? prefix : prefix + " ";
    for (const line of syncCode(code.join("\n")).split("\n")) {
      out.push(line === "" ? margin.trimEnd() : margin + line);
    }
    i = end - 1;
  }
  return out.join("\n");
}

function syncTrivia(trivia: string): string {
  return trivia.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, syncComment);
}

// ---------------------------------------------------------------------------------------------
// Code

/** An expression that needs no parentheses once the `await` in front of it is gone. */
function isTight(node: ts.Expression): boolean {
  return ts.isIdentifier(node) || ts.isPropertyAccessExpression(node) ||
    ts.isElementAccessExpression(node) || ts.isCallExpression(node) ||
    node.kind === ts.SyntaxKind.ThisKeyword || ts.isNonNullExpression(node);
}

function isPromiseMember(node: ts.Node, names: readonly string[]): node is ts.CallExpression {
  return ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) &&
    ts.isIdentifier(node.expression.expression) && node.expression.expression.text === "Promise" &&
    names.includes(node.expression.name.text);
}

function renameIdentifier(node: ts.Identifier): string {
  const name = node.text;
  const parent = node.parent;
  if (
    DENO_SYNC.has(name) && parent !== undefined && ts.isPropertyAccessExpression(parent) &&
    parent.name === node && ts.isIdentifier(parent.expression) && parent.expression.text === "Deno"
  ) {
    return `${name}Sync`;
  }
  return RENAMES.get(name) ?? name.replace(/Async(?=[A-Z])/g, "");
}

/** Rewrites TypeScript source as the sync twin; `replace` swaps the text of chosen nodes. */
class Rewriter {
  readonly #source: ts.SourceFile;
  readonly #text: string;
  readonly #replace: ReadonlyMap<ts.Node, string>;

  constructor(source: ts.SourceFile, replace: ReadonlyMap<ts.Node, string> = new Map()) {
    this.#source = source;
    this.#text = source.text;
    this.#replace = replace;
  }

  /** The sync text of `node`, its leading trivia included. */
  emit(node: ts.Node): string {
    // deno-lint-ignore no-control-regex -- GONE is a control character on purpose
    return this.#emit(node).replace(/\u0000\s*/g, "");
  }

  #lead(node: ts.Node): string {
    return syncTrivia(this.#text.slice(node.pos, node.getStart(this.#source)));
  }

  #emit(node: ts.Node): string {
    const replacement = this.#replace.get(node);
    if (replacement !== undefined) return this.#lead(node) + replacement;
    // `(await x).y` → `x.y`
    if (
      ts.isParenthesizedExpression(node) && ts.isAwaitExpression(node.expression) &&
      isTight(node.expression.expression) && !ts.isNewExpression(node.parent)
    ) {
      return this.#lead(node) + GONE + this.#emit(node.expression.expression);
    }
    // Promise<T> → T
    if (
      ts.isTypeReferenceNode(node) && ts.isIdentifier(node.typeName) &&
      (node.typeName.text === "Promise" || node.typeName.text === "PromiseLike") &&
      node.typeArguments?.length === 1
    ) {
      return this.#lead(node) + GONE + this.#emit(node.typeArguments[0]!); // length 1, above
    }
    // Promise.all(x), Promise.resolve(x) → x
    if (isPromiseMember(node, ["all", "resolve"]) && node.arguments.length <= 1) {
      const argument = node.arguments[0];
      return this.#lead(node) +
        (argument === undefined ? "undefined" : GONE + this.#emit(argument));
    }
    const children = node.getChildren(this.#source).filter((child) => !ts.isJSDoc(child));
    if (children.length === 0) return this.#token(node);
    let out = "";
    let pos = node.pos;
    for (const child of children) {
      out += syncTrivia(this.#text.slice(pos, child.pos)) + this.#emit(child);
      pos = child.end;
    }
    return out + syncTrivia(this.#text.slice(pos, node.end));
  }

  #token(node: ts.Node): string {
    const lead = this.#lead(node);
    const text = this.#text.slice(node.getStart(this.#source), node.end);
    switch (node.kind) {
      case ts.SyntaxKind.AsyncKeyword:
      case ts.SyntaxKind.AwaitKeyword:
        return lead + GONE;
      case ts.SyntaxKind.Identifier:
        return lead + renameIdentifier(node as ts.Identifier);
      case ts.SyntaxKind.StringLiteral:
      case ts.SyntaxKind.NoSubstitutionTemplateLiteral:
      case ts.SyntaxKind.TemplateHead:
      case ts.SyntaxKind.TemplateMiddle:
      case ts.SyntaxKind.TemplateTail:
        return lead + syncProse(text);
      default:
        return lead + text;
    }
  }
}

function parse(text: string, name = "source.ts"): ts.SourceFile {
  return ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
}

/** The sync twin of a piece of TypeScript (a module, or the code of a doc example). */
export function syncCode(text: string): string {
  const source = parse(text);
  return new Rewriter(source).emit(source);
}

// ---------------------------------------------------------------------------------------------
// The generated region of Queryable

function isPublicMethod(member: ts.ClassElement): member is ts.MethodDeclaration {
  if (!ts.isMethodDeclaration(member) || ts.isPrivateIdentifier(member.name)) return false;
  const hidden = [
    ts.SyntaxKind.PrivateKeyword,
    ts.SyntaxKind.ProtectedKeyword,
    ts.SyntaxKind.StaticKeyword,
  ];
  return !(member.modifiers ?? []).some((m) => hidden.includes(m.kind));
}

/**
 * The public methods of `AsyncQueryable`, as `Queryable`'s: same signatures, overloads and docs
 * with the promises unwrapped, each body one call through the channel to the worker.
 */
export function queryableMethods(asyncQueryable: string): string {
  const source = parse(selectSync(asyncQueryable, QUERYABLE_SOURCE));
  const cls = source.statements.find((s): s is ts.ClassDeclaration =>
    ts.isClassDeclaration(s) && s.name?.text === "AsyncQueryable"
  );
  if (cls === undefined) throw new Error(`Cannot find class AsyncQueryable in ${QUERYABLE_SOURCE}`);
  const methods = cls.members.filter(isPublicMethod);
  const replace = new Map<ts.Node, string>();
  for (const method of methods) {
    if (method.body === undefined) continue;
    const name = method.name.getText(source);
    const args = method.parameters.map((p) => {
      if (!ts.isIdentifier(p.name) || p.dotDotDotToken) {
        throw new Error(`Cannot forward ${name}(): its parameters must be plain names`);
      }
      return p.name.text;
    });
    const overloaded = methods.some((m) => m !== method && m.name.getText(source) === name);
    const types = method.typeParameters?.map((t) => t.name.text) ?? [];
    const returns = method.type === undefined
      ? "unknown"
      : new Rewriter(source).emit(method.type).trim();
    let call: string;
    if (method.asteriskToken !== undefined) {
      // A generator (stream): the channel has the method of the same name.
      const typeArgs = types.length === 0 ? "" : `<${types.join(", ")}>`;
      call = `yield* this.#channel.${name}${typeArgs}(${args.join(", ")});`;
    } else {
      const list = `[${args.join(", ")}]`;
      const argsOf = overloaded ? `${list} as Parameters<AsyncQueryable["${name}"]>` : list;
      const invoke = `this.#channel.invoke("${name}", ${argsOf})`;
      const cast = types.length > 0 || overloaded ? ` as ${returns}` : "";
      call = returns === "void" ? `${invoke};` : `return ${invoke}${cast};`;
    }
    replace.set(method.body, ` {\n    ${call}\n  }`);
  }
  const rewriter = new Rewriter(source, replace);
  return methods.map((m) => rewriter.emit(m)).join("") + "\n";
}

// ---------------------------------------------------------------------------------------------
// Files

function header(from: string): string {
  return `// Generated from ${from} by scripts/async_to_sync.ts: do not edit by hand. Change the
// async source and run \`deno task sync\`; \`deno task ok\` fails while this file differs.
`;
}

/** The module of `AsyncQueryable`, and the module whose region holds `Queryable`'s methods. */
const QUERYABLE_SOURCE = "_async_queryable.ts";
const QUERYABLE_TARGET = "_queryable.ts";

const REGION_NOTE = "  // Do not edit by hand: change AsyncQueryable and run `deno task sync`.\n";

const REGION_OPEN = /^ *\/\/ #region generated from AsyncQueryable by scripts\/async_to_sync\.ts$/m;
const REGION_CLOSE = /^ *\/\/ #endregion generated$/m;

async function read(path: string): Promise<string> {
  return await Deno.readTextFile(new URL(path, ROOT));
}

async function format(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "ts", "-"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(`Cannot format the generated code: ${new TextDecoder().decode(stderr)}`);
  }
  return new TextDecoder().decode(stdout);
}

/** Each generated file and the text it should have. */
async function generate(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (
    const [from, to] of [["crud/async_table.ts", "crud/table.ts"], [
      "async_migration.ts",
      "migration.ts",
    ]] as const
  ) {
    const text = selectSync(await read(from), from);
    files.set(to, await format(header(from) + syncCode(text)));
  }
  const target = await read(QUERYABLE_TARGET);
  const open = REGION_OPEN.exec(target);
  const close = REGION_CLOSE.exec(target);
  if (open === null || close === null || close.index < open.index) {
    throw new Error(`Cannot find the generated region of Queryable in ${QUERYABLE_TARGET}`);
  }
  const start = open.index + open[0].length;
  const region = queryableMethods(await read(QUERYABLE_SOURCE));
  files.set(
    QUERYABLE_TARGET,
    await format(
      target.slice(0, start) + "\n" + REGION_NOTE + region + target.slice(close.index),
    ),
  );
  return files;
}

/** Lines only in `a` and only in `b` (a longest-common-subsequence diff), for the summary. */
function diffLines(
  a: readonly string[],
  b: readonly string[],
): { removed: string[]; added: string[] } {
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  // The length of the longest common subsequence of a[i…] and b[j…]: 0 past the end of either.
  const common = (i: number, j: number): number => lcs[i]?.[j] ?? 0;
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i]!;
    for (let j = m - 1; j >= 0; j--) {
      row[j] = a[i] === b[j]
        ? common(i + 1, j + 1) + 1
        : Math.max(common(i + 1, j), common(i, j + 1));
    }
  }
  const removed: string[] = [];
  const added: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++;
      j++;
    } else if (j < m && (i === n || common(i, j + 1) >= common(i + 1, j))) {
      added.push(`${j + 1}: ${b[j++]}`);
    } else {
      removed.push(`${i + 1}: ${a[i++]}`);
    }
  }
  return { removed, added };
}

async function main(): Promise<number> {
  const check = Deno.args.includes("--check");
  const unknown = Deno.args.filter((a) => a !== "--check");
  if (unknown.length > 0) {
    console.error(`Cannot run async_to_sync: unknown argument "${unknown[0]}" (only --check)`);
    return 2;
  }
  const files = await generate();
  let stale = 0;
  for (const [path, expected] of files) {
    let actual = "";
    try {
      actual = await read(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (actual === expected) continue;
    if (!check) {
      await Deno.writeTextFile(new URL(path, ROOT), expected);
      console.log(`wrote ${path}`);
      continue;
    }
    stale++;
    const { removed, added } = diffLines(actual.split("\n"), expected.split("\n"));
    console.error(
      `${path} differs from what scripts/async_to_sync.ts generates: ${removed.length} line(s) only in the file, ${added.length} only in the generated text`,
    );
    for (const line of removed.slice(0, 5)) console.error(`  - ${line}`);
    for (const line of added.slice(0, 5)) console.error(`  + ${line}`);
  }
  if (stale > 0) {
    console.error(
      "Generated files are edited by changing their async source, then `deno task sync`.",
    );
    return 1;
  }
  if (check) console.log(`${files.size} generated files are up to date`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
