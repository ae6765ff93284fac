// The caches of built SQL text: small FIFO maps from a statement's shape (its table, columns,
// operators and options, never its values) to the text built for it, so that a repeated shape
// costs a lookup. The text of a shape is rebuilt after eviction, so a bound only trades memory
// for speed. Keys that combine several names are JSON arrays, which cannot collide the way
// joined strings could.

/** A map of at most `limit` texts; when full, the oldest entry makes room. */
export class TextCache {
  readonly #limit: number;
  readonly #texts = new Map<string, string>();

  /** An empty cache of at most `limit` texts. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The text cached for `key`, if any. */
  get(key: string): string | undefined {
    return this.#texts.get(key);
  }

  /** Caches `text` for `key`, and returns it. */
  remember(key: string, text: string): string {
    if (this.#texts.size >= this.#limit) {
      this.#texts.delete(this.#texts.keys().next().value as string);
    }
    this.#texts.set(key, text);
    return text;
  }
}
