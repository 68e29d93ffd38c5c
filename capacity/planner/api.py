"""API Gateway (the ingest endpoint): requests of each kind, throttles, response transfer.

POST /v1/clicks and POST /v1/events share one stage throttle and usage plan (ingest_rate_limit,
ingest_burst_limit), so the limits are sized for the clicks' and the events' requests together."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    API_BURST_RATIO, API_RATE_HEADROOM, CONVERSIONS_PER_REQUEST, EVENT_REQUEST_BYTES, GIB,
    HTTP_API_METERING_BYTES, IMPRESSIONS_PER_REQUEST, REQUEST_ENVELOPE_BYTES,
    RESPONSE_BASE_BYTES, RESPONSE_BYTES_PER_CLICK, RESPONSE_BYTES_PER_EVENT, SECONDS_PER_MONTH,
)
from capacity.planner.events import event_rates
from capacity.planner.helpers import ceil_div, round_up_2sig
from capacity.planner.model import Component
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs

CLICKS, IMPRESSIONS, CONVERSIONS = "clicks", "impressions", "conversions"


@dataclass(frozen=True)
class RequestKind:
    """One kind of ingest request: what it carries, how many per request, its body and answer."""
    name: str  # clicks (POST /v1/clicks) | impressions | conversions (POST /v1/events)
    items_s: float  # average items/s
    peak_items_s: float
    per_request: int
    item_bytes: int  # one item in the request body
    response_item_bytes: int  # one item's result in the answer

    @property
    def requests_s(self) -> float:
        return self.items_s / self.per_request

    @property
    def peak_requests_s(self) -> float:
        return self.peak_items_s / self.per_request

    @property
    def request_bytes(self) -> int:
        return REQUEST_ENVELOPE_BYTES + self.per_request * self.item_bytes

    @property
    def response_bytes(self) -> int:
        return response_bytes(self.per_request, self.response_item_bytes)


def request_kinds(x: Inputs) -> tuple[RequestKind, RequestKind, RequestKind]:
    """Clicks in batches of `batch_size`; impressions batched to the API's maximum; conversions
    one per request (advertisers post them as they happen)."""
    impressions, conversions = event_rates(x, x.rate)
    peak_impressions, peak_conversions = event_rates(x, x.peak)
    return (RequestKind(CLICKS, x.rate, x.peak, x.batch_size, x.click_bytes, RESPONSE_BYTES_PER_CLICK),
            RequestKind(IMPRESSIONS, impressions, peak_impressions, IMPRESSIONS_PER_REQUEST,
                        EVENT_REQUEST_BYTES, RESPONSE_BYTES_PER_EVENT),
            RequestKind(CONVERSIONS, conversions, peak_conversions, CONVERSIONS_PER_REQUEST,
                        EVENT_REQUEST_BYTES, RESPONSE_BYTES_PER_EVENT))


def requests_per_s(x: Inputs) -> tuple[float, float]:
    """(average, peak) ingest requests/s of every kind together."""
    kinds = request_kinds(x)
    return sum(k.requests_s for k in kinds), sum(k.peak_requests_s for k in kinds)


def response_bytes(batch_size: int, per_item: int = RESPONSE_BYTES_PER_CLICK) -> int:
    return RESPONSE_BASE_BYTES + per_item * batch_size


def http_units(kind: RequestKind) -> int:
    """HTTP APIs meter one request per started 512 KB of payload."""
    return ceil_div(kind.request_bytes, HTTP_API_METERING_BYTES)


def component(x: Inputs, pb: PriceBook) -> Component:
    c = Component("api", f"API Gateway ({x.api.upper()} API)", x.api)
    kinds = request_kinds(x)
    req_s, req_peak = requests_per_s(x)
    req_month = req_s * SECONDS_PER_MONTH
    http_month = sum(k.requests_s * http_units(k) for k in kinds) * SECONDS_PER_MONTH
    c.add("clicks per request", x.batch_size)
    for k in kinds:
        c.add(f"{k.name} requests/s average", k.requests_s)
    c.add("requests/s average", req_s)
    c.add("requests/s peak", req_peak)
    c.add("requests per month", req_month)
    c.add("request body (clicks)", kinds[0].request_bytes, "B")
    c.add("request body (impressions)", kinds[1].request_bytes, "B")
    if x.api == "http":
        c.cost(pb, "requests", "apigw_http_requests", http_month)
    else:
        c.cost(pb, "requests", "apigw_rest_requests", req_month)
    dto_gb = sum(k.requests_s * k.response_bytes for k in kinds) * SECONDS_PER_MONTH / GIB
    c.cost(pb, "responses to the internet", "data_transfer_out_internet", dto_gb)
    dto_usd = c.costs[-1].usd
    c.alternatives = {"rest": pb.cost("apigw_rest_requests", req_month) + dto_usd,
                      "http": pb.cost("apigw_http_requests", http_month) + dto_usd}

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
    c.notes.append(f"POST /v1/events shares the stage throttle and usage plan of POST /v1/clicks: "
                   f"the limits cover clicks ({x.batch_size} per request), impressions "
                   f"({IMPRESSIONS_PER_REQUEST} per request) and conversions "
                   f"({CONVERSIONS_PER_REQUEST} per request) together.")
    c.notes.append("Response bytes are billed as data transfer out (ad servers on the internet); "
                   "a counts-only response for fully accepted batches would remove most of it.")
    return c
