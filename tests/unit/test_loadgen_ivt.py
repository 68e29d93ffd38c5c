"""tools.loadgen plays the ad server (issue 17): the mix has exactly the counts its spec asks
for, each kind of click has exactly the IVT reasons its name says (and normal clicks none: no
accidental bot, data-centre address, burst or repeat), the tokens verify with the key set and
carry the catalog's price, repeats come later (event time and send order) than their
originals, too-fast tokens stay too fast whenever they are sent, forged tokens are refused with
their reasons; and local.oracle's figures on a small hand-made load."""
from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import pytest

from common import ivt
from common.click_token import StaticKeys, TokenRejected, VerifyPolicy, verify
from local.oracle import METRICS, click_verdicts, realtime_truth, totals, verdict_totals
from tools import loadgen
from tools.loadgen import (BOT, BURST, DATACENTER, EXPECTED_REASONS, IMPRESSION_REPEAT, LATE, LINK,
                           NORMAL, TOKEN_REASONS, TOO_FAST, USER_REPEAT, LoadSpec, generate)

END_MS = 1_795_000_000_123  # not a whole second: nothing may depend on that
KEYS = StaticKeys({"k1": bytes(range(32)), "k2": bytes(range(32, 64))}, "k2")
SPEC = LoadSpec(clicks=3000, ads=30, users=600, late_count=7, links=5, seed=5, span_s=900,
                forged_per_kind=2)
POLICY = VerifyPolicy()


@pytest.fixture(scope="module")
def load():
    ld = generate(SPEC, END_MS, keys=KEYS)
    # the link clicks' event time is their arrival: settle them as a sender would
    problems = ld.settle_links({l["click_id"]: (END_MS + 60_000 + i, END_MS + 60_000 + i + 30)
                                for i, l in enumerate(ld.links)})
    assert problems == []
    return ld


def by_kind(load) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for c in load.truth:
        out[c["kind"]].append(c)
    return out


# --- the mix ------------------------------------------------------------------------------------
def test_the_mix_has_exactly_the_counts_of_the_spec(load):
    kinds = load.kinds()
    want = SPEC.counts()
    assert want == {BOT: 60, DATACENTER: 60, IMPRESSION_REPEAT: 30, USER_REPEAT: 90, TOO_FAST: 30,
                    LINK: 5, LATE: 7}
    for kind, n in want.items():
        assert kinds[kind] == n, kind
    assert len(load.burst_sizes) == SPEC.ip_bursts
    assert all(SPEC.burst_size[0] <= s <= SPEC.burst_size[1] for s in load.burst_sizes)
    assert kinds[BURST] == sum(load.burst_sizes)
    assert len(load.truth) == SPEC.clicks == sum(kinds.values())
    assert kinds[NORMAL] == SPEC.clicks - sum(want.values()) - sum(load.burst_sizes)
    assert len({c["click_id"] for c in load.truth}) == SPEC.clicks
    assert load.duplicates == int(SPEC.clicks * SPEC.duplicate_rate)
    assert len(load.links) == SPEC.links and len(load.late_ids) == SPEC.late_count
    assert Counter(f.kind for f in load.forged) == {k: 2 for k in loadgen.FORGED_KINDS}


def test_each_kind_has_exactly_its_reasons(load):
    """The construction against the reference verdicts, with the token's fields stored
    (enforce) and without them (off / observe: impression_repeat and too_fast cannot fire)."""
    for tokens in (True, False):
        verdicts = click_verdicts(load.truth, tokens=tokens)
        wrong = Counter()
        for c in load.truth:
            want = tuple(r for r in EXPECTED_REASONS[c["kind"]] if tokens or r not in TOKEN_REASONS)
            if verdicts[c["click_id"]].reasons != want:
                wrong[(c["kind"], verdicts[c["click_id"]].reasons)] += 1
        assert not wrong, (tokens, wrong)


def test_no_normal_click_is_accidentally_a_bot_a_datacenter_or_a_burst(load):
    """Plain loops over the truth, with the IVT data but not ivt.evaluate."""
    bots, dcs = ivt.default_bot_matcher(), ivt.default_datacenters()
    people = [c for c in load.truth if c["kind"] not in (BOT, DATACENTER, BURST)]
    is_bot = {ua: bots.matches(ua) for ua in {c["user_agent"] for c in load.truth}}
    assert not [c for c in people if is_bot[c["user_agent"]]]
    assert not [c for c in people if dcs.provider(c["ip"])]
    assert all(is_bot[c["user_agent"]] for c in by_kind(load)[BOT])
    assert all(dcs.provider(c["ip"]) for c in by_kind(load)[DATACENTER])
    per_second = Counter((c["ip"], c["event_time"] // 1000) for c in load.truth)
    threshold = ivt.IvtConfig().burst_threshold
    assert all(per_second[(c["ip"], c["event_time"] // 1000)] <= threshold for c in people)
    # bursts: one address per group, one second, several ads, nobody else on that address
    ips = defaultdict(list)
    for c in load.truth:
        ips[c["ip"]].append(c)
    for c in by_kind(load)[BURST]:
        group = ips[c["ip"]]
        assert {g["kind"] for g in group} == {BURST}
        assert len({g["event_time"] // 1000 for g in group}) == 1 and len(group) > threshold
        assert len({g["ad_id"] for g in group}) > 1
    # a (user, ad, 10 s bucket) holds one click, or a user repeat and its original
    groups = Counter((c["user_id"], c["ad_id"], c["event_time"] // 10_000) for c in load.truth)
    assert sum(n - 1 for n in groups.values()) == SPEC.counts()[USER_REPEAT]
    assert max(groups.values()) == 2


def test_browser_and_crawler_user_agents_are_on_their_side_of_the_list():
    loadgen.check_user_agents()  # raises otherwise
    assert len(set(loadgen.BROWSER_UAS)) >= 10 and len(set(loadgen.BOT_UAS)) >= 10


# --- tokens -------------------------------------------------------------------------------------
def test_every_token_verifies_and_carries_the_catalog_price(load):
    truth = {c["click_id"]: c for c in load.truth}
    at = END_MS / 1000 + 600  # ten minutes after generation
    for p in load.sends:
        c = truth[p["click_id"]]
        item = load.prepare(p, now_s=at)
        claims = verify(item["token"], KEYS, at, policy=POLICY)
        assert (claims.ad_id, claims.campaign_id, claims.advertiser_id) == (
            p["ad_id"], p["campaign_id"], p["advertiser_id"]) == (c["ad_id"], c["campaign_id"], c["advertiser_id"])
        assert claims.price_micros == int(c["cost"] * 1_000_000) == int(float(p["cost"]) * 1_000_000 + 0.5)
        assert claims.impression_id == c["impression_id"]
        if c["kind"] == TOO_FAST:  # signed at send time, so not the generated issued_at
            assert claims.issued_at == int(at) + loadgen.TOO_FAST_AHEAD_S
        else:
            assert claims.issued_at * 1000 == c["issued_at"] <= c["event_time"] - 1000
        assert p["ip"] == c["ip"] and p["user_agent"] == c["user_agent"] and p["user_id"] == c["user_id"]


@pytest.mark.parametrize("late_s", [0, 400, 7200])
def test_too_fast_tokens_are_too_fast_whenever_they_are_sent(load, late_s):
    """Signed at send time: accepted by ingest (issued within its clock skew) and, for any
    answer within TOO_FAST_AHEAD_S of signing, ingest_time - issued_at < 1 s."""
    send_s = END_MS / 1000 + late_s + 0.7
    floor_ms = ivt.IvtConfig().min_click_delay_ms
    fast = {c["click_id"] for c in by_kind(load)[TOO_FAST]}
    for p in load.sends:
        if p["click_id"] not in fast:
            continue
        token = load.prepare(p, now_s=send_s)["token"]
        for latency_s in (0, 1, 60, loadgen.TOO_FAST_AHEAD_S):
            ingest_s = send_s + latency_s
            claims = verify(token, KEYS, ingest_s, policy=POLICY)
            assert int(ingest_s * 1000) - claims.issued_at * 1000 < floor_ms


def test_other_sends_are_not_changed_by_prepare(load):
    fast = {c["click_id"] for c in by_kind(load)[TOO_FAST]}
    assert all(load.prepare(p) is p for p in load.sends if p["click_id"] not in fast)


def test_forged_tokens_are_refused_with_their_reasons(load):
    """Judged as ingest does (docs/click-token.md "Ingest": verify, then the body's bound fields
    against the token's) at a send time after generation."""
    at = END_MS / 1000 + 300
    for f in load.forged:
        token = f.payload.get("token")
        if token is None:
            got = "missing_token"
        else:
            try:
                claims = verify(token, KEYS, at, policy=POLICY)
            except TokenRejected as exc:
                got = exc.reason
            else:
                body = f.payload
                same = (claims.ad_id, claims.campaign_id, claims.advertiser_id, claims.price_micros) == (
                    body["ad_id"], body["campaign_id"], body["advertiser_id"], int(float(body["cost"]) * 1e6 + 0.5))
                got = "valid" if same else "token_mismatch"
        assert got == f.reason, f.kind
        assert not f.payload["click_id"] in {c["click_id"] for c in load.truth}


def test_link_ids_follow_the_spec_as_ingest_derives_them(load):
    from ingest.redirect import click_id_for, stand_in_user_id

    truth = {c["click_id"]: c for c in load.truth}
    for link in load.links:
        c = truth[link["click_id"]]
        claims = verify(link["token"], KEYS, END_MS / 1000 + 60, policy=POLICY)
        assert link["click_id"] == click_id_for(claims.impression_id)
        assert c["user_id"] == stand_in_user_id(loadgen.LOCAL_PEER_IP, link["user_agent"])
        assert c["ip"] == loadgen.LOCAL_PEER_IP and c["user_agent"] == link["user_agent"]
    assert len({l["user_agent"] for l in load.links}) == len(load.links)


def test_settle_links_keeps_only_links_landing_in_a_known_minute():
    ld = generate(dataclasses.replace(SPEC, clicks=400, links=3, late_count=0), END_MS, keys=KEYS)
    a, b, c = (l["click_id"] for l in ld.links)
    minute = (END_MS // 60_000 + 2) * 60_000
    problems = ld.settle_links({a: (minute + 10, minute + 40), b: (minute - 5, minute + 5)})
    assert len(problems) == 2 and b in problems[0] + problems[1] and c in problems[0] + problems[1]
    links = [x for x in ld.truth if x["kind"] == LINK]
    assert [(x["click_id"], x["event_time"]) for x in links] == [(a, minute + 10)]
    assert len(ld.truth) == 398


# --- send order ---------------------------------------------------------------------------------
def test_repeats_come_later_in_event_time_and_in_a_later_request(load):
    first_sent = {}
    for i, p in enumerate(load.sends):
        first_sent.setdefault(p["click_id"], i)
    kinds = by_kind(load)
    by_imp = defaultdict(list)
    for c in load.truth:
        by_imp[c["impression_id"]].append(c)
    for rep in kinds[IMPRESSION_REPEAT]:
        [orig] = [c for c in by_imp[rep["impression_id"]] if c is not rep]
        assert orig["kind"] == NORMAL and orig["user_id"] == rep["user_id"] and orig["ad_id"] == rep["ad_id"]
        assert 0 < rep["event_time"] - orig["event_time"] <= 60_000
        assert rep["event_time"] // 10_000 > orig["event_time"] // 10_000
        assert first_sent[rep["click_id"]] - first_sent[orig["click_id"]] >= SPEC.repeat_gap[0]
        tok = {p["click_id"]: p["token"] for p in load.sends}
        assert tok[rep["click_id"]] == tok[orig["click_id"]]  # the same token clicked again
    groups = defaultdict(list)
    for c in load.truth:
        groups[(c["user_id"], c["ad_id"], c["event_time"] // 10_000)].append(c)
    for rep in kinds[USER_REPEAT]:
        [orig] = [c for c in groups[(rep["user_id"], rep["ad_id"], rep["event_time"] // 10_000)] if c is not rep]
        assert orig["kind"] == NORMAL and orig["event_time"] < rep["event_time"]
        assert orig["impression_id"] != rep["impression_id"]
        assert first_sent[rep["click_id"]] - first_sent[orig["click_id"]] >= SPEC.repeat_gap[0]


def test_late_clicks_last_duplicates_later_links_and_forged_apart(load):
    late = set(load.late_ids)
    assert {p["click_id"] for p in load.sends[-len(late):]} == late
    assert not late & {p["click_id"] for p in load.sends[:-len(late)]}
    seen, dups = set(), []
    for p in load.sends:
        if p["click_id"] in seen:
            dups.append(p["click_id"])
        seen.add(p["click_id"])
    assert sorted(dups) == sorted(load.duplicate_ids)
    links = {l["click_id"] for l in load.links}
    assert seen == {c["click_id"] for c in load.truth} - links


def test_same_seed_same_load():
    a = generate(dataclasses.replace(SPEC, clicks=500, links=2), END_MS, keys=KEYS)
    b = generate(dataclasses.replace(SPEC, clicks=500, links=2), END_MS, keys=KEYS)
    assert a.sends == b.sends and a.links == b.links and a.truth == b.truth


def test_a_short_span_still_has_every_kind():
    """bench/pipeline.py --smoke: 300 clicks over 15 s."""
    ld = generate(LoadSpec(clicks=300, ads=200, span_s=15, seed=99), END_MS)
    assert set(ld.kinds()) == {NORMAL, BOT, DATACENTER, BURST, IMPRESSION_REPEAT, USER_REPEAT, TOO_FAST}
    verdicts = click_verdicts(ld.truth)
    assert all(verdicts[c["click_id"]].reasons == EXPECTED_REASONS[c["kind"]] for c in ld.truth)


def test_plain_spec_has_no_ivt_case_but_user_repeats():
    ld = generate(LoadSpec.plain(clicks=600, ads=20, seed=3), END_MS)
    assert set(ld.kinds()) == {NORMAL, USER_REPEAT}
    assert ld.kinds()[USER_REPEAT] == 18
    verdicts = click_verdicts(ld.truth)
    assert Counter(v.reasons for v in verdicts.values()) == {(): 582, ("user_repeat",): 18}


# --- the oracle on a hand-made load -------------------------------------------------------------
T0 = 1_795_000_020_000  # a whole minute, 7 min into its hour
CHROME = loadgen.BROWSER_UAS[0]
HAND = [
    # click_id, ad, user, ip, ua, dt (ms after T0), cost, impression, issued_at - event_time (ms)
    ("a1", "ad-A", "u1", "198.51.100.1", CHROME, 0, "0.50", "i1", -5_000),
    ("a2", "ad-A", "u1", "198.51.100.1", CHROME, 3_000, "0.50", "i2", -5_000),  # user_repeat of a1
    ("a3", "ad-A", "u2", "198.51.100.2", "curl/8.4.0", 20_000, "0.50", "i3", -5_000),  # bot_ua
    ("a4", "ad-A", "u3", "3.0.0.9", CHROME, 61_000, "0.50", "i4", -5_000),  # datacenter_ip, next minute
    ("b1", "ad-B", "u4", "198.51.100.4", CHROME, 30_000, "1.25", "i5", -5_000),
    ("b2", "ad-B", "u4", "198.51.100.4", CHROME, 45_000, "1.25", "i5", -5_000),  # impression_repeat
    ("b3", "ad-B", "u5", "198.51.100.5", CHROME, 50_000, "1.25", "i6", +100),  # too_fast (issued after)
    ("b4", "ad-B", "u6", "198.51.100.6", "curl/8.4.0", 52_000, "1.25", "i7", -5_000),  # bot_ua (+ late)
]


def hand_clicks() -> list[dict]:
    out = []
    for cid, ad, user, ip, ua, dt, cost, imp, issued in HAND:
        out.append({"click_id": cid, "ad_id": ad, "campaign_id": "cmp", "advertiser_id": "adv",
                    "user_id": user, "ip": ip, "user_agent": ua, "event_time": T0 + dt, "cost": cost,
                    "impression_id": imp, "issued_at": T0 + dt + issued, "ingest_time": T0 + dt + 200})
    return out


def row(clicks, billable, suspect, invalid, cost, billable_cost):
    return dict(zip(METRICS, (clicks, billable, suspect, invalid, cost, billable_cost)))


def test_oracle_on_a_hand_made_load():
    clicks = hand_clicks()
    truth = realtime_truth(clicks, {"b4"})  # b4 is later than the lateness horizon
    m0, m1 = T0, T0 + 60_000
    assert {k: v for k, v in truth.items() if k[1] == "1m"} == {
        ("ad-A", "1m", m0): row(3, 1, 1, 1, 1_500_000, 500_000),
        ("ad-A", "1m", m1): row(1, 0, 1, 0, 500_000, 0),
        ("ad-B", "1m", m0): row(3, 1, 0, 2, 3_750_000, 1_250_000),
    }
    h = T0 - T0 % 3_600_000
    assert truth[("ad-A", "1h", h)] == row(4, 1, 2, 1, 2_000_000, 500_000)
    assert truth[("ad-B", "5m", T0 - T0 % 300_000)] == row(3, 1, 0, 2, 3_750_000, 1_250_000)
    assert totals(truth) == row(7, 2, 2, 3, 5_750_000, 1_750_000)
    assert totals(truth, "1m") == totals(truth, "1h") == totals(truth)
    verdicts = click_verdicts(clicks)
    per_verdict, per_reason = verdict_totals(clicks, verdicts, {"b4"})
    assert per_verdict == {"valid": 2, "suspect": 2, "invalid": 3}
    assert per_reason == {"user_repeat": 1, "bot_ua": 1, "datacenter_ip": 1, "impression_repeat": 1,
                          "too_fast": 1}


def test_oracle_without_stored_tokens_and_with_given_verdicts():
    clicks = hand_clicks()
    # click_token_mode off: impression_id and issued_at are not stored, b2 and b3 are valid
    truth = realtime_truth(clicks, {"b4"}, tokens=False)
    assert truth[("ad-B", "1m", T0)] == row(3, 3, 0, 0, 3_750_000, 3_750_000)
    # one day's clicks with verdicts of the whole load: b2 alone would be the impression's first
    verdicts = click_verdicts(clicks)
    only_b2 = realtime_truth([c for c in clicks if c["click_id"] == "b2"], set(), verdicts=verdicts)
    assert only_b2[("ad-B", "1d", T0 - T0 % 86_400_000)] == row(1, 0, 0, 1, 1_250_000, 0)
    assert realtime_truth([c for c in clicks if c["click_id"] == "b2"], set())[
        ("ad-B", "1d", T0 - T0 % 86_400_000)] == row(1, 1, 0, 0, 1_250_000, 1_250_000)


def test_oracle_counts_a_burst_and_its_window():
    base = hand_clicks()[0]
    burst = [{**base, "click_id": f"n{i}", "user_id": f"nat{i}", "ad_id": f"ad-{i % 3}",
              "impression_id": f"in{i}", "event_time": T0 + 5_000 + i * 80} for i in range(11)]
    edge = [{**c, "click_id": "x" + c["click_id"], "user_id": "x" + c["user_id"],
             "impression_id": "x" + c["impression_id"], "ip": "198.51.100.99",
             "event_time": c["event_time"] - 5_000 + 500} for c in burst]  # 11 across a second boundary
    verdicts = click_verdicts(burst + edge)
    assert {verdicts[c["click_id"]].reasons for c in burst} == {("ip_burst",)}
    assert {verdicts[c["click_id"]].reasons for c in edge} == {()}
    t = totals(realtime_truth(burst[:10], set()))
    assert (t["billable_clicks"], t["suspect_clicks"]) == (10, 0)  # exactly 10 is not a burst
