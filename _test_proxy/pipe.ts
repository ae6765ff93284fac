// One direction of a proxied connection: chunks written in order, each at its due time, so the
// delay applies to every chunk, each way. (The TCP handshake and the close of a connection are
// not delayed: a real network adds a round trip to connect, and up to one to a close that waits
// for the server's.) Timers fire late, so the pipe asks for less by how late they have been.

/** Writes every byte of `bytes` to `conn`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Closes `conn`, which may be closed already. */
export function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

/** A chunk queued on a pipe. */
export interface Item {
  readonly bytes: Uint8Array;
  /** `performance.now()` before which the bytes are not written. */
  readonly due: number;
  /** Runs just before the bytes are written: from then on the peer may see them. */
  readonly before?: () => void;
}

/** How late `setTimeout` fires in this thread, in ms: a moving average. */
let timerLateness = 0;

/** One direction of a connection: writes queued chunks in order, each at its due time. */
export class Pipe {
  readonly #conn: () => Deno.Conn | undefined;
  readonly #onError: () => void;
  readonly #queue: Item[] = [];
  /** Wakes the writer waiting for a chunk, or for the end. */
  #wake: (() => void) | undefined;
  /** Cuts the writer's wait for a chunk's due time short. */
  #cancelSleep: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ending = false;
  #stopped = false;
  readonly done: Promise<void>;
  /** Chunks written after a delay. */
  delayed = 0;

  constructor(conn: () => Deno.Conn | undefined, onError: () => void) {
    this.#conn = conn;
    this.#onError = onError;
    this.done = this.#run();
  }

  push(item: Item): void {
    if (this.#ending || this.#stopped) return;
    this.#queue.push(item);
    this.#poke();
  }

  /** Writes what is queued, then stops. */
  end(): void {
    this.#ending = true;
    this.#poke();
  }

  /** Stops now; queued chunks are dropped. */
  stop(): void {
    this.#stopped = true;
    this.#queue.length = 0;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const cancel = this.#cancelSleep;
    this.#cancelSleep = undefined;
    cancel?.();
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #sleep(ms: number): Promise<void> {
    // Timers fire late (about a millisecond, more on a busy machine), which would add to every
    // chunk's delay: ask for that much less, so that chunks leave on time on average.
    const asked = Math.max(0, ms - timerLateness);
    const start = performance.now();
    return new Promise<void>((resolve) => {
      this.#cancelSleep = resolve;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#cancelSleep = undefined;
        const late = performance.now() - start - asked;
        timerLateness += (Math.min(Math.max(late, 0), 5) - timerLateness) / 16;
        resolve();
      }, asked);
    });
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const item = this.#queue.shift();
      if (item === undefined) {
        if (this.#ending) return;
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      const wait = item.due - performance.now();
      if (wait > 0) {
        await this.#sleep(wait);
        if (this.#stopped) return;
        this.delayed++;
      }
      const conn = this.#conn();
      if (conn === undefined) return;
      item.before?.();
      try {
        await writeAll(conn, item.bytes);
      } catch {
        this.#stopped = true;
        this.#onError();
        return;
      }
    }
  }
}
