"""The demo's rebuild section (docs/rebuild.md): views are disposable, the archive is the truth.

1. The range of the load's buckets that are final by now (every minute wholly before now minus
   the lateness horizon), from its first minute.
2. Damage the serving table there the way a bad deploy or a lost table would: a wrong count,
   a lost bucket, a stale leaderboard entry at the top of a minute's board; the query API now
   answers wrong (checked: the top-10 over the range puts the ghost first).
3. `python -m local rebuild`'s code: the archive partitions copied from S3, the stream job's
   SQL in Flink batch mode, the rows loaded under a new generation.
4. The query API's top-10 over the range and the hot ad's 1m series equal the ground truth
   again; every ad's 1m rows of the range too.
"""
from __future__ import annotations

import time
from collections import Counter

import boto3
import requests

from common.schema import lateness_horizon_s, default
from common.times import MINUTE_MS, floor_to
from local.oracle import click_verdicts, realtime_truth
from local.readback import read_series
from tools.loadgen import HOT_AD

GHOST = "ad-ghost"


def final_range(load, now_ms: int) -> tuple[int, int]:
    """[first minute of the load, the last minute final by now)."""
    horizon_ms = (lateness_horizon_s(default("allowed_lateness_s"), default("watermark_delay_s")) - 60) * 1000
    start = floor_to(min(c["event_time"] for c in load.truth), MINUTE_MS)
    return start, floor_to(now_ms - horizon_ms, MINUTE_MS)


def top10(api: str, start: int, end: int) -> list[tuple[str, int]]:
    top = requests.get(f"{api}/v1/top", params={"from": str(start), "to": str(end), "k": "10"}, timeout=30).json()
    return [(i["ad_id"], int(i["total"])) for i in top["items"]]


def ghost_board(start: int, end: int) -> tuple[str, int]:
    """The first leaderboard (resolution, bucket) top-K reads for [start, end): the ghost must
    sit where the query looks, or the damage is invisible (a range holding a whole hour)."""
    from query.windows import Window, decompose

    d = decompose(Window(start, end))
    for res, buckets in (("1m", d.minutes), ("1h", d.hours), ("1d", d.days)):
        if buckets:
            return res, buckets[0]
    raise ValueError(f"empty range {start}..{end}")


def damage(table: str, start: int, end: int) -> str:
    """Wrong count, lost bucket, ghost leaderboard entry; returns what was done."""
    from serving.keys import RANK_ATTR, rank_key, series_key, top_key

    ddb = boto3.client("dynamodb")
    minutes = sorted(b for b in read_series(table, HOT_AD, "1m") if start <= b < end)
    wrong, lost = minutes[0], minutes[len(minutes) // 2]
    key = {k: {"S": v} for k, v in series_key(HOT_AD, "1m", wrong).items()}
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET c = :c",
                    ExpressionAttributeValues={":c": {"N": "99999"}})
    ddb.delete_item(TableName=table, Key={k: {"S": v} for k, v in series_key(HOT_AD, "1m", lost).items()})
    # on a board the query reads for this range: a whole hour is read from its 1h board, not 1m
    ghost_res, ghost_bucket = ghost_board(start, end)
    ghost = top_key(ghost_res, ghost_bucket, GHOST)
    # with its rank key, as the sink writes entries: top-K reads boards through the rank index
    ddb.put_item(TableName=table, Item={"pk": {"S": ghost["pk"]}, "sk": {"S": ghost["sk"]},
                                        "v": {"N": "1"}, "c": {"N": "99999"}, "b": {"N": "99999"},
                                        RANK_ATTR: {"S": rank_key(99999)}})
    return f"{HOT_AD} minute {wrong} set to 99999 clicks, minute {lost} deleted, {GHOST} put on top of the {ghost_res} board of {ghost_bucket}"


def rebuild_section(stack, load, checks, work_dir=None) -> None:
    from local.rebuild import rebuild

    print("\nrebuild from the archive (python -m local rebuild: archive -> Flink batch job -> "
          "serving table under a new generation)")
    if stack.flink_job is None:
        print("  skipped: PyFlink venv (.venv-flink) not installed; run `make setup`")
        checks.failures.append("flink not available")
        return
    start, end = final_range(load, int(time.time() * 1000))
    if end - start < 5 * MINUTE_MS:
        print(f"  skipped: only {(end - start) // MINUTE_MS} final minutes so far")
        checks.failures.append("rebuild: no final range")
        return
    truth = realtime_truth(load.truth, set(load.late_ids), verdicts=click_verdicts(load.truth))
    minutes = {(ad, b): row for (ad, res, b), row in truth.items() if res == "1m" and start <= b < end}
    window = Counter()
    for (ad, _), row in minutes.items():
        window[ad] += row["clicks"]
    want_top = sorted(window.items(), key=lambda t: (-t[1], t[0]))[:10]
    table = stack.names.serving_table
    api = stack.api.url
    checks.equal("before: top-10 over the final range = ground truth", top10(api, start, end), want_top)
    print(f"  damage: {damage(table, start, end)}")
    damaged = top10(api, start, end)
    print(f"  damaged top-10 starts {damaged[:2]}")
    checks.equal("damaged: the query API answers wrong (the ghost leads)", damaged[0][0] == GHOST, True)
    stats = rebuild(stack.endpoint, start, end, names=stack.names,
                    flink_settings=stack.options.flink_settings, arrival_cutoff_s=0, work_dir=work_dir)
    print(f"  rebuilt {(end - start) // MINUTE_MS} minutes in {stats['total_seconds']} s "
          f"(job {stats['job_seconds']} s): generation {stats['generation']}, {stats['rows']} rows, "
          f"{stats['written']} written, {stats['markers']} leaderboard buckets switched")
    checks.equal("rebuilt: top-10 over the range = ground truth", top10(api, start, end), want_top)
    got = {(ad, b): row for ad in window for b, row in read_series(table, ad, "1m").items() if start <= b < end}
    metrics = ("clicks", "billable_clicks", "suspect_clicks", "invalid_clicks", "cost_micros")
    wrong = [k for k in minutes if any(got.get(k, {}).get(m, 0) != minutes[k][m] for m in metrics)]
    checks.equal(f"rebuilt: every ad's 1m rows of the range = ground truth ({len(minutes)} rows)", wrong, [])
