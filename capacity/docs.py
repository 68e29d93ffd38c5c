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
from capacity.report import (LANE_PARTS, SUMMARY_HEADERS, _cost_rows, _md_table, _metric_rows,
                             assumptions, headline, inputs_line, lever_rows, num, per_million,
                             summary_rows, usd)

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "capacity.md"
DOCS_REGION = "us-east-1"

# Levers applied together in the "medium + levers" scenario: implemented ones only (per-click
# dedup kept on purpose: the design card's conditional write; the upsert changelog is already the
# default). "medium + modelled levers"
# adds those the code does not implement (planner.implemented), to show what they would save.
LEVERED = dict(batch_size=500, minibatch_ms=10_000)
MODELLED_LEVERS = dict(clicks_per_record=20, changelog_rows_per_record=50,
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
    "custom metrics/alarms (but the budget lane's, in its own component), NAT/VPC (none in this "
    "design), Savings Plans, the free tier.",
    "Impressions and conversions (issue 19): the multiples (50 impressions, 0.02 conversions per "
    "click) are inputs, not measurements. Impressions are taken to follow the clicks' ad "
    "popularity; if they are spread more evenly (CTR varies by ad) a mini-batch touches more ads "
    "and the serving path costs more. Campaigns and advertisers (ten ads per campaign, ten "
    "campaigns per advertiser, same skew) have no seed figure.",
    "Flink throughput counts an impression or a conversion as a click (FLINK_ROWS_PER_KPU_S): "
    "impressions skip the IVT rules but, like every row, feed twelve aggregates. An assumption "
    "until `bench/flink.py --events 50` (its mode d) has measured the three event types. The "
    "Rank operators' state (top-M per bucket) is not in the state estimate.",
    "The ingest Lambda's per-impression time comes from bench/ingest.py against moto in-process "
    "(an upper bound of the handler's CPU, scaled to 1024 MB), not from AWS; conversions are "
    "taken as one per request, impressions as batches of 500.",
    "The events archive is the largest single line at the medium profile because Firehose bills "
    "each ~520 B record as 5 KB (the same doubt as for clicks applies). Ingest does not pack "
    "events per record today; packing would cut that line by up to the ratio shown in its note.",
    "The nightly Glue billing reads clicks only in the committed code: when it bills impressions "
    "and conversions, its read volume (and workers) grow with the events archive.",
    "Budget lane (issue 20): the decision side sets its cost and rests on assumptions with no "
    "measurement behind them: 20 ad-server instances at the seed profile (one per 500 clicks/s), "
    "each asking once per pacing_cache_ttl_ms for exactly the campaigns whose ads it serves in "
    "that time (the popularity model over its impressions); a real ad server may ask for every "
    "campaign it could serve (more) or keep a campaign's answer while it is not serving it (no "
    "fewer asks per TTL). --ad-servers and --pacing-campaigns replace them.",
    "Budget lane: the budget Lambda's 30 ms per 100-campaign request is not measured; its cache is "
    "modelled only by its bound (containers x campaigns per TTL / TTL), so reads are an upper "
    "bound; every click is taken as valid (no IVT share), an upper bound of the spend rows; the "
    "spend aggregation's Flink CPU is taken as 2/12 of a counted row per valid click (no "
    "per-operator model). Pacing answers are billed as data transfer out to the internet.",
)


# The seed profile ('handle ~10,000 clicks per second') and its plan before issue 19's events:
# `python -m capacity plan --rate 10000 --peak 20000 --json` at BEFORE_EVENTS_COMMIT (monthly USD
# per component key; the planner then modelled clicks only, 4 series per click, 1m and 1h boards).
SEED_PROFILE = "small"
BEFORE_EVENTS_COMMIT = "dfa726d"
BEFORE_EVENTS_USD = {
    "api": 1865.58, "ingest_lambda": 805.92, "dedup": 13738.19, "clicks_stream": 1006.67,
    "flink": 336.47, "aggregates_stream": 4078.21, "sink_lambda": 809.27, "serving": 30338.49,
    "firehose": 5889.7, "archive": 124.73, "glue": 144.54, "observability": 750.33,
}


def _clicks_only(p: Plan) -> Plan:
    """The same inputs without impressions and conversions (today's job: rollups, 3 boards)."""
    x = {k: v for k, v in p.inputs.items()}
    x.update(impressions_per_click=0, conversions_per_click=0)
    return plan(**x)


def _without_lane(p: Plan) -> Plan:
    """The same inputs without the budget lane (issue 20)."""
    return plan(**{**p.inputs, "budget_lane": False})


def _change(usd_per_million: float) -> str:
    """'+$0.6437', or '$0.0000' for what moved by less than the last digit (rounded inputs)."""
    value = round(usd_per_million, 4)
    return per_million(0.0) if value == 0 else ("+" if value > 0 else "-") + per_million(abs(value))


def _events_section(seed: Plan) -> list[str]:
    """Cost per million clicks at the seed profile: before issue 19's events, after with none,
    after with the default multiples; per component, with the commands that produce them. Without
    the budget lane (issue 20: its own section), so the change is the events'."""
    seed = _without_lane(seed)
    x = seed.inputs
    clicks_only = _clicks_only(seed)
    million = seed.clicks_per_month / 1e6
    before_total = sum(BEFORE_EVENTS_USD.values())
    rows = []
    for c in seed.components:
        if not c.counted:
            continue
        before = BEFORE_EVENTS_USD.get(c.key)
        after0 = clicks_only.component(c.key).monthly_usd
        rows.append([c.title, "" if before is None else per_million(before / million),
                     per_million(after0 / million), per_million(c.monthly_usd / million),
                     _change((c.monthly_usd - (before or 0.0)) / million)])
    rows.append(["TOTAL", per_million(before_total / million),
                 per_million(clicks_only.usd_per_million_clicks),
                 per_million(seed.usd_per_million_clicks),
                 _change(seed.usd_per_million_clicks - before_total / million)])
    rate, peak = f"{x['rate']:.0f}", f"{x['peak']:.0f}"
    out = ["## Impressions and conversions (issue 19): cost per million clicks, before and after",
           "",
           f"The seed profile ({SEED_PROFILE}: {x['rate']:,.0f} clicks/s average, "
           f"{x['peak']:,.0f} peak), $ per million clicks per component. **Before**: the planner "
           f"at `{BEFORE_EVENTS_COMMIT}` (clicks only; each click updated 4 series, 1m and 1h "
           "boards). **Clicks only**: today's planner without events (the job's campaign and "
           "advertiser rollups and the 1d board apply to clicks too). **With events**: "
           f"{x['impressions_per_click']:g} impressions per click (batched "
           f"{planner.IMPRESSIONS_PER_REQUEST} per request, published unclaimed) and "
           f"{x['conversions_per_click']:g} conversions per click (claimed, one per request). "
           "Both without the budget lane (issue 20), which has its own section below.",
           "",
           "```sh",
           f"# before (the planner at {BEFORE_EVENTS_COMMIT})",
           f"mkdir -p /tmp/before && git archive {BEFORE_EVENTS_COMMIT} capacity functions/common "
           "| tar -x -C /tmp/before",
           f"(cd /tmp/before && python -m capacity plan --rate {rate} --peak {peak} --json)",
           "# clicks only, and with events (defaults: 50 impressions, 0.02 conversions per click)",
           f"python -m capacity plan --rate {rate} --peak {peak} --impressions-per-click 0 "
           "--conversions-per-click 0 --no-budget-lane",
           f"python -m capacity plan --rate {rate} --peak {peak} --no-budget-lane",
           "```",
           ""]
    out += _md_table(("Component", "Before", "Clicks only", "With events", "Change"), rows, "lrrrr")
    seed_agg = seed.component("aggregates_stream")
    out += ["",
            f"Where the increase comes from: a {x['minibatch_ms'] / 1000:g} s mini-batch now "
            f"touches {seed_agg.metric('distinct ads per mini-batch (average)'):,.0f} ads and "
            f"{seed_agg.metric('distinct campaigns + advertisers per mini-batch (average)'):,.0f} "
            "campaigns and advertisers instead of "
            f"{clicks_only.component('aggregates_stream').metric('distinct ads per mini-batch (average)'):,.0f} "
            "ads (clicks only), so the serving writes per click go from "
            f"{clicks_only.component('serving').metric('writes per click (average)'):.1f} to "
            f"{seed.component('serving').metric('writes per click (average)'):.1f}; the events "
            "stream carries one record per impression, and its Firehose bills each as 5 KB. "
            "The stage throttle (`ingest_rate_limit`, `ingest_burst_limit`, shared by "
            "`POST /v1/clicks` and `POST /v1/events`) and `events_kinesis_shards` in the "
            "profiles below are sized for clicks and events together.",
            ""]
    return out


def _lane_with(p: Plan, **change: Any) -> Plan:
    return plan(**{**p.inputs, **change})


def _budget_section(seed: Plan, profiles: list[tuple[str, Plan]]) -> list[str]:
    """Issue 20's budget lane: what the planner models, its cost per million clicks per profile and
    per part, the seed profile's volumes, its levers and warnings, and the commands."""
    x = seed.inputs
    rate, peak = f"{x['rate']:.0f}", f"{x['peak']:.0f}"
    keys = list(dict.fromkeys(k for _, p in profiles for k in p.lane))
    title = {k: LANE_PARTS.get(k) or seed.component(k).title for k in keys}
    rows = []
    for k in keys:
        rows.append([title[k]] + [per_million(p.lane.get(k, 0.0) / (p.clicks_per_month / 1e6))
                                  for _, p in profiles])
    rows.append(["**Budget lane**"] + [f"**{per_million(p.lane_usd_per_million_clicks)}**"
                                       for _, p in profiles])
    rows.append(["Total without the lane"] + [
        per_million((p.monthly_usd - p.lane_usd) / (p.clicks_per_month / 1e6)) for _, p in profiles])
    rows.append(["Total with the lane"] + [per_million(p.usd_per_million_clicks) for _, p in profiles])
    rows.append(["Budget lane, $/month"] + [usd(p.lane_usd) for _, p in profiles])

    agg, flink = seed.component("aggregates_stream"), seed.component("flink")
    api, reads, ops = (seed.component(k) for k in planner.LANE_KEYS)
    rows_per_update = 2 if x["changelog_update_before"] else 1  # flink_changelog_mode retract / upsert
    spend_rows = rows_per_update * agg.metric("spend upserts/s average (budget lane)") + agg.metric(
        "pulse rows/s (budget lane)")
    servers = api.metric("ad-server instances (average)")
    containers = reads.metric("budget Lambda containers (average)")
    volumes = [
        ["campaigns (ten ads each)", num(ops.metric("campaigns (budgets)"))],
        [f"campaigns with a valid click per {x['budget_emit_interval_ms'] / 1000:g} s emit interval",
         num(agg.metric("campaigns with a valid click per budget emit interval (average)"))],
        ["spend upserts/s (1m + 1d)", num(agg.metric("spend upserts/s average (budget lane)"))],
        [f"changelog rows/s added ({'-U/+U' if rows_per_update == 2 else 'one row'} per upsert, "
         "+ pulse)", num(spend_rows)],
        ["Flink row-equivalents/s at peak (2/12 of a row per valid click)",
         num(flink.metric("budget lane spend aggregation, row-equivalents/s peak"))],
        ["ad-server instances (average)", num(api.metric("ad-server instances (average)"))],
        ["campaigns each asks about per cache TTL",
         num(api.metric("campaigns asked per instance per cache TTL"))],
        ["POST /v1/pacing requests/s", num(api.metric("requests/s average"))],
        ["campaign decisions/s", num(api.metric("campaign decisions/s average"))],
        ["budget Lambda containers (concurrency)", f"{containers:,.0f}"],
        ["campaign figures read from DynamoDB/s (cache misses)",
         num(reads.metric("campaign figures read/s average (cache misses)"))],
        ["BatchGetItems/s (10 per 100-campaign request)", num(reads.metric("BatchGetItems/s average"))],
        ["budgets table RRU/s (ConsistentRead)", num(reads.metric("budgets table RRU/s average (ConsistentRead)"))],
        ["serving table RCU/s", num(reads.metric("serving table RCU/s average"))],
    ]
    lever_settings = [("base", {}), ("budget_emit_interval_ms=2000", dict(budget_emit_interval_ms=2000)),
                      ("budget_emit_interval_ms=10000", dict(budget_emit_interval_ms=10_000)),
                      ("pacing_cache_ttl_ms=5000", dict(pacing_cache_ttl_ms=5000)),
                      (f"ad_servers={2 * servers:.0f} (twice the instances)", dict(ad_servers=2 * servers)),
                      ("impressions_per_click=0 (ad servers' campaigns from their clicks)",
                       dict(impressions_per_click=0, conversions_per_click=0))]
    lever_rows_ = []
    for label, change in lever_settings:
        q = seed if not change else _lane_with(seed, **change)
        lever_rows_.append([label, per_million(q.lane_usd_per_million_clicks),
                            per_million(q.lane.get("budget_reads", 0.0) / (q.clicks_per_month / 1e6)),
                            per_million(sum(v for k, v in q.lane.items() if k not in planner.LANE_KEYS)
                                        / (q.clicks_per_month / 1e6))])
    out = ["## Budget lane (issue 20): cost per million clicks", "",
           "The planner models the lane as `docs/budget.md` specifies it: the Flink job's spend "
           "aggregation per (campaign, UTC day) and per (campaign, minute) over the valid clicks "
           f"and IVT corrections, emitted every `budget_emit_interval_ms` "
           f"({planner.BUDGET_EMIT_INTERVAL_MS} ms) instead of the {planner.MINIBATCH_MS / 1000:g} s "
           "mini-batch, and the pulse (one row per interval). They take the aggregates' path "
           "(aggregates stream, one row per update with the default upsert changelog, sink Lambda, one conditional write per upsert "
           "into the serving table; 1m spend items expire after `minute_ttl_s`), so their cost "
           "sits inside those components; the lane's share of each is the plan minus the same "
           "plan without the lane. The decisions: ad servers call `POST /v1/pacing` (API Gateway "
           "REST, IAM) once per `pacing_cache_ttl_ms` "
           f"({planner.PACING_CACHE_TTL_MS} ms) for the campaigns whose ads they serve in that "
           f"time, up to {planner.PACING_BATCH_MAX} per request; the budget Lambda "
           f"({planner.BUDGET_MEMORY_MB} MB, {planner.PACING_DURATION_MS:g} ms per request: an "
           "assumption) caches each campaign's figures for the TTL per container and reads the "
           f"rest with one BatchGetItem per {planner.PACING_CAMPAIGNS_PER_BATCH_GET} campaigns "
           "(budget with ConsistentRead: 1 RRU; today's 1d and six 1m spend items: 0.5 RCU each; "
           "the pulse once per call). Plus the budgets table (on-demand), the lane's alarms, "
           "custom metrics and logs. Assumptions: section \"Assumptions\", block \"budget lane\".",
           "",
           "$ per million clicks per profile:",
           ""]
    out += _md_table(("Part", *(n for n, _ in profiles)), rows, "l" + "r" * len(profiles))
    out += ["", f"Volumes at the seed profile ({SEED_PROFILE}, average):", ""]
    out += _md_table(("Quantity", "Value"), volumes, "lr")
    out += ["",
            "Where it goes: the decisions cost far more than the spend rows. The "
            f"{servers:,.0f} ad-server instances each serve about "
            f"{num(api.metric('ads served per instance per cache TTL'))} impressions a second, "
            f"which by the planner's popularity model touch "
            f"{num(api.metric('campaigns asked per instance per cache TTL'))} of the "
            f"{num(ops.metric('campaigns (budgets)'))} campaigns; with "
            f"{containers:,.0f} Lambda containers a campaign's figures are seldom in the "
            "container a request lands on: the planner counts every decision as a read of its 8 "
            "items (the share read from DynamoDB is "
            f"{reads.metric('share of decisions read from DynamoDB'):.0%}: the cache bound, "
            "containers x campaigns per TTL, does not bind; the hits of two instances' requests "
            "landing on one container within a TTL are not counted, an upper bound). What would "
            "cut it (not modelled: each is a change of the lane's code): the budget item read "
            "eventually consistent (half its RRU), the pulse read once per container and emit "
            "interval, budgets cached longer than the spend figures, the six minute items replaced "
            "by one velocity item the job writes. The spend rows add "
            f"{spend_rows / max(agg.metric('changelog rows/s average') - spend_rows, 1):.1%} to the "
            "aggregates stream's rows.",
            "",
            "The lane at the seed profile under other settings ($ per million clicks; each "
            "setting alone):",
            ""]
    out += _md_table(("Setting", "Budget lane", "of which reads", "of which spend rows"),
                     lever_rows_, "lrrr")
    out += ["", "At the seed profile the planner warns:", ""]
    out += [f"- {w}" for c in (api, reads, ops) for w in c.warnings]
    out += ["",
            "```sh",
            f"python -m capacity plan --rate {rate} --peak {peak}                   # with the lane (the default)",
            f"python -m capacity plan --rate {rate} --peak {peak} --no-budget-lane  # without it",
            f"python -m capacity plan --rate {rate} --peak {peak} --budget-emit-ms 2000 --pacing-ttl-ms 5000",
            f"python -m capacity plan --rate {rate} --peak {peak} --ad-servers 40 --pacing-campaigns 1000",
            "```",
            ""]
    return out


def scenarios(region: str = DOCS_REGION) -> list[tuple[str, str, Plan]]:
    out = [(name, p.summary, p.plan(region)) for name, p in PROFILES.items()]
    out.append(("500k sustained", "500k clicks/s as the average (43B clicks/day): upper bound",
                plan(500_000, 500_000, region=region)))
    medium = PROFILES["medium"]
    levered = plan(medium.rate, medium.peak, region=region, **LEVERED)
    assert not levered.not_implemented, levered.not_implemented
    out.append(("medium + levers", "medium with the implemented lever settings below applied "
                "together (per-click dedup kept)", levered))
    out.append(("medium + modelled levers", "medium + levers and the modelled, not implemented "
                "levers below: what they would save, not a deployable plan",
                plan(medium.rate, medium.peak, region=region, **LEVERED, **MODELLED_LEVERS)))
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
            + " (the default `flink_changelog_mode` upsert is in every scenario); "
            "`medium + modelled levers` adds, not implemented: "
            + ", ".join(f"`{k}={v}`" for k, v in MODELLED_LEVERS.items()) + ".", ""]
    seed = next(p for n, _, p in scen if n == SEED_PROFILE)
    seed_no_lane = _without_lane(seed)
    seed_clicks_only = _clicks_only(seed_no_lane)
    seed_reads = seed.lane.get("budget_reads", 0.0)
    seed_keys = seed.component("aggregates_stream").metric("distinct ads per mini-batch (average)")
    medium_keys = medium_plan.component("aggregates_stream").metric(
        "distinct ads per mini-batch (average)")
    out += [
        "What dominates, and why:",
        "",
        f"- **Impressions** ({planner.IMPRESSIONS_PER_CLICK:g} per click by default, issue 19) "
        f"set the cost: at the seed profile they take it from "
        f"{per_million(seed_clicks_only.usd_per_million_clicks)} to "
        f"{per_million(seed_no_lane.usd_per_million_clicks)} per million clicks without the budget "
        "lane (section \"Impressions and conversions\" below). Every counted click, impression "
        "and conversion updates its "
        "ad's, campaign's and advertiser's series at each resolution, so the serving path "
        "(aggregates stream, sink, serving table) scales with the distinct keys a "
        f"{planner.MINIBATCH_MS / 1000:g} s mini-batch touches: "
        f"{seed_keys / planner.ACTIVE_ADS:.0%} of the {planner.ACTIVE_ADS:,} ads at the seed "
        f"profile, {medium_keys / planner.ACTIVE_ADS:.0%} at the medium one, each one update per "
        f"emitted resolution ({len(planner.SERVING_RESOLUTIONS)}), one changelog row each with "
        f"the default `flink_changelog_mode` upsert (two with retract: -U and +U).",
        f"- **The budget lane** (issue 20) adds {per_million(seed.lane_usd_per_million_clicks)} per "
        f"million clicks at the seed profile ({per_million(seed_no_lane.usd_per_million_clicks)} -> "
        f"{per_million(seed.usd_per_million_clicks)}), {seed_reads / (seed.lane_usd or 1):.0%} of it "
        "the pacing decisions' DynamoDB reads: every ad server asks once a second for the campaigns "
        "it serves, and each campaign's figures are 8 items plus the pulse (section \"Budget "
        "lane\" below). Its spend rows are a small addition to the serving path.",
        f"- **Firehose** bills every Kinesis record as at least "
        f"{planner.FIREHOSE_RECORD_UNIT // planner.KIB} KB: a {medium_plan.inputs['click_bytes']} B "
        f"click is billed {planner.FIREHOSE_RECORD_UNIT / medium_plan.inputs['click_bytes']:.0f}x, "
        f"a {planner.IMPRESSION_RECORD_BYTES} B impression "
        f"{planner.FIREHOSE_RECORD_UNIT / planner.IMPRESSION_RECORD_BYTES:.0f}x: the events "
        "archive's Firehose is the largest single line at the medium profile.",
        f"- **Per-click dedup** costs {planner.CLAIM_WCU + planner.CONFIRM_WCU} WCU per click "
        "(claim + confirm) and per conversion: DynamoDB writes for every click, whatever the "
        f"batch size (mark: {planner.CONFIRM_WCU} WCU + {planner.MARK_READ_RCU:g} RCU). "
        "Impressions are never claimed.",
        f"- API Gateway, Lambda, S3 and Glue are small next to these; Flink needs "
        f"{medium_plan.component('flink').context['flink_parallelism']:,} KPUs at the medium "
        f"profile (one KPU per {planner.FLINK_ROWS_PER_KPU_S:,} rows/s, bench/flink.py's RocksDB "
        "figure for clicks; impressions taken to cost alike: an assumption).",
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
    out += ["", "Per-click dedup stays the default in every profile: it is the design card's "
            "DynamoDB conditional-write dedup, and no profile *needs* an alternative (the "
            "volumes need quota increases, not a different design). `ingest_dedup_mode` mark "
            "(implemented) is the saving to take: one write and half a read unit per click, the "
            "same re-sent clicks caught once marked; copies in flight at the same moment reach "
            "the stream, where Flink's click_id dedup drops them. Per-request idempotency (not "
            "implemented) would save more only if the realtime view may over-count re-sends "
            "that Flink's 30-minute state misses.", "",
            "**Modelled, not implemented** (issue 22: the planner prices them to show what they "
            "would save; no profile may select them, `capacity/planner/implemented.py`):", ""]
    out += [f"- `{name}`: {why}" for name, _, why in planner.NOT_IMPLEMENTED] + [""]

    out += _events_section(seed)
    out += _budget_section(seed, [(n, p) for n, _, p in scen if n in PROFILES])

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
