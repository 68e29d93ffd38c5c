import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, createClient, isMissingRoute, loadConfig } from "../../src/api.js";

const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

test("requests: canonical query, encoded ad id, signer headers", async () => {
  const seen = [];
  const client = createClient({
    apiBaseUrl: "https://api.example/prod/",
    signer: async (url) => ({ authorization: `signed ${url}` }),
    fetchImpl: async (url, init) => { seen.push([url, init.headers]); return json(200, { ok: true }); },
  });
  await client.top({ window: "15m", k: 10, metric: "clicks" });
  await client.series("ad/1 x", { resolution: "5m", last: "1h" });
  await client.campaignSeries("cmp/1", { resolution: "1h", last: "7d" });
  await client.series("ad-1", { resolution: "1d", from: 1767225600000, to: 1769817600000 });
  await client.budget("cmp/1");
  await client.pacing("cmp 1");
  assert.equal(seen[0][0], "https://api.example/prod/v1/top?k=10&last=15m&metric=clicks");
  assert.equal(seen[0][1].authorization, `signed ${seen[0][0]}`);
  assert.equal(seen[1][0], "https://api.example/prod/v1/ads/ad%2F1%20x/metrics?last=1h&resolution=5m");
  assert.equal(seen[2][0], "https://api.example/prod/v1/campaigns/cmp%2F1/metrics?last=7d&resolution=1h");
  assert.equal(seen[3][0], "https://api.example/prod/v1/ads/ad-1/metrics?from=1767225600000&resolution=1d&to=1769817600000");
  assert.equal(seen[4][0], "https://api.example/prod/v1/campaigns/cmp%2F1/budget");
  assert.equal(seen[5][0], "https://api.example/prod/v1/campaigns/cmp%201/pacing");
  assert.equal(seen[5][1].authorization, `signed ${seen[5][0]}`);
});

test("errors are classified", async () => {
  const mk = (impl) => createClient({ apiBaseUrl: "http://x", fetchImpl: impl });
  await assert.rejects(mk(async () => { throw new TypeError("fetch failed"); }).health(),
    (e) => e instanceof ApiError && e.kind === "network");
  await assert.rejects(mk(async () => json(503, { error: "serving store unavailable; retry later", status: 503 })).health(),
    (e) => e.kind === "http" && e.status === 503 && /serving store/.test(e.message));
  await assert.rejects(mk(async () => json(403, { message: "Missing Authentication Token" })).health(),
    (e) => e.kind === "auth" && e.status === 403);
  await assert.rejects(mk(async () => json(404, { message: "no route" })).quality(), (e) => e.status === 404);
  await assert.rejects(mk(async () => { const e = new Error("t"); e.name = "TimeoutError"; throw e; }).health(),
    (e) => e.kind === "timeout");
});

test("config: 404 means the local stack", async () => {
  assert.deepEqual(await loadConfig(async () => new Response("no", { status: 404 })), { mode: "local", apiBaseUrl: "" });
  const cfg = await loadConfig(async () => json(200, { apiBaseUrl: "https://a", region: "eu-west-1", auth: { type: "cognito" } }));
  assert.equal(cfg.mode, "cognito");
});

test("a missing route: 404 locally, API Gateway's 403 Missing Authentication Token on AWS", async () => {
  const fail = (status, body) => createClient({ apiBaseUrl: "http://x", fetchImpl: async () => json(status, body) }).quality();
  const err = async (status, body) => fail(status, body).catch((e) => e);
  assert.equal(isMissingRoute(await err(404, { message: "no route for GET /v1/quality" })), true);
  assert.equal(isMissingRoute(await err(403, { message: "Missing Authentication Token" })), true);
  assert.equal(isMissingRoute(await err(403, { Message: "User: arn:aws:sts::1:assumed-role/x is not authorized" })), false);
  assert.equal(isMissingRoute(await err(503, { error: "down" })), false);
  assert.equal(isMissingRoute(new Error("x")), false);
});
