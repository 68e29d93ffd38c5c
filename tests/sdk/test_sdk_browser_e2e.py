"""Issue 18 end to end: the browser SDK in headless Chromium on the example publisher page
(sdk/example: tokens issued per page view by the Python SDK), clicking for real against the local
stack (ingest, Kinesis, the Flink job, the sink, the query API).

Scenarios, one browser profile (so the SDK's localStorage queue carries across page loads):
  batch     three "video" ads reported with trackClick (batched, sent by fetch);
  link      a link ad: the SDK sends the click and the browser follows the link at once;
  beacon    trackClick then an immediate navigation away (the pagehide path: sendBeacon);
  outage    the API is stopped (connections refused): clicks on two page views and a reload,
            then the API comes back and the queue is flushed;
  retried   a batch whose answer is lost (the request reaches the API, the connection is reset
            before the answer): the SDK sends it again, the API says `duplicate`.
Checked against what the page did (the oracle: clicks per ad made by this test): every click is in
the clicks stream exactly once under one click_id, with its ad from the token; every click got a
final answer (accepted, or duplicate after an accepted send); the API's top-K over the window
equals the clicks made per ad. Figures printed: clicks lost / duplicated, click -> request time.

Needs /usr/bin/chromium (Debian package) and the Python playwright driver (requirements/dev.txt;
it drives the system Chromium, never a downloaded browser).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SDK_JS = REPO / "sdk" / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
LANDING = "https://shop.example/**"

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (requirements/dev.txt)")


def build_sdk() -> None:
    if not shutil.which("node"):
        pytest.fail("node is not installed (Node 20 is part of this project's machine)")
    if not (SDK_JS / "node_modules" / "esbuild").is_dir():
        subprocess.run(["npm", "ci", "--prefix", str(SDK_JS), "--no-audit", "--no-fund", "--loglevel=error"],
                       check=True, timeout=600)
    out = subprocess.run(["node", str(SDK_JS / "build.mjs")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    build_sdk()
    from local.flink import flink_available
    from local.moto_server import free_port
    from local.stack import LocalStack, StackOptions
    if not flink_available():
        pytest.fail("the Flink job cannot run here (make setup builds .venv-flink and the job zip)")
    options = StackOptions(state_dir=tmp_path_factory.mktemp("sdk-e2e"), api_port=free_port(),
                           archive=False, glue=False)
    with LocalStack(options) as s:
        yield s


@pytest.fixture(scope="module")
def example(stack):
    from clickagg_sdk import TokenIssuer
    from local.readback import click_token_keys
    spec = importlib.util.spec_from_file_location("clickagg_example_ad_server",
                                                  REPO / "sdk" / "example" / "ad_server.py")
    ad_server = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # a script, not a package
    spec.loader.exec_module(ad_server)
    make_server, serve_in_thread = ad_server.make_server, ad_server.serve_in_thread
    server = make_server(TokenIssuer(click_token_keys(stack.names.click_token_secret)), stack.api.url, port=0)
    url = serve_in_thread(server)
    yield url
    server.shutdown()
    server.server_close()


class PageLog:
    """What the page reported on its console (the example logs the SDK's onSend/onResult)."""

    def __init__(self):
        self.sends: list[dict] = []
        self.results: list[dict] = []
        self.clicks: list[dict] = []  # this test's capture-phase listener: {at, ad}
        self.lines: list[str] = []  # everything, for a failure's message

    def on_console(self, msg) -> None:
        self.lines.append(f"{msg.type}: {msg.text}")
        kind, _, payload = msg.text.partition(" ")
        target = {"clickagg:send": self.sends, "clickagg:result": self.results, "e2e:click": self.clicks}.get(kind)
        if target is not None:
            target.append(json.loads(payload))

    def final_ids(self) -> list[str]:
        """click_ids in the order their first final answer was logged."""
        return list(dict.fromkeys(r["clickId"] for r in self.results))

    def final(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.results:
            out.setdefault(r["clickId"], []).append(r["status"])
        return out


class IngestSpy:
    """Records each POST /v1/public/clicks the ingest function gets: (Sec-Fetch-Mode, click_ids).
    Watches only; the handler runs unchanged."""

    def __init__(self, function):
        self.requests: list[tuple[str | None, list[str]]] = []
        self._invoke = function.invoke
        function.invoke = self

    def __call__(self, event, *args, **kwargs):
        if event.get("path") == "/v1/public/clicks" and event.get("httpMethod") == "POST":
            headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
            try:
                ids = [c.get("click_id") for c in json.loads(event.get("body") or "{}").get("clicks", [])]
            except (ValueError, AttributeError):
                ids = []
            self.requests.append((headers.get("sec-fetch-mode"), ids))
        return self._invoke(event, *args, **kwargs)


# the click time, taken before the SDK's own (document) listener sees the click
CLICK_PROBE = """
window.addEventListener("click", (e) => {
  const el = e.target.closest && e.target.closest("[data-ad]");
  if (el) console.log("e2e:click", JSON.stringify({ at: Date.now(), ad: el.dataset.ad }));
}, true);
"""


def wait_for(predicate, timeout_s: float, what: str, page=None, log: "PageLog | None" = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(200)  # lets the page's events reach us
        else:
            time.sleep(0.2)
    tail = "\n".join(log.lines[-40:]) if log else ""
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}; the page's console:\n{tail}")


def test_browser_clicks_reach_top_k_exactly_once(stack, example):
    from local.apigw import LocalApiGateway
    from local.readback import read_stream

    made: Counter = Counter()  # the oracle: clicks this test made, per ad
    spy = IngestSpy(stack.ingest)
    log = PageLog()
    lost_answers = {"n": 0}
    with playwright_api.sync_playwright() as pw:
        # the browser's own user agent (a flag): Playwright's per-context override (CDP) does not
        # reach requests that outlive their page (keepalive, beacons), seen here: those went out
        # with HeadlessChrome's or none
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--user-agent={DESKTOP_UA}"])
        context = browser.new_context()
        context.add_init_script(CLICK_PROBE)
        context.route(LANDING, lambda route: route.fulfill(status=200, content_type="text/html",
                                                           body="<h1>landing page</h1>"))
        page = context.new_page()
        page.on("console", log.on_console)
        page.on("pageerror", lambda exc: log.lines.append(f"pageerror: {exc}"))

        scenario_of_click: list[str] = []  # per click made, in order

        def click(ad: str, scenario: str) -> None:
            page.click(f'[data-ad="{ad}"]')
            made[ad] += 1
            scenario_of_click.append(scenario)

        def stored() -> set[str]:
            """click_ids still in the page's queue (an item leaves it only on a final answer)."""
            return set(page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('clickagg:q:'))"
                                     ".map(k => k.slice(11))"))

        def finished() -> set[str]:
            """Clicks with a final answer: logged as accepted/duplicate, or sent and gone from the
            queue (an answer that came while its page was unloading: its log can be lost)."""
            logged = {cid for cid, statuses in log.final().items()
                      if any(s in ("accepted", "duplicate") for s in statuses)}
            sent = {cid for s in log.sends for cid in s["clickIds"]}
            return logged | (sent - stored())

        def settled() -> bool:
            """Every click made has a click_id with a final answer."""
            sent = {cid for s in log.sends for cid in s["clickIds"]}
            done = finished()
            return len(done) == sum(made.values()) and sent <= done

        # batch: trackClick x3, one request after the flush interval
        page.goto(example)
        for ad in ("ad-tea", "ad-flights", "ad-tea"):
            click(ad, "batch")
        wait_for(settled, 30, "the batched clicks' answers", page, log)

        # link: the click is sent and the navigation happens at once
        click("ad-shoes", "link")
        page.wait_for_url(LANDING)
        page.goto(example)  # a new page view: anything unanswered is sent again from storage
        wait_for(settled, 30, "the link click's answer", page, log)

        # beacon: a reported click, then leaving before the batch timer fires
        click("ad-flights", "beacon")
        page.goto("https://shop.example/elsewhere")
        page.goto(example)
        wait_for(settled, 30, "the beaconed click's answer (resent on the next page view)", page, log)
        beaconed = log.final_ids()[-1]
        # it arrived first by sendBeacon (Sec-Fetch-Mode no-cors; the SDK's fetch is cors), before
        # the next page view sent it again
        assert [mode for mode, ids in spy.requests if beaconed in ids][:2] == ["no-cors", "cors"], spy.requests

        # outage: the API refuses connections during two page views and a reload
        port = int(stack.api.url.rsplit(":", 1)[1])
        routes = stack.api.routes
        stack.api.stop()
        click("ad-tea", "outage")
        click("ad-bikes", "outage")  # a link: the browser leaves while the API is down
        page.wait_for_url(LANDING)
        page.goto(example)
        click("ad-flights", "outage")
        page.reload()
        click("ad-tea", "outage")
        page.wait_for_timeout(3000)  # retries fail meanwhile
        assert not settled()
        stack.api = LocalApiGateway(routes, port=port).start()
        wait_for(settled, 90, "the queued clicks to be flushed after the outage", page, log)

        # retried: the first request reaches the API but its answer is lost
        def lose_first_answer(route):
            if lost_answers["n"] == 0:
                lost_answers["n"] += 1
                # the API accepts the batch (forwarded by Playwright's own client, with the
                # browser's headers and user agent: the request's headers as Playwright reports
                # them lack it) ...
                route.fetch(headers={**route.request.all_headers(), "user-agent": DESKTOP_UA})
                route.abort("connectionreset")  # ... and the page never hears it
            else:
                route.continue_()

        page.route(f"{stack.api.url}/v1/public/clicks", lose_first_answer)
        click("ad-tea", "retried")
        click("ad-flights", "retried")
        wait_for(settled, 60, "the retried batch's answer", page, log)
        page.unroute(f"{stack.api.url}/v1/public/clicks")
        done = finished()
        browser.close()

    # --- what the page saw ----------------------------------------------------------------------
    final = log.final()
    total = sum(made.values())
    assert lost_answers["n"] == 1
    assert len(done) == total, (len(done), total)
    first_final = {cid: next(s for s in statuses if s in ("accepted", "duplicate", "rejected"))
                   for cid, statuses in final.items()}
    assert all(s in ("accepted", "duplicate") for s in first_final.values()), first_final
    # the retried batch and the beacon/outage resends come back duplicate: their first send landed
    assert Counter(first_final.values())["duplicate"] >= 2, first_final

    # --- the clicks stream: each click exactly once, with its ad from the token -----------------
    records = [r for rs in read_stream(stack.names.clicks_stream).values() for r in rs]
    ids = Counter(r["click_id"] for r in records)
    duplicated = sum(n - 1 for n in ids.values())
    lost = total - len(set(ids) & done)
    print(f"\nSDK e2e: {total} clicks made; stream {len(records)} records; lost {lost}, duplicated {duplicated}")
    assert (lost, duplicated) == (0, 0)
    assert set(ids) == done
    assert Counter(r["ad_id"] for r in records) == made
    assert {r["user_agent"] for r in records} == {DESKTOP_UA}, [
        (r["click_id"], r["ad_id"], r["user_agent"], r["event_time"]) for r in records if r["user_agent"] != DESKTOP_UA]

    # --- each click -> its click_id (UUIDv7s sort by creation time, so in click order), the ad
    # the stream recorded for it equals the ad clicked; then click -> its first request --------
    assert len(log.clicks) == total == len(scenario_of_click)
    by_id = {r["click_id"]: r for r in records}
    in_click_order = sorted(by_id, key=lambda cid: (cid[:8] + cid[9:13] + cid[14:18]))  # ms, then rand_a
    assert [by_id[cid]["ad_id"] for cid in in_click_order] == [c["ad"] for c in log.clicks]
    first_send = {}
    for s in log.sends:
        for cid in s["clickIds"]:
            first_send.setdefault(cid, s)
    delays: dict[str, list[int]] = {}
    for cid, c, scenario in zip(in_click_order, log.clicks, scenario_of_click):
        if scenario in ("batch", "link", "retried") and cid in first_send:
            s = first_send[cid]
            delays.setdefault(f"{scenario} ({s['transport']})", []).append(s["at"] - c["at"])
    for what, values in delays.items():
        print(f"click -> request, {what}: n={len(values)} median {statistics.median(values):.0f} ms "
              f"max {max(values):.0f} ms")
    print(f"requests to the API by Sec-Fetch-Mode: {dict(Counter(mode for mode, _ in spy.requests))}")

    # --- the top-K the API answers, once the Flink job has caught up -----------------------------
    def top() -> dict[str, int] | None:
        answer = requests.get(f"{stack.api.url}/v1/top", params={"last": "30m", "k": 20, "metric": "clicks"},
                              timeout=10).json()
        got = {item["ad_id"]: int(item["total"]) for item in answer.get("items", [])}
        return got if got == dict(made) else None

    try:
        wait_for(top, 120, "top-K to equal the clicks made per ad")
    except pytest.fail.Exception:
        answer = requests.get(f"{stack.api.url}/v1/top", params={"last": "30m", "k": 20}, timeout=10).json()
        raise AssertionError(f"top-K {answer.get('items')} != made {dict(made)}")
