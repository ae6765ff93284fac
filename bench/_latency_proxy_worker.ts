// The latency bench's proxy worker: one FaultProxy, driven by the requests of
// `_latency_proxy.ts`, in a thread of its own.
import { FaultProxy } from "../_test_proxy.ts";
import type { Request, TurnCount } from "./_latency_proxy.ts";

let proxy: FaultProxy | undefined;

const scope = globalThis as unknown as {
  onmessage: (event: MessageEvent<Request>) => void;
  postMessage: (message: unknown) => void;
};

scope.onmessage = async (event) => {
  const request = event.data;
  try {
    let value: unknown;
    if (request.op === "start") {
      proxy = await FaultProxy.start(request.target, { delay: request.delay });
      value = proxy.address;
    } else if (request.op === "reset") {
      proxy!.resetTurns();
    } else if (request.op === "rewrite") {
      proxy!.rewrite(request.from, request.to, request.times);
    } else if (request.op === "count") {
      value = {
        turns: proxy!.turns,
        connections: proxy!.connections().filter((c) => c.turns > 0).length,
      } satisfies TurnCount;
    } else {
      await proxy?.close();
      proxy = undefined;
    }
    scope.postMessage({ ok: true, value });
  } catch (error) {
    scope.postMessage({ ok: false, error: String(error) });
  }
};
