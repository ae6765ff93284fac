// A TCP proxy in front of a PostgreSQL server, for tests and benches: it adds latency, counts
// protocol round trips ("turns") exactly, and plays a node that drains, dies and comes back.
// It frames the wire protocol in both directions to find message boundaries, but forwards the
// bytes as they come. This is the index of _test_proxy/: wire.ts (the framing), pipe.ts (one
// delayed direction), link.ts (one proxied connection; what a turn is), proxy.ts (FaultProxy),
// cluster.ts (FaultCluster).
export type { ConnectionInfo, EndReason } from "./_test_proxy/link.ts";
export {
  type DrainOptions,
  FaultProxy,
  type FaultProxyOptions,
  type ProxyStats,
} from "./_test_proxy/proxy.ts";
export { FaultCluster, type FaultClusterOptions } from "./_test_proxy/cluster.ts";
