import assert from "node:assert/strict";
import { MigrationError } from "../errors.ts";
import { resolveRunnerConfig } from "./config.ts";
import { acquireLockProgram } from "./lock.ts";
import type { MigrationProgress } from "./types.ts";

Deno.test("acquireLockProgram() waits by the injected clock, with backoff, then gives up", () => {
  let clock = 0;
  const c = resolveRunnerConfig({ lockTimeout: 1000 }, {
    now: () => clock,
    random: () => 0.5,
    owner: "me",
  });
  const events: MigrationProgress[] = [];
  const program = acquireLockProgram(c, (event) => events.push(event));
  const expiresAt = new Date("2030-01-01T00:00:00Z");
  const sleeps: number[] = [];
  let error: unknown;
  try {
    // The lock is held by another runner on every attempt; sleeping moves the clock only.
    for (let next = program.next(); !next.done;) {
      const effect = next.value;
      if (effect.kind === "query") {
        // The take (INSERT … RETURNING) returns nothing; the read of the holder names it.
        next = program.next(
          effect.text.startsWith("INSERT") ? [] : [{ owner: "other", expires_at: expiresAt }],
        );
      } else if (effect.kind === "sleep") {
        sleeps.push(effect.ms);
        clock += effect.ms;
        next = program.next();
      } else assert.fail(`unexpected effect ${effect.kind}`);
    }
  } catch (e) {
    error = e;
  }
  // 25 ms doubling up to 1 s, times 0.75 (the jitter at 0.5), the last one cut to the timeout.
  assert.deepEqual(sleeps, [19, 38, 75, 150, 300, 418]);
  assert.ok(error instanceof MigrationError);
  assert.equal(error.code, "MIGRATION_LOCKED");
  assert.match(error.message, /held by "other" until 2030-01-01T00:00:00.000Z; waited 1000 ms; /);
  assert.deepEqual(events, [{ type: "waiting", owner: "other", expiresAt }]);
});
