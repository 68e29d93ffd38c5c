"""common.ivt: each IVT rule against hand-computed verdicts, order independence, the data files
against their PROVENANCE.md, and the UA patterns' semantics in java.util.regex (when a JDK is on
PATH)."""
from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from common import ivt
from common.ivt import (BOT_UA, DATACENTER_IP, IMPRESSION_REPEAT, INVALID, IP_BURST, SUSPECT,
                        TOO_FAST, USER_REPEAT, VALID, IvtConfig, Verdict)

T0 = 1_795_000_000_000  # a whole second (and a whole 10 s)
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0.0.0 Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HUMAN_IP = "198.51.100.7"  # TEST-NET-2: in no data-centre range
OK = Verdict(VALID, ())


def click(cid: str, dt: int = 0, **over):
    """A click that every rule passes, at T0 + dt, changed by `over`."""
    base = {"click_id": cid, "ad_id": f"ad-{cid}", "user_id": f"u-{cid}", "ip": HUMAN_IP,
            "user_agent": CHROME, "event_time": T0 + dt, "ingest_time": T0 + dt + 50,
            "impression_id": f"imp-{cid}", "issued_at": T0 + dt - 5_000}
    base.update(over)
    return base


def ips(n: int) -> list[str]:
    return [f"198.51.100.{i}" for i in range(n)]


# --- each rule ----------------------------------------------------------------------------------
def test_bot_ua():
    got = ivt.evaluate([click("g", user_agent=GOOGLEBOT), click("c"), click("n", user_agent=None),
                        click("curl", user_agent="curl/8.4.0"),
                        click("sp", user_agent=" curl/8.4.0")])  # ^curl is anchored
    assert got == {"g": Verdict(INVALID, (BOT_UA,)), "c": OK, "n": OK,
                   "curl": Verdict(INVALID, (BOT_UA,)), "sp": OK}


def test_bot_ua_classes_are_ascii_as_in_java():
    # 'BlogTraffic\/\d\.\d+ Feed-Fetcher': Java's \d is ASCII, so Arabic-Indic digits do not match
    got = ivt.evaluate([click("a", user_agent="BlogTraffic/1.2 Feed-Fetcher"),
                        click("u", user_agent="BlogTraffic/\u0663.\u0664 Feed-Fetcher")])
    assert got == {"a": Verdict(INVALID, (BOT_UA,)), "u": OK}


def test_datacenter_ip():
    # datacenter_ipv4.csv: 3.0.0.0,3.1.255.255,Amazon AWS; next range starts at 3.8.0.0
    got = ivt.evaluate([click("first", ip="3.0.0.0"), click("last", ip="3.1.255.255"),
                        click("after", ip="3.2.0.0"), click("mapped", ip="::ffff:3.0.0.1"),
                        click("v6", ip="2001:db8::1"), click("none", ip=None),
                        click("junk", ip="not-an-ip"), click("human")])
    dc = Verdict(SUSPECT, (DATACENTER_IP,))
    assert got == {"first": dc, "last": dc, "after": OK, "mapped": dc, "v6": OK, "none": OK,
                   "junk": OK, "human": OK}


def test_ip_burst_more_than_threshold_in_one_fixed_second_across_ads():
    ip = "198.51.100.99"
    eleven = [click(f"b{i}", i * 99, ip=ip) for i in range(11)]  # T0 .. T0+990, 11 ads
    ten = [click(f"t{i}", 5_000 + i * 99, ip=ip) for i in range(10)]  # another second, 10 clicks
    # 6 in [T0+9s, T0+10s) and 5 in [T0+10s, ...): 11 within 1 s but split by the fixed buckets
    split = [click(f"s{i}", 9_990 + i * 2, ip=ip) for i in range(11)]
    others = [click(f"o{i}", i, ip=x) for i, x in enumerate(ips(20))]  # many ips, same second
    got = ivt.evaluate(eleven + ten + split + others)
    burst = Verdict(SUSPECT, (IP_BURST,))
    assert {c["click_id"]: got[c["click_id"]] for c in eleven} == {f"b{i}": burst for i in range(11)}
    assert all(got[c["click_id"]] == OK for c in ten + split + others)


def test_ip_burst_threshold_is_configurable_and_null_ip_never_bursts():
    batch = [click(f"x{i}", i, ip=None) for i in range(30)] + [click(f"y{i}", i) for i in range(3)]
    got = ivt.evaluate(batch, IvtConfig(burst_threshold=2))
    assert [got[f"x{i}"] for i in range(30)] == [OK] * 30
    assert [got[f"y{i}"] for i in range(3)] == [Verdict(SUSPECT, (IP_BURST,))] * 3


def test_impression_repeat_first_by_event_time_then_ingest_time_then_click_id():
    batch = [click("a", 100, impression_id="imp"),
             click("c", 50, impression_id="imp", ingest_time=T0 + 500),
             click("b", 50, impression_id="imp", ingest_time=T0 + 500),  # ties c: b < c wins
             click("d", 50, impression_id="imp", ingest_time=None),  # null ingest sorts last
             click("aa", 50, impression_id="imp", ingest_time=T0 + 700),  # ingest before id
             click("e", 40, impression_id="imp", ingest_time=T0 + 600),  # ... event_time first
             click("z", 40, impression_id=None)]
    got = ivt.evaluate(batch, IvtConfig(rules={IMPRESSION_REPEAT}))
    rep = Verdict(INVALID, (IMPRESSION_REPEAT,))
    assert got == {"e": OK, "a": rep, "aa": rep, "b": rep, "c": rep, "d": rep, "z": OK}
    got = ivt.evaluate([c for c in batch if c["click_id"] != "e"], IvtConfig(rules={IMPRESSION_REPEAT}))
    assert got == {"b": OK, "a": rep, "aa": rep, "c": rep, "d": rep, "z": OK}


def test_too_fast_uses_ingest_time_minus_issued_at():
    got = ivt.evaluate([click("f", issued_at=T0 + 50 - 999), click("ok", issued_at=T0 + 50 - 1_000),
                        click("neg", issued_at=T0 + 60_000), click("none", issued_at=None),
                        click("noingest", ingest_time=None, issued_at=T0),
                        click("slowclient", event_time=T0 - 10_000, issued_at=T0 - 500)])
    fast = Verdict(INVALID, (TOO_FAST,))
    assert got == {"f": fast, "ok": OK, "neg": fast, "none": OK, "noingest": OK,
                   "slowclient": fast}  # a client event_time 10 s earlier does not help


def test_user_repeat_per_user_ad_fixed_window():
    u = {"user_id": "u1", "ad_id": "ad-1"}
    got = ivt.evaluate([click("w", 0, **u), click("r", 9_999, **u), click("n", 10_000, **u),
                        click("other_ad", 1, user_id="u1", ad_id="ad-2")])
    assert got == {"w": OK, "r": Verdict(SUSPECT, (USER_REPEAT,)), "n": OK, "other_ad": OK}


def test_reasons_all_listed_in_canonical_order_and_worst_tier_wins():
    same = {"impression_id": "imp", "user_id": "u", "ad_id": "ad"}
    got = ivt.evaluate([click("first", 0, **same),
                        click("bad", 1, ip="3.0.0.9", user_agent=GOOGLEBOT, **same)])
    assert got["first"] == OK
    assert got["bad"] == Verdict(INVALID, (BOT_UA, IMPRESSION_REPEAT, DATACENTER_IP, USER_REPEAT))
    assert ivt.encode_reasons(got["bad"].reasons) == "bot_ua,impression_repeat,datacenter_ip,user_repeat"
    assert not got["bad"].billable and got["first"].billable
    only_suspect = ivt.evaluate([click("s", ip="3.0.0.9")])["s"]
    assert only_suspect == Verdict(SUSPECT, (DATACENTER_IP,)) and not only_suspect.billable


def test_rules_can_be_switched_off_and_config_is_checked():
    bot = [click("g", user_agent=GOOGLEBOT, ip="3.0.0.1")]
    assert ivt.evaluate(bot, IvtConfig(rules=set(ivt.REASONS) - {BOT_UA}))["g"] == \
        Verdict(SUSPECT, (DATACENTER_IP,))
    assert ivt.evaluate(bot, IvtConfig(rules=()))["g"] == OK
    for bad in ({"rules": {"nope"}}, {"burst_threshold": 0}, {"burst_window_ms": 7_000},
                {"user_repeat_window_ms": 0}, {"min_click_delay_ms": -1}):
        with pytest.raises(ValueError):
            IvtConfig(**bad)


def test_defaults_shared_with_the_schema():
    from common import schema
    cfg = IvtConfig()
    assert cfg.burst_threshold == schema.default("ivt_burst_threshold") == 10
    assert cfg.user_repeat_window_ms == schema.default("repeat_window_s") * 1000 == 10_000
    assert (cfg.burst_window_ms, cfg.min_click_delay_ms) == (1_000, 1_000)
    assert cfg.rules == set(ivt.REASONS) and set(ivt.TIER) == set(ivt.REASONS)


def test_duplicate_click_ids_and_missing_event_time_are_refused():
    with pytest.raises(ValueError, match="twice"):
        ivt.evaluate([click("a"), click("a")])
    with pytest.raises(ValueError, match="required"):
        ivt.evaluate([click("a", event_time=None)])


# --- order independence -----------------------------------------------------------------------
def _mixed_batch(rng: random.Random, n: int = 400) -> list[dict]:
    uas = [CHROME, GOOGLEBOT, None, "curl/8.4.0", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0)"]
    pool_ips = ips(4) + ["3.0.0.5", None, "2001:db8::1"]
    out = []
    for i in range(n):
        dt = rng.randrange(0, 25_000)
        out.append(click(f"c{i:04d}", dt, ip=rng.choice(pool_ips), user_agent=rng.choice(uas),
                         user_id=f"u{rng.randrange(5)}", ad_id=f"ad{rng.randrange(3)}",
                         impression_id=rng.choice([None, *[f"imp{k}" for k in range(30)]]),
                         event_time=T0 + rng.choice([dt, 1_000, 1_000]),  # many ties
                         ingest_time=rng.choice([None, T0 + dt + rng.randrange(0, 3_000)]),
                         issued_at=rng.choice([None, T0 + dt - rng.randrange(0, 3_000)])))
    return out


def test_shuffled_input_gives_identical_verdicts():
    rng = random.Random(17)
    batch = _mixed_batch(rng)
    expected = ivt.evaluate(batch)
    assert {v.verdict for v in expected.values()} == {VALID, SUSPECT, INVALID}
    assert {r for v in expected.values() for r in v.reasons} == set(ivt.REASONS)
    for _ in range(5):
        shuffled = batch[:]
        rng.shuffle(shuffled)
        assert ivt.evaluate(shuffled) == expected


# --- the data against PROVENANCE.md -------------------------------------------------------------
PROVENANCE = (ivt.DATA_DIR / "PROVENANCE.md").read_text()


def _section(title: str) -> str:
    return PROVENANCE.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _number(section: str, name: str) -> int:
    return int(re.search(rf"\b{name}: (\d+)", section).group(1))


def _sha(section: str) -> str:
    return re.search(r"sha256: ([0-9a-f]{64})", section).group(1)


def test_bot_patterns_as_provenance_says_and_equal_to_the_pinned_package():
    sec = _section("crawler_user_agents.json")
    patterns = ivt.load_bot_patterns()
    assert len(patterns) == _number(sec, "patterns") == 1504 and len(set(patterns)) == 1504
    assert _number(sec, "excluded") == 0
    assert hashlib.sha256(ivt.BOT_PATTERNS_FILE.read_bytes()).hexdigest() == _sha(sec)
    crawleruseragents = pytest.importorskip("crawleruseragents")  # requirements/dev.txt pins it
    from importlib.metadata import version
    assert f"`crawler-user-agents` {version('crawler-user-agents')}" in sec
    data = crawleruseragents.CRAWLER_USER_AGENTS_DATA
    assert patterns == tuple(e["pattern"] for e in data)
    # every listed instance is caught by its own pattern under our semantics (re.ASCII, search)
    missed = [(e["pattern"], i) for e in data for i in e["instances"]
              if not re.search(e["pattern"], i, re.ASCII)]
    assert missed == []


def test_bot_patterns_use_no_construct_that_differs_in_java():
    constructs = {"possessive": r"(?<!\\)[*+?}]\+", "atomic": r"\(\?>", "lookaround": r"\(\?<?[=!]",
                  "inline flags / named groups": r"\(\?[a-zP]", "nested class": r"(?<!\\)\[[^\]]*(?<!\\)\[",
                  "class intersection": r"&&", "\\A \\Z \\z \\G \\h \\R \\p": r"\\[AZzGhRpPXNk]",
                  "{,n} (Python only)": r"\{,", "non-ASCII": r"[^\x00-\x7f]"}
    found = {name: [p for p in ivt.load_bot_patterns() if re.search(rx, p)]
             for name, rx in constructs.items()}
    assert found == {name: [] for name in constructs}


def test_mainstream_browsers_are_not_bots():
    browsers = [CHROME,
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
                "Gecko) Version/17.4 Safari/605.1.15",
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
                "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/124.0.6367.82 Mobile Safari/537.36",
                CHROME + " Edg/124.0.2478.67"]
    matcher = ivt.default_bot_matcher()
    assert [matcher.which(b) for b in browsers] == [[]] * len(browsers)


def test_datacenter_ranges_as_provenance_says():
    sec = _section("datacenter_ipv4.csv")
    ranges = ivt.load_datacenter_ranges()  # also checks sorted and non-overlapping
    assert len(ranges) == _number(sec, "ranges") == 3429
    assert sum(last - first + 1 for first, last, _ in ranges) == _number(sec, "addresses")
    assert len({p for *_, p in ranges}) == _number(sec, "providers")
    assert hashlib.sha256(ivt.DATACENTER_FILE.read_bytes()).hexdigest() == _sha(sec)


def test_overlapping_ranges_are_refused(tmp_path):
    f = tmp_path / "dc.csv"
    f.write_text("first_ip,last_ip,provider\n10.0.0.0,10.0.0.255,A\n10.0.0.255,10.0.1.0,B\n")
    with pytest.raises(ValueError, match="overlapping"):
        ivt.load_datacenter_ranges(f)


# --- java.util.regex gives the same matches -------------------------------------------------------
@pytest.mark.skipif(shutil.which("java") is None, reason="no JDK on PATH")
def test_java_regex_matches_exactly_as_python():
    crawleruseragents = pytest.importorskip("crawleruseragents")
    patterns = ivt.load_bot_patterns()
    probes = sorted({i for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA for i in e["instances"]})
    probes += [CHROME, "BlogTraffic/\u0663.\u0664 Feed-Fetcher", "curl/8\n", "x\r\ncurl/1",
               "Googlebot/2.1\u2028", "Mozilla/5.0 (compatible; bingbot/2.0)"]
    stdin = "\n".join([str(len(patterns)), *map(json.dumps, patterns), *map(json.dumps, probes)])
    src = Path(__file__).parent / "ivt_java" / "UaPatternCheck.java"
    run = subprocess.run(["java", str(src)], input=stdin, capture_output=True, text=True,
                         encoding="utf-8", timeout=300, check=True)
    lines = run.stdout.splitlines()
    assert [ln for ln in lines if ln.startswith("ERROR")] == []
    compiled = [re.compile(p, re.ASCII) for p in patterns]
    python = [" ".join(str(k) for k, rx in enumerate(compiled) if rx.search(ua)) or "-"
              for ua in probes]
    diff = [(ua, j, p) for ua, j, p in zip(probes, lines, python) if j != p]
    assert len(lines) == len(probes) and diff == []
