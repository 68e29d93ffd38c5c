"""Contract: every operation in docs/openapi.yaml, driven by schemathesis over HTTP against the
local stack. No generated input may get a 5xx, and every response must match the documented
status codes, content type and schema."""
from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
# Undocumented methods are tried too, except TRACE and QUERY: the local gateway's HTTP server
# (python http.server) answers those 501 by itself, before any handler; API Gateway refuses them
# before any Lambda as well.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {
    "unexpected-methods": ["get", "put", "post", "delete", "options", "patch"]}}})
schema = schemathesis.openapi.from_path(str(OPENAPI), config=CONFIG)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = pytest.mark.slow


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_openapi(case, local_stack):
    case.call_and_validate(base_url=local_stack.api.url, checks=CHECKS, timeout=30)


def test_every_operation_is_covered():
    ops = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert ops == {("POST", "/v1/clicks"), ("POST", "/v1/events"), ("POST", "/v1/public/clicks"),
                   ("OPTIONS", "/v1/public/clicks"),
                   ("GET", "/v1/c"), ("GET", "/v1/top"), ("GET", "/v1/ads/{ad_id}/metrics"),
                   ("GET", "/v1/campaigns/{campaign_id}/metrics"), ("GET", "/v1/advertisers/{advertiser_id}/metrics"),
                   ("GET", "/v1/quality"), ("POST", "/v1/reconcile"), ("GET", "/v1/health"),
                   ("PUT", "/v1/campaigns/{campaign_id}/budget"), ("GET", "/v1/campaigns/{campaign_id}/budget"),
                   ("GET", "/v1/campaigns/{campaign_id}/pacing"), ("POST", "/v1/pacing")}


def test_the_handlers_serve_exactly_the_documented_operations():
    """Every route the API Lambdas' resolvers register is documented, and every documented
    operation has its route (Powertools spells a path parameter <name>, OpenAPI {name})."""
    from ingest import handler as ingest
    from query import handler as query
    from query import reconcile_handler as reconcile
    from query.budget import handler as budget

    served = {(route.method, route.path.replace("<", "{").replace(">", "}"))
              for module in (ingest, query, reconcile, budget)
              for route in module.app._static_routes + module.app._dynamic_routes}
    documented = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert served == documented
