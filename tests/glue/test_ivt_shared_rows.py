"""Cross-engine, the Glue half: the billing job's verdict of every click of tests/ivt_cases.py
equals `common.ivt.evaluate`'s, verdict and reasons. tests/flink/test_flink_ivt.py holds the
Flink job to the same reference on the same rows, so the two engines agree click by click."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from common import ivt
from glue_jobs.billing.run import read_raw
from glue_jobs.billing.transform import BillingSettings, flag_clicks
from tests.glue.scenario import Scenario

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ivt_cases  # noqa: E402


def test_glue_verdicts_equal_the_reference_on_the_shared_rows(spark, tmp_path):
    rows = ivt_cases.build()
    world = Scenario(ivt_cases.DAY)
    world.rows = [(dict(c), c["ingest_time"]) for c in rows]  # arrival = ingest, one copy each
    root = tmp_path / "raw" / "clicks"
    world.write(root)
    raw, _ = read_raw(spark, str(root), ivt_cases.DAY, BillingSettings())
    got = {r.click_id: (r.verdict, r.reasons)
           for r in flag_clicks(raw, ivt_cases.DAY, BillingSettings())
           .select("click_id", "verdict", "reasons").collect()}
    want = {cid: (v.verdict, ivt.encode_reasons(v.reasons))
            for cid, v in ivt.evaluate(rows).items()}
    assert len(got) == len(rows)
    wrong = {c: (got.get(c), w) for c, w in want.items() if got.get(c) != w}
    assert not wrong, f"{len(wrong)} clicks differ, e.g. {list(wrong.items())[:5]}"
    assert Counter(v for v, _ in want.values()).keys() == {"valid", "suspect", "invalid"}
