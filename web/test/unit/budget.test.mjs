import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError } from "../../src/api.js";
import { DAY_MS, ageText, budgetView, currencyOf, dayStartOf, fmtFraction, fmtMicros, isNoBudget, moneyMicros, reasonText,
  spendColumns } from "../../src/budget.js";

const DAY = Date.UTC(2026, 11, 6); // 2026-12-06T00:00Z
const H = 3_600_000, M = 60_000;

// docs/budget.md's example answer
const PACING = {
  campaign_id: "cmp-1", decision: "throttle", serve_fraction: 0.42, reason: "ahead_of_plan", day: "2026-12-06",
  daily_budget_micros: 5_000_000, lifetime_budget_micros: null, pacing: "even", spent_today_micros: 2_100_000,
  remaining_micros: 2_900_000, lifetime_spent_micros: null, planned_spend_micros: 2_050_000, velocity_micros_per_s: 812.5,
  margin_micros: 1950, projected_exhaustion: "2026-12-06T16:59:41Z", figure_age_ms: 1830, stale_after_ms: 10000,
  valid_for_ms: 1000, as_of: "2026-12-06T16:00:00.120Z",
};
const BUDGET = { campaign_id: "cmp-1", daily_budget_micros: 5_000_000, lifetime_budget_micros: null, pacing: "even",
  revision: 3, set_at: "2026-12-06T09:15:00.000Z", set_by: "arn:aws:iam::123456789012:user/finance" };
const noBudget = new ApiError("http", "HTTP 404: no budget set for campaign cmp-9", 404,
  { error: "no budget set for campaign cmp-9", status: 404 });
const noRoute = new ApiError("http", "HTTP 404: no route", 404, { error: "no route for GET /v1/campaigns/x/pacing", status: 404 });
const awsNoRoute = new ApiError("auth", "HTTP 403", 403, { message: "Missing Authentication Token" });

test("money in micros: currency units, half up to the cent, sub-cent digits kept, the code when known", () => {
  assert.equal(fmtMicros(2_100_000), "2.10");
  assert.equal(fmtMicros(11_805_000), "11.81");
  assert.equal(fmtMicros(1_234_567_995_000), "1,234,568.00");
  assert.equal(fmtMicros(250), "0.00025");
  assert.equal(fmtMicros(0), "0.00");
  assert.equal(fmtMicros(5_000_000, "USD"), "5.00 USD");
  assert.equal(fmtMicros(null, "USD"), "—");
  assert.equal(moneyMicros("12.340001"), 12_340_001);
  assert.equal(moneyMicros("0.5"), 500_000);
  assert.equal(moneyMicros("7"), 7_000_000);
  assert.equal(moneyMicros(null), 0);
  assert.equal(currencyOf({ currency: "EUR" }), "EUR");
  assert.equal(currencyOf({ currency: "euro" }), null);
  assert.equal(currencyOf({ mode: "local" }), null);
});

test("serve fraction as a percentage", () => {
  assert.equal(fmtFraction(1), "100 %");
  assert.equal(fmtFraction(0), "0 %");
  assert.equal(fmtFraction(0.5208), "52.08 %");
  assert.equal(fmtFraction(0.42), "42 %");
  assert.equal(fmtFraction(0.525), "52.50 %");
  assert.equal(fmtFraction(null), "—");
});

test("UTC day start", () => {
  assert.equal(dayStartOf(DAY + 16 * H + 5), DAY);
  assert.equal(dayStartOf(DAY), DAY);
  assert.equal(dayStartOf(DAY - 1), DAY - DAY_MS);
});

test("a budgeted campaign: decision, fraction, reason in words, every figure", () => {
  const v = budgetView({ budget: BUDGET, pacing: PACING, nowMs: DAY + 16 * H });
  assert.equal(v.state, "ok");
  assert.deepEqual([v.decision, v.decisionState, v.fraction, v.fractionText, v.reason],
    ["throttle", "warn", 0.42, "serve 42 % of requests", "ahead_of_plan"]);
  assert.match(v.reasonText, /ahead of the even plan/);
  assert.equal(v.alert, null);
  const f = Object.fromEntries(v.figures.map((x) => [x.key, [x.value, x.text]]));
  assert.deepEqual(f, {
    spent_today: [2_100_000, "2.10"], remaining: [2_900_000, "2.90"], daily_budget: [5_000_000, "5.00"],
    planned: [2_050_000, "2.05"], lifetime: [null, "—"], velocity: [812.5, "2.93/h"],
    exhaustion: ["2026-12-06T16:59:41Z", "16:59:41Z"],
    figure_age: [1830, "1.8 s old"],
  });
  assert.equal(v.meta, "pacing even · revision 3, set 09:15:00Z by arn:aws:iam::123456789012:user/finance · day 2026-12-06 (UTC)");
  const tomorrow = budgetView({ budget: BUDGET, pacing: PACING, nowMs: DAY + DAY_MS });
  assert.equal(tomorrow.figures.find((x) => x.key === "exhaustion").text, "12-06 16:59:41Z");
  const usd = budgetView({ budget: BUDGET, pacing: { ...PACING, lifetime_budget_micros: 9_000_000, lifetime_spent_micros: 8_100_000 }, currency: "USD" });
  const g = Object.fromEntries(usd.figures.map((x) => [x.key, x.text]));
  assert.equal(g.spent_today, "2.10 USD");
  assert.equal(g.lifetime, "8.10 USD of 9.00 USD");
});

test("reasons in words", () => {
  assert.match(reasonText({ ...PACING, decision: "serve", reason: "asap" }), /asap/);
  assert.match(reasonText({ ...PACING, decision: "serve", reason: "on_plan" }), /on or behind the even plan/);
  assert.match(reasonText({ ...PACING, decision: "stop", reason: "ahead_of_plan" }), /stopped until the plan catches up/);
  assert.equal(reasonText({ ...PACING, decision: "stop", reason: "exhausted", spent_today_micros: 5_000_000 }), "today's budget is spent");
  assert.equal(reasonText({ ...PACING, decision: "stop", reason: "exhausted", lifetime_budget_micros: 9_000_000,
    lifetime_spent_micros: 9_000_000 }), "the lifetime budget is spent");
  assert.match(reasonText({ ...PACING, decision: "stop", reason: "predicted_exhaustion" }), /run out before the next spend figure/);
  assert.equal(reasonText({ ...PACING, reason: "new_rule" }), "reason new_rule");
});

test("stale: ad servers told to stop (or to serve the configured share), the figure's age", () => {
  const stale = { ...PACING, decision: "stop", serve_fraction: 0, reason: "stale", figure_age_ms: 12_345 };
  const v = budgetView({ budget: BUDGET, pacing: stale });
  assert.equal(v.state, "stale");
  assert.equal(v.alert, "STALE: ad servers told to stop");
  assert.match(v.alertDetail, /12\.3 s old, beyond the 10 s limit/);
  assert.equal(v.decisionState, "bad");
  assert.equal(v.figures.find((x) => x.key === "figure_age").text, "12.3 s old");
  assert.match(v.figures.find((x) => x.key === "figure_age").title, /beyond 10 s ad servers are told to stop/);
  const never = budgetView({ pacing: { ...stale, figure_age_ms: null } });
  assert.match(never.alertDetail, /no spend figure has arrived yet/);
  assert.equal(ageText({ ...stale, figure_age_ms: null }), "no figure yet");
  const share = budgetView({ pacing: { ...stale, decision: "throttle", serve_fraction: 0.2 } });
  assert.equal(share.alert, "STALE: ad servers told to serve 20 % of requests");
});

test("no budget: from the pacing answer or the budget's 404; a missing route is not 'no budget'", () => {
  const none = { campaign_id: "cmp-9", decision: "stop", serve_fraction: 0, reason: "no_budget", day: "2026-12-06",
    daily_budget_micros: null, spent_today_micros: null, figure_age_ms: null, stale_after_ms: 10000 };
  for (const v of [budgetView({ pacing: none, budgetError: noBudget }), budgetView({ budgetError: noBudget, pacingError: noRoute })]) {
    assert.equal(v.state, "none");
    assert.equal(v.alert, "no budget set: ad servers are told to stop");
    assert.equal(v.decision, "stop");
    assert.deepEqual(v.figures, []);
  }
  assert.equal(isNoBudget(noBudget), true);
  assert.equal(isNoBudget(noRoute), false);
  assert.equal(budgetView({ pacingError: noRoute, budgetError: noRoute }).state, "na");
  assert.equal(budgetView({ pacingError: awsNoRoute, budgetError: awsNoRoute }).state, "na");
  const down = new ApiError("network", "API unreachable");
  assert.equal(budgetView({ pacingError: down, budgetError: down }).state, "error");
  assert.equal(budgetView({}).state, "loading");
  // budget details unavailable while the pacing answer is there
  assert.match(budgetView({ pacing: PACING, budgetError: down }).meta, /budget details unavailable/);
});

test("today's spend: cumulative at bucket ends, budget and even plan lines over the whole day", () => {
  const pt = (start, cost) => ({ bucket_start_ms: start, billable_cost: cost });
  const now = DAY + 10 * M + 30_000; // 00:10:30: the third 5m bucket is the current one
  const points = [pt(DAY, "1.250000"), pt(DAY + 5 * M, "0.000000"), pt(DAY + 10 * M, "0.500001")];
  const { columns, spentMicros } = spendColumns(points, DAY, now, 8_640_000);
  const [xs, spent, budget, plan] = columns;
  assert.equal(spentMicros, 1_750_001);
  assert.deepEqual(xs, [DAY, DAY + 5 * M, DAY + 10 * M, now, DAY + DAY_MS].map((x) => x / 1000));
  assert.deepEqual(spent, [0, 1.25, 1.25, 1.750001, null]);
  assert.deepEqual(budget, [8.64, 8.64, 8.64, 8.64, 8.64]);
  assert.deepEqual(plan, [0, 0.03, 0.06, 0.063, 8.64]); // 8.64 x elapsed share: 100 micros per second
  const none = spendColumns(points, DAY, now, null);
  assert.deepEqual(none.columns[2], [null, null, null, null, null]);
  // a bucket starting at `now` folds into the previous x; buckets of another day are ignored
  const edge = spendColumns([pt(DAY - 5 * M, "9.000000"), pt(DAY, "1.000000"), pt(DAY + 5 * M, "2.000000")], DAY, DAY + 5 * M, 1);
  assert.deepEqual(edge.columns[0], [DAY, DAY + 5 * M, DAY + DAY_MS].map((x) => x / 1000));
  assert.deepEqual(edge.columns[1], [0, 3, null]);
  assert.equal(edge.spentMicros, 3_000_000);
});
