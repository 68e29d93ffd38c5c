// One ad's series as a uPlot line chart: clicks and billable clicks (left axis), cost (right
// axis). Created once, then updated in place with setData (no redraw flash on auto-refresh).
import uPlot from "./vendor/uPlot.esm.js";
import { fmtMoney, fmtInt } from "./format.js";

const COLORS = { clicks: "#2563eb", billable: "#16a34a", cost: "#d97706" };

const pad = (n) => String(n).padStart(2, "0");

/** Axis tick (epoch s) -> "17:05", or "11-24" at midnight UTC. */
export function utcTick(ts) {
  const d = new Date(ts * 1000);
  return d.getUTCHours() === 0 && d.getUTCMinutes() === 0
    ? `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
    : `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

export function toColumns(points) {
  const xs = [], clicks = [], billable = [], cost = [];
  for (const p of points) {
    xs.push(p.bucket_start_ms / 1000);
    clicks.push(p.clicks);
    billable.push(p.billable_clicks);
    cost.push(Number(p.cost));
  }
  return [xs, clicks, billable, cost];
}

export class SeriesChart {
  constructor(el) {
    this.el = el;
    this.plot = null;
    this._resize = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize(this._size());
    });
    this._resize.observe(el);
  }

  _size() {
    return { width: Math.max(280, this.el.clientWidth), height: 280 };
  }

  update(points) {
    const data = toColumns(points);
    if (!this.plot) {
      this.plot = new uPlot({
        ...this._size(),
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"), // legend and cursor in UTC
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, cost: { auto: true } },
        series: [
          { label: "time (UTC)" },
          { label: "clicks", stroke: COLORS.clicks, fill: "rgba(37, 99, 235, 0.22)", width: 1,
            paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false },
            value: (u, v) => (v == null ? "—" : fmtInt(v)) },
          { label: "billable clicks", stroke: COLORS.billable, width: 2, dash: [6, 3], value: (u, v) => (v == null ? "—" : fmtInt(v)) },
          { label: "cost", stroke: COLORS.cost, width: 2, scale: "cost", value: (u, v) => (v == null ? "—" : fmtMoney(v)) },
        ],
        axes: [
          { stroke: "#475569", grid: { stroke: "#e2e8f0" }, values: (u, splits) => splits.map(utcTick) },
          { label: "clicks", stroke: "#475569", grid: { stroke: "#e2e8f0" } },
          { label: "cost", side: 1, scale: "cost", stroke: COLORS.cost, grid: { show: false },
            values: (u, vals) => vals.map((v) => fmtMoney(v)) },
        ],
      }, data, this.el);
    } else {
      this.plot.setData(data);
    }
    this.el.dataset.points = String(points.length);
    this.el.dataset.sum = String(data[1].reduce((a, b) => a + b, 0));
  }

  destroy() {
    this._resize.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
    delete this.el.dataset.points;
  }
}
