"""The operations dashboard (CloudWatch dashboard `<prefix>-operations`; the live web dashboard
for users is infra.constructs.dashboard_site) and the paging alarms that complete the existing
ones (infra.constructs.alarms), on the same KMS-encrypted SNS topic.

Rows, top to bottom:
  alarms      status of every pipeline alarm
  ingest      ClickAgg ClicksAccepted/Duplicate/Rejected/Retryable (sum, service=ingest: the
              Powertools dimension), API requests/4XX/5XX, API latency p50/p99 (+ integration)
  lambdas     Errors and Throttles of the ingest, sink and query functions
  streams     clicks + aggregates GetRecords.IteratorAgeMilliseconds (max) and
              WriteProvisionedThroughputExceeded (sum)
  flink       lastCheckpointDuration, downtime, numberOfFailedCheckpoints (AWS/KinesisAnalytics)
  freshness   ClickAgg SinkLag (the sink: now - newest aggregates-stream arrival of a batch), and
              an estimate of how far the serving store trails the clicks: clicks IteratorAge +
              SinkLag + the job's watermark delay + mini-batch latency (no service emits the
              watermark lag itself as a metric yet)
  billing     ClickAgg TotalDrift / WorstDrift of the nightly reconciliation (daily)
  ivt         the IVT rate the IvtRate alarm watches (5-minute sums, with its threshold) and the
              sink's per-verdict click deltas (infra.constructs.ivt_alarm)
  waf         allowed/blocked requests of the web ACL (only with waf_enabled)

New paging alarms: ClicksRetryable > 0 (clients were told to retry: dedup table or stream
throttled), SinkLag > iterator_age_alarm_ms, query Lambda errors > 0, Flink checkpoint duration
> flink_checkpoint_interval_ms (checkpoints cannot keep up: backpressure or state growth).
"""
from __future__ import annotations

from typing import Optional, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from aggregate.verdicts import SERVICE as SINK_SERVICE
from aggregate.verdicts import VERDICT_METRICS
from glue_jobs.reconcile import DRIFT_THRESHOLD
from infra.constructs.alarms import FLINK_NAMESPACE, add_alarm
from infra.constructs.api_firewall import ApiFirewall
from infra.constructs.billing import NightlyBilling
from infra.constructs.ivt_alarm import IvtRateAlarm
from infra.settings import StackSettings

GRAPH_PERIOD = Duration.minutes(1)
ALARM_PERIOD = Duration.minutes(5)
INGEST_OUTCOMES = ("ClicksAccepted", "ClicksDuplicate", "ClicksRejected", "ClicksRetryable")
W, H = 8, 6  # three graphs per row


class OperationsDashboard(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, topic: sns.ITopic,
                 api: apigw.RestApi, ingest: lambda_.IFunction, sink: lambda_.IFunction,
                 query: lambda_.IFunction, clicks_stream: kinesis.IStream,
                 aggregates_stream: kinesis.IStream, flink_application_name: str,
                 billing: NightlyBilling, alarms: Sequence[cw.IAlarm],
                 firewall: Optional[ApiFirewall] = None,
                 ivt: Optional[IvtRateAlarm] = None) -> None:
        """`alarms`: the pipeline's alarms (status widget); `ivt`: the IVT-rate alarm (its
        graph, and its alarm in the status widget)."""
        super().__init__(scope, id)
        prefix, namespace = settings.prefix, settings.names.metrics_namespace
        self.dashboard_name = f"{prefix}-operations"

        def app_metric(name: str, service: str, statistic: str = "Sum",
                       period: Duration = GRAPH_PERIOD) -> cw.Metric:
            return cw.Metric(namespace=namespace, metric_name=name, statistic=statistic,
                             period=period, dimensions_map={"service": service})

        def flink(name: str, statistic: str = "Maximum",
                  period: Duration = GRAPH_PERIOD) -> cw.Metric:
            return cw.Metric(namespace=FLINK_NAMESPACE, metric_name=name, statistic=statistic,
                             period=period,
                             dimensions_map={"Application": flink_application_name})

        # --- alarms that page (beyond infra.constructs.alarms) -------------------------------
        checkpoint_limit = settings.flink_checkpoint_interval_ms
        new_alarms = {
            "ClicksRetryable": (
                "Ingest ClicksRetryable > 0: clients were told to retry clicks (dedup table or "
                "clicks stream throttled, or a dependency failed)",
                app_metric("ClicksRetryable", "ingest", period=ALARM_PERIOD), 0),
            "SinkLag": (
                f"Sink SinkLag > {settings.iterator_age_alarm_ms} ms: aggregates reach the "
                "serving store late (sink slow, throttled or failing)",
                app_metric("SinkLag", "sink", "Maximum", ALARM_PERIOD),
                settings.iterator_age_alarm_ms),
            "QueryErrors": (
                "Query Lambda Errors > 0: unhandled exceptions or timeouts in the query API",
                query.metric_errors(period=ALARM_PERIOD, statistic="Sum"), 0),
            "FlinkCheckpointDuration": (
                f"Flink lastCheckpointDuration > {checkpoint_limit} ms (the checkpoint "
                "interval): checkpoints cannot keep up (backpressure or state growth)",
                flink("lastCheckpointDuration", period=ALARM_PERIOD), checkpoint_limit),
        }
        self.alarms: dict[str, cw.Alarm] = {
            name: add_alarm(self, name, topic=topic, alarm_name=f"{prefix}-ops-{name}",
                            description=description, metric=metric, threshold=threshold)
            for name, (description, metric, threshold) in new_alarms.items()
        }
        all_alarms = [*alarms, *self.alarms.values(), billing.drift_alarm,
                      *([ivt.alarm] if ivt is not None else [])]

        # --- widgets -------------------------------------------------------------------------
        def graph(title: str, left: Sequence[cw.IMetric], *,
                  right: Sequence[cw.IMetric] = (), stacked: bool = False,
                  annotations: Sequence[cw.HorizontalAnnotation] = (),
                  left_label: Optional[str] = None, width: int = W) -> cw.GraphWidget:
            return cw.GraphWidget(
                title=title, left=list(left), right=list(right), stacked=stacked, width=width,
                height=H, left_annotations=list(annotations),
                left_y_axis=cw.YAxisProps(label=left_label, show_units=False)
                if left_label else None)

        def per_function(metric: str) -> list[cw.IMetric]:
            return [fn.metric(metric, statistic="Sum", period=GRAPH_PERIOD, label=name)
                    for name, fn in (("ingest", ingest), ("sink", sink), ("query", query))]

        clicks_age = clicks_stream.metric_get_records_iterator_age_milliseconds(
            statistic="Maximum", period=GRAPH_PERIOD, label="clicks (Flink, Firehose)")
        aggregates_age = aggregates_stream.metric_get_records_iterator_age_milliseconds(
            statistic="Maximum", period=GRAPH_PERIOD, label="aggregates (sink)")
        sink_lag = app_metric("SinkLag", "sink", "Maximum")
        job_delay_ms = settings.watermark_delay_s * 1000 + settings.minibatch_latency_ms
        freshness = cw.MathExpression(
            expression=f"FILL(clicksage, 0) + FILL(sinklag, 0) + {job_delay_ms}",
            using_metrics={"clicksage": clicks_stream
                           .metric_get_records_iterator_age_milliseconds(
                               statistic="Maximum", period=GRAPH_PERIOD),
                           "sinklag": sink_lag},
            label="freshness lag estimate (ms)", period=GRAPH_PERIOD)

        rows: list[list[cw.IWidget]] = [
            [cw.TextWidget(
                markdown=f"# {prefix} operations\nIngest -> Kinesis -> Flink -> aggregates -> "
                         "sink -> serving store; nightly billing recompute + reconciliation. "
                         "Alarms notify the alarm topic.", width=6, height=H),
             cw.AlarmStatusWidget(title="Alarms", alarms=all_alarms, width=18, height=H)],
            [graph("Ingest: clicks by outcome (sum/min)",
                   [_labelled(app_metric(m, "ingest"), m.removeprefix("Clicks"))
                    for m in INGEST_OUTCOMES], stacked=True),
             graph("API: requests, 4XX, 5XX (sum/min)",
                   [api.metric_count(period=GRAPH_PERIOD, statistic="Sum", label="requests")],
                   right=[api.metric_client_error(period=GRAPH_PERIOD, statistic="Sum",
                                                  label="4XX"),
                          api.metric_server_error(period=GRAPH_PERIOD, statistic="Sum",
                                                  label="5XX")]),
             graph("API: latency (ms)",
                   [api.metric_latency(period=GRAPH_PERIOD, statistic="p50", label="p50"),
                    api.metric_latency(period=GRAPH_PERIOD, statistic="p99", label="p99"),
                    api.metric_integration_latency(period=GRAPH_PERIOD, statistic="p99",
                                                   label="integration p99")])],
            [graph("Lambda errors (sum/min)", per_function("Errors")),
             graph("Lambda throttles (sum/min)", per_function("Throttles")),
             graph("Lambda concurrency (max)",
                   [fn.metric("ConcurrentExecutions", statistic="Maximum", period=GRAPH_PERIOD,
                              label=name)
                    for name, fn in (("ingest", ingest), ("sink", sink), ("query", query))])],
            [graph("Kinesis: iterator age (ms, max)", [clicks_age, aggregates_age],
                   annotations=[cw.HorizontalAnnotation(
                       value=settings.iterator_age_alarm_ms, label="alarm")]),
             graph("Kinesis: WriteProvisionedThroughputExceeded (sum/min)",
                   [clicks_stream.metric_write_provisioned_throughput_exceeded(
                       statistic="Sum", period=GRAPH_PERIOD, label="clicks"),
                    aggregates_stream.metric_write_provisioned_throughput_exceeded(
                        statistic="Sum", period=GRAPH_PERIOD, label="aggregates")]),
             graph("Kinesis: incoming records (sum/min)",
                   [clicks_stream.metric_incoming_records(
                       statistic="Sum", period=GRAPH_PERIOD, label="clicks"),
                    aggregates_stream.metric_incoming_records(
                        statistic="Sum", period=GRAPH_PERIOD, label="aggregates")])],
            [graph("Flink: lastCheckpointDuration (ms)", [flink("lastCheckpointDuration")],
                   annotations=[cw.HorizontalAnnotation(value=checkpoint_limit,
                                                        label="checkpoint interval")]),
             graph("Flink: downtime (ms)", [flink("downtime")]),
             graph("Flink: numberOfFailedCheckpoints", [flink("numberOfFailedCheckpoints")])],
            [graph("Freshness: SinkLag (ms)",
                   [_labelled(sink_lag, "max"),
                    _labelled(app_metric("SinkLag", "sink", "p99"), "p99")],
                   annotations=[cw.HorizontalAnnotation(
                       value=settings.iterator_age_alarm_ms, label="alarm")]),
             graph("Freshness: serving store behind clicks (estimate, ms)", [freshness],
                   width=16)],
            [graph("Reconciliation: drift (daily, ratio)",
                   [_labelled(NightlyBilling.total_drift_metric(), "TotalDrift"),
                    _labelled(NightlyBilling.worst_drift_metric(), "WorstDrift")],
                   annotations=[cw.HorizontalAnnotation(value=DRIFT_THRESHOLD,
                                                        label="TotalDrift alarm")],
                   width=24)],
        ]
        if ivt is not None:
            rows.append([
                graph("Traffic quality: IVT rate (%, 5-min sums)", [ivt.rate],
                      annotations=[cw.HorizontalAnnotation(value=settings.ivt_alert_percent,
                                                           label="alarm")], width=12),
                graph("Traffic quality: clicks per verdict (sink deltas, sum/min)",
                      [_labelled(app_metric(name, SINK_SERVICE), name.removeprefix("Clicks"))
                       for name in VERDICT_METRICS.values()], width=12)])
        if firewall is not None:
            def waf(name: str) -> cw.Metric:
                return cw.Metric(namespace="AWS/WAFV2", metric_name=name, statistic="Sum",
                                 period=GRAPH_PERIOD, label=name,
                                 dimensions_map={"WebACL": firewall.web_acl.name or "",
                                                 "Rule": "ALL", "Region": Stack.of(self).region})
            rows.append([graph("WAF: requests (sum/min)",
                               [waf("AllowedRequests"), waf("BlockedRequests")], width=24)])

        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=self.dashboard_name,
            default_interval=Duration.hours(3), widgets=rows)


def _labelled(metric: cw.Metric, label: str) -> cw.Metric:
    return metric.with_(label=label)
