// A Worker that runs bank transfers through the sync `Database` (see runTransfersInThreads): it
// connects on `start` and answers `ready`, then runs its transfers on `go` and answers `done`.
import { Database } from "../database.ts";
import { runTransfersSync, type SyncWorkerAnswer, type SyncWorkerRequest } from "./_bank.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<SyncWorkerRequest>) => void) | null;
  postMessage(message: SyncWorkerAnswer): void;
};

let started: { readonly db: Database; readonly request: SyncWorkerRequest & { kind: "start" } };

scope.onmessage = (event) => {
  const request = event.data;
  if (request.kind === "start") {
    // The constructor connects: a failure here fails the worker before any transfer.
    started = { db: new Database(request.url, { minConnections: 1, maxConnections: 2 }), request };
    scope.postMessage({ kind: "ready" });
    return;
  }
  const { db, request: { bank, transfers, deadline, progress } } = started;
  try {
    const result = runTransfersSync(db, bank, transfers, deadline, progress);
    scope.postMessage({
      kind: "done",
      transfers: result.transfers,
      retries: result.retries,
      untyped: result.untyped.map((error) => Deno.inspect(error)),
    });
  } finally {
    db.close();
  }
};
