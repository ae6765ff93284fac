// Tables: declare a table as a class, then create, read, update, list, count, batch, and run a
// transaction through it; once with AsyncTable, once with the synchronous Table.
// Run: deno run -A examples/tables.ts (it starts a throwaway PostgreSQL server and removes it at
// the end; with TEST_DATABASE_URL set, a fresh database on that server).
import { AsyncDatabase } from "../mod.ts";
import { Database } from "../database.ts";
import {
  AsyncTable,
  RecordNotFoundError,
  Table,
  TableNotInitializedError,
  UniqueViolationError,
} from "../crud/mod.ts";
import { startTestDatabase } from "../testing.ts";

interface User {
  id: string;
  name: string;
  email: string;
  age: number | null;
  active: boolean;
  credits: number;
}

const suffix = Date.now().toString(36);

// A base schema that other tables compose by spread.
const base = {
  id: "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
  created_at: "TIMESTAMPTZ NOT NULL DEFAULT now()",
};

class Users extends AsyncTable<User> {
  static override tableName = `example_users_${suffix}`;
  static override schema = {
    ...base,
    name: "TEXT NOT NULL",
    email: "TEXT NOT NULL UNIQUE",
    age: "INT4",
    active: "BOOLEAN NOT NULL DEFAULT true",
    credits: "INT4 NOT NULL DEFAULT 0",
  };
}

class SyncUsers extends Table<User> {
  static override tableName = `example_sync_users_${suffix}`;
  static override schema = Users.schema;
}

function step(title: string): void {
  if (Deno.noColor) console.log(`\n== ${title}`);
  else console.log(`\n%c== ${title}`, "color: cyan; font-weight: bold");
}

await using server = await startTestDatabase();

step("AsyncTable");
{
  await using db = new AsyncDatabase(server.url);
  const users = new Users(db); // created on first use (or by users.initialize())
  try {
    const ada = await users.create({ name: "Ada", email: "ada@example.com", age: 36 });
    console.log("created", ada);
    console.log("read", (await users.read(ada.id)).name);
    console.log("updated", await users.update(ada.id, { age: 37 }));

    const more = await users.batchCreate([
      { name: "Grace", email: "grace@example.com", age: 45, active: true },
      { name: "Alan", email: "alan@example.com", age: 41, active: false },
      { name: "Edsger", email: "edsger@example.com", age: 72, active: true },
    ]);
    console.log(`batch created ${more.length} users`);
    await users.batchUpdate(more.map((u) => ({ id: u.id, credits: 10 })));

    const over40 = await users.list({
      where: { age: { gt: 40 }, active: true },
      orderBy: "age DESC",
      limit: 10,
    });
    console.log("active users over 40, oldest first:", over40.map((u) => u.name).join(", "));
    console.log("count:", await users.count(), "active:", await users.count({ active: true }));
    console.log("findOne by email:", (await users.findOne({ email: "alan@example.com" }))?.name);
    console.log("getMany:", (await users.getMany(more.map((u) => u.id))).length, "rows");

    try {
      await users.create({ name: "Ada again", email: "ada@example.com" });
    } catch (error) {
      if (!(error instanceof UniqueViolationError)) throw error;
      console.log("duplicate email refused:", error.constraint);
    }
    try {
      await users.read("00000000-0000-4000-8000-000000000000");
    } catch (error) {
      if (!(error instanceof RecordNotFoundError)) throw error;
      console.log("missing id:", error.message);
    }

    // A table bound to a transaction: every statement commits together, or none does.
    const [grace, alan, edsger] = more; // one row per record, in input order
    if (!grace || !alan || !edsger) throw new Error("Cannot find the users just created");
    await db.transaction(async (tx) => {
      const t = users.withTransaction(tx);
      const from = await t.read(grace.id);
      const to = await t.read(alan.id);
      await t.update(from.id, { credits: from.credits - 5 });
      await t.update(to.id, { credits: to.credits + 5 });
    });
    console.log(
      "after the transfer:",
      (await users.getMany([grace.id, alan.id])).map((u) => `${u.name}=${u.credits}`).join(", "),
    );

    console.log("deleted Edsger:", await users.delete(edsger.id));
    console.log("exists:", await users.exists(edsger.id));

    // Without a schema, a table object attaches to an existing table.
    const missing = new AsyncTable(`example_missing_${suffix}`, { db });
    try {
      await missing.count();
    } catch (error) {
      if (!(error instanceof TableNotInitializedError)) throw error;
      console.log("attached to a missing table:", error.message);
    }
  } finally {
    await users.drop();
  }
}

step("Table (synchronous)");
{
  using db = new Database(server.url);
  const users = new SyncUsers(db); // CREATE TABLE IF NOT EXISTS runs here
  try {
    const ada = users.create({ name: "Ada", email: "ada@example.com", age: 36 });
    users.batchCreate([
      { name: "Grace", email: "grace@example.com", age: 45 },
      { name: "Alan", email: "alan@example.com", age: 41 },
    ]);
    console.log("read", users.read(ada.id).name);
    console.log("list:", users.list({ orderBy: "name" }).map((u) => u.name).join(", "));
    db.transaction((tx) => {
      users.withTransaction(tx).updateWhere({ age: { gte: 40 } }, { credits: 100 });
    });
    console.log("users with 100 credits:", users.count({ credits: 100 }));
    users.truncate();
    console.log("after truncate:", users.count());
  } finally {
    users.drop();
  }
}
