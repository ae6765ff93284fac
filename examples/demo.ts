// `deno task demo`: a tour of @manticore/cockroachdb. It starts a throwaway PostgreSQL server
// (serializable, like CockroachDB) and removes it at the end; with TEST_DATABASE_URL set it uses
// a fresh database on that server instead, and drops it at the end.
import { AsyncDatabase, type RetryInfo } from "../mod.ts";
import { startTestDatabase } from "../testing.ts";

const noColor = Deno.noColor;
function step(title: string): void {
  if (noColor) console.log(`\n== ${title}`);
  else console.log(`\n%c== ${title}`, "color: cyan; font-weight: bold");
}

const server = await startTestDatabase();
console.log(
  server.external
    ? "Using a fresh database on the server in TEST_DATABASE_URL"
    : "Started a throwaway PostgreSQL server (serializable isolation, like CockroachDB)",
);

const db = new AsyncDatabase(server.url, { maxConnections: 8 });
try {
  step("Connect");
  await db.connect();
  console.log(`${db} → ${db.serverVersion.split(" on ")[0]}`);

  step("Create a table");
  const table = `demo_accounts_${Date.now().toString(36)}`;
  await db.createTable(table, {
    id: "SERIAL PRIMARY KEY",
    owner: "TEXT NOT NULL UNIQUE",
    balance: "DECIMAL(12,2) NOT NULL",
    tags: "JSONB",
  });
  console.log(`created ${table}`);

  step("CRUD");
  const alice = await db.insert(table, { owner: "alice", balance: "100.00", tags: { vip: true } });
  const bob = await db.insert(table, { owner: "bob", balance: "100.00", tags: null });
  console.log("inserted", alice, bob);
  const more = await db.batchInsert(table, [
    { owner: "carol", balance: "50.00", tags: { team: "ops" } },
    { owner: "dave", balance: "25.00", tags: { team: "dev" } },
  ]);
  console.log(`batch inserted ${more.length} rows`);
  console.log(
    "owners with balance > 40, richest first:",
    (await db.select(table, {
      columns: ["owner", "balance"],
      where: { balance: { gt: "40" } },
      orderBy: { balance: "desc", owner: "asc" },
    })).map((r) => `${r.owner}=${r.balance}`).join(", "),
  );
  await db.update(table, { balance: "30.00" }, { owner: "dave" });
  console.log("dave now has", (await db.selectOne(table, { where: { owner: "dave" } }))?.balance);
  console.log("deleted", await db.delete(table, { owner: "carol" }), "row(s)");
  console.log("count:", await db.count(table));

  step("A contended transfer: 20 concurrent transfers between alice and bob");
  let retries = 0;
  const onRetry = (info: RetryInfo): void => {
    retries++;
    if (retries <= 3) {
      console.log(
        `  retry after SQLSTATE ${
          (info.error as { code?: string }).code
        }, waiting ${info.delayMs} ms`,
      );
    }
  };
  await Promise.all(Array.from({ length: 20 }, (_, i) =>
    db.transaction(async (tx) => {
      const [from, to] = i % 2 === 0 ? ["alice", "bob"] : ["bob", "alice"];
      const source = await tx.selectOne(table, { where: { owner: from } });
      const target = await tx.selectOne(table, { where: { owner: to } });
      await tx.update(table, { balance: (Number(source!.balance) - 5).toFixed(2) }, {
        owner: from,
      });
      await tx.update(table, { balance: (Number(target!.balance) + 5).toFixed(2) }, { owner: to });
    }, { onRetry })));
  const total = await db.queryOne<{ total: string }>(
    `SELECT sum(balance)::text AS total FROM "${table}" WHERE owner IN ('alice', 'bob')`,
  );
  console.log(
    `20 transfers committed after ${retries} retries; alice + bob = ${total?.total} (was 200.00)`,
  );

  step("Stream rows through a cursor");
  let streamed = 0;
  for await (
    const _ of db.stream("SELECT g FROM generate_series(1, 10000) AS g", [], { batchSize: 2000 })
  ) {
    streamed++;
  }
  console.log(`streamed ${streamed} rows, 2000 per round trip`);

  step("Clean up");
  await db.dropTable(table);
  console.log(`dropped ${table}`);
} finally {
  await db.close();
  await server.stop();
}
console.log("\nDone.");
