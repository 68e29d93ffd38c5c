"""The operations dashboard (CloudWatch) and the paging alarms it adds."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template



_JSON: dict[int, tuple[Template, dict]] = {}  # holds the template: its id stays unique


def template_json(template: Template) -> dict:
    """Template.to_json() once per template (each call crosses into jsii)."""
    if id(template) not in _JSON:
        _JSON[id(template)] = (template, template.to_json())
    return _JSON[id(template)][1]

def resources(template: Template, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template_json(template)["Resources"].items() if v["Type"] == type_}


def dashboard(template: Template) -> tuple[dict, dict]:
    """(properties, body as JSON with CloudFormation tokens replaced by "TOKEN")."""
    [props] = [v["Properties"] for v in resources(template, "AWS::CloudWatch::Dashboard")
               .values()]
    parts = props["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))
    return props, body


def metrics_of(body: dict) -> set[tuple[str, str]]:
    """(namespace, metric name) of every metric line in every graph."""
    out = set()
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], str):
                out.add((line[0], line[1]))
    return out


def titles(body: dict) -> list[str]:
    return [w["properties"].get("title", "") for w in body["widgets"]]


def test_dashboard_name_does_not_clash_with_the_web_dashboard(default_template, custom_template):
    assert dashboard(default_template)[0]["DashboardName"] == "clickagg-operations"
    assert dashboard(custom_template)[0]["DashboardName"] == "ca-test-operations"


@pytest.mark.parametrize("namespace,metric", [
    ("ClickAgg", "ClicksAccepted"), ("ClickAgg", "ClicksDuplicate"),
    ("ClickAgg", "ClicksRejected"), ("ClickAgg", "ClicksRetryable"),
    ("AWS/ApiGateway", "Count"), ("AWS/ApiGateway", "4XXError"), ("AWS/ApiGateway", "5XXError"),
    ("AWS/ApiGateway", "Latency"), ("AWS/ApiGateway", "IntegrationLatency"),
    ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"),
    ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds"),
    ("AWS/Kinesis", "WriteProvisionedThroughputExceeded"),
    ("AWS/KinesisAnalytics", "lastCheckpointDuration"), ("AWS/KinesisAnalytics", "downtime"),
    ("AWS/KinesisAnalytics", "numberOfFailedCheckpoints"),
    ("ClickAgg", "SinkLag"), ("ClickAgg", "TotalDrift"), ("ClickAgg", "WorstDrift"),
])
def test_dashboard_widgets_present(default_template, namespace, metric):
    assert (namespace, metric) in metrics_of(dashboard(default_template)[1])


def dimensions(line: list) -> tuple[tuple[str, str], ...]:
    """(name, value) dimension pairs of a graph line [namespace, metric, n1, v1, ..., {options}]."""
    pairs = line[2:-1] if isinstance(line[-1], dict) else line[2:]
    return tuple(zip(pairs[::2], pairs[1::2]))


def test_powertools_metrics_carry_the_service_dimension(default_template):
    # CloudWatch matches a graph line only on the exact dimension set the publisher sends.
    # Powertools EphemeralMetrics(service=...) adds service=<name> to every metric it emits:
    # "ingest" (functions/ingest/handler.py), "sink" (functions/aggregate/sink_handler.py). The
    # nightly reconciliation (glue_jobs/reconcile.emit_metrics) is not Powertools: TotalDrift and
    # WorstDrift carry no dimension.
    _, body = dashboard(default_template)
    lines = {(line[1], dimensions(line)) for w in body["widgets"]
             for line in w["properties"].get("metrics", [])
             if isinstance(line[0], str) and line[0] == "ClickAgg"}
    ingest, sink = (("service", "ingest"),), (("service", "sink"),)
    assert lines == {("ClicksAccepted", ingest), ("ClicksDuplicate", ingest),
                     ("ClicksRejected", ingest), ("ClicksRetryable", ingest),
                     ("SinkLag", sink), ("TotalDrift", ()), ("WorstDrift", ()),
                     # the sink's per-verdict deltas (aggregate/verdicts.py), the IVT rate's input
                     ("ClicksCounted", sink), ("ClicksValid", sink), ("ClicksSuspect", sink),
                     ("ClicksInvalid", sink)}


def test_kinesis_widgets_cover_both_streams(default_template):
    _, body = dashboard(default_template)
    [age] = [w for w in body["widgets"] if w["properties"].get("title", "").startswith(
        "Kinesis: iterator age")]
    assert len(age["properties"]["metrics"]) == 2


def test_freshness_estimate_and_alarm_status(default_template):
    _, body = dashboard(default_template)
    expressions = [line[0]["expression"] for w in body["widgets"]
                   for line in w["properties"].get("metrics", [])
                   if isinstance(line[0], dict) and "expression" in line[0]]
    assert expressions == ["FILL(clicksage, 0) + FILL(sinklag, 0) + 7000",  # 5 s + 2000 ms
                           "IF(clicks >= 100, 100 * (FILL(suspect, 0) + FILL(invalid, 0)) / clicks, 0)"]
    [status] = [w for w in body["widgets"] if w["type"] == "alarm"]
    alarm_count = len(resources(default_template, "AWS::CloudWatch::Alarm"))
    assert len(status["properties"]["alarms"]) == alarm_count  # every alarm of the stack


def test_waf_widget_only_with_waf(default_template, custom_template):
    assert not any(t.startswith("WAF") for t in titles(dashboard(default_template)[1]))
    _, body = dashboard(custom_template)
    assert ("AWS/WAFV2", "BlockedRequests") in metrics_of(body)


def test_drift_widget_marks_the_alarm_threshold_with_reconciliation(custom_template):
    _, body = dashboard(custom_template)
    [drift] = [w for w in body["widgets"]
               if w["properties"].get("title", "").startswith("Reconciliation")]
    assert drift["properties"]["annotations"]["horizontal"][0]["value"] == 0.001


@pytest.mark.parametrize("name,metric,threshold", [
    ("ClicksRetryable", "ClicksRetryable", 0),
    ("SinkLag", "SinkLag", 60000),
    ("QueryErrors", "Errors", 0),
    ("FlinkCheckpointDuration", "lastCheckpointDuration", 10000),
])
def test_paging_alarms(default_template, name, metric, threshold):
    [alarm] = [a["Properties"] for a in resources(default_template, "AWS::CloudWatch::Alarm")
               .values() if a["Properties"]["AlarmName"] == f"clickagg-ops-{name}"]
    assert alarm["MetricName"] == metric and alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Period"] == 300 and alarm["TreatMissingData"] == "notBreaching"
    [action] = alarm["AlarmActions"]
    assert action["Ref"].startswith("AlarmsTopic")


def test_alarm_thresholds_follow_context(custom_template):
    alarms = {a["Properties"]["AlarmName"]: a["Properties"]
              for a in resources(custom_template, "AWS::CloudWatch::Alarm").values()}
    assert alarms["ca-test-ops-SinkLag"]["Threshold"] == 120000  # iterator_age_alarm_ms
    assert alarms["ca-test-ops-FlinkCheckpointDuration"]["Threshold"] == 30000
    assert alarms["ca-test-ops-ClicksRetryable"]["Dimensions"] == [
        {"Name": "service", "Value": "ingest"}]
