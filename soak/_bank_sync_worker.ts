// A Worker that runs bank transfers through the sync `Database` (see runTransfersInThreads).
import { Database } from "../database.ts";
import { runTransfersSync, type SyncWorkerAnswer, type SyncWorkerRequest } from "./_bank.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<SyncWorkerRequest>) => void) | null;
  postMessage(message: SyncWorkerAnswer): void;
};

scope.onmessage = (event) => {
  const { url, bank, transfers, deadline, progress } = event.data;
  const db = new Database(url, { minConnections: 1, maxConnections: 2 });
  try {
    const result = runTransfersSync(db, bank, transfers, deadline, progress);
    scope.postMessage({
      transfers: result.transfers,
      retries: result.retries,
      untyped: result.untyped.map((error) => Deno.inspect(error)),
    });
  } finally {
    db.close();
  }
};
