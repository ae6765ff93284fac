// Transactions with AsyncDatabase: commit and return a value, roll back on a throw, the
// transaction handle's helpers, a contended transfer that shows CockroachDB-style retries,
// read-only transactions, and what happens when retries run out.
// Run: deno run -A examples/transactions.ts (uses DATABASE_URL when set; otherwise it starts a
// throwaway PostgreSQL server and removes it at the end). With DATABASE_URL set it needs only
// --allow-net --allow-env.
import {
  AsyncDatabase,
  type AsyncTransaction,
  DatabaseError,
  type RetryInfo,
  TransactionRetryError,
} from "../mod.ts";

interface Account {
  id: number;
  owner: string;
  balance: string;
}

function step(title: string): void {
  if (Deno.noColor) console.log(`\n== ${title}`);
  else console.log(`\n%c== ${title}`, "color: cyan; font-weight: bold");
}

async function serverUrl(): Promise<{ url: string; stop(): Promise<void> }> {
  const url = Deno.env.get("DATABASE_URL");
  if (url) return { url, stop: () => Promise.resolve() };
  const { startTestDatabase } = await import("../testing.ts");
  console.log("DATABASE_URL is not set: starting a throwaway PostgreSQL server");
  const server = await startTestDatabase();
  return { url: server.url, stop: () => server.stop() };
}

class InsufficientFunds extends Error {
  constructor(readonly account: number) {
    super(`Account ${account} has insufficient funds`);
    this.name = "InsufficientFunds";
  }
}

const suffix = Date.now().toString(36);
const accounts = `example_accounts_${suffix}`;
const transfers = `example_transfers_${suffix}`;

/** Moves `amount` from one account to another, recording the transfer: one transaction. */
async function transfer(tx: AsyncTransaction, from: number, to: number, amount: number) {
  const source = await tx.selectOne<Account>(accounts, { where: { id: from } });
  if (source === null || Number(source.balance) < amount) throw new InsufficientFunds(from);
  await tx.execute(`UPDATE "${accounts}" SET balance = balance - $1 WHERE id = $2`, [amount, from]);
  await tx.execute(`UPDATE "${accounts}" SET balance = balance + $1 WHERE id = $2`, [amount, to]);
  return await tx.insert(transfers, { from_id: from, to_id: to, amount });
}

async function balances(db: AsyncDatabase): Promise<string> {
  const rows = await db.select<Account>(accounts, { orderBy: "id" });
  return rows.map((a) => `${a.owner} ${a.balance}`).join(", ");
}

const server = await serverUrl();
try {
  await using db = new AsyncDatabase(server.url, { maxConnections: 8 });
  await db.connect();
  console.log(`Connected to ${db}`);
  await db.createTable(accounts, {
    id: "INT4 PRIMARY KEY",
    owner: "TEXT NOT NULL",
    balance: "DECIMAL(12,2) NOT NULL CHECK (balance >= 0)",
  });
  await db.createTable(transfers, {
    id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
    from_id: `INT4 NOT NULL REFERENCES "${accounts}" (id)`,
    to_id: `INT4 NOT NULL REFERENCES "${accounts}" (id)`,
    amount: "DECIMAL(12,2) NOT NULL",
  });
  await db.batchInsert(accounts, [
    { id: 1, owner: "alice", balance: "1000" },
    { id: 2, owner: "bob", balance: "500" },
    { id: 3, owner: "carol", balance: "0" },
  ]);
  console.log("opening balances:", await balances(db));

  step("Commit: the callback's value is returned after COMMIT");
  const receipt = await db.transaction((tx) => transfer(tx, 1, 2, 200));
  console.log(`transfer ${receipt.id} committed:`, await balances(db));

  step("Rollback: a throw undoes everything and is re-thrown unchanged");
  try {
    await db.transaction(async (tx) => {
      await tx.insert(transfers, { from_id: 3, to_id: 1, amount: 0 }); // undone below
      await transfer(tx, 3, 1, 50);
    });
  } catch (error) {
    if (!(error instanceof InsufficientFunds)) throw error;
    console.log(`${error.message}; nothing changed:`, await balances(db));
    console.log(`transfers recorded: ${await db.count(transfers)}`);
  }

  step("The tx handle runs on the transaction's own connection");
  await db.transaction(async (tx) => {
    await tx.insert(accounts, { id: 4, owner: "dave", balance: "10" });
    console.log(`inside: tx sees ${await tx.count(accounts)} accounts,`);
    console.log(`        another connection sees ${await db.count(accounts)} until COMMIT`);
  });
  console.log(`after COMMIT: ${await db.count(accounts)} accounts`);

  step("Contention: 12 concurrent transfers out of bob's account");
  let retries = 0;
  const onRetry = (info: RetryInfo) => {
    retries++;
    const code = info.error instanceof DatabaseError ? info.error.code : info.error.name;
    console.log(`  retry after attempt ${info.attempt} (${code}), waiting ${info.delayMs} ms`);
  };
  const results = await Promise.allSettled(
    Array.from(
      { length: 12 },
      (_, i) => db.transaction((tx) => transfer(tx, 2, 3, 25 + i), { onRetry, maxRetries: 50 }),
    ),
  );
  const committed = results.filter((r) => r.status === "fulfilled").length;
  console.log(`${committed} transfers committed after ${retries} retries:`, await balances(db));
  const total = await db.queryOne<{ total: string }>(
    `SELECT sum(balance)::text AS total FROM "${accounts}"`,
  );
  console.log(`money is conserved: the total is still ${total?.total}`);

  step("Read-only transactions refuse writes");
  try {
    await db.transaction((tx) => tx.update(accounts, { balance: "0" }, { id: 1 }), {
      readOnly: true,
    });
  } catch (error) {
    if (!(error instanceof DatabaseError)) throw error;
    console.log(`refused with ${error.code}: ${error.message}`);
  }
  const report = await db.transaction(
    (tx) =>
      tx.select<Account>(accounts, { columns: ["owner", "balance"], orderBy: "balance DESC" }),
    { readOnly: true, isolation: "repeatable read" },
  );
  console.log("a consistent read-only report:", report);

  step("When retries run out: TransactionRetryError");
  try {
    await db.transaction(async (tx) => {
      // A serialization failure on demand, as CockroachDB reports contention.
      await tx.execute(
        `DO $$ BEGIN RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001'; END $$`,
      );
    }, { maxRetries: 2, initialBackoff: 5 });
  } catch (error) {
    if (!(error instanceof TransactionRetryError)) throw error;
    console.log(`gave up after ${error.attempts} attempts: ${error.code} ${error.message}`);
  }

  step("Clean up");
  await db.dropTable(transfers);
  await db.dropTable(accounts);
  console.log("dropped the example tables");
} finally {
  await server.stop();
}
console.log("\nDone");
