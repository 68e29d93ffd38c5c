"""flink_changelog_mode (pipeline.sink_view): upsert drops exactly the -U rows of the output
changelog, in order, and keeps every -D; retract passes the changelog as the planner made it.
The oracle is the retract run of the same query (the MiniCluster test checks the upsert output
of the whole job against the brute-force oracle)."""
from __future__ import annotations

import pytest

from aggregate.job import pipeline, sql
from aggregate.job.main import connector_jar_uri
from aggregate.job.settings import JobSettings

# counts per ad, and the leading ad (a Top-1 over the counts): +I/-U/+U for the counts, -D/+I when
# the lead changes
QUERY = """
WITH counts AS (SELECT ad, COUNT(*) AS clicks FROM (VALUES
    ('a'), ('b'), ('b'), ('a'), ('c'), ('c'), ('c')) AS t(ad) GROUP BY ad)
SELECT 'agg' AS kind, ad, clicks FROM counts
UNION ALL
SELECT 'top', ad, clicks FROM (
  SELECT *, ROW_NUMBER() OVER (ORDER BY clicks DESC, ad ASC) AS rn FROM counts) WHERE rn = 1"""


def changelog(mode: str) -> list[tuple[str, tuple]]:
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)  # one task: the order of the rows is deterministic
    t_env = StreamTableEnvironment.create(env, EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("pipeline.jars", connector_jar_uri())
    t_env.get_config().set("table.exec.mini-batch.enabled", "false")  # a row per change
    settings = JobSettings(aws_region="us-east-1", changelog_mode=mode)
    t_env.create_temporary_view(sql.OUTPUT_VIEW, t_env.sql_query(QUERY))  # as build_output names it
    view = pipeline.sink_view(t_env, settings, t_env.from_path(sql.OUTPUT_VIEW))
    with t_env.from_path(view).execute().collect() as rows:
        return [(str(r.get_row_kind()), tuple(r)) for r in rows]


@pytest.fixture(scope="module")
def both():
    return changelog("retract"), changelog("upsert")


def test_upsert_drops_exactly_the_update_before_rows(both):
    retract, upsert = both
    kinds = {k for k, _ in retract}
    assert {"-U", "-D"} <= kinds  # the query makes both: the test can fail
    assert upsert == [r for r in retract if r[0] != "-U"]
    assert any(k == "-D" and row[0] == "top" for k, row in upsert)  # a lead change's -D stays


def test_upsert_replay_ends_in_the_retract_replay_state(both):
    """The consumer rule (newest row per key, -D deletes) gives the same table either way."""
    def replay(rows):
        state = {}
        for kind, (k, ad, clicks) in rows:
            if kind in ("+I", "+U"):
                state[(k, ad)] = clicks
            elif kind == "-D":
                state.pop((k, ad))
        return state

    retract, upsert = both
    assert replay(upsert) == replay(retract) == {
        ("agg", "a"): 2, ("agg", "b"): 2, ("agg", "c"): 3, ("top", "c"): 3}
