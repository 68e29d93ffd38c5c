"""Imported first by the benchmarks that run handlers against moto's in-process mock (ingest,
query, redirect): puts the repo and `functions/` on sys.path and sets fake credentials, quiet
Powertools and no endpoint override, before boto3 or a handler module is imported."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "functions")]
os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                   "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "ERROR"})
os.environ.pop("AWS_ENDPOINT_URL", None)
