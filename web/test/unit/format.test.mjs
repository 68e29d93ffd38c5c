import assert from "node:assert/strict";
import { test } from "node:test";
import { fmtClock, fmtDrift, fmtExactness, fmtIvt, fmtLag, fmtMinVolume, fmtQualityExtras, fmtMetric, fmtMoney, fmtPct, fmtRoas,
  fmtTopValue, lagState, metricNumber } from "../../src/format.js";

test("metric values", () => {
  assert.equal(fmtMetric("clicks", 1234567), "1,234,567");
  assert.equal(fmtMetric("cost", "1234.500000"), "1,234.50");
  assert.equal(fmtMoney("0.000250"), "0.00025");
  assert.equal(fmtMoney("0.000000"), "0.00");
  assert.equal(fmtMoney("11.805000"), "11.81"); // half up on the decimal (11.805 as a double is below it)
  assert.equal(fmtMoney("1.004999"), "1.00");
  assert.equal(fmtMoney("1234567.995000"), "1,234,568.00");
  assert.equal(fmtMoney(0.5), "0.50"); // chart axis values are numbers
  assert.equal(fmtMoney(1.2000000000000002), "1.20");
  assert.equal(fmtMoney(1e-7), "0.00");
  assert.equal(fmtMoney(null), "—");
  assert.equal(metricNumber("12.340000"), 12.34);
  assert.equal(metricNumber(7), 7);
});

test("ratios: the API's 6-decimal values, shown half up", () => {
  assert.equal(fmtPct(0.052632), "5.26 %");
  assert.equal(fmtPct(0.052650), "5.27 %"); // half up, in integers (0.05265 * 100 is 5.264999... as a float)
  assert.equal(fmtPct(0.000049), "<0.01 %");
  assert.equal(fmtPct(0.00005), "0.01 %");
  assert.equal(fmtPct(0), "0.00 %");
  assert.equal(fmtPct(1), "100.00 %");
  assert.equal(fmtPct(12.5), "1,250.00 %"); // more billable clicks than impressions (impressions not reported)
  assert.equal(fmtPct(null), "—");
  assert.equal(fmtRoas(3.124999), "3.12");
  assert.equal(fmtRoas(3.125), "3.13");
  assert.equal(fmtRoas(null), "—");
  assert.equal(fmtMetric("ctr", 0.25), "25.00 %");
  assert.equal(fmtMetric("cvr", 0.1), "10.00 %");
  assert.equal(fmtMetric("roas", 2), "2.00");
  assert.equal(fmtMetric("cpa", "12.500000"), "12.50");
  assert.equal(fmtMetric("conversion_value", "1234.000000"), "1,234.00");
  assert.equal(fmtMetric("impressions", 123456), "123,456");
  assert.equal(fmtMetric("conversions", 7), "7");
});

test("top-K values: exact, proven, a range, a lower bound without an upper one, an estimated ratio", () => {
  assert.deepEqual(fmtTopValue("clicks", { total: 121, total_upper: 124 }, true), { text: "121", state: "exact" });
  assert.deepEqual(fmtTopValue("clicks", { total: 121, total_upper: 121 }, false), { text: "121", state: "proven" });
  assert.deepEqual(fmtTopValue("clicks", { total: 121, total_upper: 124 }, false), { text: "121–124", state: "range" });
  assert.deepEqual(fmtTopValue("cost", { total: "1.500000", total_upper: "1.500000" }, false), { text: "1.50", state: "proven" });
  assert.deepEqual(fmtTopValue("impressions", { total: 5000, total_upper: null }, false), { text: "≥ 5,000", state: "lower" });
  assert.deepEqual(fmtTopValue("ctr", { total: 0.052632, total_upper: null }, false), { text: "≈ 5.26 %", state: "estimate" });
  assert.deepEqual(fmtTopValue("ctr", { total: 0.052632, total_upper: 0.052632 }, false), { text: "5.26 %", state: "proven" });
});

test("exactness marker: the error bound, or none (null), with the API's reason as the tooltip", () => {
  assert.equal(fmtExactness({ exact: true, metric: "clicks", error_bound: 0, inexact_reason: null }).text, "exact");
  const bounded = fmtExactness({ exact: false, metric: "clicks", error_bound: 3, inexact_reason: "2 of 5 bucket leaderboards are truncated" });
  assert.equal(bounded.text, "≈ approximate ±3");
  assert.ok(bounded.title.startsWith("2 of 5 bucket leaderboards are truncated\n"), bounded.title);
  const open = fmtExactness({ exact: false, metric: "conversions", error_bound: null, inexact_reason: "why not" });
  assert.equal(open.text, "≈ approximate, no error bound");
  assert.ok(!/null/.test(open.text + open.title), open);
  assert.ok(open.title.startsWith("why not\n") && /≥ a has none/.test(open.title), open.title);
  const ratio = fmtExactness({ exact: false, metric: "ctr", error_bound: null, inexact_reason: "r" });
  assert.ok(/≈ is estimated/.test(ratio.title), ratio.title);
  assert.equal(fmtExactness({ exact: false, metric: "cost", error_bound: "2.500000", inexact_reason: null }).text, "≈ approximate ±2.50");
});

test("minimum-volume note (ratio metrics only)", () => {
  assert.equal(fmtMinVolume({ metric: "ctr", min_volume: 100 }), "only ads with ≥ 100 impressions in the window (min_volume, API default)");
  assert.equal(fmtMinVolume({ metric: "cpa", min_volume: 1000 }), "only ads with ≥ 1,000 conversions in the window (min_volume, API default)");
  assert.equal(fmtMinVolume({ metric: "clicks", min_volume: null }), null);
  assert.equal(fmtMinVolume(null), null);
});

test("lag and clock", () => {
  assert.equal(fmtLag(null), "—");
  assert.equal(fmtLag(4200), "4.2 s");
  assert.equal(fmtLag(200_000), "3 min 20 s");
  assert.equal(fmtLag(7_500_000), "2 h 5 min");
  const now = Date.UTC(2026, 0, 2, 12, 0, 0);
  assert.equal(fmtClock(Date.UTC(2026, 0, 2, 9, 5, 7), now), "09:05:07Z");
  assert.equal(fmtClock(Date.UTC(2026, 0, 1, 23, 59, 59), now), "01-01 23:59:59Z");
  assert.deepEqual([null, 1000, 60_000, 600_000].map(lagState), ["empty", "ok", "warn", "bad"]);
});

const QUALITY = {
  status: "drift", alerts: ["reconciliation of 2026-05-30: total drift 1.2300% is above 0.10%"],
  window: { from: "2026-05-31T11:00:00Z", to: "2026-05-31T12:00:00Z", from_ms: Date.UTC(2026, 4, 31, 11), to_ms: Date.UTC(2026, 4, 31, 12) },
  lag: { end_to_end_ms: 4000, watermark_ms: 9000, clicks_stream_iterator_age_ms: null },
  freshness: {},
  ingest: { accepted: 2475, duplicates: 25, rejected: 1, duplicate_rate: 0.01, source: "cloudwatch" },
  late_dropped: 4,
  reconciliation: {
    day: "2026-05-30", total_drift: 0.0123, worst_drift: 0.2, worst_ad_id: "ad-0007", threshold: 0.001, flag: true,
    batch_billable: 10000, realtime_billable: 9877, total_diff: -123, rows: 480, classes: {}, explained_clicks: {},
    unexplained_clicks: 0, report: "s3://b/r.parquet", finished_at: "2026-05-31T02:00:00.000Z", finished_at_ms: 1,
  },
  debug: {},
};

test("drift from GET /v1/quality's reconciliation", () => {
  const d = fmtDrift(QUALITY);
  assert.equal(d.text, "1.230 %");
  assert.equal(d.state, "bad");
  assert.equal(d.drift, 0.0123);
  assert.equal(d.day, "2026-05-30");
  for (const part of ["reconciliation of 2026-05-30", "threshold 0.100 %", "worst ad-hour 20.000 % (ad-0007)",
    "batch 10,000 vs realtime 9,877 (-123)", "finished 2026-05-31T02:00:00.000Z",
    "duplicate rate 1.00 % (25 of 2,500)", "late-dropped 4 in the last 1 h"]) {
    assert.ok(d.title.includes(part), `${part} not in ${JSON.stringify(d.title)}`);
  }
  const ok = fmtDrift({ ...QUALITY, reconciliation: { ...QUALITY.reconciliation, total_drift: 0.0004, flag: false, total_diff: 4 } });
  assert.deepEqual([ok.text, ok.state], ["0.040 %", "ok"]);
  assert.ok(ok.title.includes("(+4)") && ok.title.includes("within"), ok.title);
  assert.equal(fmtDrift({ ...QUALITY, reconciliation: { ...QUALITY.reconciliation, total_drift: 0 } }).text, "0.000 %");
  assert.equal(fmtDrift({ ...QUALITY, reconciliation: { ...QUALITY.reconciliation, total_drift: 2e-7 } }).text, "2.0e-5 %");
});

test("drift before the first reconciliation, and answers that are not a QualityResponse", () => {
  const none = fmtDrift({ ...QUALITY, reconciliation: null, ingest: { ...QUALITY.ingest, duplicate_rate: null, source: "not configured" } });
  assert.deepEqual([none.text, none.state, none.drift], ["n/a", "na", null]);
  assert.ok(none.title.startsWith("no reconciliation yet"), none.title);
  assert.ok(none.title.includes("duplicate rate n/a (not configured), late-dropped 4"), none.title);
  // the shapes guessed before the route existed are not read any more
  for (const body of [{ total_drift: 0.0004, flag: false }, { summary: { total_drift: 0.0004 } }, null, "x"]) {
    assert.deepEqual([fmtDrift(body).text, fmtDrift(body).state], ["?", "na"]);
  }
  assert.equal(fmtDrift({ reconciliation: { day: "2026-05-30", total_drift: "0.01" } }).text, "?");
});

test("quality extras line", () => {
  assert.equal(fmtQualityExtras(QUALITY), "duplicate rate 1.00 % (25 of 2,500), late-dropped 4 in the last 1 h");
  assert.equal(fmtQualityExtras({ late_dropped: 0, window: { from_ms: 0, to_ms: 15 * 60_000 } }), "late-dropped 0 in the last 15 min");
  assert.equal(fmtQualityExtras({}), "");
  assert.equal(fmtQualityExtras(null), "");
});

const ivtWindow = (from, to, clicks, suspect, invalid, extra = {}) => ({
  from, to, from_ms: 0, to_ms: 1, resolution: "1m", clicks, billable_clicks: clicks - suspect - invalid,
  suspect_clicks: suspect, invalid_clicks: invalid,
  rates: clicks ? { suspect: suspect / clicks, invalid: invalid / clicks, both: (suspect + invalid) / clicks }
    : { suspect: null, invalid: null, both: null },
  alert: false, complete: true, final: false, ...extra,
});
const IVT = {
  alert_percent: 5, alert: true,
  last_5m: ivtWindow("2026-05-31T11:55:00.000Z", "2026-05-31T12:00:00.000Z", 400, 20, 10, { alert: true }),
  last_hour: ivtWindow("2026-05-31T11:00:00.000Z", "2026-05-31T12:00:00.000Z", 12000, 240, 120,
    { complete: false, final: false }),
};

test("IVT badge from GET /v1/quality's ivt", () => {
  const v = fmtIvt({ ...QUALITY, ivt: IVT });
  assert.deepEqual([v.text, v.state, v.rate, v.window], ["7.50 %", "bad", 0.075, "last_5m"]);
  for (const part of ["alert above 5 %", "last 5 min 11:55–12:00Z: 7.50 % of 400 clicks (suspect 5.00 %, invalid 2.50 %) [ALERT, may still change]",
    "last whole hour 11:00–12:00Z: 3.00 % of 12,000 clicks (suspect 2.00 %, invalid 1.00 %) [top ads only, may still change]"]) {
    assert.ok(v.title.includes(part), `${part} not in ${JSON.stringify(v.title)}`);
  }
  const floored = fmtIvt({ ...QUALITY, ivt: { ...IVT, alert_min_clicks: 1000 } });  // ivt_alert_min_clicks
  assert.ok(floored.title.startsWith("invalid traffic: suspect + invalid clicks / clicks (alert above 5 % of at least 1,000 clicks)\n"), floored.title);
  const quiet = fmtIvt({ ivt: { ...IVT, alert: false, last_5m: { ...IVT.last_5m, alert: false } } });
  assert.deepEqual([quiet.text, quiet.state], ["7.50 %", "ok"]);
  // no clicks in the last 5 minutes: the last hour's rate, marked
  const empty5 = ivtWindow("2026-05-31T11:55:00.000Z", "2026-05-31T12:00:00.000Z", 0, 0, 0);
  const hour = fmtIvt({ ivt: { ...IVT, alert: false, last_5m: empty5 } });
  assert.deepEqual([hour.text, hour.state, hour.window], ["3.00 % (1 h)", "ok", "last_hour"]);
  assert.ok(hour.title.includes("last 5 min 11:55–12:00Z: no clicks"), hour.title);
});

test("IVT badge without clicks, on an older API, and for answers that are not a QualityResponse", () => {
  const none = fmtIvt({ ivt: { alert_percent: 5, alert: false, last_5m: ivtWindow("a", "b", 0, 0, 0),
    last_hour: ivtWindow("a", "b", 0, 0, 0) } });
  assert.deepEqual([none.text, none.state, none.rate], ["n/a", "na", null]);
  const old = fmtIvt(QUALITY); // no `ivt`
  assert.deepEqual([old.text, old.state], ["n/a", "na"]);
  assert.ok(old.title.includes("older API"), old.title);
  for (const body of [null, "x", 3]) assert.deepEqual([fmtIvt(body).text, fmtIvt(body).state], ["?", "na"]);
});

test("corrections in the drift badge's title, and the corrected points of a series", async () => {
  const { correctedStarts, fmtCorrections } = await import("../../src/format.js");
  const corrections = { requested: true, skipped: null, applied: 5, already_applied: 0, pending: 5, ad_hours: 5,
    runs: ["wr_1"], run_id: "wr_1", delta: { billable_clicks: 2 } };
  const d = fmtDrift({ ...QUALITY, reconciliation: { ...QUALITY.reconciliation, corrections } });
  assert.equal(d.corrected, 5);
  assert.ok(d.title.includes("corrected to the batch truth: 5 ad-hours by wr_1 (billable clicks +2)"), d.title);
  assert.equal(fmtDrift(QUALITY).corrected, 0); // a summary of before corrections
  assert.deepEqual(fmtCorrections({ ad_hours: 0, pending: 3, skipped: "not requested" }),
    { count: 0, text: "not corrected: 3 ad-hours differ (not requested)" });
  assert.deepEqual(fmtCorrections(null), { count: 0, text: "" });
  assert.deepEqual(correctedStarts([{ bucket_start_ms: 1, corrected: false }, { bucket_start_ms: 2, corrected: true },
    { bucket_start_ms: 3 }]), [2]);
});
