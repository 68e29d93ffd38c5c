#!/usr/bin/env node
// Drive the dashboard in headless Debian Chromium (playwright-core, no downloaded browser).
//
//   node web/test/e2e.mjs --url http://127.0.0.1:PORT --screenshot artifacts/dashboard.png
//
// Talks to its caller (tests/web/test_dashboard.py) in JSON lines: it prints
//   {"event": "top", "window": "15m", "rows": [...]}   what the page shows (pytest compares with the API)
//   {"event": "rows", "window": "7d", "metric": ..., "rows": [...]}   the same with each row's CTR and
//                                                       conversions (pytest: API + the seeded rows)
//   {"event": "detail", "kind": "campaign", "id": ..., "totals": {...}}   a detail view's totals
//   {"event": "drift", "text": ..., "drift": ...}       the drift badge (pytest compares with the seeded summary)
//   {"event": "advance"}                                then waits for one line on stdin: the caller
//                                                       has written newer clicks and freshness
//   {"event": "budget", "label": ..., "state": ...}     the campaign view's budget panel (pytest: the
//                                                       test's own budgets and clicks)
//   {"event": "budget-seed" | "pulse-start" | "pulse-stop", "wait": true}   the caller sets budgets and
//                                                       writes spend rows / keeps the pulse fresh / stops
//                                                       it, then answers one line on stdin
//   {"event": "result", "checks": {...}, "errors": [...]}   last line; exit 0 even when checks fail
// (pytest asserts on the checks). Any page error / console error / CSP violation is reported.
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const BASE = (args.url || "http://127.0.0.1:8080").replace(/\/$/, "");
const SHOT = resolve(args.screenshot || "artifacts/dashboard.png");
const CHROMIUM = args.chromium || process.env.CHROMIUM || "/usr/bin/chromium";
const T = Number(args.timeout || 15000); // per wait

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const stdin = createInterface({ input: process.stdin });
const lines = [];
let waiter = null;
stdin.on("line", (l) => (waiter ? (waiter(l), (waiter = null)) : lines.push(l)));
const nextLine = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => (waiter = r)));

const checks = {};
const errors = [];
const started = Date.now();
const check = (name, ok, detail) => {
  checks[name] = { ok: Boolean(ok), detail: detail ?? null, at_ms: Date.now() - started };
};

const topWindow = (page) => page.$eval('[data-testid="top-list"]', (e) => ({ from_ms: Number(e.dataset.fromMs), to_ms: Number(e.dataset.toMs) }));

async function topRows(page) {
  return page.$$eval('[data-testid="top-row"]', (lis) => lis.map((li) => ({
    ad_id: li.dataset.ad,
    rank: Number(li.dataset.rank),
    total: li.dataset.total,
    text: li.querySelector(".value").textContent,
    selected: li.querySelector("button").getAttribute("aria-pressed") === "true",
  })));
}

async function waitTop(page, window, metric = null) {
  await page.waitForFunction(([w, m]) => {
    const list = document.querySelector('[data-testid="top-list"]');
    const st = document.querySelector('[data-testid="top-state"]').dataset.state;
    return list.dataset.window === w && (!m || list.dataset.metric === m) && list.getAttribute("aria-busy") === "false" &&
      (st === "" || st === "empty" || st === "nodata");
  }, [window, metric], { timeout: T });
}

/** Everything a trending list shows: rows (ids, values, CTR and conversions with the span they
 * cover), the window, the exactness marker and the minimum-volume note. */
async function topView(page) {
  return page.evaluate(() => {
    const list = document.querySelector('[data-testid="top-list"]');
    const exact = document.querySelector('[data-testid="exact"]');
    const volume = document.querySelector('[data-testid="min-volume"]');
    return {
      range: { from_ms: Number(list.dataset.fromMs), to_ms: Number(list.dataset.toMs) },
      metrics_res: list.dataset.metricsRes,
      exact: exact.dataset.exact, exact_text: exact.textContent, exact_title: exact.title,
      min_volume: volume ? { text: volume.textContent, value: volume.dataset.minVolume } : null,
      text: document.querySelector('[data-testid="top-meta"]').textContent + " " + list.textContent,
      rows: [...list.querySelectorAll('[data-testid="top-row"]')].map((li) => ({
        ad_id: li.dataset.ad, rank: Number(li.dataset.rank), total: li.dataset.total, upper: li.dataset.upper,
        campaign: li.dataset.campaign, text: li.querySelector(".value").textContent,
        metrics: li.dataset.metrics, ctr: li.dataset.ctr ?? null, ctr_text: li.querySelector(".ctr").textContent,
        conversions: li.dataset.conversions ?? null, conv_text: li.querySelector(".conv").textContent,
        metrics_res: li.dataset.metricsRes ?? null, metrics_from_ms: Number(li.dataset.metricsFromMs),
        metrics_to_ms: Number(li.dataset.metricsToMs),
      })),
    };
  });
}

async function waitDetail(page, kind, id, res = null) {
  await page.waitForFunction(([k, i, r]) => {
    const c = document.querySelector('[data-testid="chart"]');
    const reach = document.querySelector('[data-testid="chart-reach"]');
    const st = document.querySelector('[data-testid="detail-state"]').dataset.state;
    return !document.querySelector('[data-testid="detail-panel"]').hidden && c.dataset.kind === k && c.dataset.id === i &&
      (!r || c.dataset.resolution === r) && Number(c.dataset.points) > 0 && Number(reach.dataset.points) > 0 &&
      c.querySelector("canvas") && (st === "" || st === "empty");
  }, [kind, id, res], { timeout: T });
}

/** A detail view: its totals (each tile's API value and text), window, charts and the URL. */
async function detailView(page) {
  return page.evaluate(() => {
    const dl = document.querySelector('[data-testid="detail-totals"]');
    const chart = document.querySelector('[data-testid="chart"]'), reach = document.querySelector('[data-testid="chart-reach"]');
    const tiles = Object.fromEntries([...dl.querySelectorAll(".total")].map((d) => [d.dataset.key,
      { value: d.dataset.value, text: d.querySelector("dd").textContent, label: d.querySelector("dt").textContent }]));
    return {
      kind: dl.dataset.kind, id: dl.dataset.id, resolution: dl.dataset.resolution,
      from_ms: Number(dl.dataset.fromMs), to_ms: Number(dl.dataset.toMs), tiles,
      title: document.querySelector('[data-testid="detail-title"]').textContent,
      points: Number(chart.dataset.points), chart_sum: Number(chart.dataset.sum),
      reach_points: Number(reach.dataset.points), reach_sum: Number(reach.dataset.sum), url: location.href,
      disabled: [...document.querySelectorAll('[data-testid="resolutions"] button:disabled')].map((b) => b.dataset.value),
    };
  });
}

const ivtBadge = (page) => page.$eval('[data-testid="ivt"]', (e) => ({
  text: e.textContent.trim(), state: e.dataset.state, title: e.title, rate: e.dataset.rate ?? "" }));
const driftBadge = (page) => page.$eval('[data-testid="drift"]', (e) => ({
  text: e.textContent.trim(), state: e.dataset.state, title: e.title, drift: e.dataset.drift ?? "", day: e.dataset.day ?? "" }));

async function driftOnLoad(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector('[data-testid="drift"]').dataset.state !== "loading", null, { timeout: T });
  return driftBadge(page);
}

/** The campaign view's budget panel: state, decision, alert, every figure (API value and text), chart. */
const budgetPanel = (page) => page.evaluate(() => {
  const p = document.querySelector('[data-testid="budget"]');
  const alert = document.querySelector('[data-testid="budget-alert"]');
  const chart = document.querySelector('[data-testid="chart-budget"]');
  const text = (id) => document.querySelector(`[data-testid="${id}"]`).textContent;
  return {
    hidden: p.hidden, state: p.dataset.state, campaign: p.dataset.campaign, fetch: p.dataset.fetch,
    decision: p.dataset.decision, fraction: p.dataset.fraction, reason: p.dataset.reason, day: p.dataset.day,
    decision_text: text("budget-decision"), fraction_text: text("budget-fraction"), reason_text: text("budget-reason"),
    alert: alert.hidden ? null : alert.firstChild ? alert.firstChild.textContent : "", alert_all: alert.hidden ? null : alert.textContent,
    figures: Object.fromEntries([...document.querySelectorAll('[data-testid="budget-figures"] .total')].map((d) => [d.dataset.key,
      { value: d.dataset.value, text: d.querySelector("dd").textContent, label: d.querySelector("dt").textContent }])),
    meta: text("budget-meta"),
    chart: { hidden: chart.hidden, canvas: Boolean(chart.querySelector("canvas")), points: chart.dataset.points ?? "",
      spent_micros: chart.dataset.spentMicros ?? "", budget_micros: chart.dataset.budgetMicros ?? "", day: chart.dataset.day ?? "" },
  };
});

async function waitBudget(page, campaign, st, timeout = T) {
  await page.waitForFunction(([c, s]) => {
    const p = document.querySelector('[data-testid="budget"]');
    return !p.hidden && p.dataset.campaign === c && p.dataset.state === s && p.dataset.fetch === "ok";
  }, [campaign, st], { timeout });
  return budgetPanel(page);
}

async function ask(event) { // the caller does something, then answers one line
  emit({ event, wait: true });
  await nextLine();
}

const attr = (page, testid, name) => page.$eval(`[data-testid="${testid}"]`, (e, n) => e.dataset[n] ?? null, name);

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "clickagg-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1360, height: 900 },
  });
  const watch = (page, label) => {
    page.on("pageerror", (e) => errors.push(`${label} pageerror: ${e.message}`));
    page.on("console", (m) => {
      // 404 of config.json (and of the mocked older API's /v1/quality) and the aborted requests below are expected
      if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(`${label} console: ${m.text()}`);
    });
  };
  try {
    const page = context.pages()[0] || (await context.newPage());
    watch(page, "main");
    const t0 = Date.now();
    await page.goto(`${BASE}/?window=15m&refresh=1`);

    // 1. top-K for 15m, as the API answers it
    await waitTop(page, "15m");
    const rows15 = await topRows(page);
    emit({ event: "top", window: "15m", metric: "clicks", k: 10, rows: rows15, range: await topWindow(page),
      exact: await page.$eval('[data-testid="exact"]', (e) => e.dataset.exact) });
    check("top 15m shown", rows15.length > 0, { rows: rows15.length, ms: Date.now() - t0 });

    // 2. drift badge from the real GET /v1/quality: pytest seeded a reconciliation summary into the
    //    serving table (glue_jobs.reconcile.publish_summary) and compares what the page shows with it
    await page.waitForFunction(() => document.querySelector('[data-testid="drift"]').dataset.state !== "loading", null, { timeout: T });
    const drift = await driftBadge(page);
    emit({ event: "drift", ...drift });
    check("drift from seeded reconciliation", ["ok", "bad"].includes(drift.state) && drift.drift !== "", drift);
    // the IVT badge from the same answer (its windows follow the clock: any state but loading/error)
    await page.waitForFunction(() => document.querySelector('[data-testid="ivt"]').dataset.state !== "loading", null, { timeout: T });
    const ivtReal = await ivtBadge(page);
    check("IVT badge from the real /v1/quality", ["ok", "bad", "na"].includes(ivtReal.state) && /^IVT /.test(ivtReal.text) &&
      (ivtReal.rate === "" || (Number(ivtReal.rate) >= 0 && Number(ivtReal.rate) <= 1)), ivtReal);

    // 3. a window with no clicks: explicit empty state
    await page.click('[data-testid="windows"] button[data-value="5m"]');
    await waitTop(page, "5m");
    const st5 = await attr(page, "top-state", "state");
    check("5m window empty state", st5 === "empty", { state: st5, text: await page.textContent('[data-testid="top-state"]') });
    check("url has window=5m", new URL(page.url()).searchParams.get("window") === "5m", page.url());

    // 4. 1h window
    await page.click('[data-testid="windows"] button[data-value="1h"]');
    await waitTop(page, "1h");
    const rows1h = await topRows(page);
    emit({ event: "top", window: "1h", metric: "clicks", k: 10, rows: rows1h, range: await topWindow(page),
      exact: await page.$eval('[data-testid="exact"]', (e) => e.dataset.exact) });

    // 5. click an ad: its chart opens; switch resolution
    const pick = rows1h[1] || rows1h[0];
    await page.click(`[data-testid="top-row"][data-ad="${pick.ad_id}"] button`);
    await page.waitForFunction((ad) => {
      const c = document.querySelector('[data-testid="chart"]');
      return c.dataset.ad === ad && Number(c.dataset.points) > 0 && c.querySelector("canvas");
    }, pick.ad_id, { timeout: T });
    const url1 = new URL(page.url());
    check("ad chart opens", true, { ad: pick.ad_id, points: await attr(page, "chart", "points") });
    check("url has ad", url1.searchParams.get("ad") === pick.ad_id && url1.searchParams.get("res") === "1m", page.url());
    await page.click('[data-testid="resolutions"] button[data-value="5m"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="chart"]').dataset.resolution === "5m", null, { timeout: T });
    const totals = await page.$eval('[data-testid="detail-totals"]', (e) => ({ ...e.dataset }));
    emit({ event: "series", ad: pick.ad_id, resolution: "5m", window: "1h", totals, detail: await detailView(page),
      points: Number(await attr(page, "chart", "points")), chart_sum: Number(await attr(page, "chart", "sum")) });
    check("resolution 5m in url", new URL(page.url()).searchParams.get("res") === "5m", page.url());

    // 6. the URL is the view: a reload (or a shared link) restores it
    const shared = page.url();
    await page.reload();
    await page.waitForFunction((ad) => {
      const c = document.querySelector('[data-testid="chart"]');
      return c.dataset.ad === ad && c.dataset.resolution === "5m" && Number(c.dataset.points) > 0;
    }, pick.ad_id, { timeout: T });
    const pressed = await page.$eval('[data-testid="windows"] [aria-pressed="true"]', (b) => b.dataset.value);
    check("shared link restores view", pressed === "1h" && page.url() === shared, { pressed, url: page.url() });
    await waitTop(page, "1h");

    // 7. freshness badge updates; rows update in place (same DOM nodes, no rebuild)
    const before = await page.$eval('[data-testid="freshness"]', (e) => ({ ...e.dataset, text: e.textContent }));
    await page.$$eval('[data-testid="top-row"]', (lis) => lis.forEach((li) => (li.__mark = li.dataset.ad)));
    const topBefore = (await topRows(page))[0];
    emit({ event: "advance", ad: topBefore.ad_id, freshness: before });
    await nextLine();
    const tAdv = Date.now();
    await page.waitForFunction((ms) => document.querySelector('[data-testid="freshness"]').dataset.newestMs !== ms,
      before.newestMs, { timeout: T });
    const after = await page.$eval('[data-testid="freshness"]', (e) => ({ ...e.dataset, text: e.textContent }));
    check("freshness badge updates", Number(after.newestMs) > Number(before.newestMs) && after.text !== before.text,
      { before, after, ms: Date.now() - tAdv });
    await page.waitForFunction(([ad, total]) => {
      const li = document.querySelector(`[data-testid="top-row"][data-ad="${ad}"]`);
      return li && li.dataset.total !== total;
    }, [topBefore.ad_id, topBefore.total], { timeout: T });
    const inPlace = await page.$$eval('[data-testid="top-row"]', (lis) => ({
      marked: lis.filter((li) => li.__mark === li.dataset.ad).length, total: lis.length }));
    const topAfter = (await topRows(page))[0];
    check("rows updated in place", inPlace.marked === inPlace.total && inPlace.total > 0,
      { ...inPlace, before: topBefore, after: topAfter });
    const rowsAfter = await topRows(page);
    emit({ event: "top", window: "1h", metric: "clicks", k: 10, rows: rowsAfter, range: await topWindow(page), after_advance: true,
      exact: await page.$eval('[data-testid="exact"]', (e) => e.dataset.exact) });
    await page.waitForTimeout(300); // let the bar transitions settle for the screenshot
    mkdirSync(dirname(SHOT), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });

    // 8. API down while showing data: banner, stale data kept; recovers by itself
    await page.route("**/v1/**", (route) => route.abort("connectionrefused"));
    await page.waitForSelector('[data-testid="banner"]:not([hidden])', { timeout: T });
    const banner = await page.textContent('[data-testid="banner"]');
    const keptRows = (await topRows(page)).length;
    check("API down: banner, data kept", /unreachable/i.test(banner) && keptRows > 0, { banner, keptRows });
    await page.screenshot({ path: SHOT.replace(/\.png$/, "-api-down.png"), fullPage: true });
    await page.unroute("**/v1/**");
    await page.waitForSelector('[data-testid="banner"]', { state: "hidden", timeout: T });
    check("recovers after API returns", true);
    await page.close(); // its refreshes would share the local API with the pages below

    // 9. fresh page with the API down: explicit error state (no data to show)
    const p2 = await context.newPage();
    watch(p2, "down");
    await p2.route("**/v1/**", (route) => route.abort("connectionrefused"));
    await p2.goto(`${BASE}/?window=15m&k=3&refresh=1`);
    await p2.waitForFunction(() => document.querySelector('[data-testid="top-state"]').dataset.state === "error", null, { timeout: T });
    check("API down on load: error state", true, await p2.textContent('[data-testid="top-state"]'));
    const freshDown = await p2.$eval('[data-testid="freshness"]', (e) => e.dataset.state);
    check("API down on load: freshness badge error", freshDown === "error", freshDown);
    await p2.close();

    // 10. no data yet; an approximate answer; a reconciliation drift (answers shaped by the contract).
    //     These pages show 3 rows (k=3): fewer row series to read from the one-request-at-a-time emulator
    const p3 = await context.newPage();
    watch(p3, "shaped");
    await p3.route("**/v1/top?*", async (route) => {
      const resp = await route.fetch();
      const body = await resp.json();
      body.items = [];
      body.freshness = { ...body.freshness, newest_event_time: null, newest_event_time_ms: null, watermark: null, watermark_ms: null, lag_ms: null, final: false };
      await route.fulfill({ response: resp, json: body });
    });
    await p3.route("**/v1/quality*", async (route) => { // the real answer, its reconciliation within the threshold
      const resp = await route.fetch();
      const body = await resp.json();
      body.reconciliation = { ...body.reconciliation, day: "2026-01-01", total_drift: 0.0004, worst_drift: 0.01, flag: false, threshold: 0.001 };
      // 30 of 400 clicks suspect or invalid in the last 5 minutes: 7.5 %, above 5 %
      const w5 = body.ivt.last_5m;
      body.ivt = { ...body.ivt, alert_percent: 5, alert: true, last_5m: { ...w5, clicks: 400, billable_clicks: 370,
        suspect_clicks: 20, invalid_clicks: 10, rates: { suspect: 0.05, invalid: 0.025, both: 0.075 }, alert: true } };
      await route.fulfill({ response: resp, json: body });
    });
    await p3.goto(`${BASE}/?window=15m&k=3&refresh=1`);
    await p3.waitForFunction(() => document.querySelector('[data-testid="top-state"]').dataset.state === "nodata", null, { timeout: T });
    check("no data yet state", true, await p3.textContent('[data-testid="top-state"]'));
    await p3.waitForFunction(() => document.querySelector('[data-testid="drift"]').dataset.state === "ok", null, { timeout: T });
    const shapedDrift = await driftBadge(p3);
    check("drift from /v1/quality", shapedDrift.text === "drift 0.040 %" && shapedDrift.day === "2026-01-01", shapedDrift);
    await p3.waitForFunction(() => document.querySelector('[data-testid="ivt"]').dataset.state === "bad", null, { timeout: T });
    const shapedIvt = await ivtBadge(p3);
    check("IVT alert from /v1/quality", shapedIvt.text === "IVT 7.50 %" && shapedIvt.rate === "0.075" &&
      /of 400 clicks \(suspect 5\.00 %, invalid 2\.50 %\) \[ALERT/.test(shapedIvt.title), shapedIvt);
    await p3.unroute("**/v1/top?*");
    await p3.route("**/v1/top?*", async (route) => {
      const resp = await route.fetch();
      const body = await resp.json();
      body.exact = false;
      body.error_bound = 3;
      body.items = body.items.map((i) => ({ ...i, total_upper: i.total + 3 }));
      await route.fulfill({ response: resp, json: body });
    });
    await p3.waitForFunction(() => {
      const e = document.querySelector('[data-testid="exact"]');
      return e && e.dataset.exact === "false" && document.querySelector('[data-testid="top-row"] .value');
    }, null, { timeout: T });
    const approx = await p3.textContent('[data-testid="exact"]');
    const rangeText = await p3.$eval('[data-testid="top-row"] .value', (e) => e.textContent);
    check("approximate marker", /approximate/.test(approx) && /–/.test(rangeText), { approx, rangeText });
    // an answer without an error bound (a truncated board bounds nothing about impressions or
    // conversions; a ratio's estimate): no "±null", the reason in the marker's tooltip
    await p3.unroute("**/v1/top?*");
    const reason = "3 of 40 bucket leaderboards are truncated (shaped)";
    await p3.route("**/v1/top?*", async (route) => {
      const resp = await route.fetch();
      const body = await resp.json();
      body.exact = false;
      body.error_bound = null;
      body.inexact_reason = reason;
      body.items = body.items.map((i, n) => ({ ...i, total_upper: n === 0 ? i.total : null }));
      await route.fulfill({ response: resp, json: body });
    });
    await p3.waitForFunction(() => document.querySelector('[data-testid="exact"]').textContent.includes("no error bound"), null, { timeout: T });
    const unbounded = await topView(p3);
    check("approximate without an error bound", unbounded.exact_text === "≈ approximate, no error bound" &&
      unbounded.exact_title.startsWith(reason + "\n") && !/null|NaN|undefined/.test(unbounded.text) &&
      unbounded.rows.length > 1 && unbounded.rows[0].text === Number(unbounded.rows[0].total).toLocaleString("en-US") &&
      unbounded.rows.slice(1).every((r) => r.text === `≥ ${Number(r.total).toLocaleString("en-US")}`),
    { text: unbounded.exact_text, title: unbounded.exact_title, rows: unbounded.rows.slice(0, 3).map((r) => [r.text, r.total]) });
    await p3.close();

    // 11. drift n/a: before the first reconciliation (reconciliation null), and on an older API
    //     without GET /v1/quality (404)
    const p4 = await context.newPage();
    watch(p4, "drift-na");
    await p4.route("**/v1/quality*", async (route) => {
      const resp = await route.fetch();
      await route.fulfill({ response: resp, json: { ...(await resp.json()), reconciliation: null } });
    });
    const none = await driftOnLoad(p4, `${BASE}/?window=15m&k=3&refresh=1`);
    check("drift n/a before first reconciliation", none.text === "drift n/a" && none.state === "na" &&
      /no reconciliation yet/.test(none.title), none);
    await p4.unroute("**/v1/quality*");
    await p4.route("**/v1/quality*", (route) => route.fulfill({ status: 404, json: { error: "not found" } }));
    const old = await driftOnLoad(p4, `${BASE}/?window=15m&k=3&refresh=1`);
    check("drift n/a on 404 (older API)", old.text === "drift n/a" && old.state === "na" && /404/.test(old.title), old);
    const oldIvt = await ivtBadge(p4);
    check("IVT n/a on 404 (older API)", oldIvt.text === "IVT n/a" && oldIvt.state === "na" && /404/.test(oldIvt.title), oldIvt);
    await p4.close();

    // 12. issue 19: each row's CTR and conversions; 7d and 30d; rank by CTR (minimum volume) and
    //     by conversions (no error bound); the campaign view (from a row, from the picker, from
    //     an ad's view), in the URL, Back; an ad's 7d view at 1h
    const p5 = await context.newPage();
    watch(p5, "issue19");
    await p5.goto(`${BASE}/?window=1h&metric=clicks&refresh=1`);
    for (const w of ["1h", "7d", "30d"]) {
      if (w !== "1h") await p5.click(`[data-testid="windows"] button[data-value="${w}"]`);
      await waitTop(p5, w, "clicks");
      const v = await topView(p5);
      emit({ event: "rows", window: w, metric: "clicks", k: 10, ...v });
      check(`top ${w}: CTR and conversions on every row`, v.rows.length === 10 && v.rows.every((r) => r.metrics === "ok"),
        v.rows.map((r) => [r.ad_id, r.metrics, r.ctr_text, r.conv_text]));
    }
    check("url has window=30d", new URL(p5.url()).searchParams.get("window") === "30d", p5.url());
    await p5.click('[data-testid="windows"] button[data-value="7d"]');
    for (const m of ["ctr", "conversions"]) {
      await p5.selectOption('[data-testid="metric"]', m);
      await waitTop(p5, "7d", m);
      const v = await topView(p5);
      emit({ event: "rows", window: "7d", metric: m, k: 10, ...v });
      check(`rank by ${m} over 7d`, v.rows.length > 0 && new URL(p5.url()).searchParams.get("metric") === m &&
        !/null|NaN|undefined|±/.test(v.text), { exact: v.exact_text, volume: v.min_volume, rows: v.rows.length });
    }
    // the campaign view from a row's campaign (30d: resolution 1h), Back closes it, Forward reopens it
    await p5.selectOption('[data-testid="metric"]', "clicks");
    await p5.click('[data-testid="windows"] button[data-value="30d"]');
    await waitTop(p5, "30d", "clicks");
    const listUrl = p5.url();
    await p5.click('[data-testid="top-row"][data-ad="ad-h01"] [data-testid="campaign-link"]');
    await waitDetail(p5, "campaign", "cmp-h1", "1h");
    const fromRow = await detailView(p5);
    emit({ event: "detail", via: "row", window: "30d", ...fromRow });
    const cu = new URL(p5.url()).searchParams;
    check("campaign view in the url", cu.get("campaign") === "cmp-h1" && cu.get("res") === "1h" && !cu.has("ad") &&
      cu.get("window") === "30d", p5.url());
    await p5.screenshot({ path: SHOT.replace(/\.png$/, "-campaign.png"), fullPage: true });
    await p5.goBack();
    await p5.waitForFunction(() => document.querySelector('[data-testid="detail-panel"]').hidden, null, { timeout: T });
    check("Back closes the campaign view", p5.url() === listUrl, { url: p5.url(), listUrl });
    await p5.goForward();
    await waitDetail(p5, "campaign", "cmp-h1", "1h");
    check("Forward reopens it", new URL(p5.url()).searchParams.get("campaign") === "cmp-h1", p5.url());
    // the picker: a campaign of the last hour's load
    await p5.goto(`${BASE}/?window=1h&metric=clicks&refresh=1`);
    await waitTop(p5, "1h", "clicks");
    const offered = await p5.$$eval("#campaign-ids option", (os) => os.map((o) => o.value));
    await p5.fill('[data-testid="campaign-input"]', "cmp-000");
    await p5.press('[data-testid="campaign-input"]', "Enter");
    await waitDetail(p5, "campaign", "cmp-000", "1m");
    const picked = await detailView(p5);
    emit({ event: "detail", via: "picker", window: "1h", ...picked });
    check("campaign picker", offered.includes("cmp-000") && new URL(p5.url()).searchParams.get("campaign") === "cmp-000",
      { offered, url: p5.url() });
    // an ad over 7d: resolution 1h (1m and 5m would be too many points); its campaign link, Back
    await p5.goto(`${BASE}/?window=7d&metric=clicks&ad=ad-h01&res=1m&refresh=1`);
    await waitDetail(p5, "ad", "ad-h01", "1h");
    const ad7 = await detailView(p5);
    emit({ event: "detail", via: "url", window: "7d", ...ad7 });
    check("7d ad view at 1h", new URL(p5.url()).searchParams.get("res") === "1h" && ad7.disabled.join() === "1m,5m" &&
      [168, 169].includes(ad7.points), { url: p5.url(), disabled: ad7.disabled, points: ad7.points });
    const adUrl = p5.url();
    await p5.click('[data-testid="detail-campaign-link"]');
    await waitDetail(p5, "campaign", "cmp-h1", "1h");
    await p5.goBack();
    await waitDetail(p5, "ad", "ad-h01", "1h");
    check("Back from the campaign returns to the ad", p5.url() === adUrl, { url: p5.url(), adUrl });
    await p5.close();

    // 13. issue 20: the campaign view's budget panel. A campaign without a budget; then pytest sets
    //     budgets (PUT on the local API) and writes today's clicks and spend rows as the sink does,
    //     without any pulse: stale (no figure ever); with a pulse kept fresh: the decisions; the
    //     pulse stopped: stale again once the figure is older than the 10 s bound
    const p6 = await context.newPage();
    watch(p6, "budget");
    await p6.goto(`${BASE}/?window=1h&metric=clicks&k=3&campaign=cmp-000&refresh=1`);
    const noBudget = await waitBudget(p6, "cmp-000", "none");
    emit({ event: "budget", label: "no budget", ...noBudget });
    check("budget: no budget set", noBudget.alert === "no budget set: ad servers are told to stop" && noBudget.decision_text === "STOP",
      { alert: noBudget.alert, decision: noBudget.decision_text });
    await ask("budget-seed");
    await p6.goto(`${BASE}/?window=1h&metric=clicks&k=3&campaign=cmp-b1&refresh=1`);
    const never = await waitBudget(p6, "cmp-b1", "stale");
    emit({ event: "budget", label: "stale, no pulse yet", ...never });
    check("budget: stale before any pulse", never.alert === "STALE: ad servers told to stop", never.alert_all);
    await ask("pulse-start");
    const b1 = await waitBudget(p6, "cmp-b1", "ok");
    emit({ event: "budget", label: "cmp-b1", ...b1 });
    check("budget: decision with a fresh figure", b1.decision_text === "SERVE" && b1.chart.canvas,
      { decision: b1.decision_text, reason: b1.reason_text, chart: b1.chart });
    await p6.screenshot({ path: SHOT.replace(/\.png$/, "-budget.png"), fullPage: true });
    // a failed pacing read keeps the last answer, dimmed; an API without the budget routes says so
    await p6.route("**/v1/campaigns/*/pacing", (route) => route.abort("connectionrefused"));
    await p6.waitForFunction(() => document.querySelector('[data-testid="budget"]').dataset.fetch === "failed", null, { timeout: T });
    const kept = await budgetPanel(p6);
    check("budget: a failed refresh keeps the last answer", kept.decision_text === "SERVE" && kept.state === "ok" &&
      kept.figures.spent_today.value === b1.figures.spent_today.value && /last refresh failed: API unreachable/.test(kept.meta),
    { fetch: kept.fetch, meta: kept.meta });
    await p6.unroute("**/v1/campaigns/*/pacing");
    await p6.route(/\/v1\/campaigns\/[^/]+\/(budget|pacing)$/, (route) =>
      route.fulfill({ status: 404, json: { error: `no route for GET ${new URL(route.request().url()).pathname}`, status: 404 } }));
    await p6.goto(`${BASE}/?window=1h&metric=clicks&k=3&campaign=cmp-b1&refresh=1`);
    const older = await waitBudget(p6, "cmp-b1", "na");
    check("budget: n/a on an API without the routes", /^no budget routes on this API \(GET pacing: 404\)/.test(older.alert) &&
      older.decision_text === "" && older.chart.canvas, { alert: older.alert, chart: older.chart });
    await p6.unroute(/\/v1\/campaigns\/[^/]+\/(budget|pacing)$/);
    await waitBudget(p6, "cmp-b1", "ok");
    await p6.fill('[data-testid="campaign-input"]', "cmp-b2"); // the picker: another campaign, same page
    await p6.press('[data-testid="campaign-input"]', "Enter");
    const b2 = await waitBudget(p6, "cmp-b2", "ok");
    emit({ event: "budget", label: "cmp-b2", ...b2 });
    check("budget: exhausted", b2.decision_text === "STOP" && b2.reason === "exhausted", { reason: b2.reason_text });
    await ask("pulse-stop");
    const aged = await waitBudget(p6, "cmp-b2", "stale", 30_000); // 10 s bound + the 1 s cache + a refresh
    emit({ event: "budget", label: "stale, pulse stopped", ...aged });
    check("budget: stale when the pulse stops", aged.alert === "STALE: ad servers told to stop", aged.alert_all);
    await p6.close();
  } catch (e) {
    errors.push(`step failed: ${e && e.message ? e.message.split("\n")[0] : e}`);
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    emit({ event: "result", checks, errors, screenshot: SHOT });
    stdin.close();
  }
}

main();
