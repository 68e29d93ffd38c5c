// A detail view's series as uPlot charts, each described by a spec (which point fields, which
// axis). Created once per spec, then updated in place with setData (no redraw flash on
// auto-refresh).
//   activity: clicks (bars), billable clicks, conversions (left axis), cost or spend (right axis)
//   reach:    impressions (bars, left axis), CTR (right axis, %)
import uPlot from "./vendor/uPlot.esm.js";
import { correctedStarts, fmtInt, fmtMoney, fmtPct } from "./format.js";

const COLORS = { clicks: "#2563eb", billable: "#16a34a", conversions: "#9333ea", money: "#d97706",
  impressions: "#0891b2", ctr: "#db2777" };

const pad = (n) => String(n).padStart(2, "0");

/** Axis tick (epoch s) -> "17:05", or "11-24" at midnight UTC. */
export function utcTick(ts) {
  const d = new Date(ts * 1000);
  return d.getUTCHours() === 0 && d.getUTCMinutes() === 0
    ? `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
    : `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

const count = (u, v) => (v == null ? "—" : fmtInt(v));
const money = (u, v) => (v == null ? "—" : fmtMoney(v));
const pct = (u, v) => (v == null ? "—" : fmtPct(v));
const num = (v) => (v == null ? null : Number(v));

// series: [field, label, color, {bars, dash, scale}], scale "count" (left) or the right axis'.
export const SPECS = {
  "activity-ad": {
    right: { scale: "money", label: "cost", color: COLORS.money, values: money },
    series: [["clicks", "clicks", COLORS.clicks, { bars: true }], ["billable_clicks", "billable clicks", COLORS.billable, { dash: [6, 3] }],
      ["conversions", "conversions", COLORS.conversions, {}], ["cost", "cost", COLORS.money, { scale: "money" }]],
  },
  "activity-campaign": {
    right: { scale: "money", label: "spend", color: COLORS.money, values: money },
    series: [["clicks", "clicks", COLORS.clicks, { bars: true }], ["billable_clicks", "billable clicks", COLORS.billable, { dash: [6, 3] }],
      ["conversions", "conversions", COLORS.conversions, {}], ["billable_cost", "spend", COLORS.money, { scale: "money" }]],
  },
  reach: {
    right: { scale: "ratio", label: "CTR", color: COLORS.ctr, values: pct },
    series: [["impressions", "impressions", COLORS.impressions, { bars: true }], ["ctr", "CTR", COLORS.ctr, { scale: "ratio" }]],
  },
};

/** API points -> uPlot columns: x (epoch s), then one column per spec series (null stays null:
 * a ratio without a denominator is a gap). */
export function toColumns(points, spec) {
  const cols = [points.map((p) => p.bucket_start_ms / 1000)];
  for (const [field] of spec.series) cols.push(points.map((p) => num(p[field])));
  return cols;
}

export class SeriesChart {
  constructor(el, specName) {
    this.el = el;
    this.specName = specName;
    this.spec = SPECS[specName];
    this.plot = null;
    this._resize = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize(this._size());
    });
    this._resize.observe(el);
  }

  _size() {
    return { width: Math.max(280, this.el.clientWidth), height: 220 };
  }

  _options() {
    const { right, series } = this.spec;
    return {
      ...this._size(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"), // legend and cursor in UTC
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [(u) => this._markCorrected(u)] },
      scales: { x: { time: true }, [right.scale]: { auto: true } },
      series: [
        { label: "time (UTC)" },
        ...series.map(([, label, color, o]) => ({
          label, stroke: color, width: o.bars ? 1 : 2, scale: o.scale || "y",
          ...(o.bars ? { fill: `${color}38`, paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } } : {}),
          ...(o.dash ? { dash: o.dash } : {}),
          value: o.scale === right.scale ? right.values : count,
        })),
      ],
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, values: (u, splits) => splits.map(utcTick) },
        { label: series[0][1], stroke: "#475569", grid: { stroke: "#e2e8f0" } },
        { label: right.label, side: 1, scale: right.scale, stroke: right.color, grid: { show: false },
          values: (u, vals) => vals.map((v) => right.values(u, v)) },
      ],
    };
  }

  /** A small amber triangle above each bucket corrected to the batch truth (docs/corrections.md). */
  _markCorrected(u) {
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = "#d97706";
    const top = u.bbox.top;
    const size = 5 * (window.devicePixelRatio || 1);
    for (const ms of this.corrected || []) {
      const x = Math.round(u.valToPos(ms / 1000, "x", true));
      ctx.beginPath();
      ctx.moveTo(x - size, top);
      ctx.lineTo(x + size, top);
      ctx.lineTo(x, top + 1.6 * size);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  }

  update(points) {
    const data = toColumns(points, this.spec);
    this.corrected = correctedStarts(points);
    if (!this.plot) this.plot = new uPlot(this._options(), data, this.el);
    else this.plot.setData(data);
    this.el.dataset.points = String(points.length);
    this.el.dataset.corrected = String(this.corrected.length);
    // the first series' sum (clicks, impressions): what the browser test compares with the totals
    this.el.dataset.sum = String(data[1].reduce((a, b) => a + (b || 0), 0));
  }

  destroy() {
    this._resize.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
    delete this.el.dataset.points;
    delete this.el.dataset.sum;
    delete this.el.dataset.corrected;
  }
}

/** The budget panel's chart: today's cumulative spend against the daily budget and the even plan
 * (budget.js spendColumns), x fixed to the whole UTC day, y from 0. Updated in place. */
export class BudgetChart {
  constructor(el) {
    this.el = el;
    this.plot = null;
    this.range = [0, 1];
    this.currency = null;
    this._resize = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize(this._size());
    });
    this._resize.observe(el);
  }

  _size() {
    return { width: Math.max(280, this.el.clientWidth), height: 200 };
  }

  _options() {
    const money = (u, v) => (v == null ? "—" : fmtMoney(v));
    return {
      ...this._size(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => this.range },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.08 : 1] },
      },
      series: [
        { label: "time (UTC)" },
        { label: "spent today", stroke: COLORS.money, width: 2, fill: `${COLORS.money}22`, value: money },
        { label: "daily budget", stroke: "#b91c1c", width: 1.5, dash: [6, 4], points: { show: false }, value: money },
        { label: "even plan", stroke: "#64748b", width: 1.5, dash: [2, 4], points: { show: false }, value: money },
      ],
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, values: (u, splits) => splits.map(utcTick) },
        { label: this.currency ? `spend (${this.currency})` : "spend", stroke: "#475569", grid: { stroke: "#e2e8f0" },
          values: (u, vals) => vals.map((v) => money(u, v)) },
      ],
    };
  }

  /** cols: [x (s), spent, budget, plan] in currency units; range: [day start, day end] in s. */
  update(cols, range, currency = null) {
    this.range = range;
    if (this.plot && currency !== this.currency) this.destroyPlot();
    this.currency = currency;
    if (!this.plot) this.plot = new uPlot(this._options(), cols, this.el);
    else this.plot.setData(cols);
  }

  destroyPlot() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  destroy() {
    this._resize.disconnect();
    this.destroyPlot();
  }
}
