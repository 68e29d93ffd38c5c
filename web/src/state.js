// View state <-> URL query string (pure: no DOM). The URL is the shareable view:
//   ?window=15m&metric=clicks&ad=ad-0001&res=5m[&k=10][&refresh=5]
//   ?window=7d&metric=ctr&campaign=cmp-001&res=1h
// One detail at a time: an ad's series or a campaign's (a URL naming both opens the ad).
export const WINDOWS = ["5m", "15m", "1h", "6h", "24h", "7d", "30d"];
export const RESOLUTIONS = ["1m", "5m", "1h", "1d"];
export const METRICS = ["clicks", "billable_clicks", "cost", "impressions", "conversions", "ctr"];
export const METRIC_LABELS = {
  clicks: "clicks", billable_clicks: "billable clicks", cost: "cost", impressions: "impressions",
  conversions: "conversions", ctr: "CTR",
};
export const DEFAULTS = Object.freeze({ window: "15m", metric: "clicks", k: 10, ad: null, campaign: null, res: "1m", refresh: 5 });
const ID = /^[\x21-\x7E]{1,128}$/; // the API's Identifier
const DAY_MINUTES = 24 * 60;
// The page's limit on a series' points (the API's is 1500): 24 h at 1m, 5 days at 5m, 30 days at 1h.
export const MAX_POINTS = 1440;
const MAX_SPAN_MINUTES = 30 * DAY_MINUTES; // the API's longest `last`
// A trending row's CTR and conversions come from the ad's series at the finest resolution that
// covers the window in at most this many points (rowResolution).
export const ROW_MAX_POINTS = 200;

function pick(value, allowed, fallback) {
  return allowed.includes(value) ? value : fallback;
}

function intIn(raw, lo, hi, fallback) {
  if (raw == null || !/^[0-9]{1,4}$/.test(raw)) return fallback;
  const n = Number(raw);
  return n >= lo && n <= hi ? n : fallback;
}

const idOrNull = (raw) => (raw != null && ID.test(raw) ? raw : null);

export function isId(raw) {
  return typeof raw === "string" && ID.test(raw);
}

/** The state made consistent: one detail (the ad wins), a resolution the window fits in. */
export function normalize(s) {
  const out = { ...s };
  if (out.ad) out.campaign = null;
  out.res = resolutionFor(out.window, out.res);
  return out;
}

/** Query string (with or without '?') -> a valid state; anything invalid takes its default. */
export function parseState(search) {
  const q = new URLSearchParams(search || "");
  return normalize({
    window: pick(q.get("window"), WINDOWS, DEFAULTS.window),
    metric: pick(q.get("metric"), METRICS, DEFAULTS.metric),
    k: intIn(q.get("k"), 1, 100, DEFAULTS.k),
    ad: idOrNull(q.get("ad")),
    campaign: idOrNull(q.get("campaign")),
    res: pick(q.get("res"), RESOLUTIONS, DEFAULTS.res),
    refresh: intIn(q.get("refresh"), 1, 300, DEFAULTS.refresh),
  });
}

/** State -> '?window=...' (window and metric always, so a shared link survives new defaults). */
export function toSearch(state) {
  const q = new URLSearchParams();
  q.set("window", state.window);
  q.set("metric", state.metric);
  if (state.k !== DEFAULTS.k) q.set("k", String(state.k));
  if (state.ad) q.set("ad", state.ad);
  else if (state.campaign) q.set("campaign", state.campaign);
  if (state.ad || state.campaign) q.set("res", state.res);
  if (state.refresh !== DEFAULTS.refresh) q.set("refresh", String(state.refresh));
  return "?" + q.toString();
}

/** The detail the state shows: {kind: "ad" | "campaign", id} or null. */
export function detailOf(state) {
  if (state.ad) return { kind: "ad", id: state.ad };
  if (state.campaign) return { kind: "campaign", id: state.campaign };
  return null;
}

export function minutesOf(span) {
  const m = /^([0-9]+)([mhd])$/.exec(span);
  if (!m) throw new Error(`not a span: ${span}`);
  return Number(m[1]) * (m[2] === "d" ? DAY_MINUTES : m[2] === "h" ? 60 : 1);
}

/** Minutes -> the API's `last` ("90m", "12h", "7d"; days only beyond 24 h). */
export function span(minutes) {
  if (minutes > DAY_MINUTES && minutes % DAY_MINUTES === 0) return `${minutes / DAY_MINUTES}d`;
  return minutes % 60 === 0 ? `${minutes / 60}h` : `${minutes}m`;
}

/** Does a series of this window at this resolution stay within MAX_POINTS? */
export function fits(window, res) {
  return minutesOf(window) <= MAX_POINTS * minutesOf(res);
}

/** `res` if the window fits in it, else the finest coarser resolution that it fits in (7d: 1h,
 * 30d: 1h; 1d always fits). */
export function resolutionFor(window, res) {
  const from = Math.max(0, RESOLUTIONS.indexOf(res));
  for (const r of RESOLUTIONS.slice(from)) if (fits(window, r)) return r;
  return RESOLUTIONS[RESOLUTIONS.length - 1];
}

/** How far back a detail series goes: the selected window, but at least 12 points of the
 * resolution (a 1h series of a 5m window would be one point), at most MAX_POINTS points and 30
 * days (1m: 24 h, 1h: 30 d, 1d: 30 d). The resolution is first made one the window fits in. */
export function seriesLast(window, res) {
  const step = minutesOf(resolutionFor(window, res));
  const minutes = Math.min(MAX_SPAN_MINUTES, MAX_POINTS * step, Math.max(minutesOf(window), 12 * step));
  return span(minutes);
}

/** The resolution of a trending row's CTR and conversions: the finest that covers the window in
 * at most ROW_MAX_POINTS buckets (15m, 1h: 1m; 6h: 5m; 24h, 7d: 1h; 30d: 1d). Its buckets cover
 * the top-K window from its start floored to the resolution. */
export function rowResolution(window) {
  const minutes = minutesOf(window);
  return RESOLUTIONS.find((r) => minutes <= ROW_MAX_POINTS * minutesOf(r)) || RESOLUTIONS[RESOLUTIONS.length - 1];
}

/** Epoch ms floored to a resolution (UTC buckets, as the API's). */
export function floorTo(ms, res) {
  const step = minutesOf(res) * 60_000;
  return Math.floor(ms / step) * step;
}
