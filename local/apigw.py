"""A local HTTP server that turns requests into API Gateway REST proxy events (and back)."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from local.lambda_runtime import LocalFunction


class Route:
    """`resource` uses API Gateway syntax, e.g. '/v1/ads/{ad_id}/metrics'."""

    def __init__(self, resource: str, function: LocalFunction):
        self.resource, self.function = resource, function
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(resource))
        self._regex = re.compile(f"^{pattern}$")

    def match(self, path: str) -> dict | None:
        m = self._regex.match(path)
        return m.groupdict() if m else None


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _header(headers: dict[str, str], name: str) -> str | None:
    """A header's value whatever its case (HTTP/2 clients send names in lowercase; API Gateway
    fills identity.userAgent from either)."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def build_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str,
                resource: str, path_params: dict) -> dict:
    """A REST API (v1) Lambda proxy event with the keys API Gateway sends: the top-level,
    requestContext and identity keys of the recorded event in tests/events/ (a test keeps them
    equal). Values API Gateway derives from its own deployment are local stand-ins."""
    split = urlsplit(raw_path)
    multi_query = parse_qs(split.query, keep_blank_values=True)
    try:
        text, is_b64 = (body.decode("utf-8") if body else None), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    t = time.gmtime(now)
    host = next((v for k, v in headers.items() if k.lower() == "host"), "localhost").rsplit(":", 1)[0]
    return {
        "resource": resource,
        "path": split.path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "stage": "local",
            "resourceId": hashlib.sha256(resource.encode()).hexdigest()[:6],
            "resourcePath": resource, "httpMethod": method, "path": f"/local{split.path}",
            "protocol": "HTTP/1.1", "requestId": str(uuid.uuid4()),
            "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:11]).decode("ascii"),
            "requestTime": f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
                           f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000",
            "requestTimeEpoch": int(now * 1000),
            "domainName": host, "domainPrefix": host.split(".")[0],
            "identity": {
                "sourceIp": source_ip, "userAgent": _header(headers, "User-Agent"),
                **dict.fromkeys(("cognitoIdentityPoolId", "accountId", "cognitoIdentityId", "caller",
                                 "principalOrgId", "accessKey", "cognitoAuthenticationType",
                                 "cognitoAuthenticationProvider", "userArn", "user")),
            },
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


class LocalApiGateway:
    def __init__(self, routes: list[Route], host: str = "127.0.0.1", port: int = 0):
        self.routes = routes
        self._connections: set[socket.socket] = set()  # open keep-alive connections (stop() ends them)
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with gateway._lock:
                    gateway._connections.add(self.connection)

            def finish(self):
                with gateway._lock:
                    gateway._connections.discard(self.connection)
                super().finish()

            def log_message(self, *args):  # quiet: the demo prints its own summary
                pass

            def _dispatch(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                for route in gateway.routes:
                    params = route.match(path)
                    if params is not None:
                        event = build_event(self.command, self.path, dict(self.headers.items()),
                                            body, self.client_address[0], route.resource, params)
                        try:
                            self._send(route.function.invoke(event))
                        except Exception as exc:  # an unhandled Lambda error: API GW says 502
                            self._send({"statusCode": 502, "body": json.dumps(
                                {"message": "Internal server error", "error": repr(exc)})})
                        return
                self._send({"statusCode": 404, "body": json.dumps(
                    {"message": f"no route for {self.command} {path}"})})

            def _send(self, result: dict):
                body = result.get("body") or ""
                data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
                self.send_response(int(result.get("statusCode", 200)))
                headers = dict(result.get("headers") or {})
                for k, values in (result.get("multiValueHeaders") or {}).items():
                    headers[k] = values[-1]
                headers.setdefault("Content-Type", "application/json")
                for k, v in headers.items():
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "LocalApiGateway":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down like a stopped process: no new connections, and the open keep-alive ones are
        cut (a client would otherwise go on being served on them, as a browser does)."""
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()
