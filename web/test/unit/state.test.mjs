import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULTS, parseState, seriesLast, toSearch } from "../../src/state.js";

test("defaults and round trip", () => {
  assert.deepEqual(parseState(""), { ...DEFAULTS });
  const s = { window: "6h", metric: "cost", k: 25, ad: "ad'q", res: "1h", refresh: 2 };
  assert.deepEqual(parseState(toSearch(s)), s);
  assert.equal(toSearch(DEFAULTS), "?window=15m&metric=clicks");
});

test("invalid values fall back to defaults", () => {
  const s = parseState("?window=7m&metric=views&k=0&ad=has%20space&res=1d&refresh=9999");
  assert.deepEqual(s, { ...DEFAULTS });
  assert.equal(parseState("?k=100").k, 100);
  assert.equal(parseState("?k=101").k, 10);
});

test("resolution is only in the URL with an ad", () => {
  assert.equal(toSearch({ ...DEFAULTS, res: "5m" }), "?window=15m&metric=clicks");
  assert.equal(toSearch({ ...DEFAULTS, ad: "ad-1", res: "5m" }), "?window=15m&metric=clicks&ad=ad-1&res=5m");
});

test("series range: the window, at least 12 points, at most 24h", () => {
  assert.equal(seriesLast("15m", "1m"), "15m");
  assert.equal(seriesLast("5m", "1m"), "12m");
  assert.equal(seriesLast("15m", "5m"), "1h");
  assert.equal(seriesLast("1h", "1h"), "12h");
  assert.equal(seriesLast("24h", "1m"), "24h"); // 1440 points <= 1500
  assert.equal(seriesLast("24h", "1h"), "24h");
});
