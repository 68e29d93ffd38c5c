"""The query Lambda and its read-only routes on the existing REST API, IAM-authorized.

GET /v1/top, GET /v1/ads/{ad_id}/metrics, GET /v1/campaigns/{campaign_id}/metrics,
GET /v1/advertisers/{advertiser_id}/metrics, GET /v1/quality, GET /v1/health (query.routes). Callers are
dashboards and internal services with AWS credentials: every method requires SigV4
(AuthorizationType.IAM), so access is granted with execute-api:Invoke on these method ARNs (no
API key: keys identify ad servers on the ingest route). The role may only read the serving store
(Query/GetItem on the table, or Timestream SELECT on the one table), read metrics
(cloudwatch:GetMetricData, for /v1/quality's ingest counts and stream iterator age) and write
its own log group.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from common.schema import QUERY
from query.routes import ROUTES, SERIES_ROUTES
from infra.constructs.python_function import asset_exclude, build_python_function
from infra.constructs.serving_store import ServingStore
from infra.settings import StackSettings

HANDLER = "query.handler.lambda_handler"
# common + query's modules (not the budget Lambda's package query/budget) + the serving store's
# core and readers (serving/*.py, serving/read), not its writers
ASSET_EXCLUDE = asset_exclude("common", "query/*.py", "serving/*.py", "serving/read")
TIMEOUT = Duration.seconds(29)  # API Gateway's integration timeout
GET_METRIC_DATA_REASON = (
    "cloudwatch:GetMetricData has no resource-level permissions (AWS service authorization "
    "reference); GET /v1/quality reads the ingest Lambda's ClickAgg metrics and the clicks "
    "stream's iterator age with it. Read-only.")


class QueryApi(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 store: ServingStore, api: apigw.RestApi, v1: apigw.IResource,
                 clicks_stream: kinesis.IStream) -> None:
        super().__init__(scope, id)
        built = build_python_function(
            self, settings=settings, key=key, handler=HANDLER, exclude=ASSET_EXCLUDE,
            description="GET /v1/top, /v1/{ads,campaigns,advertisers}/{id}/metrics, /v1/quality, /v1/health",
            role_description="clickagg query Lambda: read-only serving store access",
            service="query",
            memory_mb=settings.query_memory_mb,
            timeout=TIMEOUT,
            # the store's, the aggregation settings the answers depend on (lateness, M, repeat
            # window) and the clicks stream for /v1/quality's iterator age: common.schema
            environment=settings.lambda_env(QUERY, **store.wiring,
                                            clicks_stream_name=clicks_stream.stream_name),
            other_star_resources=[*store.star_resource_reasons, GET_METRIC_DATA_REASON],
        )
        self.log_group, self.role, self.function = built.log_group, built.role, built.function
        store.grant_read(self.function)
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:GetMetricData"], resources=["*"]))

        integration = apigw.LambdaIntegration(self.function, proxy=True)
        self.methods = {"/v1/top": v1.add_resource("top").add_method(
            "GET", integration, authorization_type=apigw.AuthorizationType.IAM)}
        for route in SERIES_ROUTES.values():  # /v1/<collection>/{<id>}/metrics
            _, _, collection, param, leaf = route.split("/")
            self.methods[route] = v1.add_resource(collection).add_resource(param).add_resource(leaf).add_method(
                "GET", integration, authorization_type=apigw.AuthorizationType.IAM,
                request_parameters={f"method.request.path.{param.strip('{}')}": True})
        for name in ("quality", "health"):
            self.methods[f"/v1/{name}"] = v1.add_resource(name).add_method(
                "GET", integration, authorization_type=apigw.AuthorizationType.IAM)
        assert tuple(self.methods) == ROUTES
        for method in self.methods.values():
            Validations.of(method).acknowledge(Acknowledgment(
                id="AwsSolutions-COG4",
                reason="IAM (SigV4) authorization instead of a Cognito authorizer: the callers "
                       "are dashboards and services with AWS credentials, there is no user pool; "
                       "access is granted per caller with execute-api:Invoke on these methods.",
            ))
