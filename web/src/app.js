// clickagg live dashboard: trending ads (GET /v1/top) as a ranked bar list with each row's CTR and
// conversions (the ad's GET /v1/ads/{ad_id}/metrics totals), one ad's or one campaign's series
// (GET /v1/ads/{ad_id}/metrics, GET /v1/campaigns/{campaign_id}/metrics) as totals and two charts,
// freshness (GET /v1/health) and reconciliation drift (GET /v1/quality: its `reconciliation`,
// "n/a" before the first one or on an older API without the route) and the IVT rate (the same
// answer's `ivt`). A campaign's view also has its budget panel: the budget (GET
// /v1/campaigns/{campaign_id}/budget, 404 when none), the pacing decision (GET .../pacing) and today's
// cumulative spend against the budget and the even plan (its series at 5m over the UTC day). The URL
// holds the view (state.js).
// Every refresh updates the existing DOM nodes in place: rows are keyed by ad id and moved, not
// rebuilt; the charts get new data, not a new canvas.
import { DEFAULTS, METRICS, METRIC_LABELS, RESOLUTIONS, WINDOWS, detailOf, fits, floorTo, isId, minutesOf, normalize,
  parseState, rowResolution, seriesLast, toSearch } from "./state.js";
import { correctedStarts, fmtClock, fmtDrift, fmtExactness, fmtInt, fmtIvt, fmtLag, fmtMinVolume, fmtMoney, fmtPct, fmtRoas, fmtTopValue,
  isRatio, lagState, metricNumber } from "./format.js";
import { ApiError, clientFor, isMissingRoute, loadConfig } from "./api.js";
import { DAY_MS, SPEND_RES, budgetView, currencyOf, dayStartOf, isNoBudget, spendColumns } from "./budget.js";
import { BudgetChart, SeriesChart } from "./chart.js";

const QUALITY_EVERY_MS = 60_000;
const ROW_METRICS_MAX = 20; // rows whose CTR and conversions are read (k goes up to 100)
const ROW_CONCURRENCY = 4; // series requests in flight for them
const ROW_MAX_AGE_MS = 30_000; // a row's series is read again after this long, or when its span moves
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};

let state = parseState(location.search);
let api = null;
let currency = null; // the deployment's currency code, when config.json names it (budget.js currencyOf)
const charts = { activity: null, reach: null, budget: null };
const rows = new Map(); // ad_id -> <li>, reused across refreshes
const rowSeries = new Map(); // ad_id -> {key, at, body}: the last series answer for its row
const view = {
  top: null, topKey: null, topError: null,
  series: null, seriesKey: null, seriesError: null,
  freshness: null, lastOkAt: null, drift: null, ivt: null,
  qualityAt: 0, timer: null, inflight: false, again: false, refreshes: 0,
  budget: null, // the shown campaign's budget answers: {campaign, budget, budgetError, pacing, pacingError, spend, ...}
};

const topKey = (s) => `${s.window}|${s.metric}|${s.k}`;
const seriesKey = (s) => {
  const d = detailOf(s);
  return d ? `${d.kind}:${d.id}|${s.res}|${seriesLast(s.window, s.res)}` : null;
};

// The two detail views: which series, which totals (label, field of `totals`, format), which chart.
const DETAIL = {
  ad: {
    fetch: (id, params) => api.series(id, params),
    activity: "activity-ad",
    totals: [["clicks", "clicks", fmtInt], ["billable clicks", "billable_clicks", fmtInt], ["cost", "cost", fmtMoney],
      ["billable cost", "billable_cost", fmtMoney], ["impressions", "impressions", fmtInt], ["CTR", "ctr", fmtPct],
      ["conversions", "conversions", fmtInt], ["conversion value", "conversion_value", fmtMoney]],
  },
  campaign: {
    fetch: (id, params) => api.campaignSeries(id, params),
    activity: "activity-campaign",
    totals: [["impressions", "impressions", fmtInt], ["clicks", "clicks", fmtInt], ["billable clicks", "billable_clicks", fmtInt],
      ["CTR", "ctr", fmtPct], ["conversions", "conversions", fmtInt], ["spend", "billable_cost", fmtMoney],
      ["CPA", "cpa", fmtMoney], ["ROAS", "roas", fmtRoas]],
  },
};

// ---------------------------------------------------------------- controls and URL

function segButtons(container, values, current, onPick, disabled = () => false) {
  if (!container.childElementCount) {
    for (const v of values) {
      const b = el("button", "seg-btn", v);
      b.type = "button";
      b.dataset.value = v;
      b.addEventListener("click", () => onPick(v));
      container.append(b);
    }
  }
  for (const b of container.children) {
    b.setAttribute("aria-pressed", String(b.dataset.value === current));
    const off = disabled(b.dataset.value);
    b.disabled = off;
    b.title = off ? `more than 1,440 points over ${seriesLast(state.window, b.dataset.value)}: pick a coarser resolution` : "";
  }
}

function destroyCharts() {
  for (const name of Object.keys(charts)) {
    if (charts[name]) charts[name].destroy();
    charts[name] = null;
  }
}

function syncControls() {
  segButtons($("windows"), WINDOWS, state.window, (w) => setState({ window: w }));
  segButtons($("resolutions"), RESOLUTIONS, state.res, (r) => setState({ res: r }), (r) => !fits(state.window, r));
  const metric = $("metric");
  if (!metric.options.length) {
    for (const m of METRICS) metric.append(new Option(METRIC_LABELS[m], m));
    metric.addEventListener("change", () => setState({ metric: metric.value }));
  }
  metric.value = state.metric;
  $("top-head-metric").textContent = METRIC_LABELS[state.metric];
  $("refresh-s").textContent = String(state.refresh);
  const detail = detailOf(state);
  const panel = $("detail-panel");
  panel.hidden = !detail;
  panel.dataset.kind = detail ? detail.kind : "";
  $("budget").hidden = !detail || detail.kind !== "campaign";
  for (const [ad, li] of rows) {
    li.firstChild.setAttribute("aria-pressed", String(ad === state.ad));
    const link = li.querySelector(".cmp-link");
    link.setAttribute("aria-pressed", String(!!state.campaign && link.dataset.campaign === state.campaign));
  }
  if (detail) $("detail-title").textContent = `${detail.kind === "ad" ? "Ad" : "Campaign"} ${detail.id}`;
  if (!detail) destroyCharts();
  const tk = topKey(state);
  $("top-list").setAttribute("aria-busy", String(view.topKey !== tk));
  $("top-list").classList.toggle("pending", view.topKey !== null && view.topKey !== tk);
  const seriesPending = view.seriesKey !== null && view.seriesKey !== seriesKey(state);
  $("chart").classList.toggle("pending", seriesPending);
  $("chart-reach").classList.toggle("pending", seriesPending);
}

function setState(patch) {
  const next = normalize({ ...state, ...patch });
  if (toSearch(next) === toSearch(state)) return;
  state = next;
  history.pushState(null, "", toSearch(state));
  syncControls();
  renderTopState();
  renderDetailState();
  renderBudget();
  refreshNow();
}

window.addEventListener("popstate", () => {
  state = parseState(location.search);
  syncControls();
  renderTopState();
  renderDetailState();
  renderBudget();
  refreshNow();
});

const closeDetail = () => setState({ ad: null, campaign: null, res: DEFAULTS.res });
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && detailOf(state)) closeDetail();
});
$("close-detail").addEventListener("click", closeDetail);

$("campaign-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("campaign-input");
  const id = input.value.trim();
  if (!isId(id)) {
    input.setCustomValidity("a campaign id: 1-128 printable characters, no spaces");
    input.reportValidity();
    return;
  }
  input.setCustomValidity("");
  setState({ campaign: id, ad: null });
});
$("campaign-input").addEventListener("input", (e) => e.target.setCustomValidity(""));

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
  b.title = `show ${ad}'s metrics over time`;
  b.addEventListener("click", () => setState({ ad: state.ad === ad ? null : ad, campaign: null }));
  const rank = el("span", "rank");
  const name = el("span", "ad-id", ad);
  const bar = el("span", "bar");
  bar.append(el("span", "fill"), el("span", "upper"));
  const value = el("span", "value");
  const ctr = el("span", "ctr", "…");
  const conv = el("span", "conv", "…");
  b.append(rank, name, bar, value, ctr, conv);
  const sub = el("div", "row-sub");
  const link = el("button", "link cmp-link");
  link.type = "button";
  link.dataset.testid = "campaign-link";
  link.addEventListener("click", () => {
    const c = link.dataset.campaign;
    if (c) setState({ campaign: state.campaign === c ? null : c, ad: null });
  });
  sub.append(link, el("span", "adv"));
  li.append(b, sub);
  return li;
}

/** The span a row's CTR and conversions cover: the top-K window, its start floored to the row
 * resolution (the series API floors `from` and ceils `to` the same way). */
function rowSpan(window, top) {
  const res = rowResolution(window);
  return { res, from: floorTo(top.window.from_ms, res), to: top.window.to_ms };
}

async function eachLimited(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Each shown row's series totals (the first ROW_METRICS_MAX): {res, ads: Map(ad -> {body} | {error})}.
 * An answer is reused for ROW_MAX_AGE_MS while its span (the buckets it covers) is the same: the
 * ranked values refresh every few seconds, a row's CTR and conversions at most twice a minute. */
async function fetchRowMetrics(window, top) {
  const { res, from, to } = rowSpan(window, top);
  const key = `${res}|${from}|${floorTo(to + minutesOf(res) * 60_000 - 1, res)}`; // the buckets covered
  const ads = new Map();
  const now = Date.now();
  const wanted = top.items.slice(0, ROW_METRICS_MAX).map((i) => i.ad_id);
  for (const ad of rowSeries.keys()) if (!wanted.includes(ad)) rowSeries.delete(ad);
  await eachLimited(wanted, ROW_CONCURRENCY, async (ad) => {
    const cached = rowSeries.get(ad);
    if (cached && cached.key === key && now - cached.at < ROW_MAX_AGE_MS) {
      ads.set(ad, { body: cached.body });
      return;
    }
    try {
      const body = await api.series(ad, { resolution: res, from, to });
      rowSeries.set(ad, { key, at: Date.now(), body });
      ads.set(ad, { body });
    } catch (error) {
      ads.set(ad, { error });
    }
  });
  return { res, ads };
}

function renderRowMetrics(li, item, metrics, index) {
  const ctr = li.querySelector(".ctr"), conv = li.querySelector(".conv");
  const got = metrics && metrics.ads.get(item.ad_id);
  if (got && got.body) {
    const t = got.body.totals, w = got.body.window;
    ctr.textContent = fmtPct(t.ctr);
    conv.textContent = fmtInt(t.conversions);
    const span = `${fmtClock(w.from_ms)} – ${fmtClock(w.to_ms)} (${got.body.resolution} buckets)`;
    ctr.title = t.ctr == null
      ? `CTR: no impressions in ${span}`
      : `CTR ${fmtPct(t.ctr)} = ${fmtInt(t.billable_clicks)} billable clicks / ${fmtInt(t.impressions)} impressions, ${span}`;
    conv.title = `${fmtInt(t.conversions)} conversions (value ${fmtMoney(t.conversion_value)}), ${span}`;
    Object.assign(li.dataset, {
      metrics: "ok", ctr: t.ctr == null ? "" : String(t.ctr), conversions: String(t.conversions),
      impressions: String(t.impressions), billable: String(t.billable_clicks),
      metricsRes: got.body.resolution, metricsFromMs: String(w.from_ms), metricsToMs: String(w.to_ms),
    });
  } else if (got && got.error) { // keep the last values, marked
    li.dataset.metrics = li.dataset.metrics === "ok" || li.dataset.metrics === "stale" ? "stale" : "error";
    const why = `could not load ${item.ad_id}'s series: ${describeError(got.error)}`;
    if (li.dataset.metrics === "error") {
      ctr.textContent = "?";
      conv.textContent = "?";
    }
    ctr.title = conv.title = why;
  } else {
    li.dataset.metrics = "none";
    ctr.textContent = conv.textContent = "—";
    ctr.title = conv.title = index >= ROW_METRICS_MAX ? `CTR and conversions are shown for the first ${ROW_METRICS_MAX} rows` : "";
  }
}

function renderTop(body, metrics) {
  const list = $("top-list");
  const items = body.items;
  const max = Math.max(1e-12, ...items.map((i) => metricNumber(i.total_upper ?? i.total)));
  const seen = new Set();
  const campaigns = new Set();
  items.forEach((item, i) => {
    let li = rows.get(item.ad_id);
    if (!li) {
      li = makeRow(item.ad_id);
      rows.set(item.ad_id, li);
    }
    seen.add(item.ad_id);
    const [rank, , bar, value] = li.firstChild.children;
    const total = metricNumber(item.total);
    const open = item.total_upper == null && !body.exact && !isRatio(body.metric); // a lower bound, no upper one
    const upper = open ? total : metricNumber(item.total_upper ?? item.total);
    rank.textContent = String(item.rank);
    bar.firstChild.style.width = `${(100 * total) / max}%`;
    bar.lastChild.style.width = open ? `${Math.min(8, 100 - (100 * total) / max)}%` : `${(100 * Math.max(0, upper - total)) / max}%`;
    bar.lastChild.classList.toggle("open", open);
    const shown = fmtTopValue(body.metric, item, body.exact);
    value.textContent = shown.text;
    value.dataset.state = shown.state;
    const link = li.querySelector(".cmp-link");
    link.hidden = !item.campaign_id;
    link.textContent = item.campaign_id || "";
    link.dataset.campaign = item.campaign_id || "";
    link.title = item.campaign_id ? `show campaign ${item.campaign_id}'s metrics over time` : "";
    link.setAttribute("aria-pressed", String(!!item.campaign_id && item.campaign_id === state.campaign));
    li.querySelector(".adv").textContent = item.advertiser_id ? `${item.campaign_id ? " · " : ""}${item.advertiser_id}` : "";
    if (item.campaign_id) campaigns.add(item.campaign_id);
    renderRowMetrics(li, item, metrics, i);
    li.dataset.rank = String(item.rank);
    li.dataset.total = String(item.total);
    li.dataset.upper = item.total_upper == null ? "" : String(item.total_upper);
    li.dataset.campaign = item.campaign_id || "";
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
  list.dataset.metricsRes = metrics ? metrics.res : "";
  const options = $("campaign-ids"), offered = [...campaigns].sort();
  if (options.dataset.ids !== offered.join(" ")) { // the campaign box offers the listed ads' campaigns
    options.replaceChildren(...offered.map((c) => new Option(c)));
    options.dataset.ids = offered.join(" ");
  }

  const meta = $("top-meta");
  meta.replaceChildren();
  const ex = fmtExactness(body);
  const exact = el("span", "exact", ex.text);
  exact.dataset.exact = String(body.exact);
  exact.setAttribute("data-testid", "exact");
  exact.title = ex.title;
  const w = body.window;
  const final = body.freshness && body.freshness.final;
  meta.append(el("span", null, `top ${body.k} by ${METRIC_LABELS[body.metric] || body.metric} · ${fmtClock(w.from_ms)} – ${fmtClock(w.to_ms)}`));
  const volume = fmtMinVolume(body);
  if (volume) {
    const note = el("span", "min-volume", volume);
    note.setAttribute("data-testid", "min-volume");
    note.dataset.minVolume = String(body.min_volume);
    note.title = "a ratio ranks only ads with enough volume, so one impression with one click does not win";
    meta.append(note);
  }
  meta.append(exact, el("span", final ? "final" : "open", final ? "final" : "may still change (late events)"));
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
        const label = METRIC_LABELS[state.metric];
        text = state.metric === "clicks" ? `No clicks in the last ${state.window}.`
          : view.top.min_volume != null ? `No ads with a ${label} above 0 in the last ${state.window} (min_volume ${fmtInt(view.top.min_volume)}).`
            : `No ads with ${label} > 0 in the last ${state.window}.`;
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
  const hide = st === "error" || st === "nodata" || st === "empty";
  $("top-list").hidden = hide;
  $("top-head").hidden = hide;
}

// ---------------------------------------------------------------- one ad or one campaign

function renderDetailMeta(meta, kind, body, sig) {
  meta.replaceChildren();
  meta.dataset.sig = sig;
  if (kind === "ad" && body.campaign_id) {
    const link = el("button", "link", `campaign ${body.campaign_id}`);
    link.type = "button";
    link.dataset.testid = "detail-campaign-link";
    link.title = `show campaign ${body.campaign_id}`;
    link.addEventListener("click", () => setState({ campaign: body.campaign_id, ad: null }));
    meta.append(link);
  }
  if (body.advertiser_id) meta.append(el("span", null, `advertiser ${body.advertiser_id}`));
  meta.append(el("span", null, `${body.points.length} × ${body.resolution} buckets, ${fmtClock(body.window.from_ms)} – ${fmtClock(body.window.to_ms)}`));
  const corrected = correctedStarts(body.points);
  if (corrected.length) { // buckets set to the nightly batch truth (marked ▼ on the chart)
    const note = el("span", "corrected", `▼ ${corrected.length} corrected to the batch truth: ${corrected.map(fmtClock).join(", ")}`);
    note.dataset.testid = "corrected";
    note.title = "reconciliation found these buckets off the nightly billing recompute and corrected them (docs/corrections.md)";
    meta.append(note);
  }
}

function renderSeries(kind, body) {
  const spec = DETAIL[kind];
  const id = kind === "ad" ? body.ad_id : body.campaign_id;
  $("detail-title").textContent = `${kind === "ad" ? "Ad" : "Campaign"} ${id}`;
  const meta = $("detail-meta");
  const sig = JSON.stringify([kind, id, body.campaign_id, body.advertiser_id, body.points.length, body.resolution,
    body.window.from_ms, body.window.to_ms, correctedStarts(body.points)]);
  if (meta.dataset.sig !== sig) renderDetailMeta(meta, kind, body, sig); // in place: a focused link stays
  const t = body.totals;
  const dl = $("detail-totals");
  dl.replaceChildren();
  for (const [label, field, fmt] of spec.totals) {
    const div = el("div", "total");
    div.append(el("dt", null, label), el("dd", null, fmt(t[field])));
    div.dataset.key = field;
    div.dataset.value = t[field] == null ? "" : String(t[field]);
    dl.append(div);
  }
  Object.assign(dl.dataset, {
    kind, id, clicks: String(t.clicks), billable: String(t.billable_clicks), cost: t.cost,
    resolution: body.resolution, fromMs: String(body.window.from_ms), toMs: String(body.window.to_ms),
  });
  if (charts.activity && charts.activity.specName !== spec.activity) destroyCharts();
  if (!charts.activity) charts.activity = new SeriesChart($("chart"), spec.activity);
  if (!charts.reach) charts.reach = new SeriesChart($("chart-reach"), "reach");
  charts.activity.update(body.points);
  charts.reach.update(body.points);
  for (const c of [$("chart"), $("chart-reach")]) {
    c.dataset.kind = kind;
    c.dataset.id = id;
    c.dataset.ad = kind === "ad" ? id : "";
    c.dataset.campaign = kind === "campaign" ? id : "";
    c.dataset.resolution = body.resolution;
  }
}

function renderDetailState() {
  const box = $("detail-state");
  const detail = detailOf(state);
  if (!detail) return;
  const noun = `${detail.kind === "ad" ? "ad" : "campaign"} ${detail.id}`;
  const current = view.seriesKey === seriesKey(state);
  let st = "", text = "";
  if (current && view.series) {
    const t = view.series.totals;
    if (t.clicks === 0 && t.impressions === 0 && t.conversions === 0) {
      st = "empty";
      text = `No clicks, impressions or conversions on ${noun} in the last ${seriesLast(state.window, state.res)}.`;
    }
  } else if (view.seriesError) {
    st = "error";
    text = `Could not load ${noun}'s series: ${describeError(view.seriesError)}. Retrying every ${state.refresh} s.`;
  } else {
    st = "loading";
    text = `Loading ${noun} at ${state.res}…`;
  }
  box.dataset.state = st;
  box.textContent = text;
  box.hidden = !st;
}

// ---------------------------------------------------------------- a campaign's budget and pacing

/** The budget panel's three reads for one campaign: its budget, its pacing decision and today's
 * spend series (UTC day, 5m buckets, up to the current one). */
async function fetchBudget(campaign) {
  const now = Date.now(), day = dayStartOf(now);
  const [budget, pacing, spend] = await Promise.all([
    settle(api.budget(campaign)),
    settle(api.pacing(campaign)),
    settle(api.campaignSeries(campaign, { resolution: SPEND_RES, from: day, to: Math.max(now, day + 1) })),
  ]);
  return { campaign, day, now, budget, pacing, spend };
}

/** Fold one refresh's answers into view.budget: a part that failed keeps its last value for the
 * same campaign (shown dimmed, `failed`); a 404 "no budget set" is an answer, not a failure. */
function takeBudget(r) {
  const prev = view.budget && view.budget.campaign === r.campaign ? view.budget : null;
  const next = { campaign: r.campaign, errors: [] };
  if (r.pacing.body) {
    Object.assign(next, { pacing: r.pacing.body, pacingError: null });
  } else {
    const keep = prev && prev.pacing && !isMissingRoute(r.pacing.error);
    Object.assign(next, { pacing: keep ? prev.pacing : null, pacingError: r.pacing.error });
    if (keep) next.errors.push(r.pacing.error);
  }
  if (r.budget.body || isNoBudget(r.budget.error)) {
    Object.assign(next, { budget: r.budget.body || null, budgetError: r.budget.error || null });
  } else {
    Object.assign(next, { budget: prev ? prev.budget : null, budgetError: r.budget.error });
  }
  if (r.spend.body) {
    Object.assign(next, { spend: r.spend.body, spendDay: r.day, spendNow: r.now });
  } else {
    Object.assign(next, { spend: prev ? prev.spend : null, spendDay: prev && prev.spendDay, spendNow: prev && prev.spendNow });
    if (next.spend) next.errors.push(r.spend.error);
  }
  view.budget = next;
}

function renderBudget() {
  const detail = detailOf(state);
  if (!detail || detail.kind !== "campaign") return;
  const panel = $("budget");
  const b = view.budget && view.budget.campaign === detail.id ? view.budget : null;
  const v = budgetView({ budget: b && b.budget, budgetError: b && b.budgetError, pacing: b && b.pacing,
    pacingError: b && b.pacingError, failed: Boolean(b && b.errors.length), currency });
  const p = b && b.pacing;
  Object.assign(panel.dataset, {
    state: v.state, campaign: detail.id, fetch: v.failed ? "failed" : "ok", decision: v.decision || "",
    fraction: v.fraction == null ? "" : String(v.fraction), reason: v.reason || "", day: p ? p.day : "",
  });
  $("budget-day").textContent = p ? `${p.day} (UTC)` : b && b.spendDay != null ? `${new Date(b.spendDay).toISOString().slice(0, 10)} (UTC)` : "";
  const decision = $("budget-decision");
  decision.textContent = v.decision ? v.decision.toUpperCase() : "";
  decision.hidden = !v.decision;
  decision.dataset.state = v.decisionState;
  decision.dataset.decision = v.decision || "";
  decision.title = "what ad servers are told for this campaign (GET /v1/campaigns/{campaign_id}/pacing)";
  $("budget-fraction").textContent = v.fractionText;
  $("budget-reason").textContent = v.reasonText;
  const alert = $("budget-alert");
  let alertText = v.alert, why = v.alertDetail;
  if (v.state === "loading") alertText = `Loading the budget of campaign ${detail.id}…`;
  if (v.state === "error") {
    alertText = `Could not load the pacing decision: ${describeError(v.error)}.`;
    why = `Retrying every ${state.refresh} s.`;
  }
  alert.hidden = !alertText;
  alert.textContent = alertText || "";
  if (why) alert.append(el("span", "why", why));
  const dl = $("budget-figures");
  dl.replaceChildren();
  for (const f of v.figures) {
    const div = el("div", "total");
    div.append(el("dt", null, f.label), el("dd", null, f.text));
    div.dataset.key = f.key;
    div.dataset.value = f.value == null ? "" : String(f.value);
    if (f.title) div.title = f.title;
    dl.append(div);
  }
  dl.hidden = !v.figures.length;
  const failed = b ? b.errors.filter(Boolean) : [];
  $("budget-meta").textContent = v.meta + (failed.length ? ` · last refresh failed: ${describeError(failed[0])}` : "");
  renderSpendChart(b, v.state === "none" ? null : p ? p.daily_budget_micros : b && b.budget ? b.budget.daily_budget_micros : null);
}

function renderSpendChart(b, dailyMicros) {
  const box = $("chart-budget");
  if (!b || !b.spend) {
    if (charts.budget) charts.budget.destroy();
    charts.budget = null;
    box.hidden = true;
    for (const k of ["points", "spentMicros", "budgetMicros", "day"]) delete box.dataset[k];
    return;
  }
  box.hidden = false;
  const { columns, spentMicros } = spendColumns(b.spend.points, b.spendDay, b.spendNow, dailyMicros);
  if (!charts.budget) charts.budget = new BudgetChart(box);
  charts.budget.update(columns, [b.spendDay / 1000, (b.spendDay + DAY_MS) / 1000], currency);
  Object.assign(box.dataset, {
    points: String(b.spend.points.length), spentMicros: String(spentMicros),
    budgetMicros: dailyMicros == null ? "" : String(dailyMicros), day: String(b.spendDay),
  });
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
  badge.dataset.corrected = String(d.corrected || 0);
  setBadge(badge, d.state, `drift ${d.text}${d.corrected ? " ▼" : ""}`, d.title);
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
  const tk = topKey(s), sk = seriesKey(s), detail = detailOf(s);
  const wantQuality = Date.now() - view.qualityAt >= QUALITY_EVERY_MS;
  const topAndRows = settle(api.top({ window: s.window, k: s.k, metric: s.metric }))
    .then(async (r) => (r.body ? { ...r, metrics: await fetchRowMetrics(s.window, r.body) } : r));
  const budgetFor = detail && detail.kind === "campaign" ? detail.id : null;
  const [top, health, series, quality, budget] = await Promise.all([
    topAndRows,
    settle(api.health()),
    detail ? settle(DETAIL[detail.kind].fetch(detail.id, { resolution: s.res, last: seriesLast(s.window, s.res) })) : null,
    wantQuality ? settle(api.quality()) : null,
    budgetFor ? fetchBudget(budgetFor) : null,
  ]);
  const errors = [];
  if (tk === topKey(state)) { // else the user moved on while this was in flight
    if (top.body) {
      view.top = top.body;
      view.topKey = tk;
      view.topError = null;
      renderTop(top.body, top.metrics);
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
      renderSeries(detail.kind, series.body);
    } else {
      view.seriesError = series.error;
      errors.push(series.error);
    }
  }
  if (budget && !state.ad && state.campaign === budgetFor) takeBudget(budget); // its errors stay in the panel
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
  renderDetailState();
  renderBudget();
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
  renderDetailState();
  renderBudget();
  try {
    const cfg = await loadConfig();
    const built = await clientFor(cfg);
    api = built.client;
    currency = currencyOf(cfg);
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
