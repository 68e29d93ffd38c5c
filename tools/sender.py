"""Send a generated load to the ingest API like an ad server's SDK would: batches, a few
concurrent connections, and retries by the SDK's rules (clickagg_sdk.retry: per-click
`retryable`, 408/429/5xx, network errors; Retry-After honoured; full-jitter backoff), each
request made by the Python SDK's `ClickClient.post`; and click links (GET /v1/c?t=TOKEN) like a
browser follows them (`send_links`, plain HTTP: a browser, not an SDK)."""
from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import requests
import urllib3
from clickagg_sdk import ClickClient
from clickagg_sdk.retry import retry_delay_s

# the harness's backoff: the SDK's full jitter, capped lower than the SDK's default (10 s) so a
# restarting local stack is noticed quickly; base as the SDK's
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 2.0


@dataclass
class SendReport:
    # final status per sent item: accepted, duplicate, rejected, or retryable (still retryable
    # after max_retries answered requests: the harness gave up on it)
    outcomes: Counter = field(default_factory=Counter)
    retries: int = 0  # items sent again (retryable answers, 408/429/5xx, network errors)
    requests: int = 0  # answered requests (resent ones excluded)
    resent_requests: int = 0
    connection_errors: int = 0
    http_status: Counter = field(default_factory=Counter)
    post_times: dict = field(default_factory=dict)  # click_id -> epoch s when first accepted
    sent_ids: set = field(default_factory=set)  # click_ids of every item posted at least once
    rejected: dict = field(default_factory=dict)  # click_id -> the reasons of its `rejected` result
    rejected_reasons: Counter = field(default_factory=Counter)  # "field:reason" -> rejected items
    seconds: float = 0.0


def send_load(api_url: str, sends: list[dict], batch_size: int = 100, concurrency: int = 4,
              max_retries: int = 20, progress: bool = True, api_key: str | None = None,
              resend_rate: float = 0.0, seed: int = 5, deadline: float | None = None,
              rate: float | None = None, report: SendReport | None = None,
              prepare: Callable[[dict], dict] | None = None) -> SendReport:
    """`report`: fill this SendReport (and return it) instead of a new one, so another thread
    can watch the load's progress while it runs (`report.outcomes["accepted"]` grows as each
    response arrives; `report.seconds` is set at the end).
    `resend_rate`: share of requests sent again whole after their response, as an SDK does
    when a response is lost to a timeout (same click_ids: they must come back `duplicate`).
    `rate`: clicks/s to pace the requests at (batch i goes out at i * batch_size / rate s);
    None sends as fast as the API answers. `deadline` (time.monotonic): batches not started by
    then are not sent (time-boxed benchmarks). Retries: an item answered `retryable` is sent
    again at most `max_retries` times (then counted `retryable`); a whole request without an
    answer (connection error: API down or restarting, timeout) or answered 408/429/5xx is sent
    again until it is answered; a whole request refused otherwise (400 without results, 413,
    415, 403) counts its items `rejected` with the API's reason. `prepare`: applied to each item
    every time it is posted (e.g. tools.loadgen.Load.prepare signs some tokens at send time)."""
    report = SendReport() if report is None else report
    rng = random.Random(seed)
    backoff_rng = random.Random(seed + 1)
    lock = threading.Lock()
    batches = [sends[i : i + batch_size] for i in range(0, len(sends), batch_size)]
    done = [0]
    # one client for every worker: urllib3's pool is thread-safe, one connection per worker
    client = ClickClient(api_url, api_key=api_key, timeout_s=60.0, backoff_base_s=BACKOFF_BASE_S,
                         backoff_cap_s=BACKOFF_CAP_S,
                         http=urllib3.PoolManager(maxsize=max(1, concurrency), block=False))

    def post(indexed: tuple[int, list[dict]]) -> None:
        index, batch = indexed
        if rate:
            time.sleep(max(0.0, start + index * batch_size / rate - time.monotonic()))
        if deadline is not None and time.monotonic() > deadline:
            return  # time-boxed run (benchmarks): batches after the deadline are not sent
        with lock:
            report.sent_ids.update(item["click_id"] for item in batch)
        pending, answered, rounds = batch, 0, 0
        while pending:
            sent_at = time.time()
            items = [prepare(item) for item in pending] if prepare else pending
            answer = client.post(items)  # exactly one HTTP request
            if answer.http_status is None:  # no answer: the same request again, after a backoff
                with lock:
                    report.connection_errors += 1
                    report.retries += len(pending)
                    wait = retry_delay_s(rounds, None, BACKOFF_BASE_S, BACKOFF_CAP_S, backoff_rng)
                rounds += 1
                time.sleep(wait)
                continue
            with lock:
                resend = rng.random() < resend_rate
            if resend:  # the response "was lost": send the very same request again
                with lock:
                    report.resent_requests += 1
                continue
            retry = []
            with lock:
                report.requests += 1
                report.http_status[answer.http_status] += 1
                for item, decision in zip(pending, answer.decisions()):
                    if not decision.final:
                        # per-item `retryable`: at most max_retries times; whole request: until answered
                        if answer.results is None or answered < max_retries:
                            retry.append(item)
                            continue
                    report.outcomes[decision.status] += 1
                    if decision.status == "rejected":
                        reasons = list(decision.reasons)
                        report.rejected[item["click_id"]] = reasons
                        report.rejected_reasons.update(f"{r.get('field')}:{r.get('reason')}" for r in reasons)
                    if decision.status == "accepted":
                        report.post_times.setdefault(item["click_id"], sent_at)
                report.retries += len(retry)
                wait = (retry_delay_s(rounds, answer.retry_after_s, BACKOFF_BASE_S, BACKOFF_CAP_S, backoff_rng)
                        if retry else 0.0)
            pending, answered, rounds = retry, answered + 1, rounds + 1
            if pending:
                time.sleep(wait)
        with lock:
            done[0] += 1
            if progress and (done[0] % max(1, len(batches) // 10) == 0 or done[0] == len(batches)):
                print(f"  sent {done[0]}/{len(batches)} requests", file=sys.stderr, flush=True)

    t0, start = time.perf_counter(), time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, enumerate(batches)))
    report.seconds = time.perf_counter() - t0
    return report


@dataclass
class LinkReport:
    status: Counter = field(default_factory=Counter)  # HTTP status -> links
    answers: dict = field(default_factory=dict)  # click_id -> (status, Location or refusal reason)
    link_times: dict = field(default_factory=dict)  # click_id -> (ms before the GET, ms after a 302)
    waited_s: float = 0.0  # time spent keeping clear of minute boundaries


def send_links(api_url: str, links: list[dict], minute_margin_s: float = 5.0,
               report: LinkReport | None = None, timeout_s: float = 30.0) -> LinkReport:
    """Follow each link like a browser: GET /v1/c?t=<token> with its User-Agent and Referer, not
    following the redirect. A link's event time is its arrival, so each GET starts at least
    `minute_margin_s` before a minute boundary (waiting for the next minute otherwise) and its
    times are recorded (the minute it lands in is then known: Load.settle_links). Links are sent
    one at a time. An item: {"click_id" (the expected one, a key only), "token", "user_agent",
    "referrer"}."""
    report = LinkReport() if report is None else report
    session = requests.Session()
    for link in links:
        into_minute = time.time() % 60
        if into_minute > 60 - minute_margin_s:
            wait = 60 - into_minute + 0.05
            time.sleep(wait)
            report.waited_s += wait
        headers = {"User-Agent": link["user_agent"]}
        if link.get("referrer"):
            headers["Referer"] = link["referrer"]
        t0 = int(time.time() * 1000)
        resp = session.get(f"{api_url}/v1/c", params={"t": link["token"]}, headers=headers,
                           allow_redirects=False, timeout=timeout_s)
        t1 = int(time.time() * 1000)
        report.status[resp.status_code] += 1
        if resp.status_code == 302:
            report.answers[link["click_id"]] = (302, resp.headers.get("Location"))
            report.link_times[link["click_id"]] = (t0, t1)
        else:
            try:
                reason = resp.json().get("reason")
            except ValueError:
                reason = resp.text[:200]
            report.answers[link["click_id"]] = (resp.status_code, reason)
    return report
