// Which host a new connection tries first, and which next: libpq's `load_balance_hosts`
// (`disable`: in the order given; `random`: in a random order, so a pool spreads over the
// nodes — here, at random among the hosts this pool uses least, so that 12 connections over 3
// hosts are 4, 4 and 4 rather than whatever the dice say), with hosts that failed lately, or
// that are draining, tried last. Pure apart from the clock and the random numbers, which are
// injected.

/** How new connections pick among several hosts (libpq's `load_balance_hosts`). */
export type LoadBalanceHosts = "disable" | "random";

/** What the vendored driver asks and tells (its `options.shared.hosts`, patch 0015). */
export interface HostChooser {
  /** The host a connection tries next (an index into the host list), given those it tried. */
  next(tried: readonly number[]): number;
  /** A connection attempt to host `index` failed or was refused. */
  failed(index: number, error: unknown): void;
  /** A connection to host `index` is ready, `ms` milliseconds after its first attempt. */
  connected(index: number, ms?: number): void;
  /** The server ended an established session on host `index`; `error` says why, if it did. */
  ended(index: number, error: unknown): void;
}

/** What the chooser needs besides the hosts. */
export interface HostChooserOptions {
  readonly mode: LoadBalanceHosts;
  /** Milliseconds since some fixed point. */
  readonly now: () => number;
  readonly random: () => number;
  /** Called when a host starts draining: its idle connections are about to be ended too. */
  readonly onDrain: (index: number) => void;
}

/** How long new connections avoid a host whose sessions were ended for a drain. */
const DRAIN_AVOID_MS = 30_000;
/** The longest a failing host is skipped before it is tried first again. */
const MAX_HOST_BACKOFF_MS = 30_000;

interface HostState {
  /** Connections of this pool on the host, or trying it. */
  load: number;
  failures: number;
  /** Tried first again from then on. */
  retryAt: number;
  /** Avoided until then (a drain was seen). */
  drainingUntil: number;
}

/** A chooser over `count` hosts. */
export function createHostChooser(count: number, options: HostChooserOptions): HostChooser {
  const { mode, now, random, onDrain } = options;
  const states: HostState[] = Array.from(
    { length: count },
    () => ({ load: 0, failures: 0, retryAt: 0, drainingUntil: 0 }),
  );
  const valid = (i: number): boolean => Number.isInteger(i) && i >= 0 && i < count;
  return {
    next(tried) {
      const t = now();
      const candidates = Array.from({ length: count }, (_, i) => i).filter((i) =>
        !tried.includes(i)
      );
      const avoidedUntil = (i: number) => Math.max(states[i]!.retryAt, states[i]!.drainingUntil);
      // Hosts failing or draining come last (soonest back first): when all are, one may still
      // answer.
      const usable = candidates.filter((i) => avoidedUntil(i) <= t);
      let pick: number | undefined;
      if (usable.length === 0) {
        pick = candidates.sort((a, b) => avoidedUntil(a) - avoidedUntil(b))[0];
      } else if (mode === "disable") {
        pick = usable[0];
      } else {
        const least = Math.min(...usable.map((i) => states[i]!.load));
        const ties = usable.filter((i) => states[i]!.load === least);
        pick = ties[Math.floor(random() * ties.length)];
      }
      const index = pick ?? 0;
      states[index]!.load++;
      return index;
    },
    failed(index) {
      if (!valid(index)) return;
      const state = states[index]!;
      state.load = Math.max(0, state.load - 1);
      state.failures++;
      const cap = Math.min(MAX_HOST_BACKOFF_MS, 250 * 2 ** Math.min(state.failures - 1, 16));
      state.retryAt = now() + cap * (0.5 + random() / 2);
    },
    connected(index) {
      if (!valid(index)) return;
      const state = states[index]!;
      state.failures = 0;
      state.retryAt = 0;
    },
    ended(index, error) {
      if (!valid(index)) return;
      const state = states[index]!;
      state.load = Math.max(0, state.load - 1);
      if (!isDrain(error)) return;
      const first = state.drainingUntil <= now();
      state.drainingUntil = now() + DRAIN_AVOID_MS;
      if (first) onDrain(index);
    },
  };
}

// 57P01 admin_shutdown: PostgreSQL's smart/fast shutdown and pg_terminate_backend, and a
// draining CockroachDB node ("server is shutting down").
function isDrain(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { code?: unknown }).code === "57P01";
}
