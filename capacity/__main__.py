"""CLI: python -m capacity plan | profiles | docs (see capacity/__init__.py)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from capacity import planner
from capacity.pricing import available_regions
from common.schema import default


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m capacity", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="size and cost the pipeline for a click rate")
    p.add_argument("--rate", type=float, required=True, help="average clicks/s (drives cost)")
    p.add_argument("--peak", type=float, help="peak clicks/s (drives sizing; default: --rate)")
    p.add_argument("--click-bytes", type=int, default=200, help="bytes per click on the stream")
    p.add_argument("--batch-size", type=int, default=50, help="clicks per API request (1..500)")
    p.add_argument("--region", default="us-east-1", choices=available_regions())
    p.add_argument("--api", default="rest", choices=planner.APIS)
    p.add_argument("--dedup", default=default("ingest_dedup_mode"), choices=planner.DEDUP_MODES)
    p.add_argument("--clicks-per-record", type=int, default=1,
                   help="clicks packed per Kinesis record (KPL aggregation)")
    p.add_argument("--active-ads", type=int, default=planner.ACTIVE_ADS)
    p.add_argument("--ad-skew", type=float, default=planner.AD_ZIPF_S,
                   help="Zipf exponent of ad popularity (0 = uniform)")
    p.add_argument("--minibatch-ms", type=int, default=planner.MINIBATCH_MS)
    p.add_argument("--serving-store", default=default("serving_store"),
                   choices=planner.SERVING_STORES)
    p.add_argument("--kinesis-mode", default="auto", choices=planner.KINESIS_CHOICES)
    p.add_argument("--dedup-capacity", default="auto", choices=planner.DDB_CHOICES)
    p.add_argument("--serving-capacity", default="auto", choices=planner.DDB_CHOICES)
    p.add_argument("--efo", action="store_true",
                   help="enhanced fan-out consumers on the clicks and events streams")
    p.add_argument("--impressions-per-click", type=float, default=planner.IMPRESSIONS_PER_CLICK,
                   help="impressions (POST /v1/events) per click; 0 = clicks only")
    p.add_argument("--conversions-per-click", type=float, default=planner.CONVERSIONS_PER_CLICK,
                   help="conversions (POST /v1/events) per click")
    p.add_argument("--events-kinesis-mode", default="auto", choices=planner.KINESIS_CHOICES)
    p.add_argument("--no-budget-lane", action="store_true",
                   help="without the budget lane (docs/budget.md): no spend rows, no pacing API")
    p.add_argument("--budget-emit-ms", type=int, default=planner.BUDGET_EMIT_INTERVAL_MS,
                   help="budget_emit_interval_ms: the spend rows' emit interval")
    p.add_argument("--pacing-ttl-ms", type=int, default=planner.PACING_CACHE_TTL_MS,
                   help="pacing_cache_ttl_ms: ad servers ask once per TTL, the Lambda caches as long")
    p.add_argument("--ad-servers", type=int,
                   help=f"ad-server instances calling POST /v1/pacing (default: one per "
                        f"{planner.AD_SERVER_CLICKS_S} clicks/s)")
    p.add_argument("--pacing-campaigns", type=int,
                   help="campaigns each ad server asks about per TTL (default: those whose ads it "
                        "serves in that time, by the popularity model)")
    p.add_argument("--no-levers", action="store_true", help="skip the lever comparison")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    pr = sub.add_parser("profiles", help="CDK context values of the small/medium/large profiles")
    pr.add_argument("--name", help="one profile only")
    pr.add_argument("--region", default="us-east-1", choices=available_regions())
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--cdk-args", action="store_true",
                    help="print `-c key=value` arguments for cdk (keys infra knows only)")

    d = sub.add_parser("docs", help="(re)generate docs/capacity.md")
    d.add_argument("--output", type=Path, help="write here instead of docs/capacity.md")
    d.add_argument("--check", action="store_true", help="exit 1 if the file is not current")
    return ap


def _plan(args) -> int:
    from capacity.report import render_plan_text

    kwargs = dict(rate=args.rate, peak=args.peak, click_bytes=args.click_bytes,
                  batch_size=args.batch_size, region=args.region, api=args.api, dedup=args.dedup,
                  clicks_per_record=args.clicks_per_record, active_ads=args.active_ads,
                  ad_skew=args.ad_skew, minibatch_ms=args.minibatch_ms,
                  serving_store=args.serving_store, kinesis_mode=args.kinesis_mode,
                  dedup_capacity=args.dedup_capacity, serving_capacity=args.serving_capacity,
                  efo=args.efo, impressions_per_click=args.impressions_per_click,
                  conversions_per_click=args.conversions_per_click,
                  events_kinesis_mode=args.events_kinesis_mode,
                  budget_lane=not args.no_budget_lane,
                  budget_emit_interval_ms=args.budget_emit_ms,
                  pacing_cache_ttl_ms=args.pacing_ttl_ms, ad_servers=args.ad_servers,
                  pacing_campaigns=args.pacing_campaigns)
    result = planner.plan(**kwargs)
    levers = [] if args.no_levers else planner.compare_levers(**kwargs)
    if args.json:
        doc = result.to_dict()
        doc["levers"] = [dataclasses.asdict(r) for r in levers]
        print(json.dumps(doc, indent=2, default=str))
    else:
        sys.stdout.write(render_plan_text(result, levers))
    return 0


def _profiles(args) -> int:
    from capacity import profiles
    from capacity.report import render_profiles_text

    if args.cdk_args:
        if not args.name:
            print("--cdk-args needs --name", file=sys.stderr)
            return 2
        print(" ".join(profiles.cdk_args(args.name, args.region)))
        return 0
    names = [args.name] if args.name else list(profiles.PROFILES)
    contexts = {n: profiles.profile_context(n, args.region) for n in names}
    if args.json:
        print(json.dumps({"region": args.region, "profiles": contexts,
                          "new_context_keys": profiles.NEW_CONTEXT_KEYS}, indent=2))
    else:
        for n in names:
            p = profiles.PROFILES[n]
            print(f"{n}: {p.summary} ({p.rate:,.0f} avg / {p.peak:,.0f} peak clicks/s)")
        print()
        sys.stdout.write(render_profiles_text(contexts, profiles.NEW_CONTEXT_KEYS))
    return 0


def _docs(args) -> int:
    from capacity import docs

    path = args.output or docs.DOCS_PATH
    if args.check:
        if docs.is_current(path):
            print(f"{path} is current")
            return 0
        print(f"{path} is stale: run python -m capacity docs", file=sys.stderr)
        return 1
    print(f"wrote {docs.write_docs(path)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"plan": _plan, "profiles": _profiles, "docs": _docs}[args.command](args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
