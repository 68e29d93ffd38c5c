"""local/web.py: the dashboard's static files served by the local API server beside the Lambda
routes: content types, index, no directory traversal, API paths untouched, not-built message."""
from __future__ import annotations

import base64
import http.client
import json
import os

import pytest

from local.apigw import LocalApiGateway, Route
from local.web import StaticRoute, StaticSite, has_static_route


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "dist"
    (root / "vendor").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>x</title>")
    (root / "app.js").write_text("export const a = 1;")
    (root / "styles.css").write_text("body{}")
    (root / "build.json").write_text("{}")
    (root / "vendor" / "uPlot.esm.js").write_text("export default 1;")
    (root / ".secret").write_text("hidden")
    (tmp_path / "outside.txt").write_text("outside the root")
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    return root


def get(site_root, path, method="GET", headers=None):
    resp = StaticSite(site_root).invoke({"httpMethod": method, "path": path, "headers": headers or {}})
    body = base64.b64decode(resp["body"]) if resp.get("isBase64Encoded") else resp.get("body", "").encode()
    return resp["statusCode"], resp["headers"], body


def test_content_types_and_index(site):
    for path, ctype in [("/", "text/html; charset=utf-8"), ("/index.html", "text/html; charset=utf-8"),
                        ("/app.js", "text/javascript; charset=utf-8"), ("/styles.css", "text/css; charset=utf-8"),
                        ("/build.json", "application/json"), ("/vendor/uPlot.esm.js", "text/javascript; charset=utf-8"),
                        ("/vendor/", None)]:
        status, headers, body = get(site, path)
        if ctype is None:
            assert status == 404  # a directory without index.html
            continue
        assert status == 200, path
        assert headers["Content-Type"] == ctype
        assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = get(site, "/")
    assert body.startswith(b"<!doctype html>")
    assert "default-src 'self'" in headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", [
    "/../outside.txt", "/%2e%2e/outside.txt", "/vendor/../../outside.txt", "/vendor/%2E%2E/%2E%2E/outside.txt",
    "/..%2foutside.txt", "/..%5coutside.txt", "/%00index.html", "/.secret", "/vendor/..", "/link.txt",
    "/nope.js", "//etc/passwd", "/%2Fetc%2Fpasswd",
])
def test_refused_paths(site, path):
    status, _, body = get(site, path)
    assert status == 404, (path, body)
    assert b"outside the root" not in body and b"hidden" not in body and b"root:" not in body


def test_methods_etag_and_not_built(site, tmp_path):
    status, headers, _ = get(site, "/", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    _, headers, _ = get(site, "/app.js")
    status, _, body = get(site, "/app.js", headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, _, body = get(site, "/", method="HEAD")
    assert status == 200 and body == b""
    status, _, body = get(tmp_path / "missing", "/")
    assert status == 503 and b"npm" in body


class Echo:
    def __init__(self):
        self.invocations = 0

    def invoke(self, event):
        self.invocations += 1
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"path": event["path"]})}


def test_behind_the_local_gateway(site):
    """Added after the Lambda routes: API paths go to their Lambda, unknown /v1 paths keep the
    gateway's JSON 404, everything else is a file; raw traversal over HTTP is refused."""
    fn = Echo()
    routes = [Route("/v1/health", fn), Route("/v1/ads/{ad_id}/metrics", fn)]
    gw = LocalApiGateway(routes, port=0).start()
    try:
        gw.routes.append(StaticRoute(site))
        assert has_static_route(gw.routes) and not has_static_route(routes[:2])
        host, port = gw.url.removeprefix("http://").split(":")

        def fetch(path):
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            conn.request("GET", path)  # sent as is: no client-side normalisation of '..'
            r = conn.getresponse()
            out = r.status, r.getheader("Content-Type"), r.read()
            conn.close()
            return out

        assert fetch("/v1/health")[2] == b'{"path": "/v1/health"}'
        assert json.loads(fetch("/v1/ads/a%2Fb/metrics")[2]) == {"path": "/v1/ads/a%2Fb/metrics"}
        status, ctype, body = fetch("/v1/quality")
        assert status == 404 and ctype == "application/json" and b"no route" in body
        status, ctype, body = fetch("/")
        assert status == 200 and ctype == "text/html; charset=utf-8" and body.startswith(b"<!doctype html>")
        assert fetch("/app.js?v=abc")[:2] == (200, "text/javascript; charset=utf-8")
        for bad in ("/../outside.txt", "/vendor/../../outside.txt", "/%2e%2e/outside.txt", "/link.txt"):
            status, _, body = fetch(bad)
            assert status == 404 and b"outside the root" not in body, bad
        assert fn.invocations == 2
    finally:
        gw.stop()
