"""POST /v1/reconcile: a small Lambda that starts a billing workflow run for one day.

Its own function and role, not the query Lambda's: the query role stays read-only, and this one
may do exactly one thing, glue:StartWorkflowRun on the billing workflow (the jobs then read the
run's `day` property, see glue_jobs/workflow_day.py). SigV4 (IAM) like the query routes, and not
granted to the dashboard's viewer role: recomputes are for operators and finance tooling.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from common.schema import RECONCILE
from infra.constructs.billing import NightlyBilling
from infra.constructs.python_function import asset_exclude, build_python_function
from infra.constructs.serving_store import ServingStore
from infra.settings import StackSettings

HANDLER = "query.reconcile_handler.lambda_handler"
ASSET_EXCLUDE = asset_exclude("common", "query/*.py")
ROUTE = "/v1/reconcile"
MEMORY_MB = 256
TIMEOUT = Duration.seconds(15)


class ReconcileApi(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 billing: NightlyBilling, store: ServingStore, v1: apigw.IResource) -> None:
        super().__init__(scope, id)
        built = build_python_function(
            self, settings=settings, key=key, handler=HANDLER, exclude=ASSET_EXCLUDE,
            description="POST /v1/reconcile: start the billing workflow for one day",
            role_description="clickagg reconcile API: may start billing workflow runs only",
            service="reconcile",
            memory_mb=MEMORY_MB,
            timeout=TIMEOUT,
            # BILLING_WORKFLOW, SERVING_STORE, BILLING_CUTOFF_HOURS and RECONCILE_MAX_AGE_DAYS
            # (= archive_cold_after_days: older days are in the cold class, a restore comes
            # first): common.schema's settings of this function (common.config ReconcileSettings)
            environment=settings.lambda_env(RECONCILE, billing_workflow=billing.workflow.ref),
        )
        self.log_group, self.role, self.function = built.log_group, built.role, built.function
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["glue:StartWorkflowRun"], resources=[billing.workflow_arn]))

        self.method = v1.add_resource("reconcile").add_method(
            "POST", apigw.LambdaIntegration(self.function, proxy=True),
            authorization_type=apigw.AuthorizationType.IAM,
            request_parameters={"method.request.querystring.day": True})
        Validations.of(self.method).acknowledge(Acknowledgment(
            id="AwsSolutions-COG4",
            reason="IAM (SigV4) authorization instead of a Cognito authorizer: callers are "
                   "operators and finance tooling with AWS credentials, granted "
                   "execute-api:Invoke on this one method.",
        ))
