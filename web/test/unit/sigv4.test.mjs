import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalQuery, canonicalUri, rfc3986, signGet } from "../../src/sigv4.js";

const EXAMPLE = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const DATE = new Date(Date.UTC(2015, 7, 30, 12, 36, 0));

// AWS SigV4 test suite: get-vanilla and get-vanilla-query-order-key-case
test("AWS test vectors", async () => {
  const vanilla = await signGet("https://example.amazonaws.com/", { region: "us-east-1", service: "service", credentials: EXAMPLE, date: DATE });
  assert.equal(vanilla.headers.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, " +
    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  assert.equal(vanilla.headers["x-amz-date"], "20150830T123600Z");
  const ordered = await signGet("https://example.amazonaws.com/?Param2=value2&Param1=value1",
    { region: "us-east-1", service: "service", credentials: EXAMPLE, date: DATE });
  assert.match(ordered.headers.authorization, /Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500$/);
});

test("session token is sent and signed", async () => {
  const { headers, canonicalRequest } = await signGet("https://abc.execute-api.eu-west-1.amazonaws.com/prod/v1/top?last=15m",
    { region: "eu-west-1", credentials: { ...EXAMPLE, sessionToken: "TOKEN" }, date: DATE });
  assert.equal(headers["x-amz-security-token"], "TOKEN");
  assert.match(headers.authorization, /SignedHeaders=host;x-amz-date;x-amz-security-token,/);
  assert.match(headers.authorization, /\/eu-west-1\/execute-api\/aws4_request/);
  assert.ok(canonicalRequest.startsWith("GET\n/prod/v1/top\nlast=15m\nhost:abc.execute-api.eu-west-1.amazonaws.com\n"));
});

test("encoding: RFC 3986 query, path encoded again like botocore", () => {
  assert.equal(rfc3986("a b!'()*~"), "a%20b%21%27%28%29%2A~");
  assert.equal(canonicalQuery([["to", "2026-01-01T10:00:00+01:00"], ["k", 10], ["last", "1h"]]),
    "k=10&last=1h&to=2026-01-01T10%3A00%3A00%2B01%3A00");
  assert.equal(canonicalUri("/prod/v1/ads/ad%2F1/metrics"), "/prod/v1/ads/ad%252F1/metrics");
  assert.equal(canonicalUri("/v1/ads/ad'q/metrics"), "/v1/ads/ad%27q/metrics");
  assert.equal(canonicalUri("/a/./b/../c//d/"), "/a/c/d/");
  assert.equal(canonicalUri(""), "/");
});
