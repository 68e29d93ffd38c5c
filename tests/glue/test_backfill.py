"""Backfill: days run in order, each one equal to the oracle, progress reported per day."""
from __future__ import annotations

import io
from datetime import date

from glue_jobs.backfill import backfill, days_between
from tests.glue.oracle import billing_oracle
from tests.glue.scenario import build
from tests.glue.test_billing import keyed, read_day


def test_backfill_range(spark, tmp_path):
    day = date(2026, 4, 1)
    scenario = build(day, seed=11, background=400)
    scenario.write(tmp_path / "raw" / "clicks")
    out, progress = str(tmp_path / "out"), io.StringIO()
    results = backfill(spark, str(tmp_path / "raw" / "clicks"), out, date(2026, 3, 31), date(2026, 4, 2),
                       write_flagged=False, out=progress)
    assert [r["day"] for r in results] == ["2026-03-31", "2026-04-01", "2026-04-02"]
    lines = progress.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["[1/3]", "[2/3]", "[3/3]"] and "eta" in lines[-1]
    for d in days_between(date(2026, 3, 31), date(2026, 4, 2)):
        assert keyed(read_day(out, "hourly", d)) == billing_oracle(scenario.rows, d)[0], d
    assert results[1]["billable_clicks"] > results[0]["billable_clicks"] > 0 and results[2]["billable_clicks"] > 0
