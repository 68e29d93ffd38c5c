"""The budget lane's API and its fail-closed alarm (docs/budget.md).

PUT/GET /v1/campaigns/{campaign_id}/budget, GET /v1/campaigns/{campaign_id}/pacing and
POST /v1/pacing on the existing REST API, IAM (SigV4) like the query routes: callers are ad
servers and finance tooling with AWS credentials. Its own Lambda and role: it writes the budgets
table (the query role stays read-only) and sits on ad servers' request path (its own
concurrency, its own alarms). It may read and write the budgets table and read the serving
table (spend items and the pulse).

BudgetLaneStale: the sink publishes PulseAge for every pulse it writes; the alarm fires when the
newest pulse of a minute is older than budget_stale_after_ms, or when no pulse landed in that
minute (missing data is breaching: a stopped job publishes nothing). It is the moment every
pacing decision turns to `stop`.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from aggregate.verdicts import SERVICE as SINK_SERVICE
from common.schema import BUDGET
from infra.constructs.python_function import asset_exclude, build_python_function
from infra.constructs.serving_store import ServingStore
from infra.settings import StackSettings
from query.routes import BUDGET_ROUTES

HANDLER = "query.budget.handler.lambda_handler"
# common + query + the serving store's keys and item helpers (serving/*.py), no readers or writers
ASSET_EXCLUDE = asset_exclude("common", "query", "serving/*.py")
TIMEOUT = Duration.seconds(10)  # a decision is one or two DynamoDB requests
PULSE_PERIOD = Duration.minutes(1)
BUDGETS_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                   "dynamodb:ConditionCheckItem")
KMS_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")


class BudgetApi(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 budgets: dynamodb.ITable, store: ServingStore, api: apigw.RestApi,
                 topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        built = build_python_function(
            self, settings=settings, key=key, handler=HANDLER, exclude=ASSET_EXCLUDE,
            description="PUT/GET campaign budgets, GET/POST pacing decisions (docs/budget.md)",
            role_description="clickagg budget Lambda: budgets table read/write, serving table read",
            service="budget",
            memory_mb=settings.budget_memory_mb,
            timeout=TIMEOUT,
            # BUDGETS_TABLE, SERVING_TABLE, the fail-closed bound, the cache and the emit
            # interval: common.schema's settings of this function (common.config BudgetSettings)
            environment=settings.lambda_env(BUDGET, budgets_table=budgets.table_name,
                                            serving_table=store.wiring["serving_table"]),
        )
        self.log_group, self.role, self.function = built.log_group, built.role, built.function
        # named actions (grant_read_write_data would add kms:GenerateDataKey*/ReEncrypt*
        # wildcards): reads, and the PUT's transaction of two conditional puts
        budgets.grant(self.function, *BUDGETS_ACTIONS)
        key.grant(self.function, *KMS_ACTIONS)
        store.grant_read(self.function)

        integration = apigw.LambdaIntegration(self.function, proxy=True)
        self.methods: dict[tuple[str, str], apigw.Method] = {}
        for route, verbs in BUDGET_ROUTES.items():
            resource = api.root.resource_for_path(route)
            params = {f"method.request.path.{p.strip('{}')}": True
                      for p in route.split("/") if p.startswith("{")}
            for verb in verbs:
                method = resource.add_method(verb, integration,
                                             authorization_type=apigw.AuthorizationType.IAM,
                                             request_parameters=params or None)
                Validations.of(method).acknowledge(Acknowledgment(
                    id="AwsSolutions-COG4",
                    reason="IAM (SigV4) authorization instead of a Cognito authorizer: callers "
                           "are ad servers and finance tooling with AWS credentials, granted "
                           "execute-api:Invoke per method.",
                ))
                self.methods[(verb, route)] = method

        self.pulse_age = cw.Metric(
            namespace=settings.names.metrics_namespace, metric_name="PulseAge",
            dimensions_map={"service": SINK_SERVICE}, statistic="Maximum", period=PULSE_PERIOD)
        self.alarm = cw.Alarm(
            self, "BudgetLaneStale", alarm_name=f"{settings.prefix}-budget-BudgetLaneStale",
            alarm_description=(
                f"The budget lane's pulse is older than {settings.budget_stale_after_ms} ms "
                "(budget_stale_after_ms) or none landed in a minute: the Flink job, the "
                "aggregates stream or the sink is down, and every pacing decision answers "
                "`stop` (fail closed) until it is back. docs/budget.md"),
            metric=self.pulse_age, threshold=settings.budget_stale_after_ms, evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.BREACHING)
        self.alarm.add_alarm_action(cw_actions.SnsAction(topic))
