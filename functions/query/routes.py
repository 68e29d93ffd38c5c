"""The query Lambda's routes in API Gateway's syntax: ONE list for the CDK construct
(infra/constructs/query_api.py), the dashboard's invoke grant and the local gateway. The handler
(query.handler) serves exactly these (tests/query/test_contract.py checks it against the
OpenAPI document)."""
from __future__ import annotations

SERIES_ROUTES = {  # series level (query.windows.SERIES_LEVELS) -> its route
    "ad": "/v1/ads/{ad_id}/metrics",
    "campaign": "/v1/campaigns/{campaign_id}/metrics",
    "advertiser": "/v1/advertisers/{advertiser_id}/metrics",
}
ROUTES = ("/v1/top", *SERIES_ROUTES.values(), "/v1/quality", "/v1/health")

# The budget Lambda's routes (query.budget.handler; docs/budget.md): budgets are set with PUT,
# read with GET; the pacing decisions are GETs (one campaign) and a POST (many at once).
BUDGET_ROUTE = "/v1/campaigns/{campaign_id}/budget"
PACING_ROUTE = "/v1/campaigns/{campaign_id}/pacing"
PACING_BATCH_ROUTE = "/v1/pacing"
BUDGET_ROUTES = {BUDGET_ROUTE: ("GET", "PUT"), PACING_ROUTE: ("GET",), PACING_BATCH_ROUTE: ("POST",)}
