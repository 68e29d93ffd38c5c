"""The HTTP client of the ingest API's click routes.

`ClickClient.post` is exactly one HTTP request (the harness in tools/sender.py and tests build
on it); `ClickClient.send` is delivery: post, then re-send only the items that need it (the
rules of clickagg_sdk.retry) until each one is final or the attempts or the deadline run out.
Nothing is ever dropped silently: an item that never became final is reported `gave_up`.

Three routes (`EventClient` is the third):

* `public=False` (default): `POST {endpoint}/v1/clicks`, server to server (an ad server
  forwarding its users' clicks: items may carry `ip` and `user_agent`), with `x-api-key` when
  an api_key is given (the deployed API's usage plan);
* `public=True`: `POST {endpoint}/v1/public/clicks`, no key (browsers, apps, or a server posting
  on their behalf): every click needs its `token`; the network facts are the request's;
* `EventClient`: `POST {endpoint}/v1/events` with the API key: impressions (ad servers),
  conversions (advertisers) and clicks, mixed (docs/events.md; items from clickagg_sdk.events).

HTTP through urllib3's connection pool (thread-safe: one client may serve many threads).
"""
from __future__ import annotations

import dataclasses
import decimal
import json
import random
import time
from typing import Any, Callable, Optional, Sequence

import urllib3

from . import retry
from .retry import GAVE_UP

__all__ = ["ClickClient", "EventClient", "Attempt", "ItemOutcome", "MAX_BATCH_ITEMS",
           "MAX_BATCH_BYTES", "item_id"]

MAX_BATCH_ITEMS = 500  # the API's limit per request
# the API refuses bodies over 1 MiB (413); split well below it (the JSON framing, headers and a
# base64-encoding proxy are not counted here)
MAX_BATCH_BYTES = 900_000
PRIVATE_PATH = "/v1/clicks"
PUBLIC_PATH = "/v1/public/clicks"
EVENTS_PATH = "/v1/events"
ID_FIELDS = {"click": "click_id", "impression": "impression_id", "conversion": "conversion_id"}


def item_id(item: dict) -> Optional[str]:
    """An item's id: its click_id, or for an event of POST /v1/events its type's id."""
    return item.get(ID_FIELDS.get(item.get("type") or "click", "click_id"))


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # costs: the API takes decimal strings exactly
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(obj: Any) -> bytes:
    """Compact JSON as the client sends it (Decimal -> its decimal string)."""
    return json.dumps(obj, separators=(",", ":"), default=_json_default, allow_nan=False).encode("utf-8")


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One HTTP request's answer. `http_status` None: no answer (network error or timeout,
    `error` says which). `results`: the per-item results when the body had them. `retry_after_s`:
    the parsed Retry-After header (uncapped), if any. `body`: the parsed JSON body, if any."""

    http_status: Optional[int]
    results: Optional[list]
    retry_after_s: Optional[float]
    error: Optional[str]
    body: Any = None
    n_items: int = 0

    def decisions(self) -> list[retry.Decision]:
        """What the retry rules make of this answer, one per item sent."""
        return retry.classify(self.http_status, self.body, self.n_items, error=self.error)


@dataclasses.dataclass(frozen=True)
class ItemOutcome:
    """An item's final outcome. `click_id`: the item's id (item_id: an event's impression_id or
    conversion_id). `status`: accepted | duplicate | rejected | gave_up. `reasons`:
    [{"field", "reason"}] from the API (rejected), or why the last attempt failed (gave_up).
    `attempts`: requests that carried it. `http_status`: of the last of them (None: no answer)."""

    click_id: Optional[str]
    status: str
    reasons: list
    attempts: int
    http_status: Optional[int] = None


def batches(items: Sequence[dict], max_items: int = MAX_BATCH_ITEMS,
            max_bytes: int = MAX_BATCH_BYTES) -> list[list[int]]:
    """Indexes of `items` grouped into requests of at most `max_items` items and about
    `max_bytes` of JSON (an item larger than that alone goes in a request of its own: the API
    answers 413 and it is reported rejected)."""
    out: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, item in enumerate(items):
        n = len(encode_json(item)) + 1
        if current and (len(current) >= max_items or size + n > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(i)
        size += n
    if current:
        out.append(current)
    return out


class ClickClient:
    """`endpoint`: the API's base URL (e.g. https://abc.execute-api.eu-west-1.amazonaws.com/prod,
    or the local stack's http://127.0.0.1:PORT). `max_attempts`: requests per item at most
    (send). `rng`: random.Random for the backoff jitter (seed it in tests). `sleep`: how to wait
    (inject to record the waits). `http`: a urllib3.PoolManager (or anything with its
    `request(method, url, body=, headers=, timeout=, retries=, redirect=)`)."""

    path = PRIVATE_PATH
    body_key = "clicks"

    def __init__(self, endpoint: str, *, api_key: Optional[str] = None, public: bool = False,
                 timeout_s: float = 10.0, max_attempts: int = 10, backoff_base_s: float = 0.1,
                 backoff_cap_s: float = 10.0, rng: Optional[random.Random] = None,
                 sleep: Callable[[float], None] = time.sleep, http: Any = None,
                 clock: Callable[[], float] = time.monotonic,
                 user_agent: Optional[str] = None) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if public and api_key:
            raise ValueError("the public route takes no API key (the click token is the proof)")
        self.endpoint = endpoint.rstrip("/")
        self.url = self.endpoint + (PUBLIC_PATH if public else self.path)
        self.public = public
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.clock = clock  # what `deadline` is measured on (time.monotonic)
        self.http = http if http is not None else urllib3.PoolManager(maxsize=16, block=False)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self.headers["x-api-key"] = api_key
        if user_agent:
            self.headers["User-Agent"] = user_agent

    # --- one request ------------------------------------------------------------------------------
    def post(self, items: Sequence[dict]) -> Attempt:
        """Exactly one HTTP request with `{"clicks": items}` (EventClient: `{"events": items}`).
        Raises nothing for HTTP errors or
        network failures: they are in the Attempt (TypeError only for items that are not JSON)."""
        body = encode_json({self.body_key: list(items)})
        try:
            resp = self.http.request("POST", self.url, body=body, headers=self.headers,
                                     timeout=urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s),
                                     retries=False, redirect=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Attempt(None, None, None, f"{type(exc).__name__}: {exc}", None, len(items))
        parsed: Any = None
        try:
            parsed = json.loads(resp.data) if resp.data else None
        except ValueError:
            parsed = None
        results = parsed.get("results") if isinstance(parsed, dict) else None
        retry_after = retry.parse_retry_after(resp.headers.get("Retry-After"), time.time())
        return Attempt(resp.status, results if isinstance(results, list) else None, retry_after,
                       None, parsed, len(items))

    # --- delivery ---------------------------------------------------------------------------------
    def send(self, items: Sequence[dict], deadline: Optional[float] = None,
             on_attempt: Optional[Callable[[Attempt], None]] = None) -> list[ItemOutcome]:
        """Deliver `items` (each with its `click_id`, kept as is on every attempt): one outcome
        per item, in input order. Items are split into requests of at most 500 items / ~900 KB;
        after each attempt only the items that are not final are sent again, after the backoff
        (or Retry-After). An item still not final after `max_attempts` requests, or when the
        next wait would pass `deadline` (a value of `clock`, time.monotonic by default), is
        `gave_up` with the last attempt's reasons. `on_attempt`: called after every request."""
        outcomes: list[Optional[ItemOutcome]] = [None] * len(items)
        for group in batches(items):
            self._deliver(items, group, outcomes, deadline, on_attempt)
        return outcomes  # type: ignore[return-value]

    def _deliver(self, items: Sequence[dict], pending: list[int], outcomes: list,
                 deadline: Optional[float], on_attempt: Optional[Callable[[Attempt], None]]) -> None:
        attempts = dict.fromkeys(pending, 0)
        last: dict[int, tuple[retry.Decision, Optional[int]]] = {}
        for attempt_no in range(self.max_attempts):
            if deadline is not None and self.clock() >= deadline:
                break
            answer = self.post([items[i] for i in pending])
            if on_attempt is not None:
                on_attempt(answer)
            still = []
            for i, decision in zip(pending, answer.decisions()):
                attempts[i] += 1
                if decision.final:
                    outcomes[i] = ItemOutcome(item_id(items[i]), decision.status,
                                              list(decision.reasons), attempts[i], answer.http_status)
                else:
                    still.append(i)
                    last[i] = (decision, answer.http_status)
            pending = still
            if not pending or attempt_no + 1 >= self.max_attempts:
                break
            wait = retry.retry_delay_s(attempt_no, answer.retry_after_s, self.backoff_base_s,
                                       self.backoff_cap_s, self.rng)
            if deadline is not None and self.clock() + wait >= deadline:
                break
            self.sleep(wait)
        for i in pending:
            decision, status = last.get(i, (None, None))
            reasons = list(decision.reasons) if decision else [
                {"field": "request", "reason": "deadline passed before the first attempt"}]
            outcomes[i] = ItemOutcome(item_id(items[i]), GAVE_UP, reasons, attempts[i], status)


class EventClient(ClickClient):
    """`POST {endpoint}/v1/events` (API key): impressions, conversions and clicks, mixed; the
    same retry rules (a resent conversion or click comes back `duplicate`; a resent impression
    `accepted` again: impressions are counted once per impression_id downstream)."""

    path = EVENTS_PATH
    body_key = "events"

    def __init__(self, endpoint: str, *, api_key: Optional[str] = None, **kwargs: Any) -> None:
        if kwargs.pop("public", False):
            raise ValueError("POST /v1/events is server to server: no public route")
        super().__init__(endpoint, api_key=api_key, **kwargs)
