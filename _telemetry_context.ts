// The caller's trace context across the sync bridge: the calling thread captures its active
// span as a W3C `traceparent` (plain data, which crosses to the worker with each request), and
// the worker makes it the parent of the spans it makes for that request, so that the sync
// `Database`'s statements are in the caller's trace.
import {
  context,
  createTraceState,
  isSpanContextValid,
  type SpanContext,
  trace,
} from "npm:@opentelemetry/api@1.10.0";
import { currentTracing } from "./_telemetry.ts";

/**
 * The caller's trace context as plain data, to cross the sync bridge: a W3C `traceparent`
 * (and `tracestate`) of the span active on the calling thread.
 */
export interface TraceCarrier {
  /** `00-{trace id}-{span id}-{flags}`. */
  readonly traceparent: string;
  /** The W3C `tracestate`, when the span has one. */
  readonly tracestate?: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The calling thread's active span as plain data for the bridge's worker, or `undefined` when
 * nothing is traced (no provider, or no valid span active). Built from the span context itself,
 * not through the propagation API: `OTEL_PROPAGATORS=none` must not cut the sync API's spans
 * out of the caller's trace.
 *
 * @returns The carrier, or `undefined`.
 */
export function captureContext(): TraceCarrier | undefined {
  if (currentTracing() === undefined) return undefined;
  const spanContext = trace.getSpanContext(context.active());
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return undefined;
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  const traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/**
 * Runs `fn` in the worker with the caller's span (from {@linkcode captureContext}) as the
 * active parent, so that the spans made meanwhile are its children. Without a carrier, a
 * provider or a readable `traceparent`, it runs `fn` as it is.
 *
 * @param carrier What `captureContext()` gave on the calling thread.
 * @param fn The work.
 * @returns What `fn` returns.
 */
export function withCapturedContext<T>(carrier: TraceCarrier | undefined, fn: () => T): T {
  if (carrier === undefined || currentTracing() === undefined) return fn();
  const match = typeof carrier.traceparent === "string"
    ? TRACEPARENT.exec(carrier.traceparent)
    : null;
  const [, traceId, spanId, flags] = match ?? [];
  if (traceId === undefined || spanId === undefined || flags === undefined) return fn();
  const spanContext: SpanContext = {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16),
    isRemote: true,
  };
  if (!isSpanContextValid(spanContext)) return fn(); // all-zero ids
  if (typeof carrier.tracestate === "string" && carrier.tracestate !== "") {
    spanContext.traceState = createTraceState(carrier.tracestate);
  }
  return context.with(trace.setSpanContext(context.active(), spanContext), fn);
}
