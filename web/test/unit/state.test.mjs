import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULTS, detailOf, fits, floorTo, minutesOf, parseState, resolutionFor, rowResolution, seriesLast, span,
  toSearch } from "../../src/state.js";

test("defaults and round trip", () => {
  assert.deepEqual(parseState(""), { ...DEFAULTS });
  const s = { window: "6h", metric: "cost", k: 25, ad: "ad'q", campaign: null, res: "1h", refresh: 2 };
  assert.deepEqual(parseState(toSearch(s)), s);
  const c = { window: "30d", metric: "ctr", k: 10, ad: null, campaign: "cmp-001", res: "1d", refresh: 5 };
  assert.equal(toSearch(c), "?window=30d&metric=ctr&campaign=cmp-001&res=1d");
  assert.deepEqual(parseState(toSearch(c)), c);
  assert.equal(toSearch(DEFAULTS), "?window=15m&metric=clicks");
});

test("invalid values fall back to defaults", () => {
  const s = parseState("?window=7m&metric=views&k=0&ad=has%20space&campaign=&res=1w&refresh=9999");
  assert.deepEqual(s, { ...DEFAULTS });
  assert.equal(parseState("?k=100").k, 100);
  assert.equal(parseState("?k=101").k, 10);
  assert.equal(parseState("?metric=cvr").metric, "clicks"); // the API ranks by it, the page does not offer it
  for (const m of ["impressions", "conversions", "ctr"]) assert.equal(parseState(`?metric=${m}`).metric, m);
  for (const w of ["7d", "30d"]) assert.equal(parseState(`?window=${w}`).window, w);
});

test("one detail at a time: ad or campaign, the ad wins", () => {
  assert.deepEqual(detailOf(parseState("?campaign=cmp-1")), { kind: "campaign", id: "cmp-1" });
  assert.deepEqual(detailOf(parseState("?ad=ad-1&campaign=cmp-1")), { kind: "ad", id: "ad-1" });
  assert.equal(parseState("?ad=ad-1&campaign=cmp-1").campaign, null);
  assert.equal(detailOf(parseState("?campaign=has%20space")), null);
  assert.equal(toSearch({ ...DEFAULTS, ad: "ad-1", campaign: "cmp-1", res: "5m" }), "?window=15m&metric=clicks&ad=ad-1&res=5m");
});

test("resolution is only in the URL with a detail", () => {
  assert.equal(toSearch({ ...DEFAULTS, res: "5m" }), "?window=15m&metric=clicks");
  assert.equal(toSearch({ ...DEFAULTS, ad: "ad-1", res: "5m" }), "?window=15m&metric=clicks&ad=ad-1&res=5m");
  assert.equal(toSearch({ ...DEFAULTS, campaign: "c/1", res: "1h" }), "?window=15m&metric=clicks&campaign=c%2F1&res=1h");
});

test("spans", () => {
  assert.deepEqual(["5m", "6h", "24h", "7d", "30d"].map(minutesOf), [5, 360, 1440, 10080, 43200]);
  assert.deepEqual([12, 60, 720, 1440, 2880, 17280, 43200].map(span), ["12m", "1h", "12h", "24h", "2d", "12d", "30d"]);
});

test("a window's resolution keeps a series within 1440 points", () => {
  assert.equal(fits("24h", "1m"), true); // 1440 points
  assert.equal(fits("7d", "5m"), false); // 2016
  assert.equal(fits("30d", "1h"), true); // 720
  assert.equal(resolutionFor("24h", "1m"), "1m");
  assert.equal(resolutionFor("7d", "1m"), "1h");
  assert.equal(resolutionFor("7d", "5m"), "1h");
  assert.equal(resolutionFor("30d", "1m"), "1h");
  assert.equal(resolutionFor("30d", "1d"), "1d");
  assert.equal(resolutionFor("15m", "1d"), "1d");
  // the URL follows: a 7d window opened at 1m shows (and says) 1h
  assert.equal(parseState("?window=7d&ad=ad-1&res=1m").res, "1h");
  assert.equal(toSearch(parseState("?window=30d&campaign=c&res=5m")), "?window=30d&metric=clicks&campaign=c&res=1h");
});

test("series range: the window, at least 12 points, at most 1440 points and 30 days", () => {
  assert.equal(seriesLast("15m", "1m"), "15m");
  assert.equal(seriesLast("5m", "1m"), "12m");
  assert.equal(seriesLast("15m", "5m"), "1h");
  assert.equal(seriesLast("1h", "1h"), "12h");
  assert.equal(seriesLast("24h", "1m"), "24h"); // 1440 points <= 1500
  assert.equal(seriesLast("24h", "1h"), "24h");
  assert.equal(seriesLast("7d", "1h"), "7d"); // 168 points
  assert.equal(seriesLast("7d", "1m"), "7d"); // at 1h: 1m cannot cover it
  assert.equal(seriesLast("30d", "1h"), "30d"); // 720 points
  assert.equal(seriesLast("30d", "1d"), "30d"); // 30 points
  assert.equal(seriesLast("7d", "1d"), "12d"); // 12 points
  assert.equal(seriesLast("15m", "1d"), "12d");
});

test("a trending row's CTR and conversions: the finest resolution within 200 points", () => {
  assert.deepEqual(["5m", "15m", "1h", "6h", "24h", "7d", "30d"].map(rowResolution), ["1m", "1m", "1m", "5m", "1h", "1h", "1d"]);
  const t = Date.UTC(2026, 0, 2, 13, 47, 0);
  assert.equal(floorTo(t, "1m"), t);
  assert.equal(floorTo(t, "5m"), Date.UTC(2026, 0, 2, 13, 45));
  assert.equal(floorTo(t, "1h"), Date.UTC(2026, 0, 2, 13));
  assert.equal(floorTo(t, "1d"), Date.UTC(2026, 0, 2));
});
