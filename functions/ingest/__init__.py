"""Ingest Lambda: POST /v1/clicks -> dedup (DynamoDB) -> clicks stream (Kinesis)."""
