"""SQL text of the click-aggregation job: pure functions of `JobSettings`, no Flink import.

Pipeline (all per-row logic in Flink SQL, no Python UDF):

  clicks (source: the clicks Kinesis stream; locally the same on the emulator)
    STAGE 1 (translated with mini-batch OFF, see `pipeline.py` for why)
    -> Deduplicate keep-first by click_id (proctime; append-only; state TTL = dedup_ttl_s)
    -> classify: on_time = CURRENT_WATERMARK IS NULL OR CURRENT_WATERMARK < minute_end + lateness
                 wm_ms   = CURRENT_WATERMARK as epoch ms (NULL before the first watermark)
    -> the per-click IVT rules (common/ivt.py): is_bot (IS_BOT_UA), is_dc (DATACENTER_PROVIDER),
       is_fast; the two functions are Java in the job jar, with the jar's copy of ivt_data
    => `clicks_classified` (append-only DataStream handed to stage 2)
  events (optional source: the events stream; impressions and conversions)
    STAGE 1 -> Deduplicate keep-first by (event_type, event_id), the same late rule against the
       events' own watermark (`classify_events_query`) => `events_classified` (DataStream)
    STAGE 2 (mini-batch ON, TWO_PHASE aggregation)
    -> the group IVT rules (see `ivt_views`): running counts in arrival order per impression,
       per (user, ad, repeat bucket), per (ip, burst bucket) => each click's arrival verdict
       (valid | suspect | invalid) => `clicks_verdicts` (DataStream boundary: `aggregate_views`),
       plus one correction row per click that an IP burst turns from valid to suspect after it
       was counted (`correction_view`) => `ivt_corrected` (DataStream boundary); all append-only
    -> counted = on-time clicks (+1 under their verdict) UNION ALL on-time corrections
       (-1 valid, +1 suspect) UNION ALL on-time events; billable = valid
    -> one GROUP BY per level (ad, campaign, advertiser) and resolution (1m, 5m, 1h, 1d):
       LocalGroupAggregate -> GlobalGroupAggregate
    -> Top-M ads per bucket for 1m, 1h and 1d over the ad aggregates (Rank UpdateFastStrategy,
       order clicks DESC, ad_id ASC for a deterministic tie-break; no rank number column). A
       'top' row is a full copy of the ad's 'agg' row (same version), so unused columns are not
       pruned and the planner reuses ONE aggregate per resolution for both outputs.
    -> late clicks GROUP BY (minute, ad_id)
    => `clickagg_output`: ONE changelog with a `kind` column
       ('agg' | 'campaign' | 'advertiser' | 'top' | 'late').

Why a rule on the 1-minute bucket: every coarser bucket is a union of whole minutes, so a click
is either in all four resolutions or in none, and a 5m/1h/1d aggregate always equals the sum of
its minutes.

Output row schema: see OUTPUT_COLUMNS. On AWS the changelog is written with
`'format' = 'debezium-json'`: +I and +U become {"before": null, "after": ROW, "op": "c"}; -U and
-D become {"before": ROW, "after": null, "op": "d"} (Flink's debezium-json serializer never writes
"u"). Consumers therefore see an update as a "d" of the old version followed by a "c" of the new.

Consumer rules (each row carries `version`, strictly increasing per key on every emission):
  kind 'agg' / 'campaign' / 'advertiser' / 'late', key (kind, resolution, bucket_start, entity_id):
      "c": upsert if version > stored version;  "d": ignore (aggregates are never deleted).
  kind 'top', key (resolution, bucket_start, ad_id):
      "c": upsert if version > stored version;  "d": delete the entry if stored version <= the
      deleted row's version (remember the deleted version as a tombstone so that a reordered
      older "c" cannot resurrect it).
  Finality of a bucket: final iff watermark >= bucket_end + allowed_lateness (`watermark` is the
  largest event-time watermark seen at the late-decision operator when a row of that key was
  counted; it may be NULL at the very start).
"""
from __future__ import annotations

from typing import Sequence

from common import ivt
from common.records import CLICK_RECORD_SCHEMA, EVENT_RECORD_SCHEMA
from common.schema import parse_ivt_rules
from common.times import MINUTE_MS, RESOLUTIONS  # the one resolution map (query API, serving store)

from .settings import JobSettings, stream_name

SOURCE_TABLE = "clicks"
CLASSIFIED_TABLE = "clicks_classified"
EVENTS_SOURCE_TABLE = "events"  # impressions and conversions (the events stream; optional)
EVENTS_CLASSIFIED_TABLE = "events_classified"
# Each click's arrival verdict and the IVT correction join's output: views handed over as
# DataStreams (pipeline.py) and read back as these tables; see `aggregate_views` for why.
VERDICTS_VIEW, VERDICTS_TABLE = "clicks_ivt", "clicks_verdicts"
CORRECTIONS_VIEW, CORRECTIONS_TABLE = "ivt_corrections", "ivt_corrected"
IMPRESSION, CONVERSION = "impression", "conversion"  # ingest.events' types on the events stream
OUTPUT_VIEW = "clickagg_output"
UPSERT_VIEW = "clickagg_upserts"  # OUTPUT_VIEW without -U rows (changelog_mode upsert, pipeline.sink_view)
# The budget lane (docs/budget.md): spend per campaign, translated on its own with mini-batch
# latency budget_emit_interval_ms and handed over as a changelog DataStream (pipeline.py), and
# the pulse, a datagen tick the job turns into one row per interval.
SPENT_VIEW, SPEND_VIEW, SPEND_TABLE = "spent", "spend_rows", "spend_lane"
PULSE_SOURCE_TABLE, PULSE_VIEW = "pulse_ticks", "pulse_rows"
SPEND_RESOLUTIONS = ("1m", "1d")  # 1d: spent today; 1m: the velocity's input
SINK_TABLE = "clickagg_out"
PIPELINE_NAME = "clickagg-aggregate"

LEADERBOARD_RESOLUTIONS = ("1m", "1h", "1d")  # serving.keys.LEADERBOARD_RESOLUTIONS' keys

# SQL name -> class in the job jar (functions/aggregate/src/main/java/com/clickagg/flink/ivt)
IVT_FUNCTIONS = {
    "IS_BOT_UA": "com.clickagg.flink.ivt.IsBotUa",
    "DATACENTER_PROVIDER": "com.clickagg.flink.ivt.DatacenterProvider",
}

_FLINK_TYPES = {"string": "STRING", "bigint": "BIGINT", "timestamp_ms": "BIGINT", "int": "INT"}

# The aggregate levels: 'agg' rows are per ad; the rollups per campaign and per advertiser are
# aggregated from the same counted rows (kind = level name), keyed by the level's id.
AD, CAMPAIGN, ADVERTISER = "agg", "campaign", "advertiser"
ROLLUP_LEVELS = {CAMPAIGN: "campaign_id", ADVERTISER: "advertiser_id"}

# The one output changelog. (name, Flink SQL type, meaning per kind)
OUTPUT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("kind", "STRING", "'agg' (per ad) | 'campaign' | 'advertiser' (rollups) | 'top' | 'late' | "
                       "'spend' | 'pulse' (the budget lane, docs/budget.md)"),
    ("resolution", "STRING", "'1m' | '5m' | '1h' | '1d' (agg, rollups); '1m' | '1h' | '1d' (top); '1m' (late)"),
    ("bucket_start", "BIGINT", "bucket start, epoch ms UTC (1d buckets are UTC days)"),
    ("entity_id", "STRING", "the key's id: ad_id (agg, top, late), campaign_id, advertiser_id; "
                            "the Kinesis partition key"),
    ("ad_id", "STRING", "the ad (agg, top, late); NULL in rollups"),
    ("campaign_id", "STRING", "MAX over the bucket (an ad belongs to one campaign); NULL in "
                              "advertiser rollups"),
    ("advertiser_id", "STRING", "MAX over the bucket (an ad belongs to one advertiser)"),
    ("clicks", "BIGINT", "agg, top: counted (deduplicated, on-time) clicks; late: NULL"),
    ("billable_clicks", "BIGINT", "agg, top: counted clicks with verdict valid; late: NULL"),
    ("cost_micros", "BIGINT", "agg, top: SUM(cost_micros) of counted clicks; late: of dropped clicks"),
    ("billable_cost_micros", "BIGINT", "agg, top: SUM(cost_micros) of billable clicks; late: NULL"),
    ("suspect_clicks", "BIGINT", "agg, top: counted clicks with verdict suspect; late: NULL"),
    ("invalid_clicks", "BIGINT", "agg, top: counted clicks with verdict invalid; late: NULL"),
    ("impressions", "BIGINT", "agg, top: counted impressions (distinct impression_id, on time); late: NULL"),
    ("conversions", "BIGINT", "agg, top: counted conversions (distinct conversion_id, on time, "
                              "by occurred_at); late: NULL"),
    ("conversion_value_micros", "BIGINT", "agg, top: SUM(value_micros) of counted conversions; late: NULL"),
    ("late_dropped", "BIGINT", "late: distinct clicks dropped as late in this minute; else NULL"),
    ("version", "BIGINT", "strictly increasing per key on every emitted row (top: the agg version)"),
    ("max_event_time", "BIGINT", "MAX(event_time) ms of the rows counted (late: dropped)"),
    ("watermark", "BIGINT", "MAX watermark (ms) seen at the late decision; NULL if none yet"),
)
OUTPUT_COLUMN_NAMES = tuple(c[0] for c in OUTPUT_COLUMNS)

# Stage-1 output = stage-2 input (the logical table `clicks_classified`, plus `proctime`).
CLASSIFIED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("click_id", "STRING"),
    ("ad_id", "STRING"),
    ("campaign_id", "STRING"),
    ("advertiser_id", "STRING"),
    ("user_id", "STRING"),
    ("event_time", "BIGINT"),
    ("cost_micros", "BIGINT"),
    ("minute_start", "BIGINT"),
    ("on_time", "BOOLEAN"),
    ("wm_ms", "BIGINT"),
    # IVT inputs: the group keys and the per-click rules (common/ivt.py), computed in stage 1
    ("ip", "STRING"),
    ("impression_id", "STRING"),
    ("is_bot", "BOOLEAN"),
    ("is_dc", "BOOLEAN"),
    ("is_fast", "BOOLEAN"),
)

# Stage-1 output of the events source = stage-2 input `events_classified`.
EVENTS_CLASSIFIED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_type", "STRING"),
    ("ad_id", "STRING"),
    ("campaign_id", "STRING"),
    ("advertiser_id", "STRING"),
    ("event_time", "BIGINT"),
    ("value_micros", "BIGINT"),
    ("on_time", "BOOLEAN"),
    ("wm_ms", "BIGINT"),
)


def q(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _with(options: dict[str, str]) -> str:
    return ",\n  ".join(f"{q(k)} = {q(v)}" for k, v in options.items())


def _bucket(col: str, size_ms: int) -> str:
    return f"({col} - MOD({col}, {size_ms}))"


def _epoch_ms(ts: str) -> str:
    """A TIMESTAMP_LTZ expression as epoch milliseconds (BIGINT)."""
    return f"EXTRACT(EPOCH FROM {ts}) * 1000 + EXTRACT(MILLISECOND FROM {ts})"


# ----------------------------------------------------------------------------------- config
def stage1_options(s: JobSettings) -> dict[str, str]:
    """Table options while translating stage 1 (dedup + late classification).

    Mini-batch must be OFF here: with it on, the planner puts a ProcTime MiniBatchAssigner right
    after the watermark assigner and that operator replaces event-time watermarks with
    processing-time batch markers, so CURRENT_WATERMARK downstream would return wall-clock time.
    """
    return {
        "table.local-time-zone": "UTC",
        "table.exec.mini-batch.enabled": "false",
        "table.exec.state.ttl": f"{s.dedup_ttl_s} s",
        "table.exec.source.idle-timeout": f"{s.source_idle_timeout_ms} ms",
    }


def stage2_options(s: JobSettings) -> dict[str, str]:
    """Table options while translating stage 2 (billable dedup, aggregates, leaderboards).

    `table.exec.state.ttl` (= dedup_ttl_s) applies to the billable dedup and the Rank; each
    aggregate overrides it with a STATE_TTL hint sized to its bucket (see `_agg_ttl_s`).
    """
    return {
        "table.local-time-zone": "UTC",
        "table.exec.mini-batch.enabled": "true",
        "table.exec.mini-batch.allow-latency": f"{s.minibatch_latency_ms} ms",
        "table.exec.mini-batch.size": str(s.minibatch_size),
        "table.optimizer.agg-phase-strategy": "TWO_PHASE",
        "table.exec.state.ttl": f"{s.dedup_ttl_s} s",
    }


# Chained operators hand each other the same record instead of a serializer copy per hop and
# per consumer of a fan-out (bench/jfr_operators.py on 1M clicks put copies inside the ~31 % of
# Calc; with this and pipeline.to_row_data_stream the whole job measured +2 %, within noise:
# README-flink). Flink SQL's operators copy what they keep (state, bundles) themselves, and every
# record that crosses a task boundary is deserialized into a new object; as Nexmark runs.
OBJECT_REUSE = {"pipeline.object-reuse": "true"}


def execution_options(s: JobSettings, *, local: bool) -> dict[str, str]:
    """Cluster/job options. Checkpointing only locally: Managed Flink configures its own."""
    opts = {"pipeline.name": PIPELINE_NAME, **OBJECT_REUSE}
    if s.parallelism:
        opts["parallelism.default"] = str(s.parallelism)
    if local and s.checkpoint_dir:
        opts.update(
            {
                "execution.checkpointing.interval": f"{s.checkpoint_interval_ms} ms",
                "execution.checkpointing.mode": "EXACTLY_ONCE",
                "execution.checkpointing.storage": "filesystem",
                "execution.checkpointing.dir": s.checkpoint_dir,
                "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
                "execution.checkpointing.num-retained": "2",
            }
        )
    return opts


# -------------------------------------------------------------------------------------- DDL
def source_columns(s: JobSettings, watermark: str = "SOURCE_WATERMARK()",
                   record_schema: dict[str, str] = CLICK_RECORD_SCHEMA) -> str:
    """The record's columns (clicks; the events stream's with EVENT_RECORD_SCHEMA),
    rowtime/proctime and the watermark. On Kinesis the watermark is made per shard inside the
    source (see source_options): rowtime - watermark_delay_s; a source without that (the
    benchmark's bounded files) passes `watermark_expression(s)`."""
    cols = [f"`{name}` {_FLINK_TYPES[t]}" for name, t in record_schema.items()]
    cols += [
        "`rowtime` AS TO_TIMESTAMP_LTZ(`event_time`, 3)",
        "`proctime` AS PROCTIME()",
        f"WATERMARK FOR `rowtime` AS {watermark}",
    ]
    return ",\n  ".join(cols)


def watermark_expression(s: JobSettings) -> str:
    """The SQL form of the per-shard watermark (`EventTimeWatermarks` in the jar)."""
    return f"`rowtime` - INTERVAL '{s.watermark_delay_s}' SECOND"


_JSON_OPTIONS = {
    "format": "json",
    "json.fail-on-missing-field": "false",
    "json.ignore-parse-errors": "true",
}


def connection_options(s: JobSettings) -> dict[str, str]:
    """Where the streams live: the only options in which AWS and the local emulator differ.

    On AWS: the region (the service role's credentials). Locally: also the emulator's endpoint
    and HTTP/1.1 for the sink's async client (its default, HTTP/2, needs TLS; the emulator is
    plain HTTP). Credentials come from the default provider chain (the emulator's fake keys in
    the environment) on both sides.
    """
    opts = {"aws.region": s.aws_region}
    if s.aws_endpoint:
        opts.update({"aws.endpoint": s.aws_endpoint, "aws.http.protocol.version": "HTTP1_1"})
    return opts


def source_options(s: JobSettings, stream_arn: str | None = None) -> dict[str, str]:
    """The clicks stream through `clickagg-kinesis`: the connector's `kinesis` source
    (flink-connector-kinesis 4.3.0-1.19: FlinkKinesisConsumer, POLLING, per-shard sequence numbers
    in checkpoints) with the event-time watermark made PER SHARD inside it (our factory in the
    same jar, functions/aggregate/src/main/java): the connector's table source cannot take a SQL
    watermark per shard, and one watermark over several shards judges a lagging shard's clicks
    late against its siblings' progress."""
    opts = {
        "connector": "clickagg-kinesis",
        "scan.watermark.event-time-field": "event_time",
        "scan.watermark.delay": f"{s.watermark_delay_s} s",
        "stream": stream_name(stream_arn or s.clicks_stream_arn),
        **connection_options(s),
        "scan.stream.initpos": s.source_init_position,
        "scan.shard.getrecords.intervalmillis": str(s.getrecords_interval_ms),
        "scan.shard.getrecords.maxrecordcount": str(s.getrecords_max_records),
        # a shard without records this long stops holding the subtask's watermark back
        "scan.shard.idle.interval": str(s.source_idle_timeout_ms),
        # shards spread evenly over the source subtasks (the default hashes shard ids, which can
        # leave a subtask without shards while another has several)
        "scan.shard-assigner": "uniform",
    }
    if s.source_init_position == "AT_TIMESTAMP":
        opts["scan.stream.initpos-timestamp"] = s.source_init_timestamp
    return {**opts, **_JSON_OPTIONS}


def source_ddl(s: JobSettings, table: str = SOURCE_TABLE) -> str:
    """The click source: the clicks Kinesis stream (on AWS and locally alike)."""
    return (
        f"CREATE TABLE `{table}` (\n  {source_columns(s)}\n) WITH (\n  {_with(source_options(s))}\n)"
    )


def events_source_ddl(s: JobSettings, table: str = EVENTS_SOURCE_TABLE) -> str:
    """The events source (impressions, conversions): the events Kinesis stream, read like the
    clicks stream (per-shard watermarks, same delay); its watermark is its own, so a quiet or
    lagging events stream never judges clicks late, nor clicks events."""
    cols = source_columns(s, record_schema=EVENT_RECORD_SCHEMA)
    opts = source_options(s, s.events_stream_arn)
    return f"CREATE TABLE `{table}` (\n  {cols}\n) WITH (\n  {_with(opts)}\n)"


def sink_options(s: JobSettings, connector: str = "kinesis") -> dict[str, str]:
    if connector == "kinesis":
        return {
            "connector": "kinesis",
            "stream": stream_name(s.aggregates_stream_arn),
            **connection_options(s),
            "format": "debezium-json",
            "sink.partitioner-field-delimiter": "|",
            # One PutRecords in flight per sink task (the connector's default is 50): two in
            # flight at once may land in either order (Kinesis orders a shard's records as they
            # arrive), so a key's later version could precede an earlier one on the stream. The
            # consumer's version check keeps state right either way, but the changelog then stops
            # replaying in order; the MiniCluster test caught it under load (version 38 after 69).
            # A partial failure's retried entries can still come late: that is the consumer's rule.
            "sink.requests.max-inflight": "1",
            # NOT set: "sink.flush-buffer.timeout" (default 5 s, measured locally as most of the
            # budget lane's latency). With 500 ms the MiniCluster's leaderboard and changelog
            # tests failed 2 runs of 4 (versions replayed out of order); docs/budget.md
        }
    if connector in ("blackhole", "print"):
        return {"connector": connector}
    raise ValueError(f"unsupported sink connector {connector!r}")


def sink_ddl(s: JobSettings, table: str = SINK_TABLE, connector: str = "kinesis") -> str:
    """The one output table: the aggregates Kinesis stream, debezium-json, partition key =
    entity_id (the ad's, campaign's or advertiser's id). `connector='blackhole'` is what the
    benchmark uses."""
    opts = sink_options(s, connector)
    cols = ",\n  ".join(f"`{n}` {t}" for n, t, _ in OUTPUT_COLUMNS)
    partitioned = "PARTITIONED BY (`entity_id`)\n" if opts["connector"] == "kinesis" else ""
    return f"CREATE TABLE `{table}` (\n  {cols}\n)\n{partitioned}WITH (\n  {_with(opts)}\n)"


# ------------------------------------------------------------------------------ the pipeline
def ivt_functions_ddl() -> list[str]:
    """The Java functions of the job jar (src/main/java/com/clickagg/flink/ivt) that the rules
    bot_ua and datacenter_ip call; their data is the jar's copy of functions/common/ivt_data."""
    return [f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{cls}' LANGUAGE JAVA"
            for name, cls in IVT_FUNCTIONS.items()]


def _rules(s: JobSettings) -> frozenset:
    return parse_ivt_rules(s.ivt_rules)


def ivt_flags(s: JobSettings) -> dict[str, str]:
    """The per-click rules (common/ivt.py) as SQL over one click: is_bot, is_dc, is_fast. A rule
    switched off by `ivt_rules` is the constant FALSE (the planner drops it)."""
    on = _rules(s)
    return {
        "is_bot": "COALESCE(IS_BOT_UA(user_agent), FALSE)" if ivt.BOT_UA in on else "FALSE",
        "is_dc": "(DATACENTER_PROVIDER(ip) IS NOT NULL)" if ivt.DATACENTER_IP in on else "FALSE",
        "is_fast": (f"(issued_at IS NOT NULL AND ingest_time IS NOT NULL AND "
                    f"ingest_time - issued_at < {s.ivt_min_click_delay_ms})")
        if ivt.TOO_FAST in on else "FALSE",
    }


# The stream's arrival order and the watermark a record met, and their definitions in the rebuild
# (batch mode over the raw archive: `rebuild_*` below). Everything else is the same SQL text.
STREAM_ORDER = "`proctime`"
ARRIVAL_ORDER = "`arrival_ms`, `click_id`"  # the rebuild's arrival order: ingest time, then id
_STREAM_WM = "CASE WHEN CURRENT_WATERMARK(`rowtime`) IS NULL THEN CAST(NULL AS BIGINT) " \
             "ELSE " + _epoch_ms("CURRENT_WATERMARK(`rowtime`)") + " END"


def _on_time(s: JobSettings, minute_start: str) -> str:
    """The late rule on the 1-minute bucket (one definition: stream, events, rebuild)."""
    return f"(wm_ms IS NULL OR wm_ms < {minute_start} + {MINUTE_MS + s.allowed_lateness_ms})"


def classify_query(s: JobSettings, source: str = SOURCE_TABLE, *, order: str = STREAM_ORDER,
                   wm: str = _STREAM_WM, extra: str = "") -> str:
    """STAGE 1: dedup by click_id (keep first), the late rule on the 1-minute bucket and the
    per-click IVT rules (evaluated once per distinct click, after the dedup). `order`, `wm` and
    `extra` (columns carried through): the rebuild's arrival order and watermark
    (`rebuild_classify_query`)."""
    flags = ",\n    ".join(f"{expr} AS {name}" for name, expr in ivt_flags(s).items())
    return f"""
SELECT click_id, ad_id, campaign_id, advertiser_id, user_id, event_time, cost_micros,
  minute_start,
  {_on_time(s, 'minute_start')} AS on_time,
  wm_ms, ip, impression_id, is_bot, is_dc, is_fast{extra}
FROM (
  SELECT click_id, ad_id, campaign_id, advertiser_id, user_id, event_time, cost_micros,
    {_bucket('event_time', MINUTE_MS)} AS minute_start,
    {wm} AS wm_ms,
    ip, impression_id,
    {flags}{extra}
  FROM (
    SELECT click_id, ad_id, campaign_id, advertiser_id, user_id, event_time,
      COALESCE(cost_micros, CAST(0 AS BIGINT)) AS cost_micros, ip, user_agent, impression_id,
      issued_at, ingest_time, {'`rowtime`' if order == STREAM_ORDER else 'wm_ms' + extra},
      ROW_NUMBER() OVER (PARTITION BY click_id ORDER BY {order} ASC) AS rn
    FROM `{source}`
    WHERE click_id IS NOT NULL AND ad_id IS NOT NULL AND event_time IS NOT NULL AND event_time >= 0
  )
  WHERE rn = 1
)""".strip()


def classify_events_query(s: JobSettings, source: str = EVENTS_SOURCE_TABLE, *,
                          order: str = STREAM_ORDER, wm: str = _STREAM_WM) -> str:
    """STAGE 1 of the events source: dedup by (event_type, event_id) keep first (an impression
    is counted once per impression_id, a conversion once per conversion_id: ingest publishes
    impressions unclaimed, so resends reach the stream), then the clicks' late rule on the
    1-minute bucket of event_time (served at | occurred_at), against the events' own watermark.
    Conversions without an ad (only a click_id named the click) are left to the nightly batch,
    which joins them with their click: the stream keeps no click state to look them up.
    `order`, `wm`: as classify_query's."""
    return f"""
SELECT event_type, ad_id, campaign_id, advertiser_id, event_time, value_micros,
  {_on_time(s, _bucket('event_time', MINUTE_MS))} AS on_time, wm_ms
FROM (
  SELECT event_type, ad_id, campaign_id, advertiser_id, event_time,
    COALESCE(value_micros, CAST(0 AS BIGINT)) AS value_micros,
    {wm} AS wm_ms,
    ROW_NUMBER() OVER (PARTITION BY event_type, event_id ORDER BY {order} ASC) AS rn
  FROM `{source}`
  WHERE event_type IN ({q(IMPRESSION)}, {q(CONVERSION)}) AND event_id IS NOT NULL
    AND ad_id IS NOT NULL AND event_time IS NOT NULL AND event_time >= 0
)
WHERE rn = 1""".strip()


def _agg_ttl_s(s: JobSettings, size_ms: int) -> int:
    """Idle TTL of an aggregate key: the bucket is open for its length plus the lateness; the
    margin covers processing-time lag (TTL counts processing time since the key's last update)."""
    return size_ms // 1000 + s.allowed_lateness_s + s.watermark_delay_s + s.agg_state_margin_s


def _running_count(partition: str, order: str = STREAM_ORDER) -> str:
    """How many clicks of this group arrived so far, this one included (arrival order)."""
    return (f"COUNT(*) OVER (PARTITION BY {partition} ORDER BY {order} "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")


def ivt_views(s: JobSettings, classified: str = CLASSIFIED_TABLE, *,
              order: str = STREAM_ORDER) -> list[str]:
    """The IVT verdict of every distinct click (stage 2, all append-only), up to `clicks_ivt`
    (`correction_view` makes `ivt_corrections` over it):

    clicks_ivt       every click of `classified` with its arrival verdict: the per-click rules
                     from stage 1, and for the group rules the click's rank in its group by
                     ARRIVAL (a running COUNT(*) OVER per group: impression, (user, ad, repeat
                     bucket), (ip, burst bucket)). Rank > 1 = impression_repeat / user_repeat;
                     rank > N = ip_burst.
    ivt_corrections  ip_burst also flags the FIRST N clicks of a bucket once its (N+1)th
                     arrives: a regular join of those clicks (only the ones valid at arrival:
                     for the others the verdict does not change) with the (N+1)th click of
                     their bucket; one row per click to move from valid to suspect.

    So the final verdict of a click = its arrival verdict, corrected once; per click it equals
    common/ivt.py's when every group's first click (by event_time, ingest_time, click_id) is
    also its first arrival (the batch elects by event time, the stream by arrival: the
    difference shows in the nightly reconciliation). Groups are remembered for
    table.exec.state.ttl (= dedup_ttl_s) after their last click; the correction join keeps a
    click for burst_memory_s (processing time): a bucket that overflows later than that after a
    click is corrected by the nightly billing only (the join's state is the bulk of the job's:
    every click valid on arrival, so it is kept short)."""
    on, n = _rules(s), s.ivt_burst_threshold
    rb_ms, bb_ms = s.repeat_window_s * 1000, s.ivt_burst_window_ms
    # a NULL key never groups: it is replaced by the (unique) click_id, flagged apart
    counts = [
        ("n_imp", ivt.IMPRESSION_REPEAT,
         "impression_id IS NULL, COALESCE(impression_id, click_id)"),
        ("n_user", ivt.USER_REPEAT,
         f"user_id IS NULL, COALESCE(user_id, click_id), ad_id, {_bucket('event_time', rb_ms)}"),
        ("n_burst", ivt.IP_BURST, "ip IS NULL, COALESCE(ip, click_id), burst_start"),
    ]
    views, source = [], "clicks_ivt_in"
    views.append(f"""CREATE TEMPORARY VIEW {source} AS
SELECT *, {_bucket('event_time', bb_ms)} AS burst_start FROM `{classified}`""")
    for column, rule, partition in counts:
        expr = _running_count(partition, order) if rule in on else "CAST(1 AS BIGINT)"
        views.append(f"""CREATE TEMPORARY VIEW clicks_ivt_{column} AS
SELECT *, {expr} AS {column} FROM {source}""")
        source = f"clicks_ivt_{column}"
    invalid = "is_bot OR is_fast OR n_imp > 1"
    other_suspect = "is_dc OR n_user > 1"
    burst = f"ip IS NOT NULL AND n_burst > {n}"
    views.append(f"""CREATE TEMPORARY VIEW {VERDICTS_VIEW} AS
SELECT click_id, ad_id, campaign_id, advertiser_id, event_time, cost_micros, on_time, wm_ms,
  ip, burst_start, n_burst,
  CASE WHEN {invalid} THEN '{ivt.INVALID}' WHEN {other_suspect} OR ({burst}) THEN '{ivt.SUSPECT}'
       ELSE '{ivt.VALID}' END AS verdict,
  CASE WHEN {invalid} THEN {_ONE} WHEN {other_suspect} THEN {_ONE} WHEN {burst} THEN {_TWO}
       ELSE {_ONE} END AS {VERSION_WEIGHT}
FROM {source}""")
    return views


# A counted row's share of its aggregates' `version` (SUM of it, not COUNT(*)): a click that an
# IP burst makes suspect weighs 2 whichever way it gets there: on arrival after the burst's
# (N+1)th click (one row, weight 2), or valid on arrival and corrected later (two rows of weight
# 1). Arrival order decides the way, and it can change when a restored job re-reads its shards:
# with COUNT(*) the same final counts then carried a version one lower than an earlier run's
# row still missing the correction, which consumers (newest version wins) kept instead.
VERSION_WEIGHT = "version_weight"
_ONE, _TWO = "CAST(1 AS BIGINT)", "CAST(2 AS BIGINT)"


def correction_view(s: JobSettings, verdicts: str = VERDICTS_VIEW) -> str:
    """`ivt_corrections` over `verdicts` (the arrival verdicts): see `ivt_views`."""
    on, n = _rules(s), s.ivt_burst_threshold
    burst_on = ivt.IP_BURST in on
    memory = f"{s.burst_memory_s} s"
    return f"""CREATE TEMPORARY VIEW {CORRECTIONS_VIEW} AS
SELECT /*+ STATE_TTL('c' = '{memory}', 't' = '{memory}') */ c.click_id, c.ad_id, c.campaign_id, c.advertiser_id, c.event_time, c.cost_micros,
  c.on_time,
  CASE WHEN t.wm_ms IS NULL OR c.wm_ms > t.wm_ms THEN c.wm_ms ELSE t.wm_ms END AS wm_ms
FROM (SELECT * FROM `{verdicts}`
      WHERE ip IS NOT NULL AND n_burst <= {n} AND verdict = '{ivt.VALID}') AS c
JOIN (SELECT ip, burst_start, wm_ms FROM `{verdicts}`
      WHERE ip IS NOT NULL AND n_burst = {n + 1}) AS t
  ON c.ip = t.ip AND c.burst_start = t.burst_start
WHERE {'TRUE' if burst_on else 'FALSE'}"""


def _metric_columns(alias: str = "") -> str:
    return ", ".join(f"{alias}{c}" for c in METRIC_COLUMNS)


# The metric columns of 'agg', 'top' and rollup rows (OUTPUT_COLUMNS' order) and their aggregate
# over `counted`. `clicks` and `impressions` are COUNTs of 1 / NULL flags: the planner knows COUNT
# only grows, which lets the Top-N (ordered by clicks) use UpdateFastStrategy; the verdict counts
# are SUMs because a correction lowers billable_clicks.
METRIC_AGGREGATES: dict[str, str] = {
    "clicks": "COUNT(is_click)",
    "billable_clicks": "SUM(d_valid)",
    "cost_micros": "SUM(click_cost)",
    "billable_cost_micros": "SUM(d_billable_cost)",
    "suspect_clicks": "SUM(d_suspect)",
    "invalid_clicks": "COUNT(is_invalid)",
    "impressions": "COUNT(is_impression)",
    "conversions": "COUNT(is_conversion)",
    "conversion_value_micros": "SUM(conversion_value)",
}
METRIC_COLUMNS = tuple(METRIC_AGGREGATES)


def _counted_from(s: JobSettings) -> str:
    """The bootstrap hand-over (stream_count_from_ms, docs/rebuild.md): the stream counts nothing
    before it (the rebuild from the archive owns those buckets). Applied where rows are counted,
    after the dedup and the IVT elections, which still see the earlier clicks: a click after the
    hand-over that repeats an impression clicked before it is judged as the batch judges it."""
    return f" AND event_time >= {s.count_from_ms}" if s.count_from_ms else ""


def counted_view(s: JobSettings, events: bool) -> str:
    """`counted`: one row per counted click (+1 under its arrival verdict), one per IVT
    correction (-1 valid, +1 suspect) and, with the events source, one per counted impression
    and conversion. Every aggregate (per ad, campaign, advertiser and resolution) sums it; its
    `version` sums VERSION_WEIGHT."""
    b, z, n = "CAST(1 AS BIGINT)", "CAST(0 AS BIGINT)", "CAST(NULL AS BIGINT)"
    parts = [f"""SELECT ad_id, campaign_id, advertiser_id, event_time, wm_ms,
  {b} AS is_click,
  CASE WHEN verdict = '{ivt.VALID}' THEN {b} ELSE {z} END AS d_valid,
  CASE WHEN verdict = '{ivt.SUSPECT}' THEN {b} ELSE {z} END AS d_suspect,
  CASE WHEN verdict = '{ivt.INVALID}' THEN {b} END AS is_invalid,
  cost_micros AS click_cost,
  CASE WHEN verdict = '{ivt.VALID}' THEN cost_micros ELSE {z} END AS d_billable_cost,
  {n} AS is_impression, {n} AS is_conversion, {z} AS conversion_value, {VERSION_WEIGHT}
FROM `{VERDICTS_TABLE}` WHERE on_time{_counted_from(s)}""",
             f"""SELECT ad_id, campaign_id, advertiser_id, event_time, wm_ms,
  {n}, CAST(-1 AS BIGINT), {b}, {n}, {z}, -cost_micros, {n}, {n}, {z}, {_ONE}
FROM `{CORRECTIONS_TABLE}` WHERE on_time{_counted_from(s)}"""]
    if events:
        parts.append(f"""SELECT ad_id, campaign_id, advertiser_id, event_time, wm_ms,
  {n}, {z}, {z}, {n}, {z}, {z},
  CASE WHEN event_type = {q(IMPRESSION)} THEN {b} END,
  CASE WHEN event_type = {q(CONVERSION)} THEN {b} END,
  CASE WHEN event_type = {q(CONVERSION)} THEN value_micros ELSE {z} END, {_ONE}
FROM `{EVENTS_CLASSIFIED_TABLE}` WHERE on_time{_counted_from(s)}""")
    return "CREATE TEMPORARY VIEW counted AS\n" + "\nUNION ALL\n".join(parts)


def _aggregate_view(s: JobSettings, name: str, res: str, size_ms: int, key: str,
                    ids: dict[str, str]) -> str:
    """One GROUP BY (bucket, key) over `counted`; `ids`: output id column -> its expression."""
    metrics = ",\n  ".join(f"{expr} AS {col}" for col, expr in METRIC_AGGREGATES.items())
    id_cols = ",\n  ".join(f"{expr} AS {col}" for col, expr in ids.items())
    return f"""CREATE TEMPORARY VIEW {name} AS
SELECT /*+ STATE_TTL('counted' = '{_agg_ttl_s(s, size_ms)} s') */
  CAST('{res}' AS STRING) AS resolution,
  {_bucket('event_time', size_ms)} AS bucket_start,
  {id_cols},
  {metrics},
  SUM({VERSION_WEIGHT}) AS `version`,
  MAX(event_time) AS max_event_time,
  MAX(wm_ms) AS `watermark`
FROM counted
{'WHERE ' + key + ' IS NOT NULL' + chr(10) if key != 'ad_id' else ''}GROUP BY {_bucket('event_time', size_ms)}, {key}"""


def pipeline_views(s: JobSettings, classified: str = CLASSIFIED_TABLE, *,
                   events: bool = False, order: str = STREAM_ORDER) -> list[str]:
    """STAGE 2 as SQL only (reviews, plan tests, the rebuild with `order` = ARRIVAL_ORDER):
    `ivt_views`, the corrections as a plain view (the job hands them over as a DataStream
    instead), `aggregate_views`."""
    return (ivt_views(s, classified, order=order)
            + [f"CREATE TEMPORARY VIEW {VERDICTS_TABLE} AS SELECT * FROM {VERDICTS_VIEW}",
               correction_view(s, VERDICTS_TABLE),
               f"CREATE TEMPORARY VIEW {CORRECTIONS_TABLE} AS SELECT * FROM {CORRECTIONS_VIEW}"]
            + [counted_view(s, events)] + spend_views(s)
            + aggregate_views(s, classified, events=events, lanes=[SPEND_VIEW], with_counted=False))


def aggregate_views(s: JobSettings, classified: str = CLASSIFIED_TABLE, *,
                    events: bool = False, lanes: Sequence[str] = (),
                    with_counted: bool = True) -> list[str]:
    """STAGE 2 after the IVT verdicts, over the tables `clicks_verdicts` and `ivt_corrected` and
    (with `events`) `events_classified`; the last view is `clickagg_output` with exactly
    OUTPUT_COLUMNS.

    Why the verdicts and corrections come in as tables of their own (DataStreams, pipeline.py):
    the aggregates per ad, campaign and advertiser need different columns of `counted`, and the
    planner pushes each projection down into the correction join, planning the join once per
    level (measured on 1.20.5: three joins, three copies of the job's largest state). A
    DataStream boundary stops the push-down; it must come after the running counts as well,
    since each `to_data_stream` is translated on its own (a view used on both sides of a
    boundary would run twice). GROUPING SETS instead got the per-level filter pushed into one
    aggregate per level and cost the Top-N its UpdateFastStrategy; the optimizer option
    reuse-optimize-block-with-digest did not merge the joins either. Price: a Row copy per
    click and per correction."""
    nul_b = "CAST(NULL AS BIGINT)"
    nul_s = "CAST(NULL AS STRING)"
    views = [counted_view(s, events)] if with_counted else []
    ids = {
        AD: {"entity_id": "ad_id", "ad_id": "ad_id", "campaign_id": "MAX(campaign_id)",
             "advertiser_id": "MAX(advertiser_id)"},
        CAMPAIGN: {"entity_id": "campaign_id", "ad_id": nul_s, "campaign_id": "campaign_id",
                   "advertiser_id": "MAX(advertiser_id)"},
        ADVERTISER: {"entity_id": "advertiser_id", "ad_id": nul_s, "campaign_id": nul_s,
                     "advertiser_id": "advertiser_id"},
    }
    keys = {AD: "ad_id", **ROLLUP_LEVELS}
    for level, key in keys.items():
        for res, size_ms in RESOLUTIONS.items():
            views.append(_aggregate_view(s, f"{level}_{res}", res, size_ms, key, ids[level]))
    row = f"entity_id, ad_id, campaign_id, advertiser_id, {_metric_columns()}"
    for r in LEADERBOARD_RESOLUTIONS:
        # With impressions an ad has aggregate rows before its first click, so entries with 0
        # clicks can fill a bucket's free places (the query API leaves them out of answers). A
        # `WHERE clicks > 0` here would cost the Rank its UpdateFastStrategy (checked on 1.20.5:
        # the planner falls back to RetractStrategy), more than the few extra entries.
        views.append(
            f"""CREATE TEMPORARY VIEW leaderboard_{r} AS
SELECT resolution, bucket_start, {row}, `version`, max_event_time, `watermark` FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY bucket_start ORDER BY clicks DESC, ad_id ASC) AS rn
  FROM {AD}_{r}
) WHERE rn <= {s.leaderboard_size}"""
        )
    views.append(
        f"""CREATE TEMPORARY VIEW late_rows AS
SELECT ad_id, campaign_id, advertiser_id, event_time, cost_micros, minute_start, wm_ms
FROM `{classified}` WHERE NOT on_time{_counted_from(s)}"""
    )
    views.append(
        f"""CREATE TEMPORARY VIEW late_counts AS
SELECT /*+ STATE_TTL('late_rows' = '{_agg_ttl_s(s, MINUTE_MS)} s') */
  minute_start AS bucket_start,
  ad_id,
  MAX(campaign_id) AS campaign_id,
  MAX(advertiser_id) AS advertiser_id,
  COUNT(*) AS late_dropped,
  SUM(cost_micros) AS cost_micros,
  COUNT(*) AS `version`,
  MAX(event_time) AS max_event_time,
  MAX(wm_ms) AS `watermark`
FROM late_rows
GROUP BY minute_start, ad_id"""
    )
    tail = f"{nul_b} AS late_dropped, `version`, max_event_time, `watermark`"
    parts = [
        f"""SELECT CAST('{level}' AS STRING) AS kind, resolution, bucket_start, {row}, {tail}
FROM {level}_{res}"""
        for level in keys for res in RESOLUTIONS
    ]
    parts += [
        f"""SELECT CAST('top' AS STRING), resolution, bucket_start, {row}, {tail}
FROM leaderboard_{r}"""
        for r in LEADERBOARD_RESOLUTIONS
    ]
    late_metrics = ", ".join("cost_micros" if c == "cost_micros" else nul_b for c in METRIC_COLUMNS)
    parts.append(
        f"""SELECT CAST('late' AS STRING), CAST('1m' AS STRING), bucket_start, ad_id, ad_id,
  campaign_id, advertiser_id, {late_metrics}, late_dropped, `version`, max_event_time, `watermark`
FROM late_counts"""
    )
    # the budget lane's tables (spend, pulse), already in OUTPUT_COLUMNS' shape
    cols = ", ".join(f"`{c}`" for c in OUTPUT_COLUMN_NAMES)
    parts += [f"SELECT {cols} FROM {lane}" for lane in lanes]
    views.append(f"CREATE TEMPORARY VIEW {OUTPUT_VIEW} AS\n" + "\nUNION ALL\n".join(parts))
    return views


def spend_options(s: JobSettings) -> dict[str, str]:
    """Stage 2's options with the budget lane's own mini-batch latency (docs/budget.md)."""
    return {**stage2_options(s), "table.exec.mini-batch.allow-latency": f"{s.budget_emit_interval_ms} ms"}


def _row(values: dict[str, str]) -> str:
    """A SELECT list with every OUTPUT_COLUMNS column: `values` by name, the rest typed NULLs."""
    types = {n: t for n, t, _ in OUTPUT_COLUMNS}
    return ",\n  ".join(f"{values.get(n, f'CAST(NULL AS {types[n]})')} AS `{n}`"
                        for n in OUTPUT_COLUMN_NAMES)


def spend_views(s: JobSettings) -> list[str]:
    """The budget lane's spend over `counted` (which must exist): per campaign, the billable
    (valid) clicks and their cost with the IVT corrections subtracted: the rows of `counted`
    that move billable_clicks, so the lane equals the campaign rollups' billable columns, and
    emits only when a campaign's spend changes (or a click arrives suspect of an IP burst: it
    carries the version weight the correction would have, VERSION_WEIGHT). One GROUP BY per SPEND_RESOLUTIONS; the last
    view (SPEND_VIEW) has OUTPUT_COLUMNS."""
    views = [f"""CREATE TEMPORARY VIEW {SPENT_VIEW} AS
SELECT campaign_id, advertiser_id, event_time, wm_ms, d_valid, d_billable_cost, {VERSION_WEIGHT}
FROM counted WHERE (d_valid <> 0 OR {VERSION_WEIGHT} > 1) AND campaign_id IS NOT NULL"""]
    for res in SPEND_RESOLUTIONS:
        size_ms = RESOLUTIONS[res]
        bucket = _bucket('event_time', size_ms)
        views.append(f"""CREATE TEMPORARY VIEW spend_{res} AS
SELECT /*+ STATE_TTL('{SPENT_VIEW}' = '{_agg_ttl_s(s, size_ms)} s') */
  {_row({"kind": "CAST('spend' AS STRING)", "resolution": f"CAST('{res}' AS STRING)",
         "bucket_start": bucket, "entity_id": "campaign_id", "campaign_id": "campaign_id",
         "advertiser_id": "MAX(advertiser_id)", "billable_clicks": "SUM(d_valid)",
         "billable_cost_micros": "SUM(d_billable_cost)", "version": f"SUM({VERSION_WEIGHT})",
         "max_event_time": "MAX(event_time)", "watermark": "MAX(wm_ms)"})}
FROM {SPENT_VIEW}
GROUP BY {bucket}, campaign_id""")
    views.append(f"CREATE TEMPORARY VIEW {SPEND_VIEW} AS\n"
                 + "\nUNION ALL\n".join(f"SELECT * FROM spend_{r}" for r in SPEND_RESOLUTIONS))
    return views


def pulse_rate(s: JobSettings) -> int:
    """Ticks per second (datagen's rows-per-second is an integer: at least 1)."""
    return max(1, round(1000 / s.budget_emit_interval_ms))


def pulse_statements(s: JobSettings) -> list[str]:
    """The pulse: a datagen tick turned into one 'pulse' row (bucket_start = version = the job's
    processing time in ms), which takes the spend rows' path to the serving table; its age is
    the age of everything the lane could have seen (docs/budget.md)."""
    now = "PROCTIME()"
    return [f"""CREATE TEMPORARY TABLE {PULSE_SOURCE_TABLE} (
  `tick` INT
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '{pulse_rate(s)}',
  'scan.parallelism' = '1',
  'fields.tick.kind' = 'random',
  'fields.tick.min' = '0',
  'fields.tick.max' = '0'
)""", f"""CREATE TEMPORARY VIEW {PULSE_VIEW} AS
SELECT
  {_row({"kind": "CAST('pulse' AS STRING)", "bucket_start": "pulse_ms",
         "entity_id": "CAST('pulse' AS STRING)", "version": "pulse_ms"})}
FROM (SELECT CAST({_epoch_ms(now)} AS BIGINT) AS pulse_ms FROM {PULSE_SOURCE_TABLE})"""]


def insert_dml(sink: str = SINK_TABLE, view: str = OUTPUT_VIEW) -> str:
    cols = ", ".join(f"`{c}`" for c in OUTPUT_COLUMN_NAMES)
    return f"INSERT INTO `{sink}` ({cols})\nSELECT {cols} FROM {view}"


def classified_table_ddl(table: str = CLASSIFIED_TABLE, options: dict[str, str] | None = None,
                         columns: Sequence[tuple[str, str]] = CLASSIFIED_COLUMNS) -> str:
    """A plain table with a stage-2 input schema (`clicks_classified`'s; `events_classified`'s
    with EVENTS_CLASSIFIED_COLUMNS): lets stage 2 be planned/compiled on its own (tests compile
    it to check per-operator state TTLs)."""
    cols = [f"`{n}` {t}" for n, t in columns] + ["`proctime` AS PROCTIME()"]
    opts = options or {"connector": "datagen"}
    return f"CREATE TABLE `{table}` (\n  " + ",\n  ".join(cols) + f"\n) WITH (\n  {_with(opts)}\n)"


def all_statements(s: JobSettings, sink_connector: str = "kinesis") -> Sequence[str]:
    """Everything, for documentation / review (stage 1 shown as a view)."""
    events = bool(s.events_stream_arn)
    return [
        source_ddl(s),
        f"-- stage 1 (mini-batch off), handed over as DataStream `{CLASSIFIED_TABLE}`:\n"
        + classify_query(s),
        *([events_source_ddl(s),
           f"-- stage 1 (mini-batch off), handed over as DataStream `{EVENTS_CLASSIFIED_TABLE}`:\n"
           + classify_events_query(s)] if events else []),
        *pipeline_views(s, events=events),
        sink_ddl(s, connector=sink_connector),
        *([f"-- changelog_mode upsert: `{UPSERT_VIEW}` is `{OUTPUT_VIEW}` without its -U rows "
           "(pipeline.sink_view)\n" + insert_dml(view=UPSERT_VIEW)]
          if s.changelog_mode == "upsert" else [insert_dml()]),
    ]


# ------------------------------------------------------------- the rebuild (batch, docs/rebuild.md)
# The rebuild runs the stage-2 SQL above, unchanged, in batch mode over the raw archive (Parquet,
# common.archive), after a stage 1 whose text is classify_query's / classify_events_query's with
# the two things only a stream has replaced by their definitions over the archive:
#  * arrival order (the stream's proctime): ingest_time, then the record's id (a total order);
#  * the watermark a record met on arrival: the newest event time among the records that arrived
#    in EARLIER arrival seconds, minus watermark_delay_s (`arrival_watermark_view`: the stream's
#    watermark is also emitted periodically, not per record; NULL in the first second, as
#    CURRENT_WATERMARK before the first watermark).
# Both are computed over every archived record of the read window, duplicates included, as the
# stream's source sees them. Where this can differ from what the stream did: docs/rebuild.md.
ARCHIVE_CLICKS, ARCHIVE_EVENTS = "archive_clicks", "archive_events"
ARRIVED_CLICKS, ARRIVED_EVENTS = "clicks_arrived", "events_arrived"
ARRIVAL_GRAIN_MS = 1000
EVENTS_ARRIVAL_ORDER = "`arrival_ms`, `event_id`"
REBUILD_OUTPUT_VIEW = "rebuild_output"


def batch_options(s: JobSettings) -> dict[str, str]:
    """Table options of the rebuild (batch mode): UTC, no mini-batch (batch aggregates are final)."""
    return {"table.local-time-zone": "UTC", "table.optimizer.agg-phase-strategy": "TWO_PHASE",
            **OBJECT_REUSE}


def archive_source_ddl(table: str, path: str, record_schema: dict[str, str],
                       partitions: Sequence[tuple[str, str]]) -> str:
    """A raw archive (common.archive: Parquet under dt=/hr= partitions by arrival) as a batch
    table, read only in `partitions` [(dt, hr)] (partition pruning: the filter is on the
    partition columns). `arrival_ms`: the record's ingest time (its event time if it has none)."""
    cols = [f"`{name}` {_FLINK_TYPES[t]}" for name, t in record_schema.items()]
    cols += ["`dt` STRING", "`hr` STRING"]
    opts = {"connector": "filesystem", "path": path, "format": "parquet",
            "partition.default-name": "__none__"}
    return (f"CREATE TEMPORARY TABLE `{table}` (\n  " + ",\n  ".join(cols) + "\n)\n"
            f"PARTITIONED BY (`dt`, `hr`)\nWITH (\n  {_with(opts)}\n)")


def _partition_filter(partitions: Sequence[tuple[str, str]]) -> str:
    by_day: dict[str, list[str]] = {}
    for dt, hr in partitions:
        by_day.setdefault(dt, []).append(hr)
    if not by_day:
        return "FALSE"
    return " OR ".join(f"(`dt` = {q(dt)} AND `hr` IN ({', '.join(q(h) for h in sorted(hrs))}))"
                       for dt, hrs in sorted(by_day.items()))


def arrival_watermark_view(s: JobSettings, archive: str, name: str,
                           partitions: Sequence[tuple[str, str]]) -> list[str]:
    """`name`: the archive's records in `partitions` with `arrival_ms` and `wm_ms`, the
    watermark each met on arrival (see above). Per arrival second, not per record: a GROUP BY
    and a running MAX over ~86,400 rows a day, then a join back (all parallel but the small
    running MAX)."""
    arrival = "COALESCE(`ingest_time`, `event_time`)"
    second = _bucket("arrival_ms", ARRIVAL_GRAIN_MS)
    delay = s.watermark_delay_s * 1000
    return [f"""CREATE TEMPORARY VIEW {name}_in AS
SELECT *, {arrival} AS arrival_ms FROM `{archive}` WHERE {_partition_filter(partitions)}""",
            f"""CREATE TEMPORARY VIEW {name}_wm AS
SELECT arrival_s,
  MAX(newest) OVER (ORDER BY arrival_s ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    - {delay} AS wm_ms
FROM (SELECT {second} AS arrival_s, MAX(event_time) AS newest
      FROM {name}_in WHERE arrival_ms IS NOT NULL GROUP BY {second})""",
            f"""CREATE TEMPORARY VIEW {name} AS
SELECT r.*, w.wm_ms FROM {name}_in AS r
LEFT JOIN {name}_wm AS w ON {_bucket('r.arrival_ms', ARRIVAL_GRAIN_MS)} = w.arrival_s"""]


def rebuild_stage1_views(s: JobSettings, partitions: Sequence[tuple[str, str]], *,
                         events: bool) -> list[str]:
    """The batch stage 1 over the archive tables (`archive_source_ddl` as ARCHIVE_CLICKS and,
    with `events`, ARCHIVE_EVENTS): `clicks_classified` (and `events_classified`), the input of
    stage 2's own SQL in arrival order (job.rebuild plans it as pipeline.py does)."""
    views = arrival_watermark_view(s, ARCHIVE_CLICKS, ARRIVED_CLICKS, partitions)
    views.append(f"CREATE TEMPORARY VIEW {CLASSIFIED_TABLE} AS\n" + classify_query(
        s, ARRIVED_CLICKS, order=ARRIVAL_ORDER, wm="wm_ms", extra=", `arrival_ms`"))
    if events:
        views += arrival_watermark_view(s, ARCHIVE_EVENTS, ARRIVED_EVENTS, partitions)
        views.append(f"CREATE TEMPORARY VIEW {EVENTS_CLASSIFIED_TABLE} AS\n" + classify_events_query(
            s, ARRIVED_EVENTS, order=EVENTS_ARRIVAL_ORDER, wm="wm_ms"))
    return views


def rebuild_output_view(start_ms: int, end_ms: int) -> str:
    """The output rows of the buckets that lie wholly within [start_ms, end_ms): the rebuild
    owns a bucket only if it read every click that could count in it."""
    size = "CASE resolution " + " ".join(f"WHEN {q(r)} THEN {ms}" for r, ms in RESOLUTIONS.items()) \
        + " END"
    return f"""CREATE TEMPORARY VIEW {REBUILD_OUTPUT_VIEW} AS
SELECT * FROM {OUTPUT_VIEW}
WHERE bucket_start >= {int(start_ms)} AND bucket_start + {size} <= {int(end_ms)}"""


REBUILD_FILE_SIZE = "128MB"  # Flink's default, pinned: on AWS one Lambda loads one file (15 min)
REBUILD_SINK_TABLE = "rebuild_out"
# The load's two phases (docs/rebuild.md "Load phases"), one directory each under the rows:
# `phase=1/` every leaderboard entry and late counter and the 1h and 1d series (few items: a day
# at 1M active ads ~30M), loaded and committed first, so a rebuilt day is visible at hour and day
# resolution and in every top-K within the recompute target; `phase=2/` the series of 1m and 5m
# buckets, the budget lane's 1m spend included (~98 % of that day's items), loaded after.
REBUILD_PHASE_COLUMN = "phase"
REBUILD_FIRST, REBUILD_LATER = "1", "2"
REBUILD_LATER_KINDS = ("agg", "campaign", "advertiser", "spend")  # the series (not top, late)
REBUILD_LATER_RESOLUTIONS = ("1m", "5m")


def rebuild_phase_expr() -> str:
    """The phase of an output row (REBUILD_LATER_*'s rule as SQL)."""
    kinds = ", ".join(q(k) for k in REBUILD_LATER_KINDS)
    resolutions = ", ".join(q(r) for r in REBUILD_LATER_RESOLUTIONS)
    return (f"CASE WHEN `kind` IN ({kinds}) AND `resolution` IN ({resolutions}) "
            f"THEN {q(REBUILD_LATER)} ELSE {q(REBUILD_FIRST)} END")


def rebuild_sink_ddl(path: str, table: str = REBUILD_SINK_TABLE) -> str:
    """The rebuild's final rows as JSON lines under `<path>phase=<1|2>/` (the serving loader
    reads them: serving.rebuild.loader; on AWS one file per load_file Lambda:
    serving.rebuild.handlers). The phase is the directory, not a field of the rows."""
    cols = ",\n  ".join(f"`{n}` {t}" for n, t, _ in OUTPUT_COLUMNS)
    opts = {"connector": "filesystem", "path": path, "format": "json",
            "sink.rolling-policy.file-size": REBUILD_FILE_SIZE}
    return (f"CREATE TEMPORARY TABLE `{table}` (\n  {cols},\n  `{REBUILD_PHASE_COLUMN}` STRING\n)"
            f" PARTITIONED BY (`{REBUILD_PHASE_COLUMN}`) WITH (\n  {_with(opts)}\n)")


def rebuild_insert_dml(table: str = REBUILD_SINK_TABLE) -> str:
    cols = ", ".join(f"`{c}`" for c in OUTPUT_COLUMN_NAMES)
    return (f"INSERT INTO `{table}` ({cols}, `{REBUILD_PHASE_COLUMN}`)\n"
            f"SELECT {cols}, {rebuild_phase_expr()} FROM {REBUILD_OUTPUT_VIEW}")
