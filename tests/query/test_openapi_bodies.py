"""docs/openapi.yaml describes the answers the contract test rarely sees over the local stack (its
leaderboards are complete): inexact top-K with null bounds, ratio answers, campaign and advertiser
series. Bodies from the query service over moto, validated against the documented 200 schema
(OpenAPI 3.0 `nullable` converted as schemathesis does)."""
from __future__ import annotations

from pathlib import Path

import boto3
import jsonschema
import pytest
import yaml
from schemathesis.specs.openapi.converter import to_json_schema

from common.config import AggregationSettings, ResourceNames
from local.resources import create_serving_table
from query.service import QueryService
from serving.read.dynamodb import DynamoDBQueryStore
from tests.query.truth import DAY, HOUR, MIN, load, random_truth, serving_items

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())
TABLE = ResourceNames().serving_table
T0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY - 2 * HOUR


def response_schema(path: str) -> dict:
    def resolve(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(SPEC["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node
    schema = SPEC["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return to_json_schema(resolve(schema), "nullable", is_response_schema=True)


@pytest.fixture(scope="module")
def svc():
    """One table for the module (the tests only read it): loading 28 h of items into moto takes
    ~25 s, once instead of once per case."""
    from moto import mock_aws

    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_serving_table(ddb, TABLE)
        t = random_truth(5, T0, 28 * 60, ads=9, p=0.1, hot_p=0.6, events=True)
        load(ddb, TABLE, serving_items(t, 4))
        yield QueryService(DynamoDBQueryStore(ddb, TABLE, 4), AggregationSettings(leaderboard_size=4),
                           clock_ms=lambda: T0 + 29 * HOUR)


def test_top_answers_match_the_documented_schema(svc):
    schema = response_schema("/v1/top")
    seen = set()
    for params in ({"metric": "impressions", "last": "26h"}, {"metric": "ctr", "last": "26h", "min_volume": "1"},
                   {"metric": "cpa", "last": "3m", "min_volume": "1"}, {"metric": "roas", "last": "30d", "min_volume": "1"},
                   {"metric": "cost", "last": "2h"}, {"metric": "conversion_value", "last": "5m"}):
        body = svc.top({**params, "to": str(T0 + 28 * HOUR), "k": "5"})
        jsonschema.validate(body, schema)
        seen.add((body["metric"], body["exact"], body["error_bound"] is None,
                  any(i["total_upper"] is None for i in body["items"])))
    assert ("impressions", False, True, True) in seen and ("ctr", False, True, True) in seen, seen


@pytest.mark.parametrize("path,level,entity", [("/v1/ads/{ad_id}/metrics", "ad", "ad-000"),
                                               ("/v1/campaigns/{campaign_id}/metrics", "campaign", "cmp-1"),
                                               ("/v1/advertisers/{advertiser_id}/metrics", "advertiser", "adv-0"),
                                               ("/v1/campaigns/{campaign_id}/metrics", "campaign", "nobody")])
def test_series_answers_match_the_documented_schema(svc, path, level, entity):
    body = svc.series(entity, {"resolution": "1h", "last": "30d", "to": str(T0 + 28 * HOUR)}, level)
    assert len(body["points"]) == 720
    jsonschema.validate(body, response_schema(path))
    body = svc.series(entity, {"resolution": "1m", "from": str(T0), "to": str(T0 + 90 * MIN)}, level)
    jsonschema.validate(body, response_schema(path))
