"""The dashboard site (infra/constructs/dashboard_site.py): private S3 + CloudFront (OAC), Cognito
sign-in -> identity pool -> a role that may only GET the dashboard's query routes, CORS for the
page's origin; cdk-nag clean inside the whole app with documented acknowledgements.

Until infra/stack.py instantiates DashboardSite, these tests add it to the app's stack themselves
(the same call the stack will make)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template

from infra.constructs.api_cors import ENV_VAR as CORS_ENV
from infra.constructs.api_cors import SIGV4_HEADERS, ApiCors
from infra.constructs.dashboard_site import DASHBOARD_ROUTES, DashboardSite
from infra.constructs.query_api import ROUTES as QUERY_ROUTES
from infra.settings import StackSettings

WEB = Path(__file__).resolve().parents[2] / "web"
ACK_METADATA = Validations.ACKNOWLEDGED_RULES_METADATA_KEY


def _dist(tmp_path_factory) -> Path:
    """A built web/dist for the asset (the real build when node_modules is there)."""
    if (WEB / "node_modules" / "uplot").is_dir():
        out = tmp_path_factory.mktemp("dist")
        subprocess.run(["node", "build.mjs", str(out)], cwd=WEB, check=True, capture_output=True, timeout=60)
        return out
    out = tmp_path_factory.mktemp("dist")
    (out / "index.html").write_text("<!doctype html><title>stand-in</title>")
    return out


def add_dashboard(stack, dist_dir: Path) -> DashboardSite:
    """What infra/stack.py does: DashboardSite, then ApiCors with the page's origin."""
    existing = stack.node.try_find_child("Dashboard")
    if existing is not None:  # infra/stack.py wires it
        return existing
    site = DashboardSite(stack, "Dashboard", settings=stack.settings, key=stack.node.find_child("Encryption").key,
                         api=stack.api.api, logs_bucket=stack.node.find_child("AccessLogs").bucket, dist_dir=dist_dir)
    assert not stack.cors.origins, "this test app expects no configured CORS origins"
    ApiCors(stack, "DashboardCors", api=stack.api.api, origins=[site.origin],
            routes={route: (["GET"], SIGV4_HEADERS) for route in QUERY_ROUTES},
            functions=[stack.query.function])
    return site


@pytest.fixture(scope="module")
def nag_app(app_factory, tmp_path_factory):
    app = app_factory(nag=True, serving_store="dynamodb")
    stack = app.node.find_child("ClickAgg")
    site = add_dashboard(stack, _dist(tmp_path_factory))
    app.synth()  # cdk-nag raises on any unacknowledged finding
    return app, stack, site


@pytest.fixture(scope="module")
def template(nag_app) -> dict:
    _, stack, _ = nag_app
    return Template.from_stack(stack).to_json()


def of_type(template: dict, type_: str, prefix: str = "") -> dict[str, dict]:
    return {k: v["Properties"] for k, v in template["Resources"].items()
            if v["Type"] == type_ and k.startswith(prefix)}


def one(template: dict, type_: str, prefix: str = "") -> tuple[str, dict]:
    found = of_type(template, type_, prefix)
    assert len(found) == 1, (type_, prefix, list(found))
    return next(iter(found.items()))


def _logical(stack, construct) -> str:
    return stack.get_logical_id(construct.node.default_child)


def test_whole_app_is_nag_clean_with_documented_acknowledgements(nag_app):
    app, stack, site = nag_app
    api = stack.api.api
    found = {}
    for construct in app.node.find_all():
        path = construct.node.path
        if not (path.startswith("ClickAgg/Dashboard") or path.startswith("ClickAgg/Custom::CDKBucketDeployment")):
            continue
        for entry in construct.node.metadata:
            if entry.type == ACK_METADATA:
                for rule, reason in entry.data.items():
                    found[(path, rule.removeprefix("Annotation::"))] = reason
    for (path, rule), reason in found.items():
        assert len(reason) >= 60, (path, rule, reason)
    rules = {(path.split("/")[1] if "Custom::" in path else path.removeprefix("ClickAgg/Dashboard/"), rule)
             for path, rule in found}
    handler = next(p for p, _ in rules if p.startswith("Custom::CDKBucketDeployment"))
    assert rules == {
        ("Cdn", "AwsSolutions-CFR1"), ("Cdn", "AwsSolutions-CFR2"), ("Cdn", "AwsSolutions-CFR4"),
        ("ViewerRole", "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                       f"<{_logical(stack, api)}>/<{_logical(stack, api.deployment_stage)}>/GET/v1/ads/*/metrics]"),
        (handler, "AwsSolutions-L1"),
        (handler, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"),
        (handler, "AwsSolutions-IAM5[Action::s3:GetObject*]"), (handler, "AwsSolutions-IAM5[Action::s3:GetBucket*]"),
        (handler, "AwsSolutions-IAM5[Action::s3:List*]"), (handler, "AwsSolutions-IAM5[Action::s3:DeleteObject*]"),
        (handler, "AwsSolutions-IAM5[Action::s3:Abort*]"),
        (handler, f"AwsSolutions-IAM5[Resource::<{_logical(stack, site.bucket)}.Arn>/*]"),
        (handler, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]"),
        (handler, "AwsSolutions-IAM5[Resource::*]"),
    }


def test_site_bucket_is_private_and_read_only_by_this_distribution(template):
    bucket_id, bucket = one(template, "AWS::S3::Bucket", "DashboardBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith("AccessLogs")
    _, policy = one(template, "AWS::S3::BucketPolicy", "DashboardBucketPolicy")
    statements = policy["PolicyDocument"]["Statement"]
    deny_http = [s for s in statements if s["Effect"] == "Deny"]
    assert deny_http and deny_http[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert "DashboardCdn" in json.dumps(source)  # only this distribution (OAC), not any CloudFront


def test_distribution_https_oac_logging_and_csp(template):
    dist_id, dist = one(template, "AWS::CloudFront::Distribution", "DashboardCdn")
    config = dist["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    [origin] = config["Origins"]
    assert "OriginAccessControlId" in origin and origin["S3OriginConfig"]["OriginAccessIdentity"] == ""
    assert config["Logging"]["Bucket"]["Fn::GetAtt"][0].startswith("DashboardCdnLogs")
    _, logs = one(template, "AWS::S3::Bucket", "DashboardCdnLogs")
    assert logs["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]
    _, headers = one(template, "AWS::CloudFront::ResponseHeadersPolicy", "DashboardHeaders")
    security = headers["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = json.dumps(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    for part in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", ".execute-api.",
                 "https://cognito-identity.", ".amazoncognito.com"):
        assert part in csp, part
    assert "unsafe" not in csp
    assert security["FrameOptions"]["FrameOption"] == "DENY"


def test_sign_in_operators_only_with_mfa(template):
    _, pool = one(template, "AWS::Cognito::UserPool", "DashboardUsers")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "ON" and pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 14
    assert pool["UserPoolAddOns"]["AdvancedSecurityMode"] == "ENFORCED"
    _, client = one(template, "AWS::Cognito::UserPoolClient", "DashboardUsersWeb")
    assert client.get("GenerateSecret") in (None, False)
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert "DashboardCdn" in json.dumps(client["CallbackURLs"])
    _, identities = one(template, "AWS::Cognito::IdentityPool", "DashboardIdentities")
    assert identities["AllowUnauthenticatedIdentities"] is False
    assert identities["CognitoIdentityProviders"][0]["ServerSideTokenCheck"] is True
    _, attachment = one(template, "AWS::Cognito::IdentityPoolRoleAttachment", "DashboardIdentityRoles")
    assert set(attachment["Roles"]) == {"authenticated"}


def test_viewer_role_may_only_get_the_dashboard_routes(template):
    role_id, role = one(template, "AWS::IAM::Role", "DashboardViewerRole")
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["cognito-identity.amazonaws.com:aud"]["Ref"].startswith("DashboardIdentities")
    assert trust["Condition"]["ForAnyValue:StringLike"] == {"cognito-identity.amazonaws.com:amr": "authenticated"}
    assert not role.get("ManagedPolicyArns")
    policies = [p for p in of_type(template, "AWS::IAM::Policy").values() if p["Roles"] == [{"Ref": role_id}]]
    [statement] = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "execute-api:Invoke" and statement["Effect"] == "Allow"
    tails = sorted(r["Fn::Join"][1][-1] for r in statement["Resource"])
    assert tails == ["/GET/v1/ads/*/metrics", "/GET/v1/health", "/GET/v1/quality", "/GET/v1/top"]
    api_ref = {"Ref": next(k for k in template["Resources"] if template["Resources"][k]["Type"] == "AWS::ApiGateway::RestApi")}
    for r in statement["Resource"]:
        assert api_ref in r["Fn::Join"][1]


def test_cors_for_the_page_origin(template):
    """ApiCors (with the page's origin, as infra/stack.py wires it): preflights on the query routes
    answer for the distribution, the GETs stay IAM-authorized, the query Lambda knows the origin."""
    methods = of_type(template, "AWS::ApiGateway::Method")
    resources = of_type(template, "AWS::ApiGateway::Resource")
    by_path = {}
    for rid, r in resources.items():
        by_path[rid] = r["PathPart"]
    options = {k: m for k, m in methods.items() if m["HttpMethod"] == "OPTIONS"}
    query_parts = {"top", "metrics", "health"}
    covered = set()
    for m in options.values():
        part = by_path.get(m["ResourceId"]["Ref"])
        if part not in query_parts:
            continue
        covered.add(part)
        assert m["AuthorizationType"] == "NONE" and m["Integration"]["Type"] == "MOCK"
        params = json.dumps(m["Integration"]["IntegrationResponses"][0])
        assert "DashboardCdn" in params and "'*'" not in params
        assert "X-Amz-Security-Token" in params
    assert covered == query_parts
    gets = [m for m in methods.values() if m["HttpMethod"] == "GET"]
    assert len(gets) == 3 and all(m["AuthorizationType"] == "AWS_IAM" for m in gets)
    [query_fn] = [f for f in of_type(template, "AWS::Lambda::Function").values()
                  if f.get("Handler") == "query.handler.lambda_handler"]
    assert "DashboardCdn" in json.dumps(query_fn["Environment"]["Variables"][CORS_ENV])


def test_files_and_config_are_deployed(template):
    _, deploy = one(template, "Custom::CDKBucketDeployment")
    assert deploy["DestinationBucketName"]["Ref"].startswith("DashboardBucket")
    assert deploy["DistributionPaths"] == ["/*"] and deploy["Prune"] is True
    assert len(deploy["SourceObjectKeys"]) == 2  # web/dist + config.json
    markers = json.dumps(deploy["SourceMarkers"])
    for ref in ("DashboardUsers", "DashboardIdentities", "DashboardCdn", "IngestApi"):
        assert ref in markers, ref
    assert deploy["SystemMetadata"]["cache-control"] == "public, max-age=60"


def test_without_a_build_nothing_is_deployed_and_synth_warns(tmp_path):
    """A small stack (no nag): web/dist missing -> no BucketDeployment, a warning that says how to build."""
    app = App()
    stack = Stack(app, "Mini")
    api = apigw.RestApi(stack, "Api")
    fn = lambda_.Function(stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                          code=lambda_.Code.from_inline("def handler(e, c): return {}"))
    methods = {}
    for route in DASHBOARD_ROUTES:
        methods[route] = api.root.resource_for_path(route).add_method(
            "GET", apigw.LambdaIntegration(fn), authorization_type=apigw.AuthorizationType.IAM)

    DashboardSite(stack, "Dashboard", settings=StackSettings(), key=kms.Key(stack, "Key"), api=api,
                  logs_bucket=s3.Bucket(stack, "Logs"), dist_dir=tmp_path / "missing")
    template = Template.from_stack(stack)
    template.resource_count_is("Custom::CDKBucketDeployment", 0)
    template.resource_count_is("AWS::CloudFront::Distribution", 1)
    Annotations.from_stack(stack).has_warning("/Mini/Dashboard", Match.string_like_regexp("npm run --prefix web build"))


def test_deploy_logs_follow_the_stack_conventions(template):
    _, group = one(template, "AWS::Logs::LogGroup", "DashboardDeployLogs")
    assert group["KmsKeyId"]["Fn::GetAtt"][0].startswith("EncryptionKey")
    assert group["RetentionInDays"] == 30


def test_assets_bucket_finding_matches_with_and_without_an_environment(cdk_config):
    """cdk-nag names the bootstrap bucket with pseudo parameters, or literally once `cdk synth`
    has an account and region: the acknowledgement follows (test_infra_nag's concrete-env test
    synthesizes the wired stack)."""
    from aws_cdk import Environment

    from infra.constructs.dashboard_site import _assets_bucket_arn

    app = App(context=cdk_config["context"])  # @aws-cdk/core:enablePartitionLiterals among them
    assert _assets_bucket_arn(Stack(app, "Agnostic")) == \
        "arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>"
    concrete = Stack(app, "Concrete", env=Environment(account="123456789012", region="eu-west-1"))
    assert _assets_bucket_arn(concrete) == "arn:aws:s3:::cdk-hnb659fds-assets-123456789012-eu-west-1"
