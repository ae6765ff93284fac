// FaultCluster: N FaultProxy nodes in front of one server, standing for the nodes of a cluster,
// with one URL whose host list names them all.
import { FaultProxy, type FaultProxyOptions, withHosts } from "./proxy.ts";

/** Options of {@linkcode FaultCluster.start}. */
export interface FaultClusterOptions extends Omit<FaultProxyOptions, "port"> {
  /**
   * Number of nodes (proxies).
   * @default {3}
   */
  readonly nodes?: number;
}

/** N proxies in front of one server, standing for the nodes of a cluster. */
export class FaultCluster implements AsyncDisposable {
  /** The nodes, in the order of the URL's host list. */
  readonly nodes: readonly FaultProxy[];
  /** The server's URL with every node in its host list (`postgresql://u@h:p1,h:p2,h:p3/db`). */
  readonly url: string;

  private constructor(nodes: readonly FaultProxy[], url: string) {
    this.nodes = nodes;
    this.url = url;
  }

  /** Starts `nodes` proxies in front of the server of `url`. */
  static async start(url: string, options: FaultClusterOptions = {}): Promise<FaultCluster> {
    const count = options.nodes ?? 3;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`Cannot start cluster of "${count}" nodes: not a positive integer`);
    }
    const nodes: FaultProxy[] = [];
    for (let i = 0; i < count; i++) nodes.push(await FaultProxy.start(url, options));
    return new FaultCluster(nodes, withHosts(url, nodes.map((n) => n.address)));
  }

  /** Turns counted on every node. */
  get turns(): number {
    return this.nodes.reduce((sum, n) => sum + n.turns, 0);
  }

  /** Resets the turn counters of every node. */
  resetTurns(): void {
    for (const node of this.nodes) node.resetTurns();
  }

  /** Closes every node. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.close()));
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
