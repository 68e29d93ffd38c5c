import assert from "node:assert/strict";
import { test } from "node:test";
import { fmtClock, fmtDrift, fmtLag, fmtMetric, fmtMoney, lagState, metricNumber } from "../../src/format.js";

test("metric values", () => {
  assert.equal(fmtMetric("clicks", 1234567), "1,234,567");
  assert.equal(fmtMetric("cost", "1234.500000"), "1,234.50");
  assert.equal(fmtMoney("0.000250"), "0.00025");
  assert.equal(fmtMoney("0.000000"), "0.00");
  assert.equal(metricNumber("12.340000"), 12.34);
  assert.equal(metricNumber(7), 7);
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

test("drift from the reconciliation summary, in the shapes /v1/quality may take", () => {
  const summary = { total_drift: 0.0004, worst_drift: 0.01, flag: false, threshold: 0.001 };
  for (const body of [summary, { summary, day: "2026-01-01" }, { last_reconciliation: { day: "2026-01-01", summary } }]) {
    const d = fmtDrift(body);
    assert.equal(d.text, "0.040 %");
    assert.equal(d.flag, false);
  }
  assert.equal(fmtDrift({ last_reconciliation: { day: "2026-01-01", summary } }).day, "2026-01-01");
  assert.equal(fmtDrift({ total_drift: 0.02, flag: true }).flag, true);
  assert.equal(fmtDrift({ something: "else" }).text, "?");
});
