"""One batch of clicks exercising every IVT rule (functions/common/ivt.py), for the cross-engine
test: the Flink job's SQL and the Glue billing job get exactly these rows and must both give
`ivt.evaluate`'s verdict for every click.

Stdlib only and deterministic (a seed), so each engine's venv can build it. The rows are sorted by
(event_time, ingest_time, click_id): read in that order, a group's first ARRIVAL (the stream's
election) is also its first by that order (the batch's), so the two engines must agree on every
click. All event times lie inside one UTC day (DAY), away from midnight.
"""
from __future__ import annotations

import random
from datetime import date
from typing import Any

DAY = date(2026, 3, 11)
DAY_START_MS = 1_773_187_200_000  # 2026-03-11T00:00:00Z
BOT_UAS = ("Googlebot/2.1 (+http://www.google.com/bot.html)", "python-requests/2.31.0",
           "curl/8.4.0", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
           "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)")
HUMAN_UAS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0 Safari/537.36",
             "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")
DC_IPS = ("3.0.0.5", "3.8.1.1", "52.0.0.1", "::ffff:3.0.0.9")
NOT_AN_IP = ("not-an-ip", "999.1.1.1", "01.2.3.4", "2001:db8::1")


def build(seed: int = 17, n: int = 2_000) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    seq = 0

    def click(t: int, **f: Any) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        ingest = t + rng.randrange(50, 3_000)
        row = {"click_id": f"x-{seq:06d}", "ad_id": f"ad-{rng.randrange(12):02d}",
               "campaign_id": "cmp-1", "advertiser_id": "adv-1",
               "user_id": f"u-{rng.randrange(400):03d}", "event_time": t,
               "cost_micros": 100_000 + 1_000 * rng.randrange(50),
               "ip": f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}",
               "user_agent": rng.choice(HUMAN_UAS), "referrer": None, "ingest_time": ingest,
               "request_id": f"r-{seq}", "source_ip": "127.0.0.1",
               "impression_id": f"imp-{seq:06d}",
               "issued_at": ingest - rng.randrange(1_500, 600_000)}
        row.update(f)
        rows.append(row)
        return row

    start = DAY_START_MS + 6 * 3_600_000
    for _ in range(n):
        t = start + rng.randrange(3_600_000)
        r = rng.random()
        if r < 0.04:
            click(t, user_agent=rng.choice(BOT_UAS))
        elif r < 0.08:
            click(t, ip=rng.choice(DC_IPS))
        elif r < 0.10:
            c = click(t)
            c["issued_at"] = c["ingest_time"] - rng.randrange(-2_000, 1_000)  # too fast
        elif r < 0.13:  # the same impression again, later (possibly another bucket / user)
            c = click(t)
            click(t + rng.randrange(0, 30_000), impression_id=c["impression_id"],
                  user_id=rng.choice((c["user_id"], "u-other")), ad_id=c["ad_id"])
        elif r < 0.17:  # the same user and ad again, another impression, within seconds
            c = click(t)
            click(t + rng.randrange(0, 12_000), user_id=c["user_id"], ad_id=c["ad_id"])
        elif r < 0.18:  # nulls: no user, no ip, no agent, no token fields
            click(t, user_id=None, ip=None, user_agent=None, impression_id=None, issued_at=None)
        elif r < 0.19:
            click(t, ip=rng.choice(NOT_AN_IP))
        else:
            click(t)
    # bursts: exactly the threshold (not a burst), one more (a burst), a spray over many ads,
    # and one straddling a second boundary (fixed buckets: not a burst)
    for k, (count, ip) in enumerate(((10, "192.0.2.10"), (11, "192.0.2.11"), (25, "192.0.2.25"),
                                     (16, "192.0.2.16"))):
        second = start + (100 + 7 * k) * 1_000
        for i in range(count):
            offset = rng.randrange(1_000) if ip != "192.0.2.16" else (i % 2) * 1_000 + rng.randrange(500)
            click(second + offset, ip=ip, user_id=f"burst-{k}-{i}")
    rows.sort(key=lambda c: (c["event_time"], c["ingest_time"], c["click_id"]))
    return rows
