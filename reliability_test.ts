// Contention on the real (serializable) server: a bank of a few accounts and many concurrent
// transfers through transaction(), with the async API, the sync API from several threads, and
// both at once. Every transfer commits exactly once, is declined by its own callback, or fails
// with a typed error; the audit proves the total and every account against the ledger.
// The longer, fault-injecting version of this workload is `deno task soak`.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { testUrl, uniqueName } from "./_test_util.ts";
import {
  type Audit,
  auditBank,
  type Bank,
  countErrors,
  countOutcomes,
  createBank,
  dropBank,
  planTransfers,
  prng,
  runTransfers,
  runTransfersInThreads,
  type WorkloadResult,
} from "./soak/_bank.ts";

function seed(): number {
  const fromEnv = Number(Deno.env.get("RELIABILITY_SEED"));
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : Date.now() % 2 ** 31;
}

function report(label: string, seedValue: number, result: WorkloadResult, audit: Audit): void {
  const retries = Object.values(result.retries).reduce((a, b) => a + b, 0);
  console.log(
    `${label} (seed ${seedValue}): ${result.transfers.length} transfers ${
      Deno.inspect(countOutcomes(result.transfers))
    }, ${retries} retries ${Deno.inspect(result.retries)}, errors ${
      Deno.inspect(countErrors(result.transfers))
    }, ledger ${audit.ledgerRows} rows, total ${audit.total}/${audit.expectedTotal}`,
  );
}

/** Everything the audit must show after a workload without faults. */
function assertExact(result: WorkloadResult, audit: Audit, planned: number): void {
  assert.deepEqual(result.untyped, [], "every failure is a DatabaseError");
  assert.equal(result.transfers.length, planned, "every planned transfer ran");
  const outcomes = countOutcomes(result.transfers);
  assert.equal(outcomes.ambiguous, 0);
  for (const t of result.transfers) {
    if (t.outcome === "failed") assert.match(t.error ?? "", /^TransactionRetryError 40001$/);
  }
  assert.equal(audit.total, audit.expectedTotal, "the total is exact");
  assert.deepEqual(audit.negative, []);
  assert.deepEqual(audit.duplicates, [], "no transfer applied twice");
  assert.deepEqual(audit.lost, [], "every committed transfer is in the ledger");
  assert.deepEqual(audit.phantom, [], "no declined or failed transfer is in the ledger");
  assert.deepEqual(audit.unbalanced, [], "every balance matches the ledger");
  assert.equal(audit.ledgerRows, outcomes.committed);
  // Every retry reported through onRetry ran the callback once more, and nothing else did.
  const retried = Object.values(result.retries).reduce((a, b) => a + b, 0);
  const reruns = result.transfers.reduce((n, t) => n + t.runs - 1, 0);
  assert.equal(retried, reruns, "retries reported = extra runs of the callbacks");
}

async function withBank(
  accounts: number,
  balance: number,
  fn: (db: AsyncDatabase, bank: Bank) => Promise<void>,
): Promise<void> {
  await using db = new AsyncDatabase(testUrl(), { minConnections: 2, maxConnections: 10 });
  const bank = await createBank(db, uniqueName("bank"), accounts, balance);
  try {
    await fn(db, bank);
  } finally {
    await dropBank(db, bank);
  }
}

Deno.test("AsyncDatabase.transaction() keeps a bank exact under 1,000 concurrent transfers between 8 accounts", async () => {
  await withBank(8, 200, async (db, bank) => {
    const s = seed();
    const transfers = planTransfers(bank, 1000, prng(s));
    const result = await runTransfers(db, bank, transfers, { workers: 16 });
    const audit = await auditBank(db, bank, result.transfers);
    report("async bank", s, result, audit);
    assertExact(result, audit, transfers.length);
    // 16 tasks on 8 accounts of a serializable server: conflicts happen and are retried.
    assert.ok((result.retries["40001"] ?? 0) + (result.retries["40P01"] ?? 0) > 0);
    // The small balances make the callback decline some transfers: a throw rolls back.
    assert.ok(countOutcomes(result.transfers).declined > 0);
  });
});

Deno.test("Database.transaction() keeps a bank exact under 400 transfers from 4 threads", async () => {
  await withBank(6, 200, async (db, bank) => {
    const s = seed();
    const transfers = planTransfers(bank, 400, prng(s));
    const result = await runTransfersInThreads(testUrl(), bank, transfers, 4);
    const audit = await auditBank(db, bank, result.transfers);
    report("sync bank", s, result, audit);
    assertExact(result, audit, transfers.length);
    assert.ok(Object.values(result.retries).reduce((a, b) => a + b, 0) > 0);
  });
});

Deno.test("both APIs at once on the same accounts keep the bank exact", async () => {
  await withBank(6, 500, async (db, bank) => {
    const s = seed();
    const random = prng(s);
    const asyncTransfers = planTransfers(bank, 400, random);
    const syncTransfers = planTransfers(bank, 150, random);
    const [a, b] = await Promise.all([
      runTransfers(db, bank, asyncTransfers, { workers: 8 }),
      runTransfersInThreads(testUrl(), bank, syncTransfers, 3),
    ]);
    const result: WorkloadResult = {
      transfers: [...a.transfers, ...b.transfers],
      retries: Object.fromEntries(
        [...new Set([...Object.keys(a.retries), ...Object.keys(b.retries)])].map((code) => [
          code,
          (a.retries[code] ?? 0) + (b.retries[code] ?? 0),
        ]),
      ),
      untyped: [...a.untyped, ...b.untyped],
    };
    const audit = await auditBank(db, bank, result.transfers);
    report("mixed bank", s, result, audit);
    assertExact(result, audit, asyncTransfers.length + syncTransfers.length);
  });
});

Deno.test("the audit catches a lost transfer, one applied twice, one applied though it failed, and a wrong balance", async () => {
  // The bank tests above and the soak are only as strong as this audit: tamper with a bank
  // after an exact run and check that each kind of damage is reported.
  await withBank(4, 1000, async (db, bank) => {
    const transfers = planTransfers(bank, 40, prng(7));
    const result = await runTransfers(db, bank, transfers, { workers: 4 });
    assertExact(result, await auditBank(db, bank, result.transfers), transfers.length);
    const committed = result.transfers.filter((t) => t.outcome === "committed");
    assert.ok(committed.length >= 3, "the run committed enough transfers to tamper with");
    const [lost, twice, phantom] = committed;
    assert.ok(lost && twice && phantom);

    // Lost: its ledger row and its effect vanish together, so only the ledger can tell.
    await db.delete(bank.ledger, { transfer_id: lost.id });
    await db.execute(`UPDATE "${bank.accounts}" SET balance = balance + $1 WHERE id = $2`, [
      lost.amount,
      lost.from,
    ]);
    await db.execute(`UPDATE "${bank.accounts}" SET balance = balance - $1 WHERE id = $2`, [
      lost.amount,
      lost.to,
    ]);
    // Applied twice.
    await db.insert(bank.ledger, {
      transfer_id: twice.id,
      from_id: twice.from,
      to_id: twice.to,
      amount: twice.amount,
    });
    // Reported as failed, yet in the ledger.
    const lied = result.transfers.map((t) =>
      t === phantom ? { ...t, outcome: "failed" as const } : t
    );
    let audit = await auditBank(db, bank, lied);
    assert.deepEqual(audit.lost, [lost.id]);
    assert.deepEqual(audit.duplicates, [twice.id]);
    assert.deepEqual(audit.phantom, [phantom.id]);
    assert.ok(audit.unbalanced.includes(twice.from) || audit.unbalanced.includes(twice.to));
    assert.equal(audit.total, audit.expectedTotal, "moves between accounts keep the total");

    // Money from nowhere changes the total.
    await db.execute(`UPDATE "${bank.accounts}" SET balance = balance + 1 WHERE id = 1`);
    audit = await auditBank(db, bank, lied);
    assert.equal(audit.total, audit.expectedTotal + 1n);
    assert.ok(audit.unbalanced.includes(1));
  });
});
