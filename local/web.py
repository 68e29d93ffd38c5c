"""Serve the dashboard's static files (web/dist) from the local API server, beside the API routes.

`StaticRoute` duck-types `local.apigw.Route`: `match(path)` and `function.invoke(event)` returning
an API-Gateway-style response (base64 body). Added *after* the Lambda routes it only sees paths
they did not match, and it never claims `/v1/...`, so an unknown API path keeps the gateway's
JSON 404. In local/stack.py:

    self.api.routes.append(StaticRoute())   # after LocalApiGateway(...).start()

Safety: GET only; the path is percent-decoded once, then refused if it has a NUL, a backslash, a
'..' or hidden ('.x') segment; the file must resolve (symlinks followed) inside the root.
"""
from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parent.parent  # not from local.stack: stack.py imports this module
DIST = REPO / "web" / "dist"
API_PREFIX = "/v1/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
# The same policy the CloudFront response headers policy sends (infra/constructs/dashboard_site.py),
# minus the AWS endpoints: locally the page talks to its own origin only.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")
NOT_BUILT = ("The dashboard is not built: run `npm ci --prefix web && npm run --prefix web build` "
             "(web/dist/index.html is missing).")


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _response(status: int, body: bytes, ctype: str, extra: dict | None = None) -> dict:
    headers = {"Content-Type": ctype, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
               "Cache-Control": "no-cache", **(extra or {})}
    return {"statusCode": status, "headers": headers, "isBase64Encoded": True,
            "body": base64.b64encode(body).decode("ascii")}


def _text(status: int, message: str) -> dict:
    return _response(status, message.encode(), "text/plain; charset=utf-8")


class StaticSite:
    """The 'function' of a StaticRoute: API Gateway proxy event -> static file response."""

    def __init__(self, root: Path = DIST, index: str = "index.html"):
        self.root, self.index = Path(root), index
        self.invocations = 0

    def resolve(self, raw_path: str) -> Path | None:
        """URL path -> a file inside root, or None (refused or missing)."""
        path = unquote(raw_path or "/")
        if "\x00" in path or "\\" in path or not path.startswith("/"):
            return None
        parts = [p for p in path.split("/") if p]
        if any(p == ".." or p.startswith(".") for p in parts):
            return None
        root = self.root.resolve()
        candidate = root.joinpath(*parts) if parts else root
        try:
            resolved = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError, RuntimeError, OSError):
            return None
        if resolved.is_dir():
            resolved = resolved / self.index
            if not resolved.is_file():
                return None
        if not resolved.is_file() or not resolved.is_relative_to(root):
            return None
        return resolved

    def invoke(self, event: dict) -> dict:
        self.invocations += 1
        method = event.get("httpMethod", "GET")
        if method not in ("GET", "HEAD"):
            resp = _text(405, f"{method} not allowed on static files")
            resp["headers"]["Allow"] = "GET, HEAD"
            return resp
        if not (self.root / self.index).is_file():
            return _text(503, NOT_BUILT)
        path = event.get("path") or "/"
        file = self.resolve(path)
        if file is None:
            return _text(404, f"not found: {path[:200]}")
        data = file.read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        extra = {"ETag": etag}
        if file.suffix == ".html":
            extra["Content-Security-Policy"] = CSP
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        if headers.get("if-none-match") == etag:
            return _response(304, b"", content_type(file), extra)
        return _response(200, b"" if method == "HEAD" else data, content_type(file), extra)


class StaticRoute:
    """A catch-all route for the local API gateway that serves `root` (default web/dist)."""

    resource = "/{proxy+}"

    def __init__(self, root: Path = DIST):
        self.function = StaticSite(root)

    def match(self, path: str) -> dict | None:
        if path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/"):
            return None
        return {"proxy": path.lstrip("/")}


def has_static_route(routes) -> bool:
    return any(isinstance(r, StaticRoute) for r in routes)


if __name__ == "__main__":  # `python -m local.web PATH`: what the route answers (debugging aid)
    import sys

    site = StaticSite()
    print(json.dumps({k: v for k, v in site.invoke({"httpMethod": "GET", "path": sys.argv[1] if len(sys.argv) > 1 else "/"}).items()
                      if k != "body"}, indent=1))
