"""The IVT-rate alarm: notifies the alarm topic when suspect + invalid clicks are more than
`ivt_alert_percent` of the clicks the stream counted in 5 minutes (the threshold GET /v1/quality
alerts on too).

The metric, and why this one. An alarm needs a series CloudWatch holds continuously; the IVT
verdicts are known in three places:
  - the Flink job classifies the clicks, but Managed Flink publishes operator metrics (records,
    checkpoints, downtime), not per-verdict counters, and a counter in the job would count each
    row's emissions (every version, every resolution), not clicks;
  - GET /v1/quality computes the rate from the serving store, but only when someone asks;
  - the sink writes every version of every 1m aggregate, and its conditional PutItem returns the
    item it replaced (ReturnValues=ALL_OLD: same request, no read capacity). new - old, per
    verdict, is what the store learnt about those clicks; per key the differences telescope to
    the newest row, so summed they count each click once however the changelog arrives
    (redelivered, reordered, bisected and retried: a stale or repeated row writes nothing and
    adds nothing). aggregate/verdicts.py computes them, the sink Lambda prints them as EMF
    (ClicksCounted, ClicksValid, ClicksSuspect, ClicksInvalid; namespace ClickAgg, service=sink):
    no PutMetricData call, no extra permission.
So the alarm is metric math over those sums in one 5-minute period, N = ivt_alert_min_clicks:
    IF(clicks >= N, 100 * (FILL(suspect, 0) + FILL(invalid, 0)) / clicks, 0) > ivt_alert_percent
Without data (no 1m aggregate written: no traffic, or the Timestream store, whose WriteRecords
returns no old record) the alarm is not breaching; clicks = 0 gives 0, not a division by zero.

What the rate means: of the clicks newly counted in the period, the share newly known to be
suspect or invalid. Deltas land when the sink writes them: a re-classification of older clicks
(an IP burst found later turns counted valid clicks suspect: negative ClicksValid, positive
ClicksSuspect) counts in the period it was learnt, so a period of few new clicks and such a
re-classification can exceed 100 %: an alarm worth looking at. Late-dropped clicks are not counted
(the nightly billing classifies them). Rows of a job without verdicts have no suspect/invalid
counts: 0, the rate stays 0.
"""
from __future__ import annotations

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_sns as sns
from constructs import Construct

from aggregate.verdicts import SERVICE, VERDICT_METRICS
from infra.constructs.alarms import PERIOD, add_alarm
from infra.settings import StackSettings

# metric math ids -> the changelog column whose per-verdict delta the sink publishes
USING = {"clicks": "clicks", "suspect": "suspect_clicks", "invalid": "invalid_clicks"}


def expression(min_clicks: int) -> str:
    """The rate the alarm evaluates: 0 below `min_clicks` clicks (ivt_alert_min_clicks, the same
    floor as GET /v1/quality's alert)."""
    return f"IF(clicks >= {max(1, min_clicks)}, 100 * (FILL(suspect, 0) + FILL(invalid, 0)) / clicks, 0)"


class IvtRateAlarm(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        namespace = settings.names.metrics_namespace
        self.metrics = {
            key: cw.Metric(namespace=namespace, metric_name=VERDICT_METRICS[column],
                           dimensions_map={"service": SERVICE}, statistic="Sum", period=PERIOD)
            for key, column in USING.items()}
        self.rate = cw.MathExpression(expression=expression(settings.ivt_alert_min_clicks),
                                      using_metrics=self.metrics,
                                      label="IVT rate (% of counted clicks)", period=PERIOD)
        percent = settings.ivt_alert_percent
        self.alarm = add_alarm(
            self, "IvtRate", topic=topic, alarm_name=f"{settings.prefix}-quality-IvtRate",
            description=(f"IVT rate > {percent} %: suspect + invalid clicks were more than "
                         f"{percent} % of the clicks the stream counted in 5 minutes (sink EMF "
                         "ClicksSuspect + ClicksInvalid over ClicksCounted; ivt_alert_percent; "
                         f"not below {settings.ivt_alert_min_clicks} clicks, ivt_alert_min_clicks). "
                         "GET /v1/quality `ivt` has the rates per class; the reasons are in the "
                         "raw archive."),
            metric=self.rate, threshold=percent)
