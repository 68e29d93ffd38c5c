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

/** GET /v1/quality body -> {text, flag, title} for the drift badge. The endpoint does not exist
 * yet; accepted shapes: the reconciliation summary itself (glue_jobs/reconcile.py: total_drift,
 * worst_drift, flag, threshold) or that summary under `summary` / `last_reconciliation`, with an
 * optional day (`day` / `date`). Unknown shapes show "?" rather than a made-up number. */
export function fmtDrift(body) {
  const s = body && (body.last_reconciliation || body.summary || body);
  const inner = s && s.summary && typeof s.summary === "object" ? s.summary : s;
  const drift = inner && inner.total_drift;
  if (typeof drift !== "number" || !Number.isFinite(drift)) return { text: "?", flag: null, title: "unrecognised /v1/quality answer" };
  const day = (s && (s.day || s.date)) || (body && (body.day || body.date)) || null;
  const pct = drift * 100;
  const text = `${pct < 0.001 && pct > 0 ? pct.toExponential(1) : pct.toFixed(3)} %`;
  const flag = typeof inner.flag === "boolean" ? inner.flag : null;
  const title = `last reconciliation${day ? ` (${day})` : ""}: total drift ${text}` +
    (typeof inner.worst_drift === "number" ? `, worst ad-hour ${(inner.worst_drift * 100).toFixed(3)} %` : "") +
    (typeof inner.threshold === "number" ? `, threshold ${(inner.threshold * 100).toFixed(3)} %` : "");
  return { text, flag, title, day };
}
