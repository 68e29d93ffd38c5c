"""S3 buckets: one server-access-logs bucket, and the conventions every data bucket follows.

Data buckets (archive, Athena results, Timestream rejected-records reports) are SSE-KMS with the
pipeline key (S3 Bucket Keys on, so object reads/writes do not each call KMS), block all public
access, deny non-TLS requests, and log access to the logs bucket.

The logs bucket itself is SSE-S3: S3 server access log delivery does not support a default
SSE-KMS encryption on the destination bucket. It holds request metadata only, expires it, and
is not logged itself (logging it would log its own log deliveries; cdk-nag's S1 exempts a
bucket that is the access-log destination of others).

`log_delivery_bucket` is the same shape for another AWS log delivery that writes its own
objects (CloudFront standard logs, infra.constructs.dashboard_site): SSE-S3, expiring, itself
access-logged to the logs bucket.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

ACCESS_LOG_RETENTION = Duration.days(365)


class AccessLogsBucket(Construct):
    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs",
                                              expiration=ACCESS_LOG_RETENTION)],
            removal_policy=RemovalPolicy.RETAIN,
        )


def data_bucket(scope: Construct, id: str, *, key: kms.IKey, logs_bucket: s3.IBucket,
                log_prefix: str, versioned: bool,
                lifecycle_rules: Optional[Sequence[s3.LifecycleRule]] = None,
                **kwargs: Any) -> s3.Bucket:
    """A bucket following the conventions above (generated name: bucket names are global)."""
    return s3.Bucket(
        scope, id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=versioned,
        server_access_logs_bucket=logs_bucket,
        server_access_logs_prefix=log_prefix,
        lifecycle_rules=list(lifecycle_rules or []),
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,
    )


def expire_rule(after: Duration) -> s3.LifecycleRule:
    """Objects (reports, query results) that are only useful for a while."""
    return s3.LifecycleRule(id="Expire", expiration=after,
                            abort_incomplete_multipart_upload_after=Duration.days(1))


def log_delivery_bucket(scope: Construct, id: str, *, retention: Duration, logs_bucket: s3.IBucket,
                        log_prefix: str,
                        object_ownership: s3.ObjectOwnership = s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                        **kwargs: Any) -> s3.Bucket:
    """A bucket an AWS log delivery writes to: SSE-S3 like the logs bucket above (the delivery
    service writes without a KMS key grant), private, TLS only, expiring after `retention`,
    access-logged. CloudFront standard logging needs ACLs: pass ObjectOwnership.OBJECT_WRITER."""
    return s3.Bucket(
        scope, id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=object_ownership,
        server_access_logs_bucket=logs_bucket,
        server_access_logs_prefix=log_prefix,
        lifecycle_rules=[s3.LifecycleRule(id="ExpireLogs", expiration=retention,
                                          abort_incomplete_multipart_upload_after=Duration.days(1))],
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,
    )
