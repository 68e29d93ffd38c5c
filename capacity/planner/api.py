"""API Gateway (the ingest endpoint): requests, throttles, response transfer."""
from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    API_BURST_RATIO, API_RATE_HEADROOM, GIB, HTTP_API_METERING_BYTES, REQUEST_ENVELOPE_BYTES,
    RESPONSE_BASE_BYTES, RESPONSE_BYTES_PER_CLICK, SECONDS_PER_MONTH,
)
from capacity.planner.helpers import ceil_div, round_up_2sig
from capacity.planner.model import Component
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def requests_per_s(x: Inputs) -> tuple[float, float]:
    return x.rate / x.batch_size, x.peak / x.batch_size


def response_bytes(batch_size: int) -> int:
    return RESPONSE_BASE_BYTES + RESPONSE_BYTES_PER_CLICK * batch_size


def component(x: Inputs, pb: PriceBook) -> Component:
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
