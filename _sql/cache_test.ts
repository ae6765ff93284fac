import assert from "node:assert/strict";
import { TextCache } from "./cache.ts";

Deno.test("TextCache keeps at most its limit, evicting the oldest entry first", () => {
  const cache = new TextCache(2);
  assert.equal(cache.remember("a", "A"), "A");
  cache.remember("b", "B");
  assert.deepEqual([cache.get("a"), cache.get("b")], ["A", "B"]);
  cache.remember("c", "C");
  assert.deepEqual([cache.get("a"), cache.get("b"), cache.get("c")], [undefined, "B", "C"]);
});
