// What one transaction's connection still owes the server: statements deferred to travel with
// the next statement on the connection (BEGIN and its savepoint, RELEASE, a nested transaction's
// savepoint and its release or rollback), sent in front of it in one write with one Sync, so
// that if one of them fails nothing after it runs (docs/round-trips.md, "Pipelined
// transactions"). The async runner keeps one link per reserved connection; the sync bridge's
// worker keeps the same for its transactions, and the calling thread sends it the same
// operations (`LinkOp`).
import {
  answerOf,
  type PipelineItem,
  PipelineRefused,
  type QueryOptions,
  type QueryResult,
  type ReservedSession,
} from "./_driver.ts";
import { highestPlaceholder, splitStatements } from "./_sql_scan.ts";
import { isRetryable } from "./_errors.ts";

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

/**
 * Applies `op` to `link`. `sawRetryable`: a statement of the attempt failed with a retryable
 * error, after which a nested transaction's failure is the outermost transaction's (CockroachDB
 * then takes no rollback but to its restart savepoint).
 */
export function applyLinkOp(link: Link, op: LinkOp, sawRetryable = false): void {
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
      } else if (op.outcome === "rollback" && !sawRetryable) {
        link.pending.push(
          { text: `ROLLBACK TO SAVEPOINT ${op.name}`, protocol: false },
          { text: `RELEASE SAVEPOINT ${op.name}`, protocol: false },
        );
      }
      return;
    }
  }
}

/**
 * How a nested transaction that failed ends: a retryable error is the outermost transaction's
 * (its savepoint is kept), any other rolls back to the savepoint. After a retryable error met
 * earlier in the attempt, `applyLinkOp` leaves the savepoint alone in either case.
 */
export function savepointOutcome(error: unknown): SavepointOutcome {
  return isRetryable(error) ? "keep" : "rollback";
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
  /** Prepared even without parameters, in a chain (the runner's own COMMIT). */
  readonly prepare?: boolean;
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

// A deferred statement goes prepared: the same few texts (BEGIN with the transaction's options,
// RELEASE, savepoints named by their depth) run again and again, and a prepared one is only
// bound and run. A read at a given time is a text of its own each time.
function deferredItem(d: Deferred): PipelineItem {
  return { text: d.text, prepare: !d.text.includes("AS OF SYSTEM TIME") };
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
  const items: PipelineItem[] = deferred.map(deferredItem);
  if (statement !== undefined) {
    items.push({
      text: statement.text,
      params: statement.params,
      ...(statement.prepare === undefined ? {} : { prepare: statement.prepare }),
      ...(statement.options === undefined ? {} : { options: statement.options }),
    });
  }
  let results: Promise<QueryResult>[];
  try {
    results = session.pipeline(items);
  } catch (error) {
    // A value refused before anything was sent: the deferred statements wait for the next one.
    if (!(error instanceof PipelineRefused)) throw error;
    link.pending = [...deferred, ...link.pending];
    throw error.error;
  }
  let failed: unknown;
  const heads = deferred.map((d, i) =>
    observe(d.text, () => answerOf(results, i)).then(() => {}, (error) => {
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
  const last = answerOf(results, results.length - 1);
  return await statement.observe(() =>
    last.catch(async (error) => {
      await outcome.catch(() => {});
      throw failed ?? error;
    })
  );
}

/** One statement of a batch, observed as a statement of its own (hook). */
export interface BatchMember {
  readonly text: string;
  readonly params: readonly unknown[];
  readonly options?: QueryOptions;
}

/**
 * How a batch failed: the statement (its index) and its error; -1 when no statement of the
 * batch did (its BEGIN or COMMIT). Thrown by the runners, turned into the error by `batch()`.
 */
export class BatchFailure {
  constructor(readonly index: number, readonly error: unknown) {}
}

/** How a batch's statements are observed, and which failure is the outermost transaction's. */
export interface BatchObservers {
  /** Runs a statement of the batch under the observer. */
  statement(member: BatchMember, send: () => Promise<QueryResult>): Promise<QueryResult>;
  /** Runs a deferred statement (the savepoint, its release) under the observer. */
  deferred: Observe;
  /** The failure is the outermost transaction's to retry, whole. */
  retryable(error: unknown): boolean;
}

/**
 * Runs `members` under the savepoint `name` of the linked connection's transaction, with the
 * deferred statements in front: one write when the pool knows every statement's parameter
 * types, else the savepoint and the describes in one write and the statements in the next.
 * Resolves with the results; rejects with a `BatchFailure` when a statement failed (its
 * rollback to the savepoint is deferred to the next statement), with the error itself when a
 * deferred statement, the savepoint or its release did.
 */
export async function batchLinked(
  session: ReservedSession,
  link: Link,
  members: readonly BatchMember[],
  name: string,
  observe: BatchObservers,
): Promise<QueryResult[]> {
  while (link.confirm !== undefined) await link.confirm.catch(() => {});
  if (link.failure !== undefined) throw link.failure;
  const savepoint: Deferred = { text: `SAVEPOINT ${name}`, protocol: false };
  const release = `RELEASE SAVEPOINT ${name}`;
  const deferred = [...link.pending, savepoint];
  link.pending = [];
  const items: PipelineItem[] = members.map((m) => ({
    text: m.text,
    params: m.params,
    ...(m.options === undefined ? {} : { options: m.options }),
  }));
  // Every promise gets its handler at once: a failure of what goes before makes the rest fail.
  const run = (results: Promise<QueryResult>[], from: number) => ({
    statements: Promise.allSettled(
      members.map((m, i) => observe.statement(m, () => answerOf(results, from + i))),
    ),
    released: observe.deferred(release, () => answerOf(results, results.length - 1)).then(
      () => undefined,
      (error: unknown) => ({ error }),
    ),
  });
  let sent: ReturnType<typeof run>;
  if (items.every((item) => session.known(item))) {
    let results: Promise<QueryResult>[];
    try {
      results = session.pipeline([
        ...deferred.map(deferredItem),
        ...items,
        { text: release, prepare: true },
      ]);
    } catch (error) {
      // A value refused before anything was sent: nothing of the batch ran.
      if (!(error instanceof PipelineRefused)) throw error;
      link.pending = [...deferred.slice(0, -1), ...link.pending];
      throw new BatchFailure(error.index - deferred.length, error.error);
    }
    sent = run(results, deferred.length);
    await settleDeferred(link, deferred, results, observe.deferred);
  } else {
    // The savepoint goes first, the describes in the same write behind it: a statement the
    // server cannot parse fails under the savepoint, which is rolled back to.
    const opened = session.pipeline(deferred.map(deferredItem));
    const described = session.describe(items).then(
      (failure) => failure,
      (error: unknown) => ({ index: -1, error }),
    );
    await settleDeferred(link, deferred, opened, observe.deferred);
    const refused = await described;
    if (refused !== undefined) return failed(link, name, refused, observe);
    const results = session.pipeline([...items, { text: release, prepare: true }]);
    sent = run(results, 0);
  }
  const settled = await sent.statements;
  const failure = firstFailure(settled);
  if (failure !== undefined) return failed(link, name, failure, observe);
  const released = await sent.released;
  if (released !== undefined) throw released.error;
  return settled.map((r) => (r as PromiseFulfilledResult<QueryResult>).value);
}

// A statement failed: the batch is undone with the next statement of the transaction (or its
// COMMIT), unless the failure is the outermost transaction's to retry, whole.
function failed(
  link: Link,
  name: string,
  failure: { readonly index: number; readonly error: unknown },
  observe: BatchObservers,
): never {
  if (!observe.retryable(failure.error)) {
    applyLinkOp(link, { op: "savepointEnd", name, outcome: "rollback" });
  }
  throw new BatchFailure(failure.index, failure.error);
}

// Waits for the deferred statements of a chain (the savepoint included); throws the first
// failure, recorded as the transaction's when it is the protocol's.
async function settleDeferred(
  link: Link,
  deferred: readonly Deferred[],
  results: readonly Promise<QueryResult>[],
  observe: Observe,
): Promise<void> {
  let failed: unknown;
  const heads = deferred.map((d, i) =>
    observe(d.text, () => answerOf(results, i)).then(() => {}, (error) => {
      failed ??= error;
      if (d.protocol) link.failure ??= error;
    })
  );
  const confirm: Promise<void> = Promise.all(heads).then(() => {
    if (link.confirm === confirm) link.confirm = undefined;
  });
  link.confirm = confirm;
  await confirm;
  if (failed !== undefined) throw failed;
}

function firstFailure(
  settled: readonly PromiseSettledResult<unknown>[],
): { index: number; error: unknown } | undefined {
  const index = settled.findIndex((r) => r.status === "rejected");
  return index < 0 ? undefined : { index, error: (settled[index] as PromiseRejectedResult).reason };
}
