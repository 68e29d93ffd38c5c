"""Create the pipeline's resources in the local emulator, with the names infra/ uses."""
from __future__ import annotations

import json
import secrets

import boto3

from common.config import ResourceNames
from common.refused import delivery_stream_name


def create_dedup_table(ddb, name: str) -> None:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "click_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "click_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires_at"})


def create_stream(kinesis, name: str, shards: int) -> None:
    kinesis.create_stream(StreamName=name, ShardCount=shards,
                          StreamModeDetails={"StreamMode": "PROVISIONED"})
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})


def create_all(names: ResourceNames, clicks_shards: int = 4, aggregates_shards: int = 2) -> None:
    """Idempotent: resources that already exist (restart against the same server) are kept."""
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
    if names.dedup_table not in ddb.list_tables()["TableNames"]:
        create_dedup_table(ddb, names.dedup_table)
    if names.serving_table not in ddb.list_tables()["TableNames"]:
        create_serving_table(ddb, names.serving_table)
    if names.budgets_table not in ddb.list_tables()["TableNames"]:
        create_budgets_table(ddb, names.budgets_table)
    streams = kinesis.list_streams()["StreamNames"]
    if names.clicks_stream not in streams:
        create_stream(kinesis, names.clicks_stream, clicks_shards)
    if names.events_stream not in streams:  # impressions, conversions (POST /v1/events)
        create_stream(kinesis, names.events_stream, clicks_shards)
    if names.aggregates_stream not in streams:
        create_stream(kinesis, names.aggregates_stream, aggregates_shards)
    s3 = boto3.client("s3")
    if names.archive_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=names.archive_bucket)
    sm = boto3.client("secretsmanager")
    if not sm.list_secrets(Filters=[{"Key": "name", "Values": [names.click_token_secret]}])["SecretList"]:
        # the deployed secret's shape (infra.constructs.click_token_keys), a fresh random key:
        # local ad servers (tests, demo) read it back to issue tokens
        sm.create_secret(Name=names.click_token_secret, SecretString=json.dumps(
            {"active": "k1", "k1": secrets.token_hex(32)}))
    firehose = boto3.client("firehose")
    refused = delivery_stream_name(names.prefix)
    if refused not in firehose.list_delivery_streams()["DeliveryStreamNames"]:
        # Direct PUT into the archive bucket; moto writes each call as one object under the
        # staging prefix, local.refused_delivery moves it into the archive's layout
        from local.refused_delivery import destination

        firehose.create_delivery_stream(
            DeliveryStreamName=refused, DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration=destination(names.archive_bucket))
    glue = boto3.client("glue")
    if names.billing_workflow not in glue.list_workflows().get("Workflows", []):
        glue.create_workflow(Name=names.billing_workflow, MaxConcurrentRuns=1,
                             Description="billing recompute, then reconciliation (local: "
                                         "run by local.glue_workflow)")


def create_budgets_table(ddb, name: str) -> None:
    """infra/constructs/budget_table.py's keys (docs/budget.md)."""
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "campaign_id", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "campaign_id", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


def create_serving_table(ddb, name: str) -> None:
    """The serving table as the stack defines it (infra/constructs/serving_store.py): keys,
    TTL and the rank index of the leaderboards (serving.keys.RANK_INDEX)."""
    from serving.keys import RANK_ATTR, RANK_INDEX

    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"},
                              {"AttributeName": RANK_ATTR, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": RANK_INDEX,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": RANK_ATTR, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},  # only entries and markers are in it
        }],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
