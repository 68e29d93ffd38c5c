"""REST API in front of the ingest Lambda: POST /v1/clicks, API key + usage plan throttling;
POST /v1/public/clicks (browsers and apps, issue 17) and GET /v1/c?t=TOKEN (click links): public,
no API key (the click token is the credential, verified by the Lambda on every click).

API keys identify and throttle ad servers (server-to-server callers, no end users), so the
method uses no authorizer. The request validator only checks that the body is JSON (object or
array), on both POST routes: per-click field errors stay with the Lambda, which reports them item
by item. The public routes are capped by the stage throttle and the optional WAF rule (per IP,
every route): README, "Public click path: rate limiting". The public POST's CORS (`*`, its own
OPTIONS preflight) is infra.constructs.api_cors.public_preflight.
The query routes (GET /v1/..., IAM auth) are added to this API by infra.constructs.query_api;
CORS (context `cors_allowed_origins`) by infra.constructs.api_cors, the optional WAF
(`waf_enabled`) by infra.constructs.api_firewall.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from common import public_route
from infra.constructs.api_cors import gateway_cors_headers, public_preflight
from infra.settings import StackSettings

STAGE = "prod"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
F = apigw.AccessLogField
# One JSON object per request. Values are quoted here except messageString, which API Gateway
# quotes and escapes itself (error messages can contain quotes).
ACCESS_LOG_FIELDS = {
    "requestId": F.context_request_id(),
    "requestTime": F.context_request_time(),
    "ip": F.context_identity_source_ip(),
    "userAgent": F.context_identity_user_agent(),
    "apiKeyId": F.context_identity_api_key_id(),
    "method": F.context_http_method(),
    "path": F.context_resource_path(),
    "status": F.context_status(),
    "responseLength": F.context_response_length(),
    "responseLatency": F.context_response_latency(),
    "integrationLatency": F.context_integration_latency(),
    "xrayTraceId": F.context_xray_trace_id(),
}
ACCESS_LOG_FORMAT = "{" + ", ".join(
    [f'"{name}": "{value}"' for name, value in ACCESS_LOG_FIELDS.items()]
    + [f'"error": {F.context_error_message_string()}']) + "}"
# Same shape as the Lambda's own errors ({"error", "status", "details"}).
BAD_BODY_TEMPLATE = ('{"error": "body is not valid JSON (expected a click, {\\"clicks\\": [...]} '
                     'or an array)", "status": 400, "details": [$context.error.messageString]}')


class IngestApi(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 handler: lambda_.IFunction) -> None:
        super().__init__(scope, id)
        prefix = settings.prefix
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION, encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN)

        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=f"{prefix}-ingest",
            description="clickagg click ingest (POST /v1/clicks)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            # Execution (ERROR-level) logging needs the account-level API Gateway CloudWatch role.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log request bodies (IPs, user agents)
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
                throttling_rate_limit=settings.ingest_rate_limit,
                throttling_burst_limit=settings.ingest_burst_limit,
            ),
        )
        # A customized response type does not inherit DEFAULT_4XX's CORS headers: its own.
        self.api.add_gateway_response(
            "BadRequestBody", type=apigw.ResponseType.BAD_REQUEST_BODY, status_code="400",
            templates={"application/json": BAD_BODY_TEMPLATE},
            response_headers=gateway_cors_headers(settings.cors_origins) or None)

        body_model = self.api.add_model(
            "ClickBody", content_type="application/json", model_name="ClickBody",
            description="Any JSON object or array; field rules live in the Lambda",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4, title="ClickBody",
                type=[apigw.JsonSchemaType.OBJECT, apigw.JsonSchemaType.ARRAY]))
        validator = self.api.add_request_validator(
            "JsonBodyValidator", validate_request_body=True, validate_request_parameters=True)

        self.v1 = self.api.root.add_resource("v1")  # the query routes (query_api) hang here too

        def json_post(resource: apigw.IResource, *, api_key: bool) -> apigw.Method:
            """POST to the ingest Lambda, its JSON body validated by the gateway."""
            return resource.add_method(
                "POST", apigw.LambdaIntegration(handler, proxy=True),
                api_key_required=api_key,
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
                request_models={"application/json": body_model},
            )

        self.post_clicks = json_post(self.v1.add_resource("clicks"), api_key=True)
        _acknowledge_api_key_auth(self.post_clicks)
        # Impressions, clicks, conversions (POST /v1/events, docs/events.md): servers only (ad
        # servers, advertisers), the same API key, usage plan and JSON body validation.
        self.post_events = json_post(self.v1.add_resource("events"), api_key=True)
        _acknowledge_api_key_auth(self.post_events)

        # Click links: end users' browsers, so neither key nor authorizer; the signed token in
        # `t` is the credential (the Lambda verifies it on every request, in every
        # click_token_mode) and the stage throttle (and the optional WAF) caps the rate.
        link = self.v1.add_resource("c")
        self.get_click_link = link.add_method(
            "GET", apigw.LambdaIntegration(handler, proxy=True),
            api_key_required=False,
            authorization_type=apigw.AuthorizationType.NONE,
        )  # no gateway validation: the Lambda answers a missing `t` in its documented shape
        _acknowledge_public_click_link(self.get_click_link)

        # Clicks from browsers and apps (POST /v1/public/clicks): no key or authorizer either;
        # every click must carry a valid token whatever click_token_mode says (the Lambda
        # rejects it otherwise), and an application/json body is validated like POST /v1/clicks'.
        # A text/plain body (the browser SDK's: public_route.CONTENT_TYPES) has no model, so the
        # gateway passes it on and the Lambda alone validates it: its refusals carry CORS headers
        # (a gateway 400 does not, and a browser would see it as a network error).
        public = self.v1.resource_for_path(public_route.PATH.removeprefix("/v1/"))
        self.post_public_clicks = json_post(public, api_key=False)
        _acknowledge_public_clicks(self.post_public_clicks)
        self.public_clicks_preflight = public_preflight(public)

        self.usage_plan = self.api.add_usage_plan(
            "UsagePlan", name=f"{prefix}-ingest",
            description="Per-API-key throttle of the ingest endpoint",
            throttle=apigw.ThrottleSettings(
                rate_limit=settings.ingest_rate_limit, burst_limit=settings.ingest_burst_limit),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        # A first key so the endpoint is usable after deploy; add one key per ad server later.
        self.api_key = self.api.add_api_key("DefaultKey", api_key_name=f"{prefix}-default")
        self.usage_plan.add_api_key(self.api_key)

        if not settings.waf_enabled:  # with waf_enabled, ApiFirewall associates a web ACL
            Validations.of(self.api.deployment_stage).acknowledge(Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="No WAF by default (-c waf_enabled=true adds one): its per-request fee "
                       "(~$15k/month at the 10k req/s design rate) buys little here: ad servers "
                       "need an API key (unkeyed requests are refused at the gateway); the "
                       "public click routes need a signed click token per click, verified "
                       "before anything is written; usage-plan and stage throttles cap the rate, "
                       "bodies are validated.",
            ))
        Validations.of(self.api.node.find_child("CloudWatchRole")).acknowledge(Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
               "AmazonAPIGatewayPushToCloudWatchLogs]",
            reason="Account-level role API Gateway uses for execution logs; AWS's service-role "
                   "policy is the documented one and tracks API Gateway's log-group naming.",
        ))


def _acknowledge_public_click_link(method: apigw.Method) -> None:
    reason = ("Click links (GET /v1/c?t=TOKEN) are followed by end users' browsers from plain "
              "<a href> links: no API key or user login can exist there. The credential is the "
              "HMAC-signed click token in `t`, verified by the Lambda on every request "
              "(docs/click-token.md); a bad token gets a 4xx and no redirect.")
    Validations.of(method).acknowledge(
        Acknowledgment(id="AwsSolutions-APIG4", reason=reason),
        Acknowledgment(id="AwsSolutions-COG4", reason=reason),
    )


def _acknowledge_public_clicks(method: apigw.Method) -> None:
    reason = ("Clicks sent by end users' browsers and apps (POST /v1/public/clicks): no API key "
              "may ship in a web page or an app, and there is no user login. The credential is "
              "the HMAC-signed click token each click must carry, verified by the Lambda whatever "
              "click_token_mode says (docs/click-token.md); a click without a valid one is "
              "rejected with its reason and nothing of it reaches the stream.")
    Validations.of(method).acknowledge(
        Acknowledgment(id="AwsSolutions-APIG4", reason=reason),
        Acknowledgment(id="AwsSolutions-COG4", reason=reason),
    )


def _acknowledge_api_key_auth(method: apigw.Method) -> None:
    reason = ("Callers are ad servers (machine to machine, no end users): each has an API key in a "
              "usage plan that identifies and throttles it; there is no user pool to authorize.")
    Validations.of(method).acknowledge(
        Acknowledgment(id="AwsSolutions-APIG4", reason=reason),
        Acknowledgment(id="AwsSolutions-COG4", reason=reason),
    )
