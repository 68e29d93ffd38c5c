"""The dashboard site (infra/constructs/dashboard_site.py), as infra/stack.py wires it (context
`dashboard_site`, default true): private KMS bucket + CloudFront (OAC), Cognito sign-in ->
identity pool -> a role that may only GET the dashboard's query routes, the page's origin in the
API's CORS; cdk-nag clean with documented acknowledgements, and nothing of it with the flag off.

The default app deploys web/dist when it is built (`make setup` builds it); without a build the
construct deploys no files and warns (both are asserted, whichever applies)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template

from infra.constructs.api_cors import ENV_VAR as CORS_ENV
from infra.constructs.dashboard_site import (ASSET_VERSION_PARAM, DASHBOARD_ROUTES, HANDLER_KMS_ACTION_WILDCARDS,
                                             HANDLER_S3_ACTION_WILDCARDS, OAC_KEY_WARNING, WEB_DIST, DashboardSite)
from infra.settings import StackSettings
from tests.infra.test_infra_stack import CORS_ROUTES, api_methods, public_methods

WEB = Path(__file__).resolve().parents[2] / "web"
ACK_METADATA = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
BUILT = (WEB_DIST / "index.html").is_file()


@pytest.fixture(scope="module")
def nag_app(app_factory):
    """Default context with cdk-nag: synth raises on any unacknowledged finding."""
    app = app_factory(nag=True)
    app.synth()
    return app


@pytest.fixture(scope="module")
def off_app(app_factory):
    app = app_factory(nag=True, dashboard_site=False)
    app.synth()  # cdk-nag clean without the dashboard too
    return app


@pytest.fixture(scope="module")
def template(default_template) -> dict:
    return default_template.to_json()


@pytest.fixture(scope="module")
def stack(default_app):
    return default_app.node.find_child("ClickAgg")


def of_type(template: dict, type_: str, prefix: str = "") -> dict[str, dict]:
    return {k: v["Properties"] for k, v in template["Resources"].items()
            if v["Type"] == type_ and k.startswith(prefix)}


def one(template: dict, type_: str, prefix: str = "") -> tuple[str, dict]:
    found = of_type(template, type_, prefix)
    assert len(found) == 1, (type_, prefix, list(found))
    return next(iter(found.items()))


def _logical(stack, construct) -> str:
    return stack.get_logical_id(construct.node.default_child)


def key_arn(template: dict) -> dict:
    [key] = of_type(template, "AWS::KMS::Key")
    return {"Fn::GetAtt": [key, "Arn"]}


def cdn_origin(template: dict) -> dict:
    cdn, _ = one(template, "AWS::CloudFront::Distribution", "DashboardCdn")
    return {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [cdn, "DomainName"]}]]}


def test_stack_wires_the_site_by_default(stack):
    assert isinstance(stack.dashboard, DashboardSite)
    assert stack.dashboard.origin in stack.cors.origins
    assert stack.cors.origins == (stack.dashboard.origin,)  # no configured origins by default
    assert (stack.dashboard.deployment is not None) is BUILT


def test_whole_app_is_nag_clean_with_documented_acknowledgements(nag_app):
    stack = nag_app.node.find_child("ClickAgg")
    site, api = stack.dashboard, stack.api.api
    found = {}
    for construct in nag_app.node.find_all():
        path = construct.node.path
        if not (path.startswith("ClickAgg/Dashboard/") or path.startswith("ClickAgg/Custom::CDKBucketDeployment")):
            continue
        for entry in construct.node.metadata:
            if entry.type == ACK_METADATA:
                for rule, reason in entry.data.items():
                    found[(path, rule.removeprefix("Annotation::"))] = reason
    for (path, rule), reason in found.items():
        assert len(reason) >= 60, (path, rule, reason)
    rules = {(path.split("/")[1] if "Custom::" in path else path.removeprefix("ClickAgg/Dashboard/"), rule)
             for path, rule in found}
    expected = {
        ("Cdn", "AwsSolutions-CFR1"), ("Cdn", "AwsSolutions-CFR2"), ("Cdn", "AwsSolutions-CFR4"),
        *(("ViewerRole", "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                         f"<{_logical(stack, api)}>/<{_logical(stack, api.deployment_stage)}>/GET/v1/{collection}/*/{leaf}]")
          for collection, leaf in (("ads", "metrics"), ("campaigns", "metrics"), ("advertisers", "metrics"),
                                   ("campaigns", "budget"), ("campaigns", "pacing"))),
    }
    if BUILT:
        [handler] = {p for p, _ in rules if p.startswith("Custom::CDKBucketDeployment")}
        expected |= {
            (handler, "AwsSolutions-L1"),
            (handler, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                      "AWSLambdaBasicExecutionRole]"),
            *((handler, f"AwsSolutions-IAM5[Action::{a}]")
              for a in (*HANDLER_S3_ACTION_WILDCARDS, *HANDLER_KMS_ACTION_WILDCARDS)),
            (handler, f"AwsSolutions-IAM5[Resource::<{_logical(stack, site.bucket)}.Arn>/*]"),
            (handler, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
                      "<AWS::AccountId>-<AWS::Region>/*]"),
        }
    assert rules == expected  # no IAM5[Resource::*]: no CloudFront invalidation grant


def test_the_oac_key_policy_warning_is_acknowledged(stack):
    """aws-cdk-lib warns about its account-wide key statement for OAC (a synth warning carries
    "[ack: <id>]"); the construct acknowledges it with its reason, so synth shows none."""
    warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    assert not [w for w in warnings if OAC_KEY_WARNING in json.dumps(w.entry.data)]


def test_site_bucket_is_private_kms_and_read_only_by_this_distribution(template):
    bucket_id, bucket = one(template, "AWS::S3::Bucket", "DashboardBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {"BucketKeyEnabled": True, "ServerSideEncryptionByDefault": {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn(template)}}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith("AccessLogs")
    assert "WebsiteConfiguration" not in bucket  # served by CloudFront only, not S3 website hosting
    _, policy = one(template, "AWS::S3::BucketPolicy", "DashboardBucketPolicy")
    statements = policy["PolicyDocument"]["Statement"]
    [deny_http] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny_http["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]}
    cdn, _ = one(template, "AWS::CloudFront::Distribution", "DashboardCdn")
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert {"Ref": cdn} in source["Fn::Join"][1]  # only this distribution (OAC), not any CloudFront


def test_key_lets_cloudfront_only_decrypt_for_this_accounts_distributions(template):
    [key] = of_type(template, "AWS::KMS::Key").values()
    cloudfront = [s for s in key["KeyPolicy"]["Statement"]
                  if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert cloudfront == [{
        "Action": "kms:Decrypt", "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Resource": "*",
        "Condition": {"ArnLike": {"AWS:SourceArn": {"Fn::Join": ["", [
            "arn:", {"Ref": "AWS::Partition"}, ":cloudfront::", {"Ref": "AWS::AccountId"}, ":distribution/*"]]}}}}]
    # the gate is the bucket policy: no other bucket policy lets CloudFront in
    for name, policy in of_type(template, "AWS::S3::BucketPolicy").items():
        if not name.startswith("DashboardBucketPolicy"):
            assert "cloudfront.amazonaws.com" not in json.dumps(policy), name


def test_distribution_https_oac_logging_and_csp(template):
    _, dist = one(template, "AWS::CloudFront::Distribution", "DashboardCdn")
    config = dist["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    [origin] = config["Origins"]
    oac_id, oac = one(template, "AWS::CloudFront::OriginAccessControl")
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""  # OAC, not a legacy OAI
    assert oac["OriginAccessControlConfig"] == {**oac["OriginAccessControlConfig"], **{
        "OriginAccessControlOriginType": "s3", "SigningBehavior": "always", "SigningProtocol": "sigv4"}}
    assert not of_type(template, "AWS::CloudFront::CloudFrontOriginAccessIdentity")
    assert origin["DomainName"]["Fn::GetAtt"][0].startswith("DashboardBucket")
    assert config["Logging"]["Bucket"]["Fn::GetAtt"][0].startswith("DashboardCdnLogs")
    _, logs = one(template, "AWS::S3::Bucket", "DashboardCdnLogs")
    assert logs["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]  # standard logging: ACLs
    assert logs["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert logs["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 365
    _, headers = one(template, "AWS::CloudFront::ResponseHeadersPolicy", "DashboardHeaders")
    security = headers["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = json.dumps(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    for part in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", ".execute-api.",
                 "https://cognito-identity.", ".amazoncognito.com"):
        assert part in csp, part
    assert "unsafe" not in csp
    assert security["FrameOptions"]["FrameOption"] == "DENY"


def test_cache_key_carries_the_asset_stamp_of_the_build(template):
    """No invalidation on deploy: a new build changes every asset URL (?v=<hash>), which must be
    part of CloudFront's cache key; everything else follows the objects' max-age."""
    assert f"?{ASSET_VERSION_PARAM}=" in (WEB / "build.mjs").read_text()
    cache_id, cache = one(template, "AWS::CloudFront::CachePolicy", "DashboardCache")
    key = cache["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "whitelist", "QueryStrings": [ASSET_VERSION_PARAM]}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    _, dist = one(template, "AWS::CloudFront::Distribution", "DashboardCdn")
    assert dist["DistributionConfig"]["DefaultCacheBehavior"]["CachePolicyId"] == {"Ref": cache_id}


def test_sign_in_operators_only_with_mfa(template):
    _, pool = one(template, "AWS::Cognito::UserPool", "DashboardUsers")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up
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
    assert tails == ["/GET/v1/ads/*/metrics", "/GET/v1/advertisers/*/metrics", "/GET/v1/campaigns/*/budget",
                     "/GET/v1/campaigns/*/metrics", "/GET/v1/campaigns/*/pacing",
                     "/GET/v1/health", "/GET/v1/quality", "/GET/v1/top"]  # no PUT of a budget
    api_ref = {"Ref": next(k for k in template["Resources"] if template["Resources"][k]["Type"] == "AWS::ApiGateway::RestApi")}
    for r in statement["Resource"]:
        assert api_ref in r["Fn::Join"][1]


def test_api_cors_allows_exactly_the_page_origin(template):
    """Default context (no configured origins): every preflight answers for the distribution's
    origin only, the GETs stay IAM-authorized, the Lambdas know the origin."""
    methods = api_methods(template)
    options = {path: m for (verb, path), m in methods.items() if verb == "OPTIONS"}
    # /v1/clicks + the six query routes + /v1/reconcile, + the public POST's own (`*`)
    assert set(options) == {*CORS_ROUTES, "/v1/public/clicks"}
    quoted = {"Fn::Join": ["", ["'https://", cdn_origin(template)["Fn::Join"][1][1], "'"]]}
    for path, m in options.items():
        assert m["AuthorizationType"] == "NONE" and m["Integration"]["Type"] == "MOCK"
        response = m["Integration"]["IntegrationResponses"][0]
        assert response["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"] == (
            "'*'" if path == "/v1/public/clicks" else quoted), path
        assert "ResponseTemplates" not in response  # one origin: no other is ever echoed
    gets = [m for (verb, _), m in methods.items() if verb == "GET"]
    assert len(gets) == 9  # the six query routes, GET budget and pacing (IAM) + the click link GET /v1/c
    # public on purpose, exactly these: the click link (a plain <a href>) and the click POST of
    # browsers and apps (+ its preflight), the signed token being the proof; and the preflights
    assert public_methods(template) == {("GET", "/v1/c"), ("POST", "/v1/public/clicks"),
                                        *(("OPTIONS", path) for path in options)}
    [query_fn] = [f for f in of_type(template, "AWS::Lambda::Function").values()
                  if f.get("Handler") == "query.handler.lambda_handler"]
    assert query_fn["Environment"]["Variables"][CORS_ENV] == cdn_origin(template)


def test_outputs_name_the_url_and_the_user_pool(template):
    outputs = template["Outputs"]
    assert outputs["DashboardUrl"]["Value"] == {"Fn::Join": ["", [*cdn_origin(template)["Fn::Join"][1], "/"]]}
    pool, _ = one(template, "AWS::Cognito::UserPool", "DashboardUsers")
    assert outputs["DashboardUserPoolId"]["Value"] == {"Ref": pool}


def test_files_and_config_are_deployed_when_built(stack, template):
    if not BUILT:
        Annotations.from_stack(stack).has_warning(
            "/ClickAgg/Dashboard", Match.string_like_regexp("npm run --prefix web build"))
        assert not of_type(template, "Custom::CDKBucketDeployment")
        return
    _, deploy = one(template, "Custom::CDKBucketDeployment")
    assert deploy["DestinationBucketName"]["Ref"].startswith("DashboardBucket")
    assert "DistributionId" not in deploy and "DistributionPaths" not in deploy  # no invalidation
    assert deploy["Prune"] is True
    assert len(deploy["SourceObjectKeys"]) == 2  # web/dist + config.json
    markers = json.dumps(deploy["SourceMarkers"])
    for ref in ("DashboardUsers", "DashboardIdentities", "DashboardCdn", "IngestApi"):
        assert ref in markers, ref
    assert deploy["SystemMetadata"]["cache-control"] == "public, max-age=60"
    _, group = one(template, "AWS::Logs::LogGroup", "DashboardDeployLogs")
    assert group["KmsKeyId"] == key_arn(template)
    assert group["RetentionInDays"] == 30


def test_nothing_of_it_with_the_flag_off(off_app):
    stack = off_app.node.find_child("ClickAgg")
    assert stack.dashboard is None and stack.cors.origins == ()
    template = Template.from_stack(stack).to_json()
    present = {v["Type"] for v in template["Resources"].values()}
    for type_ in ("AWS::CloudFront::Distribution", "AWS::Cognito::UserPool", "AWS::Cognito::IdentityPool",
                  "Custom::CDKBucketDeployment"):
        assert type_ not in present, type_
    assert not [k for k in template["Resources"] if k.startswith("Dashboard")]
    assert not [k for k in template["Outputs"] if k.startswith("Dashboard")]
    # no configured origins: no CORS at all, except the public click POST's own (`*`)
    methods = api_methods(template)
    assert [key for key, m in methods.items() if "Access-Control" in json.dumps(m)] == [
        ("OPTIONS", "/v1/public/clicks")]
    assert "Access-Control" not in json.dumps(
        {k: v for k, v in template["Resources"].items() if v["Type"] != "AWS::ApiGateway::Method"})
    assert public_methods(template) == {("GET", "/v1/c"), ("POST", "/v1/public/clicks"),
                                        ("OPTIONS", "/v1/public/clicks")}
    for fn in of_type(template, "AWS::Lambda::Function").values():
        assert CORS_ENV not in fn.get("Environment", {}).get("Variables", {})


def test_flag_comes_from_context():
    app = App(context={"dashboard_site": "false"})
    assert StackSettings.from_context(app.node).dashboard_site is False
    assert StackSettings.from_context(App().node).dashboard_site is True
    with pytest.raises(ValueError, match="dashboard_site"):
        StackSettings.from_context(App(context={"dashboard_site": "maybe"}).node)


def test_without_a_build_nothing_is_deployed_and_synth_warns(tmp_path):
    """A small stack (no nag): web/dist missing -> no BucketDeployment, a warning that says how to build."""
    app = App()
    stack = Stack(app, "Mini")
    api = apigw.RestApi(stack, "Api")
    fn = lambda_.Function(stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                          code=lambda_.Code.from_inline("def handler(e, c): return {}"))
    for route in DASHBOARD_ROUTES:
        api.root.resource_for_path(route).add_method(
            "GET", apigw.LambdaIntegration(fn), authorization_type=apigw.AuthorizationType.IAM)

    DashboardSite(stack, "Dashboard", settings=StackSettings(), key=kms.Key(stack, "Key"), api=api,
                  logs_bucket=s3.Bucket(stack, "Logs"), dist_dir=tmp_path / "missing")
    template = Template.from_stack(stack)
    template.resource_count_is("Custom::CDKBucketDeployment", 0)
    template.resource_count_is("AWS::CloudFront::Distribution", 1)
    Annotations.from_stack(stack).has_warning("/Mini/Dashboard", Match.string_like_regexp("npm run --prefix web build"))


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
