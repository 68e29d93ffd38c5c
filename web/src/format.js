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

/** Money string with 6 decimals -> "12.34" (2 decimals; more only for sub-cent amounts). */
export function fmtMoney(v) {
  if (v == null) return "—";
  const n = Number(v);
  if (n !== 0 && Math.abs(n) < 0.01) return n.toFixed(6).replace(/0+$/, "");
  return new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(n);
}

export function fmtMetric(metric, v) {
  return metric === "cost" ? fmtMoney(v) : fmtInt(v);
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
  return { text, state, title: withExtras(lines.join("\n")), drift, day: r.day ?? null };
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
