// Hostile identifiers on the real server: generated table, column and database names
// (quotes, injection payloads aimed at a canary table, NULs, lone surrogates, names past 63
// bytes, schema-qualified and over-qualified names) go through DDL, every CRUD helper and
// AsyncTable. Each name is either quoted exactly (the table is made, used and dropped under that
// name) or refused with ValidationError or DatabaseError, as predicted from PostgreSQL's rules;
// the canary proves that no payload ran.
//
// Inputs come from a seeded PRNG; the seed is printed, and HOSTILE_SEED=<seed> replays a run.
import assert from "node:assert/strict";
import type { AsyncDatabase, Row } from "./async_database.ts";
import { AsyncTable } from "./crud/async_table.ts";
import { DatabaseError, ValidationError } from "./errors.ts";
import { uniqueName } from "./_test_util.ts";
import {
  assertRefusal,
  type Canary,
  Failures,
  hostileString,
  int,
  isValidIdentifier,
  isValidText,
  outcome,
  pick,
  type Random,
  seedFor,
  show,
  SYSTEM_COLUMNS,
  withCanary,
} from "./_test_hostile.ts";
import { prng } from "./soak/_bank.ts";

Deno.test("hostile identifiers go through DDL, every CRUD helper and AsyncTable: quoted exactly, or refused", async () => {
  const random = prng(seedFor("identifiers"));
  let tried = 0;
  let created = 0;
  let refused = 0;
  const failures = new Failures();
  await withCanary(async (db, canary) => {
    for (let batch = 0; batch < 160; batch++) {
      const prefix = `h${batch}_${uniqueName("").slice(1, 7)}_`;
      const roll = random();
      let base = prefix + hostileString(random, canary, 0.05, 3);
      if (random() < 0.8) {
        while (!isValidIdentifier(base)) base = prefix + hostileString(random, canary, 0.05, 3);
      }
      // Mostly plain names, some schema-qualified (public or a schema that does not exist), some
      // with more than one dot.
      const table = roll < 0.7
        ? base
        : roll < 0.85
        ? `public.${base}`
        : roll < 0.93
        ? `${hostileString(random, canary, 0.05, 2)}.${base}`
        : `a.b.${base}`;
      // Most batches hold valid names only (generated until valid); the others one invalid name.
      const invalidAt = random() < 0.7 ? -1 : int(random, 12);
      const columns = new Set<string>();
      while (columns.size < 12) {
        const name = columns.size === invalidAt
          ? pick(random, ["", "\0", "a\0b", "x\uD800", "\uDFFFy", "é".repeat(32), "x".repeat(64)]) +
            hostileString(random, canary, 0, 1).slice(0, 3)
          : hostileString(random, canary, 0.05, 3);
        if (name === "id" || (columns.size !== invalidAt && !isValidIdentifier(name))) continue;
        columns.add(name);
      }
      const names = [...columns];
      tried += 1 + names.length;

      const dot = table.indexOf(".");
      const tableParts = dot === -1 ? [table] : [table.slice(0, dot), table.slice(dot + 1)];
      const validNames = !table.slice(dot + 1).includes(".") &&
        tableParts.every(isValidIdentifier) && names.every(isValidIdentifier);
      const definition = Object.fromEntries([
        ["id", "INT8 PRIMARY KEY"],
        ...names.map((n) => [n, "TEXT"]),
      ]);
      const result = await outcome(() => db.createTable(table, definition));
      if (!validNames) {
        assert.ok(
          result.error instanceof ValidationError,
          `createTable(${show(table)}, ${show(names)}) must throw ValidationError, got ${
            show(result.error ?? "success")
          }`,
        );
        refused++;
        continue;
      }
      const schemaMissing = dot !== -1 && tableParts[0] !== "public";
      if (schemaMissing || names.some((n) => SYSTEM_COLUMNS.has(n))) {
        assert.ok(
          result.error instanceof DatabaseError && !(result.error instanceof ValidationError),
          `createTable(${show(table)}) must throw DatabaseError, got ${
            show(result.error ?? "success")
          }`,
        );
        refused++;
        continue;
      }
      assert.equal(
        result.error,
        undefined,
        `createTable(${show(table)}, ${show(names)}): ${show(result.error)}`,
      );
      created++;
      await failures.check(async () => {
        try {
          await crudWithIdentifiers(db, table, names, random, canary);
        } finally {
          await db.dropTable(table);
        }
        assert.equal(await db.tableExists(table), false);
      });
      if (failures.full) break;
    }
    // Column type strings that try to end the statement are refused before any SQL runs.
    for (const payload of canary.payloads) {
      tried++;
      const result = await outcome(() =>
        db.createTable(uniqueName("typed"), {
          id: `INT PRIMARY KEY${payload.startsWith("*/") ? "" : ","} ${payload}`,
        })
      );
      assertRefusal(result.error, `a column type holding ${show(payload)}`);
    }
  });
  console.log(
    `identifiers: ${tried} tried, ${created} tables created and used, ${refused} refused`,
  );
  failures.finish("identifier batches");
  assert.ok(
    created > 20 && refused > 5,
    `too few of either kind: ${created} created, ${refused} refused`,
  );
});

async function crudWithIdentifiers(
  db: AsyncDatabase,
  table: string,
  names: readonly string[],
  random: Random,
  canary: Canary,
): Promise<void> {
  const context = `table ${show(table)}, columns ${show(names)}`;
  const [a, b] = names;
  assert.ok(a !== undefined && b !== undefined, `two columns at least: ${context}`);
  const value = () => {
    let text = hostileString(random, canary, 0);
    while (!isValidText(text)) text = hostileString(random, canary, 0);
    return text;
  };
  const record = (id: bigint) =>
    Object.fromEntries([["id", id], ...names.map((n) => [n, value()])]) as Row;

  assert.equal(await db.tableExists(table), true, context);
  const first = record(1n);
  assert.deepEqual(await db.insert(table, first), first, `insert: ${context}`);
  assert.deepEqual(
    await db.select(table, { where: { [a]: first[a] } }),
    [first],
    `select: ${context}`,
  );
  assert.deepEqual(
    await db.select(table, {
      columns: [a, b],
      where: { [b]: { in: [first[b]] } },
      orderBy: { [a]: "desc" },
    }),
    [{ [a]: first[a], [b]: first[b] }],
    `select columns: ${context}`,
  );
  assert.deepEqual(await db.selectOne(table, { where: { [a]: { like: "%" } } }), first);
  const changed = value();
  assert.deepEqual(await db.update(table, { [b]: changed }, { [a]: first[a] }), [{
    ...first,
    [b]: changed,
  }]);
  first[b] = changed;
  assert.equal(await db.count(table, { [b]: changed }), 1, `count: ${context}`);
  const upserted = { ...record(1n) };
  assert.deepEqual(
    await db.upsert(table, upserted, { conflictColumns: ["id"] }),
    upserted,
    `upsert: ${context}`,
  );
  const batch = [record(2n), record(3n), record(4n)];
  assert.deepEqual(await db.batchInsert(table, batch), batch, `batchInsert: ${context}`);
  const copied = [record(5n), record(6n)];
  assert.equal(await db.batchInsert(table, copied, { returning: false }), 2);
  assert.deepEqual(
    await db.select(table, { where: { id: { gte: 5 } }, orderBy: { id: "asc" } }),
    copied,
  );
  const upserts = [record(2n), record(7n)];
  assert.deepEqual(await db.batchUpsert(table, upserts, { conflictColumns: ["id"] }), upserts);
  const third = { id: 3n, [a]: value() };
  const updates = [third, { id: 4n, [a]: value() }];
  const updated = await db.batchUpdate(table, updates);
  assert.deepEqual(updated.map((r) => [r.id, r[a]]), updates.map((r) => [r.id, r[a]]));
  assert.equal(
    await db.delete(table, { [a]: third[a] as string, id: 3n }),
    1,
    `delete: ${context}`,
  );
  assert.equal(await db.count(table), 6);
  for await (const row of db.stream(`SELECT * FROM ${quoteForTest(table)} WHERE id = $1`, [1n])) {
    assert.deepEqual(row, upserted);
  }

  // The same names through AsyncTable.
  const tableObject = new AsyncTable(table, { db });
  const created = record(10n);
  assert.deepEqual(await tableObject.create(created), created, `AsyncTable.create: ${context}`);
  assert.deepEqual(await tableObject.read(10n), created);
  assert.deepEqual(await tableObject.get(10n), created);
  // With the id too: a short random value may also stand in another row.
  assert.deepEqual(await tableObject.findOne({ [a]: created[a], id: 10n }), created);
  assert.deepEqual(
    await tableObject.getMany([10n, 1n]),
    [upserted, created],
    `getMany: ${context}`,
  );
  // Unique, so that the filters below match this row only.
  const renamed = value() + uniqueName("|");
  assert.deepEqual(await tableObject.update(10n, { [a]: renamed }), { ...created, [a]: renamed });
  assert.equal(
    (await tableObject.updateWhere({ [a]: renamed }, { [b]: renamed })).length,
    1,
    `updateWhere: ${context}`,
  );
  assert.deepEqual(
    (await tableObject.list({ where: { id: { in: [10, 1] } }, orderBy: { [b]: "asc" }, limit: 5 }))
      .length,
    2,
  );
  assert.equal(await tableObject.exists(10n), true);
  assert.equal(await tableObject.count({ [a]: renamed }), 1, `count: ${context}`);
  const more = [record(11n), record(12n)];
  assert.deepEqual(await tableObject.batchCreate(more), more);
  assert.equal(await tableObject.delete(11n), true);
  assert.equal(await tableObject.deleteWhere({ id: 12n }), 1);
  await tableObject.truncate();
  assert.equal(await db.count(table), 0);
}

/** Quotes a table name the way the API documents it (for the raw `stream` call). */
function quoteForTest(table: string): string {
  const dot = table.indexOf(".");
  const parts = dot === -1 ? [table] : [table.slice(0, dot), table.slice(dot + 1)];
  return parts.map((p) => `"${p.replaceAll('"', '""')}"`).join(".");
}

Deno.test("hostile database names are quoted exactly or refused by createDatabase() and dropDatabase()", async () => {
  const random = prng(seedFor("database names"));
  await withCanary(async (db, canary) => {
    for (let i = 0; i < 6; i++) {
      const name = `${uniqueName("hdb").slice(0, 16)}${hostileString(random, canary, 0.2, 3)}`;
      const created = await outcome(() => db.createDatabase(name));
      if (!isValidIdentifier(name)) {
        assert.ok(
          created.error instanceof ValidationError,
          `createDatabase(${show(name)}): ${show(created.error)}`,
        );
        continue;
      }
      assert.equal(
        created.error,
        undefined,
        `createDatabase(${show(name)}): ${show(created.error)}`,
      );
      const found = await db.queryOne("SELECT 1 AS one FROM pg_database WHERE datname = $1", [
        name,
      ]);
      assert.deepEqual(found, { one: 1 }, `database ${show(name)} exists under its exact name`);
      await db.dropDatabase(name);
      assert.equal(await db.queryOne("SELECT 1 FROM pg_database WHERE datname = $1", [name]), null);
    }
  });
});
