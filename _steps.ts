// Step programs and the one loop that runs them. The transaction protocol (`_retry.ts`) and the
// migration engine (`_migration_plan.ts`) are generators that yield the steps to take and
// receive their results; a performer takes each step. `runAsync` awaits the performer,
// `runSync` calls a blocking one: the async and sync runners differ only in their performers.
//
// Also here: the two sleeps those performers use, one awaited and one that blocks the thread.

/** A program of steps `S` that ends with a `T`. */
export type StepProgram<S, T> = Generator<S, T, unknown>;

/**
 * Runs `program`: each step goes to `perform`, whose value is sent back into the program and
 * whose error (thrown or rejected) is thrown into it. Returns what the program returns.
 */
export async function runAsync<S, T>(
  program: StepProgram<S, T>,
  perform: (step: S) => Promise<unknown>,
): Promise<T> {
  let next = program.next();
  for (;;) {
    if (next.done) return next.value;
    let value: unknown;
    try {
      value = await perform(next.value);
    } catch (error) {
      next = program.throw(error);
      continue;
    }
    next = program.next(value);
  }
}

/** Runs `program` with a blocking `perform`, as {@linkcode runAsync} does. */
export function runSync<S, T>(program: StepProgram<S, T>, perform: (step: S) => unknown): T {
  let next = program.next();
  for (;;) {
    if (next.done) return next.value;
    let value: unknown;
    try {
      value = perform(next.value);
    } catch (error) {
      next = program.throw(error);
      continue;
    }
    next = program.next(value);
  }
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return new Promise((resolve) => setTimeout(resolve, ms));
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

let sleepCell: Int32Array | undefined;

/** Blocks the calling thread for `ms` milliseconds (`Atomics.wait` on a cell nobody notifies). */
export function sleepSync(ms: number): void {
  sleepCell ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleepCell, 0, 0, ms);
}
