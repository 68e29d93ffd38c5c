"""Capacity plan and monthly cost of the clickagg pipeline for a click rate (pure: no AWS calls).

    plan(rate=115_740, peak=500_000) -> Plan

`rate` is the average clicks/s (it drives cost: everything billed per use), `peak` the clicks/s
the deployment must absorb (it drives sizing: shards, limits, KPUs, capacity maxima). Every
number the plan uses that is not an input or a price is a named constant in the ASSUMPTIONS block
below, with the reason for its value; prices and quotas come from capacity/prices/<region>.json.
`Plan.context` holds the CDK context values the plan implies (capacity.profiles publishes them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

from capacity.pricing import PriceBook, load_prices
from common.serving_keys import DEFAULT_FRESHNESS_SLOTS, MAX_FRESHNESS_SLOTS

# ================================================================================ ASSUMPTIONS
# docs/capacity.md lists this block (name, value, comment): keep one constant per line.

# --- units and time
HOURS_PER_MONTH = 730  # AWS pricing convention: 8,760 h / 12
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600  # 2,628,000 s
DAYS_PER_MONTH = HOURS_PER_MONTH / 24  # 30.4 nightly billing runs per month
KIB = 1024  # Kinesis/Firehose billing units are binary (1 KB = 1,024 B)
MIB = 1024**2
GIB = 1024**3  # AWS bills "GB" as 2^30 bytes

# --- API Gateway (ingest endpoint)
API_RATE_HEADROOM = 1.25  # stage/usage-plan rate limit = peak requests/s x this
API_BURST_RATIO = 0.5  # burst bucket = rate limit x this (AWS's own account default is 10,000 : 5,000)
REQUEST_ENVELOPE_BYTES = 32  # '{"clicks":[...]}' around the clicks of one request
RESPONSE_BASE_BYTES = 150  # status counts and envelope of the 202 body
RESPONSE_BYTES_PER_CLICK = 70  # {"index":n,"click_id":"...","status":"accepted"} per click, in the response
HTTP_API_METERING_BYTES = 512 * KIB  # HTTP APIs bill one request per started 512 KB of payload
ACCESS_LOG_BYTES = 400  # one JSON access-log line per request (12 fields + error message)

# --- ingest Lambda (arm64, Powertools layer)
INGEST_MEMORY_MB = 1024  # ingest_memory_mb; the duration numbers below assume this size (~0.58 vCPU)
INGEST_BASE_MS = 25.0  # per request: proxy event + JSON parse, one PutRecords and one BatchWriteItem round trip, response
# Per click with per-click dedup: one conditional PutItem per click. With 32 threads the network
# waits overlap, but boto3's serialise + SigV4 + TLS write/parse is CPU (~0.9 ms on a full vCPU,
# ~1.5 ms at 1024 MB), plus validation and record encoding. Replace by a measurement on AWS.
INGEST_PER_CLICK_MS = 1.5
INGEST_PER_CLICK_MS_NO_CLAIM = 0.15  # per click when dedup is per request: validation + encode only
IDEMPOTENCY_MS = 12.0  # per request with per-request dedup: Powertools idempotency put + update (serial)
LAMBDA_CONCURRENCY_HEADROOM = 1.5  # ingest reserved concurrency = peak concurrency x this
INGEST_MIN_RESERVED = 10  # never reserve less than this for the ingest function
LAMBDA_LOG_BYTES_PER_INVOCATION = 1000  # START/END/REPORT platform lines + the Powertools EMF metrics blob

# --- ingest dedup table (DynamoDB)
CLAIM_WCU = 1  # conditional PutItem of a claim item < 1 KB (a failed condition costs 1 WCU too)
CONFIRM_WCU = 1  # BatchWriteItem put of the same item with status committed: 1 WCU per item
DEDUP_ITEM_BYTES = 250  # click_id, request_id, status, 2 numbers + ~100 B DynamoDB per-item overhead
DDB_TTL_DELETE_LAG_S = 86400  # TTL deletes expired items "within a few days": keep one extra day of items
IDEMPOTENCY_PUT_WCU = 1  # Powertools Idempotency: conditional put of the INPROGRESS record
IDEMPOTENCY_ITEM_BASE_BYTES = 300  # idempotency record without the stored response (key, status, expiry, hash)
IDEMPOTENCY_TTL_S = 3600  # Powertools Idempotency default expires_after_seconds
DDB_TARGET_UTILIZATION = 0.70  # provisioned autoscaling target; on-demand caps also = peak / this
DDB_TROUGH_RATIO = 0.5  # nightly trough = average x this: provisioned autoscaling minimum below it

# --- Kinesis Data Streams
SHARD_WRITE_BYTES_S = MIB  # 1 MiB/s of data + partition key per shard
SHARD_WRITE_RECORDS_S = 1000  # 1,000 records/s per shard
SHARD_READ_BYTES_S = 2 * MIB  # 2 MiB/s per shard shared by polling consumers (per consumer with enhanced fan-out)
SHARD_READ_CALLS_S = 5  # GetRecords calls/s per shard, shared by polling consumers
PARTITION_KEY_BYTES = 16  # the ad_id partition key; counts towards the shard write limit
KINESIS_SHARD_HEADROOM = 1.25  # provisioned shards sized for peak at 80 % of the limits (key skew, retries)
ON_DEMAND_RECORD_UNIT = KIB  # on-demand bills each record rounded up to 1 KB (ingest and retrieval)
PUT_PAYLOAD_UNIT = 25 * KIB  # provisioned bills each record in PUT payload units of 25 KB
# GetRecords/s per shard of the two polling consumers of the clicks stream: Flink at a 500 ms
# poll interval (set it: the connector default of 200 ms alone would use all 5) + Firehose (1/s).
CLICK_CONSUMER_POLLS_S = 3
CLICK_CONSUMERS = 2  # Flink + Firehose read every click
KPL_RECORD_HEADER_BYTES = 20  # KPL-aggregated record: magic number + MD5 trailer
KPL_BYTES_PER_SUBRECORD = 8 + PARTITION_KEY_BYTES  # protobuf framing + the sub-record's own partition key
STANDARD_RETENTION_HOURS = 24  # included in the base price; longer is extended retention
EXTENDED_RETENTION_MAX_HOURS = 168  # beyond 7 days is long-term retention (per GB-month)
ON_DEMAND_MIN_SHARDS = 4  # a new on-demand stream starts at 4 MiB/s write (4 shards)

# --- ad popularity and the aggregates changelog
ACTIVE_ADS = 1_000_000  # seed: 1M active ads
# Ad popularity ~ Zipf(s): at s = 0.8 over 1M ads the top ad gets 1.3 % of all clicks and the
# top 1 % of ads 36 %. s = 0 is uniform: every click hits another ad (most serving writes).
AD_ZIPF_S = 0.8
SERVING_RESOLUTIONS = ("1m", "5m", "1h", "1d")  # series buckets the job emits per ad (aggregate/changes.py)
RESOLUTION_SECONDS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}  # bucket length per resolution
LEADERBOARDS = 2  # top-M boards: 1m and 1h buckets
LEADERBOARD_SIZE = 1000  # leaderboard_size (M); every entry of a live board assumed to change per mini-batch
CHANGELOG_UPDATE_BEFORE = True  # the job emits -U before each +U (debezium-json): 2 stream rows per update
CHANGELOG_ROW_BYTES = 350  # one debezium-json changelog row: before/after envelope + ~12 columns
MINIBATCH_MS = 2000  # minibatch_latency_ms: a key emits at most one update per mini-batch
ALLOWED_LATENESS_S = 900  # allowed_lateness_s: a bucket stays updatable this long after its end
AGG_STATE_MARGIN_S = 3600  # the job's agg_state_margin_s: aggregate state idles this long after lateness

# --- Managed Service for Apache Flink
# Measured (shared field notes: PyFlink 1.20 SQL, 2 contended cores, heap state, local files):
# rowtime dedup 41k rows/s, window dedup 70k rows/s, i.e. 20-35k rows/s per core. On Managed
# Flink add RocksDB state, the Kinesis source and JSON decoding, checkpoints, the two-phase
# aggregate and the top-M rank: take about a third of the per-core figure per KPU (1 vCPU).
FLINK_CLICKS_PER_KPU_S = 10_000
FLINK_HEADROOM = 1.5  # size for peak at ~67 % CPU (Managed Flink autoscaling triggers at 75 %)
FLINK_PARALLELISM_PER_KPU = 1  # one task slot per vCPU: the job is CPU-bound (JSON, RocksDB)
FLINK_ORCHESTRATION_KPUS = 1  # Managed Flink bills one extra KPU per application
FLINK_KPU_STORAGE_GB = 50  # running application storage per KPU (RocksDB local disk)
FLINK_STATE_DISK_FRACTION = 0.5  # keep state <= half the local disk (compaction, checkpoint staging)
FLINK_STATE_BYTES_PER_KEY = 100  # RocksDB entry: key + value + TTL timestamp + per-entry overhead
FLINK_DEDUP_STATES = 2  # keyed states living dedup_ttl_s per click: click_id keep-first + repeat-click buckets
FLINK_DEDUP_TTL_S = 1800  # the job's dedup_ttl_s (functions/aggregate/job/settings.py)
FLINK_SNAPSHOTS_RETAINED = 1  # durable snapshots kept (each the full state size)

# --- sink Lambda and serving store
SINK_MEMORY_MB = 512  # sink_memory_mb
SINK_BATCH_SIZE = 500  # sink_batch_size: changelog rows per invocation
SINK_BATCHING_WINDOW_S = 1  # sink_max_batching_window_s
SINK_WRITES_PER_S_PER_INVOCATION = 800  # 16 threads x ~5 ms conditional PutItem, boto3 CPU-bound at 512 MB
SINK_CONCURRENCY_HEADROOM = 1.5  # sink lanes (shards x parallelization factor) = peak need x this
FRESHNESS_WRITES_PER_INVOCATION = 2  # advance_freshness: 2 conditional updates of its shard's slot
SERVING_ITEM_BYTES = 200  # a series/leaderboard item incl. overhead: 1 WCU per write
MINUTE_TTL_S = 8 * 86400  # minute_ttl_s: 1m series and 1m leaderboard items expire after this
SERVING_HORIZON_MONTHS = 12  # 5m/1h/1d series and 1h boards never expire: storage after this many months
TIMESTREAM_MEMORY_HOURS = 48  # timestream_memory_retention_hours
TIMESTREAM_RECORD_BYTES = 250  # one MULTI record (4 dimensions + 6 measures)

# --- Firehose and the S3 archive
FIREHOSE_RECORD_UNIT = 5 * KIB  # Kinesis-sourced Firehose bills each record rounded up to 5 KB
FIREHOSE_BUFFER_MB = 128  # firehose_buffer_mb: the maximum; Parquet conversion needs >= 64
FIREHOSE_INTERVAL_S = 300  # firehose_buffer_interval_s when the buffer fills faster than this
FIREHOSE_MAX_INTERVAL_S = 900  # the longest buffer interval Firehose allows
PARQUET_RATIO = 0.30  # Parquet (SNAPPY, dictionary-encoded ids) bytes / JSON bytes of the same clicks
S3_REQUESTS_PER_OBJECT = 1  # one PUT per object (multipart uploads of big objects: a few more)
ARCHIVE_MONTHS = 12  # archive storage is costed as it stands after this many months (it only grows)
ARCHIVE_STANDARD_MONTHS = 1  # archive_ia_after_days = 30
ARCHIVE_IA_MONTHS = 2  # archive_cold_after_days = 90: then Glacier Instant Retrieval

# --- nightly Glue billing job
# Measured (shared field notes): Spark 3.5 local[2], untuned, 10M clicks dedup + burst flag +
# hourly aggregate in 377 s = 13k clicks/s per core. A G.1X worker (1 DPU) has 4 vCPU: take
# half of 4 x 13k for S3 reads, the shuffle over the network and the driver.
GLUE_CLICKS_PER_DPU_S = 25_000
GLUE_READ_FACTOR = (24 + 1 + 2) / 24  # the day + the previous day's last hour + cutoff_hours=2 after it
GLUE_TARGET_HOURS = 2.0  # the nightly run should finish within this
GLUE_MIN_WORKERS = 2  # Glue's minimum for Spark jobs
GLUE_WORKER_TYPE = "G.1X"  # 1 DPU (4 vCPU, 16 GB) per worker
GLUE_DPU_PER_WORKER = 1
GLUE_MIN_BILLED_HOURS = 1 / 60  # Glue 2.0+ bills per second with a 1-minute minimum

# --- observability
XRAY_RESERVOIR_PER_S = 1  # default sampling rule: the first request each second...
XRAY_FIXED_RATE = 0.05  # ...and 5 % of the rest
LOG_STORAGE_RATIO = 0.15  # CloudWatch Logs stores compressed: ~15 % of the ingested bytes
LOG_RETENTION_MONTHS = 1  # log groups keep one month (LOG_RETENTION = ONE_MONTH in infra)
# ============================================================================ END ASSUMPTIONS

APIS = ("rest", "http")
DEDUP_MODES = ("per_click", "per_request")
KINESIS_CHOICES = ("auto", "on_demand", "provisioned")
DDB_CHOICES = ("auto", "on_demand", "provisioned")
SERVING_STORES = ("dynamodb", "timestream")
MAX_BATCH = 500  # IngestSettings.max_batch
MAX_RECORD_BYTES = MIB  # Kinesis record data limit

# What each dedup layer catches (docs and the lever table).
DEDUP_LAYERS = (
    ("ingest, per click (default)", "click_id, conditional PutItem", "dedup_ttl_s (24 h)",
     "client retries and re-sends of a click in any request and any batch composition; an SDK "
     "retry of a PutItem whose response was lost",
     "re-sends after 24 h; the copy re-sent after a failed confirm (after the 120 s lease)"),
    ("ingest, per request (Powertools Idempotency)", "request/batch id (header or body hash)",
     "idempotency TTL (1 h)", "a replay of the same whole request",
     "a click re-sent inside another request (re-batched retries, a client that lost the "
     "response and rebuilt its batch)"),
    ("Flink keep-first", "click_id, keyed state", "dedup_ttl_s of the job (30 min)",
     "every copy that reaches the stream within 30 min: confirm-failure re-sends, what "
     "per-request idempotency lets through",
     "copies more than 30 min apart: the realtime view over-counts them until the batch"),
    ("nightly Glue batch", "click_id over the day's archive", "the billing day (+ cutoff)",
     "everything inside the billing day: billing is exact", "copies across days beyond the cutoff"),
)


# ================================================================================ model
@dataclass(frozen=True)
class Metric:
    name: str
    value: Any
    unit: str = ""


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float
    unit: str
    usd: float  # per month
    price_key: str = ""


@dataclass
class Component:
    key: str
    title: str
    mode: str = ""
    metrics: list[Metric] = field(default_factory=list)
    costs: list[CostLine] = field(default_factory=list)
    alternatives: dict[str, float] = field(default_factory=dict)  # option -> monthly USD
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    counted: bool = True  # False: shown, not in the total (per-query services)

    @property
    def monthly_usd(self) -> float:
        return sum(c.usd for c in self.costs) if self.counted else 0.0

    def metric(self, name: str) -> Any:
        for m in self.metrics:
            if m.name == name:
                return m.value
        raise KeyError(f"{self.key}: no metric {name!r}")

    def add(self, name: str, value: Any, unit: str = "") -> None:
        self.metrics.append(Metric(name, value, unit))

    def cost(self, pb: PriceBook, item: str, price_key: str, quantity: float, unit: str = "") -> None:
        price = pb[price_key]
        self.costs.append(CostLine(item, quantity, unit or price.unit, price.cost(quantity), price_key))

    def to_dict(self) -> dict:
        return {
            "key": self.key, "title": self.title, "mode": self.mode, "counted": self.counted,
            "monthly_usd": round(self.monthly_usd, 2),
            "metrics": [{"name": m.name, "value": m.value, "unit": m.unit} for m in self.metrics],
            "costs": [{"item": c.item, "quantity": c.quantity, "unit": c.unit,
                       "usd": round(c.usd, 2), "price": c.price_key} for c in self.costs],
            "alternatives": {k: round(v, 2) for k, v in self.alternatives.items()},
            "warnings": list(self.warnings), "notes": list(self.notes), "context": dict(self.context),
        }


@dataclass
class Plan:
    inputs: dict[str, Any]
    region: str
    prices_as_of: str
    components: list[Component]
    account_warnings: list[str] = field(default_factory=list)

    @property
    def clicks_per_month(self) -> float:
        return self.inputs["rate"] * SECONDS_PER_MONTH

    @property
    def monthly_usd(self) -> float:
        return sum(c.monthly_usd for c in self.components)

    @property
    def usd_per_million_clicks(self) -> float:
        return self.monthly_usd / (self.clicks_per_month / 1e6)

    @property
    def context(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for c in self.components:
            merged.update(c.context)
        return dict(sorted(merged.items()))

    @property
    def warnings(self) -> list[str]:
        return [f"{c.title}: {w}" for c in self.components for w in c.warnings] + [
            f"account: {w}" for w in self.account_warnings]

    def component(self, key: str) -> Component:
        for c in self.components:
            if c.key == key:
                return c
        raise KeyError(key)

    def to_dict(self) -> dict:
        return {
            "inputs": dict(self.inputs), "region": self.region, "prices_as_of": self.prices_as_of,
            "clicks_per_month": self.clicks_per_month, "monthly_usd": round(self.monthly_usd, 2),
            "usd_per_million_clicks": round(self.usd_per_million_clicks, 4),
            "components": [c.to_dict() for c in self.components],
            "warnings": self.warnings, "context": self.context,
        }


# ================================================================================ helpers
def ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b - 1e-12))


def round_up_2sig(x: float) -> int:
    """Round up to two significant digits (12,347 -> 13,000; 257 -> 260): for limits, not counts."""
    if x <= 0:
        return 0
    magnitude = 10 ** max(0, int(math.floor(math.log10(x))) - 1)
    return int(math.ceil(x / magnitude - 1e-9) * magnitude)


@lru_cache(maxsize=64)
def _popularity_bins(ads: int, skew: float) -> tuple[tuple[int, float], ...]:
    """(number of ads, click probability of each) bins of a Zipf(skew) popularity over `ads` ads:
    ranks 1..1000 exactly, the tail in ~400 geometric bins (integral of x^-s per bin)."""
    exact = min(ads, 1000)
    raw: list[tuple[int, float]] = [(1, float(i) ** -skew) for i in range(1, exact + 1)]
    if ads > exact:
        edges = sorted({int(round(exact * (ads / exact) ** (k / 400))) for k in range(401)})
        edges[0], edges[-1] = exact, ads
        for lo, hi in zip(edges, edges[1:]):
            a, b = lo + 1, hi  # ranks a..b inclusive
            if b < a:
                continue
            if abs(skew - 1.0) < 1e-12:
                weight = math.log((b + 0.5) / (a - 0.5))
            else:
                weight = ((b + 0.5) ** (1 - skew) - (a - 0.5) ** (1 - skew)) / (1 - skew)
            raw.append((b - a + 1, weight / (b - a + 1)))
    total = sum(n * w for n, w in raw)
    return tuple((n, w / total) for n, w in raw)


def top_ad_share(ads: int, skew: float) -> float:
    """Fraction of all clicks that go to the most popular ad."""
    return 1.0 / ads if skew == 0 else _popularity_bins(ads, skew)[0][1]


def distinct_ads(clicks: float, ads: int, skew: float) -> float:
    """Expected number of distinct ads among `clicks` (Poisson) clicks over `ads` ads with Zipf
    popularity (skew 0 = uniform: ads x (1 - e^(-clicks/ads)))."""
    if clicks <= 0:
        return 0.0
    if skew == 0:
        return ads * -math.expm1(-clicks / ads)
    return sum(n * -math.expm1(-clicks * p) for n, p in _popularity_bins(ads, skew))


def kpl_record_bytes(click_bytes: int, clicks_per_record: int) -> int:
    """Bytes of one Kinesis record carrying `clicks_per_record` clicks (KPL aggregation if > 1)."""
    if clicks_per_record == 1:
        return click_bytes
    return KPL_RECORD_HEADER_BYTES + clicks_per_record * (click_bytes + KPL_BYTES_PER_SUBRECORD)


@dataclass(frozen=True)
class StreamLoad:
    """What one Kinesis stream must carry: average and peak records/s, bytes per record."""
    records_s: float
    peak_records_s: float
    record_bytes: float
    consumers: int
    polls_per_shard_s: float


@dataclass(frozen=True)
class ShardNeed:
    by_write_bytes: float
    by_write_records: float
    by_read_bytes: float
    shards: int  # ceil(max(...) x headroom)

    @property
    def binding(self) -> str:
        needs = {"write bytes": self.by_write_bytes, "write records": self.by_write_records,
                 "read bytes": self.by_read_bytes}
        return max(needs, key=needs.get)


def shards_needed(load: StreamLoad, efo: bool = False, headroom: float = KINESIS_SHARD_HEADROOM,
                  minimum: int = 1) -> ShardNeed:
    """Provisioned shards for the peak: by write bytes (data + partition key, 1 MiB/s), by write
    records (1,000/s) and by reads (2 MiB/s per shard shared by polling consumers, or per
    consumer with enhanced fan-out), times the headroom."""
    write_bytes = load.peak_records_s * (load.record_bytes + PARTITION_KEY_BYTES)
    by_bytes = write_bytes / SHARD_WRITE_BYTES_S
    by_records = load.peak_records_s / SHARD_WRITE_RECORDS_S
    read_bytes = load.peak_records_s * load.record_bytes * (1 if efo else load.consumers)
    by_reads = read_bytes / SHARD_READ_BYTES_S
    shards = max(minimum, ceil_div(max(by_bytes, by_records, by_reads) * headroom, 1))
    return ShardNeed(by_bytes, by_records, by_reads, shards)


# ================================================================================ the plan
@dataclass(frozen=True)
class Inputs:
    rate: float
    peak: float
    click_bytes: int
    batch_size: int
    region: str
    api: str
    dedup: str
    clicks_per_record: int
    active_ads: int
    ad_skew: float
    minibatch_ms: int
    changelog_rows_per_record: int
    changelog_update_before: bool
    serving_resolutions: tuple[str, ...]
    kinesis_mode: str
    aggregates_kinesis_mode: str
    dedup_capacity: str
    serving_capacity: str
    serving_store: str
    kinesis_retention_hours: int
    dedup_ttl_s: int
    flink_dedup_ttl_s: int
    efo: bool
    archive_months: int


def plan(rate: float, peak: Optional[float] = None, click_bytes: int = 200, batch_size: int = 50,
         region: str = "us-east-1", api: str = "rest", dedup: str = "per_click",
         clicks_per_record: int = 1, *, active_ads: int = ACTIVE_ADS, ad_skew: float = AD_ZIPF_S,
         minibatch_ms: int = MINIBATCH_MS, changelog_rows_per_record: int = 1,
         changelog_update_before: bool = CHANGELOG_UPDATE_BEFORE,
         serving_resolutions: tuple[str, ...] = SERVING_RESOLUTIONS,
         kinesis_mode: str = "auto", aggregates_kinesis_mode: str = "auto",
         dedup_capacity: str = "auto", serving_capacity: str = "auto",
         serving_store: str = "dynamodb", kinesis_retention_hours: int = 168,
         dedup_ttl_s: int = 86400, flink_dedup_ttl_s: int = FLINK_DEDUP_TTL_S, efo: bool = False,
         archive_months: int = ARCHIVE_MONTHS, prices: Optional[PriceBook] = None) -> Plan:
    """Size every component for `peak` and cost it at the average `rate` (clicks/s)."""
    peak = rate if peak is None else peak
    x = Inputs(float(rate), float(peak), int(click_bytes), int(batch_size), region, api, dedup,
               int(clicks_per_record), int(active_ads), float(ad_skew), int(minibatch_ms),
               int(changelog_rows_per_record), bool(changelog_update_before),
               tuple(serving_resolutions), kinesis_mode, aggregates_kinesis_mode,
               dedup_capacity, serving_capacity, serving_store, int(kinesis_retention_hours),
               int(dedup_ttl_s), int(flink_dedup_ttl_s), bool(efo), int(archive_months))
    _validate(x)
    pb = prices or load_prices(region)
    api_c = _api(x, pb)
    ingest = _ingest_lambda(x, pb)
    dedup_c = _dedup_table(x, pb)
    clicks = _clicks_stream(x, pb)
    flink = _flink(x, pb)
    agg, sink, serving = _serving_path(x, pb)
    firehose, archive = _archive(x, pb)
    glue = _glue(x, pb)
    obs = _observability(x, pb, ingest, sink)
    athena = Component("athena", "Athena (ad-hoc queries)", "per query", counted=False)
    athena.notes.append(f"Not counted: billed per query ({pb['athena_scanned_tb'].describe()}), "
                        f"capped per query by athena_bytes_scanned_cutoff; partition projection "
                        f"+ Parquet keep a day's scan at the archive's compressed size.")
    components = [api_c, ingest, dedup_c, clicks, flink, agg, sink, serving, firehose, archive,
                  glue, obs, athena]
    p = Plan(_inputs_dict(x), pb.region, pb.as_of, components)
    p.account_warnings.extend(_account_checks(x, pb, p))
    return p


def _validate(x: Inputs) -> None:
    if x.rate <= 0:
        raise ValueError("rate must be > 0 clicks/s")
    if x.peak < x.rate:
        raise ValueError("peak must be >= rate (rate is the average)")
    if not 1 <= x.batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be within 1..{MAX_BATCH} (the API's MAX_BATCH)")
    if x.click_bytes < 1:
        raise ValueError("click_bytes must be >= 1")
    if x.clicks_per_record < 1 or kpl_record_bytes(x.click_bytes, x.clicks_per_record) > MAX_RECORD_BYTES:
        raise ValueError("clicks_per_record must be >= 1 and fit a 1 MiB Kinesis record")
    if x.changelog_rows_per_record < 1:
        raise ValueError("changelog_rows_per_record must be >= 1")
    for name, value, allowed in (("api", x.api, APIS), ("dedup", x.dedup, DEDUP_MODES),
                                 ("kinesis_mode", x.kinesis_mode, KINESIS_CHOICES),
                                 ("aggregates_kinesis_mode", x.aggregates_kinesis_mode, KINESIS_CHOICES),
                                 ("dedup_capacity", x.dedup_capacity, DDB_CHOICES),
                                 ("serving_capacity", x.serving_capacity, DDB_CHOICES),
                                 ("serving_store", x.serving_store, SERVING_STORES)):
        if value not in allowed:
            raise ValueError(f"{name} {value!r}: expected one of {allowed}")
    if x.active_ads < 1 or x.ad_skew < 0:
        raise ValueError("active_ads must be >= 1 and ad_skew >= 0")
    if x.minibatch_ms < 1:
        raise ValueError("minibatch_ms must be >= 1")
    if not set(x.serving_resolutions) <= set(RESOLUTION_SECONDS) or not {"1m", "1h"} <= set(
            x.serving_resolutions):
        raise ValueError("serving_resolutions: a subset of 1m, 5m, 1h, 1d with 1m and 1h "
                         "(the top-K queries read 1m and 1h buckets)")
    if not 24 <= x.kinesis_retention_hours <= 8760:
        raise ValueError("kinesis_retention_hours must be within 24..8760")
    if x.archive_months < 1:
        raise ValueError("archive_months must be >= 1")


def _inputs_dict(x: Inputs) -> dict[str, Any]:
    return {k: getattr(x, k) for k in Inputs.__dataclass_fields__}


# --- API Gateway -------------------------------------------------------------------------
def requests_per_s(x: Inputs) -> tuple[float, float]:
    return x.rate / x.batch_size, x.peak / x.batch_size


def response_bytes(batch_size: int) -> int:
    return RESPONSE_BASE_BYTES + RESPONSE_BYTES_PER_CLICK * batch_size


def _api(x: Inputs, pb: PriceBook) -> Component:
    c = Component("api", f"API Gateway ({x.api.upper()} API)", x.api)
    req_s, req_peak = requests_per_s(x)
    req_month = req_s * SECONDS_PER_MONTH
    request_bytes = REQUEST_ENVELOPE_BYTES + x.batch_size * x.click_bytes
    c.add("clicks per request", x.batch_size)
    c.add("requests/s average", req_s)
    c.add("requests/s peak", req_peak)
    c.add("requests per month", req_month)
    c.add("request body", request_bytes, "B")
    if x.api == "http":
        units = ceil_div(request_bytes, HTTP_API_METERING_BYTES)
        c.cost(pb, "requests", "apigw_http_requests", req_month * units)
    else:
        c.cost(pb, "requests", "apigw_rest_requests", req_month)
    dto_gb = req_month * response_bytes(x.batch_size) / GIB
    c.cost(pb, "responses to the internet", "data_transfer_out_internet", dto_gb)
    dto_usd = c.costs[-1].usd
    c.alternatives = {
        "rest": pb.cost("apigw_rest_requests", req_month) + dto_usd,
        "http": pb.cost("apigw_http_requests",
                        req_month * ceil_div(request_bytes, HTTP_API_METERING_BYTES)) + dto_usd}

    rate_limit = max(1, round_up_2sig(req_peak * API_RATE_HEADROOM))
    burst_limit = max(1, round_up_2sig(rate_limit * API_BURST_RATIO))
    c.add("stage/usage-plan rate limit", rate_limit, "req/s")
    c.add("stage/usage-plan burst", burst_limit, "req")
    c.context.update(ingest_rate_limit=rate_limit, ingest_burst_limit=burst_limit)
    quota_rps, quota_burst = pb.quota("apigw_account_rps"), pb.quota("apigw_account_burst")
    if rate_limit > quota_rps or burst_limit > quota_burst:
        c.warnings.append(
            f"QUOTA: needs {rate_limit:,} req/s (burst {burst_limit:,}) but the account-level "
            f"throttle is {quota_rps:,.0f} req/s, burst {quota_burst:,.0f} per region, shared by "
            f"every API in the account (the query API too): request an increase in Service "
            f"Quotas (API Gateway 'Throttle rate'), or send more clicks per request.")
    if x.api == "http":
        c.notes.append("HTTP API: no API keys or usage plans (per-caller throttling moves to a "
                       "Lambda/JWT authorizer or WAF), no request validator, no X-Ray tracing; "
                       "payload metered per 512 KB.")
    c.notes.append("Response bytes are billed as data transfer out (ad servers on the internet); "
                   "a counts-only response for fully accepted batches would remove most of it.")
    return c


# --- ingest Lambda -------------------------------------------------------------------------
def ingest_duration_ms(batch_size: int, dedup: str) -> float:
    if dedup == "per_click":
        return INGEST_BASE_MS + INGEST_PER_CLICK_MS * batch_size
    return INGEST_BASE_MS + IDEMPOTENCY_MS + INGEST_PER_CLICK_MS_NO_CLAIM * batch_size


def _ingest_lambda(x: Inputs, pb: PriceBook) -> Component:
    c = Component("ingest_lambda", "Ingest Lambda (arm64)", f"{INGEST_MEMORY_MB} MB")
    req_s, req_peak = requests_per_s(x)
    duration_s = ingest_duration_ms(x.batch_size, x.dedup) / 1000
    conc_avg, conc_peak = req_s * duration_s, req_peak * duration_s
    invocations = req_s * SECONDS_PER_MONTH
    gb_s = invocations * duration_s * INGEST_MEMORY_MB / 1024
    reserved = max(INGEST_MIN_RESERVED, ceil_div(conc_peak * LAMBDA_CONCURRENCY_HEADROOM, 1))
    c.add("duration per request", duration_s * 1000, "ms")
    c.add("concurrency average", conc_avg)
    c.add("concurrency peak", conc_peak)
    c.add("reserved concurrency", reserved)
    c.add("invocations per month", invocations)
    c.cost(pb, "requests", "lambda_requests", invocations)
    c.cost(pb, "compute", "lambda_arm_gb_s", gb_s)
    c.context.update(ingest_reserved_concurrency=reserved, ingest_memory_mb=INGEST_MEMORY_MB)
    c.notes.append("Duration is an assumption (INGEST_BASE_MS + per click), not a measurement: "
                   "run bench/ingest.py against AWS and replace it.")
    return c


# --- DynamoDB capacity helper -----------------------------------------------------------------
@dataclass(frozen=True)
class Capacity:
    mode: str
    on_demand_usd: float
    provisioned_usd: float
    min_wcu: int
    max_wcu: int


def ddb_capacity(pb: PriceBook, wcu_avg: float, wcu_peak: float, choice: str) -> Capacity:
    """On-demand (billed per write at the average) vs provisioned with autoscaling (capacity
    follows load at the target utilisation: average capacity = average / target; min below the
    nightly trough, max for the peak). 'auto' takes the cheaper."""
    on_demand = pb.cost("ddb_on_demand_wru", wcu_avg * SECONDS_PER_MONTH)
    provisioned = pb.cost("ddb_provisioned_wcu_hour", wcu_avg / DDB_TARGET_UTILIZATION * HOURS_PER_MONTH)
    mode = choice if choice != "auto" else ("provisioned" if provisioned < on_demand else "on_demand")
    min_wcu = max(1, ceil_div(wcu_avg * DDB_TROUGH_RATIO / DDB_TARGET_UTILIZATION, 1))
    max_wcu = max(min_wcu, ceil_div(wcu_peak / DDB_TARGET_UTILIZATION, 1))
    return Capacity(mode, on_demand, provisioned, min_wcu, max_wcu)


def _capacity_lines(c: Component, pb: PriceBook, cap: Capacity, wcu_avg: float) -> None:
    if cap.mode == "on_demand":
        c.cost(pb, "writes (on-demand)", "ddb_on_demand_wru", wcu_avg * SECONDS_PER_MONTH)
    else:
        c.cost(pb, "writes (provisioned, autoscaled)", "ddb_provisioned_wcu_hour",
               wcu_avg / DDB_TARGET_UTILIZATION * HOURS_PER_MONTH)


def _capacity_alternatives(c: Component, cap: Capacity, prefix: str = "") -> dict[str, float]:
    """The component's whole monthly cost under each capacity mode (storage etc. unchanged)."""
    chosen = cap.on_demand_usd if cap.mode == "on_demand" else cap.provisioned_usd
    rest = sum(line.usd for line in c.costs) - chosen
    return {f"{prefix}on_demand": cap.on_demand_usd + rest,
            f"{prefix}provisioned": cap.provisioned_usd + rest}


def _capacity_warnings(c: Component, pb: PriceBook, cap: Capacity, wcu_avg: float,
                       wcu_peak: float, what: str) -> None:
    table_quota = pb.quota("ddb_table_max_wcu")
    if wcu_peak > table_quota:
        c.warnings.append(f"QUOTA: {what} peaks at {wcu_peak:,.0f} WCU/s, over the table-level "
                          f"default of {table_quota:,.0f}: raise 'Table-level write throughput "
                          f"limit' in Service Quotas.")
    if cap.mode == "on_demand":
        c.notes.append(f"On-demand: set warm throughput to >= {wcu_peak:,.0f} writes/s (a new "
                       f"table starts at 4,000) and MaxWriteRequestUnits to {cap.max_wcu:,} as a "
                       f"cost guard; on-demand absorbs 2x its previous peak instantly.")
    else:
        c.notes.append(f"Provisioned + autoscaling at {DDB_TARGET_UTILIZATION:.0%}: min "
                       f"{cap.min_wcu:,} WCU, max {cap.max_wcu:,} WCU.")
        if wcu_peak > 2 * wcu_avg:
            c.warnings.append(f"peak is {wcu_peak / wcu_avg:.1f}x the average: autoscaling "
                              f"follows in minutes, so raise the minimum (scheduled scaling) "
                              f"before known events or writes are throttled until it catches up.")


# --- ingest dedup table ---------------------------------------------------------------------
def dedup_wcu_per_click(dedup: str, batch_size: int) -> float:
    if dedup == "per_click":
        return CLAIM_WCU + CONFIRM_WCU
    update_wcu = ceil_div(IDEMPOTENCY_ITEM_BASE_BYTES + response_bytes(batch_size), KIB)
    return (IDEMPOTENCY_PUT_WCU + update_wcu) / batch_size


def _dedup_table(x: Inputs, pb: PriceBook) -> Component:
    c = Component("dedup", "DynamoDB dedup table")
    per_click = dedup_wcu_per_click(x.dedup, x.batch_size)
    wcu_avg, wcu_peak = x.rate * per_click, x.peak * per_click
    cap = ddb_capacity(pb, wcu_avg, wcu_peak, x.dedup_capacity)
    c.mode = f"{x.dedup}, {cap.mode}"
    c.add("dedup", x.dedup)
    c.add("WCU per click", per_click)
    c.add("WCU/s average", wcu_avg)
    c.add("WCU/s peak", wcu_peak)
    if x.dedup == "per_click":
        items = x.rate * (x.dedup_ttl_s + DDB_TTL_DELETE_LAG_S)
        item_bytes = DEDUP_ITEM_BYTES
    else:
        items = x.rate / x.batch_size * (IDEMPOTENCY_TTL_S + DDB_TTL_DELETE_LAG_S)
        item_bytes = IDEMPOTENCY_ITEM_BASE_BYTES + response_bytes(x.batch_size)
    storage_gb = items * item_bytes / GIB
    c.add("items stored", items)
    c.add("storage", storage_gb, "GB")
    _capacity_lines(c, pb, cap, wcu_avg)
    c.cost(pb, "storage", "ddb_storage_gb_month", storage_gb)
    c.cost(pb, "point-in-time recovery", "ddb_pitr_gb_month", storage_gb)
    c.alternatives = _capacity_alternatives(c, cap)
    _capacity_warnings(c, pb, cap, wcu_avg, wcu_peak, "the dedup table")
    c.context.update(ingest_dedup_mode=x.dedup, dedup_ttl_s=x.dedup_ttl_s,
                     dedup_capacity_mode=cap.mode, dedup_min_wcu=cap.min_wcu,
                     dedup_max_wcu=cap.max_wcu,
                     dynamodb_target_utilization_pct=int(round(DDB_TARGET_UTILIZATION * 100)))
    if x.dedup == "per_request":
        c.notes.append("Per-request idempotency only catches a replay of a whole request; "
                       "re-sent clicks in other requests are left to Flink (30 min) and the "
                       "nightly batch (the day).")
    return c


# --- Kinesis stream costing helper --------------------------------------------------------------
@dataclass(frozen=True)
class StreamCost:
    mode: str
    on_demand_usd: float
    provisioned_usd: float
    need: ShardNeed


def _stream_costs(c: Component, pb: PriceBook, load: StreamLoad, choice: str, retention_h: int,
                  efo: bool, min_shards: int = 1) -> StreamCost:
    need = shards_needed(load, efo=efo, minimum=min_shards)
    records_month = load.records_s * SECONDS_PER_MONTH
    gb_per_hour = load.records_s * load.record_bytes * 3600 / GIB  # payload written per hour

    prov: list[tuple[str, str, float]] = [
        ("shard-hours", "kds_shard_hour", need.shards * HOURS_PER_MONTH),
        ("PUT payload units", "kds_put_payload_units",
         records_month * ceil_div(load.record_bytes, PUT_PAYLOAD_UNIT))]
    if retention_h > STANDARD_RETENTION_HOURS:
        prov.append(("extended retention", "kds_extended_retention_shard_hour",
                     need.shards * HOURS_PER_MONTH))
    if efo:
        prov.append(("enhanced fan-out consumer-shard-hours", "kds_efo_consumer_shard_hour",
                     load.consumers * need.shards * HOURS_PER_MONTH))
        prov.append(("enhanced fan-out data", "kds_efo_gb",
                     load.consumers * records_month * load.record_bytes / GIB))

    billed_gb = records_month * ceil_div(load.record_bytes, ON_DEMAND_RECORD_UNIT) * KIB / GIB
    od: list[tuple[str, str, float]] = [
        ("stream-hours", "kds_od_stream_hour", HOURS_PER_MONTH),
        ("data in (records rounded up to 1 KB)", "kds_od_ingest_gb", billed_gb),
        ("data out (x consumers, rounded up to 1 KB)",
         "kds_od_efo_retrieval_gb" if efo else "kds_od_retrieval_gb", billed_gb * load.consumers)]
    if retention_h > STANDARD_RETENTION_HOURS:
        od.append(("extended retention", "kds_od_extended_retention_gb_month",
                   gb_per_hour * (min(retention_h, EXTENDED_RETENTION_MAX_HOURS) - STANDARD_RETENTION_HOURS)))
    long_term = []
    if retention_h > EXTENDED_RETENTION_MAX_HOURS:
        long_term.append(("long-term retention", "kds_long_term_retention_gb_month",
                          gb_per_hour * (retention_h - EXTENDED_RETENTION_MAX_HOURS)))

    prov_usd = sum(pb.cost(k, q) for _, k, q in prov + long_term)
    od_usd = sum(pb.cost(k, q) for _, k, q in od + long_term)
    mode = choice if choice != "auto" else ("provisioned" if prov_usd < od_usd else "on_demand")
    for item, key, q in (prov if mode == "provisioned" else od) + long_term:
        c.cost(pb, item, key, q)
    c.alternatives.update(on_demand=od_usd, provisioned=prov_usd)
    c.mode = mode
    return StreamCost(mode, od_usd, prov_usd, need)


def _stream_warnings(c: Component, pb: PriceBook, load: StreamLoad, sc: StreamCost) -> None:
    if sc.mode == "on_demand":
        max_rec, max_mib = pb.quota("kds_od_max_records_s"), pb.quota("kds_od_max_write_mib_s")
        mib_s = load.peak_records_s * (load.record_bytes + PARTITION_KEY_BYTES) / MIB
        if load.peak_records_s > max_rec or mib_s > max_mib:
            c.warnings.append(
                f"QUOTA: peak {load.peak_records_s:,.0f} records/s, {mib_s:,.0f} MiB/s exceeds "
                f"the on-demand stream default ({max_rec:,.0f} records/s, {max_mib:,.0f} MiB/s): "
                f"request an increase, or pack clicks per record.")
        c.notes.append("On-demand scales to 2x the previous 30-day peak instantly; a first "
                       "spike beyond that is throttled for up to 15 min while it scales.")
    if load.polls_per_shard_s > SHARD_READ_CALLS_S:
        c.warnings.append(f"{load.polls_per_shard_s:g} GetRecords/s per shard from polling "
                          f"consumers exceeds {SHARD_READ_CALLS_S}: use enhanced fan-out.")


# --- clicks stream ------------------------------------------------------------------------------
def clicks_stream_load(x: Inputs) -> StreamLoad:
    k = x.clicks_per_record
    return StreamLoad(x.rate / k, x.peak / k, kpl_record_bytes(x.click_bytes, k), CLICK_CONSUMERS,
                      CLICK_CONSUMER_POLLS_S)


def _clicks_stream(x: Inputs, pb: PriceBook) -> Component:
    c = Component("clicks_stream", "Kinesis clicks stream")
    load = clicks_stream_load(x)
    sc = _stream_costs(c, pb, load, x.kinesis_mode, x.kinesis_retention_hours, x.efo)
    need = sc.need
    c.add("clicks per record", x.clicks_per_record)
    c.add("record bytes", load.record_bytes, "B")
    c.add("records/s average", load.records_s)
    c.add("records/s peak", load.peak_records_s)
    c.add("write MB/s peak", load.peak_records_s * (load.record_bytes + PARTITION_KEY_BYTES) / 1e6, "MB/s")
    c.add("shards by write bytes", need.by_write_bytes)
    c.add("shards by write records", need.by_write_records)
    c.add(f"shards by reads ({'EFO' if x.efo else f'{load.consumers} shared consumers'})", need.by_read_bytes)
    c.add("binding limit", need.binding)
    c.add("provisioned shards", need.shards)
    top_peak = x.peak * top_ad_share(x.active_ads, x.ad_skew)
    salts = ceil_div(top_peak, SHARD_WRITE_RECORDS_S / KINESIS_SHARD_HEADROOM)
    c.add("top ad clicks/s at peak", top_peak)
    c.context.update(kinesis_mode=sc.mode, kinesis_shards=need.shards,
                     kinesis_retention_hours=x.kinesis_retention_hours)
    _stream_warnings(c, pb, load, sc)
    if salts > 1 and x.clicks_per_record == 1:
        c.warnings.append(f"the top ad alone sends ~{top_peak:,.0f} clicks/s at peak (Zipf "
                          f"s={x.ad_skew:g}): more than one shard takes; list hot ads in "
                          f"hot_ad_salts with ~{salts} salts each.")
    if x.clicks_per_record > 1:
        c.notes.append("Packed records (KPL aggregation format): Firehose de-aggregates them; "
                       "the Flink source must de-aggregate too; one partition key per record, "
                       "so an ad's clicks no longer stay on one shard (Flink SQL re-keys by ad).")
    return c


# --- Managed Flink --------------------------------------------------------------------------------
def agg_state_keys(x: Inputs, rate: float) -> float:
    """Aggregate keys alive in Flink: per resolution, live buckets x distinct ads per bucket."""
    total = 0.0
    for res in x.serving_resolutions:
        seconds = RESOLUTION_SECONDS[res]
        live_buckets = math.ceil((seconds + ALLOWED_LATENESS_S + AGG_STATE_MARGIN_S) / seconds)
        total += live_buckets * distinct_ads(rate * seconds, x.active_ads, x.ad_skew)
    return total


def _flink(x: Inputs, pb: PriceBook) -> Component:
    c = Component("flink", "Managed Service for Apache Flink")
    dedup_keys = FLINK_DEDUP_STATES * x.peak * x.flink_dedup_ttl_s
    agg_keys = agg_state_keys(x, x.peak)
    state_gb = (dedup_keys + agg_keys) * FLINK_STATE_BYTES_PER_KEY / GIB
    by_throughput = x.peak * FLINK_HEADROOM / FLINK_CLICKS_PER_KPU_S
    by_state = state_gb / (FLINK_KPU_STORAGE_GB * FLINK_STATE_DISK_FRACTION)
    kpus = max(1, ceil_div(max(by_throughput, by_state), 1))
    parallelism = kpus * FLINK_PARALLELISM_PER_KPU
    c.mode = f"{kpus} KPU"
    c.add("KPUs by throughput (peak x headroom)", by_throughput)
    c.add("KPUs by state (local disk)", by_state)
    c.add("state: dedup keys", dedup_keys)
    c.add("state: aggregate keys", agg_keys)
    c.add("state size", state_gb, "GB")
    c.add("KPUs", kpus)
    c.add("parallelism", parallelism)
    c.cost(pb, "KPU-hours (+1 orchestration KPU)", "flink_kpu_hour",
           (kpus + FLINK_ORCHESTRATION_KPUS) * HOURS_PER_MONTH)
    c.cost(pb, "running application storage", "flink_running_storage_gb_month",
           kpus * FLINK_KPU_STORAGE_GB)
    c.cost(pb, "snapshots", "flink_backup_gb_month", state_gb * FLINK_SNAPSHOTS_RETAINED)
    c.context.update(flink_parallelism=parallelism,
                     flink_parallelism_per_kpu=FLINK_PARALLELISM_PER_KPU,
                     minibatch_latency_ms=x.minibatch_ms)
    if kpus > pb.quota("flink_kpus_per_app"):
        c.warnings.append(f"QUOTA: {kpus} KPUs exceeds the default {pb.quota('flink_kpus_per_app'):,.0f} "
                          f"KPUs per application: request an increase.")
    c.notes.append(f"Sized for peak: flink_parallelism is also autoscaling's minimum, so the job "
                   f"never scales below it; throughput per KPU ({FLINK_CLICKS_PER_KPU_S:,}/s) is "
                   f"an extrapolation from a laptop measurement: load-test before trusting it.")
    return c


# --- aggregates stream, sink Lambda, serving store ---------------------------------------------
@dataclass(frozen=True)
class ServingLoad:
    keys_per_batch: float  # distinct ads touched per mini-batch
    agg_upserts_s: float  # series updates/s (all resolutions)
    top_upserts_s: float  # leaderboard entry updates/s (all boards)
    changelog_rows_s: float  # rows on the aggregates stream
    serving_writes_s: float  # DynamoDB writes (without freshness)


def serving_load(x: Inputs, rate: float) -> ServingLoad:
    interval_s = x.minibatch_ms / 1000
    keys = distinct_ads(rate * interval_s, x.active_ads, x.ad_skew)
    agg_upserts = len(x.serving_resolutions) * keys / interval_s
    top_upserts = LEADERBOARDS * min(LEADERBOARD_SIZE, keys) / interval_s
    rows_per_update = 2 if x.changelog_update_before else 1
    rows = (agg_upserts + top_upserts) * rows_per_update
    # DynamoDB store: agg retractions are skipped; a leaderboard retraction writes a tombstone.
    writes = agg_upserts + top_upserts * rows_per_update
    return ServingLoad(keys, agg_upserts, top_upserts, rows, writes)


def _serving_path(x: Inputs, pb: PriceBook) -> tuple[Component, Component, Component]:
    avg, peak = serving_load(x, x.rate), serving_load(x, x.peak)
    k = x.changelog_rows_per_record
    record_bytes = CHANGELOG_ROW_BYTES if k == 1 else KPL_RECORD_HEADER_BYTES + k * (
        CHANGELOG_ROW_BYTES + KPL_BYTES_PER_SUBRECORD)

    # sink concurrency needed at peak decides the minimum number of shards (<= 10 lanes/shard)
    sink_conc_peak = peak.serving_writes_s / SINK_WRITES_PER_S_PER_INVOCATION
    lanes = max(1, ceil_div(sink_conc_peak * SINK_CONCURRENCY_HEADROOM, 1))
    max_pf = int(pb.quota("esm_max_parallelization_factor"))

    # --- aggregates stream
    agg = Component("aggregates_stream", "Kinesis aggregates stream")
    load = StreamLoad(avg.changelog_rows_s / k, peak.changelog_rows_s / k, record_bytes, 1, 1)
    sc = _stream_costs(agg, pb, load, x.aggregates_kinesis_mode, 24, False,
                       min_shards=ceil_div(lanes, max_pf))
    shards_in_use = sc.need.shards if sc.mode == "provisioned" else max(
        ON_DEMAND_MIN_SHARDS, ceil_div(max(sc.need.by_write_bytes, sc.need.by_write_records), 1))
    agg.add("distinct ads per mini-batch (average)", avg.keys_per_batch)
    agg.add("series upserts/s average", avg.agg_upserts_s)
    agg.add("leaderboard upserts/s average", avg.top_upserts_s)
    agg.add("changelog rows/s average", avg.changelog_rows_s)
    agg.add("changelog rows/s peak", peak.changelog_rows_s)
    agg.add("changelog rows per click (average)", avg.changelog_rows_s / x.rate)
    agg.add("rows per record", k)
    agg.add("shards by write bytes", sc.need.by_write_bytes)
    agg.add("shards by write records", sc.need.by_write_records)
    agg.add("binding limit", sc.need.binding)
    agg.add("provisioned shards", sc.need.shards)
    agg.add("shards in use (estimate)", shards_in_use)
    agg.context.update(aggregates_kinesis_mode=sc.mode, aggregates_kinesis_shards=sc.need.shards)
    _stream_warnings(agg, pb, load, sc)
    if avg.changelog_rows_s > x.rate:
        agg.warnings.append(
            f"the changelog carries {avg.changelog_rows_s / x.rate:.1f} rows per click: with "
            f"{x.active_ads:,} active ads most ads see < 1 click per {x.minibatch_ms / 1000:g} s "
            f"mini-batch, so a click updates {len(x.serving_resolutions)} series"
            f"{' (x2 rows with -U)' if x.changelog_update_before else ''}. "
            f"Levers: longer emit interval for coarse resolutions, drop -U rows (upsert sink), "
            f"pack rows per record.")

    # --- sink Lambda
    sink = Component("sink_lambda", "Sink Lambda (arm64, Kinesis ESM)", f"{SINK_MEMORY_MB} MB")
    pf = min(max_pf, max(1, ceil_div(lanes, shards_in_use)))
    # Full batches when busy; otherwise each lane with rows invokes about once per batching
    # window (+ ~1 s of processing): many lanes on a thin stream mean many small batches.
    invocations_s = max(avg.changelog_rows_s / SINK_BATCH_SIZE,
                        min(shards_in_use * pf, avg.changelog_rows_s) / (SINK_BATCHING_WINDOW_S + 1))
    busy_s = avg.serving_writes_s / SINK_WRITES_PER_S_PER_INVOCATION  # average concurrency
    sink.add("serving writes/s average", avg.serving_writes_s)
    sink.add("serving writes/s peak", peak.serving_writes_s)
    sink.add("concurrency needed at peak", sink_conc_peak)
    sink.add("lanes (shards x parallelization factor)", shards_in_use * pf)
    sink.add("parallelization factor", pf)
    sink.add("invocations/s average", invocations_s)
    sink.cost(pb, "requests", "lambda_requests", invocations_s * SECONDS_PER_MONTH)
    sink.cost(pb, "compute", "lambda_arm_gb_s", busy_s * SINK_MEMORY_MB / 1024 * SECONDS_PER_MONTH)
    sink.context.update(sink_parallelization_factor=pf, sink_batch_size=SINK_BATCH_SIZE,
                        sink_memory_mb=SINK_MEMORY_MB)
    if shards_in_use * pf < sink_conc_peak:
        sink.warnings.append(f"{shards_in_use} shards x {pf} lanes < {sink_conc_peak:,.0f} "
                             f"concurrent invocations needed at peak: add aggregates shards.")
    freshness_s = invocations_s * FRESHNESS_WRITES_PER_INVOCATION
    partition_max = pb.quota("ddb_partition_max_wcu")
    # Freshness writes spread over `slots` items (common.serving_keys), one per aggregates shard's
    # hash. Enough slots that the busiest takes at most half a partition's writes at peak, with a
    # x2 margin for uneven hashing; a multiple of 8, at least the default, at most one
    # BatchGetItem (every query reads them all: slots x 0.5 RCU).
    freshness_peak_s = freshness_s * x.peak / x.rate
    needed = ceil_div(freshness_peak_s * 2, partition_max / 2)
    slots = min(MAX_FRESHNESS_SLOTS, max(DEFAULT_FRESHNESS_SLOTS, ceil_div(needed, 8) * 8))
    slots_in_use = min(slots, max(1, shards_in_use))  # a shard writes one slot
    per_slot_peak = freshness_peak_s / slots_in_use * 2  # x2: uneven hashing
    sink.add("freshness slots", slots)
    sink.add("freshness updates/s at peak, busiest slot (x2 margin)", per_slot_peak)
    sink.context.update(freshness_slots=slots)
    if x.serving_store == "dynamodb" and per_slot_peak > partition_max / 2:
        sink.warnings.append(f"~{per_slot_peak:,.0f} freshness updates/s at peak on the busiest of "
                             f"{slots_in_use} freshness slots (partition limit {partition_max:,.0f} "
                             f"WCU/s): add aggregates shards (one shard writes one slot) or write "
                             f"only when the watermark moved.")

    # --- serving store
    serving = Component("serving", f"Serving store ({x.serving_store})")
    ddb_wcu_avg = avg.serving_writes_s + freshness_s
    ddb_wcu_peak = peak.serving_writes_s + freshness_s * x.peak / x.rate
    cap = ddb_capacity(pb, ddb_wcu_avg, ddb_wcu_peak, x.serving_capacity)
    storage_gb = serving_storage_items(x) * SERVING_ITEM_BYTES / GIB
    ddb_storage_usd = pb.cost("ddb_storage_gb_month", storage_gb) + pb.cost("ddb_pitr_gb_month", storage_gb)
    ts_lines = timestream_lines(x, avg)
    ts_usd = sum(pb.cost(key, q) for _, key, q in ts_lines)
    serving.add("writes/s average (incl. freshness)", ddb_wcu_avg)
    serving.add("writes/s peak", ddb_wcu_peak)
    serving.add("writes per click (average)", ddb_wcu_avg / x.rate)
    if x.serving_store == "dynamodb":
        serving.mode = f"dynamodb, {cap.mode}"
        serving.add("storage after horizon", storage_gb, "GB")
        _capacity_lines(serving, pb, cap, ddb_wcu_avg)
        serving.cost(pb, "storage", "ddb_storage_gb_month", storage_gb)
        serving.cost(pb, "point-in-time recovery", "ddb_pitr_gb_month", storage_gb)
        serving.alternatives = _capacity_alternatives(serving, cap, "dynamodb ")
        growth_gb = (sum(_buckets_per_day(x, r) for r in x.serving_resolutions if r != "1m")
                     + LEADERBOARD_SIZE * 24) * DAYS_PER_MONTH * SERVING_ITEM_BYTES / GIB
        serving.notes.append(f"Only 1m items expire (minute_ttl_s): coarser series grow the "
                             f"table by ~{growth_gb:,.0f} GB/month; storage is shown after "
                             f"{SERVING_HORIZON_MONTHS} months.")
        _capacity_warnings(serving, pb, cap, ddb_wcu_avg, ddb_wcu_peak, "the serving table")
    else:
        serving.mode = "timestream"
        for item, key, q in ts_lines:
            serving.cost(pb, item, key, q)
        serving.notes.append("Timestream for LiveAnalytics is closed to new AWS customers "
                             "since 2025-06-20.")
        serving.alternatives = {"dynamodb on_demand": cap.on_demand_usd + ddb_storage_usd,
                                "dynamodb provisioned": cap.provisioned_usd + ddb_storage_usd}
    serving.alternatives["timestream"] = ts_usd
    serving.context.update(serving_store=x.serving_store, serving_capacity_mode=cap.mode,
                           serving_min_wcu=cap.min_wcu, serving_max_wcu=cap.max_wcu)
    serving.notes.append("Query API reads are not counted (per query).")
    return agg, sink, serving


def serving_storage_items(x: Inputs) -> float:
    """Serving-table items after SERVING_HORIZON_MONTHS: 1m series/boards within minute_ttl,
    coarser series and 1h boards kept forever."""
    days = SERVING_HORIZON_MONTHS * DAYS_PER_MONTH
    minute_items = (distinct_ads(x.rate * 60, x.active_ads, x.ad_skew) + LEADERBOARD_SIZE) * MINUTE_TTL_S / 60
    forever = sum(_buckets_per_day(x, res) for res in x.serving_resolutions if res != "1m") * days
    return minute_items + forever + LEADERBOARD_SIZE * 24 * days


def _buckets_per_day(x: Inputs, res: str) -> float:
    """Series items one day adds at resolution `res`: buckets per day x distinct ads per bucket."""
    seconds = RESOLUTION_SECONDS[res]
    return 86400 / seconds * distinct_ads(x.rate * seconds, x.active_ads, x.ad_skew)


def timestream_lines(x: Inputs, avg: ServingLoad) -> list[tuple[str, str, float]]:
    """Timestream alternative: a write per series upsert (leaderboards are SQL there), memory
    store holding TIMESTREAM_MEMORY_HOURS of buckets, magnetic store for the horizon."""
    per_day = sum(_buckets_per_day(x, res) for res in x.serving_resolutions)
    memory_gb = per_day * TIMESTREAM_MEMORY_HOURS / 24 * TIMESTREAM_RECORD_BYTES / GIB
    magnetic_gb = per_day * SERVING_HORIZON_MONTHS * DAYS_PER_MONTH * TIMESTREAM_RECORD_BYTES / GIB
    writes = avg.agg_upserts_s * SECONDS_PER_MONTH * ceil_div(TIMESTREAM_RECORD_BYTES, KIB)
    return [("writes (1 KB units)", "timestream_writes", writes),
            ("memory store", "timestream_memory_gb_hour", memory_gb * HOURS_PER_MONTH),
            ("magnetic store after horizon", "timestream_magnetic_gb_month", magnetic_gb)]


# --- Firehose + S3 archive ------------------------------------------------------------------------
def firehose_buffering(x: Inputs) -> tuple[int, int, float]:
    """(buffer MB, interval s, seconds between objects): the buffer fills at the JSON input rate;
    when that takes longer than FIREHOSE_INTERVAL_S the interval is stretched (<= 900 s) so
    objects stay big."""
    input_bytes_s = x.rate * x.click_bytes
    fill_s = FIREHOSE_BUFFER_MB * MIB / input_bytes_s
    interval = FIREHOSE_INTERVAL_S if fill_s <= FIREHOSE_INTERVAL_S else min(
        FIREHOSE_MAX_INTERVAL_S, ceil_div(fill_s, 60) * 60)
    return FIREHOSE_BUFFER_MB, interval, min(fill_s, interval)


def _archive(x: Inputs, pb: PriceBook) -> tuple[Component, Component]:
    fh = Component("firehose", "Firehose (clicks -> Parquet)")
    load = clicks_stream_load(x)
    records_month = load.records_s * SECONDS_PER_MONTH
    billed_gb = records_month * ceil_div(load.record_bytes, FIREHOSE_RECORD_UNIT) * FIREHOSE_RECORD_UNIT / GIB
    actual_gb = x.rate * x.click_bytes * SECONDS_PER_MONTH / GIB
    buffer_mb, interval_s, object_every_s = firehose_buffering(x)
    objects_hour = 3600 / object_every_s
    object_mb = object_every_s * x.rate * x.click_bytes * PARQUET_RATIO / 1e6
    fh.mode = f"{buffer_mb} MB / {interval_s} s"
    fh.add("records per month", records_month)
    fh.add("JSON data per month", actual_gb, "GB")
    fh.add("billed (records rounded up to 5 KB)", billed_gb, "GB")
    fh.add("buffer fills every", object_every_s, "s")
    fh.add("objects per hour", objects_hour)
    fh.add("Parquet object size", object_mb, "MB")
    fh.cost(pb, "ingestion (5 KB units)", "firehose_kds_ingest_gb", billed_gb)
    fh.cost(pb, "format conversion to Parquet", "firehose_format_conversion_gb", billed_gb)
    fh.context.update(firehose_buffer_mb=buffer_mb, firehose_buffer_interval_s=interval_s)
    if billed_gb > 2 * actual_gb:
        fh.notes.append(f"Firehose bills {billed_gb / actual_gb:.0f}x the data: each "
                        f"{load.record_bytes:,} B record counts as 5 KB; packing "
                        f"{FIREHOSE_RECORD_UNIT // max(1, x.click_bytes + KPL_BYTES_PER_SUBRECORD)} "
                        f"clicks per record fills the unit.")
    fh.notes.append("A Kinesis-sourced delivery stream reads shards in parallel and may close "
                    "more, smaller objects than one buffer per interval.")

    s3 = Component("archive", "S3 archive (Parquet)")
    parquet_gb_month = actual_gb * PARQUET_RATIO
    objects_month = objects_hour * HOURS_PER_MONTH
    months = x.archive_months
    standard_gb = parquet_gb_month * min(months, ARCHIVE_STANDARD_MONTHS)
    ia_gb = parquet_gb_month * max(0, min(months - ARCHIVE_STANDARD_MONTHS, ARCHIVE_IA_MONTHS))
    cold_gb = parquet_gb_month * max(0, months - ARCHIVE_STANDARD_MONTHS - ARCHIVE_IA_MONTHS)
    s3.mode = f"after {months} months"
    s3.add("Parquet per month", parquet_gb_month, "GB")
    s3.add("stored: Standard", standard_gb, "GB")
    s3.add("stored: Standard-IA", ia_gb, "GB")
    s3.add("stored: Glacier Instant Retrieval", cold_gb, "GB")
    s3.add("objects per month", objects_month)
    s3.cost(pb, "Standard storage", "s3_standard_gb_month", standard_gb)
    s3.cost(pb, "Standard-IA storage", "s3_ia_gb_month", ia_gb)
    s3.cost(pb, "Glacier IR storage", "s3_glacier_ir_gb_month", cold_gb)
    s3.cost(pb, "PUT requests", "s3_put_requests", objects_month * S3_REQUESTS_PER_OBJECT)
    s3.cost(pb, "lifecycle transitions to IA", "s3_transition_ia", objects_month)
    s3.cost(pb, "lifecycle transitions to Glacier IR", "s3_transition_glacier_ir", objects_month)
    s3.notes.append("Storage grows every month (no expiry): the cost shown is month "
                    f"{months}'s; Glue output and Athena results are small and not counted.")
    return fh, s3


# --- Glue -------------------------------------------------------------------------------------------
def _glue(x: Inputs, pb: PriceBook) -> Component:
    c = Component("glue", "Glue 5.0 nightly billing job")
    clicks_per_run = x.rate * 86400 * GLUE_READ_FACTOR
    dpu_hours = clicks_per_run / GLUE_CLICKS_PER_DPU_S / 3600
    workers = max(GLUE_MIN_WORKERS, ceil_div(dpu_hours / GLUE_TARGET_HOURS, GLUE_DPU_PER_WORKER))
    run_hours = dpu_hours / (workers * GLUE_DPU_PER_WORKER)
    billed = max(dpu_hours, workers * GLUE_DPU_PER_WORKER * GLUE_MIN_BILLED_HOURS)
    c.mode = f"{workers} x {GLUE_WORKER_TYPE}"
    c.add("clicks read per run", clicks_per_run)
    c.add("DPU-hours per run", dpu_hours)
    c.add("workers", workers)
    c.add("run time", run_hours * 60, "min")
    c.cost(pb, f"DPU-hours ({DAYS_PER_MONTH:.1f} runs)", "glue_dpu_hour", billed * DAYS_PER_MONTH)
    c.context.update(billing_glue_worker_type=GLUE_WORKER_TYPE, billing_glue_workers=workers)
    c.notes.append(f"Throughput {GLUE_CLICKS_PER_DPU_S:,} clicks/s per DPU extrapolated from a "
                   f"local Spark run; measure one day on Glue and adjust.")
    return c


# --- observability ------------------------------------------------------------------------------------
def xray_traces_s(requests_s: float) -> float:
    sampled_beyond_reservoir = XRAY_FIXED_RATE * max(0.0, requests_s - XRAY_RESERVOIR_PER_S)
    return min(requests_s, XRAY_RESERVOIR_PER_S) + sampled_beyond_reservoir


def _observability(x: Inputs, pb: PriceBook, ingest: Component, sink: Component) -> Component:
    c = Component("observability", "CloudWatch Logs + X-Ray", "1-month logs, default sampling")
    req_s, _ = requests_per_s(x)
    sink_inv_s = sink.metric("invocations/s average")
    access_gb = req_s * ACCESS_LOG_BYTES * SECONDS_PER_MONTH / GIB
    lambda_gb = (req_s + sink_inv_s) * LAMBDA_LOG_BYTES_PER_INVOCATION * SECONDS_PER_MONTH / GIB
    traces = (xray_traces_s(req_s) + xray_traces_s(sink_inv_s)) * SECONDS_PER_MONTH
    c.add("API access logs", access_gb, "GB/month")
    c.add("Lambda logs", lambda_gb, "GB/month")
    c.add("X-Ray traces", traces, "per month")
    c.cost(pb, "log ingestion", "cw_logs_ingest_gb", access_gb + lambda_gb)
    c.cost(pb, "log storage (1 month, compressed)", "cw_logs_storage_gb_month",
           (access_gb + lambda_gb) * LOG_STORAGE_RATIO * LOG_RETENTION_MONTHS)
    c.cost(pb, "X-Ray traces recorded", "xray_traces_recorded", traces)
    c.notes.append("Custom metrics, alarms, dashboards and KMS requests (data keys are cached) "
                   "are a few hundred dollars at most and not counted.")
    return c


# --- account-wide quota checks -----------------------------------------------------------------------
def _account_checks(x: Inputs, pb: PriceBook, p: Plan) -> list[str]:
    out = []
    lambda_need = p.component("ingest_lambda").metric("reserved concurrency") + math.ceil(
        p.component("sink_lambda").metric("concurrency needed at peak") * SINK_CONCURRENCY_HEADROOM)
    usable = pb.quota("lambda_concurrency") - pb.quota("lambda_unreserved_min")
    if lambda_need > usable:
        out.append(f"QUOTA: ingest reserved + sink peak concurrency = {lambda_need:,} > "
                   f"{usable:,.0f} usable of the default {pb.quota('lambda_concurrency'):,.0f} "
                   f"concurrent executions: raise 'Concurrent executions'.")
    shards = sum(p.component(k).metric("provisioned shards")
                 for k in ("clicks_stream", "aggregates_stream")
                 if p.component(k).mode == "provisioned")
    if shards > pb.quota("kds_shards_per_account"):
        out.append(f"QUOTA: {shards:,} provisioned shards > the account's "
                   f"{pb.quota('kds_shards_per_account'):,.0f}: raise 'Shards per Region'.")
    wcu = sum(p.component(k).context[f"{k}_max_wcu"] for k in ("dedup", "serving")
              if p.component(k).context.get(f"{k}_capacity_mode") == "provisioned"
              and not (k == "serving" and x.serving_store != "dynamodb"))
    if wcu > pb.quota("ddb_account_max_wcu"):
        out.append(f"QUOTA: provisioned tables may scale to {wcu:,} WCU > the account-level "
                   f"{pb.quota('ddb_account_max_wcu'):,.0f}: raise 'Account-level write "
                   f"throughput limit (provisioned mode)'.")
    return out


# ================================================================================ levers
@dataclass(frozen=True)
class LeverResult:
    lever: str
    setting: str
    is_base: bool
    monthly_usd: float
    usd_per_million: float
    delta_pct: float
    caveat: str


LEVERS: tuple[tuple[str, str, tuple[tuple[Any, str, str], ...]], ...] = (
    ("clicks per API request", "batch_size", (
        (1, "1", "one click per request (no SDK batching)"),
        (10, "10", ""),
        (50, "50", ""),
        (100, "100", ""),
        (500, "500", "the API's maximum batch; client-side latency up to the batch fill time"))),
    ("API type", "api", (
        ("rest", "REST", "API keys + usage plans, request validator, X-Ray"),
        ("http", "HTTP", "no API keys/usage plans (authorizer or WAF instead), no validator, no X-Ray"))),
    ("ingest dedup", "dedup", (
        ("per_click", "per click (claim + confirm)", "catches any re-sent click within 24 h at ingest"),
        ("per_request", "per request (Powertools Idempotency)",
         "catches only whole-request replays; re-sent clicks rely on Flink (30 min) and the nightly batch"))),
    ("clicks per Kinesis record", "clicks_per_record", (
        (1, "1", ""),
        (4, "4 (~1 KB: the on-demand unit)", "KPL aggregation: Flink source and Firehose de-aggregate"),
        (20, "20 (~5 KB: the Firehose unit)", "KPL aggregation: Flink source and Firehose de-aggregate"))),
    ("mini-batch (emit) interval", "minibatch_ms", (
        (2000, "2 s", ""),
        (10000, "10 s", "dashboards update every 10 s"),
        (60000, "60 s", "dashboards update every minute"))),
    ("changelog -U rows", "changelog_update_before", (
        (True, "-U + +U (debezium-json retract)", ""),
        (False, "+U only (upsert changelog)",
         "the job emits upserts; the sink already ignores series retractions; leaderboard "
         "exits need explicit deletes"))),
    ("emitted series resolutions", "serving_resolutions", (
        (SERVING_RESOLUTIONS, "1m, 5m, 1h, 1d", ""),
        (("1m", "1h"), "1m, 1h (5m and 1d summed at query time)",
         "the query API sums 5 x 1m / 24 x 1h buckets"))),
    ("changelog rows per aggregates record", "changelog_rows_per_record", (
        (1, "1", ""),
        (50, "50", "the Flink sink packs rows; the sink Lambda unpacks"))),
    ("bytes per click on the stream", "click_bytes", (
        (200, "200 B (seed)", ""),
        (500, "500 B (encode_click with a browser user agent)", "sensitivity, not a lever"))),
)


def compare_levers(**base: Any) -> list[LeverResult]:
    """Each lever setting applied alone to the base inputs (modes re-chosen per setting)."""
    reference = plan(**base)
    out = []
    for lever, param, settings in LEVERS:
        for value, label, caveat in settings:
            p = reference if base.get(param, _default(param)) == value else plan(**{**base, param: value})
            out.append(LeverResult(lever, label, p is reference, p.monthly_usd,
                                   p.usd_per_million_clicks,
                                   (p.monthly_usd / reference.monthly_usd - 1) * 100, caveat))
    return out


def _default(param: str) -> Any:
    import inspect

    return inspect.signature(plan).parameters[param].default
