"""One way to build the project's Python Lambdas (ingest, sink, query), in the caller's scope.

Code is `functions/` filtered to the packages the handler imports; third-party libraries
(Powertools, pydantic) come from AWS's public Powertools layer, so the synth needs no Docker.
The layer is the release requirements/lambda.txt pins: by default its ARN is Powertools'
public SSM parameter for that release (`/aws/service/powertools/python/arm64/python3.12/<x.y.z>`,
resolved by CloudFormation at deploy), because the layer's sequential version number is not
published reliably per release (the docs' layer table has lagged releases by many versions).
Context `powertools_layer_version` pins a literal layer version instead.
Each function gets its own role (no AWS-managed policy) that may write only its own KMS-encrypted
log group; callers add their data grants with named actions.

`build_python_function` creates its resources with fixed ids ("Logs", "Role", "Function",
"Powertools") directly in the calling construct, so the ingest function's logical ids did not
change when this was factored out of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

import re

from aws_cdk import (Acknowledgment, CfnDynamicReference, CfnDynamicReferenceService, Duration,
                     RemovalPolicy, Stack, Validations)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import FUNCTIONS_DIR, REPO_ROOT
from infra.settings import StackSettings

LOG_RETENTION = logs.RetentionDays.ONE_MONTH
RUNTIME = lambda_.Runtime.PYTHON_3_12
XRAY_REASON = ("X-Ray (tracing ACTIVE) has Resource '*': xray:PutTraceSegments and "
               "xray:PutTelemetryRecords support no resource-level permissions.")


def asset_exclude(*includes: str) -> list[str]:
    """Exclude everything in functions/ except `includes` and never bytecode. An include is a
    package ("ingest", "serving/write": the directory and all below it) or a glob of files
    ("aggregate/*.py"). The directories above an include are re-included (only them, not their
    other contents): the asset copy skips an excluded directory without looking inside."""
    patterns = ["*"]
    for include in includes:
        parts = include.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if f"!{parent}" not in patterns:
                patterns.append(f"!{parent}")
        if any(ch in include for ch in "*?["):
            patterns.append(f"!{include}")
        else:
            patterns += [f"!{include}", f"!{include}/**"]
    return patterns + ["**/__pycache__", "**/*.pyc"]


POWERTOOLS_LAYER = "AWSLambdaPowertoolsPythonV3-python312-arm64"  # account 017000801446 (AWS)
POWERTOOLS_SSM = "/aws/service/powertools/python/arm64/python3.12/{release}"
LAMBDA_REQUIREMENTS = REPO_ROOT / "requirements" / "lambda.txt"


def powertools_release() -> str:
    """The aws-lambda-powertools version requirements/lambda.txt pins (what the code is tested
    with locally)."""
    found = re.findall(r"^aws-lambda-powertools(?:\[[^\]]*\])?==([0-9][0-9a-z.]*)\s*$",
                       LAMBDA_REQUIREMENTS.read_text(), re.MULTILINE)
    if len(found) != 1:
        raise ValueError(f"{LAMBDA_REQUIREMENTS}: expected one aws-lambda-powertools==x.y.z pin")
    return found[0]


def powertools_layer_arn(scope: Construct, version: Optional[int]) -> str:
    """The public layer of the pinned release (SSM, resolved at deploy), or layer `version`."""
    if version is None:
        return CfnDynamicReference(
            CfnDynamicReferenceService.SSM,
            POWERTOOLS_SSM.format(release=powertools_release())).to_string()
    region = Stack.of(scope).region
    return f"arn:aws:lambda:{region}:017000801446:layer:{POWERTOOLS_LAYER}:{version}"


@dataclass(frozen=True)
class PythonFunction:
    log_group: logs.LogGroup
    role: iam.Role
    function: lambda_.Function


def build_python_function(
    scope: Construct, *, settings: StackSettings, key: kms.IKey, handler: str,
    exclude: list[str], description: str, role_description: str, service: str,
    memory_mb: int, timeout: Duration, environment: Mapping[str, str],
    reserved_concurrency: Optional[int] = None,
    other_star_resources: Iterable[str] = (),
) -> PythonFunction:
    """Log group, role and function in `scope`. `other_star_resources` names any further
    statement the caller will add with Resource '*' (with why), so the one acknowledgement of
    AwsSolutions-IAM5[Resource::*] on the role states every reason."""
    log_group = logs.LogGroup(
        scope, "Logs", retention=LOG_RETENTION, encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN)
    role = iam.Role(scope, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                    description=role_description)
    log_group.grant_write(role)

    function = lambda_.Function(
        scope, "Function",
        description=description,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        handler=handler,
        code=lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=exclude),
        layers=[lambda_.LayerVersion.from_layer_version_arn(
            scope, "Powertools", powertools_layer_arn(scope, settings.powertools_layer_version))],
        memory_size=memory_mb,
        timeout=timeout,
        reserved_concurrent_executions=reserved_concurrency,
        tracing=lambda_.Tracing.ACTIVE,
        role=role,
        log_group=log_group,
        environment={
            **environment,
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": settings.names.metrics_namespace,
        },
    )

    reasons = [f"Only {XRAY_REASON}" if not other_star_resources else XRAY_REASON,
               *other_star_resources,
               "Every other statement names its resources' ARNs."]
    Validations.of(role).acknowledge(Acknowledgment(
        id="AwsSolutions-IAM5[Resource::*]", reason=" ".join(reasons)))
    Validations.of(function).acknowledge(Acknowledgment(
        id="AwsSolutions-L1",
        reason="Python 3.12 on purpose: the Powertools layer (python312 build) ships "
               "pydantic-core compiled for 3.12; move runtime and layer name together.",
    ))
    return PythonFunction(log_group, role, function)
