"""The IVT-rate alarm (infra/constructs/ivt_alarm.py): metric math over the sink's per-verdict EMF
sums, threshold = ivt_alert_percent, on the alarm topic; and its graph on the operations dashboard."""
from __future__ import annotations

import json

import pytest

EXPRESSION = "IF(clicks >= 100, 100 * (FILL(suspect, 0) + FILL(invalid, 0)) / clicks, 0)"  # default floor
# what the sink prints (functions/aggregate/verdicts.py), own copy
INPUTS = {"clicks": "ClicksCounted", "suspect": "ClicksSuspect", "invalid": "ClicksInvalid"}


def ivt_alarm(template, prefix: str) -> dict:
    alarms = [r["Properties"] for r in template.to_json()["Resources"].values()
              if r["Type"] == "AWS::CloudWatch::Alarm"
              and r["Properties"]["AlarmName"] == f"{prefix}-quality-IvtRate"]
    assert len(alarms) == 1
    return alarms[0]


@pytest.mark.parametrize("variant,prefix,percent", [("default", "clickagg", 5), ("custom", "ca-test", 7)])
def test_alarm_is_the_metric_math_above_ivt_alert_percent(default_template, custom_template, variant, prefix,
                                                          percent):
    template = default_template if variant == "default" else custom_template
    alarm = ivt_alarm(template, prefix)
    assert alarm["Threshold"] == percent
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 1 and alarm["TreatMissingData"] == "notBreaching"
    assert "MetricName" not in alarm and "Namespace" not in alarm  # metric math, not one metric
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    [expr] = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expr["Expression"] == EXPRESSION and expr.get("ReturnData", True) is True
    assert set(by_id) == {expr["Id"], *INPUTS}  # the expression and exactly its three inputs
    for key, name in INPUTS.items():
        stat = by_id[key]
        assert stat["ReturnData"] is False
        assert stat["MetricStat"] == {
            "Metric": {"Namespace": "ClickAgg", "MetricName": name,
                       "Dimensions": [{"Name": "service", "Value": "sink"}]},
            "Period": 300, "Stat": "Sum"}
    [action] = alarm["AlarmActions"]
    assert action["Ref"].startswith("AlarmsTopic")
    assert f"> {percent} %" in alarm["AlarmDescription"]
    assert "not below 100 clicks" in alarm["AlarmDescription"]


def test_expression_math_is_the_rate_the_api_alerts_on():
    """The alarm's expression, evaluated as CloudWatch does on one period's sums (brute force,
    Python), against GET /v1/quality's rule: (suspect + invalid) / clicks * 100 > percent."""
    from query.quality import VerdictTotals, ivt_alerting

    from infra.constructs.ivt_alarm import expression

    def cloudwatch(floor, clicks, suspect, invalid):  # IF(clicks >= N, 100 * (FILL(s,0) + FILL(i,0)) / clicks, 0)
        assert expression(floor) == f"IF(clicks >= {floor}, 100 * (FILL(suspect, 0) + FILL(invalid, 0)) / clicks, 0)"
        return 100 * ((suspect or 0) + (invalid or 0)) / clicks if clicks >= floor else 0

    for clicks, suspect, invalid in ((100, 3, 3), (100, 3, 2), (0, 0, 0), (7, None, 1), (40, 1, 1), (99, 50, 0)):
        for percent in (1, 5, 6, 12):
            for floor in (1, 40, 100):
                assert (cloudwatch(floor, clicks, suspect, invalid) > percent) is ivt_alerting(
                    VerdictTotals(clicks, 0, suspect or 0, invalid or 0), percent, floor), (
                    clicks, suspect, invalid, percent, floor)


def test_dashboard_graphs_the_rate_with_the_threshold_and_shows_the_alarm(default_template):
    [props] = [r["Properties"] for r in default_template.to_json()["Resources"].values()
               if r["Type"] == "AWS::CloudWatch::Dashboard"]
    parts = props["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))
    [rate] = [w for w in body["widgets"] if w["properties"].get("title", "").startswith("Traffic quality: IVT rate")]
    [line] = [m for m in rate["properties"]["metrics"] if isinstance(m[0], dict)]
    assert line[0]["expression"] == EXPRESSION
    assert rate["properties"]["annotations"]["horizontal"][0]["value"] == 5
    [status] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(status["properties"]["alarms"]) == sum(
        1 for r in default_template.to_json()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm")
