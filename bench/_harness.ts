// The measuring loop shared by every case: warm-up, interleaved rounds, medians, ratios.
// A case is a fixed amount of work run by several variants (the library, and the tools a user
// would pick instead); each round runs every variant once, in an order rotated by one each
// round, so that drift of the machine (other processes, the server's caches, the heap) falls on
// all of them alike.
import process from "node:process";

/** What one run of a variant measured. */
export interface Sample {
  /** Wall time of the work, in milliseconds. */
  readonly ms: number;
  /** CPU time of this process (user + system, all threads) over the work, in milliseconds. */
  readonly cpuMs?: number;
  /** Operations done (statements, transactions committed, rows). */
  readonly ops: number;
  /** Transaction retries seen (contended transactions). */
  readonly retries?: number;
  /** Peak RSS growth over the run, in MiB (streams). */
  readonly peakRssMiB?: number;
  /** Heap still in use after the run and a full GC, minus before, in MiB (streams). */
  readonly liveHeapMiB?: number;
  /** Share of the whole machine's CPU time that was busy during the run (Linux only). */
  readonly machineBusy?: number;
}

/** One way of doing a case's work. */
export interface Variant {
  /** Stable id, used in the JSON and the goals. */
  readonly id: string;
  /** What is measured, as shown in the table. */
  readonly label: string;
  /** Runs `work` units of work and says how long it took. */
  run(work: number): Promise<Sample>;
}

/** A comparison: the same work done by each variant. */
export interface Case {
  readonly id: string;
  readonly title: string;
  /** What one operation is, for the rate column: "query", "row", "tx". */
  readonly unit: string;
  /** Work per run, full and `--quick`. */
  readonly work: number;
  readonly quickWork: number;
  /** Rounds, full and `--quick`. */
  readonly rounds: number;
  readonly quickRounds: number;
  /** Work of the unrecorded warm-up run of each variant; 0 skips the warm-up. */
  readonly warmupWork: number;
  readonly variants: readonly Variant[];
  /** Untimed preparation before every run (e.g. `TRUNCATE`). */
  readonly beforeEach?: () => Promise<void>;
}

/** The medians of one variant. */
export interface VariantResult {
  readonly id: string;
  readonly label: string;
  /** Median wall time of one run, in milliseconds. */
  readonly medianMs: number;
  /** Operations per second at the median run. */
  readonly perSecond: number;
  /** Median time per operation, in microseconds. */
  readonly microsPerOp: number;
  /** Median client CPU time per operation, in microseconds, when measured. */
  readonly cpuMicrosPerOp?: number;
  /**
   * This variant's time ÷ the first variant's (the library's) in the same round: the median
   * over rounds, and the lower and upper quartiles of those per-round ratios.
   */
  readonly timeVsFirst: Spread;
  /** Median retries per run, when counted. */
  readonly medianRetries?: number;
  /** Largest peak RSS growth of any run, in MiB, when measured. */
  readonly peakRssMiB?: number;
  /** Largest live heap growth after the run, in MiB, when measured. */
  readonly liveHeapMiB?: number;
  /** Median share of the machine's CPU that was busy, when measured. */
  readonly machineBusy?: number;
  /** Every run, in round order. */
  readonly samples: readonly Sample[];
  /** Work per run. */
  readonly work: number;
}

/** The outcome of one case. */
export interface CaseResult {
  readonly id: string;
  readonly title: string;
  readonly unit: string;
  readonly rounds: number;
  readonly variants: VariantResult[];
}

/** A median with its quartiles. */
export interface Spread {
  readonly median: number;
  readonly q1: number;
  readonly q3: number;
}

// The item at `index` of a sorted list; an empty list has no quantiles.
function at(sorted: readonly number[], index: number): number {
  const value = sorted[index];
  if (value === undefined) {
    throw new RangeError(`Cannot take item ${index} of a list of ${sorted.length} values`);
  }
  return value;
}

/** The value at quantile `q` (0…1) of a non-empty list, interpolated. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return at(sorted, lo) + (at(sorted, hi) - at(sorted, lo)) * (pos - lo);
}

/** Median and quartiles of a non-empty list. */
export function spread(values: readonly number[]): Spread {
  return { median: median(values), q1: quantile(values, 0.25), q3: quantile(values, 0.75) };
}

/** Per-round ratios of two variants' times (`a` ÷ `b`), runs paired by round. */
export function pairedRatio(a: readonly Sample[], b: readonly Sample[]): Spread {
  return spread(zip(a, b).map(([x, y]) => x.ms / y.ms));
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? at(sorted, mid) : (at(sorted, mid - 1) + at(sorted, mid)) / 2;
}

/** The items of `a` and `b` paired by index, as many pairs as the shorter list has items. */
export function zip<A, B>(a: readonly A[], b: readonly B[]): [A, B][] {
  const n = Math.min(a.length, b.length);
  // Below both lengths; a cast rather than a check, since an item may itself be undefined.
  return Array.from({ length: n }, (_, i) => [a[i] as A, b[i] as B]);
}

/** `items` rotated left by `by`: the order of round `by` when each round starts one later. */
export function rotated<T>(items: readonly T[], by: number): T[] {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Runs a case: warm-up, then `rounds` interleaved rounds. Progress goes to `log`. */
export async function runCase(
  c: Case,
  quick: boolean,
  log: (line: string) => void,
): Promise<CaseResult> {
  const work = quick ? c.quickWork : c.work;
  const rounds = quick ? c.quickRounds : c.rounds;
  if (c.warmupWork > 0) {
    for (const v of c.variants) {
      await c.beforeEach?.();
      await v.run(Math.min(c.warmupWork, work));
    }
  }
  const samples = new Map<string, Sample[]>(c.variants.map((v) => [v.id, []]));
  for (let round = 0; round < rounds; round++) {
    const order = rotated(c.variants, round);
    const parts: string[] = [];
    for (const v of order) {
      await c.beforeEach?.();
      const sample = await v.run(work);
      samples.get(v.id)!.push(sample);
      parts.push(`${v.id} ${sample.ms.toFixed(0)} ms`);
    }
    log(`  ${c.id} round ${round + 1}/${rounds}: ${parts.join(", ")}`);
  }
  const [firstVariant] = c.variants;
  if (firstVariant === undefined) throw new RangeError(`Cannot run case "${c.id}": no variants`);
  const first = samples.get(firstVariant.id)!;
  const optional = (list: Sample[], key: keyof Sample) =>
    list.filter((s) => s[key] !== undefined).map((s) => s[key] as number);
  return {
    id: c.id,
    title: c.title,
    unit: c.unit,
    rounds,
    variants: c.variants.map((v) => {
      const list = samples.get(v.id)!;
      const medianMs = median(list.map((s) => s.ms));
      const ops = median(list.map((s) => s.ops));
      const retries = optional(list, "retries");
      const rss = optional(list, "peakRssMiB");
      const live = optional(list, "liveHeapMiB");
      const busy = optional(list, "machineBusy");
      const cpu = list.filter((s) => s.cpuMs !== undefined).map((s) => (s.cpuMs! * 1000) / s.ops);
      return {
        id: v.id,
        label: v.label,
        medianMs,
        perSecond: ops / (medianMs / 1000),
        microsPerOp: (medianMs * 1000) / ops,
        timeVsFirst: pairedRatio(list, first),
        ...(cpu.length ? { cpuMicrosPerOp: median(cpu) } : {}),
        ...(retries.length ? { medianRetries: median(retries) } : {}),
        ...(rss.length ? { peakRssMiB: Math.max(...rss) } : {}),
        ...(live.length ? { liveHeapMiB: Math.max(...live) } : {}),
        ...(busy.length ? { machineBusy: median(busy) } : {}),
        samples: list,
        work,
      };
    }),
  };
}

/** Busy and total CPU ticks of the whole machine, from /proc/stat (undefined elsewhere). */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0] ?? "";
    const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const [, , , idle, iowait] = t;
    if (idle === undefined || iowait === undefined) return undefined;
    const total = t.reduce((a, b) => a + b, 0);
    return { busy: total - idle - iowait, total };
  } catch {
    return undefined;
  }
}

function busyShare(
  before: ReturnType<typeof machineTicks>,
  after: ReturnType<typeof machineTicks>,
): { machineBusy?: number } {
  if (!before || !after || after.total === before.total) return {};
  return { machineBusy: (after.busy - before.busy) / (after.total - before.total) };
}

/** Times an async function that answers how many operations it did. */
export async function timed(fn: () => Promise<number>): Promise<Sample> {
  const ticks = machineTicks();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const ops = await fn();
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { ms, ops, cpuMs: (used.user + used.system) / 1000, ...busyShare(ticks, machineTicks()) };
}

/** Times a synchronous function that answers how many operations it did. */
export function timedSync(fn: () => number): Promise<Sample> {
  const ticks = machineTicks();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const ops = fn();
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return Promise.resolve({
    ms,
    ops,
    cpuMs: (used.user + used.system) / 1000,
    ...busyShare(ticks, machineTicks()),
  });
}

/** Formats a number with thousands separators and `digits` decimals. */
export function fmt(value: number, digits = 0): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A deterministic pseudo-random sequence of ids in `[1, n]` (same for every variant). */
export function idSequence(length: number, n: number, seed = 12345): Int32Array {
  const ids = new Int32Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    ids[i] = (x % n) + 1;
  }
  return ids;
}

/** Reads `ids` round and round (its length a power of two): each call answers the next id. */
export function cycle(ids: Int32Array): () => number {
  const mask = ids.length - 1;
  if (ids.length === 0 || (ids.length & mask) !== 0) {
    throw new RangeError(`Cannot cycle through ${ids.length} ids: not a power of two`);
  }
  let cursor = 0;
  return () => ids[cursor++ & mask]!; // masked below the length
}

/**
 * A bench script's command line: `parse` (a strict `parseArgs` whose options include `help`) run
 * with the script's usage; prints `help` and exits 0 on `--help`, exits 2 with the parser's
 * message and `help` on anything it does not know.
 */
export function benchArgs<T extends { help?: boolean }>(parse: () => T, help: string): T {
  let values: T;
  try {
    values = parse();
  } catch (error) {
    console.error(`Cannot run the bench: ${(error as Error).message}\n\n${help}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(help);
    Deno.exit(0);
  }
  return values;
}

/** The values of a repeatable, comma-separated option (`--only a,b --only c`). */
export function listArg(values: readonly string[] | undefined): string[] | undefined {
  return values?.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
}
