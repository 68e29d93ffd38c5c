"""Optional WAFv2 web ACL on the API stage (context `waf_enabled`, default off).

One rate-based rule: an IP sending more than `waf_rate_limit_per_5min` requests in a 5-minute
window is blocked until its rate drops (default: ingest_rate_limit x 300, i.e. no single client
may exceed the stage's whole rate for 5 minutes). It counts every route of the stage, so it
covers the public ones (GET /v1/c, POST /v1/public/clicks: browsers and apps, no API key) too.
No managed rule groups: the common rule set's body-size rule would block normal click batches (up
to 500 clicks per request), and every click needs an API key or a signed click token. Metrics and sampled requests are on (CloudWatch namespace
AWS/WAFV2, metric names below).

Without WAF the stage carries an AwsSolutions-APIG3 acknowledgement (infra.constructs.ingest_api)
with the reasons; with WAF there is nothing to acknowledge.
"""
from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.settings import StackSettings

RATE_RULE = "RateLimitPerIp"
EVALUATION_WINDOW_S = 300


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True)


class ApiFirewall(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 stage: apigw.Stage) -> None:
        super().__init__(scope, id)
        self.metric_name = f"{settings.prefix}-api"
        self.rate_metric_name = f"{settings.prefix}-api-{RATE_RULE}"
        W = wafv2.CfnWebACL
        self.web_acl = W(
            self, "WebAcl",
            name=f"{settings.prefix}-api",
            description=f"{settings.prefix}: per-IP rate limit in front of the API stage",
            scope="REGIONAL",
            default_action=W.DefaultActionProperty(allow={}),
            visibility_config=_visibility(self.metric_name),
            rules=[W.RuleProperty(
                name=RATE_RULE,
                priority=0,
                action=W.RuleActionProperty(block={}),
                statement=W.StatementProperty(rate_based_statement=W.RateBasedStatementProperty(
                    limit=settings.waf_rate_limit,
                    aggregate_key_type="IP",
                    evaluation_window_sec=EVALUATION_WINDOW_S)),
                visibility_config=_visibility(self.rate_metric_name),
            )],
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn)
        # stage_arn is built from names, not a GetAtt: order the association after the stage.
        self.association.node.add_dependency(stage)
