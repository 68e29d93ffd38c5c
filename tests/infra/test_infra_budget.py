"""The budget lane's infrastructure (docs/budget.md): the budgets table (truth: PITR, KMS,
retained), the budget Lambda's environment, routes and grants, and the fail-closed alarm."""
from __future__ import annotations

import json

KEY = "EncryptionKey"


def resources(template, kind: str) -> dict:
    return {k: r for k, r in template.to_json()["Resources"].items() if r["Type"] == kind}


def budget_function(template) -> tuple[str, dict]:
    [(name, fn)] = [(k, r["Properties"]) for k, r in resources(template, "AWS::Lambda::Function").items()
                    if r["Properties"].get("Handler") == "query.budget.handler.lambda_handler"]
    return name, fn


def test_budgets_table_is_truth_kept_apart_from_the_serving_view(default_template):
    [(name, table)] = [(k, r) for k, r in resources(default_template, "AWS::DynamoDB::Table").items()
                       if r["Properties"]["TableName"] == "clickagg-budgets"]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "campaign_id", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert props["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0].startswith(KEY)
    assert table["DeletionPolicy"] == "Retain" and "TimeToLiveSpecification" not in props


def test_budget_function_environment_is_the_schemas(default_template):
    _, fn = budget_function(default_template)
    env = fn["Environment"]["Variables"]
    assert env["BUDGET_STALE_AFTER_MS"] == "10000" and env["BUDGET_STALE_SERVE_PERCENT"] == "0"
    assert env["PACING_CACHE_TTL_MS"] == "1000" and env["BUDGET_EMIT_INTERVAL_MS"] == "500"
    assert env["BUDGETS_TABLE"]["Ref"].startswith("BudgetsTable")
    assert env["SERVING_TABLE"]["Ref"].startswith("ServingTable")


def test_budget_routes_are_iam_methods_of_the_budget_function(default_template):
    name, _ = budget_function(default_template)
    methods = [m["Properties"] for m in resources(default_template, "AWS::ApiGateway::Method").values()
               if name in json.dumps(m["Properties"].get("Integration", {}).get("Uri", ""))]
    assert sorted(m["HttpMethod"] for m in methods) == ["GET", "GET", "POST", "PUT"]
    for m in methods:
        assert m["AuthorizationType"] == "AWS_IAM" and m["Integration"]["Type"] == "AWS_PROXY"
        assert m.get("ApiKeyRequired") in (None, False)


def test_budget_role_has_named_actions_on_known_tables(default_template):
    roles = [k for k in resources(default_template, "AWS::IAM::Role") if k.startswith("BudgetApiRole")]
    [role] = roles
    statements = [s for p in resources(default_template, "AWS::IAM::Policy").values()
                  if {"Ref": role} in p["Properties"]["Roles"]
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    by_action = {}
    for s in statements:
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]):
            by_action.setdefault(a, []).append(json.dumps(s["Resource"]))
    assert not any("*" in a for a in by_action)  # no wildcard action
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"):
        assert all("BudgetsTable" in r for r in by_action[action]), action
    assert any("BudgetsTable" in r for r in by_action["dynamodb:BatchGetItem"])
    assert any("ServingTable" in r for r in by_action["dynamodb:BatchGetItem"])
    assert all("ServingTable" in r for r in by_action["dynamodb:Query"])
    assert "dynamodb:DeleteItem" not in by_action and "dynamodb:Scan" not in by_action


def test_stale_pulse_alarm_fails_closed_on_missing_data(default_template, custom_template):
    for template in (default_template, custom_template):
        [alarm] = [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()
                   if r["Properties"]["AlarmName"].endswith("-budget-BudgetLaneStale")]
        assert (alarm["MetricName"], alarm["Namespace"], alarm["Statistic"], alarm["Period"]) == (
            "PulseAge", "ClickAgg", "Maximum", 60)
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "sink"}]
        assert alarm["Threshold"] == 10000 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "breaching"  # a stopped job publishes nothing
        assert alarm["AlarmActions"][0]["Ref"].startswith("AlarmsTopic")
