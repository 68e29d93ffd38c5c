"""Create the pipeline's resources in the local emulator, with the names infra/ uses."""
from __future__ import annotations

import boto3

from common.config import ResourceNames


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


def create_all(names: ResourceNames, clicks_shards: int = 4) -> None:
    """Idempotent: resources that already exist (restart against the same server) are kept."""
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
    if names.dedup_table not in ddb.list_tables()["TableNames"]:
        create_dedup_table(ddb, names.dedup_table)
    if names.clicks_stream not in kinesis.list_streams()["StreamNames"]:
        create_stream(kinesis, names.clicks_stream, clicks_shards)
