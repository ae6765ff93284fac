// The OpenTelemetry case of `deno task bench`: the sequential point select with OpenTelemetry
// off and on, each in a process of its own (`_otel_child.ts`), since Deno registers its
// providers per process (`OTEL_DENO=true`). The "on" process exports with Deno's defaults
// (OTLP over HTTP, protobuf) to a sink on loopback in the bench's process. With a baseline
// revision, a third process runs the same loop on the package as it was then, OpenTelemetry
// off: the cost of the observer when nothing is registered, measured in the same run.
import type { OtlpReceiver } from "../_test_otlp.ts";
import type { Case, Sample, Variant } from "./_harness.ts";

/** What the case needs to start its processes. */
export interface OtelCaseOptions {
  /** The package's directory (this checkout). */
  readonly root: string;
  /** The bench database, with the accounts table filled. */
  readonly url: string;
  /** The sink the "on" process exports to. */
  readonly receiver: OtlpReceiver;
  /** A git revision of the package to compare the "off" process with, if any. */
  readonly baseline?: string;
  /** A scratch directory for the baseline's files. */
  readonly tmpDir: string;
}

/** The case, and how to end its processes. */
export interface OtelCase extends AsyncDisposable {
  readonly case: Case;
}

const CHILD = new URL("./_otel_child.ts", import.meta.url).pathname;

/** One child process running point selects on request. */
class PointProcess {
  readonly #process: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  readonly #errors: Promise<string>;

  constructor(root: string, url: string, env: Record<string, string>) {
    this.#process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${root}/deno.json`, CHILD, root, url],
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#process.stdin.getWriter();
    this.#lines = lines(this.#process.stdout)[Symbol.asyncIterator]();
    this.#errors = new Response(this.#process.stderr).text();
  }

  async run(n: number): Promise<Sample> {
    await this.#writer.write(new TextEncoder().encode(`run ${n}\n`));
    const next = await this.#lines.next();
    if (next.done) {
      throw new Error(`Cannot run the point selects: the process ended: ${await this.#errors}`);
    }
    return JSON.parse(next.value) as Sample;
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const status = await this.#process.status;
    await this.#lines.return?.();
    const errors = await this.#errors;
    if (!status.success) throw new Error(`The point-select process failed: ${errors}`);
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
}

/** The variables every child gets: what Deno needs, and no OpenTelemetry setting of ours. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function git(args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `Cannot run "git ${args.join(" ")}": ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return out.stdout;
}

/** Extracts the package at `revision` into a directory of `tmpDir`; answers the directory. */
async function extract(root: string, revision: string, tmpDir: string): Promise<string> {
  const commit = new TextDecoder().decode(
    await git(["-C", root, "rev-parse", "--verify", `${revision}^{commit}`]),
  ).trim();
  const dir = `${tmpDir}/baseline-${commit.slice(0, 12)}`;
  await Deno.mkdir(dir, { recursive: true });
  const tar = new Deno.Command("tar", { args: ["-x", "-C", dir], stdin: "piped" }).spawn();
  const writer = tar.stdin.getWriter();
  await writer.write(await git(["-C", root, "archive", "--format=tar", commit]));
  await writer.close();
  if (!(await tar.status).success) throw new Error(`Cannot extract ${revision} into ${dir}`);
  return dir;
}

/**
 * Starts the processes of the OpenTelemetry case: off, on, and the baseline when asked.
 *
 * @param options Where the package and the database are, the sink, the baseline.
 * @returns The case; dispose of it to end the processes.
 */
export async function startOtelCase(options: OtelCaseOptions): Promise<OtelCase> {
  const { root, url, receiver } = options;
  const processes: PointProcess[] = [];
  const variant = (id: string, label: string, process: PointProcess): Variant => {
    processes.push(process);
    return { id, label, run: (n) => process.run(n) };
  };
  const variants: Variant[] = [
    variant(
      "off",
      "library `queryOne(sql, [id])`, OpenTelemetry off (own process)",
      new PointProcess(root, url, { ...baseEnv(), OTEL_DENO: "false" }),
    ),
    variant(
      "on",
      "the same, `OTEL_DENO=true`, exporting OTLP/HTTP protobuf to loopback",
      new PointProcess(root, url, {
        ...baseEnv(),
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_SERVICE_NAME: "manticore-bench",
      }),
    ),
  ];
  if (options.baseline !== undefined) {
    const dir = await extract(root, options.baseline, options.tmpDir);
    variants.push(
      variant(
        "baseline",
        `the same, OpenTelemetry off, package at \`${options.baseline}\``,
        new PointProcess(dir, url, { ...baseEnv(), OTEL_DENO: "false" }),
      ),
    );
  }
  return {
    case: {
      id: "point-select-otel",
      title: "Sequential point select with OpenTelemetry off and on (one process each)",
      unit: "query",
      // Short rounds, many of them: each round's variants run close together in time, so that
      // the load of other processes falls on them alike.
      work: 300,
      quickWork: 300,
      rounds: 101,
      quickRounds: 3,
      warmupWork: 1000,
      variants,
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(processes.map((p) => p.close()));
    },
  };
}
