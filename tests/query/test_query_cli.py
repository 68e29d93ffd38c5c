"""The query CLI against the local stack over HTTP, and its SigV4 signing."""
from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import json
import os
from urllib.parse import quote, unquote, urlencode

import pytest
from botocore.credentials import Credentials

from tests.query.truth import oracle_top
from tools import cli

pytestmark = pytest.mark.slow


def run(stack, *argv):
    out = io.StringIO()
    code = cli.main([*argv, "--api", stack.api.url], out=out)
    return code, out.getvalue()


def test_top_table_and_json_match_truth(local_stack):
    code, text = run(local_stack, "top", "--last", "1h", "-k", "5", "--json")
    assert code == 0
    body = json.loads(text)
    w = body["window"]
    expected, _ = oracle_top(local_stack.truth, w["from_ms"], w["to_ms"], 5, "clicks")
    assert body["exact"] and [(i["ad_id"], i["total"]) for i in body["items"]] == expected
    code, table = run(local_stack, "top", "--from", str(w["from_ms"]), "--to", str(w["to_ms"]), "-k", "5")
    assert code == 0 and "exact" in table.splitlines()[1]
    lines = table.splitlines()
    assert lines[2].split() == ["rank", "ad_id", "campaign", "advertiser", "clicks"]
    for line, (ad, total) in zip(lines[4:], expected):
        assert line.split()[1] == ad and line.split()[-1] == str(total)
    assert lines[-1].startswith("freshness: watermark ")


def test_top_cost_with_campaign_filter(local_stack):
    code, text = run(local_stack, "top", "--last", "3h", "-k", "3", "--metric", "cost", "--campaign", "cmp-1")
    assert code == 0 and "[campaign_id=cmp-1]" in text and "cost" in text


def test_series_table(local_stack):
    ad = "ad'q"
    code, text = run(local_stack, "series", ad, "--resolution", "5m", "--last", "1h")
    assert code == 0
    lines = text.splitlines()
    assert lines[0].startswith("ad ad'q") and lines[1].split()[0] == "bucket_start"
    body = json.loads(run(local_stack, "series", ad, "--resolution", "5m", "--last", "1h", "--json")[1])
    t = local_stack.truth
    w = body["window"]
    clicks = sum(v[0] for (a, m), v in t.minute.items() if a == ad and w["from_ms"] <= m < w["to_ms"])
    assert body["totals"]["clicks"] == clicks
    total_line = [line for line in lines if line.startswith("total")][0]
    assert total_line.split()[1] == str(clicks)
    assert lines[1].split()[5:] == ["suspect", "invalid", "impressions", "conversions", "conv_value", "ctr", "cvr",
                                    "cpc", "cpa", "roas"]
    t = body["totals"]
    assert total_line.split()[5:] == [str(t[f]) if t[f] is not None else "-" for f in (
        "suspect_clicks", "invalid_clicks", "impressions", "conversions", "conversion_value", "ctr", "cvr", "cpc",
        "cpa", "roas")]


def test_campaign_and_advertiser_series(local_stack):
    t = local_stack.truth
    for level, entity in (("campaign", "cmp-1"), ("advertiser", "adv-0")):
        code, text = run(local_stack, "series", entity, "--level", level, "--resolution", "1h", "--last", "3h")
        assert code == 0 and text.startswith(f"{level} {entity}")
        body = json.loads(run(local_stack, "series", entity, "--level", level, "--resolution", "1h", "--last", "3h",
                              "--json")[1])
        w = body["window"]
        ads = {ad for ad in t.campaign if t.owner(level, ad) == entity}
        impressions = sum(v[6] for (a, m), v in t.minute.items() if a in ads and w["from_ms"] <= m < w["to_ms"])
        assert body[f"{level}_id"] == entity and body["totals"]["impressions"] == impressions > 0


def test_top_by_a_ratio_with_min_volume(local_stack):
    code, text = run(local_stack, "top", "--last", "3h", "-k", "3", "--metric", "ctr", "--min-volume", "5")
    assert code == 0 and "min_volume 5" in text and "numerator" in text.splitlines()[3]
    body = json.loads(run(local_stack, "top", "--last", "3h", "-k", "3", "--metric", "ctr", "--min-volume", "5",
                          "--json")[1])
    assert body["min_volume"] == 5 and body["exact"] and all(i["denominator"] >= 5 for i in body["items"])


def test_health_and_errors(local_stack, capsys):
    code, text = run(local_stack, "health")
    assert code == 0 and text.startswith("ok: store dynamodb")
    code, _ = run(local_stack, "top", "--last", "31d")
    assert code == 1 and "HTTP 400" in capsys.readouterr().err
    assert cli.main(["health", "--api", "http://127.0.0.1:9"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def _enc(text: str) -> str:
    """RFC 3986 percent-encoding, as SigV4 wants it: only A-Z a-z 0-9 - _ . ~ stay."""
    return quote(text, safe="-_.~")


def sigv4_signature(secret: str, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
                    amz_date: str, region: str, service: str, body: bytes = b"") -> str:
    """SigV4 written out from the AWS specification (no botocore), an independent oracle.
    `path` as sent (percent-encoded), `query` decoded pairs, `headers` the signed ones (any case).
    Every service but S3 URI-encodes each path segment twice (once over the sent encoding)."""
    canonical_uri = "/".join(_enc(_enc(unquote(seg))) for seg in path.split("/")) or "/"
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in query))
    hdrs = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed = ";".join(sorted(hdrs))
    canonical_request = "\n".join([method, canonical_uri, canonical_query,
                                   "".join(f"{k}:{hdrs[k]}\n" for k in sorted(hdrs)), signed,
                                   hashlib.sha256(body).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.partition(" ")
    fields = dict(part.strip().split("=", 1) for part in rest.split(","))
    return {"algorithm": algorithm, **fields}


def test_sigv4_oracle_matches_aws_test_suite():
    """The oracle reproduces the AWS SigV4 test suite (get-vanilla, get-vanilla-query-order-key-case)."""
    secret, when = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z"
    headers = {"Host": "example.amazonaws.com", "X-Amz-Date": when}
    assert sigv4_signature(secret, "GET", "/", [], headers, when, "us-east-1", "service") == \
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    assert sigv4_signature(secret, "GET", "/", [("Param2", "value2"), ("Param1", "value1")], headers, when,
                           "us-east-1", "service") == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"


class IamAuthorizer:
    """In front of the local query function, what API Gateway's AWS_IAM authorization does
    before the Lambda runs (the local gateway checks nothing): 403 unless the request carries a
    SigV4 signature, made with the secret of its access key, over the request as received."""

    def __init__(self, function, secrets: dict[str, str], region: str):
        self.function, self.secrets, self.region = function, secrets, region
        self.verified: list[str] = []

    def invoke(self, event: dict) -> dict:
        reason = self.refusal(event)
        if reason:
            return {"statusCode": 403, "body": json.dumps({"message": reason})}
        self.verified.append(event["path"])
        return self.function.invoke(event)

    def refusal(self, event: dict) -> str | None:
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        if "authorization" not in headers:
            return "missing Authorization"
        auth = parse_authorization(headers["authorization"])
        key_id, date, region, service, terminal = auth["Credential"].split("/")
        signed = auth["SignedHeaders"].split(";")
        amz_date = headers.get("x-amz-date", "")
        if (auth["algorithm"], region, service, terminal) != ("AWS4-HMAC-SHA256", self.region, "execute-api", "aws4_request") \
                or date != amz_date[:8] or "host" not in signed or key_id not in self.secrets:
            return "bad credential scope or key"
        sent = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if abs((datetime.datetime.now(datetime.timezone.utc) - sent).total_seconds()) > 300:
            return "signature expired"
        query = [(k, v) for k, vs in (event.get("multiValueQueryStringParameters") or {}).items() for v in vs]
        expected = sigv4_signature(self.secrets[key_id], event["httpMethod"], event["path"], query,
                                   {h: headers[h] for h in signed}, amz_date, region, service)
        if not hmac.compare_digest(expected, auth["Signature"]):
            return "signature does not match"
        return None


@pytest.fixture
def iam_api(local_stack, monkeypatch):
    """The local stack's query routes behind IamAuthorizer, for key AKIDEXAMPLE."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    region = os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]
    authorizer = IamAuthorizer(local_stack.query, {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}, region)
    routes = [r for r in local_stack.api.routes if getattr(r, "function", None) is local_stack.query]
    assert routes
    for route in routes:
        monkeypatch.setattr(route, "function", authorizer)
    return authorizer


def test_sigv4_signed_requests_pass_iam_auth(local_stack, iam_api, monkeypatch, capsys):
    """Signed requests pass the SigV4 check at the gateway and get the right answer; unsigned or
    wrongly signed ones are refused."""
    code, text = run(local_stack, "top", "--last", "1h", "-k", "5", "--json", "--sigv4")
    assert code == 0, capsys.readouterr().err
    body = json.loads(text)
    w = body["window"]
    expected, _ = oracle_top(local_stack.truth, w["from_ms"], w["to_ms"], 5, "clicks")
    assert body["exact"] and [(i["ad_id"], i["total"]) for i in body["items"]] == expected
    # a path that needs encoding (') and a query with '+' and ':' (ISO offsets)
    frm = datetime.datetime.fromtimestamp(w["from_ms"] / 1000, datetime.timezone(datetime.timedelta(hours=1)))
    code, text = run(local_stack, "series", "ad'q", "--resolution", "5m", "--from", frm.isoformat(),
                     "--to", str(w["to_ms"]), "--json", "--sigv4")
    assert code == 0, capsys.readouterr().err
    series = json.loads(text)
    five = 5 * 60_000
    start, end = w["from_ms"] - w["from_ms"] % five, -(-w["to_ms"] // five) * five
    assert (series["window"]["from_ms"], series["window"]["to_ms"]) == (start, end)
    assert series["ad_id"] == "ad'q" and series["totals"]["clicks"] == sum(
        v[0] for (a, mn), v in local_stack.truth.minute.items() if a == "ad'q" and start <= mn < end)
    code, text = run(local_stack, "health", "--sigv4")
    assert code == 0 and text.startswith("ok: store dynamodb")
    assert iam_api.verified == ["/v1/top", "/v1/ads/ad%27q/metrics", "/v1/health"]
    capsys.readouterr()

    code, _ = run(local_stack, "top", "--last", "1h", "-k", "5")  # unsigned
    assert code == 1 and "HTTP 403: missing Authorization" in capsys.readouterr().err
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ")  # one character off
    code, _ = run(local_stack, "top", "--last", "1h", "-k", "5", "--sigv4")
    assert code == 1 and "HTTP 403: signature does not match" in capsys.readouterr().err
    assert len(iam_api.verified) == 3


def test_sigv4_headers(monkeypatch):
    """The CLI's Authorization header is the SigV4 signature of the request: recomputed from the
    specification (sigv4_signature) and by botocore's SigV4Auth, at a fixed time; another secret
    gives another signature."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest

    when = datetime.datetime(2026, 3, 4, 5, 6, 7)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    creds = Credentials("AKIDEXAMPLE", secret, "token")
    host = "abc123.execute-api.eu-west-1.amazonaws.com"
    for path, query in (("/prod/v1/top", [("k", "3"), ("last", "1h")]),
                        ("/prod/v1/ads/ad%27q%2Fx/metrics", [("resolution", "5m"), ("from", "2026-01-01T10:00:00+01:00")])):
        url = f"https://{host}{path}?{urlencode(query)}"
        headers = cli.signed_headers(url, cli.region_for(url), creds)
        assert headers["X-Amz-Date"] == "20260304T050607Z" and headers["X-Amz-Security-Token"] == "token"
        auth = parse_authorization(headers["Authorization"])
        assert auth["algorithm"] == "AWS4-HMAC-SHA256"
        assert auth["Credential"] == "AKIDEXAMPLE/20260304/eu-west-1/execute-api/aws4_request"
        assert auth["SignedHeaders"] == "host;x-amz-date;x-amz-security-token"
        signed = {"host": host, "x-amz-date": "20260304T050607Z", "x-amz-security-token": "token"}
        assert auth["Signature"] == sigv4_signature(secret, "GET", path, query, signed, "20260304T050607Z",
                                                    "eu-west-1", "execute-api")
        ref = AWSRequest(method="GET", url=url)
        botocore.auth.SigV4Auth(creds, "execute-api", "eu-west-1").add_auth(ref)
        assert headers["Authorization"] == ref.headers["Authorization"]
        wrong = sigv4_signature(secret[:-1] + "Z", "GET", path, query, signed, "20260304T050607Z", "eu-west-1",
                                "execute-api")
        assert wrong != auth["Signature"]
        other = cli.signed_headers(url, "eu-west-1", Credentials("AKIDEXAMPLE", secret[:-1] + "Z", "token"))
        assert parse_authorization(other["Authorization"])["Signature"] == wrong
    assert cli.region_for("http://127.0.0.1:8080", "ap-south-1") == "ap-south-1"


def test_api_default_from_env(monkeypatch):
    monkeypatch.setenv("CLICKAGG_API", "http://example.test:1/")
    assert cli.api_url(None) == "http://example.test:1"
    assert cli.api_url("http://x:2") == "http://x:2"
    monkeypatch.delenv("CLICKAGG_API")
    assert cli.api_url(None) == cli.DEFAULT_API


def test_quality_table_and_json(local_stack):
    import random
    import time

    import boto3

    from serving.keys import late_key

    rng, now = random.Random(4), int(time.time() * 1000)
    late = {}
    for _ in range(30):  # late-dropped counters, some outside the 3 h window
        minute = now - now % 60_000 - rng.randint(0, 300) * 60_000
        late[(minute, f"ad-{rng.randint(0, 5)}")] = rng.randint(1, 9)
    ddb = boto3.client("dynamodb")
    for (minute, ad), n in late.items():
        ddb.put_item(TableName=local_stack.names.serving_table,
                     Item={**{k: {"S": v} for k, v in late_key(minute, ad).items()}, "ld": {"N": str(n)}})
    # one `to` for both calls: the ivt windows end at min(to, this minute), the same for both
    to = str(now - now % 60_000)
    code, text = run(local_stack, "quality", "--last", "3h", "--to", to, "--json")
    assert code == 0
    body = json.loads(text)
    late_truth = sum(n for (minute, _), n in late.items()
                     if body["window"]["from_ms"] <= minute < body["window"]["to_ms"])
    assert 0 < late_truth < sum(late.values())
    assert body["late_dropped"] == late_truth and body["reconciliation"] is None
    assert body["lag"]["end_to_end_ms"] is not None
    code, table = run(local_stack, "quality", "--last", "3h", "--to", to)
    lines = table.splitlines()
    # the seeded truth has many suspect/invalid clicks: the status and alerts follow its ivt section
    assert code == 0 and lines[0].startswith(f"quality: {body['status']}")
    assert body["status"] == ("ivt" if body["ivt"]["alert"] else "ok")
    alerts = [line for line in lines if line.startswith("  ALERT ")]
    assert alerts == [f"  ALERT {a}" for a in body["alerts"]]
    rest = lines[1 + len(alerts):]
    assert rest[2] == f"late-dropped (beyond allowed lateness): {late_truth}"
    ivt, five, hour = body["ivt"], body["ivt"]["last_5m"], body["ivt"]["last_hour"]
    assert rest[3] == f"ivt (alert above {ivt['alert_percent']}% suspect + invalid):"
    assert rest[4].startswith(f"  last 5 min {five['from']} .. {five['to']}: {five['rates']['both']:.4%} of "
                              f"{five['clicks']} clicks (suspect {five['rates']['suspect']:.4%}, ")
    assert ("[ALERT]" in rest[4]) is five["alert"] and rest[5].startswith(f"  last hour {hour['from']} .. ")
    assert rest[6] == "last reconciliation: none yet"


def test_reconcile_starts_a_workflow_run_for_the_day(local_stack, capsys):
    import boto3
    from datetime import datetime, timedelta, timezone

    day = (datetime.now(timezone.utc) - timedelta(days=2)).date().isoformat()
    code, text = run(local_stack, "reconcile", "--day", day)
    assert code == 0 and text.startswith(f"started: workflow {local_stack.names.billing_workflow} run ")
    run_id = text.split(" run ")[1].split()[0]
    props = boto3.client("glue").get_workflow_run_properties(
        Name=local_stack.names.billing_workflow, RunId=run_id)["RunProperties"]
    assert props == {"day": day}
    code, _ = run(local_stack, "reconcile", "--day", "03/09/2026")
    assert code == 1 and "YYYY-MM-DD" in capsys.readouterr().err
