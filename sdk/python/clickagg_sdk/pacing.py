"""`PacingClient`: may this campaign's ad be served now? (the budget lane's decision API,
docs/budget.md), cheap enough to ask on every ad request.

`may_serve(campaign_id)` answers from a short in-process cache: a decision is kept as long as
the API allows it (the answer's `Cache-Control: max-age`; without one, the decision's
`valid_for_ms`; `max_age_s` caps both), never longer, because the server's stop margin counts
on callers keeping an answer at most that long. `serve` is True, `throttle` True with
probability `serve_fraction`, `stop` False.

Fail closed: when the API cannot be reached, times out, answers anything but 200 or an answer
that is not a decision, the campaign's decision is `stop` (reason `unavailable`, with the HTTP
status or the error), kept only for a short back-off (`unavailable_backoff_s`, 1 s) so that the
API is asked again soon. A good answer is never used past its max-age, whatever happens after.

Requests: one campaign is `GET /v1/campaigns/{id}/pacing`; more are `POST /v1/pacing` in chunks
of 100 ids. The API refuses a whole batch (400) for one bad id: that chunk is then asked one
`GET` per campaign, so the bad id alone is stopped (with the API's reason in `error`).

Thread-safe: one client serves all of an ad server's threads. A campaign has at most one request
in flight per client: a thread that needs a campaign another thread is already asking for waits
for that answer instead of sending its own.

The deployed API is IAM-authorized: pass `sign(method, url, headers, body) -> headers` that adds
the SigV4 headers (a botocore-based one is in the README; this module does not import botocore).
"""
from __future__ import annotations

import json
import random
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Optional
from urllib.parse import quote

import urllib3

__all__ = ["PacingClient", "SERVE", "THROTTLE", "STOP", "UNAVAILABLE", "MAX_BATCH_IDS",
           "parse_max_age"]

SERVE, THROTTLE, STOP = "serve", "throttle", "stop"
DECISIONS = (SERVE, THROTTLE, STOP)
UNAVAILABLE = "unavailable"  # the client's own reason: no usable answer from the API
MAX_BATCH_IDS = 100  # POST /v1/pacing's limit
BATCH_PATH = "/v1/pacing"
SINGLE_PATH = "/v1/campaigns/{}/pacing"

Signer = Callable[[str, str, dict, Optional[bytes]], Mapping[str, str]]


def parse_max_age(cache_control: Optional[str]) -> Optional[float]:
    """Seconds an answer may be kept from a Cache-Control header: `max-age=N` -> N;
    `no-store` / `no-cache` (or `max-age=0`) -> 0; no header, or no usable directive -> None."""
    if not cache_control:
        return None
    max_age: Optional[float] = None
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            value = value.strip().strip('"')
            if value.isascii() and value.isdigit():
                max_age = float(int(value))
    return max_age


class _Flight:
    """One campaign's request in flight: the thread that sends it sets `decision`."""

    __slots__ = ("done", "decision")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.decision: Optional[dict] = None


class _Answer:
    """What one HTTP request gave: status (None: no answer), parsed body, max-age, error."""

    __slots__ = ("status", "body", "max_age_s", "error")

    def __init__(self, status: Optional[int], body: Any, max_age_s: Optional[float],
                 error: Optional[str]) -> None:
        self.status, self.body, self.max_age_s, self.error = status, body, max_age_s, error


class PacingClient:
    """Pacing decisions of the budget lane, cached as long as the API allows.

    `endpoint`: the API's base URL (https://abc.execute-api.eu-west-1.amazonaws.com/prod, or the
    local stack's http://127.0.0.1:PORT). `sign(method, url, headers, body) -> headers`: adds
    the SigV4 headers (body: the exact bytes sent, None for a GET); its exceptions are a failed
    request (fail closed). `http`: a urllib3.PoolManager (or anything with its `request`).
    `clock`: seconds, monotonic (what cache lifetimes are measured on). `rng`: draws the
    throttle (random.Random; seed it in tests). `timeout_s`: per request, connect and read in
    total. `max_age_s`: keep a decision at most this long (None: as long as the API allows; 0:
    never cache). `unavailable_backoff_s`: how long a fail-closed `stop` is kept before the API
    is asked again."""

    def __init__(self, endpoint: str, *, sign: Optional[Signer] = None, http: Any = None,
                 clock: Callable[[], float] = time.monotonic, rng: Optional[random.Random] = None,
                 timeout_s: float = 2.0, max_age_s: Optional[float] = None,
                 unavailable_backoff_s: float = 1.0, user_agent: Optional[str] = None) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_age_s is not None and max_age_s < 0:
            raise ValueError(f"max_age_s must be >= 0 or None, got {max_age_s}")
        if unavailable_backoff_s < 0:
            raise ValueError(f"unavailable_backoff_s must be >= 0, got {unavailable_backoff_s}")
        self.endpoint = endpoint.rstrip("/")
        self.sign = sign
        self.http = http if http is not None else urllib3.PoolManager(maxsize=16, block=False)
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self.unavailable_backoff_s = unavailable_backoff_s
        self.headers = {"Accept": "application/json"}
        if user_agent:
            self.headers["User-Agent"] = user_agent
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict]] = {}  # campaign_id -> (expires at, decision)
        self._inflight: dict[str, _Flight] = {}
        self._purge_at = 4096  # drop expired entries when the cache grows past this

    # --- the per-ad-request call ------------------------------------------------------------------
    def may_serve(self, campaign_id: str) -> bool:
        """May an ad of this campaign be served now? `serve`: True; `throttle`: True with
        probability `serve_fraction` (one draw of `rng`); `stop` (also when the API gave no
        usable answer): False. From the cache while the decision is valid; else one request."""
        if not isinstance(campaign_id, str):
            raise TypeError(f"a campaign id is a str, got {type(campaign_id).__name__}")
        now = self.clock()
        with self._lock:
            entry = self._cache.get(campaign_id)
        if entry is not None and now < entry[0]:
            decision = entry[1]
        else:
            decision = self._get([campaign_id])[campaign_id]
        kind = decision.get("decision")
        if kind == SERVE:
            return True
        if kind == THROTTLE:
            return self.rng.random() < decision["serve_fraction"]
        return False

    # --- many campaigns ---------------------------------------------------------------------------
    def decisions(self, campaign_ids: Iterable[str]) -> dict[str, dict]:
        """Each campaign's decision (the API's PacingDecision, or the client's fail-closed `stop`
        with reason `unavailable`, `http_status` and `error`), keyed by campaign id in the order
        given (duplicates once). The ones not cached are fetched: one id with the GET, more with
        POST /v1/pacing in chunks of 100. The dicts are copies: change them freely."""
        got = self._get(self._ids(campaign_ids))
        return {cid: dict(d) for cid, d in got.items()}

    def prefetch(self, campaign_ids: Iterable[str]) -> None:
        """`decisions` without the answer: warm the cache (e.g. for the campaigns an ad request
        could pick, before choosing among them)."""
        self._get(self._ids(campaign_ids))

    def clear(self) -> None:
        """Forget every cached decision."""
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        """Close the pooled connections (the client stays usable: they reopen on demand)."""
        clear = getattr(self.http, "clear", None)
        if clear is not None:
            clear()

    def __enter__(self) -> "PacingClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the cache and the flights --------------------------------------------------------------
    @staticmethod
    def _ids(campaign_ids: Iterable[str]) -> list[str]:
        if isinstance(campaign_ids, str):
            raise TypeError("campaign_ids is a list of ids, not one string (may_serve takes one)")
        ids = list(dict.fromkeys(campaign_ids))
        for cid in ids:
            if not isinstance(cid, str):
                raise TypeError(f"a campaign id is a str, got {type(cid).__name__}")
        return ids

    def _get(self, ids: list[str]) -> dict[str, dict]:
        """The decisions of `ids` (shared dicts: never hand them out unless copied)."""
        out: dict[str, dict] = {}
        mine: list[str] = []  # what this thread asks for
        waits: dict[str, _Flight] = {}  # what another thread is already asking for
        now = self.clock()
        with self._lock:
            for cid in ids:
                entry = self._cache.get(cid)
                if entry is not None and now < entry[0]:
                    out[cid] = entry[1]
                elif cid in self._inflight:
                    waits[cid] = self._inflight[cid]
                else:
                    self._inflight[cid] = _Flight()
                    mine.append(cid)
        if mine:
            self._fetch(mine, out)
        for cid, flight in waits.items():
            # the thread asking resolves its flights in a finally block, each request bounded by
            # timeout_s; the bound here only guards against a bug leaving a flight open
            if flight.done.wait(timeout=60 * self.timeout_s) and flight.decision is not None:
                out[cid] = flight.decision
            else:
                out[cid] = self._unavailable(cid, None, "waited too long for another thread's request")
        return {cid: out[cid] for cid in ids}

    def _fetch(self, ids: list[str], out: dict[str, dict]) -> None:
        """Ask the API for `ids` (flights registered by the caller); every flight is resolved
        (and the answers cached) whatever happens, chunk by chunk."""
        pending = list(ids)
        try:
            if len(ids) == 1:
                self._resolve(self._fetch_one(ids[0]), out)
                pending = []
                return
            for start in range(0, len(ids), MAX_BATCH_IDS):
                chunk = ids[start:start + MAX_BATCH_IDS]
                self._resolve(self._fetch_chunk(chunk), out)
                pending = ids[start + len(chunk):]
        except BaseException as exc:  # fail closed, release the waiters, then let it propagate
            error = f"{type(exc).__name__}: {exc}"
            self._resolve({cid: (self._unavailable(cid, None, error), None) for cid in pending}, out)
            raise

    def _resolve(self, answers: dict[str, tuple[dict, Optional[float]]], out: dict[str, dict]) -> None:
        """Cache each (decision, expires at) (None: the fail-closed back-off from now) and wake
        the threads waiting for them."""
        now = self.clock()
        with self._lock:
            for cid, (decision, expires) in answers.items():
                if expires is None:
                    expires = now + self.unavailable_backoff_s
                if expires > now:
                    self._cache[cid] = (expires, decision)
                else:
                    self._cache.pop(cid, None)
                out[cid] = decision
                flight = self._inflight.pop(cid, None)
                if flight is not None:
                    flight.decision = decision
                    flight.done.set()
            if len(self._cache) > self._purge_at:
                for cid in [c for c, (exp, _) in self._cache.items() if exp <= now]:
                    del self._cache[cid]
                self._purge_at = max(4096, 2 * len(self._cache))

    # --- requests -------------------------------------------------------------------------------
    def _fetch_one(self, cid: str) -> dict[str, tuple[dict, Optional[float]]]:
        started = self.clock()
        answer = self._request("GET", self.endpoint + SINGLE_PATH.format(quote(cid, safe="")), None)
        if answer.status != 200:
            return {cid: (self._failed(cid, answer), None)}
        problem = f"HTTP 200: {answer.error}" if answer.error else self._check(answer.body, cid)
        if problem:
            return {cid: (self._unavailable(cid, 200, problem), None)}
        return {cid: (answer.body, self._expires(started, answer, answer.body))}

    def _fetch_chunk(self, chunk: list[str]) -> dict[str, tuple[dict, Optional[float]]]:
        started = self.clock()
        body = json.dumps({"campaign_ids": chunk}, separators=(",", ":")).encode("utf-8")
        answer = self._request("POST", self.endpoint + BATCH_PATH, body)
        if answer.status == 400:  # one bad id refuses the batch: ask each campaign on its own
            return self._one_by_one(chunk)
        if answer.status != 200:
            return {cid: (self._failed(cid, answer), None) for cid in chunk}
        got = answer.body.get("decisions") if isinstance(answer.body, dict) else None
        if not isinstance(got, list) or len(got) != len(chunk):
            problem = f"HTTP 200: {answer.error}" if answer.error else f"HTTP 200 without {len(chunk)} decisions"
            return {cid: (self._unavailable(cid, 200, problem), None) for cid in chunk}
        out: dict[str, tuple[dict, Optional[float]]] = {}
        for cid, decision in zip(chunk, got):
            problem = self._check(decision, cid)
            out[cid] = ((self._unavailable(cid, 200, problem), None) if problem
                        else (decision, self._expires(started, answer, decision)))
        return out

    def _one_by_one(self, chunk: list[str]) -> dict[str, tuple[dict, Optional[float]]]:
        """GET each campaign of a refused batch. A 4xx stops that campaign only; once the API
        does not answer (or answers 5xx), the rest of the chunk is stopped with the same error
        rather than waiting out one timeout per campaign."""
        out: dict[str, tuple[dict, Optional[float]]] = {}
        for k, cid in enumerate(chunk):
            out.update(self._fetch_one(cid))
            decision = out[cid][0]
            status = decision.get("http_status", 200) if decision.get("reason") == UNAVAILABLE else 200
            if status is None or status >= 500:
                for rest in chunk[k + 1:]:
                    out[rest] = (self._unavailable(rest, status, decision["error"]), None)
                break
        return out

    def _request(self, method: str, url: str, body: Optional[bytes]) -> _Answer:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            if self.sign is not None:
                signed = self.sign(method, url, headers, body)
                if signed is not None:  # None: the signer added its headers in place
                    headers = dict(signed)
            resp = self.http.request(method, url, body=body, headers=headers,
                                     timeout=urllib3.Timeout(total=self.timeout_s),
                                     retries=False, redirect=False)
        except Exception as exc:  # noqa: BLE001 - unreachable, timeout, a signer that failed
            return _Answer(None, None, None, f"{type(exc).__name__}: {exc}")
        try:
            parsed = json.loads(resp.data) if resp.data else None
        except ValueError:
            parsed, error = None, "the body is not JSON"
        else:
            error = None
        max_age = parse_max_age(resp.headers.get("Cache-Control"))
        if max_age is not None:  # minus the time it already spent in a shared cache
            age = (resp.headers.get("Age") or "").strip()
            if age.isascii() and age.isdigit():
                max_age = max(0.0, max_age - int(age))
        return _Answer(resp.status, parsed, max_age, error)

    # --- answers --------------------------------------------------------------------------------
    def _expires(self, started: float, answer: _Answer, decision: dict) -> float:
        """When a good decision stops being usable: from when its request was sent (the
        conservative end), for the answer's max-age, else the decision's valid_for_ms, capped
        by max_age_s."""
        ttl = answer.max_age_s
        if ttl is None:
            valid = decision.get("valid_for_ms")
            ttl = valid / 1000.0 if _number(valid) and valid > 0 else 0.0
        if self.max_age_s is not None:
            ttl = min(ttl, self.max_age_s)
        return started + ttl

    @staticmethod
    def _check(decision: Any, cid: str) -> Optional[str]:
        """Why an answer is not a usable decision for `cid` (None: it is)."""
        if not isinstance(decision, dict):
            return "HTTP 200 without a JSON decision"
        if decision.get("campaign_id") != cid:
            return f"the answer is for campaign {decision.get('campaign_id')!r}"
        kind = decision.get("decision")
        if kind not in DECISIONS:
            return f"unknown decision {kind!r}"
        fraction = decision.get("serve_fraction")
        if kind == THROTTLE and not (_number(fraction) and 0.0 <= fraction <= 1.0):
            return f"throttle without a serve_fraction in 0..1: {fraction!r}"
        return None

    def _failed(self, cid: str, answer: _Answer) -> dict:
        if answer.status is None:
            return self._unavailable(cid, None, answer.error)
        text = answer.body.get("error") if isinstance(answer.body, dict) else None
        return self._unavailable(cid, answer.status,
                                 f"HTTP {answer.status}: {text}" if text else f"HTTP {answer.status}")

    def _unavailable(self, cid: str, status: Optional[int], error: Optional[str]) -> dict:
        """The fail-closed decision: stop, because no usable answer came."""
        return {"campaign_id": cid, "decision": STOP, "serve_fraction": 0.0, "reason": UNAVAILABLE,
                "http_status": status, "error": error or "no answer",
                "valid_for_ms": int(self.unavailable_backoff_s * 1000)}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
