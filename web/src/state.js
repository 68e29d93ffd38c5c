// View state <-> URL query string (pure: no DOM). The URL is the shareable view:
//   ?window=15m&metric=clicks&ad=ad-0001&res=5m[&k=10][&refresh=5]
export const WINDOWS = ["5m", "15m", "1h", "6h", "24h"];
export const RESOLUTIONS = ["1m", "5m", "1h"];
export const METRICS = ["clicks", "billable_clicks", "cost"];
export const METRIC_LABELS = { clicks: "clicks", billable_clicks: "billable clicks", cost: "cost" };
export const DEFAULTS = Object.freeze({ window: "15m", metric: "clicks", k: 10, ad: null, res: "1m", refresh: 5 });
const ID = /^[\x21-\x7E]{1,128}$/; // the API's Identifier
const MAX_SERIES_MINUTES = 24 * 60;

function pick(value, allowed, fallback) {
  return allowed.includes(value) ? value : fallback;
}

function intIn(raw, lo, hi, fallback) {
  if (raw == null || !/^[0-9]{1,4}$/.test(raw)) return fallback;
  const n = Number(raw);
  return n >= lo && n <= hi ? n : fallback;
}

/** Query string (with or without '?') -> a valid state; anything invalid takes its default. */
export function parseState(search) {
  const q = new URLSearchParams(search || "");
  const ad = q.get("ad");
  return {
    window: pick(q.get("window"), WINDOWS, DEFAULTS.window),
    metric: pick(q.get("metric"), METRICS, DEFAULTS.metric),
    k: intIn(q.get("k"), 1, 100, DEFAULTS.k),
    ad: ad != null && ID.test(ad) ? ad : null,
    res: pick(q.get("res"), RESOLUTIONS, DEFAULTS.res),
    refresh: intIn(q.get("refresh"), 1, 300, DEFAULTS.refresh),
  };
}

/** State -> '?window=...' (window and metric always, so a shared link survives new defaults). */
export function toSearch(state) {
  const q = new URLSearchParams();
  q.set("window", state.window);
  q.set("metric", state.metric);
  if (state.k !== DEFAULTS.k) q.set("k", String(state.k));
  if (state.ad) {
    q.set("ad", state.ad);
    q.set("res", state.res);
  }
  if (state.refresh !== DEFAULTS.refresh) q.set("refresh", String(state.refresh));
  return "?" + q.toString();
}

export function minutesOf(span) {
  const m = /^([0-9]+)([mh])$/.exec(span);
  if (!m) throw new Error(`not a span: ${span}`);
  return Number(m[1]) * (m[2] === "h" ? 60 : 1);
}

function span(minutes) {
  return minutes % 60 === 0 ? `${minutes / 60}h` : `${minutes}m`;
}

/** How far back an ad's series goes: the selected window, but at least 12 points of the
 * resolution (a 1h series of a 5m window would be one point), at most 24 h (1440 points at 1m,
 * under the API's 1500-point limit). */
export function seriesLast(window, res) {
  const minutes = Math.min(MAX_SERIES_MINUTES, Math.max(minutesOf(window), 12 * minutesOf(res)));
  return span(minutes);
}
