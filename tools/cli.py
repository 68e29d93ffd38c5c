"""Query the clickagg API from a terminal.

  python -m tools.cli top --last 1h -k 10 [--metric clicks|billable_clicks|cost|impressions|conversions|
                          conversion_value|ctr|cvr|cpc|cpa|roas] [--min-volume N]
                          [--campaign C] [--advertiser A] [--from T --to T] [--json]
  python -m tools.cli series ID [--level ad|campaign|advertiser] --resolution 5m
                          [--from T --to T | --last 6h] [--json]
  python -m tools.cli health [--json]
  python -m tools.cli quality [--last 1h] [--json]
  python -m tools.cli reconcile --day YYYY-MM-DD [--json]
  python -m tools.cli token issue ... | token verify TOKEN --keys-json FILE   (tools/token_cli.py)

The API is `--api URL`, else $CLICKAGG_API, else the local stack (http://127.0.0.1:8080, what
`python -m local up` serves). `--sigv4` signs requests (SigV4, service execute-api) with the
default AWS credentials, for an API Gateway that uses IAM authorization. Times: epoch ms or
ISO-8601 with an offset. Exit status: 0 answered, 1 the API refused or failed, 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Optional
from urllib.parse import quote, urlencode

import requests

from query.routes import SERIES_ROUTES
from query.topk import TOP_METRICS

DEFAULT_API = "http://127.0.0.1:8080"


def api_url(arg: Optional[str]) -> str:
    return (arg or os.environ.get("CLICKAGG_API") or DEFAULT_API).rstrip("/")


def region_for(url: str, explicit: Optional[str] = None) -> str:
    if explicit:
        return explicit
    m = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", url)
    if m:
        return m.group(1)
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def signed_headers(url: str, region: str, credentials=None, method: str = "GET") -> dict[str, str]:
    """SigV4 headers for a bodiless request of `url` (execute-api), default credential chain."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.session import Session

    credentials = credentials or Session().get_credentials()
    if credentials is None:
        raise SystemExit("--sigv4: no AWS credentials found (environment, profile or role)")
    request = AWSRequest(method=method, url=url)
    SigV4Auth(credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials")
              else credentials, "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def call(base: str, path: str, params: dict, sigv4: bool = False, region: Optional[str] = None,
         timeout: float = 30, method: str = "GET") -> requests.Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{base}{path}" + (f"?{query}" if query else "")
    headers = signed_headers(url, region_for(base, region), method=method) if sigv4 else {}
    return requests.request(method, url, headers=headers, timeout=timeout)


def _table(headers: list[str], rows: list[list], align_right: set[int]) -> str:
    cells = [[str(h) for h in headers]] + [[("-" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.rjust(widths[i]) if i in align_right else c.ljust(widths[i])
                               for i, c in enumerate(r)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _freshness_line(f: dict) -> str:
    lag = f.get("lag_ms")
    parts = [f"watermark {f.get('watermark') or 'none'}",
             f"newest event {f.get('newest_event_time') or 'none'}",
             f"lag {lag / 1000:.1f}s" if lag is not None else "lag unknown"]
    if "final" in f:
        parts.append("final" if f["final"] else "not final (late clicks may still count)")
    return "freshness: " + ", ".join(parts)


def render_top(body: dict) -> str:
    w = body["window"]
    filters = ", ".join(f"{k}={v}" for k, v in body.get("filters", {}).items() if v)
    head = [f"top {body['k']} by {body['metric']}  {w['from']} .. {w['to']}"
            + (f"  [{filters}]" if filters else ""),
            "exact" if body["exact"] else
            f"NOT exact ({body.get('inexact_reason')}); error bound {_bound(body['error_bound'])}"]
    if body.get("min_volume") is not None:
        head.append(f"min_volume {body['min_volume']} (the ratio's denominator over the window)")
    ratio = body.get("min_volume") is not None
    rows = [[i["rank"], i["ad_id"], i["campaign_id"], i["advertiser_id"], i["total"]]
            + ([i.get("numerator"), i.get("denominator")] if ratio else [])
            + ([_bound(i["total_upper"])] if not body["exact"] else []) for i in body["items"]]
    headers = (["rank", "ad_id", "campaign", "advertiser", body["metric"]]
               + (["numerator", "denominator"] if ratio else []) + ([] if body["exact"] else ["at most"]))
    table = _table(headers, rows, {0, *range(4, len(headers))}) if rows else "(no ad with this metric above 0 in this window)"
    return "\n".join(head + [table, _freshness_line(body["freshness"])])


def _bound(value) -> str:
    return "unknown" if value is None else str(value)


SERIES_COLUMNS = {"clicks": "clicks", "billable_clicks": "billable", "cost": "cost", "billable_cost": "billable_cost",
                  "suspect_clicks": "suspect", "invalid_clicks": "invalid", "impressions": "impressions",
                  "conversions": "conversions", "conversion_value": "conv_value", "ctr": "ctr", "cvr": "cvr",
                  "cpc": "cpc", "cpa": "cpa", "roas": "roas"}


def render_series(body: dict) -> str:
    w = body["window"]
    if "ad_id" in body:
        who = f"ad {body['ad_id']} ({body.get('campaign_id') or '-'} / {body.get('advertiser_id') or '-'})"
    elif "campaign_id" in body:
        who = f"campaign {body['campaign_id']} ({body.get('advertiser_id') or '-'})"
    else:
        who = f"advertiser {body['advertiser_id']}"
    head = f"{who}  {body['resolution']}  {w['from']} .. {w['to']}"
    rows = [[p["bucket_start"], *(p.get(f) for f in SERIES_COLUMNS)] for p in body["points"]]
    t = body["totals"]
    rows.append(["total", *(t.get(f) for f in SERIES_COLUMNS)])
    table = _table(["bucket_start", *SERIES_COLUMNS.values()], rows, set(range(1, len(SERIES_COLUMNS) + 1)))
    return "\n".join([head, table, _freshness_line(body["freshness"])])


def render_health(body: dict) -> str:
    return f"{body['status']}: store {body['store']}\n" + _freshness_line(body["freshness"])


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.4%}"


def _ivt_lines(ivt: Optional[dict]) -> list[str]:
    """GET /v1/quality's `ivt`: one line per window (absent on an older API: nothing)."""
    if not ivt:
        return []
    out = [f"ivt (alert above {ivt['alert_percent']}% suspect + invalid):"]
    for key, label in (("last_5m", "last 5 min"), ("last_hour", "last hour")):
        w = ivt[key]
        r = w["rates"]
        figures = (f"{_pct(r['both'])} of {w['clicks']} clicks (suspect {_pct(r['suspect'])}, "
                   f"invalid {_pct(r['invalid'])})" if w["clicks"] else "no clicks")
        notes = [n for n, on in (("ALERT", w["alert"]), ("top ads only", not w["complete"]),
                                 ("not final", not w["final"])) if on]
        out.append(f"  {label} {w['from']} .. {w['to']}: {figures}" + "".join(f" [{n}]" for n in notes))
    return out


def render_quality(body: dict) -> str:
    w, lag, ing = body["window"], body["lag"], body["ingest"]
    ms = lambda v: "n/a" if v is None else f"{v / 1000:.1f}s"  # noqa: E731
    lines = [f"quality: {body['status']}  {w['from']} .. {w['to']}",
             *(f"  ALERT {a}" for a in body["alerts"]),
             f"lag: end-to-end {ms(lag['end_to_end_ms'])}, watermark {ms(lag['watermark_ms'])}, "
             f"clicks stream iterator age {ms(lag['clicks_stream_iterator_age_ms'])}",
             f"ingest: accepted {ing['accepted']}, duplicates {ing['duplicates']} "
             f"(rate {_pct(ing['duplicate_rate'])}), rejected {ing['rejected']}  [{ing['source']}]",
             f"late-dropped (beyond allowed lateness): {body['late_dropped']}",
             *_ivt_lines(body.get("ivt"))]
    rec = body.get("reconciliation")
    if rec:
        lines.append(f"last reconciliation: {rec['day']} (finished {rec.get('finished_at')}): batch "
                     f"{rec['batch_billable']}, realtime {rec['realtime_billable']}, diff {rec['total_diff']}, "
                     f"total drift {_pct(rec['total_drift'])}, worst {_pct(rec['worst_drift'])}"
                     + (" FLAGGED" if rec["flag"] else ""))
    else:
        lines.append("last reconciliation: none yet")
    return "\n".join(lines + [_freshness_line(body["freshness"])])


def render_reconcile(body: dict) -> str:
    return (f"{body['status']}: workflow {body['workflow']} run {body['run_id']} for {body['day']}"
            + (" (partial day: its arrivals are not complete yet)" if body.get("partial_day") else "")
            + f"\nresult: {body['result']}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clickagg", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", help=f"API base URL (default $CLICKAGG_API or {DEFAULT_API})")
    common.add_argument("--sigv4", action="store_true", help="sign requests with SigV4 (execute-api)")
    common.add_argument("--region", help="region for --sigv4 (default: from the URL or environment)")
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--last", help="window length ending at --to, e.g. 15m, 6h, 7d (1m..30d; quality: 24h)")
    window.add_argument("--from", dest="frm", help="window start: epoch ms or ISO-8601 with offset")
    window.add_argument("--to", help="window end (exclusive); default end of the current minute")
    sub = p.add_subparsers(dest="command", required=True)
    top = sub.add_parser("top", parents=[common, window], help="top-K ads over a window")
    top.add_argument("-k", type=int, default=10, help="how many ads (1..100)")
    top.add_argument("--metric", default="clicks", choices=TOP_METRICS)
    top.add_argument("--min-volume", type=int, help="ratio metrics: the least denominator an ad needs (default 100)")
    top.add_argument("--campaign", help="only this campaign_id")
    top.add_argument("--advertiser", help="only this advertiser_id")
    series = sub.add_parser("series", parents=[common, window], help="one ad's, campaign's or advertiser's series")
    series.add_argument("id", help="the ad id (or campaign / advertiser id with --level)")
    series.add_argument("--level", default="ad", choices=list(SERIES_ROUTES))
    series.add_argument("--resolution", default="1m", choices=["1m", "5m", "1h", "1d"])
    sub.add_parser("health", parents=[common], help="serving store reachable + freshness")
    sub.add_parser("quality", parents=[common, window],
                   help="lag, duplicate rate, late-dropped clicks, last reconciliation drift")
    rec = sub.add_parser("reconcile", parents=[common], help="recompute + reconcile one UTC day")
    rec.add_argument("--day", required=True, help="YYYY-MM-DD")
    rec.add_argument("--apply-corrections", action="store_true",
                     help="correct the day's realtime buckets to the batch truth if it is flagged "
                          "(docs/corrections.md)")
    from tools.sql_cli import add_parser as add_sql_parser

    add_sql_parser(sub)
    from tools.token_cli import add_parser as add_token_parser

    add_token_parser(sub)
    return p


def main(argv: Optional[list[str]] = None, out=None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    if args.command == "sql":
        return args.func(args)
    if args.command == "token":  # offline: no API call
        return args.func(args, out)
    base = api_url(args.api)
    if args.command == "top":
        path, params, render = "/v1/top", {
            "k": args.k, "metric": args.metric, "min_volume": args.min_volume, "campaign_id": args.campaign,
            "advertiser_id": args.advertiser, "last": args.last, "from": args.frm, "to": args.to}, render_top
    elif args.command == "series":
        route = SERIES_ROUTES[args.level]
        path, params, render = route[:route.index("{")] + quote(args.id, safe="") + "/metrics", {
            "resolution": args.resolution, "last": args.last, "from": args.frm, "to": args.to}, render_series
    elif args.command == "quality":
        path, params, render = "/v1/quality", {"last": args.last, "from": args.frm, "to": args.to}, render_quality
    elif args.command == "reconcile":
        path, params, render = "/v1/reconcile", {
            "day": args.day, "apply_corrections": "true" if args.apply_corrections else None}, render_reconcile
    else:
        path, params, render = "/v1/health", {}, render_health
    method = "POST" if args.command == "reconcile" else "GET"
    try:
        resp = call(base, path, params, sigv4=args.sigv4, region=args.region, method=method)
    except requests.RequestException as exc:
        print(f"error: cannot reach {base}: {exc}", file=sys.stderr)
        return 1
    try:
        body = resp.json()
    except ValueError:
        print(f"error: HTTP {resp.status_code} from {base}{path}: {resp.text[:300]}", file=sys.stderr)
        return 1
    if resp.status_code not in (200, 202):
        reason = body.get("error") or body.get("message") or body
        print(f"error: HTTP {resp.status_code}: {reason}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2) if args.json else render(body), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
