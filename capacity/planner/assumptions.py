"""Every number the planner uses that is neither an input nor a price, with its reason.

docs/capacity.md lists the ASSUMPTIONS block below (name, value, comment): keep one constant per
line. Constants that are also deployed settings (memory sizes, lateness, TTLs, batch sizes,
buffer sizes, ...) are not typed here: they are the one schema's defaults (common.schema), so
the planner sizes what the stack deploys.
"""
from __future__ import annotations

import json

from common.records import encode_event
from common.schema import BY_NAME, DEDUP_MARK, DEDUP_PER_CLICK, default  # noqa: F401 (re-exported)
from common.schema import DEDUP_MODES as SCHEMA_DEDUP_MODES
from common.schema import MARK_READ_RCU as SCHEMA_MARK_READ_RCU
from serving.keys import LEADERBOARD_RESOLUTIONS

# Typical events-stream records (ingest.events' impression_record / conversion_record), measured
# below with common.records.encode_event, so the planner follows the record's schema: UUID ids
# (the Python SDK's uuid7 for impressions, conversions and clicks), 10-character ad, campaign,
# advertiser, placement and publisher ids, an API Gateway request id, an IPv4 source address.
_UUID = "0192f3a4-5b6c-7d8e-9f01-23456789abcd"
_IDS = dict(schema_version=1, ad_id="ad-0001234", campaign_id="cmp-000123",
            advertiser_id="adv-00012", event_time=1733450000123, impression_id=_UUID,
            placement_id="plc-000042", publisher_id="pub-000007", ingest_time=1733450000456,
            request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef", source_ip="203.0.113.17")
TYPICAL_IMPRESSION = dict(_IDS, event_type="impression", event_id=_UUID, user_id="u-0123456789abcdef")
TYPICAL_CONVERSION = dict(_IDS, event_type="conversion", event_id=_UUID[:-4] + "cccc",
                          click_id=_UUID[:-4] + "bbbb", value_micros=49_990_000, currency="USD",
                          attributed_by="token")
# One pacing decision as docs/budget.md's example shows it (the campaign id as above), compact JSON
# like every answer of the API (common.responses): its length is PACING_DECISION_BYTES.
TYPICAL_DECISION = {
    "campaign_id": _IDS["campaign_id"], "decision": "throttle", "serve_fraction": 0.42,
    "reason": "ahead_of_plan", "day": "2026-12-06", "daily_budget_micros": 5_000_000,
    "lifetime_budget_micros": None, "pacing": "even", "spent_today_micros": 2_100_000,
    "remaining_micros": 2_900_000, "lifetime_spent_micros": None, "planned_spend_micros": 2_050_000,
    "velocity_micros_per_s": 812.5, "margin_micros": 1_950,
    "projected_exhaustion": "2026-12-06T16:59:41Z", "figure_age_ms": 1_830,
    "stale_after_ms": 10_000, "valid_for_ms": 1_000, "as_of": "2026-12-06T16:00:00.120Z"}

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
EVENT_REQUEST_BYTES = 305  # one impression in a POST /v1/events body as the Python SDK sends it (UUID ids): measured 305 B
RESPONSE_BYTES_PER_EVENT = 98  # {"index":n,"type":"impression","id":"<UUID>","status":"accepted"}: measured 98 B per item (500-impression answer)
HTTP_API_METERING_BYTES = 512 * KIB  # HTTP APIs bill one request per started 512 KB of payload
ACCESS_LOG_BYTES = 400  # one JSON access-log line per request (12 fields + error message)

# --- ingest Lambda (arm64, Powertools layer)
INGEST_MEMORY_MB = default("ingest_memory_mb")  # ingest_memory_mb; the duration numbers below assume this size (~0.58 vCPU)
INGEST_BASE_MS = 25.0  # per request: proxy event + JSON parse, one PutRecords and one BatchWriteItem round trip, response
# Per click with per-click dedup: one conditional PutItem per click. With 32 threads the network
# waits overlap, but boto3's serialise + SigV4 + TLS write/parse is CPU (~0.9 ms on a full vCPU,
# ~1.5 ms at 1024 MB), plus validation and record encoding. Replace by a measurement on AWS.
INGEST_PER_CLICK_MS = 1.5
INGEST_PER_CLICK_MS_NO_CLAIM = 0.15  # per click when dedup is per request: validation + encode only
# Per click with mark dedup (one BatchGetItem per 100 clicks before the stream write, the confirm's
# BatchWriteItem per 25 after: no call per click): INGEST_PER_CLICK_MS x the handler time per click
# of mark over per_click that bench/ingest.py measures in one process (moto in-process), at the
# planner's 50 clicks per request: 2026-12-07, `bench/ingest.py --batch-size 50 --batches 21`,
# 0.17 (527-553 vs 2,860-3,286 us/click; at 500-click batches 0.14):
INGEST_MARK_OVER_PER_CLICK = 0.17
INGEST_PER_CLICK_MS_MARK = INGEST_PER_CLICK_MS * INGEST_MARK_OVER_PER_CLICK
# Per impression (published unclaimed: validation, encode, its share of one PutRecords per 500).
# bench/ingest.py, 2026-12-06, 500-impression batches, moto in-process on a 2-core machine at load
# average ~5: the handler 97-115 us per impression, the bare PutRecords of the same records 78-95
# us (both include moto's own handling of the call, so an upper bound), pure logic 17 us; x 1.7
# for the ~0.58 vCPU of 1024 MB. A conversion is claimed like a click: INGEST_PER_CLICK_MS.
INGEST_PER_UNCLAIMED_EVENT_MS = 0.2
IDEMPOTENCY_MS = 12.0  # per request with per-request dedup: Powertools idempotency put + update (serial)
LAMBDA_CONCURRENCY_HEADROOM = 1.5  # ingest reserved concurrency = peak concurrency x this
INGEST_MIN_RESERVED = 10  # never reserve less than this for the ingest function
LAMBDA_LOG_BYTES_PER_INVOCATION = 1000  # START/END/REPORT platform lines + the Powertools EMF metrics blob

# --- ingest dedup table (DynamoDB)
CLAIM_WCU = 1  # conditional PutItem of a claim item < 1 KB (a failed condition costs 1 WCU too)
CONFIRM_WCU = 1  # BatchWriteItem put of the same item with status committed: 1 WCU per item
MARK_READ_RCU = SCHEMA_MARK_READ_RCU  # mark mode's check: an eventually consistent BatchGetItem read of an item < 4 KB (a missing item costs the same); common.schema's, which the dedup table's reads follow too
DEDUP_ITEM_BYTES = 250  # click_id, request_id, status, 2 numbers + ~100 B DynamoDB per-item overhead
DDB_TTL_DELETE_LAG_S = 86400  # TTL deletes expired items "within a few days": keep one extra day of items
IDEMPOTENCY_PUT_WCU = 1  # Powertools Idempotency: conditional put of the INPROGRESS record
IDEMPOTENCY_ITEM_BASE_BYTES = 300  # idempotency record without the stored response (key, status, expiry, hash)
IDEMPOTENCY_TTL_S = 3600  # Powertools Idempotency default expires_after_seconds
DDB_TARGET_UTILIZATION = default("dynamodb_target_utilization_pct") / 100  # provisioned autoscaling target; on-demand caps also = peak / this
DDB_TROUGH_RATIO = 0.5  # nightly trough = average x this: provisioned autoscaling minimum below it

# --- impressions and conversions (issue 19: POST /v1/events, the events stream)
IMPRESSIONS_PER_CLICK = 50  # issue 19: impressions are 10-100x the clicks; the default multiple (an input)
CONVERSIONS_PER_CLICK = 0.02  # conversions are 2 % of the clicks by default (an input)
IMPRESSIONS_PER_REQUEST = default("max_batch")  # the ad server's SDK batches its impressions to the API's maximum
CONVERSIONS_PER_REQUEST = 1  # advertisers post conversions as they happen: most see far less than one per second (the SDK flushes within 1 s)
IMPRESSION_RECORD_BYTES = len(encode_event(TYPICAL_IMPRESSION))  # encode_event of a typical impression (above)
CONVERSION_RECORD_BYTES = len(encode_event(TYPICAL_CONVERSION))  # encode_event of a typical conversion (token-attributed)

# --- Kinesis Data Streams
SHARD_WRITE_BYTES_S = MIB  # 1 MiB/s of data + partition key per shard
SHARD_WRITE_RECORDS_S = 1000  # 1,000 records/s per shard
SHARD_READ_BYTES_S = 2 * MIB  # 2 MiB/s per shard shared by polling consumers (per consumer with enhanced fan-out)
SHARD_READ_CALLS_S = 5  # GetRecords calls/s per shard, shared by polling consumers
PARTITION_KEY_BYTES = 16  # the ad_id partition key; counts towards the shard write limit
KINESIS_SHARD_HEADROOM = 1.25  # provisioned shards sized for peak at 80 % of the limits (key skew, retries)
ON_DEMAND_RECORD_UNIT = KIB  # on-demand bills each record rounded up to 1 KB (ingest and retrieval)
PUT_PAYLOAD_UNIT = 25 * KIB  # provisioned bills each record in PUT payload units of 25 KB
# GetRecords/s per shard of the two polling consumers of the clicks and of the events stream:
# Flink at its poll interval (getrecords_interval_ms, 500 ms: the connector default of 200 ms
# alone would use all 5) + Firehose (1/s).
INPUT_STREAM_POLLS_S = 1000 // default("getrecords_interval_ms") + 1
INPUT_STREAM_CONSUMERS = 2  # Flink + Firehose read every record of the clicks and of the events stream
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
# Rollups (kinds 'campaign', 'advertiser'): no seed figure for how many campaigns and advertisers
# the 1M ads belong to; the planner takes ten ads per campaign and ten campaigns per advertiser,
# with the ads' popularity skew. More of them means more rollup writes (at most as many as ads).
ADS_PER_CAMPAIGN = 10
CAMPAIGNS_PER_ADVERTISER = 10
SERVING_RESOLUTIONS = ("1m", "5m", "1h", "1d")  # series buckets the job emits per ad, campaign and advertiser (aggregate/job/sql.py)
RESOLUTION_SECONDS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}  # bucket length per resolution
# the rank index (serving.keys): an entry whose clicks changed leaves its old place and takes a new one
RANK_INDEX_WRITES_PER_TOP_UPSERT = 2
LEADERBOARDS = tuple(LEADERBOARD_RESOLUTIONS)  # top-M boards (serving.keys); 1m items expire, 1h and 1d items never do
LEADERBOARD_SIZE = default("leaderboard_size")  # leaderboard_size (M); every entry of a live board assumed to change per mini-batch
CHANGELOG_UPDATE_BEFORE = default("flink_changelog_mode") == "retract"  # flink_changelog_mode: retract emits -U before each +U (2 stream rows per update), upsert only the +U
CHANGELOG_ROW_BYTES = 470  # one debezium-json changelog row of the 20 OUTPUT_COLUMNS, 10-character ids: measured 465-468 B
MINIBATCH_MS = default("minibatch_latency_ms")  # minibatch_latency_ms: a key emits at most one update per mini-batch
MINIBATCH_SIZE = default("minibatch_size")  # minibatch_size: a mini-batch also ends once an operator instance has buffered this many input rows (Flink's table.exec.mini-batch.size)
ALLOWED_LATENESS_S = default("allowed_lateness_s")  # allowed_lateness_s: a bucket stays updatable this long after its end
AGG_STATE_MARGIN_S = default("agg_state_margin_s")  # the job's agg_state_margin_s: aggregate state idles this long after lateness

# --- Managed Service for Apache Flink
# MEASURED, RocksDB (what Managed Flink runs), issue 22: bench/flink.py's full job over 5M clicks,
# parallelism 2 on 2 cores, 1,280 MB managed memory per slot (a 4 GB KPU's share), 2026-12-07,
# with IS_BOT_UA's literal prefilter: 5,377 rows per CPU-second (before it: 5,041; 1M clicks:
# 4,347-4,907 before, 5,306-6,106 after, back to back; 200k: 3,841, JIT warm-up), i.e. one KPU (1 vCPU)
#   PYTHONPATH=functions .venv-flink/bin/python bench/flink.py --rows 5000000 --modes pipeline --state-backend rocksdb
# Still assumptions: that a KPU's vCPU does what a local core does, the Kinesis source and sink
# and checkpoints cost nothing beyond the bench's file source and blackhole sink, and input rows
# cost alike whatever they are (clicks, impressions, conversions; impressions skip the IVT rules,
# every row feeds 12 aggregates): the events mix is not measured (bench/flink.py --events 50).
FLINK_ROWS_PER_KPU_S = 5_377
FLINK_HEADROOM = 1.5  # size for peak at ~67 % CPU (Managed Flink autoscaling triggers at 75 %)
FLINK_PARALLELISM_PER_KPU = default("flink_parallelism_per_kpu")  # one task slot per vCPU: the job is CPU-bound (JSON, RocksDB)
FLINK_ORCHESTRATION_KPUS = 1  # Managed Flink bills one extra KPU per application
FLINK_KPU_STORAGE_GB = 50  # running application storage per KPU (RocksDB local disk)
FLINK_STATE_DISK_FRACTION = 0.5  # keep state <= half the local disk (compaction, checkpoint staging)
FLINK_STATE_BYTES_PER_KEY = 100  # RocksDB entry: key + value + TTL timestamp + per-entry overhead
FLINK_DEDUP_STATES = 2  # keyed states living dedup_ttl_s per click: click_id keep-first + repeat-click buckets
FLINK_EVENT_DEDUP_STATES = 1  # keyed state living dedup_ttl_s per impression / conversion: keep-first by (event_type, event_id)
FLINK_DEDUP_TTL_S = default("flink_dedup_ttl_s")  # the job's dedup_ttl_s (functions/aggregate/job/settings.py)
FLINK_SNAPSHOTS_RETAINED = 1  # durable snapshots kept (each the full state size)

# --- sink Lambda and serving store
SINK_MEMORY_MB = default("sink_memory_mb")  # sink_memory_mb
SINK_BATCH_SIZE = default("sink_batch_size")  # sink_batch_size: changelog rows per invocation
SINK_BATCHING_WINDOW_S = default("sink_max_batching_window_s")  # sink_max_batching_window_s
SINK_WRITES_PER_S_PER_INVOCATION = 800  # 16 threads x ~5 ms conditional PutItem, boto3 CPU-bound at 512 MB
SINK_CONCURRENCY_HEADROOM = 1.5  # sink lanes (shards x parallelization factor) = peak need x this
FRESHNESS_WRITES_PER_INVOCATION = 2  # advance_freshness: 2 conditional updates of its shard's slot
SERVING_ITEM_BYTES = 200  # a series/leaderboard item incl. overhead: 1 WCU per write
MINUTE_TTL_S = default("minute_ttl_s")  # minute_ttl_s: 1m series and 1m leaderboard items expire after this
SERVING_HORIZON_MONTHS = 12  # 5m/1h/1d series and 1h boards never expire: storage after this many months
TIMESTREAM_MEMORY_HOURS = default("timestream_memory_retention_hours")  # timestream_memory_retention_hours
TIMESTREAM_RECORD_BYTES = 250  # one MULTI record (4 dimensions + 6 measures)

# --- Firehose and the S3 archive
FIREHOSE_RECORD_UNIT = 5 * KIB  # Kinesis-sourced Firehose bills each record rounded up to 5 KB
FIREHOSE_BUFFER_MB = default("firehose_buffer_mb")  # firehose_buffer_mb: the maximum; Parquet conversion needs >= 64
FIREHOSE_INTERVAL_S = default("firehose_buffer_interval_s")  # firehose_buffer_interval_s when the buffer fills faster than this
FIREHOSE_MAX_INTERVAL_S = BY_NAME["firehose_buffer_interval_s"].le  # the longest buffer interval Firehose allows
PARQUET_RATIO = 0.30  # Parquet (SNAPPY, dictionary-encoded ids) bytes / JSON bytes of the same clicks
S3_REQUESTS_PER_OBJECT = 1  # one PUT per object (multipart uploads of big objects: a few more)
ARCHIVE_MONTHS = 12  # archive storage is costed as it stands after this many months (it only grows)
ARCHIVE_STANDARD_MONTHS = default("archive_ia_after_days") // 30  # archive_ia_after_days = 30
ARCHIVE_IA_MONTHS = (default("archive_cold_after_days") - default("archive_ia_after_days")) // 30  # archive_cold_after_days = 90: then Glacier Instant Retrieval

# --- nightly Glue billing job
# Measured (shared field notes): Spark 3.5 local[2], untuned, 10M clicks dedup + burst flag +
# hourly aggregate in 377 s = 13k clicks/s per core. A G.1X worker (1 DPU) has 4 vCPU: take
# half of 4 x 13k for S3 reads, the shuffle over the network and the driver.
GLUE_CLICKS_PER_DPU_S = 25_000
GLUE_READ_FACTOR = (24 + 1 + default("billing_cutoff_hours")) / 24  # the day + the previous day's last hour + cutoff_hours=2 after it
GLUE_TARGET_HOURS = 2.0  # the nightly run should finish within this
GLUE_MIN_WORKERS = BY_NAME["billing_glue_workers"].ge  # Glue's minimum for Spark jobs
GLUE_WORKER_TYPE = default("billing_glue_worker_type")  # 1 DPU (4 vCPU, 16 GB) per worker
GLUE_DPU_PER_WORKER = 1
GLUE_MIN_BILLED_HOURS = 1 / 60  # Glue 2.0+ bills per second with a 1-minute minimum

# --- rebuild from the archive (issue 21, docs/rebuild.md): a transient batch job sized for its deadline
# Measured: bench/rebuild.py 2026-12-06, 10M clicks (clicks only, 20,000 ads), 2 local cores,
# heap state, Parquet from local files: 14,298 archive rows per CPU-second (rebuild minus an
# empty run). Impressions and conversions are taken at the clicks' rate (unmeasured at 50 per click).
REBUILD_ROWS_PER_CPU_S = 14_298
REBUILD_TARGET_S = 30 * 60  # seed 002: historical recompute within 30 min
# ASSUMPTION (unmeasured: nothing here starts a Managed Flink application): the rebuild
# application's start (READY -> RUNNING, job submission) and the state machine's polling.
REBUILD_STARTUP_S = 5 * 60
# ASSUMPTION (unmeasured): one load_file Lambda's conditional writes per second (16 threads of
# PutItem, ~5-10 ms each in-region; serving.rebuild.handlers). Sizes rebuild_load_concurrency.
REBUILD_LOAD_WRITES_PER_LAMBDA_S = 1_000
REBUILD_MAX_FUTURE_SKEW_S = default("max_future_skew_s")  # clients' clocks ahead of ingest: the rebuild reads that much more before the day

# --- budget lane (issue 20, docs/budget.md): spend rows and pulse, pacing decisions, budgets
BUDGET_EMIT_INTERVAL_MS = default("budget_emit_interval_ms")  # budget_emit_interval_ms: the spend aggregation's mini-batch (the job's other aggregates: minibatch_latency_ms)
PACING_CACHE_TTL_MS = default("pacing_cache_ttl_ms")  # pacing_cache_ttl_ms: the budget Lambda keeps a campaign's figures this long; callers keep an answer as long
BUDGET_MEMORY_MB = default("budget_memory_mb")  # budget_memory_mb; PACING_DURATION_MS assumes this size
# No IVT share in the planner: every click is taken as valid (an upper bound of the campaigns a
# spend emission touches); an IVT correction updates a campaign the click already updated.
BUDGET_VALID_CLICK_SHARE = 1.0
SPEND_RESOLUTIONS = ("1m", "1d")  # spend per campaign and minute (the velocity) and per campaign and UTC day
PULSE_MIN_ROWS_S = 1  # the pulse: one datagen tick per emit interval (an insert: one changelog row, one conditional write of META#pulse); datagen's rows-per-second is an integer, so at least one a second
# Flink has no per-operator CPU model: the spend aggregation is taken to cost, per valid click,
# its two aggregates' share of the twelve (4 resolutions x ad, campaign, advertiser) a counted row
# feeds, i.e. 2/12 of a row in FLINK_ROWS_PER_KPU_S. Its 500 ms flushes are priced as the rows they emit.
SPEND_FLINK_ROW_SHARE = 2 / 12
# Ad-server instances calling POST /v1/pacing: 20 at the seed profile (10,000 clicks/s), the fleet
# following the traffic (one instance per 500 clicks/s, average and peak alike; --ad-servers sets
# the average). Each asks, once per pacing_cache_ttl_ms, for the campaigns whose ads it serves in
# that time (docs/budget.md: ad servers ask before serving a campaign's ad and keep the answer
# valid_for_ms): the distinct campaigns among its served impressions (its clicks when the plan has
# no impressions) by the planner's popularity model (--pacing-campaigns overrides it).
AD_SERVER_CLICKS_S = 500
PACING_BATCH_MAX = 100  # POST /v1/pacing takes 1..100 campaign ids
PACING_CAMPAIGNS_PER_BATCH_GET = 11  # docs/budget.md: the batch form packs 11 campaigns per BatchGetItem (9 keys each, <= 100)
PACING_BUDGET_ITEMS = 1  # per campaign: its budget (`current`) in the budgets table, ConsistentRead: 1 RRU (< 4 KB)
PACING_SERVING_ITEMS = 7  # per campaign: today's SB#..#1d + 6 SB#..#1m items, eventually consistent: 0.5 RCU each (< 4 KB; a missing item costs the same)
PACING_PULSE_ITEMS = 1  # per BatchGetItem: META#pulse (a BatchGetItem refuses duplicate keys, so one per call, not one per campaign)
EC_READ_UNITS = 0.5  # eventually consistent read of an item < 4 KB (BatchGetItem bills each item as a GetItem)
SC_READ_UNITS = 1.0  # strongly consistent read of an item < 4 KB
PACING_LIFETIME_SHARE = 0.25  # campaigns with a lifetime budget (no seed figure): each refresh adds one Query of its 1d spend items
PACING_LIFETIME_QUERY_UNITS = 0.5  # that Query: one 4 KB page of ~100 B items, eventually consistent
PACING_DURATION_MS = 30.0  # per POST /v1/pacing at 512 MB (figures cached or read by BatchGetItems in parallel, 100 decisions, JSON): not measured
PACING_DECISION_BYTES = len(json.dumps(TYPICAL_DECISION, separators=(",", ":")))  # one decision in the answer: docs/budget.md's example, compact JSON
PACING_RESPONSE_BASE_BYTES = len('{"decisions":[]}') - 1  # the envelope; each decision adds its bytes + 1 (comma)
BUDGET_SETS_PER_CAMPAIGN_DAY = 1.0  # PUT /v1/campaigns/{id}/budget per campaign and day (no seed figure)
BUDGET_PUT_WRU = 4  # TransactWriteItems of `current` + `h#<set_at>` (< 1 KB each): 2 WRU per transactional write
BUDGET_ITEM_BYTES = 200  # a budget version: keys, 5 attributes, the caller's ARN + ~100 B per-item overhead
BUDGET_ALARMS = 3  # BudgetLaneStale (the pulse), the budget Lambda's errors and throttles (as the ingest Lambda has)
BUDGET_CUSTOM_METRICS = 5  # PulseAge (the sink), PacingDecisions x decision (serve, throttle, stop), PacingStale

# --- observability
XRAY_RESERVOIR_PER_S = 1  # default sampling rule: the first request each second...
XRAY_FIXED_RATE = 0.05  # ...and 5 % of the rest
LOG_STORAGE_RATIO = 0.15  # CloudWatch Logs stores compressed: ~15 % of the ingested bytes
LOG_RETENTION_MONTHS = 1  # log groups keep one month (LOG_RETENTION = ONE_MONTH in infra)
# ============================================================================ END ASSUMPTIONS

APIS = ("rest", "http")
DEDUP_MODES = (*SCHEMA_DEDUP_MODES, "per_request")  # what ingest implements + the per_request lever
KINESIS_CHOICES = ("auto", "on_demand", "provisioned")
DDB_CHOICES = ("auto", "on_demand", "provisioned")
SERVING_STORES = ("dynamodb", "timestream")
MAX_BATCH = default("max_batch")  # the ingest API's batch limit
MAX_RECORD_BYTES = MIB  # Kinesis record data limit
# Settings the planner sizes around (the schema's: what the stack deploys by default).
AGGREGATES_RETENTION_HOURS = default("aggregates_retention_hours")
DEFAULT_FRESHNESS_SLOTS = default("freshness_slots")
MAX_FRESHNESS_SLOTS = BY_NAME["freshness_slots"].le  # one BatchGetItem reads every slot
