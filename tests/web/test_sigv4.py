"""The page's SigV4 signing (web/src/sigv4.js, used on AWS where the query API is IAM-authorized)
produces the same Authorization header as botocore (what `python -m tools.cli --sigv4` and the AWS
SDKs send) for the requests the page makes: canonical URI, query, headers and signature."""
from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
BASE = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod"
CREDS = {"accessKeyId": "ASIAEXAMPLEKEY", "secretAccessKey": "secret/with+chars=", "sessionToken": "FwoGZXIvYXdzEXAMPLE//token=="}
WHEN = datetime.datetime(2026, 3, 4, 5, 6, 7)
REQUESTS = [
    {"kind": "top", "window": "15m", "k": 10, "metric": "clicks"},
    {"kind": "top", "window": "24h", "k": 100, "metric": "billable_clicks"},
    {"kind": "series", "ad": "ad-0001", "resolution": "5m", "last": "6h"},
    {"kind": "series", "ad": "ad'q(1)*!~", "resolution": "1m", "last": "1h"},
    {"kind": "series", "ad": "ad/slash%pct", "resolution": "1h", "last": "24h"},
    {"kind": "get", "path": "/v1/top", "params": {"from": "2026-01-01T10:00:00+01:00", "to": "1767261600000", "campaign_id": "c&d=e"}},
    {"kind": "get", "path": "/v1/health"},
    {"kind": "budget", "campaign": "cmp-001"},  # the campaign view's budget panel (the budget Lambda's routes)
    {"kind": "pacing", "campaign": "cmp/ä b"},
]


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_browser_signatures_equal_botocore(monkeypatch):
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    payload = {"base": BASE, "region": "eu-west-1", "credentials": CREDS,
               "date": WHEN.replace(tzinfo=datetime.timezone.utc).isoformat(), "requests": REQUESTS}
    done = subprocess.run(["node", str(WEB / "test" / "sign.mjs")], input=json.dumps(payload), capture_output=True,
                          text=True, timeout=60, check=True)
    signed = json.loads(done.stdout)
    assert len(signed) == len(REQUESTS)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: WHEN)
    creds = Credentials(CREDS["accessKeyId"], CREDS["secretAccessKey"], CREDS["sessionToken"])
    for req, page in zip(REQUESTS, signed):
        assert page["url"].startswith(BASE + "/v1/"), page["url"]
        ref = AWSRequest(method="GET", url=page["url"])
        botocore.auth.SigV4Auth(creds, "execute-api", "eu-west-1").add_auth(ref)
        assert page["headers"]["authorization"] == ref.headers["Authorization"], (req, page["url"])
        assert page["headers"]["x-amz-date"] == ref.headers["X-Amz-Date"] == "20260304T050607Z"
        assert page["headers"]["x-amz-security-token"] == CREDS["sessionToken"]
