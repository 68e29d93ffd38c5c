// Formatting for the dashboard (pure). Times are shown in UTC: the API's windows are UTC buckets.
const INT = new Intl.NumberFormat("en-US");

export function fmtInt(n) {
  return n == null ? "—" : INT.format(n);
}

/** API metric value -> number: counts are integers, cost is a decimal string ("12.340000"). */
export function metricNumber(v) {
  if (v == null) return 0;
  return typeof v === "number" ? v : Number(v);
}

/** Money string with 6 decimals -> "12.34": 2 decimals rounded half up in integers (a half cent
 * is never lost to binary floats: "11.805000" -> "11.81"); sub-cent amounts keep their digits
 * ("0.00025"). Numbers (chart axes) are read as their decimal text. */
export function fmtMoney(v) {
  if (v == null) return "—";
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(String(v));
  if (!m) { // exponent notation (a number near 0 on an axis)
    const n = Number(v);
    return Number.isFinite(n) ? fmtMoney(n.toFixed(6)) : "—";
  }
  const [, sign, whole, frac = ""] = m;
  const micro = `${frac}000000`.slice(0, 6);
  const micros = BigInt(whole) * 1_000_000n + BigInt(micro);
  if (micros === 0n) return "0.00";
  if (micros < 10_000n) return `${sign}0.${micro}`.replace(/0+$/, "");
  const cents = (micros + 5_000n) / 10_000n;
  return `${sign}${INT.format(cents / 100n)}.${String(cents % 100n).padStart(2, "0")}`;
}

const TWO = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** The API's ratios are JSON numbers rounded to 6 decimals: their value in millionths, exactly. */
function micros(v) {
  return Math.round(Number(v) * 1e6);
}

/** A ratio (ctr, cvr: 0.052632) -> "5.26 %": the API's 6-decimal value as a percentage with 2
 * decimals, rounded half up in integers (no float rounding surprises); "<0.01 %" for a smaller
 * non-zero value; "—" for null (a denominator of 0). */
export function fmtPct(v) {
  if (v == null || v === "" || !Number.isFinite(Number(v))) return "—";
  const m = micros(v);
  const hundredths = Math.floor((m + 50) / 100); // 1 hundredth of a percent = 100 millionths
  if (hundredths === 0 && m > 0) return "<0.01 %";
  return `${TWO.format(hundredths / 100)} %`;
}

/** ROAS (conversion value per unit of spend, 6 decimals) -> "3.12" (half up); "—" for null. */
export function fmtRoas(v) {
  if (v == null || v === "" || !Number.isFinite(Number(v))) return "—";
  return TWO.format(Math.floor((micros(v) + 5_000) / 10_000) / 100);
}

const MONEY_METRICS = new Set(["cost", "billable_cost", "conversion_value", "cpc", "cpa"]);
const PCT_METRICS = new Set(["ctr", "cvr"]);

/** A metric's value as the API writes it -> text: counts, money strings, ratios. */
export function fmtMetric(metric, v) {
  if (MONEY_METRICS.has(metric)) return fmtMoney(v);
  if (PCT_METRICS.has(metric)) return fmtPct(v);
  if (metric === "roas") return fmtRoas(v);
  return fmtInt(v);
}

export function isRatio(metric) {
  return PCT_METRICS.has(metric) || metric === "roas" || metric === "cpc" || metric === "cpa";
}

export function fmtLag(ms) {
  if (ms == null) return "—";
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.round(s / 60);
  if (m < 48 * 60) return `${Math.floor(m / 60)} h ${m % 60} min`;
  return `${Math.round(m / 1440)} d`;
}

const pad = (n) => String(n).padStart(2, "0");

/** Epoch ms -> "12:03:04Z" (or "05-31 12:03:04Z" when not today, UTC). */
export function fmtClock(ms, nowMs = Date.now()) {
  if (ms == null) return "—";
  const d = new Date(ms);
  const t = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}Z`;
  const today = new Date(nowMs).toISOString().slice(0, 10);
  return d.toISOString().slice(0, 10) === today ? t : `${d.toISOString().slice(5, 10)} ${t}`;
}

/** Lag -> badge state: ok under 30 s, warn under 5 min, bad beyond; empty when nothing is there. */
export function lagState(lagMs) {
  if (lagMs == null) return "empty";
  if (lagMs < 30_000) return "ok";
  if (lagMs < 300_000) return "warn";
  return "bad";
}

const pct = (ratio, digits = 3) => {
  const p = ratio * 100;
  return `${p > 0 && p < 10 ** -digits ? p.toExponential(1) : p.toFixed(digits)} %`;
};

/** GET /v1/quality body (docs/openapi.yaml QualityResponse) -> the drift badge:
 * {text, state, title, drift, day}. `body.reconciliation` is the newest reconciled day's summary
 * (glue_jobs/reconcile.py) or null before the first reconciliation. state: "bad" when the summary
 * is flagged (total drift above its threshold), "ok" when not, "na" when there is none (or the
 * answer is not a QualityResponse: "?" rather than a made-up number). */
export function fmtDrift(body) {
  const extras = fmtQualityExtras(body);
  const withExtras = (title) => (extras ? `${title}\n${extras}` : title);
  if (!body || typeof body !== "object" || !("reconciliation" in body)) {
    return { text: "?", state: "na", title: "unrecognised GET /v1/quality answer", drift: null, day: null };
  }
  const r = body.reconciliation;
  if (r == null) {
    return { text: "n/a", state: "na", title: withExtras("no reconciliation yet (GET /v1/quality: reconciliation null)"), drift: null, day: null };
  }
  const drift = r.total_drift;
  if (typeof drift !== "number" || !Number.isFinite(drift)) {
    return { text: "?", state: "na", title: "unrecognised reconciliation in GET /v1/quality", drift: null, day: r.day ?? null };
  }
  const text = pct(drift);
  const state = r.flag === true ? "bad" : r.flag === false ? "ok" : "na";
  const num = (v) => typeof v === "number" && Number.isFinite(v);
  const lines = [`reconciliation of ${r.day ?? "?"}: total drift ${text}` +
    (num(r.threshold) ? ` (threshold ${pct(r.threshold)}${r.flag === true ? ", above: flagged" : r.flag === false ? ", within" : ""})` : "")];
  if (num(r.worst_drift)) lines.push(`worst ad-hour ${pct(r.worst_drift)}${r.worst_ad_id ? ` (${r.worst_ad_id})` : ""}`);
  if (num(r.batch_billable) || num(r.realtime_billable)) {
    const diff = num(r.total_diff) ? r.total_diff : (r.realtime_billable ?? 0) - (r.batch_billable ?? 0);
    lines.push(`billable clicks: batch ${fmtInt(r.batch_billable)} vs realtime ${fmtInt(r.realtime_billable)} (${diff > 0 ? "+" : ""}${fmtInt(diff)})`);
  }
  if (r.finished_at) lines.push(`finished ${r.finished_at}`);
  const corrected = fmtCorrections(r.corrections);
  if (corrected.text) lines.push(corrected.text);
  return { text, state, title: withExtras(lines.join("\n")), drift, day: r.day ?? null, corrected: corrected.count };
}

/** The reconciliation's `corrections` (docs/corrections.md) -> {count: the day's corrected ad-hours,
 * text: one line for the drift badge's title ("" when nothing is or was to correct)}. */
export function fmtCorrections(c) {
  if (!c || typeof c !== "object") return { count: 0, text: "" };
  const n = Number.isFinite(c.ad_hours) ? c.ad_hours : 0;
  const runs = Array.isArray(c.runs) && c.runs.length ? ` by ${c.runs.join(", ")}` : "";
  const d = c.delta && Number.isFinite(c.delta.billable_clicks) ? c.delta.billable_clicks : null;
  const moved = d == null ? "" : ` (billable clicks ${d > 0 ? "+" : ""}${fmtInt(d)})`;
  if (n > 0) return { count: n, text: `corrected to the batch truth: ${fmtInt(n)} ad-hours${runs}${moved}` };
  if (Number.isFinite(c.pending) && c.pending > 0) {
    return { count: 0, text: `not corrected: ${fmtInt(c.pending)} ad-hours differ (${c.skipped || "pending"})` };
  }
  return { count: 0, text: "" };
}

/** The bucket starts (ms) of a series' corrected points (`corrected: true`). */
export function correctedStarts(points) {
  return (Array.isArray(points) ? points : []).filter((p) => p && p.corrected === true).map((p) => p.bucket_start_ms);
}

/** Duplicate rate and late-dropped count of the same answer (a line for the badge's title), or "". */
export function fmtQualityExtras(body) {
  if (!body || typeof body !== "object") return "";
  const parts = [];
  const ing = body.ingest;
  if (ing && typeof ing === "object") {
    parts.push(typeof ing.duplicate_rate === "number"
      ? `duplicate rate ${pct(ing.duplicate_rate, 2)} (${fmtInt(ing.duplicates)} of ${fmtInt((ing.accepted ?? 0) + (ing.duplicates ?? 0))})`
      : `duplicate rate n/a${ing.source ? ` (${ing.source})` : ""}`);
  }
  if (typeof body.late_dropped === "number") parts.push(`late-dropped ${fmtInt(body.late_dropped)}`);
  if (!parts.length) return "";
  const w = body.window;
  const ms = w && typeof w.from_ms === "number" && typeof w.to_ms === "number" ? w.to_ms - w.from_ms : null;
  const span = ms == null ? "" : ` in the last ${ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : `${Math.round(ms / 60_000)} min`}`;
  return `${parts.join(", ")}${span}`;
}

const IVT_WINDOWS = [["last_5m", "last 5 min", "5 min"], ["last_hour", "last whole hour", "1 h"]];

/** GET /v1/quality body -> the IVT badge: {text, state, title, rate, window}. `body.ivt` has the
 * clicks per IVT verdict of the last 5 minutes and the last whole hour (docs/openapi.yaml IvtWindow):
 * the badge shows the 5-minute rate of suspect + invalid clicks (the last hour's when those 5
 * minutes had no clicks), "bad" when any window is above `alert_percent`, "ok" when none is; the
 * title has every class's rate per window. "n/a" without clicks, or on an API without `ivt`. */
export function fmtIvt(body) {
  if (!body || typeof body !== "object") {
    return { text: "?", state: "na", title: "unrecognised GET /v1/quality answer", rate: null, window: null };
  }
  const ivt = body.ivt;
  if (ivt == null || typeof ivt !== "object") {
    return { text: "n/a", state: "na", title: "no IVT figures (GET /v1/quality without `ivt`: an older API)", rate: null, window: null };
  }
  const num = (v) => typeof v === "number" && Number.isFinite(v);
  const floor = num(ivt.alert_min_clicks) && ivt.alert_min_clicks > 1 ? ` of at least ${fmtInt(ivt.alert_min_clicks)} clicks` : "";
  const limit = num(ivt.alert_percent) ? ` (alert above ${ivt.alert_percent} %${floor})` : "";
  const lines = [`invalid traffic: suspect + invalid clicks / clicks${limit}`];
  let shown = null;
  for (const [key, label, short] of IVT_WINDOWS) {
    const w = ivt[key];
    if (!w || typeof w !== "object") continue;
    const r = w.rates || {};
    const span = w.from && w.to ? ` ${w.from.slice(11, 16)}–${w.to.slice(11, 16)}Z` : "";
    const notes = [w.alert === true ? "ALERT" : null, w.complete === false ? "top ads only" : null,
      w.final === false ? "may still change" : null].filter(Boolean);
    lines.push(num(r.both) && num(w.clicks) && w.clicks > 0
      ? `${label}${span}: ${pct(r.both, 2)} of ${fmtInt(w.clicks)} clicks (suspect ${pct(r.suspect ?? 0, 2)}, ` +
        `invalid ${pct(r.invalid ?? 0, 2)})${notes.length ? ` [${notes.join(", ")}]` : ""}`
      : `${label}${span}: no clicks`);
    if (!shown && num(r.both) && num(w.clicks) && w.clicks > 0) shown = { rate: r.both, key, short };
  }
  const title = lines.join("\n");
  if (!shown) return { text: "n/a", state: "na", title, rate: null, window: null };
  const state = ivt.alert === true ? "bad" : ivt.alert === false ? "ok" : "na";
  const text = `${pct(shown.rate, 2)}${shown.key === "last_5m" ? "" : ` (${shown.short})`}`;
  return { text, state, title, rate: shown.rate, window: shown.key };
}

// What a ratio's minimum volume counts: its denominator (docs/openapi.yaml, GET /v1/top `min_volume`).
const RATIO_VOLUME = {
  ctr: "impressions", cvr: "billable clicks", cpc: "billable clicks", cpa: "conversions", roas: "currency units of spend",
};

/** A top-K answer's minimum-volume note (ratio metrics only; the page sends no `min_volume`, so
 * this is the API's default), or null. */
export function fmtMinVolume(body) {
  if (!body || body.min_volume == null) return null;
  return `only ads with ≥ ${fmtInt(body.min_volume)} ${RATIO_VOLUME[body.metric] || "of volume"} in the window (min_volume, API default)`;
}

/** A top-K item's value -> {text, state}. state: "exact" (the answer is exact), "proven" (this
 * total is: total_upper equals it), "range" (a lower bound, shown up to its upper bound: 121–124),
 * "lower" (a sum without an upper bound: ≥ 121), "estimate" (a ratio from the listed buckets
 * only: ≈ 5.26 %). */
export function fmtTopValue(metric, item, exact) {
  const text = fmtMetric(metric, item.total);
  if (exact) return { text, state: "exact" };
  const upper = item.total_upper;
  if (upper == null) return isRatio(metric) ? { text: `≈ ${text}`, state: "estimate" } : { text: `≥ ${text}`, state: "lower" };
  if (metricNumber(upper) === metricNumber(item.total)) return { text, state: "proven" };
  return { text: `${text}–${fmtMetric(metric, upper)}`, state: "range" };
}

/** A top-K answer's exactness marker -> {text, title}. The title is the API's `inexact_reason`
 * (why the answer is not exact), then how the values read. */
export function fmtExactness(body) {
  if (body.exact) return { text: "exact", title: "ranking and totals equal a computation over all raw aggregates" };
  const legend = isRatio(body.metric)
    ? "A value marked ≈ is estimated from the buckets that list the ad; an unmarked one is proven."
    : "Each total is a lower bound: a–b reaches its upper bound, ≥ a has none.";
  const reason = body.inexact_reason || "merged from per-bucket leaderboards that do not list every ad";
  const text = body.error_bound == null ? "≈ approximate, no error bound" : `≈ approximate ±${fmtMetric(body.metric, body.error_bound)}`;
  return { text, title: `${reason}\n${legend}` };
}
