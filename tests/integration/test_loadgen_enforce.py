"""The load generator as the ad server against the local stack's ingest with click_token_mode
enforce, over HTTP (no Flink job, sink, archive or billing here): every generated click is
accepted and on the clicks stream with its token's fields (ids, price, impression_id,
issued_at), the click links are redirected to their landing URL and recorded, every forged
token is refused with its reason (POST and link), and the reference verdicts of the records as
ingest stored them (real ingest times) equal the oracle's over the generator's truth: the load's
construction holds at send time, whatever the stream then makes of it."""
from __future__ import annotations

import time

import pytest

from common import ivt
from common.config import IngestSettings
from local.oracle import click_verdicts
from local.readback import click_token_keys, read_stream
from local.stack import LocalStack, StackOptions
from tools.loadgen import TOO_FAST, LoadSpec, generate
from tools.sender import send_links, send_load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    options = StackOptions(flink=False, sink=False, archive=False, glue=False,
                           state_dir=tmp_path_factory.mktemp("state"),
                           settings=IngestSettings(click_token_mode="enforce"))
    with LocalStack(options) as s:
        yield s


def test_the_generated_load_under_enforce(stack):
    url = stack.api.url
    keys = click_token_keys(stack.names.click_token_secret)
    spec = LoadSpec(clicks=600, ads=12, users=300, seed=9, links=3, late_count=3, span_s=600)
    load = generate(spec, end_ms=int(time.time() * 1000), keys=keys)

    report = send_load(url, load.sends, batch_size=50, concurrency=3, progress=False, prepare=load.prepare)
    posted = len({p["click_id"] for p in load.sends})
    assert posted == spec.clicks - spec.links
    assert report.outcomes == {"accepted": posted, "duplicate": load.duplicates}, report.rejected_reasons
    links = send_links(url, load.links)
    assert {cid: answer for cid, answer in links.answers.items()} == {
        link["click_id"]: (302, link["landing_url"]) for link in load.links}
    assert load.settle_links(links.link_times) == [] and len(load.truth) == spec.clicks

    forged = send_load(url, [f.payload for f in load.forged], batch_size=100, concurrency=1, progress=False)
    assert {cid: [r["reason"] for r in reasons] for cid, reasons in forged.rejected.items()} == {
        f.payload["click_id"]: [f.reason] for f in load.forged}
    forged_links = send_links(url, [{"click_id": f.kind, "token": f.payload["token"],
                                     "user_agent": f.payload["user_agent"]}
                                    for f in load.forged if f.link_status is not None], minute_margin_s=0)
    assert forged_links.answers == {f.kind: (f.link_status, f.reason) for f in load.forged
                                    if f.link_status is not None}

    records = [r for recs in read_stream(stack.names.clicks_stream).values() for r in recs]
    by_id = {r["click_id"]: r for r in records}
    assert len(records) == len(by_id) == spec.clicks and set(by_id) == {c["click_id"] for c in load.truth}
    floor_ms = ivt.IvtConfig().min_click_delay_ms
    for c in load.truth:
        r = by_id[c["click_id"]]
        assert (r["ad_id"], r["campaign_id"], r["advertiser_id"], r["cost_micros"], r["impression_id"]) == (
            c["ad_id"], c["campaign_id"], c["advertiser_id"], int(c["cost"] * 1_000_000), c["impression_id"])
        assert (r["ip"], r["user_agent"], r["user_id"]) == (c["ip"], c["user_agent"], c["user_id"]), c["kind"]
        if c["kind"] == TOO_FAST:  # signed as it went out: issued less than 1 s before ingest
            assert r["ingest_time"] - r["issued_at"] < floor_ms
        else:
            assert r["issued_at"] == c["issued_at"] <= r["ingest_time"] - floor_ms
    assert click_verdicts(records) == click_verdicts(load.truth)
