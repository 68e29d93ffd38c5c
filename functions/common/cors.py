"""CORS for the API resolvers: only the origins infra configured (CORS_ALLOWED_ORIGINS,
comma-separated); none configured = no CORS headers at all."""
from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import CORSConfig


def cors_config() -> CORSConfig | None:
    origins = [o.strip() for o in os.environ.get("CORS_ALLOWED_ORIGINS", "").split(",") if o.strip()]
    if not origins:
        return None
    return CORSConfig(allow_origin=origins[0], extra_origins=origins[1:], max_age=300,
                      allow_headers=["Authorization", "Content-Type", "X-Amz-Date",
                                     "X-Amz-Security-Token", "X-Api-Key"])
