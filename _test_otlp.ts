// An OTLP/HTTP receiver for tests: serves `/v1/traces`, `/v1/metrics` and `/v1/logs` on
// loopback, accepts the `http/json` encoding (gzip or not), keeps every body as it came, and
// reads spans and metric points out of them. Not published.
//
// How Deno 2.9.6 exports, measured: with `OTEL_DENO=true`, `OTEL_EXPORTER_OTLP_PROTOCOL=
// http/json` and `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<port>`, it POSTs
// `application/json`, uncompressed, to `<endpoint>/v1/{traces,metrics,logs}`. Everything still
// buffered is sent when the process exits (the end of the main module, `Deno.exit()` or an
// uncaught error) and received before the child's exit status is; a killed process sends
// nothing. While it runs, spans go out every `OTEL_BSP_SCHEDULE_DELAY` ms (5000 by default)
// and metrics every `OTEL_METRIC_EXPORT_INTERVAL` ms (60000 by default). Observable instruments
// are read only for those periodic exports, never for the one on exit: a test of observed
// metrics keeps the process alive until a periodic export has brought them. `console` output
// is exported as logs (`OTEL_DENO_CONSOLE=capture` by default). Numbers given as span or metric
// attributes are sent as `doubleValue`, bigints as `intValue`; `traceId`/`spanId` are hex.

/** An attribute value as exported: `intValue` becomes a bigint, `doubleValue` a number. */
export type AttributeValue =
  | string
  | boolean
  | number
  | bigint
  | null
  | readonly AttributeValue[]
  | { readonly [key: string]: AttributeValue };

/** Attributes by key. */
export type AttributeMap = Readonly<Record<string, AttributeValue>>;

/** Which signal a request carried. */
export type Signal = "traces" | "metrics" | "logs";

/** One request as received. */
export interface OtlpRequest {
  /** The signal of its path. */
  readonly signal: Signal;
  /** The body, decompressed, as text: search it for what must not be exported. */
  readonly raw: string;
  /** The body, parsed. */
  readonly body: unknown;
}

/** The kind of a span, by its OTLP name. */
export type SpanKindName =
  | "UNSPECIFIED"
  | "INTERNAL"
  | "SERVER"
  | "CLIENT"
  | "PRODUCER"
  | "CONSUMER";

/** One exported span. */
export interface ExportedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** `""` for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: SpanKindName;
  readonly attributes: AttributeMap;
  readonly events: readonly { readonly name: string; readonly attributes: AttributeMap }[];
  readonly status: { readonly code: "UNSET" | "OK" | "ERROR"; readonly message: string };
  /** The instrumentation scope. */
  readonly scope: { readonly name: string; readonly version: string; readonly schemaUrl: string };
  readonly resource: AttributeMap;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
}

/** One data point of an exported metric. */
export interface MetricPoint {
  readonly metric: string;
  readonly unit: string;
  readonly type: "sum" | "gauge" | "histogram" | "exponentialHistogram" | "summary";
  /** For a sum: monotonic (a counter) or not (an up-down counter). */
  readonly monotonic: boolean | undefined;
  readonly attributes: AttributeMap;
  /** The value of a sum or gauge point. */
  readonly value: number | undefined;
  /** A histogram point's count, sum, bucket counts and bounds. */
  readonly count: number | undefined;
  readonly sum: number | undefined;
  readonly bucketCounts: readonly number[] | undefined;
  readonly explicitBounds: readonly number[] | undefined;
  readonly scope: { readonly name: string; readonly version: string };
}

const SIGNALS: Readonly<Record<string, Signal>> = {
  "/v1/traces": "traces",
  "/v1/metrics": "metrics",
  "/v1/logs": "logs",
};
const KINDS: readonly SpanKindName[] = [
  "UNSPECIFIED",
  "INTERNAL",
  "SERVER",
  "CLIENT",
  "PRODUCER",
  "CONSUMER",
];
const STATUS = ["UNSET", "OK", "ERROR"] as const;

// deno-lint-ignore no-explicit-any
type Json = any;

/** Reads an OTLP `AnyValue`. */
export function readAnyValue(value: Json): AttributeValue {
  if (value === undefined || value === null) return null;
  if ("stringValue" in value) return String(value.stringValue);
  if ("boolValue" in value) return Boolean(value.boolValue);
  if ("intValue" in value) return BigInt(value.intValue);
  if ("doubleValue" in value) return Number(value.doubleValue);
  if ("arrayValue" in value) return (value.arrayValue.values ?? []).map(readAnyValue);
  if ("kvlistValue" in value) return readAttributes(value.kvlistValue.values);
  if ("bytesValue" in value) return String(value.bytesValue);
  return null;
}

/** Reads an OTLP list of `KeyValue`s. */
export function readAttributes(list: Json): AttributeMap {
  const out: Record<string, AttributeValue> = {};
  for (const kv of list ?? []) out[kv.key] = readAnyValue(kv.value);
  return out;
}

function kindName(kind: Json): SpanKindName {
  if (typeof kind === "string") return kind.replace(/^SPAN_KIND_/, "") as SpanKindName;
  return KINDS[Number(kind ?? 0)] ?? "UNSPECIFIED";
}

function statusName(code: Json): "UNSET" | "OK" | "ERROR" {
  if (typeof code === "string") {
    return code.replace(/^STATUS_CODE_/, "") as "UNSET" | "OK" | "ERROR";
  }
  return STATUS[Number(code ?? 0)] ?? "UNSET";
}

/** True when every given attribute is present with an equal value. */
export function hasAttributes(actual: AttributeMap, wanted: AttributeMap): boolean {
  return Object.entries(wanted).every(([key, value]) => sameValue(actual[key], value));
}

function sameValue(a: AttributeValue | undefined, b: AttributeValue): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  return a === b;
}

/** What to look for: a name (or pattern) and attributes that must match. */
export interface SpanFilter {
  readonly name?: string | RegExp;
  readonly attributes?: AttributeMap;
  readonly kind?: SpanKindName;
  /** The instrumentation scope's name. */
  readonly scope?: string;
}

/**
 * The receiver. `start()` listens on 127.0.0.1 at a free port; `env()` gives the variables a
 * child process needs to export to it; `close()` (or `await using`) stops it.
 */
export class OtlpReceiver implements AsyncDisposable {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #requests: OtlpRequest[] = [];
  readonly #refused: string[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #keep: boolean;
  #count = 0;
  #bytes = 0;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>, keep: boolean) {
    this.#server = server;
    this.#keep = keep;
  }

  /**
   * @param options `keep: false` counts requests and bytes without parsing or keeping them,
   *   in any encoding (a sink for benchmarks, whose parsing would take the CPU being measured).
   * @returns A receiver listening on loopback.
   */
  static start(options: { readonly keep?: boolean } = {}): OtlpReceiver {
    // The handler needs the receiver, which needs the server.
    const self: { receiver?: OtlpReceiver } = {};
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => self.receiver!.#handle(request),
    );
    self.receiver = new OtlpReceiver(server, options.keep ?? true);
    return self.receiver;
  }

  /** Requests accepted and their bytes (decompressed), kept or not. */
  get counts(): { readonly requests: number; readonly bytes: number } {
    return { requests: this.#count, bytes: this.#bytes };
  }

  /** `http://127.0.0.1:<port>`. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /**
   * The environment that makes a Deno child export here with `http/json`.
   * @param extra More variables (`OTEL_METRIC_EXPORT_INTERVAL`, …), which win.
   */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: this.endpoint,
      ...extra,
    };
  }

  async #handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    const signal = SIGNALS[path];
    const type = request.headers.get("content-type") ?? "";
    if (request.method !== "POST" || signal === undefined) {
      this.#refused.push(`${request.method} ${path}`);
      return new Response("Not found", { status: 404 });
    }
    let stream = request.body ?? new Response("").body!;
    if (request.headers.get("content-encoding") === "gzip") {
      stream = stream.pipeThrough(new DecompressionStream("gzip"));
    }
    if (!this.#keep) {
      // A sink takes any encoding: Deno's default, http/protobuf, too.
      this.#count++;
      this.#bytes += (await new Response(stream).arrayBuffer()).byteLength;
      return type.startsWith("application/json")
        ? Response.json({})
        : new Response(new Uint8Array(0), { headers: { "content-type": type } });
    }
    if (!type.startsWith("application/json")) {
      this.#refused.push(`${path} as ${type}`);
      await stream.cancel();
      return new Response("Only http/json is accepted", { status: 415 });
    }
    const raw = await new Response(stream).text();
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      this.#refused.push(`${path}: not JSON`);
      return new Response("Bad JSON", { status: 400 });
    }
    this.#requests.push({ signal, raw, body });
    this.#count++;
    this.#bytes += raw.length;
    for (const wake of this.#waiters) wake();
    return Response.json({});
  }

  /** Every request accepted, in arrival order. */
  get requests(): readonly OtlpRequest[] {
    return this.#requests;
  }

  /** Requests refused (wrong path, method or encoding): a test expects none. */
  get refused(): readonly string[] {
    return this.#refused;
  }

  /** Every body received, of every signal, as one text. */
  rawText(): string {
    return this.#requests.map((r) => r.raw).join("\n");
  }

  /** Every span received. */
  spans(): ExportedSpan[] {
    const out: ExportedSpan[] = [];
    for (const { signal, body } of this.#requests) {
      if (signal !== "traces") continue;
      for (const rs of (body as Json).resourceSpans ?? []) {
        const resource = readAttributes(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          const scope = {
            name: String(ss.scope?.name ?? ""),
            version: String(ss.scope?.version ?? ""),
            schemaUrl: String(ss.schemaUrl ?? ""),
          };
          for (const s of ss.spans ?? []) {
            out.push({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? "",
              name: s.name,
              kind: kindName(s.kind),
              attributes: readAttributes(s.attributes),
              events: (s.events ?? []).map((e: Json) => ({
                name: e.name,
                attributes: readAttributes(e.attributes),
              })),
              status: { code: statusName(s.status?.code), message: s.status?.message ?? "" },
              scope,
              resource,
              startTimeUnixNano: BigInt(s.startTimeUnixNano ?? 0),
              endTimeUnixNano: BigInt(s.endTimeUnixNano ?? 0),
            });
          }
        }
      }
    }
    return out;
  }

  /** The spans that match `filter`. */
  findSpans(filter: SpanFilter = {}): ExportedSpan[] {
    return this.spans().filter((s) =>
      (filter.name === undefined ||
        (typeof filter.name === "string" ? s.name === filter.name : filter.name.test(s.name))) &&
      (filter.kind === undefined || s.kind === filter.kind) &&
      (filter.scope === undefined || s.scope.name === filter.scope) &&
      (filter.attributes === undefined || hasAttributes(s.attributes, filter.attributes))
    );
  }

  /**
   * The one span that matches `filter`.
   * @throws {Error} when none or several match, listing the spans received.
   */
  span(filter: SpanFilter): ExportedSpan {
    const found = this.findSpans(filter);
    const [span, ...others] = found;
    if (span === undefined || others.length > 0) {
      const names = this.spans().map((s) =>
        `${s.name} (${s.spanId} ← ${s.parentSpanId || "root"})`
      );
      throw new Error(
        `Cannot find one span like ${describeFilter(filter)}: ${found.length} match; received ${
          names.join(", ") || "none"
        }`,
      );
    }
    return span;
  }

  /** The span's parent, if it was received. */
  parentOf(span: ExportedSpan): ExportedSpan | undefined {
    if (span.parentSpanId === "") return undefined;
    return this.spans().find((s) => s.traceId === span.traceId && s.spanId === span.parentSpanId);
  }

  /** The spans whose parent is `span`. */
  childrenOf(span: ExportedSpan): ExportedSpan[] {
    return this.spans().filter((s) => s.traceId === span.traceId && s.parentSpanId === span.spanId);
  }

  /** The chain of parents, nearest first, as far as they were received. */
  ancestorsOf(span: ExportedSpan): ExportedSpan[] {
    const out: ExportedSpan[] = [];
    for (let p = this.parentOf(span); p !== undefined; p = this.parentOf(p)) out.push(p);
    return out;
  }

  /**
   * Every data point of the metric `name`, in arrival order: those with `attributes` among
   * theirs, or (`exact`) with exactly these.
   */
  points(name: string, attributes?: AttributeMap, exact = false): MetricPoint[] {
    const out: MetricPoint[] = [];
    for (const { signal, body } of this.#requests) {
      if (signal !== "metrics") continue;
      for (const rm of (body as Json).resourceMetrics ?? []) {
        for (const sm of rm.scopeMetrics ?? []) {
          const scope = {
            name: String(sm.scope?.name ?? ""),
            version: String(sm.scope?.version ?? ""),
          };
          for (const m of sm.metrics ?? []) {
            if (m.name !== name) continue;
            const type = (["sum", "gauge", "histogram", "exponentialHistogram", "summary"] as const)
              .find((t) => m[t] !== undefined);
            if (type === undefined) continue;
            for (const p of m[type].dataPoints ?? []) {
              const point: MetricPoint = {
                metric: m.name,
                unit: m.unit ?? "",
                type,
                monotonic: type === "sum" ? Boolean(m.sum.isMonotonic) : undefined,
                attributes: readAttributes(p.attributes),
                value: p.asDouble !== undefined
                  ? Number(p.asDouble)
                  : p.asInt !== undefined
                  ? Number(p.asInt)
                  : undefined,
                count: p.count !== undefined ? Number(p.count) : undefined,
                sum: p.sum !== undefined ? Number(p.sum) : undefined,
                bucketCounts: p.bucketCounts?.map(Number),
                explicitBounds: p.explicitBounds?.map(Number),
                scope,
              };
              if (
                attributes === undefined ||
                (hasAttributes(point.attributes, attributes) &&
                  (!exact ||
                    Object.keys(point.attributes).length === Object.keys(attributes).length))
              ) {
                out.push(point);
              }
            }
          }
        }
      }
    }
    return out;
  }

  /** The most recent point of the metric with these attributes (see `points`), if any. */
  lastPoint(name: string, attributes?: AttributeMap, exact = false): MetricPoint | undefined {
    return this.points(name, attributes, exact).at(-1);
  }

  /**
   * Waits until `ready()` holds, checking after each request; at most `timeoutMs` (20 s), and
   * no longer than `signal` (a child process's exit, say) allows.
   * @throws {Error} when the time runs out, or the signal's reason when it aborts.
   */
  async waitFor(
    ready: () => boolean,
    what: string,
    options: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {},
  ): Promise<void> {
    if (ready()) return;
    const timeoutMs = options.timeoutMs ?? 20_000;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const wake = () => {
      try {
        if (ready()) resolve();
      } catch (error) {
        reject(error);
      }
    };
    const abort = () => reject(options.signal?.reason);
    const timer = setTimeout(
      () => reject(new Error(`Cannot receive ${what}: nothing within ${timeoutMs} ms`)),
      timeoutMs,
    );
    this.#waiters.add(wake);
    options.signal?.addEventListener("abort", abort);
    try {
      if (options.signal?.aborted) abort();
      await promise;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(wake);
      options.signal?.removeEventListener("abort", abort);
    }
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  /** Stops listening: `await using receiver = OtlpReceiver.start()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function describeFilter(filter: SpanFilter): string {
  return JSON.stringify(
    filter,
    (_k, v) => typeof v === "bigint" ? `${v}n` : v instanceof RegExp ? String(v) : v,
  );
}
