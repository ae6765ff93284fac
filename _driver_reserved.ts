// One connection taken out of the pool: its statements, chains and describes, what is known of
// its loss, and its release, which closes rather than returns a connection that is not idle.
// reserve() keeps two workarounds the vendored driver made unnecessary for their first cause
// (docs/vendored-driver.md):
// - its retry on a connection loss was for the stale FATAL error 3.4.9 handed to the next
//   reserve on the slot (patch 0002, porsager/postgres#1223). It stays: a new connection can
//   still fail for real while it starts (57P03 while the server starts, 57P01 when killed during
//   start-up), where one more attempt is the right answer.
// - its wait for `closing` was for a reserve stranded by a reconnect (patches 0004 and 0005,
//   porsager/postgres#1195). It stays: no test shows it unnecessary, and it costs nothing when
//   nothing was lost.
// Still open upstream: porsager/postgres#1199, release() of a reserved connection whose backend
// was lost leaves the pool unable to recover. Patch 0022 makes such a release do nothing (and
// refuses the reservation's statements once its connection closed); release() here still skips
// a lost connection (postgres.js took it back when it closed), which costs nothing.
import type { ReservedSession } from "./_driver.ts";
import type { PgConnection, postgresTypes, ReservedSql } from "./_driver_pg.ts";
import { signatureOf } from "./_driver_types.ts";
import {
  type ChainOptions,
  copy,
  prepareParams,
  run,
  type StatementPool,
} from "./_driver_statement.ts";
import { isConnectionLoss, isServerError, isSessionEnded, toDatabaseError } from "./_errors.ts";
import type { LossObservation } from "./_statement_retry.ts";
import { ConnectionError } from "./errors.ts";

/** Thrown by `pipeline()` when a value is refused: nothing was sent. */
export class PipelineRefused {
  constructor(readonly index: number, readonly error: Error) {}
}

/** What the driver tracks of one reserved connection. */
export interface ReservedState {
  lost: boolean;
  /** postgres.js has processed the close of the connection. */
  closed: boolean;
  id: number;
  connection: PgConnection | undefined;
  released: boolean;
  /** Statements sent and not yet answered. */
  pending: number;
  /** Parameter types of the statements `describe()` prepared on this connection. */
  described: Map<string, readonly number[]>;
  onClosed?: () => void;
}

/** What reserving a connection works with, beyond a statement's: the pool's reserved sessions. */
export interface ReservingPool extends StatementPool {
  /**
   * Reserved connections by the driver's connection id, so that a close of that connection
   * marks the session lost before anything else is written to it.
   */
  readonly reservedById: Map<number, ReservedState>;
  /** Lost reserved connections whose close postgres.js has not processed yet. */
  readonly closing: Set<Promise<void>>;
  /** Reserved sessions not released yet (see `end()`). */
  reservedCount: number;
}

const IDLE = 73; // "I"
const STATUS: Readonly<Record<number, "I" | "T" | "E">> = { 73: "I", 84: "T", 69: "E" };

/** Takes a connection out of the pool until its `release()`. */
export async function reserve(pool: ReservingPool): Promise<ReservedSession> {
  let reserved: ReservedSql | undefined;
  // A reserve made before postgres.js has processed the close of a lost reserved
  // connection can be handed to two reconnecting slots and never resolve (3.4.9).
  if (pool.closing.size > 0) await Promise.all(pool.closing);
  let waitedMs = 0;
  for (let attempt = 1; reserved === undefined; attempt++) {
    const asked = performance.now();
    try {
      reserved = await pool.sql.reserve();
      waitedMs = performance.now() - asked;
    } catch (error) {
      // postgres.js 3.4.9 keeps the FATAL error of a backend killed mid-statement and
      // hands it to the next reserve on that slot, though nothing ran: try again.
      if (attempt < 3 && isServerError(error) && isSessionEnded(error)) continue;
      throw toDatabaseError(error, pool.hostPorts);
    }
  }
  // The metrics hook runs once the connection is ours, outside the catch above: a hook that
  // threw there would be reported as a database error, and the connection never released.
  try {
    pool.hooks.waited?.(waitedMs);
  } catch {
    // Telemetry never fails a call.
  }
  pool.reservedCount++;
  const session = reserved;
  const state: ReservedState = {
    lost: false,
    closed: false,
    id: -1,
    connection: undefined,
    released: false,
    pending: 0,
    described: new Map(),
  };
  let unsent = false;
  const observe = (seen: LossObservation): void => {
    unsent = !seen.written || seen.pipelined ||
      (!seen.answered && seen.endedBy?.startsWith("57P") === true);
  };
  const register = (c: PgConnection): boolean => {
    if (state.id === -1) {
      state.id = c.id;
      state.connection = c;
      pool.reservedById.set(c.id, state);
    }
    return true;
  };
  // postgres.js keeps a connection's id across reconnects: by the time this session lets go,
  // the entry may be another reservation's, which must stay.
  const forget = (): void => {
    if (state.id !== -1 && pool.reservedById.get(state.id) === state) {
      pool.reservedById.delete(state.id);
    }
  };
  const guard = (): void => {
    if (state.released) {
      throw new ConnectionError(`Connection to "${pool.hostPorts}" was already released`, {
        code: "CONNECTION_RELEASED",
      });
    }
    if (state.lost) {
      throw new ConnectionError(`Connection to "${pool.hostPorts}" lost: the server closed it`, {
        code: "CONNECTION_CLOSED",
      });
    }
  };
  // Marks the session lost; until postgres.js has processed the close, a new reserve waits
  // (see above). Should the close never be reported, it stops waiting after a second.
  const markLost = (): void => {
    if (state.lost) return;
    state.lost = true;
    if (state.closed || state.id === -1) return;
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(done, 1000);
      function done(): void {
        clearTimeout(timer);
        state.onClosed = undefined;
        pool.closing.delete(closed);
        resolve();
      }
      state.onClosed = done;
    });
    pool.closing.add(closed);
  };
  const settle = <T>(pending: Promise<T>): Promise<T> => {
    state.pending++;
    return pending.then((value) => {
      state.pending--;
      return value;
    }, (error) => {
      state.pending--;
      // Only a connection that really closed (or a session the server ended) is lost; a
      // server error of severity ERROR leaves it usable.
      if (isConnectionLoss(error)) markLost();
      throw error;
    });
  };
  return {
    get lost() {
      return state.lost;
    },
    get unsent() {
      return unsent;
    },
    query(text, params = [], options) {
      guard();
      return settle(run(pool, session, text, params, options, register, observe));
    },
    copyIn(text, data, signal) {
      guard();
      return settle(copy(pool, session, text, data, signal));
    },
    get status() {
      const status = state.connection?.status;
      return status === undefined ? undefined : STATUS[status];
    },
    known(item) {
      const params = item.params ?? [];
      if (params.length === 0) return true;
      let ready: readonly unknown[];
      try {
        ready = prepareParams(session, params);
      } catch {
        return true;
      }
      const signature = signatureOf(item.text, ready);
      const kept = pool.types.statementTypes.get(signature) ?? state.described.get(signature);
      return kept !== undefined &&
        kept.every(pool.types.isRead);
    },
    async describe(items) {
      guard();
      const ready: (readonly unknown[])[] = [];
      for (const [index, item] of items.entries()) {
        try {
          ready.push(prepareParams(session, item.params ?? []));
        } catch (error) {
          return { index, error: toDatabaseError(error, pool.hostPorts) };
        }
      }
      // The types of each statement's parameters: those the pool keeps, or the server's
      // answer to a describe (several describes pipeline: patch 0021).
      const types: (readonly number[] | Promise<readonly number[]>)[] = items.map((item, i) => {
        const params = ready[i]!; // one per item: the loop above returned at the first refused
        if (params.length === 0) return [];
        const signature = signatureOf(item.text, params);
        const kept = pool.types.statementTypes.get(signature) ?? state.described.get(signature);
        if (kept !== undefined) return kept;
        const describing = session.unsafe(
          item.text,
          params as unknown[] as postgresTypes.ParameterOrJSON<never>[],
          { prepare: true, onexecute: register } as never,
        ) as unknown as { describe(): Promise<{ types: number[] }> };
        return settle(
          describing.describe().then(({ types }) => {
            const given = types.slice(0, params.length);
            // Also when the pool's cache is full: prepared on this connection now.
            state.described.set(signature, given);
            return given;
          }),
        );
      });
      const settled = await Promise.allSettled(types);
      const failed = settled.findIndex((r) => r.status === "rejected");
      if (failed >= 0) {
        const error = (settled[failed] as PromiseRejectedResult).reason;
        return { index: failed, error: toDatabaseError(error, pool.hostPorts) };
      }
      // A type the pool has not read (an enum's array) is read now: no member of a chain
      // may stop for it.
      const unread = new Set<number>();
      for (const r of settled) {
        for (const type of (r as PromiseFulfilledResult<readonly number[]>).value) {
          if (!pool.types.isRead(type)) unread.add(type);
        }
      }
      if (unread.size > 0) {
        await settle(pool.types.readTypes(session, [...unread])).catch((error) => {
          throw toDatabaseError(error, pool.hostPorts);
        });
        for (const type of unread) {
          if (pool.types.options.serializers[type] === undefined) pool.types.scalars.add(type);
        }
      }
      return undefined;
    },
    pipeline(items) {
      guard();
      // Every value is checked before anything is sent: a member refused on its own would
      // leave a chain without it, the statements after it running regardless.
      const ready: (readonly unknown[])[] = [];
      for (const [index, item] of items.entries()) {
        try {
          ready.push(prepareParams(session, item.params ?? []));
        } catch (error) {
          throw new PipelineRefused(index, toDatabaseError(error, pool.hostPorts));
        }
      }
      const chain: { failed?: unknown } = {};
      const last = items.length - 1;
      return items.map((item, i) => {
        const params = item.params ?? [];
        const options: ChainOptions = {
          ...item.options,
          simple: false,
          // A text without parameters goes unnamed unless asked: one-off texts do not fill
          // the connection's cache of prepared statements.
          prepare: params.length > 0 || item.prepare === true,
          ...(i < last ? { sync: false } : {}),
          chain,
        };
        return settle(run(pool, session, item.text, params, options, register, observe, ready[i]));
      });
    },
    release() {
      if (state.released) return;
      state.released = true;
      pool.reservedCount--;
      const connection = state.connection;
      // The invariant: a connection goes back to the pool only idle, outside a transaction,
      // with nothing in flight; any other is closed (postgres.js then takes its slot back).
      if (
        !state.lost && connection !== undefined &&
        (state.pending > 0 || (connection.status !== undefined && connection.status !== IDLE))
      ) {
        markLost();
      }
      if (state.lost) {
        if (!state.closed) connection?.terminate();
      } else {
        forget();
        session.release();
      }
      if (state.closed) forget();
    },
  };
}
