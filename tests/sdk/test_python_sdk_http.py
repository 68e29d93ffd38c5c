"""ClickClient and ClickSender over real HTTP against a scripted server (http.server in a
thread): it plays back scripted answers (503 + Retry-After, 429, per-item retryable, 500, a
dropped connection, 400 with results, 413) and records every request; by default it answers
like the API's dedup (a click_id's first delivery `accepted`, any later one `duplicate`). The
tests check exactly which click_ids went in which request, that ids are stable across retries,
that final items are never sent again, the waits asked of the injected `sleep`, and the outcomes."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clickagg_sdk import ClickClient, ClickSender, ItemOutcome
from clickagg_sdk.retry import retry_delay_s
from clickagg_sdk.sender import QueueFull, SenderClosed


class Scripted:
    """Answers one request: ("status", code, headers, body), ("items", {click_id: status}),
    ("drop",), ("ok",) (dedup answers), ("lost", code) (take the clicks, then answer `code`
    without results: the response is lost, the clicks are in)."""


class Server:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: list = []
        self.requests: list[dict] = []  # {"path", "headers", "ids", "body"}
        self.accepted: Counter = Counter()  # click_id -> times taken (must stay <= 1)
        self.chooser = None  # callable(ids) -> action, when the script is empty
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                ids = [c.get("click_id") for c in body["clicks"]]
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "ids": ids,
                                            "body": body})
                    if server.script:
                        action = server.script.pop(0)
                    elif server.chooser is not None:
                        action = server.chooser(ids)
                    else:
                        action = ("ok",)
                    kind = action[0]
                    if kind == "drop":
                        self.close_connection = True
                        return
                    if kind == "status":
                        _, code, headers, payload = action
                        self.answer(code, payload, headers)
                        return
                    if kind == "lost":
                        server.take(ids, {})
                        self.answer(action[1], {"error": "internal error", "status": action[1]}, {})
                        return
                    overrides = action[1] if kind == "items" else {}
                    results = server.take(ids, overrides)
                code = 202 if any(r["status"] in ("accepted", "duplicate") for r in results) else (
                    503 if any(r["status"] == "retryable" for r in results) else 400)
                self.answer(code, {"request_id": "req", "results": results}, {})

            def answer(self, code, payload, headers):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def take(self, ids, overrides) -> list[dict]:
        """Per-item results like the API's dedup (called under the lock)."""
        out = []
        for i, cid in enumerate(ids):
            status = overrides.get(cid)
            if status is None:
                status = "duplicate" if self.accepted[cid] else "accepted"
            r = {"index": i, "click_id": cid, "status": status}
            if status == "accepted":
                self.accepted[cid] += 1
            if status == "rejected":
                r["reasons"] = [{"field": "user_id", "reason": "missing"}]
            if status == "retryable":
                r["reason"] = "dedup store unavailable"
            out.append(r)
        return out

    def ids_per_request(self) -> list[list[str]]:
        return [r["ids"] for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def clicks(n: int, prefix: str = "c") -> list[dict]:
    return [{"click_id": f"{prefix}{i}", "user_id": f"u{i}", "timestamp": 1_795_000_000_000 + i,
             "token": f"tok-{i}"} for i in range(n)]


def client(server, sleeps: list, seed: int = 1, **kw) -> ClickClient:
    return ClickClient(server.url, rng=random.Random(seed), sleep=sleeps.append, timeout_s=5.0, **kw)


def statuses(outcomes) -> list[tuple]:
    return [(o.click_id, o.status, o.attempts) for o in outcomes]


def assert_final_items_never_resent(requests: list[list[str]], outcomes: list[ItemOutcome]) -> None:
    """Each click_id is in consecutive requests only, as many as its attempts (so never again
    after its final answer)."""
    for o in outcomes:
        seen = [k for k, ids in enumerate(requests) if o.click_id in ids]
        assert len(seen) == o.attempts, o
        assert seen == list(range(seen[0], seen[0] + len(seen))) if seen else True, o


# --- ClickClient -------------------------------------------------------------------------------
def test_503_retry_after_then_accepted(server):
    server.script = [("status", 503, {"Retry-After": "7"}, {"error": "dependency down", "status": 503})]
    sleeps: list = []
    out = client(server, sleeps).send(clicks(3))
    assert statuses(out) == [("c0", "accepted", 2), ("c1", "accepted", 2), ("c2", "accepted", 2)]
    assert server.ids_per_request() == [["c0", "c1", "c2"]] * 2
    assert sleeps == [7.0]  # Retry-After (7 s) is longer than the first jitter (<= 0.1 s)
    assert server.requests[1]["body"] == server.requests[0]["body"]  # the very same clicks again


def test_429_with_http_date_and_without_retry_after(server):
    soon = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    server.script = [("status", 429, {"Retry-After": soon}, {"error": "Too Many Requests"}),
                     ("status", 429, {}, {"message": "Too Many Requests"})]
    sleeps: list = []
    out = client(server, sleeps, seed=42).send(clicks(2))
    assert statuses(out) == [("c0", "accepted", 3), ("c1", "accepted", 3)]
    oracle = random.Random(42)
    first = max(60.0, oracle.uniform(0, 0.1))  # an hour away: honoured up to the 60 s cap
    second = oracle.uniform(0, 0.2)  # no Retry-After: the jittered backoff of the 2nd retry
    assert sleeps == [first, second]


def test_per_item_retryable_only_those_are_resent(server):
    server.script = [("items", {"c1": "retryable", "c3": "retryable", "c2": "rejected"}),
                     ("items", {"c3": "retryable"})]
    sleeps: list = []
    out = client(server, sleeps, seed=3).send(clicks(5))
    assert server.ids_per_request() == [["c0", "c1", "c2", "c3", "c4"], ["c1", "c3"], ["c3"]]
    assert statuses(out) == [("c0", "accepted", 1), ("c1", "accepted", 2), ("c2", "rejected", 1),
                             ("c3", "accepted", 3), ("c4", "accepted", 1)]
    assert out[2].reasons == [{"field": "user_id", "reason": "missing"}]
    oracle = random.Random(3)
    assert sleeps == [oracle.uniform(0, 0.1), oracle.uniform(0, 0.2)]
    assert_final_items_never_resent(server.ids_per_request(), out)
    # the resent items are byte-for-byte the same clicks (same click_id, same fields)
    assert server.requests[1]["body"]["clicks"] == [clicks(5)[1], clicks(5)[3]]


def test_500_and_a_dropped_connection_are_resent_and_counted_once(server):
    # 500 after the clicks were taken (the response is lost), then a dropped connection, then ok:
    # the clicks come back `duplicate`, taken once
    server.script = [("lost", 500), ("drop",)]
    sleeps: list = []
    seen = []
    out = client(server, sleeps).send(clicks(3), on_attempt=seen.append)
    assert server.ids_per_request() == [["c0", "c1", "c2"]] * 3
    assert statuses(out) == [("c0", "duplicate", 3), ("c1", "duplicate", 3), ("c2", "duplicate", 3)]
    assert server.accepted == Counter({"c0": 1, "c1": 1, "c2": 1})
    assert [a.http_status for a in seen] == [500, None, 202]
    assert seen[1].error is not None and seen[1].results is None
    assert len(sleeps) == 2


def test_400_with_results_is_final_per_item(server):
    body = {"error": "no valid click in request", "status": 400, "results": [
        {"index": 0, "click_id": "c0", "status": "rejected", "reasons": [{"field": "token", "reason": "missing_token"}]},
        {"index": 1, "click_id": "c1", "status": "rejected", "reasons": [{"field": "timestamp", "reason": "too old"}]}]}
    server.script = [("status", 400, {}, body)]
    sleeps: list = []
    out = client(server, sleeps).send(clicks(2))
    assert server.ids_per_request() == [["c0", "c1"]] and sleeps == []
    assert [(o.status, o.reasons, o.attempts, o.http_status) for o in out] == [
        ("rejected", [{"field": "token", "reason": "missing_token"}], 1, 400),
        ("rejected", [{"field": "timestamp", "reason": "too old"}], 1, 400)]


@pytest.mark.parametrize("code,error", [(413, "body is 2000000 bytes; the limit is 1048576"),
                                        (415, "Content-Type must be application/json"),
                                        (403, "Forbidden"), (400, "body is not valid JSON")])
def test_whole_request_4xx_is_final_rejected_with_the_api_reason(server, code, error):
    server.script = [("status", code, {}, {"error": error, "status": code})]
    sleeps: list = []
    out = client(server, sleeps).send(clicks(2))
    assert server.ids_per_request() == [["c0", "c1"]] and sleeps == []
    assert [(o.click_id, o.status, o.reasons, o.attempts) for o in out] == [
        (f"c{i}", "rejected", [{"field": "request", "reason": f"HTTP {code}: {error}"}], 1) for i in range(2)]


def test_gave_up_after_max_attempts(server):
    server.script = [("status", 503, {"Retry-After": "1"}, {"error": "down"})] * 4 + [("ok",)]
    sleeps: list = []
    out = client(server, sleeps, max_attempts=4).send(clicks(2))
    assert server.ids_per_request() == [["c0", "c1"]] * 4  # the 5th answer (ok) is never asked for
    assert [(o.status, o.attempts, o.http_status, o.reasons) for o in out] == [
        ("gave_up", 4, 503, [{"field": "request", "reason": "HTTP 503: down"}])] * 2
    assert len(sleeps) == 3 and all(s >= 1.0 for s in sleeps)


def test_deadline_gives_up_instead_of_waiting_past_it(server):
    now = [100.0]
    server.script = [("status", 503, {"Retry-After": "30"}, {"error": "down"})]
    sleeps: list = []
    c = client(server, sleeps, clock=lambda: now[0])
    out = c.send(clicks(1), deadline=120.0)  # the 30 s wait would end after the deadline
    assert [(o.status, o.attempts) for o in out] == [("gave_up", 1)] and sleeps == []
    out = c.send(clicks(1, "d"), deadline=100.0)  # already past: nothing sent
    assert [(o.status, o.attempts) for o in out] == [("gave_up", 0)] and len(server.requests) == 1


def test_large_sends_are_split(server):
    items = clicks(1100)
    out = client(server, []).send(items)
    assert [len(ids) for ids in server.ids_per_request()] == [500, 500, 100]
    assert [cid for ids in server.ids_per_request() for cid in ids] == [c["click_id"] for c in items]
    assert [o.click_id for o in out] == [c["click_id"] for c in items] and {o.status for o in out} == {"accepted"}


def test_routes_and_headers(server):
    ClickClient(server.url, api_key="secret-key").post(clicks(1))
    ClickClient(server.url + "/", public=True).post(clicks(1, "p"))
    a, b = server.requests
    assert (a["path"], a["headers"].get("x-api-key"), a["headers"]["Content-Type"]) == (
        "/v1/clicks", "secret-key", "application/json")
    assert (b["path"], b["headers"].get("x-api-key"), b["headers"]["Content-Type"]) == (
        "/v1/public/clicks", None, "application/json")
    assert a["body"] == {"clicks": clicks(1)}
    with pytest.raises(ValueError):
        ClickClient(server.url, public=True, api_key="k")


def test_post_is_one_request_and_reports_the_answer(server):
    server.script = [("status", 503, {"Retry-After": "5"}, {"error": "down", "status": 503})]
    attempt = ClickClient(server.url).post(clicks(2))
    assert (attempt.http_status, attempt.retry_after_s, attempt.results, attempt.error) == (503, 5.0, None, None)
    assert [d.final for d in attempt.decisions()] == [False, False]
    assert len(server.requests) == 1
    ok = ClickClient(server.url).post(clicks(2))
    assert [r["status"] for r in ok.results] == ["accepted", "accepted"] and len(server.requests) == 2


def test_network_error_is_captured():
    c = ClickClient("http://127.0.0.1:9", rng=random.Random(0), sleep=lambda s: None, max_attempts=2)
    attempt = c.post(clicks(1))
    assert attempt.http_status is None and attempt.error
    out = c.send(clicks(1))
    assert (out[0].status, out[0].attempts, out[0].http_status) == ("gave_up", 2, None)
    assert out[0].reasons[0]["reason"].startswith("no response: ")


# --- ClickSender -------------------------------------------------------------------------------
def test_sender_8_threads_each_click_delivered_once(server):
    """8 threads x 500 track calls while the server fails a third of the requests in every way
    (503, 500 after taking the clicks, dropped connection, per-item retryable): every click is
    taken by the server exactly once and reported exactly once."""
    chaos = random.Random(2024)

    def choose(ids):
        roll = chaos.random()
        if roll < 0.08:
            return ("status", 503, {"Retry-After": "0"}, {"error": "down"})
        if roll < 0.16:
            return ("lost", 500)
        if roll < 0.22:
            return ("drop",)
        if roll < 0.34:
            return ("items", {cid: "retryable" for cid in ids if chaos.random() < 0.3})
        return ("ok",)
    server.chooser = choose
    results: list[ItemOutcome] = []
    results_lock = threading.Lock()

    def on_result(o):
        with results_lock:
            results.append(o)
    c = ClickClient(server.url, rng=random.Random(5), sleep=lambda s: None, max_attempts=60)
    sender = ClickSender(c, batch_size=100, flush_interval_s=0.05, on_result=on_result)
    ids: list[list[str]] = [[] for _ in range(8)]

    def producer(t: int) -> None:
        for k in range(500):
            ids[t].append(sender.track({"user_id": f"u-{t}-{k}", "token": "t", "n": k}))
    threads = [threading.Thread(target=producer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sender.flush(timeout_s=120)
    tracked = [cid for per in ids for cid in per]
    assert len(tracked) == len(set(tracked)) == 4000
    assert server.accepted == Counter({cid: 1 for cid in tracked})  # taken once each, nothing else
    assert sorted(o.click_id for o in results) == sorted(tracked)  # on_result once per click
    assert {o.status for o in results} <= {"accepted", "duplicate"}
    by_status = Counter(o.status for o in results)
    stats = sender.stats()
    assert (stats["accepted"], stats["duplicate"], stats["rejected"], stats["gave_up"]) == (
        by_status["accepted"], by_status["duplicate"], 0, 0)
    assert stats["requests"] == len(server.requests)
    assert stats["retries"] == sum(o.attempts - 1 for o in results) > 0
    assert by_status["duplicate"] > 0  # some responses were lost after the clicks were taken
    # every click went out with the same click_id and body each time
    bodies: dict = {}
    for req in server.requests:
        for item in req["body"]["clicks"]:
            assert bodies.setdefault(item["click_id"], item) == item
    sender.close()


def test_track_copies_and_fills_defaults(server):
    with ClickSender(ClickClient(server.url), flush_interval_s=3600) as sender:
        mine = {"user_id": "u1", "token": "t", "extra": {"k": [1]}}
        before = json.dumps(mine)
        cid = sender.track(mine)
        given = sender.track({"click_id": "given-1", "timestamp": 5, "user_id": "u2"})
        mine["extra"]["k"].append(2)  # the caller changes its dict afterwards
        assert json.dumps(mine) != before and "click_id" not in mine and "timestamp" not in mine
        assert sender.flush(timeout_s=30)
    (req,) = server.requests
    first, second = req["body"]["clicks"]
    assert first["click_id"] == cid and first["extra"] == {"k": [1]} and isinstance(first["timestamp"], int)
    assert abs(first["timestamp"] - time.time() * 1000) < 600_000  # epoch ms, not s or ns
    assert second == {"click_id": "given-1", "timestamp": 5, "user_id": "u2"} and given == "given-1"
    with pytest.raises(SenderClosed):
        sender.track({"user_id": "late"})


def test_sender_batches_by_size_then_flush_sends_the_rest(server):
    sender = ClickSender(ClickClient(server.url), batch_size=100, flush_interval_s=3600)
    tracked = [sender.track({"user_id": f"u{i}"}) for i in range(250)]
    deadline = time.monotonic() + 30
    while len(server.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.ids_per_request() == [tracked[:100], tracked[100:200]]  # full batches only
    assert sender.flush(timeout_s=30)
    assert server.ids_per_request() == [tracked[:100], tracked[100:200], tracked[200:]]
    assert sender.close() is True


def test_sender_reports_rejected_and_gave_up(server):
    server.script = [("items", {"bad": "rejected"}), ("status", 503, {}, {"error": "down"}),
                     ("status", 503, {}, {"error": "down"})]
    seen = []
    c = ClickClient(server.url, sleep=lambda s: None, max_attempts=2)
    with ClickSender(c, on_result=seen.append) as sender:
        sender.track({"click_id": "bad", "user_id": "u"})
        assert sender.flush(timeout_s=30)
        sender.track({"click_id": "slow", "user_id": "u"})
        assert sender.flush(timeout_s=30)
        assert (sender.stats()["rejected"], sender.stats()["gave_up"], sender.stats()["requests"]) == (1, 1, 3)
    assert [(o.click_id, o.status, o.attempts) for o in seen] == [("bad", "rejected", 1), ("slow", "gave_up", 2)]


def test_queue_full_blocks_then_raises_and_loses_nothing_taken():
    release = threading.Event()
    sent: list = []

    class Blocking:
        def send(self, items, deadline=None, on_attempt=None):
            release.wait(30)
            sent.extend(i["click_id"] for i in items)
            return [ItemOutcome(i["click_id"], "accepted", [], 1) for i in items]
    sender = ClickSender(Blocking(), batch_size=1, max_queue=3, flush_interval_s=0, enqueue_timeout_s=0.05)
    taken = [sender.track({"user_id": "u"})]
    deadline = time.monotonic() + 30
    while sender.stats()["in_flight"] < 1 and time.monotonic() < deadline:  # the worker holds it
        time.sleep(0.01)
    taken += [sender.track({"user_id": "u"}) for _ in range(3)]  # fills the queue
    with pytest.raises(QueueFull):
        sender.track({"click_id": "refused", "user_id": "u"})
    release.set()
    assert sender.flush(timeout_s=30)
    assert sent == taken and sender.stats()["accepted"] == 4
    sender.close()


def test_close_reports_clicks_it_could_not_deliver_as_gave_up():
    release = threading.Event()

    class Stuck:
        def send(self, items, deadline=None, on_attempt=None):
            release.wait(30)
            return [ItemOutcome(i["click_id"], "accepted", [], 1) for i in items]
    seen = []
    sender = ClickSender(Stuck(), batch_size=1, flush_interval_s=0, on_result=seen.append)
    first = sender.track({"user_id": "u"})
    deadline = time.monotonic() + 30
    while sender.stats()["in_flight"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    queued = [sender.track({"user_id": "u"}) for _ in range(3)]
    assert sender.close(timeout_s=0.05) is False
    assert [(o.click_id, o.status) for o in seen] == [(cid, "gave_up") for cid in queued]
    release.set()  # the batch in flight still gets its outcome
    deadline = time.monotonic() + 30
    while len(seen) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (seen[-1].click_id, seen[-1].status) == (first, "accepted")


def test_flush_at_interpreter_exit(server):
    """A process that tracks clicks and exits without close(): atexit delivers them."""
    code = (f"from clickagg_sdk import ClickClient, ClickSender\n"
            f"s = ClickSender(ClickClient({server.url!r}), flush_interval_s=3600)\n"
            f"for i in range(7): s.track({{'click_id': f'exit-{{i}}', 'user_id': 'u'}})\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert server.ids_per_request() == [[f"exit-{i}" for i in range(7)]]


# --- the load harness on the SDK (tools/sender.send_load) ----------------------------------------
def test_send_load_posts_through_the_sdk_with_its_retry_rules(server):
    from tools.sender import send_load

    server.script = [("status", 503, {"Retry-After": "0"}, {"error": "down"}), ("drop",),
                     ("items", {"c1": "retryable", "c3": "rejected"})]
    report = send_load(server.url, clicks(4), batch_size=4, concurrency=1, progress=False)
    assert server.ids_per_request() == [["c0", "c1", "c2", "c3"]] * 3 + [["c1"]]
    assert report.outcomes == {"accepted": 3, "rejected": 1}
    assert report.rejected == {"c3": [{"field": "user_id", "reason": "missing"}]}
    assert (report.requests, report.connection_errors, dict(report.http_status)) == (3, 1, {503: 1, 202: 2})
    assert report.retries == 4 + 4 + 1 and report.sent_ids == {"c0", "c1", "c2", "c3"}
    assert set(report.post_times) == {"c0", "c1", "c2"}


def test_send_load_counts_a_refused_request_rejected_and_gives_up_per_item(server):
    from tools.sender import send_load

    server.script = [("status", 413, {}, {"error": "too large", "status": 413})]
    report = send_load(server.url, clicks(2), batch_size=2, concurrency=1, progress=False)
    assert report.outcomes == {"rejected": 2} and len(server.requests) == 1
    assert report.rejected_reasons == {"request:HTTP 413: too large": 2}
    server.script = [("items", {"r0": "retryable"})] * 3
    report = send_load(server.url, clicks(1, "r"), max_retries=2, concurrency=1, progress=False)
    assert report.outcomes == {"retryable": 1} and server.ids_per_request()[-3:] == [["r0"]] * 3
