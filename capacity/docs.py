"""docs/capacity.md, generated from the planner, the profiles and the price file.

    python -m capacity docs            # rewrite docs/capacity.md
    python -m capacity docs --check    # exit 1 if it is stale (tests do the same)

Every number in the document comes from capacity.planner; the prose around it is here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from capacity import planner
from capacity.planner import DEDUP_LAYERS, Plan, compare_levers, plan
from capacity.pricing import load_prices
from capacity.profiles import EXISTING_CONTEXT_KEYS, NEW_CONTEXT_KEYS, PROFILES
from capacity.report import (SUMMARY_HEADERS, _cost_rows, _md_table, _metric_rows, assumptions,
                             headline, inputs_line, lever_rows, per_million, summary_rows, usd)

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "capacity.md"
DOCS_REGION = "us-east-1"

# Levers applied together in the "medium + levers" scenario (per-click dedup kept on purpose).
LEVERED = dict(batch_size=500, clicks_per_record=20, minibatch_ms=10_000,
               changelog_update_before=False, changelog_rows_per_record=50,
               serving_resolutions=("1m", "1h"))

DOUBTS = (
    "Prices are typed from memory of the public pricing pages (last known mid-2025, see `as_of`), "
    "not fetched: there was no internet access when the file was written. Entries with "
    "confidence other than `high` need a check before anyone quotes a number.",
    "Firehose with a Kinesis stream as source: the planner bills every record rounded up to "
    "5 KB, ingestion and Parquet conversion alike. If AWS bills KPL-aggregated records per "
    "aggregated record (assumed) packing is worth what the lever table says; if it bills the "
    "de-aggregated records, it is worth nothing for Firehose.",
    "Kinesis on-demand: records rounded up to 1 KB for data in and out (assumed for both), "
    "extended retention billed on payload bytes (assumed). AWS has added on-demand variants "
    "and price changes over time; re-check the page before choosing the mode from this table.",
    "DynamoDB on-demand uses the price after the November 2024 reduction ($0.625 per million "
    "writes); provisioned capacity has no reserved-capacity discount (1- or 3-year reserved "
    "capacity would cut the provisioned lines substantially at this volume).",
    "Managed Flink default KPU quota per application is taken as 64 (it used to be 32).",
    "eu-west-1 prices: Kinesis, Flink, Firehose, Timestream and DynamoDB PITR are placeholders "
    "equal to us-east-1; DynamoDB and API Gateway Ireland prices are recollections.",
    "Throughput figures are assumptions, not AWS measurements: ingest ms per click, Flink "
    "clicks/s per KPU, sink writes/s per invocation, Glue clicks/s per DPU. Each is one constant "
    "in capacity/planner/assumptions.py; replace it with a measurement and regenerate.",
    "The serving-path volume depends on how many distinct ads a mini-batch touches: the planner "
    "assumes 1M active ads with Zipf(0.8) popularity. Uniform popularity (s=0) gives more "
    "writes, a steeper skew fewer; measure the real distribution.",
    "Not counted: Athena and query-API reads (per query), KMS requests (data keys cached), "
    "custom metrics/alarms, NAT/VPC (none in this design), Savings Plans, the free tier.",
)


def scenarios(region: str = DOCS_REGION) -> list[tuple[str, str, Plan]]:
    out = [(name, p.summary, p.plan(region)) for name, p in PROFILES.items()]
    out.append(("500k sustained", "500k clicks/s as the average (43B clicks/day): upper bound",
                plan(500_000, 500_000, region=region)))
    medium = PROFILES["medium"]
    out.append(("medium + levers", "medium with the lever settings below applied together "
                "(per-click dedup kept)", plan(medium.rate, medium.peak, region=region, **LEVERED)))
    return out


def _top_costs(p: Plan, n: int = 3) -> str:
    ranked = sorted((c for c in p.components if c.counted), key=lambda c: -c.monthly_usd)[:n]
    return ", ".join(f"{c.title} {c.monthly_usd / p.monthly_usd:.0%}" for c in ranked)


def _component_section(c: Any, out: list[str]) -> None:
    out += ["", f"#### {c.title}: {usd(c.monthly_usd)}/month ({c.mode})"
            + ("" if c.counted else ", not counted"), ""]
    if c.metrics:
        out += _md_table(("Metric", "Value"), _metric_rows(c), "lr") + [""]
    if c.costs:
        out += _md_table(("Cost", "Quantity", "$/month"), _cost_rows(c), "lrr") + [""]
    if c.alternatives:
        out.append("Options (whole component, per month): "
                   + "; ".join(f"{k} {usd(v)}" for k, v in c.alternatives.items()) + ".")
        out.append("")
    out += [f"- **{w}**" for w in c.warnings] + [f"- {n}" for n in c.notes]


def render_docs(region: str = DOCS_REGION) -> str:
    pb = load_prices(region)
    scen = scenarios(region)
    medium_plan = next(p for n, _, p in scen if n == "medium")
    out = [
        "# Capacity plan and cost per million clicks",
        "",
        "<!-- Generated by `python -m capacity docs`: do not edit by hand. Change an assumption "
        "(capacity/planner/assumptions.py) or a price (capacity/prices/*.json) and regenerate; "
        "tests/capacity fails while this file is stale. -->",
        "",
        f"Prices: `capacity/prices/{region}.json`, **as of {pb.as_of}** (list prices, "
        f"{pb.currency}, no free tier or discounts). Month = {planner.HOURS_PER_MONTH} h. "
        "Each plan sizes every component for the **peak** rate and costs it at the **average** "
        "rate. Reproduce any table with "
        "`python -m capacity plan --rate R --peak P [--json]`; profiles with "
        "`python -m capacity profiles`.",
        "",
        "## Headline",
        "",
    ]
    out += _md_table(("Scenario", "Clicks/s avg", "Peak", "Clicks/day", "$/month", "$/M clicks",
                      "Biggest costs"),
                     [[name, f"{p.inputs['rate']:,.0f}", f"{p.inputs['peak']:,.0f}",
                       f"{p.inputs['rate'] * 86400 / 1e9:.2f}B", usd(p.monthly_usd),
                       per_million(p.usd_per_million_clicks), _top_costs(p)]
                      for name, _, p in scen], "lrrrrrl")
    out += ["", "Scenarios: " + "; ".join(f"**{n}**: {s}" for n, s, _ in scen) + ".",
            "`medium + levers` applies: " + ", ".join(f"`{k}={v}`" for k, v in LEVERED.items())
            + ".", ""]
    out += [
        "What dominates, and why:",
        "",
        f"- **Per-click dedup** costs {planner.CLAIM_WCU + planner.CONFIRM_WCU} WCU per click "
        "(claim + confirm): DynamoDB writes for every click, whatever the batch size.",
        "- **The serving path** (aggregates stream, sink, serving table) scales with the number "
        "of distinct ads a mini-batch touches, not with the number of ads: with "
        f"{planner.ACTIVE_ADS:,} active ads most ads get less than one click per "
        f"{planner.MINIBATCH_MS / 1000:g} s mini-batch, so nearly every click becomes one update "
        f"per emitted resolution ({len(planner.SERVING_RESOLUTIONS)}), and two changelog rows "
        "with -U.",
        f"- **Firehose** bills every Kinesis record as at least "
        f"{planner.FIREHOSE_RECORD_UNIT // planner.KIB} KB: a {medium_plan.inputs['click_bytes']} B "
        f"click is billed {planner.FIREHOSE_RECORD_UNIT / medium_plan.inputs['click_bytes']:.0f}x.",
        "- API Gateway, Lambda, Flink, S3 and Glue are small next to these.",
        "",
    ]

    medium = next(p for n, _, p in scen if n == "medium")
    out += ["## Cost levers (medium profile)", "",
            f"Each setting applied alone to the medium profile ({headline(medium)}); the modes "
            "(on-demand/provisioned) are re-chosen per setting.", ""]
    out += _md_table(("Lever", "Setting", "$/month", "$/M clicks", "vs base", "Caveat"),
                     lever_rows(compare_levers(rate=medium.inputs["rate"],
                                               peak=medium.inputs["peak"], region=region)),
                     "llrrrl")
    out += ["", "Per-click dedup stays the default in every profile: no profile *needs* the "
            "per-request alternative (the volumes need quota increases, not a different "
            "design), and per-click is the only ingest layer that catches a re-sent click in "
            "another request. Per-request idempotency is the saving to take if the "
            "realtime view may over-count re-sends that Flink's 30-minute state misses.", ""]

    out += ["## Which duplicates each layer catches", ""]
    out += _md_table(("Layer", "Keyed on", "Window", "Catches", "Misses"),
                     [list(row) for row in DEDUP_LAYERS], "lllll")
    out += [""]

    out += ["## Profiles: CDK context", "",
            "`capacity.profiles.profile_context(name)` returns these values (they are the "
            "planner's output for the profile). Keys marked *new* are not in "
            "`infra/settings.py` yet.", ""]
    contexts = {name: p.context for name, _, p in scen if name in PROFILES}
    keys = sorted({k for ctx in contexts.values() for k in ctx})
    out += _md_table(("Context key", *contexts, "infra"),
                     [[f"`{k}`", *(str(contexts[n][k]) for n in contexts),
                       "exists" if k in EXISTING_CONTEXT_KEYS else "*new*"] for k in keys],
                     "l" + "r" * len(contexts) + "l")
    if NEW_CONTEXT_KEYS:
        out += ["", "New keys:", ""] + [f"- `{k}`: {v}" for k, v in NEW_CONTEXT_KEYS.items()]
    out += [""]

    for name, summary, p in scen:
        out += [f"## Scenario: {name}", "", f"{summary}. {headline(p)}.", "",
                f"Inputs: {inputs_line(p)}.", ""]
        out += _md_table(SUMMARY_HEADERS, summary_rows(p), "llrrr")
        if p.account_warnings:
            out += ["", "Account-wide:", ""] + [f"- **{w}**" for w in p.account_warnings]
        if name not in PROFILES:
            out += [""]
            continue
        out += ["", "### Components"]
        for c in p.components:
            _component_section(c, out)
        out += [""]

    out += ["## Assumptions", "",
            "Every constant of the ASSUMPTIONS block of `capacity/planner/assumptions.py`, with its reason.", ""]
    for section, rows in assumptions():
        out += [f"**{section}**", ""]
        out += _md_table(("Name", "Value", "Why"), [[f"`{n}`", v, w] for n, v, w in rows], "lrl")
        out += [""]

    out += [f"## Prices used ({region}, as of {pb.as_of})", "", pb.note, ""]
    out += _md_table(("Key", "Price", "Confidence", "Source"),
                     [[f"`{k}`", pr.describe(), pr.confidence, pr.source]
                      for k, pr in sorted(pb.prices.items())], "llll")
    out += ["", "Quotas:", ""]
    out += _md_table(("Key", "Default", "Source"),
                     [[f"`{k}`", f"{q.value:,.0f}", q.source] for k, q in sorted(pb.quotas.items())],
                     "lrl")
    out += ["", "## Doubts", ""] + [f"- {d}" for d in DOUBTS] + [""]
    return "\n".join(out)


def write_docs(path: Path = DOCS_PATH, region: str = DOCS_REGION) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_docs(region))
    return path


def is_current(path: Path = DOCS_PATH, region: str = DOCS_REGION) -> bool:
    return path.is_file() and path.read_text() == render_docs(region)


__all__ = ["render_docs", "write_docs", "is_current", "DOCS_PATH"]
