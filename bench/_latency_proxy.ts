// The latency bench's proxy, run in a worker: its timers and reads do not wait for the client's
// work in the bench's own event loop, as a network would not. Turn counts are read between runs.
/** A request to the worker (`_latency_proxy_worker.ts`). */
export type Request =
  | { readonly op: "start"; readonly target: string; readonly delay: number }
  | { readonly op: "reset" }
  /** FaultProxy.rewrite(): the next `times` occurrences of `from` reach the server as `to`. */
  | { readonly op: "rewrite"; readonly from: string; readonly to: string; readonly times: number }
  | { readonly op: "count" }
  | { readonly op: "close" };

/** What the proxy counted since the last reset. */
export interface TurnCount {
  /** Turns on every connection. */
  readonly turns: number;
  /** Connections that waited for the server at least once. */
  readonly connections: number;
}

/** The main thread's handle on the proxy worker. */
export class ProxyWorker {
  readonly #worker: Worker;
  /** The proxy's `host:port`. */
  readonly address: string;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(worker: Worker, address: string) {
    this.#worker = worker;
    this.address = address;
  }

  /** Starts a worker with a proxy to the server of `target` that delays each way by `delay` ms. */
  static async start(target: string, delay: number): Promise<ProxyWorker> {
    const worker = new Worker(new URL("./_latency_proxy_worker.ts", import.meta.url), {
      type: "module",
    });
    const address = await ask<string>(worker, { op: "start", target, delay });
    return new ProxyWorker(worker, address);
  }

  /** `url` with its host list replaced by the proxy. */
  url(url: string): string {
    return url.replace(/^([a-z]+:\/\/(?:[^@/?#]*@)?)[^/?#]*/i, `$1${this.address}`);
  }

  /** Sets the turn counters to 0. */
  reset(): Promise<void> {
    return this.#ask<void>({ op: "reset" });
  }

  /** See `FaultProxy.rewrite()` (for tests). */
  rewrite(from: string, to: string, times = 1): Promise<void> {
    return this.#ask<void>({ op: "rewrite", from, to, times });
  }

  /** The turns counted since the last reset. */
  count(): Promise<TurnCount> {
    return this.#ask<TurnCount>({ op: "count" });
  }

  /** Closes the proxy and ends the worker. */
  async close(): Promise<void> {
    try {
      await this.#ask<void>({ op: "close" });
    } finally {
      this.#worker.terminate();
    }
  }

  #ask<T>(request: Request): Promise<T> {
    const next = this.#queue.then(() => ask<T>(this.#worker, request));
    this.#queue = next.catch(() => {});
    return next;
  }
}

function ask<T>(worker: Worker, request: Request): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<{ ok: boolean; value: T; error?: string }>) => {
      if (event.data.ok) resolve(event.data.value);
      else reject(new Error(event.data.error));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`Cannot run the proxy worker: ${event.message}`));
    };
    worker.postMessage(request);
  });
}
