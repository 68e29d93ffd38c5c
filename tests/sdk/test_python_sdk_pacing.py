"""PacingClient (clickagg_sdk.pacing) over real HTTP.

Against a scripted server (http.server in a thread) that answers the decision API's two forms
like the budget Lambda (GET /v1/campaigns/{id}/pacing, POST /v1/pacing) from a table of
decisions, or plays back scripted failures, and records every request: how long a decision is
kept (Cache-Control max-age, valid_for_ms, max_age_s, Age, no-store), the throttle's draws
against the same seeded rng, fail closed (refused, timeout, dropped, 503, not JSON, not a
decision) with a back-off and never the last good answer past its max-age, chunks of 100, the
400 fallback to single GETs, the signer (and the README's botocore signer, its signature
recomputed on the server's side), 16 threads.

Against the local stack's budget Lambda (slow): budgets set with PUT over HTTP, spend rows and
the pulse written by the sink's real writer; serve, exhausted, no budget, stale.
"""
from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import urllib3

from clickagg_sdk import PacingClient

REPO = Path(__file__).resolve().parents[2]
BAD_ID_ERROR = "'campaign_id' must be 1-128 printable ASCII characters without spaces"


def decision(cid: str, kind: str = "serve", fraction: float = 1.0, reason: str = "asap",
             valid_for_ms: int = 1000) -> dict:
    return {"campaign_id": cid, "decision": kind, "serve_fraction": fraction, "reason": reason,
            "day": "2026-12-06", "daily_budget_micros": 5_000_000, "lifetime_budget_micros": None,
            "pacing": "asap", "spent_today_micros": 1_000_000, "remaining_micros": 4_000_000,
            "lifetime_spent_micros": None, "planned_spend_micros": None,
            "velocity_micros_per_s": 10.0, "margin_micros": 25, "projected_exhaustion": None,
            "figure_age_ms": 800, "stale_after_ms": 10_000, "valid_for_ms": valid_for_ms,
            "as_of": "2026-12-06T10:00:00.000Z"}


class Listener(ThreadingHTTPServer):
    # http.server's listen backlog is 5: 16 threads connecting at once would overflow it and
    # wait for the kernel's 1 s SYN retransmission (a connect timeout on the client's side)
    request_queue_size = 128


class Server:
    """The decision API, scripted. `table`: campaign_id -> decision (default: serve). `bad`: ids
    it refuses (400, the batch that holds one too). `headers`: sent with every 200 (default
    Cache-Control: max-age=1). `script`: actions played first, one per request:
    ("status", code, body) JSON, ("raw", code, bytes), ("drop",), ("sleep", s) then answer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # {"method", "path", "headers", "body" (bytes), "ids"}
        self.script: list = []
        self.table: dict[str, dict] = {}
        self.bad: set[str] = set()
        self.headers = {"Cache-Control": "max-age=1"}
        self.delay_s = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.handle_any()

            def do_POST(self):
                self.handle_any()

            def handle_any(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                single = re.fullmatch(r"/v1/campaigns/([^/]+)/pacing", self.path)
                if self.command == "GET" and single:
                    ids = [unquote(single.group(1))]
                elif self.command == "POST" and self.path == "/v1/pacing":
                    ids = json.loads(raw)["campaign_ids"]
                else:
                    return self.send(404, {"error": "no route", "status": 404})
                with server.lock:
                    server.requests.append({"method": self.command, "path": self.path,
                                            "headers": dict(self.headers), "body": raw, "ids": ids})
                    action = server.script.pop(0) if server.script else ("answer",)
                    delay = server.delay_s
                if delay:
                    time.sleep(delay)
                kind = action[0]
                if kind == "drop":
                    self.close_connection = True
                    return
                if kind == "status":
                    return self.send(action[1], action[2])
                if kind == "raw":
                    return self.send(action[1], action[2], raw=True)
                if kind == "sleep":
                    time.sleep(action[1])
                if any(cid in server.bad for cid in ids):
                    return self.send(400, {"error": BAD_ID_ERROR, "status": 400})
                answers = [server.table.get(cid) or decision(cid) for cid in ids]
                body = answers[0] if single else {"decisions": answers}
                self.send(200, {**body, "debug": {"requests": 1}}, headers=server.headers)

            def send(self, code, payload, headers=None, raw=False):
                data = payload if raw else json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client timed out and left
                    pass

        self.httpd = Listener(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def n(self) -> int:
        with self.lock:
            return len(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def pacing(server, clock=None, **kw) -> PacingClient:
    return PacingClient(server.url, clock=clock or Clock(), timeout_s=kw.pop("timeout_s", 5.0), **kw)


# --- the cache ------------------------------------------------------------------------------------
def test_a_decision_is_kept_for_max_age_then_asked_once_again(server):
    server.headers = {"Cache-Control": "max-age=5"}  # longer than valid_for_ms (1 s): the header wins
    clock = Clock()
    client = pacing(server, clock)
    assert client.may_serve("cmp-1") is True
    assert [(r["method"], r["path"], r["body"]) for r in server.requests] == [
        ("GET", "/v1/campaigns/cmp-1/pacing", b"")]
    for t in (0.0, 1.0, 4.999):
        clock.t = 1000.0 + t
        assert [client.may_serve("cmp-1") for _ in range(50)] == [True] * 50
    assert server.n() == 1
    clock.t = 1005.0  # 5 s after the request was sent: expired
    assert client.may_serve("cmp-1") is True and server.n() == 2
    clock.t = 1009.999
    assert client.may_serve("cmp-1") is True and server.n() == 2
    clock.t = 1010.0
    assert client.may_serve("cmp-1") is True and server.n() == 3


@pytest.mark.parametrize("headers, valid_for_ms, max_age_s, lifetime", [
    ({}, 1500, None, 1.5),  # no Cache-Control: the decision's valid_for_ms
    ({"Cache-Control": "max-age=5"}, 1000, 0.5, 0.5),  # max_age_s caps it
    ({"Cache-Control": "public, max-age=5"}, 1000, 30, 5.0),  # only caps
    ({"Cache-Control": "max-age=5", "Age": "2"}, 1000, None, 3.0),  # 2 s already spent in a cache
    ({"Cache-Control": "no-store"}, 1000, None, 0.0),  # never kept: every call asks
    ({"Cache-Control": "max-age=0"}, 1000, None, 0.0),
    ({"Cache-Control": "max-age=5"}, 1000, 0, 0.0),  # max_age_s=0: never cache
])
def test_how_long_a_decision_is_kept(server, headers, valid_for_ms, max_age_s, lifetime):
    server.headers = headers
    server.table["cmp-1"] = decision("cmp-1", valid_for_ms=valid_for_ms)
    clock = Clock()
    client = pacing(server, clock, max_age_s=max_age_s)
    assert client.may_serve("cmp-1") is True and server.n() == 1
    if lifetime > 0:
        clock.t = 1000.0 + lifetime - 0.001
        assert client.may_serve("cmp-1") is True and server.n() == 1
    clock.t = 1000.0 + lifetime
    assert client.may_serve("cmp-1") is True and server.n() == 2


def test_throttle_draws_the_seeded_rng_once_per_call(server):
    server.headers = {"Cache-Control": "max-age=60"}
    server.table["cmp-t"] = decision("cmp-t", "throttle", 0.3, "ahead_of_plan")
    client = pacing(server, rng=random.Random(7))
    served = sum(client.may_serve("cmp-t") for _ in range(10_000))
    oracle = random.Random(7)
    expected = sum(oracle.random() < 0.3 for _ in range(10_000))
    assert served == expected and 2_800 < served < 3_200
    assert server.n() == 1
    # serve and stop draw nothing: the next draw is still the oracle's next one
    server.table["cmp-s"], server.table["cmp-x"] = decision("cmp-s"), decision("cmp-x", "stop", 0.0, "exhausted")
    assert client.may_serve("cmp-s") is True and client.may_serve("cmp-x") is False
    assert client.rng.random() == oracle.random()


def test_stop_is_false_and_decisions_carry_the_apis_answer(server):
    server.table["cmp-x"] = decision("cmp-x", "stop", 0.0, "exhausted")
    client = pacing(server)
    assert [client.may_serve("cmp-x") for _ in range(20)] == [False] * 20
    got = client.decisions(["cmp-x"])
    assert got == {"cmp-x": {**decision("cmp-x", "stop", 0.0, "exhausted"), "debug": {"requests": 1}}}
    got["cmp-x"]["decision"] = "serve"  # a copy: the cache is not changed
    assert client.may_serve("cmp-x") is False and server.n() == 1


# --- fail closed ----------------------------------------------------------------------------------
FAILURES = {
    "503": (("status", 503, {"error": "budget store unavailable; retry later", "status": 503}),
            503, "HTTP 503: budget store unavailable; retry later"),
    "500 without a body": (("raw", 500, b""), 500, "HTTP 500"),
    "403": (("status", 403, {"message": "Missing Authentication Token"}), 403, "HTTP 403"),
    "invalid JSON": (("raw", 200, b'{"decision": "serve", '), 200, "HTTP 200: the body is not JSON"),
    "JSON that is not a decision": (("raw", 200, b'[1, 2]'), 200, "HTTP 200 without a JSON decision"),
    "unknown decision": (("raw", 200, json.dumps({**decision("cmp-1"), "decision": "go"}).encode()),
                         200, "unknown decision 'go'"),
    "throttle without a fraction": (("raw", 200, json.dumps({**decision("cmp-1", "throttle"),
                                                             "serve_fraction": None}).encode()),
                                    200, "throttle without a serve_fraction in 0..1: None"),
    "another campaign's answer": (("raw", 200, json.dumps(decision("cmp-2")).encode()),
                                  200, "the answer is for campaign 'cmp-2'"),
    "dropped connection": (("drop",), None, "ProtocolError"),
    "timeout": (("sleep", 1.5), None, "timed out"),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_fail_closed_then_asked_again_after_the_back_off(server, name):
    action, status, error = FAILURES[name]
    clock = Clock()
    client = pacing(server, clock, timeout_s=0.5)
    assert client.may_serve("cmp-1") is True  # a good answer, kept 1 s (max-age=1)
    clock.t = 1001.0  # expired; the API fails now: stop, never the last good answer
    server.script = [action]
    assert client.may_serve("cmp-1") is False and server.n() == 2
    got = client.decisions(["cmp-1"])["cmp-1"]
    assert (got["decision"], got["serve_fraction"], got["reason"], got["http_status"]) == (
        "stop", 0.0, "unavailable", status)
    assert error in got["error"], got["error"]
    clock.t = 1001.999  # within the back-off: no request
    assert client.may_serve("cmp-1") is False and server.n() == 2
    clock.t = 1002.0  # after it: asked again, and the API answers again
    assert client.may_serve("cmp-1") is True and server.n() == 3


class CountingHttp:
    """A urllib3 PoolManager that counts the requests it was asked to make."""

    def __init__(self) -> None:
        self.pool = urllib3.PoolManager()
        self.calls: list[tuple[str, str]] = []

    def request(self, method, url, **kw):
        self.calls.append((method, url))
        return self.pool.request(method, url, **kw)


def test_fail_closed_when_the_connection_is_refused():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    http, clock = CountingHttp(), Clock()
    client = PacingClient(f"http://127.0.0.1:{port}", http=http, clock=clock)
    assert client.may_serve("cmp-1") is False
    got = client.decisions(["cmp-1", "cmp-2"])
    assert (got["cmp-1"]["reason"], got["cmp-1"]["http_status"]) == ("unavailable", None)
    assert "NewConnectionError" in got["cmp-1"]["error"] and "refused" in got["cmp-1"]["error"]
    # cmp-2 was not cached: asked alone (the GET form); cmp-1 within its back-off was not
    assert http.calls == [("GET", f"http://127.0.0.1:{port}/v1/campaigns/cmp-1/pacing"),
                          ("GET", f"http://127.0.0.1:{port}/v1/campaigns/cmp-2/pacing")]
    clock.t += 1.0
    assert client.may_serve("cmp-1") is False and len(http.calls) == 3


# --- the batch form -------------------------------------------------------------------------------
def test_250_campaigns_are_3_posts_of_100_100_50_then_cached(server):
    ids = [f"cmp-{i:03d}" for i in range(250)]
    for i in range(0, 250, 3):
        server.table[ids[i]] = decision(ids[i], "stop", 0.0, "exhausted")
    client = pacing(server)
    got = client.decisions(ids)
    assert [(r["method"], r["path"], json.loads(r["body"])) for r in server.requests] == [
        ("POST", "/v1/pacing", {"campaign_ids": ids[0:100]}),
        ("POST", "/v1/pacing", {"campaign_ids": ids[100:200]}),
        ("POST", "/v1/pacing", {"campaign_ids": ids[200:250]})]
    assert list(got) == ids
    assert [got[c]["decision"] for c in ids] == ["stop" if i % 3 == 0 else "serve" for i in range(250)]
    assert [client.may_serve(c) for c in ids] == [i % 3 != 0 for i in range(250)]
    client.prefetch(ids)
    assert server.n() == 3  # all cached
    # only the ones not cached are asked for: 5 new ids among 15
    new = [f"new-{i}" for i in range(5)]
    client.prefetch(ids[:10] + new)
    assert server.n() == 4 and json.loads(server.requests[3]["body"]) == {"campaign_ids": new}
    assert list(client.decisions(["cmp-001", "cmp-001", "new-0"])) == ["cmp-001", "new-0"]


def test_a_400_batch_falls_back_to_single_gets_for_that_chunk(server):
    ids = [f"cmp-{i:03d}" for i in range(150)]
    ids[30] = "bad id"
    server.bad = {"bad id"}
    got = pacing(server).decisions(ids)
    calls = [(r["method"], r["path"]) for r in server.requests]
    assert calls == ([("POST", "/v1/pacing")]  # refused (400)
                     + [("GET", "/v1/campaigns/bad%20id/pacing" if c == "bad id" else f"/v1/campaigns/{c}/pacing")
                        for c in ids[:100]]
                     + [("POST", "/v1/pacing")])  # the second chunk, whole
    assert json.loads(server.requests[0]["body"])["campaign_ids"] == ids[:100]
    assert json.loads(server.requests[-1]["body"])["campaign_ids"] == ids[100:]
    assert [got[c]["decision"] for c in ids] == ["stop" if c == "bad id" else "serve" for c in ids]
    bad = got["bad id"]
    assert (bad["reason"], bad["http_status"], bad["error"]) == ("unavailable", 400, f"HTTP 400: {BAD_ID_ERROR}")


def test_the_fallback_stops_the_rest_of_its_chunk_when_the_api_fails(server):
    ids = [f"cmp-{i}" for i in range(10)]
    server.bad = {"cmp-0"}
    # the POST (400), cmp-0's GET (400), cmp-1 (200), cmp-2 (503): cmp-3..9 are not asked
    server.script = [("answer",), ("answer",), ("answer",),
                     ("status", 503, {"error": "budget store unavailable; retry later"})]
    got = pacing(server).decisions(ids)
    assert [r["path"] for r in server.requests] == ["/v1/pacing"] + [f"/v1/campaigns/cmp-{i}/pacing"
                                                                     for i in range(3)]
    assert [(got[c]["decision"], got[c].get("http_status")) for c in ids] == (
        [("stop", 400), ("serve", None)] + [("stop", 503)] * 8)
    assert {got[c]["error"] for c in ids[2:]} == {"HTTP 503: budget store unavailable; retry later"}


# --- signing --------------------------------------------------------------------------------------
def test_the_signer_gets_the_exact_request_and_its_headers_are_sent(server):
    calls = []

    def sign(method, url, headers, body):
        calls.append((method, url, dict(headers), body))
        return {**headers, "Authorization": f"test-sig {len(calls)}", "X-Amz-Date": "20261206T100000Z"}

    client = pacing(server, sign=sign)
    assert client.may_serve("cmp-1") is True
    client.prefetch(["cmp-2", "cmp-3"])
    assert calls == [
        ("GET", f"{server.url}/v1/campaigns/cmp-1/pacing", {"Accept": "application/json"}, None),
        ("POST", f"{server.url}/v1/pacing", {"Accept": "application/json", "Content-Type": "application/json"},
         b'{"campaign_ids":["cmp-2","cmp-3"]}')]
    assert [(r["headers"]["Authorization"], r["headers"]["X-Amz-Date"], r["body"]) for r in server.requests] == [
        ("test-sig 1", "20261206T100000Z", b""), ("test-sig 2", "20261206T100000Z", calls[1][3])]


def test_a_signer_that_raises_stops_the_campaign_without_a_request(server):
    def sign(method, url, headers, body):
        raise RuntimeError("Unable to locate credentials")

    got = pacing(server, sign=sign).decisions(["cmp-1"])["cmp-1"]
    assert (got["decision"], got["reason"], got["http_status"], got["error"]) == (
        "stop", "unavailable", None, "RuntimeError: Unable to locate credentials")
    assert server.n() == 0


def readme_signer() -> dict:
    """Run the README's botocore signer block as it is written (the environment's fake
    credentials, tests/conftest.py) and return its namespace."""
    text = (REPO / "sdk/python/README.md").read_text()
    section = text[text.index("### Signing (SigV4)"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def sigv4_signature_valid(request: dict, url: str, credentials, region: str) -> bool:
    """Recompute the request's SigV4 signature from what the server received (the headers
    named in SignedHeaders, the body's bytes, X-Amz-Date) and compare it with Authorization's."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    auth = request["headers"]["Authorization"]
    signed = re.search(r"SignedHeaders=([^,]+)", auth).group(1).split(";")
    headers = {k: v for k, v in request["headers"].items() if k.lower() in signed}
    assert set(signed) == {k.lower() for k in headers}, (signed, headers)
    aws = AWSRequest(method=request["method"], url=url + request["path"], data=request["body"] or None,
                     headers=headers)
    aws.context["timestamp"] = request["headers"]["X-Amz-Date"]
    signer = SigV4Auth(credentials, "execute-api", region)
    expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
    return auth.endswith(f"Signature={expected}")


def test_the_readme_botocore_signer_signs_what_is_sent(server):
    ns = readme_signer()
    client = pacing(server, sign=ns["sigv4"])
    assert client.may_serve("cmp-1") is True
    client.prefetch(["cmp-2", "cmp-3"])
    creds = ns["credentials"].get_frozen_credentials()
    assert creds.access_key == "testing"
    for r in server.requests:
        auth = r["headers"]["Authorization"]
        assert auth.startswith(f"AWS4-HMAC-SHA256 Credential=testing/{r['headers']['X-Amz-Date'][:8]}/"
                               f"{ns['REGION']}/execute-api/aws4_request"), auth
        assert r["headers"]["X-Amz-Security-Token"] == "testing"
        assert sigv4_signature_valid(r, server.url, creds, ns["REGION"])
    # the check can fail: another body, path or key does not verify
    post = server.requests[1]
    assert not sigv4_signature_valid({**post, "body": b'{"campaign_ids":["cmp-2","cmp-4"]}'}, server.url,
                                     creds, ns["REGION"])
    assert not sigv4_signature_valid({**server.requests[0], "path": "/v1/campaigns/cmp-9/pacing"},
                                     server.url, creds, ns["REGION"])
    from botocore.credentials import ReadOnlyCredentials
    assert not sigv4_signature_valid(post, server.url, ReadOnlyCredentials("testing", "other", "testing"),
                                     ns["REGION"])


# --- threads --------------------------------------------------------------------------------------
def test_16_threads_one_request_per_campaign(server):
    server.headers = {"Cache-Control": "max-age=60"}
    server.delay_s = 0.05  # every answer takes a while: threads pile up on the same campaigns
    ids = [f"cmp-{i}" for i in range(20)]
    for c in ids[::4]:
        server.table[c] = decision(c, "stop", 0.0, "exhausted")
    client = PacingClient(server.url)  # the real clock
    results: list = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def work(k):
        start.wait()
        mine = [(c, client.may_serve(c)) for j in range(300) for c in [ids[(j * 7 + k) % 20]]]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 16 * 300
    wrong = [(c, served) for c, served in results if served != (ids.index(c) % 4 != 0)]
    assert not wrong, (wrong[:3], {c: d.get("error") for c, d in client.decisions(ids).items()})
    assert sorted(r["ids"][0] for r in server.requests) == sorted(ids)  # each campaign asked once


# --- the local stack's budget Lambda --------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from local.stack import LocalStack, StackOptions

    options = StackOptions(flink=False, sink=False, archive=False, glue=False,
                           state_dir=tmp_path_factory.mktemp("pacing-state"))
    with LocalStack(options) as s:
        yield s


def write_spend(stack, cid: str, day_ms: int, day_micros: int, minutes: dict) -> None:
    """The Flink job's spend rows as the sink writes them (its real writer)."""
    import boto3
    from aggregate.changes import Change
    from serving.write.dynamodb import DynamoDBServingStore

    store = DynamoDBServingStore(boto3.client("dynamodb"), stack.names.serving_table)
    rows = [("1d", day_ms, day_micros)] + [("1m", m, v) for m, v in minutes.items()]
    for res, bucket, micros in rows:
        store.apply(Change("spend", True, {"kind": "spend", "resolution": res, "bucket_start": bucket,
                                           "entity_id": cid, "campaign_id": cid, "billable_clicks": 1,
                                           "billable_cost_micros": micros, "version": 1}))


def write_pulse(stack, pulse_ms: int) -> None:
    import boto3
    from aggregate.changes import Change
    from serving.write.dynamodb import DynamoDBServingStore

    store = DynamoDBServingStore(boto3.client("dynamodb"), stack.names.serving_table)
    store.apply(Change("pulse", True, {"kind": "pulse", "entity_id": "pulse", "bucket_start": pulse_ms,
                                       "version": pulse_ms}))


@pytest.mark.slow
def test_may_serve_against_the_local_budget_lambda(stack):
    from common.times import DAY_MS, MINUTE_MS

    now_ms = int(time.time() * 1000)
    if DAY_MS - now_ms % DAY_MS < 30_000:  # the spend rows are today's: not across midnight
        time.sleep((DAY_MS - now_ms % DAY_MS) / 1000 + 1)
        now_ms = int(time.time() * 1000)
    day, minute = now_ms - now_ms % DAY_MS, now_ms - now_ms % MINUTE_MS
    http = urllib3.PoolManager()
    for cid, daily in (("pc-left", 5_000_000), ("pc-spent", 1_000_000)):
        r = http.request("PUT", f"{stack.api.url}/v1/campaigns/{cid}/budget",
                         body=json.dumps({"daily_budget_micros": daily, "pacing": "asap"}),
                         headers={"Content-Type": "application/json"})
        assert r.status == 200, r.data
    write_spend(stack, "pc-left", day, 1_000_000, {minute: 1_000})
    write_spend(stack, "pc-spent", day, 1_000_000, {minute: 1_000})
    ids = ["pc-left", "pc-spent", "pc-none"]

    # the lane's pulse is 15 s old (the job stopped): everything stops, stale
    write_pulse(stack, now_ms - 15_000)
    client = PacingClient(stack.api.url)
    assert [client.may_serve(c) for c in ids] == [False, False, False]
    got = client.decisions(ids)
    assert got["pc-left"]["reason"] == "stale" and got["pc-left"]["figure_age_ms"] > 10_000
    assert got["pc-spent"]["reason"] == "stale"

    # a fresh pulse: budget left serves, spent and unbudgeted stop
    pulse_ms = int(time.time() * 1000)
    write_pulse(stack, pulse_ms)
    time.sleep(1.1)  # the Lambda's figures and the client's decisions are kept 1 s (max-age=1)
    assert [client.may_serve(c) for c in ids] == [True, False, False]
    got = client.decisions(ids)  # cached by may_serve: the same answers
    assert [(got[c]["decision"], got[c]["reason"]) for c in ids] == [
        ("serve", "asap"), ("stop", "exhausted"), ("stop", "no_budget")]
    assert got["pc-left"]["spent_today_micros"] == 1_000_000 and got["pc-left"]["remaining_micros"] == 4_000_000
    assert got["pc-left"]["figure_age_ms"] <= 10_000

    # the batch form with a bad id: the real API refuses the batch (400), the others still answer
    client.clear()
    got = client.decisions(["pc-left", "bad id", "pc-spent"])
    assert [(got[c]["decision"], got[c]["reason"]) for c in got] == [
        ("serve", "asap"), ("stop", "unavailable"), ("stop", "exhausted")]
    assert got["bad id"]["http_status"] == 400 and "campaign_id" in got["bad id"]["error"]

    # the pulse grows old (nothing writes it): once it is over 10 s old (and the Lambda's 1 s
    # cache of the figures has passed), the answer is stop (stale) again
    time.sleep(max(0.0, (pulse_ms + 10_000 + 1_200) / 1000 - time.time()))
    assert client.may_serve("pc-left") is False
    got = client.decisions(["pc-left"])["pc-left"]
    assert (got["decision"], got["reason"]) == ("stop", "stale") and got["figure_age_ms"] > 10_000
