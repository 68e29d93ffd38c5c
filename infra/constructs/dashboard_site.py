"""The live dashboard on AWS: static files (web/dist) in a private S3 bucket behind CloudFront
(origin access control), signed-in users get temporary AWS credentials from a Cognito identity
pool and call the IAM-authorized query API directly with SigV4 (web/src/auth.js, sigv4.js).

Why this shape (web/README.md has the whole story):
- The query API stays IAM-authorized (execute-api:Invoke per method, SigV4): the dashboard is one
  more IAM caller, with its own narrowly scoped role, not a proxy holding broad credentials.
- The page is public static code, the data is not: CloudFront serves only files; every data
  request carries the signed-in user's credentials. No Lambda@Edge signing proxy (which would
  make the API callable by anyone who reaches the distribution, unless the proxy authenticated
  users itself).
- Users are operators added by an admin (no self sign-up), with MFA required and threat
  protection enforced; tokens are short-lived (ID/access 1 h, refresh 12 h).

Resources
  Bucket       a data bucket (infra.constructs.buckets.data_bucket): SSE-KMS with the pipeline
               key, private, TLS only, access-logged. OAC reads it: the bucket policy allows
               s3:GetObject to this distribution only; aws-cdk-lib adds a key-policy statement
               letting CloudFront (distributions of this account: naming this one would make
               key -> distribution -> bucket -> key a cycle) kms:Decrypt; the bucket policy is
               the gate, the other buckets under this key allow CloudFront nothing.
  CdnLogs      CloudFront standard logs (buckets.log_delivery_bucket: SSE-S3 like the access
               logs, ACLs because standard logging writes with them, expiring)
  Cdn          CloudFront distribution, OAC, HTTPS only, security headers incl. a CSP that allows
               connections only to this API, the identity pool and the user pool domain; cache
               key includes the `v` query string web/build.mjs stamps on every asset URL
  Deploy       BucketDeployment of web/dist + config.json (API URL, pool ids), every object
               `Cache-Control: max-age=60`. No CloudFront invalidation: aws-cdk-lib would grant
               cloudfront:CreateInvalidation on '*'; stamped assets change URL, index.html and
               config.json are at most a minute stale at the edge.
  Users        Cognito user pool + hosted-UI domain + public client (code flow + PKCE)
  Identities   identity pool (no unauthenticated identities) -> ViewerRole: execute-api:Invoke on
               GET /v1/top, /v1/ads/*/metrics, /v1/quality, /v1/health (never POST /v1/reconcile)

CORS is not made here: the page's origin (`self.origin`, the distribution's https URL) goes into
infra.constructs.api_cors.ApiCors with the configured origins, which adds the OPTIONS preflights,
the gateway-response headers and CORS_ALLOWED_ORIGINS in the Lambdas' environment (the Lambdas
echo a listed request Origin: functions/common/cors.py). So infra/stack.py creates this construct
(context `dashboard_site`, default true) before ApiCors:

    self.dashboard = DashboardSite(self, "Dashboard", settings=settings, key=key,
                                   api=self.api.api, logs_bucket=logs_bucket)
    self.cors = ApiCors(..., origins=[*settings.cors_origins, self.dashboard.origin], ...)

Outputs (stack-level names): DashboardUrl, DashboardUserPoolId.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from aws_cdk import (Acknowledgment, Annotations, Aws, CfnOutput, DefaultStackSynthesizer, Duration, RemovalPolicy,
                     Stack, Token, Validations)
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.constructs.buckets import data_bucket, log_delivery_bucket
from infra.constructs.python_function import LOG_RETENTION
from infra.constructs.query_api import ROUTES as QUERY_ROUTES
from query.routes import BUDGET_ROUTE, PACING_ROUTE
from infra.settings import StackSettings

WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
# GET /v1/top, /v1/{ads,campaigns,advertisers}/{id}/metrics, /v1/quality, /v1/health, and the
# campaign budget panel's GET budget and GET pacing (not PUT: the dashboard only reads)
DASHBOARD_ROUTES = (*QUERY_ROUTES, BUDGET_ROUTE, PACING_ROUTE)
CDN_LOG_RETENTION = Duration.days(365)
PAGE_CACHE = "public, max-age=60"  # index.html and config.json change on deploy; assets are ?v= stamped
ASSET_VERSION_PARAM = "v"  # web/build.mjs: `app.js?v=<content hash>`; part of the CloudFront cache key
OAC_KEY_WARNING = "@aws-cdk/aws-cloudfront-origins:wildcardKeyPolicyForOac"
# aws-cdk-lib's grants to BucketDeployment's provider Lambda (acknowledged below, and the only
# wildcard actions tests/infra/test_infra_security.py lets that one role have)
HANDLER_S3_ACTION_WILDCARDS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
HANDLER_KMS_ACTION_WILDCARDS = ("kms:ReEncrypt*", "kms:GenerateDataKey*")


def _ack(construct: Construct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


class DashboardSite(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 api: apigw.RestApi, logs_bucket: s3.IBucket, dist_dir: Optional[Path] = WEB_DIST) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)

        # --- static files: private KMS bucket, CloudFront with OAC ----------------------------
        # (a deploy replaces every file, BucketDeployment prunes: no versioning)
        self.bucket = data_bucket(self, "Bucket", key=key, logs_bucket=logs_bucket,
                                  log_prefix="dashboard-site/", versioned=False)
        self.cdn_logs = log_delivery_bucket(
            self, "CdnLogs", retention=CDN_LOG_RETENTION, logs_bucket=logs_bucket,
            log_prefix="dashboard-cdn-logs/",
            # CloudFront standard logging writes with ACLs: the one bucket here that allows them
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER)

        # --- sign-in: user pool (operators), hosted UI domain, public client ----------------
        self.user_pool = cognito.UserPool(
            self, "Users",
            user_pool_name=f"{settings.prefix}-dashboard",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=Duration.days(3)),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.domain = self.user_pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=f"{settings.prefix}-dash-{Aws.ACCOUNT_ID}"))

        csp = "; ".join([
            "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
            f"connect-src 'self' https://{api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX} "
            f"https://cognito-identity.{Aws.REGION}.{Aws.URL_SUFFIX} {self.domain.base_url()}",
            "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'none'",
        ])
        headers = cloudfront.ResponseHeadersPolicy(
            self, "Headers",
            comment=f"{settings.prefix} dashboard security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=csp, override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, override=True),
            ),
        )
        cache = cloudfront.CachePolicy(
            self, "Cache",
            comment=f"{settings.prefix} dashboard: origin Cache-Control, ?v= asset stamps in the key",
            query_string_behavior=cloudfront.CacheQueryStringBehavior.allow_list(ASSET_VERSION_PARAM),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            min_ttl=Duration.seconds(0), default_ttl=Duration.minutes(1), max_ttl=Duration.days(365),
            enable_accept_encoding_gzip=True, enable_accept_encoding_brotli=True,
        )
        self.distribution = cloudfront.Distribution(
            self, "Cdn",
            comment=f"{settings.prefix} live dashboard",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cache,
                response_headers_policy=headers,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.cdn_logs,
            log_file_prefix="cloudfront/",
        )
        # The pipeline key's OAC statement (see the docstring) comes with a synth warning.
        Annotations.of(key.node.scope).acknowledge_warning(
            OAC_KEY_WARNING,
            "The dashboard bucket's bucket policy allows s3:GetObject to this distribution only; "
            "the key statement lets CloudFront decrypt through S3 for distributions of this account, "
            "and no other bucket under this key allows CloudFront anything.")
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        self.url = f"{self.origin}/"

        self.client = self.user_pool.add_client(
            "Web",
            generate_secret=False,  # a browser app cannot keep a secret: code flow + PKCE
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[self.url], logout_urls=[self.url]),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(12),
        )

        # --- AWS credentials for signed-in users: identity pool -> ViewerRole ----------------
        self.identity_pool = cognito.CfnIdentityPool(
            self, "Identities",
            identity_pool_name=f"{settings.prefix}_dashboard",
            allow_unauthenticated_identities=False,
            allow_classic_flow=False,
            cognito_identity_providers=[cognito.CfnIdentityPool.CognitoIdentityProviderProperty(
                client_id=self.client.user_pool_client_id,
                provider_name=self.user_pool.user_pool_provider_name,
                server_side_token_check=True)],
        )
        self.viewer_role = iam.Role(
            self, "ViewerRole",
            description="clickagg dashboard users (Cognito identity pool): read-only query API",
            assumed_by=iam.FederatedPrincipal(
                "cognito-identity.amazonaws.com",
                conditions={
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": self.identity_pool.ref},
                    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
                },
                assume_role_action="sts:AssumeRoleWithWebIdentity"),
            max_session_duration=Duration.hours(1),
        )
        stage = api.deployment_stage.stage_name
        # Pseudo parameters, not method_arn (stack.region/account): the ARN, and so the finding
        # acknowledged below, reads the same with or without a concrete environment.
        routes = DASHBOARD_ROUTES
        arn_path = {route: re.sub(r"\{[^}]+\}", "*", route) for route in routes}  # a path parameter: '*'
        invoke_arns = [f"arn:{Aws.PARTITION}:execute-api:{Aws.REGION}:{Aws.ACCOUNT_ID}:{api.rest_api_id}/{stage}/GET"
                       + arn_path[route] for route in routes]
        self.viewer_role.add_to_policy(iam.PolicyStatement(
            sid="InvokeDashboardRoutes", actions=["execute-api:Invoke"], resources=invoke_arns))
        for route in (r for r in routes if "{" in r):
            _ack(self.viewer_role, f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
                 f"<AWS::AccountId>:<{_logical(api)}>/<{_logical(api.deployment_stage)}>/GET{arn_path[route]}]",
                 f"API Gateway method ARNs put '*' where a path parameter is: this grants GET {route} "
                 "for any id on this one API and stage, nothing else.")
        cognito.CfnIdentityPoolRoleAttachment(
            self, "IdentityRoles", identity_pool_id=self.identity_pool.ref,
            roles={"authenticated": self.viewer_role.role_arn})

        # --- the files, with the config the page reads at start ------------------------------
        self.config = {
            "apiBaseUrl": f"https://{api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{stage}",
            "region": Aws.REGION,
            "auth": {
                "type": "cognito",
                "userPoolId": self.user_pool.user_pool_id,
                "clientId": self.client.user_pool_client_id,
                "identityPoolId": self.identity_pool.ref,
                "domain": self.domain.base_url(),
                "redirectUri": self.url,
            },
        }
        self.deployment = None
        if dist_dir is not None and (Path(dist_dir) / "index.html").is_file():
            self.deployment = s3deploy.BucketDeployment(
                self, "Deploy",
                sources=[s3deploy.Source.asset(str(dist_dir)), s3deploy.Source.json_data("config.json", self.config)],
                destination_bucket=self.bucket,
                # no `distribution`: see the docstring (no invalidation, no cloudfront:* on '*')
                cache_control=[s3deploy.CacheControl.from_string(PAGE_CACHE)],
                memory_limit=256,
                # the stack's conventions: KMS-encrypted log group with the common retention
                log_group=logs.LogGroup(self, "DeployLogs", retention=LOG_RETENTION, encryption_key=key,
                                        removal_policy=RemovalPolicy.RETAIN),
            )
            self._acknowledge_deployment_handler(stack)
        elif dist_dir is not None:  # None: deliberately no files (tests)
            Annotations.of(self).add_warning_v2(
                "clickagg:dashboard-not-built",
                f"{dist_dir}/index.html not found: the dashboard files are not deployed. Build them "
                "first: npm ci --prefix web && npm run --prefix web build")

        self._acknowledge_distribution()
        # stack-level output names, like infra/stack.py's own outputs
        CfnOutput(self, "DashboardUrl", value=self.url,
                  description="the live dashboard (sign in)").override_logical_id("DashboardUrl")
        CfnOutput(self, "DashboardUserPoolId", value=self.user_pool.user_pool_id,
                  description="add operators: aws cognito-idp admin-create-user --user-pool-id <this> "
                              "--username <email>").override_logical_id("DashboardUserPoolId")

    def _acknowledge_distribution(self) -> None:
        _ack(self.distribution, "AwsSolutions-CFR1",
             "No geo restriction: operators sign in from wherever they work; access is controlled by "
             "Cognito sign-in with MFA and IAM on the API, the distribution serves only static code.")
        _ack(self.distribution, "AwsSolutions-CFR2",
             "No WAF web ACL: the distribution serves only static files (no data, no forms, no "
             "origin compute); data needs a signed-in user's SigV4 credentials at the API.")
        _ack(self.distribution, "AwsSolutions-CFR4",
             "Default *.cloudfront.net certificate, which lets CloudFront negotiate older TLS; the "
             "minimum is TLSv1.2_2021 once a custom domain and ACM certificate are configured.")

    def _acknowledge_deployment_handler(self, stack: Stack) -> None:
        """BucketDeployment's provider Lambda (a CDK singleton at the stack root)."""
        handler = next(c for c in stack.node.children
                       if c.node.id.startswith("Custom::CDKBucketDeployment"))
        _ack(handler, "AwsSolutions-L1",
             "BucketDeployment's provider Lambda: aws-cdk-lib pins its runtime; it runs only at "
             "deploy time to copy web/dist into the dashboard bucket.")
        _ack(handler, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                      "AWSLambdaBasicExecutionRole]",
             "BucketDeployment's provider Lambda (aws-cdk-lib) uses the AWS managed basic execution "
             "policy for its own CloudWatch logs only.")
        copy = ("BucketDeployment's provider Lambda (aws-cdk-lib) copies web/dist from the CDK "
                "assets bucket into the dashboard bucket at deploy time")
        for action in HANDLER_S3_ACTION_WILDCARDS:
            _ack(handler, f"AwsSolutions-IAM5[Action::{action}]",
                 f"{copy}: aws-cdk-lib's bucket grants use S3 action wildcards, on those two buckets only.")
        for action in HANDLER_KMS_ACTION_WILDCARDS:
            _ack(handler, f"AwsSolutions-IAM5[Action::{action}]",
                 f"{copy}: the dashboard bucket is SSE-KMS, aws-cdk-lib's read/write grant adds these "
                 "KMS action wildcards on the pipeline key only.")
        _ack(handler, f"AwsSolutions-IAM5[Resource::<{_logical(self.bucket)}.Arn>/*]",
             f"{copy}: it writes (and prunes) every object of the dashboard bucket, which holds nothing else.")
        _ack(handler, f"AwsSolutions-IAM5[Resource::{_assets_bucket_arn(stack)}/*]",
             f"{copy}: it reads the uploaded asset zip from the CDK bootstrap assets bucket "
             "(aws-cdk-lib's grant covers that bucket's objects).")


def _assets_bucket_arn(stack: Stack) -> str:
    """The CDK bootstrap assets bucket as cdk-nag names it: pseudo parameters without an
    environment, literal account/region/partition with one (`cdk synth` with credentials)."""
    synthesizer = stack.synthesizer
    qualifier = getattr(synthesizer, "bootstrap_qualifier", None) or DefaultStackSynthesizer.DEFAULT_QUALIFIER

    def shown(value: str, placeholder: str) -> str:
        resolved = stack.resolve(value)  # {"Ref": "AWS::Partition"} or a literal ("aws")
        return resolved if isinstance(resolved, str) and not Token.is_unresolved(resolved) else placeholder

    return (f"arn:{shown(stack.partition, '<AWS::Partition>')}:s3:::cdk-{qualifier}-assets-"
            f"{shown(stack.account, '<AWS::AccountId>')}-{shown(stack.region, '<AWS::Region>')}")


def _logical(construct: Construct) -> str:
    return Stack.of(construct).get_logical_id(construct.node.default_child)
