// The campaign budget panel's pure parts (no DOM; docs/budget.md): money in micros as text, the
// pacing answer (GET /v1/campaigns/{id}/pacing) in words and states, the budget (GET
// /v1/campaigns/{id}/budget, 404 when none) and today's spend series (GET
// /v1/campaigns/{id}/metrics at 5m over the UTC day: its `billable_cost`) as the chart's columns.
import { isMissingRoute } from "./api.js";
import { fmtClock, fmtLag, fmtMoney } from "./format.js";

export const DAY_MS = 86_400_000;
export const SPEND_RES = "5m"; // today's spend: at most 288 points
const SPEND_STEP_MS = 5 * 60_000;
const CURRENCY = /^[A-Z]{3}$/;

/** The deployment's currency code from config.json (`currency`, ISO 4217), or null: money is
 * then shown without a code. */
export function currencyOf(cfg) {
  return cfg && typeof cfg.currency === "string" && CURRENCY.test(cfg.currency) ? cfg.currency : null;
}

/** A money string with up to 6 decimals ("12.340000") or integer micros -> integer micros (a
 * Number: exact up to 9e15, beyond any budget, which the API caps at 1e15). */
export function moneyMicros(v) {
  if (v == null) return 0;
  if (typeof v === "number") return Math.round(v);
  const m = /^(-?)([0-9]+)(?:\.([0-9]{0,6}))?$/.exec(String(v));
  if (!m) return 0;
  const micros = Number(m[2]) * 1_000_000 + Number(`${m[3] || ""}000000`.slice(0, 6));
  return m[1] ? -micros : micros;
}

/** Integer micros -> currency units as text (format.js fmtMoney: 2 decimals half up, sub-cent
 * amounts with their digits), with the currency code when known; "—" for null. */
export function fmtMicros(micros, currency = null) {
  if (micros == null || !Number.isFinite(Number(micros))) return "—";
  const n = Math.round(Number(micros));
  const abs = Math.abs(n);
  const text = fmtMoney(`${n < 0 ? "-" : ""}${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, "0")}`);
  return currency ? `${text} ${currency}` : text;
}

/** A serve fraction (0..1, at most 4 decimals) -> "52.08 %"; whole percentages without
 * decimals ("100 %", "0 %"). */
export function fmtFraction(f) {
  if (f == null || !Number.isFinite(Number(f))) return "—";
  const hundredths = Math.round(Number(f) * 10_000);
  return hundredths % 100 === 0 ? `${hundredths / 100} %` : `${(hundredths / 100).toFixed(2)} %`;
}

/** Epoch ms -> the start of its UTC day. */
export function dayStartOf(ms) {
  return ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
}

/** Is this error GET /v1/campaigns/{id}/budget's "none set" (404 with the handler's reason), as
 * opposed to a route the API does not have? */
export function isNoBudget(err) {
  return Boolean(err && err.status === 404 && err.body && /^no budget set/.test(err.body.error || ""));
}

const DECISION_STATE = { serve: "ok", throttle: "warn", stop: "bad" };
const NO_BUDGET = "no budget set: ad servers are told to stop";
const NO_BUDGET_WHY = "an unbudgeted campaign is never served (fail closed); set one with PUT /v1/campaigns/{campaign_id}/budget";

/** The pacing answer's reason in words. */
export function reasonText(p) {
  if (!p) return "";
  switch (p.reason) {
    case "asap": return "pacing asap: serving until the budget is spent";
    case "on_plan": return "on or behind the even plan: serving every request";
    case "ahead_of_plan":
      return p.decision === "stop" ? "far ahead of the even plan: stopped until the plan catches up"
        : "ahead of the even plan: serving a share of requests to fall back to it";
    case "exhausted": {
      const lifetimeLeft = p.lifetime_budget_micros != null && p.lifetime_spent_micros != null
        ? p.lifetime_budget_micros - p.lifetime_spent_micros : null;
      const dailyLeft = p.daily_budget_micros != null && p.spent_today_micros != null
        ? p.daily_budget_micros - p.spent_today_micros : null;
      return lifetimeLeft != null && (dailyLeft == null || lifetimeLeft < dailyLeft)
        ? "the lifetime budget is spent" : "today's budget is spent";
    }
    case "predicted_exhaustion":
      return "the budget would run out before the next spend figure (remaining ≤ spend rate × unseen time)";
    case "stale": return "the spend figure is stale: failing closed";
    case "no_budget": return "no budget set";
    default: return `reason ${p.reason}`;
  }
}

const limitText = (ms) => fmtLag(ms).replace(/\.0 s$/, " s"); // 10000 -> "10 s"

/** The figure's age: "0.8 s old", or "no figure yet" when none ever arrived. */
export function ageText(p) {
  if (!p) return "—";
  return p.figure_age_ms == null ? "no figure yet" : `${fmtLag(p.figure_age_ms)} old`;
}

/** The panel's view of the answers: {state, decision, ...}. state: "ok", "stale" (reason stale:
 * ad servers are told to stop, or to serve the configured stale share), "none" (no budget: ad
 * servers are told to stop), "na" (an API without the budget routes), "error" (nothing to show),
 * "loading". `failed`: the last refresh failed and these are the previous answers. Times are shown
 * as fmtClock does (the date only when not `nowMs`'s day). */
export function budgetView({ budget = null, budgetError = null, pacing = null, pacingError = null, failed = false,
  currency = null, nowMs = Date.now() } = {}) {
  const money = (m) => fmtMicros(m, currency);
  const base = { failed, figures: [], meta: "", alert: null, alertDetail: "", decision: null, decisionState: "na",
    fraction: null, fractionText: "", reason: null, reasonText: "" };
  if (!pacing) {
    if (isNoBudget(budgetError)) {
      return { ...base, state: "none", decision: "stop", decisionState: "bad", reason: "no_budget", fraction: 0,
        fractionText: "serve 0 % of requests", reasonText: reasonText({ reason: "no_budget" }), alert: NO_BUDGET,
        alertDetail: NO_BUDGET_WHY };
    }
    if (pacingError && isMissingRoute(pacingError)) {
      return { ...base, state: "na", alert: `no budget routes on this API (GET pacing: ${pacingError.status})` };
    }
    if (pacingError) return { ...base, state: "error", error: pacingError };
    return { ...base, state: "loading" };
  }
  const p = pacing;
  const view = {
    ...base, decision: p.decision, decisionState: DECISION_STATE[p.decision] || "na", fraction: p.serve_fraction,
    fractionText: `serve ${fmtFraction(p.serve_fraction)} of requests`, reason: p.reason, reasonText: reasonText(p),
  };
  if (p.reason === "no_budget") {
    return { ...view, state: "none", alert: NO_BUDGET, alertDetail: NO_BUDGET_WHY };
  }
  const stale = p.reason === "stale";
  const lifetime = p.lifetime_budget_micros;
  view.state = stale ? "stale" : "ok";
  if (stale) {
    view.alert = p.decision === "stop" ? "STALE: ad servers told to stop"
      : `STALE: ad servers told to serve ${fmtFraction(p.serve_fraction)} of requests`;
    view.alertDetail = p.figure_age_ms == null
      ? "no spend figure has arrived yet (no pulse from the stream job through the sink)"
      : `the newest spend figure is ${fmtLag(p.figure_age_ms)} old, beyond the ${limitText(p.stale_after_ms)} limit: ` +
        "the stream job or the sink is behind or down";
  }
  view.figures = [
    { key: "spent_today", label: "spent today", value: p.spent_today_micros, text: money(p.spent_today_micros) },
    { key: "remaining", label: "remaining", value: p.remaining_micros, text: money(p.remaining_micros),
      title: lifetime != null ? "the smaller of today's and the lifetime budget's remainder" : "" },
    { key: "daily_budget", label: "daily budget", value: p.daily_budget_micros, text: money(p.daily_budget_micros) },
    { key: "planned", label: "even plan by now", value: p.planned_spend_micros, text: money(p.planned_spend_micros),
      title: p.planned_spend_micros == null ? `pacing ${p.pacing}: no plan` : "daily budget × elapsed share of the UTC day" },
    { key: "lifetime", label: "lifetime spent", value: lifetime == null ? null : p.lifetime_spent_micros,
      text: lifetime == null ? "—" : `${money(p.lifetime_spent_micros)} of ${money(lifetime)}`,
      title: lifetime == null ? "no lifetime budget" : "" },
    { key: "velocity", label: "spend rate", value: p.velocity_micros_per_s,
      text: p.velocity_micros_per_s == null ? "—" : `${money(p.velocity_micros_per_s * 3600)}/h`,
      title: "the larger of the last 2 and the last 6 minutes' rate" },
    { key: "exhaustion", label: "runs out at", value: p.projected_exhaustion,
      text: p.projected_exhaustion ? fmtClock(Date.parse(p.projected_exhaustion), nowMs) : "—",
      title: p.projected_exhaustion ? `at the current spend rate: ${p.projected_exhaustion}` : "no spend in the last minutes" },
    { key: "figure_age", label: "figure age", value: p.figure_age_ms, text: ageText(p),
      title: `the age of the spend figure (the stream job's pulse); beyond ${limitText(p.stale_after_ms)} ad servers are told to stop` },
  ];
  const b = budget;
  const parts = [`pacing ${p.pacing}`];
  if (b) parts.push(`revision ${b.revision}, set ${fmtClock(Date.parse(b.set_at), nowMs)} by ${b.set_by}`);
  else if (budgetError && !isNoBudget(budgetError)) parts.push("budget details unavailable");
  parts.push(`day ${p.day} (UTC)`);
  view.meta = parts.join(" · ");
  return view;
}

/** Today's spend series (5m points with `billable_cost`) -> uPlot columns over the whole UTC day:
 * x (epoch s), cumulative spend, the daily budget line and the even plan line (budget × elapsed
 * share of the day), in currency units. Spend is plotted at each bucket's end (the current
 * bucket's at `nowMs`) from 0 at the day's start; the day's end closes the x range (no spend
 * there). `dailyMicros` null: no budget, no lines. Also the last cumulative spend in micros. */
export function spendColumns(points, dayStartMs, nowMs, dailyMicros) {
  const dayEnd = dayStartMs + DAY_MS;
  const xs = [dayStartMs], spent = [0];
  let total = 0;
  for (const p of points || []) {
    const start = p.bucket_start_ms;
    if (start < dayStartMs || start >= dayEnd || start > nowMs) continue;
    total += moneyMicros(p.billable_cost);
    const x = Math.max(start, Math.min(start + SPEND_STEP_MS, nowMs));
    if (x === xs[xs.length - 1]) spent[spent.length - 1] = total;
    else {
      xs.push(x);
      spent.push(total);
    }
  }
  if (xs[xs.length - 1] < dayEnd) {
    xs.push(dayEnd);
    spent.push(null);
  }
  const units = (m) => m / 1_000_000;
  const budget = xs.map(() => (dailyMicros == null ? null : units(dailyMicros)));
  const plan = xs.map((x) => (dailyMicros == null ? null : units((dailyMicros * (x - dayStartMs)) / DAY_MS)));
  return { columns: [xs.map((x) => x / 1000), spent.map((m) => (m == null ? null : units(m))), budget, plan], spentMicros: total };
}
