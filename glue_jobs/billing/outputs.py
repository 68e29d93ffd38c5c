"""The billing job's output datasets under `--out_path`: one definition of each one's directory,
Glue table and columns (catalog types; `dt` is the partition), read by infra (the Glue tables),
the job (events.py writes the events datasets in these columns), the reconciliation and the
local SQL (tools/analytics). Pure Python: infra and the main venv import it without pyspark.

  hourly/         billing_hourly         clicks per ad and hour (transform.OUTPUT_COLUMNS)
  flagged/        billing_flagged        every click not billed: not valid, or over budget
                                         (transform.FLAGGED_COLUMNS)
  events_hourly/  billing_events_hourly  impressions and conversions per ad and hour
  conversions/    billing_conversions    every deduplicated conversion of the day with its
                                         attribution: attributed or the reason it is not
  campaign_spend/ billing_campaign_spend per campaign (and advertiser) and day: the day's budget,
                                         valid (uncapped) and billed cost, over-budget clicks
transform.py keeps its click columns as literals (infra tests compare them with these).
"""
from __future__ import annotations

HOURLY, FLAGGED, EVENTS_HOURLY, CONVERSIONS = "hourly", "flagged", "events_hourly", "conversions"
CAMPAIGN_SPEND = "campaign_spend"

HOURLY_COLUMNS = [
    ("advertiser_id", "string"), ("campaign_id", "string"), ("ad_id", "string"),
    ("hour", "timestamp"), ("hour_start_ms", "bigint"), ("clicks", "bigint"),
    ("billable_clicks", "bigint"), ("suspect_clicks", "bigint"), ("invalid_clicks", "bigint"),
    ("bot_ua_clicks", "bigint"), ("impression_repeat_clicks", "bigint"),
    ("too_fast_clicks", "bigint"), ("datacenter_ip_clicks", "bigint"),
    ("ip_burst_clicks", "bigint"), ("user_repeat_clicks", "bigint"),
    ("cost_micros", "bigint"), ("billable_cost_micros", "bigint"),
    ("duplicate_copies", "bigint"), ("late_clicks", "bigint"), ("late_billable_clicks", "bigint"),
    ("election_gain_clicks", "bigint"), ("election_loss_clicks", "bigint"),
    ("impression_memory_clicks", "bigint"),
    ("over_budget_clicks", "bigint"), ("over_budget_cost_micros", "bigint"),
]
FLAGGED_COLUMNS = [
    ("click_id", "string"), ("advertiser_id", "string"), ("campaign_id", "string"),
    ("ad_id", "string"), ("user_id", "string"), ("ip", "string"), ("user_agent", "string"),
    ("impression_id", "string"), ("event_time", "bigint"), ("ingest_time", "bigint"),
    ("issued_at", "bigint"), ("cost_micros", "bigint"), ("hour_start_ms", "bigint"),
    ("verdict", "string"), ("reasons", "string"), ("copies", "bigint"),
    ("over_budget", "boolean"),  # verdict valid, not billed: past the campaign's daily budget
]
# Per (advertiser, campaign, ad, hour of the event time: served at | occurred_at). Conversions
# count under the ad the stream record names (the click token's) or, naming only a click_id,
# under their click's ad; one without either (its click unknown) has no row (billing_conversions
# holds it). Only attributed_* are billed / reported.
EVENTS_HOURLY_COLUMNS = [
    ("advertiser_id", "string"), ("campaign_id", "string"), ("ad_id", "string"),
    ("hour", "timestamp"), ("hour_start_ms", "bigint"),
    ("impressions", "bigint"),                    # distinct impression_id
    ("conversions", "bigint"),                    # distinct conversion_id, any attribution
    ("conversion_value_micros", "bigint"),
    ("attributed_conversions", "bigint"),         # billed / reported
    ("attributed_value_micros", "bigint"),
    ("unknown_click_conversions", "bigint"),      # not attributed, per reason
    ("outside_window_conversions", "bigint"),
    ("invalid_click_conversions", "bigint"),
    ("unverified_click_conversions", "bigint"),
    # what the stream counts (conversions with the token's ad) and the reconciliation's diagnostics
    ("token_conversions", "bigint"),
    ("token_conversion_value_micros", "bigint"),
    ("duplicate_impression_copies", "bigint"),    # archive copies beyond the first
    ("late_impressions", "bigint"),               # the stream would have dropped them as late
    ("duplicate_token_conversion_copies", "bigint"),
    ("late_token_conversions", "bigint"),
]
CONVERSION_COLUMNS = [
    ("conversion_id", "string"), ("attributed_by", "string"),  # token | click_id (ingest's)
    ("advertiser_id", "string"), ("campaign_id", "string"), ("ad_id", "string"),  # resolved
    ("click_id", "string"), ("impression_id", "string"),  # as the conversion named them
    ("matched_click_id", "string"),  # the click found (by click_id, else the impression's)
    ("click_event_time", "bigint"), ("click_verdict", "string"),  # null verdict: unverified
    ("event_time", "bigint"), ("hour_start_ms", "bigint"),  # occurred_at, its hour
    ("value_micros", "bigint"), ("currency", "string"), ("ingest_time", "bigint"),
    ("copies", "bigint"),  # archive rows read of this conversion_id
    ("attribution", "string"),  # attributed | unknown_click | outside_window | invalid_click
                                # | unverified_click
]

# Per campaign-day (docs/budget.md, "Batch truth"; transform.campaign_spend). One row per
# (campaign, advertiser) of D's clicks (normally one per campaign). valid_* = the valid clicks,
# uncapped (what the realtime lane counts); billed_* = valid and within the budget (= the hourly
# billable_*), so billed_cost_micros <= budget_micros; over_budget_* = valid - billed.
CAMPAIGN_SPEND_COLUMNS = [
    ("campaign_id", "string"), ("advertiser_id", "string"), ("day", "string"),  # YYYY-MM-DD = dt
    ("budget_micros", "bigint"),      # the daily budget in force (last set before the day's end); null: none
    ("budget_revision", "bigint"),    # its revision (the budgets table's rev); null: none
    ("valid_clicks", "bigint"), ("valid_cost_micros", "bigint"),
    ("billed_clicks", "bigint"), ("billed_cost_micros", "bigint"),
    ("over_budget_clicks", "bigint"), ("over_budget_cost_micros", "bigint"),
]

# Glue table -> (directory under --out_path, columns)
TABLES = {
    "billing_hourly": (HOURLY, HOURLY_COLUMNS),
    "billing_flagged": (FLAGGED, FLAGGED_COLUMNS),
    "billing_events_hourly": (EVENTS_HOURLY, EVENTS_HOURLY_COLUMNS),
    "billing_conversions": (CONVERSIONS, CONVERSION_COLUMNS),
    "billing_campaign_spend": (CAMPAIGN_SPEND, CAMPAIGN_SPEND_COLUMNS),
}


def names(columns: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(n for n, _ in columns)
