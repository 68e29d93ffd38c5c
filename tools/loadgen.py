"""Generated click load with a known ground truth. The generator plays the ad server: every
click is for a served impression whose click token (docs/click-token.md) it signs with the key
set it is given (the local stack's: local.readback.click_token_keys), at the ad catalog's price,
through the Python SDK's TokenIssuer (clickagg_sdk, sdk/python) as an ad server would; the click
body carries the token. The traffic mix (each a LoadSpec knob):

  normal             people: a residential-looking IPv4 address each (checked NOT in the
                     data-centre list) and a mainstream browser user agent (checked to match NO
                     crawler pattern); zipf-skewed ads with one hot ad
  bot                declared crawlers / HTTP libraries (user agents that DO match the list)
  datacenter         browsers behind an address inside a data-centre range (VPN, proxy)
  ip_burst           groups of burst_size clicks from one address within one event-time second
                     (epoch-aligned), spread over several ads, each by another user (NAT)
  impression_repeat  the same token clicked again (a new click_id) in a later 10 s bucket (so not
                     a user repeat as well), at most 60 s later, sent in a later request
  user_repeat        the same user + ad again, a new impression, later inside the same 10 s bucket,
                     sent in a later request
  too_fast           a token issued less than 1 s before ingest (see TOO_FAST_AHEAD_S)
  link               a few clicks through GET /v1/c?t=TOKEN (tools.sender.send_links): event time
                     is their arrival, settled after the send (Load.settle_links)
  late               clicks older than the stream's lateness horizon, sent last
plus retried duplicates (the same click_id and fields sent again later) and forged tokens
(Load.forged: refused at ingest, never part of the truth).

Construction guarantees, so that every engine agrees with the reference verdicts
(common/ivt.py) whatever it elects a group's first click by (the stream: arrival order; the
batch: event_time, ingest_time, click_id): each category above has exactly the one reason its
name says and nothing else (tests/unit/test_loadgen_ivt.py checks this against ivt.evaluate);
no two clicks share a (user, ad, 10 s bucket) except a user repeat and its original; no address
is shared except by the clicks of one burst (and the link clicks, which come from the local
API's peer address, at most 10 of them); a repeat has a strictly later event time than its
original and is sent at least `repeat_gap[0]` sends later (more than a sender's requests in
flight; in a load shorter than twice that, half the load later).

The generator only decides *what is sent*; counts are derived from `truth` by oracles
(local.oracle), never by the code under test.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional

from clickagg_sdk import TokenIssuer
from clickagg_sdk.click_token import (ClickClaims, KeyProvider, StaticKeys, b64url_encode,
                                      encode_payload, issue)
from common import ivt

HOT_AD = "ad-0000"
USER_REPEAT_WINDOW_MS = 10_000  # the default repeat_window_s (common.schema), kept apart on purpose
TOKEN_TTL_S = 86_400  # expires_at - issued_at of the tokens the generator issues
# too-fast tokens are issued this far AHEAD of their signing time: ingest accepts a token issued
# up to click_token_clock_skew_s (300 s) in its future, and ingest_time - issued_at stays below
# 1 s (the too_fast floor) for any request ingested within TOO_FAST_AHEAD_S s of signing
TOO_FAST_AHEAD_S = 250
LOCAL_PEER_IP = "127.0.0.1"  # the source address of the local API's clients (the link clicks' ip)

# click kinds (Load.truth[i]["kind"])
NORMAL, BOT, DATACENTER, BURST = "normal", "bot", "datacenter", "ip_burst"
IMPRESSION_REPEAT, USER_REPEAT, TOO_FAST, LINK, LATE = (
    "impression_repeat", "user_repeat", "too_fast", "link", "late")
KINDS = (NORMAL, BOT, DATACENTER, BURST, IMPRESSION_REPEAT, USER_REPEAT, TOO_FAST, LINK, LATE)
# the reasons (common/ivt.py codes) each kind has by construction, when ingest stores the token's
# impression_id and issued_at (click_token_mode enforce) and when it does not (off, observe)
EXPECTED_REASONS: dict[str, tuple[str, ...]] = {
    NORMAL: (), BOT: ("bot_ua",), DATACENTER: ("datacenter_ip",), BURST: ("ip_burst",),
    IMPRESSION_REPEAT: ("impression_repeat",), USER_REPEAT: ("user_repeat",),
    TOO_FAST: ("too_fast",), LINK: (), LATE: (),
}
TOKEN_REASONS = ("impression_repeat", "too_fast")  # need the token's fields on the record

# Mainstream browsers (a person's user agent); none matches a crawler pattern (checked at
# generation). Versions vary so that link clicks can each have their own.
_BROWSER_TEMPLATES = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{m} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_{m}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{m} Safari/605.1.15",
)
BROWSER_UAS = tuple(t.format(v=v, m=v % 7) for v in range(118, 127) for t in _BROWSER_TEMPLATES)
# Real crawler / library user agents; each matches the crawler-user-agents list (checked).
BOT_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36",
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Wget/1.21.4",
    "Go-http-client/1.1",
    "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
)
# first octets of consumer ISPs' blocks (cable, DSL, mobile): addresses that look residential;
# every one drawn is checked against the data-centre list
_RESIDENTIAL_FIRST_OCTETS = (24, 67, 68, 71, 73, 75, 76, 86, 90, 92, 98, 99, 109, 174, 176, 177,
                             179, 181, 186, 187, 189, 190, 201)

# forged tokens: kind -> (POST reason at ingest, GET /v1/c status or None when not a link case)
FORGED_KINDS: dict[str, tuple[str, Optional[int]]] = {
    "tampered_price": ("bad_signature", 403),  # payload's price raised, the MAC kept
    "other_advertiser": ("bad_signature", 403),  # payload's advertiser changed, the MAC kept
    "wrong_key": ("bad_signature", 403),  # signed with a key the key set does not hold, same kid
    "unknown_key": ("unknown_key", 403),  # a key id the key set does not know
    "expired": ("expired_token", 410),  # authentic, expired two days ago
    "issued_in_future": ("invalid_token", 403),  # authentic, issued an hour from now
    "other_ad": ("token_mismatch", None),  # a valid token of ad A with a click body naming ad B
    "missing": ("missing_token", None),  # no token at all
}


@dataclass(frozen=True)
class LoadSpec:
    clicks: int = 10_000  # distinct clicks (the ground truth), every kind included
    ads: int = 100
    hot_ad_share: float = 0.35  # share of the ads drawn that are HOT_AD
    zipf_s: float = 1.2  # skew among the other ads
    users: int = 2_000  # the normal users' pool
    duplicate_rate: float = 0.02  # retried copies: same click_id and fields, sent later
    repeat_rate: float = 0.03  # user repeats: same user + ad again in the same 10 s bucket
    late_count: int = 0  # clicks older than the lateness horizon, sent last
    late_by_s: int = 3600  # how far behind the newest event time those are
    span_s: int = 1800  # event times cover [end - span, end]
    iso_share: float = 0.2  # share of timestamps sent as ISO-8601 instead of epoch ms
    seed: int = 42
    # --- the IVT mix (shares of `clicks`, or counts) -------------------------------------------
    bot_rate: float = 0.02
    datacenter_rate: float = 0.02
    ip_bursts: int = 3  # groups; each burst_size[0]..burst_size[1] clicks, one address, one second
    burst_size: tuple[int, int] = (12, 20)
    impression_repeat_rate: float = 0.01
    too_fast_rate: float = 0.01
    links: int = 0  # GET /v1/c clicks: only for callers that send them (tools.sender.send_links)
    forged_per_kind: int = 1  # Load.forged: this many of each FORGED_KINDS (never in `sends`)
    repeat_gap: tuple[int, int] = (400, 800)  # sends between an original and its repeat

    @classmethod
    def plain(cls, **overrides) -> "LoadSpec":
        """The mix without IVT cases: normal clicks, user repeats, duplicates, late clicks (what
        the load was before issue 17; for checks of engines that bill without the IVT rules)."""
        return cls(**{**dict(bot_rate=0.0, datacenter_rate=0.0, ip_bursts=0,
                             impression_repeat_rate=0.0, too_fast_rate=0.0, links=0), **overrides})

    def counts(self) -> dict[str, int]:
        """Distinct clicks per kind, except BURST (a whole number of groups of random size: see
        Load.burst_sizes) and NORMAL (the rest)."""
        return {BOT: int(self.clicks * self.bot_rate), DATACENTER: int(self.clicks * self.datacenter_rate),
                IMPRESSION_REPEAT: int(self.clicks * self.impression_repeat_rate),
                USER_REPEAT: int(self.clicks * self.repeat_rate),
                TOO_FAST: int(self.clicks * self.too_fast_rate), LINK: self.links, LATE: self.late_count}

    def check(self) -> None:
        threshold = ivt.IvtConfig().burst_threshold
        lo, hi = self.burst_size
        if not threshold < lo <= hi:
            raise ValueError(f"burst_size {self.burst_size}: each burst needs more than {threshold} clicks")
        if not 0 <= self.links <= min(threshold, len(BROWSER_UAS)):
            raise ValueError(f"links: at most {threshold} (they share the local peer address)")
        if self.repeat_gap[0] < 1 or self.repeat_gap[0] > self.repeat_gap[1]:
            raise ValueError(f"repeat_gap {self.repeat_gap}")


@dataclass(frozen=True)
class Forged:
    kind: str  # FORGED_KINDS
    payload: dict  # a POST /v1/clicks item
    reason: str  # the token reason ingest must answer under click_token_mode enforce
    link_status: Optional[int]  # GET /v1/c?t=<payload's token>: the HTTP status, None = not sent


@dataclass
class Load:
    spec: LoadSpec
    sends: list[dict]  # POST /v1/clicks payloads in send order (duplicates included, late last)
    truth: list[dict]  # one entry per distinct click: the fields the server will store, + kind
    duplicate_ids: list[str] = field(default_factory=list)
    late_ids: list[str] = field(default_factory=list)
    # GET /v1/c sends: click_id (the one ingest derives), token, user_agent, referrer, landing_url
    links: list[dict] = field(default_factory=list)
    forged: list[Forged] = field(default_factory=list)
    keys: Optional[KeyProvider] = None  # the key set the tokens are signed with
    burst_sizes: list[int] = field(default_factory=list)
    _fast: dict = field(default_factory=dict, repr=False)  # too-fast click_id -> its claims

    @property
    def duplicates(self) -> int:
        return len(self.duplicate_ids)

    def kinds(self) -> Counter:
        return Counter(c["kind"] for c in self.truth)

    def prepare(self, item: dict, now_s: Optional[float] = None) -> dict:
        """The item as it goes out now (tools.sender.send_load's `prepare`): a too-fast click's
        token is signed at send time, issued TOO_FAST_AHEAD_S ahead, so that ingest_time -
        issued_at < 1 s whatever the sending speed; every other item is sent as generated."""
        claims = self._fast.get(item.get("click_id"))
        if claims is None:
            return item
        iat = int(time.time() if now_s is None else now_s) + TOO_FAST_AHEAD_S
        issuer = TokenIssuer(self.keys, ttl_s=TOKEN_TTL_S)
        return {**item, "token": issuer.issue_claims(dataclasses.replace(claims, issued_at=iat,
                                                                         expires_at=iat + TOKEN_TTL_S))}

    def settle_links(self, answered: dict[str, tuple[int, int]]) -> list[str]:
        """Event (and ingest) time of the link clicks, known only once sent: `answered` =
        click_id -> (ms before the GET, ms after its 302) (tools.sender.LinkReport.link_times).
        Only the minute matters (the 1m buckets and their rollups): a link click is in no IVT
        group (own user, own impression, at most 10 from the peer address, issued long before),
        so its second and 10 s bucket decide nothing. Links not answered, or whose GET straddled
        a minute boundary, are problems (returned) and leave the truth."""
        problems, kept = [], []
        for c in self.truth:
            if c["kind"] != LINK:
                kept.append(c)
                continue
            t = answered.get(c["click_id"])
            if t is None:
                problems.append(f"{c['click_id']}: not recorded")
            elif t[0] // 60_000 != t[1] // 60_000:
                problems.append(f"{c['click_id']}: sent at {t[0]}..{t[1]}, across a minute boundary")
            else:
                c["event_time"] = c["ingest_time"] = t[0]
                kept.append(c)
        self.truth[:] = kept
        return problems


def ad_catalog(n_ads: int, rng: random.Random) -> list[dict]:
    """Ads with their campaign, advertiser, fixed cost per click and landing page."""
    return [
        {
            "ad_id": f"ad-{i:04d}",
            "campaign_id": f"cmp-{i // 5:03d}",
            "advertiser_id": f"adv-{i // 20:02d}",
            "cost": Decimal(rng.randint(5, 250)) / 100,
            "landing_url": f"https://adv-{i // 20:02d}.shop.example/landing/ad-{i:04d}?src=clickagg",
        }
        for i in range(n_ads)
    ]


def generator_keys(seed: int) -> StaticKeys:
    """A key set of the generator's own, for callers without the stack's (click_token_mode off:
    ingest never looks at the tokens)."""
    return StaticKeys({"gen": hashlib.sha256(f"clickagg/loadgen/{seed}".encode()).digest()}, "gen")


def link_click_id(impression_id: str) -> str:
    """The click_id ingest gives a link click (docs/click-token.md, "Click links"), from the spec."""
    return "r1-" + hashlib.sha256(b"clickagg/redirect/v1\0" + impression_id.encode("ascii")).hexdigest()[:40]


def link_user_id(source_ip: str, user_agent: str) -> str:
    """The stand-in user_id of a link click (docs/click-token.md, "Click links"), from the spec."""
    return "anon-" + hashlib.sha256(f"{source_ip}\n{user_agent}".encode("utf-8")).hexdigest()[:32]


def check_user_agents() -> None:
    """Browsers match no crawler pattern, the bots each match one (the IVT data may change)."""
    bots = ivt.default_bot_matcher()
    wrong = [ua for ua in BROWSER_UAS if bots.matches(ua)] + [ua for ua in BOT_UAS if not bots.matches(ua)]
    if wrong:
        raise AssertionError(f"user agents on the wrong side of the crawler list: {wrong}")


def _timestamp(ms: int, rng: random.Random, iso_share: float):
    if rng.random() < iso_share:
        dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return ms


class _Builder:
    def __init__(self, spec: LoadSpec, end_ms: int, keys: KeyProvider):
        self.spec, self.end_ms, self.keys = spec, end_ms, keys
        self.issuer = TokenIssuer(keys, ttl_s=TOKEN_TTL_S)  # the ad server's signer (clickagg_sdk)
        self.start_ms = end_ms - spec.span_s * 1000
        self.rng = random.Random(spec.seed)
        self.ads = ad_catalog(spec.ads, self.rng)
        self.by_id = {a["ad_id"]: a for a in self.ads}
        self.datacenters = ivt.default_datacenters()
        self.truth: list[dict] = []
        self.tokens: dict[str, str] = {}  # click_id -> token
        self.claims_of: dict[str, ClickClaims] = {}  # click_id -> its token's claims
        self.groups: set[tuple] = set()  # (user, ad, 10 s bucket) taken
        self.ips: set[str] = {LOCAL_PEER_IP}  # addresses taken
        self.profiles: dict[str, tuple[str, str]] = {}  # pool user -> (ip, user agent)
        self.n_impressions = 0
        weights = [1 / (rank ** spec.zipf_s) for rank in range(1, spec.ads)]
        self._weights = weights

    # --- drawing ---------------------------------------------------------------------------------
    def pick_ad(self) -> dict:
        other = self.rng.choices(range(1, self.spec.ads), weights=self._weights)[0] if self.spec.ads > 1 else 0
        return self.ads[0 if self.rng.random() < self.spec.hot_ad_share else other]

    def residential_ip(self) -> str:
        while True:
            r = self.rng
            ip = f"{r.choice(_RESIDENTIAL_FIRST_OCTETS)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
            if ip not in self.ips and self.datacenters.provider(ip) is None:
                self.ips.add(ip)
                return ip

    def datacenter_ip(self) -> str:
        while True:
            first, last, _ = self.rng.choice(self.datacenters.ranges)
            ip = str(ipaddress.IPv4Address(self.rng.randint(first, last)))
            if ip not in self.ips:
                self.ips.add(ip)
                return ip

    def profile(self, user: str) -> tuple[str, str]:
        if user not in self.profiles:
            self.profiles[user] = (self.residential_ip(), self.rng.choice(BROWSER_UAS))
        return self.profiles[user]

    def event_time(self, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
        return self.rng.randrange(self.start_ms if lo is None else lo, self.end_ms if hi is None else hi)

    def claim_group(self, user: str, ad: dict, event_ms: int) -> bool:
        key = (user, ad["ad_id"], event_ms // USER_REPEAT_WINDOW_MS)
        if key in self.groups:
            return False
        self.groups.add(key)
        return True

    # --- tokens and clicks -----------------------------------------------------------------------
    def claims(self, ad: dict, issued_s: int) -> ClickClaims:
        self.n_impressions += 1
        return self.issuer.claims(impression_id=f"imp-{self.spec.seed}-{self.n_impressions:08d}", ad_id=ad["ad_id"],
                                  campaign_id=ad["campaign_id"], advertiser_id=ad["advertiser_id"],
                                  price_micros=int(ad["cost"] * 1_000_000), issued_at=issued_s,
                                  landing_url=ad["landing_url"])

    def served_before(self, event_ms: int) -> int:
        """An impression served 2..300 s before the click (so ingest - issued_at >= 1 s)."""
        return event_ms // 1000 - self.rng.randint(2, 300)

    def click(self, kind: str, ad: dict, user: str, ip: str, ua: str, event_ms: Optional[int],
              claims: ClickClaims, click_id: Optional[str] = None) -> dict:
        cid = click_id or f"c-{self.spec.seed}-{len(self.truth):08d}"
        c = {"click_id": cid, "ad_id": ad["ad_id"], "campaign_id": ad["campaign_id"],
             "advertiser_id": ad["advertiser_id"], "user_id": user, "event_time": event_ms,
             "cost": ad["cost"], "ip": ip, "user_agent": ua, "impression_id": claims.impression_id,
             "issued_at": claims.issued_at * 1000,
             # by construction: sent after generation (end_ms), or (too-fast) right after signing
             "ingest_time": (claims.issued_at * 1000 if kind == TOO_FAST
                             else None if event_ms is None else max(event_ms, self.end_ms)),
             "kind": kind}
        self.truth.append(c)
        return c

    def served_click(self, kind: str, ad: dict, user: str, ip: str, ua: str, event_ms: int) -> dict:
        # a too-fast click's token as generated: issued TOO_FAST_AHEAD_S after end_ms (good for a
        # send within that time; Load.prepare signs it again at send time, whenever that is)
        issued_s = (self.end_ms // 1000 + TOO_FAST_AHEAD_S if kind == TOO_FAST
                    else self.served_before(event_ms))
        claims = self.claims(ad, issued_s)
        c = self.click(kind, ad, user, ip, ua, event_ms, claims)
        self.tokens[c["click_id"]] = self.issuer.issue_claims(claims)
        self.claims_of[c["click_id"]] = claims
        return c

    def pool_click(self, kind: str, lo: Optional[int] = None, hi: Optional[int] = None) -> dict:
        """A pool user's click on a drawn ad at a drawn time, in a (user, ad, bucket) of its own."""
        for _ in range(10_000):
            ad, user, event_ms = self.pick_ad(), f"u-{self.rng.randrange(self.spec.users):05d}", self.event_time(lo, hi)
            if self.claim_group(user, ad, event_ms):
                ip, ua = self.profile(user)
                return self.served_click(kind, ad, user, ip, ua, event_ms)
        raise ValueError("no free (user, ad, 10 s bucket) left: raise LoadSpec.users")

    def own_click(self, kind: str, user: str, ip: str, ua: str, event_ms: Optional[int] = None,
                  ad: Optional[dict] = None) -> dict:
        ad = ad or self.pick_ad()
        event_ms = self.event_time() if event_ms is None else event_ms
        self.claim_group(user, ad, event_ms)  # a user of its own: always free
        return self.served_click(kind, ad, user, ip, ua, event_ms)


def generate(spec: LoadSpec, end_ms: int, keys: Optional[KeyProvider] = None) -> Load:
    """The load for event times [end_ms - span, end_ms]. `keys`: the key set ingest verifies
    with (the local stack's secret: local.readback.click_token_keys); default a key set of the
    generator's own (enough with click_token_mode off). Send `sends` with `prepare=load.prepare`
    (too-fast tokens are signed at send time), `links` with tools.sender.send_links."""
    spec.check()
    check_user_agents()
    b = _Builder(spec, end_ms, keys or generator_keys(spec.seed))
    rng, n = b.rng, spec.counts()
    burst_sizes = [rng.randint(*spec.burst_size) for _ in range(spec.ip_bursts)]
    n_normal = spec.clicks - sum(n.values()) - sum(burst_sizes)
    if n_normal < n[IMPRESSION_REPEAT] + n[USER_REPEAT]:
        raise ValueError(f"{spec.clicks} clicks leave {n_normal} normal ones, fewer than the repeats' originals")

    normal = [b.pool_click(NORMAL) for _ in range(n_normal)]
    for k in range(n[BOT]):
        b.own_click(BOT, f"bot-{k:05d}", b.residential_ip(), rng.choice(BOT_UAS))
    for k in range(n[DATACENTER]):
        b.own_click(DATACENTER, f"dc-{k:05d}", b.datacenter_ip(), rng.choice(BROWSER_UAS))
    seconds = range(-(-b.start_ms // 1000), b.end_ms // 1000)  # whole seconds inside the span
    for g, size in enumerate(burst_sizes):
        ip, second = b.residential_ip(), rng.choice(seconds) * 1000
        for j in range(size):
            b.own_click(BURST, f"nat-{g:03d}-{j:02d}", ip, rng.choice(BROWSER_UAS),
                        event_ms=second + rng.randrange(1000))
    fast = []
    for k in range(n[TOO_FAST]):
        c = b.own_click(TOO_FAST, f"fast-{k:05d}", b.residential_ip(), rng.choice(BROWSER_UAS))
        fast.append(c)

    # send order of every click but the repeats (made next), the links and the late clicks: by
    # event time with jitter. A repeat goes gap_lo..gap_hi sends after its original; originals
    # are drawn among the clicks with at least gap_lo sends after them, so the repeat is at least
    # gap_lo sends later whatever else is inserted (a load shorter than 2 * repeat_gap[0]: half of it)
    primary = list(b.truth)
    primary.sort(key=lambda c: c["event_time"] + rng.randint(0, 2_000))
    position = {c["click_id"]: float(i) for i, c in enumerate(primary)}
    gap_lo = min(spec.repeat_gap[0], len(primary) // 2)
    gap_hi = max(gap_lo, min(spec.repeat_gap[1], len(primary)))
    originals = [c for c in normal if position[c["click_id"]] < len(primary) - gap_lo]
    originals = rng.sample(originals, len(originals))
    # repeats of normal clicks: each original used once, the repeat strictly later in event time
    repeats: list[tuple[dict, dict]] = []  # (original, repeat)

    def next_original() -> dict:
        if not originals:
            raise ValueError("too few normal clicks to repeat: lower the repeat rates or raise clicks")
        return originals.pop()

    for _ in range(n[IMPRESSION_REPEAT]):
        while True:  # in a later 10 s bucket (not a user repeat too), at most 60 s later, in the span
            orig = next_original()
            e = orig["event_time"]
            next_bucket = e - e % USER_REPEAT_WINDOW_MS + USER_REPEAT_WINDOW_MS
            if next_bucket > b.end_ms - 1:
                continue
            ad = b.by_id[orig["ad_id"]]
            event_ms = rng.randint(next_bucket, min(e + 60_000, b.end_ms - 1))
            if b.claim_group(orig["user_id"], ad, event_ms):
                break
        claims = b.claims_of[orig["click_id"]]
        rep = b.click(IMPRESSION_REPEAT, ad, orig["user_id"], orig["ip"], orig["user_agent"], event_ms, claims)
        b.tokens[rep["click_id"]] = b.tokens[orig["click_id"]]  # the same token, clicked again
        repeats.append((orig, rep))
    for _ in range(n[USER_REPEAT]):
        orig = next_original()
        while orig["event_time"] % USER_REPEAT_WINDOW_MS > USER_REPEAT_WINDOW_MS - 2:
            orig = next_original()
        bucket_end = orig["event_time"] - orig["event_time"] % USER_REPEAT_WINDOW_MS + USER_REPEAT_WINDOW_MS
        rep = b.served_click(USER_REPEAT, b.by_id[orig["ad_id"]], orig["user_id"], orig["ip"], orig["user_agent"],
                             rng.randrange(orig["event_time"] + 1, bucket_end))
        repeats.append((orig, rep))

    links = []
    for ua in rng.sample(BROWSER_UAS, n[LINK]):
        ad = b.pick_ad()
        claims = b.claims(ad, b.end_ms // 1000 - rng.randint(5, 120))
        token = b.issuer.issue_claims(claims)
        c = b.click(LINK, ad, link_user_id(LOCAL_PEER_IP, ua), LOCAL_PEER_IP, ua, None, claims,
                    click_id=link_click_id(claims.impression_id))
        links.append({"click_id": c["click_id"], "token": token, "user_agent": ua,
                      "referrer": f"https://news.example/article/{len(links) + 1}",
                      "landing_url": claims.landing_url})
    late = [b.pool_click(LATE, lo=end_ms - spec.late_by_s * 1000 - 600_000, hi=end_ms - spec.late_by_s * 1000)
            for _ in range(n[LATE])]

    def payload(c: dict) -> dict:
        return {"click_id": c["click_id"], "ad_id": c["ad_id"], "campaign_id": c["campaign_id"],
                "advertiser_id": c["advertiser_id"], "user_id": c["user_id"],
                "timestamp": _timestamp(c["event_time"], rng, spec.iso_share), "cost": str(c["cost"]),
                "ip": c["ip"], "user_agent": c["user_agent"], "token": b.tokens[c["click_id"]]}

    # send order: the primary order, the repeats in it, each retried duplicate 150..600 sends
    # after the click it copies (a later request, like an SDK retry), the late clicks last
    for orig, rep in repeats:
        position[rep["click_id"]] = position[orig["click_id"]] + rng.randint(gap_lo, gap_hi) + 0.25
    ordered = sorted(primary + [rep for _, rep in repeats], key=lambda c: position[c["click_id"]])
    keyed = [(float(i), payload(c)) for i, c in enumerate(ordered)]
    duplicate_ids = []
    for i in rng.sample(range(len(ordered)), int(spec.clicks * spec.duplicate_rate)):
        keyed.append((i + rng.randint(150, 600) + 0.5, payload(ordered[i])))
        duplicate_ids.append(ordered[i]["click_id"])
    keyed.sort(key=lambda t: t[0])
    sends = [p for _, p in keyed] + [payload(c) for c in late]
    load = Load(spec, sends, b.truth, duplicate_ids, [c["click_id"] for c in late], links,
                keys=b.keys, burst_sizes=burst_sizes)
    load._fast = {c["click_id"]: b.claims_of[c["click_id"]] for c in fast}
    load.forged = _forged(b, spec)
    return load


def _tampered(token: str, claims: ClickClaims) -> str:
    """`token`'s version, kid and MAC around the payload of `claims` (what an attacker edits)."""
    version, kid, _, tag = token.split(".")
    return f"{version}.{kid}.{b64url_encode(encode_payload(claims))}.{tag}"


def _forged(b: _Builder, spec: LoadSpec) -> list[Forged]:
    """Clicks an attacker (or a broken ad server) sends: refused at ingest with enforce, and as
    links. Fresh impressions, own click_ids (f-...), otherwise valid fields."""
    rng, out = b.rng, []
    kid, _ = b.keys.active()
    for k in range(spec.forged_per_kind):
        for kind, (reason, link_status) in FORGED_KINDS.items():
            ad = b.pick_ad()
            event_ms = b.end_ms - 10_000
            claims = b.claims(ad, event_ms // 1000 - 60)
            body = {"ad_id": ad["ad_id"], "campaign_id": ad["campaign_id"], "advertiser_id": ad["advertiser_id"],
                    "cost": str(ad["cost"])}
            token: Optional[str] = b.issuer.issue_claims(claims)
            if kind == "tampered_price":
                token = _tampered(token, dataclasses.replace(claims, price_micros=claims.price_micros * 10))
                body["cost"] = str(ad["cost"] * 10)
            elif kind == "other_advertiser":
                token = _tampered(token, dataclasses.replace(claims, advertiser_id="adv-evil"))
                body["advertiser_id"] = "adv-evil"
            elif kind == "wrong_key":
                token = issue(claims, StaticKeys({kid: rng.randbytes(32)}, kid))
            elif kind == "unknown_key":
                token = issue(claims, StaticKeys({"forged9": rng.randbytes(32)}, "forged9"))
            elif kind == "expired":
                iat = event_ms // 1000 - 2 * 86_400
                token = b.issuer.issue_claims(dataclasses.replace(claims, issued_at=iat, expires_at=iat + 3600))
            elif kind == "issued_in_future":
                iat = b.end_ms // 1000 + 3600
                token = b.issuer.issue_claims(dataclasses.replace(claims, issued_at=iat, expires_at=iat + 3600))
            elif kind == "other_ad":
                other = b.ads[(b.ads.index(ad) + 1) % len(b.ads)]
                body = {"ad_id": other["ad_id"], "campaign_id": other["campaign_id"],
                        "advertiser_id": other["advertiser_id"], "cost": str(other["cost"])}
            elif kind == "missing":
                token = None
            payload = {"click_id": f"f-{spec.seed}-{kind}-{k}", **body, "user_id": f"u-forged-{k}",
                       "timestamp": event_ms, "ip": b.residential_ip(), "user_agent": rng.choice(BROWSER_UAS)}
            if token is not None:
                payload["token"] = token
            out.append(Forged(kind, payload, reason, link_status))
    return out
