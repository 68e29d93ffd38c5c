"""CORS on the API, only for the browser origins in context `cors_allowed_origins` (default
empty: no CORS at all, no OPTIONS methods, no CORS headers anywhere).

With origins configured, every route gets an OPTIONS preflight (MOCK integration, no auth:
browsers send preflights without credentials) answering only for those origins: with one origin
the header is that origin; with several, API Gateway's mapping template echoes the request's
Origin only when it is in the list (CDK's add_cors_preflight). Allowed request headers are what
the route's callers send: Content-Type + X-Api-Key (POST /v1/clicks), SigV4's Authorization /
X-Amz-* (the IAM-authorized GETs).

The actual responses come from Lambda proxy integrations, so the Lambdas add
Access-Control-Allow-Origin themselves: both get CORS_ALLOWED_ORIGINS (comma-separated) in their
environment and must echo a request Origin only when it is listed (plus `Vary: Origin`).
API Gateway's own error answers (missing key, throttled, bad body) get the header through
gateway responses when exactly one origin is configured; a gateway response cannot choose among
several origins, so with several those errors reach the browser as CORS failures.

The one exception, `public_preflight`: the keyless click route for browsers and apps
(POST /v1/public/clicks, common.public_route) is called from any publisher page, so its CORS is
`*` whatever `cors_allowed_origins` says (with no origins configured too): an OPTIONS preflight
(MOCK, no auth, the same contract as above otherwise) allowing POST with Content-Type, and the
ingest Lambda adds `Access-Control-Allow-Origin: *` to every answer of that route (and only of
that route). Nothing else is widened: API Gateway's own error answers are API-wide gateway
responses, so they keep the configured origins' header (or none); on the public route a browser
sees those few (429 throttled, 400 body not JSON, WAF's 403) as CORS failures.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from common import public_route
from common.schema import BY_NAME

ENV_VAR = BY_NAME["cors_allowed_origins"].env  # CORS_ALLOWED_ORIGINS (common.config ApiSettings)
MAX_AGE = Duration.minutes(10)
API_KEY_HEADERS = ("Content-Type", "X-Api-Key")
SIGV4_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256",
                 "Accept")
GATEWAY_RESPONSES = {"Cors4xx": apigw.ResponseType.DEFAULT_4_XX,
                     "Cors5xx": apigw.ResponseType.DEFAULT_5_XX}


PREFLIGHT_REASON = ("CORS preflight (OPTIONS, MOCK integration, no backend): browsers send it "
                    "without credentials, so it cannot require an API key, IAM or Cognito; it "
                    "returns only CORS headers, never data.")


def public_preflight(resource: apigw.IResource) -> apigw.Method:
    """The preflight of a public route (common.public_route): any origin (`*`), POST with
    Content-Type, cached MAX_AGE_S; the ingest Lambda answers OPTIONS there identically."""
    preflight = resource.add_cors_preflight(
        allow_origins=[public_route.ALLOW_ORIGIN], allow_methods=list(public_route.ALLOW_METHODS),
        allow_headers=list(public_route.ALLOW_HEADERS),
        max_age=Duration.seconds(public_route.MAX_AGE_S))
    reason = (PREFLIGHT_REASON + " This one answers `*` (no credentials): the route is called "
              "by browsers on any publisher page, and its click tokens are the credential.")
    Validations.of(preflight).acknowledge(
        Acknowledgment(id="AwsSolutions-APIG4", reason=reason),
        Acknowledgment(id="AwsSolutions-COG4", reason=reason),
    )
    return preflight


def gateway_cors_headers(origins: Sequence[str]) -> dict[str, str]:
    """Response headers for a gateway response (static values: one origin only)."""
    if len(origins) != 1:
        return {}
    return {"Access-Control-Allow-Origin": f"'{origins[0]}'", "Vary": "'Origin'"}


class ApiCors(Construct):
    """Preflights on `routes` (path -> (methods, request headers)) of `api`."""

    def __init__(self, scope: Construct, id: str, *, api: apigw.RestApi, origins: Sequence[str],
                 routes: Mapping[str, tuple[Sequence[str], Sequence[str]]],
                 functions: Sequence[lambda_.Function]) -> None:
        super().__init__(scope, id)
        self.origins = tuple(origins)
        self.preflights: dict[str, apigw.Method] = {}
        if not self.origins:
            return
        for path, (methods, headers) in routes.items():
            preflight = api.root.resource_for_path(path).add_cors_preflight(
                allow_origins=list(self.origins), allow_methods=list(methods),
                allow_headers=list(headers), max_age=MAX_AGE)
            reason = PREFLIGHT_REASON + " This one answers only the configured origins."
            Validations.of(preflight).acknowledge(
                Acknowledgment(id="AwsSolutions-APIG4", reason=reason),
                Acknowledgment(id="AwsSolutions-COG4", reason=reason),
            )
            self.preflights[path] = preflight
        headers = gateway_cors_headers(self.origins)
        if headers:
            for name, kind in GATEWAY_RESPONSES.items():
                api.add_gateway_response(name, type=kind, response_headers=headers)
        for function in functions:
            function.add_environment(ENV_VAR, ",".join(self.origins))
