// What one transaction's connection still owes the server: statements deferred to travel with
// the next statement on the connection (BEGIN and its savepoint, RELEASE, a nested transaction's
// savepoint and its release or rollback), sent in front of it in one write with one Sync, so
// that if one of them fails nothing after it runs (docs/round-trips.md, "Pipelined
// transactions"). The async runner keeps one link per reserved connection; the sync bridge's
// worker keeps the same for its transactions, and the calling thread sends it the same
// operations (`LinkOp`).
import type { PipelineItem, QueryOptions, QueryResult, ReservedSession } from "./_driver.ts";
import { isRetryable } from "./_errors.ts";
import { highestPlaceholder, splitStatements } from "./_sql_scan.ts";

/** A deferred statement: its text, and whether the transaction protocol sent it (not a user's savepoint). */
export interface Deferred {
  readonly text: string;
  /** BEGIN and its savepoint, RELEASE: a failure is the transaction's (see `Link.failure`). */
  readonly protocol: boolean;
}

/** The deferred statements of one transaction's connection, and the outcome of those sent. */
export interface Link {
  /** To send in front of the next statement, in order. */
  pending: Deferred[];
  /** Settles when the deferred statements of the chain in flight have answered. */
  confirm: Promise<void> | undefined;
  /**
   * The error of the first deferred protocol statement that failed (reset by `defer`). After a
   * failed BEGIN the connection is outside any transaction: nothing more of the callback's is
   * sent.
   */
  failure: unknown;
}

/** A new, empty link. */
export function newLink(): Link {
  return { pending: [], confirm: undefined, failure: undefined };
}

/** What a runner does to a link: the steps of the protocol, and a nested transaction's. */
export type LinkOp =
  /** Statements of the transaction protocol for the next statement to carry. */
  | { readonly op: "defer"; readonly texts: readonly string[] }
  /** Drop the deferred statements not sent yet (and forget a failure of those sent). */
  | { readonly op: "discard" }
  /** A nested transaction starts: its savepoint travels with its first statement. */
  | { readonly op: "savepoint"; readonly name: string }
  /**
   * A nested transaction ends: `release` (it returned), `rollback` (it threw an error that is
   * not the outermost transaction's to retry) or `keep` (it threw a retryable error: the
   * outermost transaction rolls back whole). Its savepoint is dropped if it was never sent.
   */
  | { readonly op: "savepointEnd"; readonly name: string; readonly outcome: SavepointOutcome };

/** How a nested transaction ended. */
export type SavepointOutcome = "release" | "rollback" | "keep";

/** Applies `op` to `link`. */
export function applyLinkOp(link: Link, op: LinkOp): void {
  switch (op.op) {
    case "defer":
      link.failure = undefined;
      for (const text of op.texts) link.pending.push({ text, protocol: true });
      return;
    case "discard":
      // Before a rollback, or at the end: a failure of what was sent is done with too.
      link.pending = [];
      link.failure = undefined;
      return;
    case "savepoint":
      link.pending.push({ text: `SAVEPOINT ${op.name}`, protocol: false });
      return;
    case "savepointEnd": {
      const savepoint = `SAVEPOINT ${op.name}`;
      const at = link.pending.findIndex((d) => d.text === savepoint);
      if (at >= 0) {
        // Never sent: nothing ran under it, and nothing needs to be undone.
        link.pending.splice(at);
        return;
      }
      if (op.outcome === "release") {
        link.pending.push({ text: `RELEASE SAVEPOINT ${op.name}`, protocol: false });
      } else if (op.outcome === "rollback") {
        link.pending.push(
          { text: `ROLLBACK TO SAVEPOINT ${op.name}`, protocol: false },
          { text: `RELEASE SAVEPOINT ${op.name}`, protocol: false },
        );
      }
      return;
    }
  }
}

/** How a nested transaction's error ends it: a retryable one is the outermost transaction's. */
export function savepointOutcome(error: unknown, sawRetryable: boolean): SavepointOutcome {
  return isRetryable(error) || sawRetryable ? "keep" : "rollback";
}

/** Whether the link has statements of the transaction protocol waiting to be sent. */
export function protocolPending(link: Link): boolean {
  return link.pending.some((d) => d.protocol);
}

/** Runs a deferred statement under the observer (hook, span): `send` sends it. */
export type Observe = (text: string, send: () => Promise<QueryResult>) => Promise<QueryResult>;

/** One statement to send on a linked connection. */
export interface LinkedStatement {
  readonly text: string;
  readonly params: readonly unknown[];
  readonly options?: QueryOptions;
  /** Runs the statement under the observer: `send` sends it. */
  observe(send: () => Promise<QueryResult>): Promise<QueryResult>;
}

/**
 * Sends `statement` with the deferred statements in front of it (one write, one Sync). A
 * statement issued while deferred ones are in flight waits for their outcome, so that it can
 * never run where they failed (in autocommit, after a failed BEGIN); once the transaction's
 * own deferred statements failed, the callback's statements are refused with that error.
 * `protocol` statements (ROLLBACK, COMMIT) are the runner's and always go. `observe` runs each
 * deferred statement under the observer.
 */
export async function sendLinked(
  session: ReservedSession,
  link: Link,
  statement: LinkedStatement,
  observe: Observe,
  protocol = false,
): Promise<QueryResult> {
  while (link.confirm !== undefined) await link.confirm.catch(() => {});
  if (!protocol && link.failure !== undefined) throw link.failure;
  const { text, params, options } = statement;
  if (link.pending.length === 0) {
    return statement.observe(() => session.query(text, params, options));
  }
  const deferred = link.pending;
  link.pending = [];
  if (!chainable(statement)) {
    // Several statements in one text need the simple protocol, which cannot follow statements
    // sent without Sync: the deferred ones go first, alone (one round trip more).
    await chain(session, link, deferred, undefined, observe);
    if (!protocol && link.failure !== undefined) throw link.failure;
    return statement.observe(() => session.query(text, params, options));
  }
  return (await chain(session, link, deferred, statement, observe))!;
}

/** Sends the deferred statements now, alone (before a COPY or a cursor, which cannot join). */
export async function flushLinked(
  session: ReservedSession,
  link: Link,
  observe: Observe,
): Promise<void> {
  while (link.confirm !== undefined) await link.confirm.catch(() => {});
  if (link.failure !== undefined) throw link.failure;
  if (link.pending.length === 0) return;
  const deferred = link.pending;
  link.pending = [];
  await chain(session, link, deferred, undefined, observe);
}

// A text without parameters may hold several statements, or `$n` meant for a statement it
// prepares (PREPARE, a BEGIN ATOMIC body): the simple protocol's, as when it goes alone.
function chainable(statement: LinkedStatement): boolean {
  if (statement.params.length > 0) return true;
  return splitStatements(statement.text).length === 1 && highestPlaceholder(statement.text) === 0;
}

/**
 * Sends the deferred statements and `statement` as one chain. Resolves with the statement's
 * result; rejects with the first failure, a deferred statement's own error rather than the
 * "skipped" of the statement it carried.
 */
async function chain(
  session: ReservedSession,
  link: Link,
  deferred: readonly Deferred[],
  statement: LinkedStatement | undefined,
  observe: Observe,
): Promise<QueryResult | undefined> {
  const items: PipelineItem[] = deferred.map((d) => ({ text: d.text }));
  if (statement !== undefined) {
    items.push({
      text: statement.text,
      params: statement.params,
      ...(statement.options === undefined ? {} : { options: statement.options }),
    });
  }
  const results = session.pipeline(items);
  let failed: unknown;
  const heads = deferred.map((d, i) =>
    observe(d.text, () => results[i]).then(() => {}, (error) => {
      failed ??= error;
      if (d.protocol) link.failure ??= error;
      throw error;
    })
  );
  const outcome = Promise.all(heads).then(() => {});
  const confirm: Promise<void> = outcome.finally(() => {
    if (link.confirm === confirm) link.confirm = undefined;
  });
  link.confirm = confirm;
  confirm.catch(() => {});
  if (statement === undefined) {
    await outcome;
    return undefined;
  }
  const last = results[results.length - 1];
  return await statement.observe(() =>
    last.catch(async (error) => {
      await outcome.catch(() => {});
      throw failed ?? error;
    })
  );
}
