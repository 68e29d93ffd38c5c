"""Rendering of plans, lever comparisons and profiles: plain text (CLI) and Markdown (docs)."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from capacity.planner import Component, LeverResult, Plan
from capacity.planner import assumptions as planner_assumptions

ASSUMPTIONS_SOURCE = Path(planner_assumptions.__file__)


# ================================================================================ formatting
def num(value: Any) -> str:
    """Human-sized numbers: 1,234,567 / 12.3 / 0.0456; strings and bools as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    if a >= 1:
        return f"{value:,.2f}"
    if a == 0:
        return "0"
    return f"{value:.{max(1, 2 - int(math.floor(math.log10(a))))}f}"


def usd(value: float) -> str:
    return f"${value:,.0f}" if abs(value) >= 10 else f"${value:,.2f}"


def per_million(value: float) -> str:
    return f"${value:.4f}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """Plain-text table with columns padded; `align` has 'l' or 'r' per column."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    align = align or "l" + "r" * (len(headers) - 1)

    def fmt(cells):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(cells, widths, align)).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(headers) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def headline(p: Plan) -> str:
    x = p.inputs
    return (f"{num(x['rate'])} clicks/s average ({x['rate'] * 86400 / 1e9:.2f}B clicks/day), "
            f"sized for {num(x['peak'])} clicks/s peak; {x['region']} prices as of {p.prices_as_of}")


def inputs_line(p: Plan) -> str:
    x = p.inputs
    return (f"{x['click_bytes']} B per click, {x['batch_size']} clicks per request, "
            f"{x['api'].upper()} API, {x['dedup']} dedup, {x['clicks_per_record']} click(s) per "
            f"Kinesis record, {num(x['active_ads'])} active ads (Zipf s={x['ad_skew']:g}), "
            f"{x['minibatch_ms'] / 1000:g} s mini-batch, serving store {x['serving_store']}, "
            f"{x['impressions_per_click']:g} impressions and {x['conversions_per_click']:g} "
            f"conversions per click, {lane_inputs(x)}")


def lane_inputs(x: dict[str, Any]) -> str:
    """The budget lane's inputs in words (docs/budget.md)."""
    if not x.get("budget_lane", True):
        return "no budget lane"
    servers = (f"{x['ad_servers']:,} ad-server instances" if x.get("ad_servers") is not None
               else f"one ad-server instance per {planner_assumptions.AD_SERVER_CLICKS_S} clicks/s")
    asked = (f"{x['pacing_campaigns']:,} campaigns each" if x.get("pacing_campaigns") is not None
             else "the campaigns each serves")
    return (f"budget lane: spend emitted every {x['budget_emit_interval_ms'] / 1000:g} s, "
            f"{servers} asking for {asked} every {x['pacing_cache_ttl_ms'] / 1000:g} s")


LANE_PARTS = {  # component key -> what the budget lane costs there
    "flink": "spend aggregation (Flink KPUs, state)",
    "aggregates_stream": "spend and pulse rows on the aggregates stream",
    "sink_lambda": "spend and pulse rows through the sink",
    "serving": "spend and pulse writes, spend items (serving table)",
    "observability": "sink logs and traces",
}


def lane_rows(p: Plan) -> list[list[str]]:
    """The budget lane's cost per part: $/month, $/M clicks, share of the lane."""
    million = p.clicks_per_month / 1e6
    total = p.lane_usd or 1.0
    rows = []
    for key, usd_month in p.lane.items():
        title = LANE_PARTS.get(key) or p.component(key).title
        rows.append([title, usd(usd_month), per_million(usd_month / million),
                     f"{usd_month / total:.1%}"])
    rows.append(["BUDGET LANE", usd(p.lane_usd), per_million(p.lane_usd_per_million_clicks), "100%"])
    return rows


LANE_HEADERS = ("Budget lane part", "$/month", "$/M clicks", "Share")


def summary_rows(p: Plan) -> list[list[str]]:
    total = p.monthly_usd or 1.0
    rows = []
    for c in p.components:
        if not c.counted:
            rows.append([c.title, c.mode, "not counted", "", ""])
            continue
        rows.append([c.title, c.mode, usd(c.monthly_usd),
                     per_million(c.monthly_usd / (p.clicks_per_month / 1e6)),
                     f"{c.monthly_usd / total:.1%}"])
    rows.append(["TOTAL", "", usd(p.monthly_usd), per_million(p.usd_per_million_clicks), "100%"])
    return rows


SUMMARY_HEADERS = ("Component", "Mode", "$/month", "$/M clicks", "Share")


def _metric_rows(c: Component) -> list[list[str]]:
    return [[m.name, f"{num(m.value)} {m.unit}".rstrip()] for m in c.metrics]


def _cost_rows(c: Component) -> list[list[str]]:
    return [[line.item, f"{num(line.quantity)} {line.unit}", usd(line.usd)] for line in c.costs]


def _alternatives(c: Component) -> str:
    return " | ".join(f"{k} {usd(v)}" for k, v in c.alternatives.items())


# ================================================================================ text
def render_plan_text(p: Plan, levers: Sequence[LeverResult] = ()) -> str:
    out = [f"clickagg capacity plan: {headline(p)}", f"inputs: {inputs_line(p)}"]
    out += [f"! modelled, not implemented: {n}" for n in p.not_implemented] + [""]
    out += _table(SUMMARY_HEADERS, summary_rows(p), "llrrr")
    for c in p.components:
        out += ["", f"== {c.title} [{c.mode}]: {usd(c.monthly_usd)}/month"
                + ("" if c.counted else " (not counted)")]
        if c.metrics:
            out += ["  " + line for line in _table(("metric", "value"), _metric_rows(c), "lr")]
        if c.costs:
            out += [""] + ["  " + line for line in _table(("cost", "quantity", "$/month"),
                                                          _cost_rows(c), "lrr")]
        if c.alternatives:
            out.append(f"  options: {_alternatives(c)}")
        out += [f"  ! {w}" for w in c.warnings] + [f"  - {n}" for n in c.notes]
    if p.account_warnings:
        out += ["", "== account-wide quotas"] + [f"  ! {w}" for w in p.account_warnings]
    if p.lane:
        million = p.clicks_per_month / 1e6
        without = p.monthly_usd - p.lane_usd
        out += ["", f"== budget lane (docs/budget.md): {usd(p.lane_usd)}/month, "
                f"{per_million(p.lane_usd_per_million_clicks)} per million clicks (total "
                f"{per_million(without / million)} without it, {per_million(p.usd_per_million_clicks)} "
                f"with it)"]
        out += ["  " + line for line in _table(LANE_HEADERS, lane_rows(p), "lrrr")]
    out += ["", "== CDK context implied by this plan"]
    out += [f"  {k} = {v}" for k, v in p.context.items()]
    if levers:
        out += ["", "== cost levers (each applied alone to the inputs above)"]
        out += _table(("lever", "setting", "$/month", "$/M clicks", "vs base", "caveat"),
                      lever_rows(levers), "llrrrl")
    return "\n".join(out) + "\n"


def lever_rows(levers: Sequence[LeverResult]) -> list[list[str]]:
    rows = []
    for r in levers:
        rows.append([r.lever, r.setting + (" (base)" if r.is_base else "")
                     + ("" if r.implemented else " (modelled, not implemented)"), usd(r.monthly_usd),
                     per_million(r.usd_per_million),
                     "" if r.is_base else f"{r.delta_pct:+.1f}%", r.caveat])
    return rows


def render_profiles_text(contexts: dict[str, dict[str, Any]], new_keys: Iterable[str]) -> str:
    names = list(contexts)
    keys = sorted({k for ctx in contexts.values() for k in ctx})
    new = set(new_keys)
    rows = [[k + (" (new)" if k in new else ""), *(str(contexts[n].get(k, "")) for n in names)]
            for k in keys]
    return "\n".join(_table(("context key", *names), rows, "l" + "r" * len(names))) + "\n"


# ================================================================================ assumptions
def assumptions() -> list[tuple[str, list[tuple[str, str, str]]]]:
    """[(section, [(NAME, value, why)])] from the ASSUMPTIONS block of planner/assumptions.py."""
    text = ASSUMPTIONS_SOURCE.read_text()
    block = text.split("ASSUMPTIONS\n", 1)[1].split("# ===", 1)[0]
    sections: list[tuple[str, list[tuple[str, str, str]]]] = []
    pending: list[str] = []
    for line in block.splitlines():
        stripped = line.strip()
        head = re.match(r"# --- (.+)", stripped)
        if head:
            sections.append((head.group(1), []))
            pending = []
        elif stripped.startswith("#"):
            pending.append(stripped.lstrip("# ").strip())
        elif (m := re.match(r"([A-Z][A-Z0-9_]*) = (.+?)(?:\s+#\s*(.*))?$", stripped)):
            name, _, comment = m.groups()
            why = " ".join(pending + ([comment] if comment else []))
            value = getattr(planner_assumptions, name)
            sections[-1][1].append((name, _value_text(value), why))
            pending = []
        elif not stripped:
            pending = []
    return [s for s in sections if s[1]]


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return num(value)
