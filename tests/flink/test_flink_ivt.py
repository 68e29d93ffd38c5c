"""The stream's IVT verdicts per click (the job's real SQL and the jar's Java functions, on a
MiniCluster) equal the reference `common.ivt.evaluate` for every click of tests/ivt_cases.py;
tests/glue/test_ivt_cross_engine.py holds the Glue job to the same reference on the same rows,
so the two engines agree click by click.

The job counts, it does not list verdicts; the test reads the two views the counts come from:
`clicks_ivt` (each click's verdict on arrival) and `ivt_corrections` (clicks an IP burst moved
from valid to suspect afterwards). Parallelism 1 and a file in (event_time, ingest_time,
click_id) order make arrival order the reference's election order."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

import harness
from aggregate.job import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ivt_cases  # noqa: E402
from common import ivt  # noqa: E402


def stream_verdicts(rows: list[dict], tmp_path: Path, **props: str) -> dict[str, str]:
    settings, t_env = harness.file_source_env(rows, tmp_path, **props)
    pipeline.build_output_in(t_env, settings)
    result = t_env.execute_sql("SELECT click_id, verdict, FALSE FROM clicks_ivt UNION ALL "
                               "SELECT click_id, 'suspect', TRUE FROM ivt_corrections")
    arrival: dict[str, str] = {}
    corrected: Counter = Counter()
    with result.collect() as it:
        for click_id, verdict, is_correction in it:
            if is_correction:
                corrected[click_id] += 1
            else:
                assert click_id not in arrival, f"{click_id} twice"
                arrival[click_id] = verdict
    assert all(n == 1 and arrival[c] == ivt.VALID for c, n in corrected.items()), corrected
    return {c: ivt.SUSPECT if c in corrected else v for c, v in arrival.items()}


@pytest.fixture(scope="module")
def rows():
    return ivt_cases.build()


def test_cases_cover_every_rule_and_verdict(rows):
    got = ivt.evaluate(rows)
    reasons = Counter(r for v in got.values() for r in v.reasons)
    assert set(reasons) == set(ivt.REASONS) and min(reasons.values()) >= 10, reasons
    assert Counter(v.verdict for v in got.values())[ivt.VALID] > 1000


def test_stream_verdicts_equal_the_reference_per_click(rows, tmp_path):
    want = {c: v.verdict for c, v in ivt.evaluate(rows).items()}
    got = stream_verdicts(rows, tmp_path)
    assert len(got) == len(rows)
    wrong = {c: (got[c], want[c]) for c in want if got[c] != want[c]}
    assert not wrong, f"{len(wrong)} clicks differ, e.g. {list(wrong.items())[:5]}"


def test_rules_switched_off_and_thresholds_follow_the_settings(rows, tmp_path):
    config = ivt.IvtConfig(rules=frozenset({ivt.IP_BURST, ivt.TOO_FAST}), burst_threshold=15,
                           min_click_delay_ms=2_000)
    want = {c: v.verdict for c, v in ivt.evaluate(rows, config).items()}
    got = stream_verdicts(rows, tmp_path, ivt_rules="ip_burst,too_fast",
                          ivt_burst_threshold="15", ivt_min_click_delay_ms="2000")
    assert got == want
    assert Counter(want.values())[ivt.SUSPECT] == 25  # only the 25-click spray bursts at 15
