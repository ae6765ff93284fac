// The pool metrics of the semantic conventions (docs/db/database-metrics.md):
// `db.client.connection.count` by `db.client.connection.state` (`idle`, `used`),
// `db.client.connection.max` and `db.client.connection.pending_requests`, read from each open
// pool at every metric collection, and `db.client.connection.create_time` and
// `db.client.connection.wait_time`, recorded as they happen. Each pool is named by
// `db.client.connection.pool.name`.
import type { Attributes, BatchObservableResult } from "npm:@opentelemetry/api@1.10.0";
import { currentInstruments, reportPool, type TelemetryTarget } from "./_telemetry.ts";

/** The pool's numbers at one moment, as the pool metrics report them. */
export interface PoolCounts {
  /** Open connections waiting for work. */
  readonly idle: number;
  /** Open connections running a statement or held by a transaction or cursor. */
  readonly used: number;
  /** Requests waiting for a connection. */
  readonly pending: number;
  /** The most connections the pool opens. */
  readonly max: number;
}

/** The metrics of one pool; `close()` when the pool is closed. */
export interface PoolTelemetry {
  /** `db.client.connection.pool.name`: `address:port/namespace`, `#2`… when already in use. */
  readonly name: string;
  /** Records how long a new connection took to open (`db.client.connection.create_time`). */
  connectionCreated(seconds: number): void;
  /** Records how long a request waited for a connection (`db.client.connection.wait_time`). */
  connectionWaited(seconds: number): void;
  /** Stops reporting the pool. */
  close(): void;
}

const POOL_NAME = "db.client.connection.pool.name";
const STATE = "db.client.connection.state";

// Names in use by open pools.
const poolNames = new Set<string>();

/**
 * Reports a pool in the connection metrics until `close()`: `read` is called at each metric
 * collection. The name is `address:port/namespace`, with `#2`, `#3`… for a second pool of the
 * same name open at the same time (the conventions want it unique in the application).
 *
 * @param target The database's attributes.
 * @param read The pool's numbers now.
 * @returns The pool's handle.
 */
export function observePool(target: TelemetryTarget, read: () => PoolCounts): PoolTelemetry {
  const { address, port, namespace } = target.endpoint;
  const base = `${address}:${port}/${namespace ?? ""}`;
  let name = base;
  for (let n = 2; poolNames.has(name); n++) name = `${base}#${n}`;
  poolNames.add(name);
  const named: Attributes = Object.freeze({ [POOL_NAME]: name });
  const idle: Attributes = Object.freeze({ [POOL_NAME]: name, [STATE]: "idle" });
  const used: Attributes = Object.freeze({ [POOL_NAME]: name, [STATE]: "used" });
  const stop = reportPool((result: BatchObservableResult, { count, max, pending }) => {
    let counts: PoolCounts;
    try {
      counts = read();
    } catch {
      return; // a pool closing meanwhile: reported at the next collection, or no more
    }
    result.observe(count, counts.idle, idle);
    result.observe(count, counts.used, used);
    result.observe(max, counts.max, named);
    result.observe(pending, counts.pending, named);
  });
  let closed = false;
  return {
    name,
    connectionCreated(seconds) {
      if (!closed) currentInstruments()?.createTime.record(seconds, named);
    },
    connectionWaited(seconds) {
      if (!closed) currentInstruments()?.waitTime.record(seconds, named);
    },
    close() {
      if (closed) return;
      closed = true;
      stop();
      poolNames.delete(name);
    },
  };
}
