// Basic CRUD with AsyncDatabase: create a table, insert, select with filters and ordering,
// update, upsert, batch operations, count, stream, delete, and clean up.
// Run: deno run -A examples/basic_crud.ts (uses DATABASE_URL when set; otherwise it starts a
// throwaway PostgreSQL server and removes it at the end). With DATABASE_URL set it needs only
// --allow-net --allow-env.
import { AsyncDatabase, UniqueViolationError, ValidationError } from "../mod.ts";

interface User {
  id: string;
  name: string;
  email: string;
  age: number | null;
  active: boolean;
  balance: string;
  created_at: Date;
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

const server = await serverUrl();
const table = `example_users_${Date.now().toString(36)}`;
try {
  await using db = new AsyncDatabase(server.url);
  await db.connect();
  console.log(`Connected to ${db}: ${db.serverVersion.split(" on ")[0]}`);

  step("Create a table");
  await db.createTable(table, {
    id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
    name: "TEXT NOT NULL",
    email: "TEXT NOT NULL UNIQUE",
    age: "INT4",
    active: "BOOLEAN NOT NULL DEFAULT true",
    balance: "DECIMAL(12,2) NOT NULL DEFAULT 0",
    created_at: "TIMESTAMPTZ NOT NULL DEFAULT now()",
  });
  console.log(`created ${table}; exists: ${await db.tableExists(table)}`);

  step("Insert");
  const ada = await db.insert<User>(table, { name: "Ada", email: "ada@example.com", age: 36 });
  console.log("inserted", { id: ada.id, name: ada.name, balance: ada.balance });
  try {
    await db.insert(table, { name: "Ada again", email: "ada@example.com" });
  } catch (error) {
    if (!(error instanceof UniqueViolationError)) throw error;
    console.log(`duplicate email refused: ${error.code} on ${error.constraint}`);
  }

  step("Batch insert");
  const team = await db.batchInsert<User>(table, [
    { name: "Grace", email: "grace@example.com", age: 45, active: true },
    { name: "Alan", email: "alan@example.com", age: 41, active: false },
    { name: "Edsger", email: "edsger@example.com", age: null, active: true },
    { name: "Barbara", email: "barbara@example.com", age: 52, active: true },
  ]);
  console.log(`inserted ${team.length} rows, in input order:`, team.map((u) => u.name).join(", "));

  step("Select");
  const over40 = await db.select<User>(table, {
    columns: ["name", "age"],
    where: { age: { gt: 40 }, active: true },
    orderBy: "age DESC",
  });
  console.log("active users over 40, oldest first:", over40);
  const unknownAge = await db.select<User>(table, { where: { age: null } });
  console.log("users of unknown age:", unknownAge.map((u) => u.name));
  const some = await db.select<User>(table, {
    where: { name: ["Ada", "Alan"] },
    orderBy: { name: "asc" },
  });
  console.log("Ada and Alan:", some.map((u) => u.email));
  const page = await db.select<User>(table, { orderBy: ["name"], limit: 2, offset: 1 });
  console.log("page 2 of size 2 by name:", page.map((u) => u.name));
  console.log(
    "selectOne:",
    (await db.selectOne<User>(table, { where: { email: "grace@example.com" } }))?.name,
  );

  step("Update and upsert");
  const updated = await db.update<User>(table, { balance: "100.50" }, { active: true });
  console.log(`credited ${updated.length} active users`);
  const upserted = await db.upsert<User>(table, {
    id: ada.id,
    name: "Ada Lovelace",
    email: "ada@example.com",
  });
  console.log("upserted on the primary key:", upserted.name, upserted.balance);
  const [grace, alan] = team; // one row per record, in input order
  if (grace === undefined || alan === undefined) throw new Error("Cannot find Grace and Alan");
  const moved = await db.batchUpdate<User>(table, [
    { id: grace.id, age: 46 },
    { id: alan.id, age: 42 },
  ]);
  console.log("batch updated:", moved.map((u) => `${u.name} (${u.age}, active ${u.active})`));

  step("Count and stream");
  console.log(
    `count: ${await db.count(table)}, active: ${await db.count(table, { active: true })}`,
  );
  for await (
    const row of db.stream<User>(`SELECT name FROM "${table}" ORDER BY name`, [], {
      batchSize: 2,
    })
  ) {
    console.log("  streamed", row.name);
  }

  step("Raw SQL");
  const [stats] = await db.execute<{ users: bigint; total: string }>(
    `SELECT count(*) AS users, sum(balance) AS total FROM "${table}" WHERE age >= $1`,
    [40],
  );
  if (stats === undefined) throw new Error("Cannot read the totals: no row"); // an aggregate has one
  console.log(`users aged 40+: ${stats.users} (INT8 as bigint), balance ${stats.total} (exact)`);

  step("Delete");
  try {
    await db.delete(table, {});
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    console.log(`empty where refused: ${error.message}`);
  }
  console.log(`deleted ${await db.delete(table, { active: false })} inactive users`);
  console.log(`deleted ${await db.delete(table, { age: null })} users of unknown age`);
  console.log(`left: ${await db.count(table)}`);

  step("Clean up");
  await db.dropTable(table);
  console.log(`dropped ${table}; exists: ${await db.tableExists(table)}`);
} finally {
  await server.stop();
}
console.log("\nDone");
