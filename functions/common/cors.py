"""CORS for the API resolvers: only the origins infra configured (CORS_ALLOWED_ORIGINS,
comma-separated); none configured = no CORS headers at all."""
from __future__ import annotations

from aws_lambda_powertools.event_handler import CORSConfig

from common.config import ApiSettings


class OriginCORSConfig(CORSConfig):
    """Powertools' CORS headers, plus `Vary: Origin` wherever they echo the request's Origin:
    the answer then depends on the Origin, so a cache must not hand it to another origin (the
    Lambdas' part of the contract in infra/constructs/api_cors.py)."""

    def to_dict(self, origin: str | None) -> dict[str, str]:
        headers = super().to_dict(origin)
        if headers.get("Access-Control-Allow-Origin") not in (None, "*"):
            headers["Vary"] = "Origin"
        return headers


def cors_config() -> CORSConfig | None:
    origins = list(ApiSettings.from_env().cors_origins)  # CORS_ALLOWED_ORIGINS (common.schema)
    if not origins:
        return None
    return OriginCORSConfig(allow_origin=origins[0], extra_origins=origins[1:], max_age=300,
                            allow_headers=["Authorization", "Content-Type", "X-Amz-Date",
                                           "X-Amz-Security-Token", "X-Api-Key"])
