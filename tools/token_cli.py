"""`clickagg token`: issue and verify signed click tokens (docs/click-token.md), offline.

  clickagg token issue --key-id k1 --secret-b64 B64 --ad-id A --campaign-id C --advertiser-id V
                       --price-micros N --landing-url https://... [--impression-id I]
                       [--ttl-s 3600] [--issued-at EPOCH_S] [--placement-id P] [--publisher-id P]
  clickagg token verify TOKEN --keys-json FILE [--at EPOCH_S] [--ad-id A]
                        [--max-age-s N] [--skew-s N]

issue prints the token; the secret may come from $CLICKAGG_TOKEN_SECRET_B64 instead of
--secret-b64 (keeps it out of the shell history). verify prints the claims as JSON (exit 0) or
`rejected: <reason>: <detail>` on stderr (exit 1); --keys-json is the key-set secret's value,
{"keys": {"k1": "<base64>", ...}, "active": "k1"}. Exit 2: bad usage or key material."""
from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
import time
import uuid

from common.click_token import (DEFAULT_CLOCK_SKEW_S, DEFAULT_MAX_AGE_S, ClaimsError,
                                ClickClaims, KeyConfigError, StaticKeys, TokenRejected,
                                VerifyPolicy, issue, parse_key_set, verify)

SECRET_ENV = "CLICKAGG_TOKEN_SECRET_B64"


def add_parser(sub) -> None:
    p = sub.add_parser("token", help="issue / verify signed click tokens (offline)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tsub = p.add_subparsers(dest="token_command", required=True)
    i = tsub.add_parser("issue", help="print a signed token for one served ad")
    i.add_argument("--key-id", required=True)
    i.add_argument("--secret-b64", help=f"the key, standard base64 (default ${SECRET_ENV})")
    i.add_argument("--impression-id", help="default: a random UUID")
    i.add_argument("--ad-id", required=True)
    i.add_argument("--campaign-id", required=True)
    i.add_argument("--advertiser-id", required=True)
    i.add_argument("--price-micros", type=int, required=True, help="price per click, micro-units")
    i.add_argument("--landing-url", required=True, help="https only, no userinfo")
    i.add_argument("--ttl-s", type=int, default=3600)
    i.add_argument("--issued-at", type=int, help="epoch seconds (default: now)")
    i.add_argument("--placement-id")
    i.add_argument("--publisher-id")
    i.set_defaults(func=run_issue)
    v = tsub.add_parser("verify", help="check a token; print its claims")
    v.add_argument("token")
    v.add_argument("--keys-json", required=True, help="file with the key-set secret's value")
    v.add_argument("--at", type=float, help="verification time, epoch seconds (default: now)")
    v.add_argument("--ad-id", help="the ad the click names: a token of another ad is refused")
    v.add_argument("--max-age-s", type=int, default=DEFAULT_MAX_AGE_S)
    v.add_argument("--skew-s", type=int, default=DEFAULT_CLOCK_SKEW_S)
    v.set_defaults(func=run_verify)


def run_issue(args, out=None) -> int:
    out = out or sys.stdout
    secret = args.secret_b64 or os.environ.get(SECRET_ENV)
    if not secret:
        print(f"error: --secret-b64 or ${SECRET_ENV} is required", file=sys.stderr)
        return 2
    try:
        keys = StaticKeys({args.key_id: base64.b64decode(secret, validate=True)},
                          active=args.key_id)
    except (binascii.Error, ValueError) as exc:  # KeyConfigError is a ValueError
        print(f"error: key: {exc}", file=sys.stderr)
        return 2
    issued_at = args.issued_at if args.issued_at is not None else int(time.time())
    claims = ClickClaims(
        impression_id=args.impression_id or uuid.uuid4().hex, ad_id=args.ad_id,
        campaign_id=args.campaign_id, advertiser_id=args.advertiser_id,
        price_micros=args.price_micros, issued_at=issued_at, expires_at=issued_at + args.ttl_s,
        landing_url=args.landing_url, placement_id=args.placement_id,
        publisher_id=args.publisher_id)
    try:
        print(issue(claims, keys), file=out)
    except ClaimsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run_verify(args, out=None) -> int:
    out = out or sys.stdout
    try:
        with open(args.keys_json, encoding="utf-8") as f:
            keys = parse_key_set(f.read())
    except (OSError, KeyConfigError) as exc:
        print(f"error: --keys-json: {exc}", file=sys.stderr)
        return 2
    now = args.at if args.at is not None else time.time()
    try:
        claims = verify(args.token, keys, now, expected_ad_id=args.ad_id,
                        policy=VerifyPolicy(max_age_s=args.max_age_s, clock_skew_s=args.skew_s))
    except TokenRejected as exc:
        print(f"rejected: {exc.reason}: {exc.detail}", file=sys.stderr)
        return 1
    print(json.dumps({"kid": args.token.split(".")[1], **claims.to_json()}, indent=2), file=out)
    return 0
