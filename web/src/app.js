// clickagg live dashboard: trending ads (GET /v1/top) as a ranked bar list, one ad's series
// (GET /v1/ads/{ad_id}/metrics) as a chart, freshness (GET /v1/health) and reconciliation drift
// (GET /v1/quality: its `reconciliation`, "n/a" before the first one or on an older API without
// the route) and the IVT rate (the same answer's `ivt`). The URL holds the view (state.js).
// Every refresh updates the existing DOM nodes in place: rows are keyed by ad id and moved, not
// rebuilt; the chart gets new data, not a new canvas.
import { DEFAULTS, METRICS, METRIC_LABELS, RESOLUTIONS, WINDOWS, parseState, seriesLast, toSearch } from "./state.js";
import { fmtClock, fmtDrift, fmtInt, fmtIvt, fmtLag, fmtMetric, fmtMoney, lagState, metricNumber } from "./format.js";
import { ApiError, clientFor, isMissingRoute, loadConfig } from "./api.js";
import { SeriesChart } from "./chart.js";

const QUALITY_EVERY_MS = 60_000;
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};

let state = parseState(location.search);
let api = null;
let chart = null;
const rows = new Map(); // ad_id -> <li>, reused across refreshes
const view = {
  top: null, topKey: null, topError: null,
  series: null, seriesKey: null, seriesError: null,
  freshness: null, lastOkAt: null, drift: null, ivt: null,
  qualityAt: 0, timer: null, inflight: false, again: false, refreshes: 0,
};

const topKey = (s) => `${s.window}|${s.metric}|${s.k}`;
const seriesKey = (s) => (s.ad ? `${s.ad}|${s.res}|${seriesLast(s.window, s.res)}` : null);

// ---------------------------------------------------------------- controls and URL

function segButtons(container, values, current, onPick) {
  if (!container.childElementCount) {
    for (const v of values) {
      const b = el("button", "seg-btn", v);
      b.type = "button";
      b.dataset.value = v;
      b.addEventListener("click", () => onPick(v));
      container.append(b);
    }
  }
  for (const b of container.children) b.setAttribute("aria-pressed", String(b.dataset.value === current));
}

function syncControls() {
  segButtons($("windows"), WINDOWS, state.window, (w) => setState({ window: w }));
  segButtons($("resolutions"), RESOLUTIONS, state.res, (r) => setState({ res: r }));
  const metric = $("metric");
  if (!metric.options.length) {
    for (const m of METRICS) metric.append(new Option(METRIC_LABELS[m], m));
    metric.addEventListener("change", () => setState({ metric: metric.value }));
  }
  metric.value = state.metric;
  $("refresh-s").textContent = String(state.refresh);
  $("ad-panel").hidden = !state.ad;
  for (const [ad, li] of rows) li.firstChild.setAttribute("aria-pressed", String(ad === state.ad));
  if (state.ad) $("ad-title").textContent = state.ad;
  if (!state.ad && chart) {
    chart.destroy();
    chart = null;
  }
  const tk = topKey(state);
  $("top-list").setAttribute("aria-busy", String(view.topKey !== tk));
  $("top-list").classList.toggle("pending", view.topKey !== null && view.topKey !== tk);
  $("chart").classList.toggle("pending", view.seriesKey !== null && view.seriesKey !== seriesKey(state));
}

function setState(patch) {
  const next = { ...state, ...patch };
  if (toSearch(next) === toSearch(state)) return;
  state = next;
  history.pushState(null, "", toSearch(state));
  syncControls();
  renderTopState();
  renderAdState();
  refreshNow();
}

window.addEventListener("popstate", () => {
  state = parseState(location.search);
  syncControls();
  renderTopState();
  renderAdState();
  refreshNow();
});

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.ad) setState({ ad: null, res: DEFAULTS.res });
});
$("close-ad").addEventListener("click", () => setState({ ad: null, res: DEFAULTS.res }));

// ---------------------------------------------------------------- top-K

function describeError(err) {
  if (!(err instanceof ApiError)) return `unexpected error: ${err && err.message}`;
  if (err.kind === "network") return "API unreachable";
  if (err.kind === "timeout") return err.message;
  if (err.kind === "auth") return `not authorised (${err.status}): sign in again or ask for access`;
  if (err.status === 503) return "serving store unavailable (503)";
  return err.message;
}

function makeRow(ad) {
  const li = el("li", "row");
  li.dataset.ad = ad;
  li.dataset.testid = "top-row";
  const b = el("button", "row-btn");
  b.type = "button";
  b.title = `show ${ad}'s clicks over time`;
  b.addEventListener("click", () => setState({ ad: state.ad === ad ? null : ad }));
  const rank = el("span", "rank");
  const name = el("span", "name");
  const id = el("span", "ad-id", ad);
  const meta = el("span", "ad-sub");
  name.append(id, meta);
  const bar = el("span", "bar");
  const fill = el("span", "fill");
  const upper = el("span", "upper");
  bar.append(fill, upper);
  const value = el("span", "value");
  b.append(rank, name, bar, value);
  li.append(b);
  return li;
}

function renderTop(body) {
  const list = $("top-list");
  const items = body.items;
  const max = Math.max(1e-12, ...items.map((i) => metricNumber(i.total_upper ?? i.total)));
  const seen = new Set();
  items.forEach((item, i) => {
    let li = rows.get(item.ad_id);
    if (!li) {
      li = makeRow(item.ad_id);
      rows.set(item.ad_id, li);
    }
    seen.add(item.ad_id);
    const [rank, name, bar, value] = li.firstChild.children;
    const total = metricNumber(item.total), upper = metricNumber(item.total_upper ?? item.total);
    rank.textContent = String(item.rank);
    name.lastChild.textContent = [item.campaign_id, item.advertiser_id].filter(Boolean).join(" · ");
    bar.firstChild.style.width = `${(100 * total) / max}%`;
    bar.lastChild.style.width = `${(100 * Math.max(0, upper - total)) / max}%`;
    value.textContent = body.exact || upper === total
      ? fmtMetric(body.metric, item.total)
      : `${fmtMetric(body.metric, item.total)}–${fmtMetric(body.metric, item.total_upper)}`;
    li.dataset.rank = String(item.rank);
    li.dataset.total = String(item.total);
    li.firstChild.setAttribute("aria-pressed", String(item.ad_id === state.ad));
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  for (const [ad, li] of rows) {
    if (!seen.has(ad)) {
      li.remove();
      rows.delete(ad);
    }
  }
  list.dataset.window = state.window;
  list.dataset.metric = body.metric;
  list.dataset.fromMs = String(body.window.from_ms);
  list.dataset.toMs = String(body.window.to_ms);
  list.dataset.count = String(items.length);

  const meta = $("top-meta");
  meta.replaceChildren();
  const exact = el("span", "exact", body.exact ? "exact" : `≈ approximate ±${fmtMetric(body.metric, body.error_bound)}`);
  exact.dataset.exact = String(body.exact);
  exact.setAttribute("data-testid", "exact");
  exact.title = body.exact
    ? "ranking and totals equal a computation over all raw aggregates"
    : "merged from per-bucket leaderboards: each total is a lower bound, the bar's light part reaches the upper bound";
  const w = body.window;
  const final = body.freshness && body.freshness.final;
  meta.append(
    el("span", null, `top ${body.k} by ${METRIC_LABELS[body.metric]} · ${fmtClock(w.from_ms)} – ${fmtClock(w.to_ms)}`),
    exact,
    el("span", final ? "final" : "open", final ? "final" : "may still change (late clicks)"),
  );
}

function renderTopState() {
  const box = $("top-state");
  const current = view.topKey === topKey(state);
  let st = "", text = "";
  if (current && view.top) {
    if (!view.top.items.length) {
      const f = view.top.freshness;
      if (!f || f.newest_event_time_ms == null) {
        st = "nodata";
        text = "No data yet: the pipeline has not written any aggregate. Send clicks to POST /v1/clicks.";
      } else {
        st = "empty";
        text = `No clicks in the last ${state.window}` + (state.metric === "clicks" ? "." : ` with ${METRIC_LABELS[state.metric]} > 0.`);
      }
    }
  } else if (view.topError && (!view.top || !current)) {
    st = "error";
    text = `Could not load the top ads: ${describeError(view.topError)}. Retrying every ${state.refresh} s.`;
  } else if (!current) {
    st = "loading";
    text = `Loading top ads for the last ${state.window}…`;
  }
  box.dataset.state = st;
  box.textContent = text;
  box.hidden = !st || (st === "loading" && view.top !== null);
  if (st === "error") {
    const retry = el("button", "link", "retry now");
    retry.type = "button";
    retry.addEventListener("click", () => refreshNow());
    box.append(" ", retry);
  }
  $("top-list").hidden = st === "error" || st === "nodata" || st === "empty";
}

// ---------------------------------------------------------------- one ad

function renderSeries(body) {
  $("ad-title").textContent = body.ad_id;
  $("ad-meta").textContent = [
    body.campaign_id && `campaign ${body.campaign_id}`,
    body.advertiser_id && `advertiser ${body.advertiser_id}`,
    `${body.points.length} × ${body.resolution} buckets, ${fmtClock(body.window.from_ms)} – ${fmtClock(body.window.to_ms)}`,
  ].filter(Boolean).join(" · ");
  const t = body.totals;
  const dl = $("ad-totals");
  dl.replaceChildren();
  for (const [label, value, key] of [["clicks", fmtInt(t.clicks), "clicks"], ["billable clicks", fmtInt(t.billable_clicks), "billable"],
    ["cost", fmtMoney(t.cost), "cost"], ["billable cost", fmtMoney(t.billable_cost), "billable-cost"]]) {
    const div = el("div", "total");
    div.append(el("dt", null, label), el("dd", null, value));
    div.dataset.key = key;
    dl.append(div);
  }
  dl.dataset.clicks = String(t.clicks);
  dl.dataset.billable = String(t.billable_clicks);
  dl.dataset.cost = t.cost;
  dl.dataset.ad = body.ad_id;
  dl.dataset.resolution = body.resolution;
  dl.dataset.fromMs = String(body.window.from_ms);
  dl.dataset.toMs = String(body.window.to_ms);
  if (!chart) chart = new SeriesChart($("chart"));
  chart.update(body.points);
  $("chart").dataset.ad = body.ad_id;
  $("chart").dataset.resolution = body.resolution;
}

function renderAdState() {
  const box = $("ad-state");
  if (!state.ad) return;
  const current = view.seriesKey === seriesKey(state);
  let st = "", text = "";
  if (current && view.series) {
    if (view.series.totals.clicks === 0) {
      st = "empty";
      text = `No clicks on ${state.ad} in the last ${seriesLast(state.window, state.res)}.`;
    }
  } else if (view.seriesError) {
    st = "error";
    text = `Could not load ${state.ad}'s series: ${describeError(view.seriesError)}. Retrying every ${state.refresh} s.`;
  } else {
    st = "loading";
    text = `Loading ${state.ad} at ${state.res}…`;
  }
  box.dataset.state = st;
  box.textContent = text;
  box.hidden = !st;
}

// ---------------------------------------------------------------- badges

function renderFreshness(f, error) {
  const badge = $("freshness");
  if (error && !f) {
    badge.dataset.state = "error";
    badge.textContent = "freshness unavailable";
    badge.title = describeError(error);
    return;
  }
  const lag = f.lag_ms;
  badge.dataset.state = error ? "stale" : f.newest_event_time_ms == null ? "empty" : lagState(lag);
  badge.dataset.newestMs = String(f.newest_event_time_ms ?? "");
  badge.dataset.watermarkMs = String(f.watermark_ms ?? "");
  badge.dataset.lagMs = String(lag ?? "");
  badge.textContent = f.newest_event_time_ms == null
    ? "no data yet"
    : `newest event ${fmtClock(f.newest_event_time_ms)} · watermark ${fmtClock(f.watermark_ms)} · lag ${fmtLag(lag)}`;
  badge.title = `newest event time ${f.newest_event_time || "—"}\nwatermark ${f.watermark || "—"}\n` +
    `allowed lateness ${Math.round((f.allowed_lateness_ms || 0) / 1000)} s` + (error ? `\n(last refresh failed: ${describeError(error)})` : "");
}

function setBadge(badge, st, text, title) { // only what changed: no flicker on refresh
  if (badge.dataset.state !== st) badge.dataset.state = st;
  if (badge.textContent !== text) badge.textContent = text;
  if (badge.title !== title) badge.title = title;
}

function renderDrift(body, error) {
  const badge = $("drift");
  if (error && isMissingRoute(error)) { // an API older than GET /v1/quality
    view.drift = null;
    badge.dataset.drift = "";
    badge.dataset.day = "";
    setBadge(badge, "na", "drift n/a", `no reconciliation available (GET /v1/quality: ${error.status}, route missing: older API)`);
    return;
  }
  if (error) {
    const failed = `GET /v1/quality: ${describeError(error)}`;
    if (view.drift) { // keep the last answer on screen, marked stale
      setBadge(badge, "stale", `drift ${view.drift.text}`, `${view.drift.title}\n(last refresh failed: ${failed})`);
    } else {
      setBadge(badge, "error", "drift ?", failed);
    }
    return;
  }
  const d = fmtDrift(body);
  view.drift = d;
  badge.dataset.drift = d.drift == null ? "" : String(d.drift);
  badge.dataset.day = d.day || "";
  setBadge(badge, d.state, `drift ${d.text}`, d.title);
}

function renderIvt(body, error) {
  const badge = $("ivt");
  if (error && isMissingRoute(error)) { // an API older than GET /v1/quality
    view.ivt = null;
    badge.dataset.rate = "";
    setBadge(badge, "na", "IVT n/a", `no IVT figures (GET /v1/quality: ${error.status}, route missing: older API)`);
    return;
  }
  if (error) {
    const failed = `GET /v1/quality: ${describeError(error)}`;
    if (view.ivt) { // keep the last answer on screen, marked stale
      setBadge(badge, "stale", `IVT ${view.ivt.text}`, `${view.ivt.title}\n(last refresh failed: ${failed})`);
    } else {
      setBadge(badge, "error", "IVT ?", failed);
    }
    return;
  }
  const v = fmtIvt(body);
  view.ivt = v;
  badge.dataset.rate = v.rate == null ? "" : String(v.rate);
  badge.dataset.window = v.window || "";
  setBadge(badge, v.state, `IVT ${v.text}`, v.title);
}

function renderBanner(errors) {
  const banner = $("banner");
  if (!errors.length) {
    banner.hidden = true;
    banner.dataset.state = "";
    return;
  }
  const first = errors[0];
  const since = view.lastOkAt ? ` Showing data from ${fmtClock(view.lastOkAt)}.` : "";
  banner.hidden = false;
  banner.dataset.state = first.kind || "error";
  banner.textContent = `${describeError(first)}.${since} Retrying every ${state.refresh} s.`;
}

// ---------------------------------------------------------------- refresh loop

const settle = (p) => p.then((body) => ({ body }), (error) => ({ error }));

async function refreshOnce() {
  const s = state;
  const tk = topKey(s), sk = seriesKey(s);
  const wantQuality = Date.now() - view.qualityAt >= QUALITY_EVERY_MS;
  const [top, health, series, quality] = await Promise.all([
    settle(api.top({ window: s.window, k: s.k, metric: s.metric })),
    settle(api.health()),
    sk ? settle(api.series(s.ad, { resolution: s.res, last: seriesLast(s.window, s.res) })) : null,
    wantQuality ? settle(api.quality()) : null,
  ]);
  const errors = [];
  if (tk === topKey(state)) { // else the user moved on while this was in flight
    if (top.body) {
      view.top = top.body;
      view.topKey = tk;
      view.topError = null;
      renderTop(top.body);
    } else {
      view.topError = top.error;
      errors.push(top.error);
    }
  }
  const freshness = health.body ? health.body.freshness : top.body ? top.body.freshness : null;
  if (freshness) view.freshness = freshness;
  if (!health.body) errors.push(health.error);
  renderFreshness(freshness || view.freshness, health.body ? null : health.error);
  if (series && sk === seriesKey(state)) {
    if (series.body) {
      view.series = series.body;
      view.seriesKey = sk;
      view.seriesError = null;
      renderSeries(series.body);
    } else {
      view.seriesError = series.error;
      errors.push(series.error);
    }
  }
  if (quality) {
    view.qualityAt = Date.now();
    renderDrift(quality.body, quality.error);
    renderIvt(quality.body, quality.error);
  }
  const real = errors.filter((e) => e);
  if (!real.length) view.lastOkAt = Date.now();
  view.refreshes += 1;
  const updated = $("updated");
  updated.textContent = view.lastOkAt ? `updated ${fmtClock(view.lastOkAt)}` : "";
  updated.dataset.at = String(view.lastOkAt || "");
  updated.dataset.refreshes = String(view.refreshes);
  renderBanner(real);
  document.body.classList.toggle("stale", real.length > 0);
  syncControls();
  renderTopState();
  renderAdState();
}

async function refreshNow() {
  clearTimeout(view.timer);
  if (view.inflight) {
    view.again = true; // one more right after the current one, with the new state
    return;
  }
  view.inflight = true;
  try {
    if (!document.hidden) await refreshOnce();
  } catch (e) {
    console.error("refresh failed", e);
  } finally {
    view.inflight = false;
    if (view.again) {
      view.again = false;
      refreshNow();
    } else {
      view.timer = setTimeout(refreshNow, state.refresh * 1000);
    }
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refreshNow();
});

// ---------------------------------------------------------------- start

async function start() {
  syncControls();
  renderTopState();
  renderAdState();
  try {
    const cfg = await loadConfig();
    const built = await clientFor(cfg);
    api = built.client;
    if (built.session) {
      const out = $("signout");
      out.hidden = false;
      out.addEventListener("click", () => built.session.signOut());
    }
    state = parseState(location.search); // the sign-in redirect may have restored the query
    history.replaceState(null, "", toSearch(state));
    syncControls();
  } catch (e) {
    const box = $("top-state");
    box.hidden = false;
    box.dataset.state = "error";
    box.textContent = `Could not start: ${e.message}`;
    return;
  }
  await refreshNow();
}

start();
