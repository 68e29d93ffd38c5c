"""The keyless click route for browsers and apps, `POST /v1/public/clicks` (issue 17: "Browsers and
apps send clicks with no secret at all: the token is the proof"): its path and its CORS, defined
once for the ingest Lambda (ingest.handler, ingest.public), infra (the API Gateway resource and
its OPTIONS preflight: infra.constructs.ingest_api, infra.constructs.api_cors) and the local
stack. Stdlib only.

CORS: any publisher page may call the route, without credentials, so every answer (the Lambda's,
whatever its status) carries `Access-Control-Allow-Origin: *` (a literal `*`, never an echoed
Origin, so there is nothing to vary on, and no `Access-Control-Allow-Credentials`: a browser sends
no cookies, and would refuse `*` with them anyway); `Retry-After` is exposed to the page's script
(the 503's hint). The preflight (OPTIONS) allows POST with a Content-Type header (what a JSON
`fetch` sends) and is cached 10 minutes. API Gateway answers the preflight itself (MOCK
integration); the Lambda answers it identically (ingest.handler), which is what the local stack
serves. The other routes keep their CORS (common.cors / infra.constructs.api_cors: configured
origins only).

Media types: `application/json`, and `text/plain` carrying the same JSON. text/plain is what the
browser SDK (sdk/js) sends: a CORS-safelisted type makes the POST a "simple request" (no
preflight round trip before a click leaves the page) and is the only JSON-carrying type
`navigator.sendBeacon` may send cross-origin (the page-unload path). Nothing is gained by refusing
it: the route is keyless, cookie-less and open to every origin anyway, and the body is parsed and
validated exactly as JSON is.
"""
from __future__ import annotations

PATH = "/v1/public/clicks"
ALLOW_ORIGIN = "*"
ALLOW_METHODS = ("POST",)
ALLOW_HEADERS = ("Content-Type",)
EXPOSE_HEADERS = ("Retry-After",)
MAX_AGE_S = 600
CONTENT_TYPES = ("application/json", "text/plain")  # POST /v1/clicks: application/json only


def response_headers() -> dict[str, str]:
    """CORS headers of every answer of the route (202, 4xx, 503)."""
    return {"Access-Control-Allow-Origin": ALLOW_ORIGIN,
            "Access-Control-Expose-Headers": ",".join(EXPOSE_HEADERS)}


def preflight_headers() -> dict[str, str]:
    """The headers of the preflight's answer (204, no body)."""
    return {"Access-Control-Allow-Origin": ALLOW_ORIGIN,
            "Access-Control-Allow-Methods": ",".join(ALLOW_METHODS),
            "Access-Control-Allow-Headers": ",".join(ALLOW_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_S)}
