import assert from "node:assert/strict";
import { test } from "node:test";
import { createTracker } from "../src/index.js";
import { MemoryStorage, TOKEN, answer, env, fakeFetch, settle } from "./helpers.js";

const URL = "https://api.example/v1/public/clicks";

test("one click -> one item with the right fields, persisted before trackClick returns, then one POST", async (t) => {
  const e = env(t);
  const tr = createTracker(e.options);
  await settle(); // the initial pump (empty store) sends nothing
  const id = tr.trackClick(TOKEN);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const uid = e.storage.getItem("clickagg:uid");
  assert.match(uid, /^[0-9a-f-]{36}$/);
  const want = { click_id: id, user_id: uid, timestamp: e.clock.t, token: TOKEN, referrer: "https://news.example/article?id=7" };
  // persisted synchronously, before anything is sent
  assert.deepEqual(e.storage.queue(), { [id]: { item: want, attempts: 0, next: e.clock.t + 1000, beaconed: false } });
  assert.equal(e.fetch.calls.length, 0);
  await e.clock.advance(1000);
  assert.equal(e.fetch.calls.length, 1);
  const { url, init, body } = e.fetch.calls[0];
  assert.equal(url, URL);
  assert.deepEqual(body, { clicks: [want] });
  assert.equal(init.method, "POST");
  assert.equal(init.keepalive, true);
  assert.equal(init.credentials, "omit");
  assert.equal(init.mode, "cors");
  assert.deepEqual(init.headers, { "Content-Type": "text/plain;charset=UTF-8" });
  assert.ok(init.signal instanceof AbortSignal); // a hung request times out (30 s) and is retried
  assert.deepEqual(e.results, [{ clickId: id, status: "accepted" }]);
  assert.deepEqual(e.sends, [{ clickIds: [id], transport: "fetch", at: e.clock.t }]);
  assert.deepEqual(e.storage.queue(), {});
  assert.deepEqual(tr.stats(), { accepted: 1, duplicate: 0, rejected: 0, dropped: 0, retries: 0, requests: 1, beacons: 0, queued: 0 });
  assert.equal(e.clock.pending(), 0);
  // the same anonymous user id for the next click, kept in storage
  const ts = e.clock.t - 5000;
  const id2 = tr.trackClick(TOKEN, { clickId: "my-click-1", timestamp: ts, referrer: "https://x.example/" });
  assert.equal(id2, "my-click-1");
  assert.deepEqual(e.storage.queue()["my-click-1"].item, { click_id: "my-click-1", user_id: uid, timestamp: ts, token: TOKEN, referrer: "https://x.example/" });
  tr.shutdown();
});

test("userId option is the user_id; no anonymous id is stored", async (t) => {
  const e = env(t, { options: { userId: "user-42" } });
  const tr = createTracker(e.options);
  const id = tr.trackClick(TOKEN);
  assert.equal(e.storage.queue()[id].item.user_id, "user-42");
  assert.equal(e.storage.getItem("clickagg:uid"), null);
  assert.throws(() => createTracker({ ...e.options, userId: "has space" }), TypeError);
  assert.throws(() => createTracker({ ...e.options, endpoint: "" }), TypeError);
  tr.shutdown();
});

test("invalid tokens and click ids are refused with null, nothing stored", async (t) => {
  const e = env(t);
  const tr = createTracker(e.options);
  for (const bad of ["", 42, null, undefined, "x".repeat(4097)]) assert.equal(tr.trackClick(bad), null);
  assert.equal(tr.trackClick(TOKEN, { clickId: "with space" }), null);
  assert.equal(tr.trackClick(TOKEN, { clickId: "x".repeat(129) }), null);
  assert.equal(tr.trackClick("x".repeat(4096), { clickId: "c-max" }), "c-max");
  assert.deepEqual(Object.keys(e.storage.queue()), ["c-max"]);
  tr.shutdown();
});

test("referrer: the page URL, else document.referrer, cut to 2048 characters", async (t) => {
  const e = env(t);
  e.document.location = { href: "https://news.example/" + "p".repeat(3000) };
  const tr = createTracker(e.options);
  const a = tr.trackClick(TOKEN);
  e.document.location = undefined;
  const b = tr.trackClick(TOKEN);
  const q = e.storage.queue();
  assert.equal(q[a].item.referrer.length, 2048);
  assert.equal(q[b].item.referrer, "https://search.example/");
  tr.shutdown();
});

test("flushAt: the 3rd click sends at once; fewer wait flushIntervalMs after the first", async (t) => {
  const e = env(t, { options: { flushAt: 3, flushIntervalMs: 1000 } });
  const tr = createTracker(e.options);
  await settle();
  const ids = [tr.trackClick(TOKEN), tr.trackClick(TOKEN), tr.trackClick(TOKEN)];
  await settle();
  assert.deepEqual(e.fetch.ids(), [ids]);
  const a = tr.trackClick(TOKEN);
  await e.clock.advance(400);
  const b = tr.trackClick(TOKEN);
  await e.clock.advance(599);
  assert.equal(e.fetch.calls.length, 1);
  await e.clock.advance(1); // 1000 ms after the first waiting click: both go together
  assert.deepEqual(e.fetch.ids(), [ids, [a, b]]);
  assert.equal(e.sends[1].at, e.clock.t);
  assert.equal(tr.stats().accepted, 5);
  tr.shutdown();
});

test("a retryable item is resent with the same click_id after backoff; final items are never resent", async (t) => {
  const fetch = fakeFetch([(b) => ({ status: 202, body: answer(b, (c, i) => ["accepted", "retryable", "rejected", "duplicate"][i]) })]);
  const e = env(t, { fetch, options: { random: () => 0.5 } });
  const tr = createTracker(e.options);
  const ids = [1, 2, 3, 4].map(() => tr.trackClick(TOKEN));
  await tr.flush();
  assert.deepEqual(e.fetch.ids(), [ids]);
  assert.deepEqual(e.results, [
    { clickId: ids[0], status: "accepted" },
    { clickId: ids[2], status: "rejected", reasons: [{ field: "token", reason: "bad_signature" }] },
    { clickId: ids[3], status: "duplicate" },
  ]);
  const t1 = e.clock.t;
  assert.deepEqual(e.storage.queue(), { [ids[1]]: { item: e.fetch.calls[0].body.clicks[1], attempts: 1, next: t1 + 100, beaconed: false } });
  assert.equal(e.clock.nextAt(), t1 + 100); // 0.5 * min(30000, 200 * 2**0)
  await e.clock.advance(99);
  assert.equal(e.fetch.calls.length, 1);
  await e.clock.advance(1);
  assert.deepEqual(e.fetch.ids(), [ids, [ids[1]]]);
  assert.deepEqual(e.fetch.calls[1].body.clicks[0], e.fetch.calls[0].body.clicks[1]); // same item, byte for byte
  assert.deepEqual(e.storage.queue(), {});
  assert.deepEqual(tr.stats(), { accepted: 2, duplicate: 1, rejected: 1, dropped: 0, retries: 1, requests: 2, beacons: 0, queued: 0 });
  await e.clock.advance(60000);
  assert.equal(e.fetch.calls.length, 2);
  tr.shutdown();
});

for (const [name, step, wait] of [
  ["503 + Retry-After seconds", (b) => ({ status: 503, body: answer(b, "retryable"), headers: { "Retry-After": "7" } }), 7000],
  ["503 + Retry-After HTTP-date", () => ({ status: 503, body: null, headers: { "Retry-After": new Date(1_767_225_600_000 + 12_000).toUTCString() } }), 12000],
  ["503 + Retry-After beyond the 60 s cap", () => ({ status: 503, headers: { "Retry-After": "3600" } }), 60000],
  ["429 without results", () => ({ status: 429, body: { message: "Too Many Requests" } }), 100],
  ["429 + Retry-After", () => ({ status: 429, headers: { "Retry-After": "3" } }), 3000],
  ["500", () => ({ status: 500, body: { error: "boom" } }), 100],
  ["502 without a body", () => ({ status: 502 }), 100],
  ["408", () => ({ status: 408 }), 100],
  ["a network error", "network", 100],
]) {
  test(`retry after ${name}: same click_ids, waits ${wait} ms`, async (t) => {
    const fetch = fakeFetch([step]);
    const e = env(t, { fetch, options: { random: () => 0.5 } });
    const tr = createTracker(e.options);
    const ids = [tr.trackClick(TOKEN), tr.trackClick(TOKEN)];
    const items = Object.values(e.storage.queue()).map((v) => v.item);
    await tr.flush();
    const t1 = e.clock.t;
    assert.equal(e.fetch.calls.length, 1);
    assert.deepEqual(e.results, []);
    for (const id of ids) assert.deepEqual(e.storage.queue()[id], { item: items[ids.indexOf(id)], attempts: 1, next: t1 + wait, beaconed: false });
    await e.clock.advance(wait - 1);
    assert.equal(e.fetch.calls.length, 1);
    await e.clock.advance(1);
    assert.deepEqual(e.fetch.ids(), [ids, ids]);
    assert.deepEqual(e.fetch.calls[1].body, e.fetch.calls[0].body);
    assert.deepEqual(e.results.map((r) => r.status), ["accepted", "accepted"]);
    assert.deepEqual(e.storage.queue(), {});
    assert.equal(tr.stats().retries, 2);
    tr.shutdown();
  });
}

test("a batch that failed together is retried together: one backoff draw for the batch, one request", async (t) => {
  const draws = [0.9, 0.1, 0.5, 0.3];
  const fetch = fakeFetch(["network"]);
  const e = env(t, { fetch, options: { random: () => draws.shift() ?? 0.5 } });
  const tr = createTracker(e.options);
  const ids = [1, 2, 3].map(() => tr.trackClick(TOKEN));
  await tr.flush();
  const t1 = e.clock.t;
  // 0.9 * min(30000, 200 * 2**0) = 180 ms for all three (per-item draws would split them up)
  assert.deepEqual(Object.values(e.storage.queue()).map((v) => v.next), [t1 + 180, t1 + 180, t1 + 180]);
  await e.clock.advance(180);
  assert.deepEqual(e.fetch.ids(), [ids, ids]);
  assert.deepEqual(e.storage.queue(), {});
  tr.shutdown();
});

test("Retry-After holds every send, new clicks included, until it has passed", async (t) => {
  const fetch = fakeFetch([{ status: 503, headers: { "Retry-After": "10" } }]);
  const e = env(t, { fetch, options: { random: () => 0, flushAt: 1 } });
  const tr = createTracker(e.options);
  const first = tr.trackClick(TOKEN); // flushAt 1: sent at once, 503 Retry-After 10 s
  await settle();
  assert.equal(e.fetch.calls.length, 1);
  await e.clock.advance(2000);
  const second = tr.trackClick(TOKEN); // would go at once, but the API asked for 10 s
  await tr.flush();
  await e.clock.advance(9999 - 2000);
  assert.equal(e.fetch.calls.length, 1);
  await e.clock.advance(1);
  assert.deepEqual(e.fetch.ids().slice(1).flat().sort(), [first, second].sort());
  assert.deepEqual(e.storage.queue(), {});
  tr.shutdown();
});

for (const status of [400, 415, 404]) {
  test(`${status} without results rejects every item of the request, not resent`, async (t) => {
    const fetch = fakeFetch([{ status, body: { error: "refused", status } }]);
    const e = env(t, { fetch });
    const tr = createTracker(e.options);
    const ids = [tr.trackClick(TOKEN), tr.trackClick(TOKEN)];
    await tr.flush();
    assert.deepEqual(e.results, ids.map((clickId) => ({ clickId, status: "rejected", reasons: [{ field: "request", reason: `http_${status}` }] })));
    assert.deepEqual(e.storage.queue(), {});
    await e.clock.advance(120000);
    assert.equal(e.fetch.calls.length, 1);
    assert.equal(tr.stats().rejected, 2);
    tr.shutdown();
  });
}

test("400 with per-item results (no valid click) follows the results", async (t) => {
  const fetch = fakeFetch([(b) => ({ status: 400, body: answer(b, "rejected") })]);
  const e = env(t, { fetch });
  const tr = createTracker(e.options);
  const id = tr.trackClick(TOKEN);
  await tr.flush();
  assert.deepEqual(e.results, [{ clickId: id, status: "rejected", reasons: [{ field: "token", reason: "bad_signature" }] }]);
  tr.shutdown();
});

test("413 splits the batch in halves down to single items; a single item refused with 413 is rejected", async (t) => {
  // refuse any request with more than 1 item whose first item is ids[0], and ids[0] alone
  let ids;
  const fetch = fakeFetch([], (b) => (b.clicks.some((c) => c.click_id == ids[0]) ? { status: 413, body: { error: "too large" } } : { status: 202, body: answer(b) }));
  const e = env(t, { fetch });
  const tr = createTracker(e.options);
  ids = [1, 2, 3, 4, 5].map(() => tr.trackClick(TOKEN));
  await tr.flush();
  assert.deepEqual(e.fetch.ids(), [ids, ids.slice(0, 3), ids.slice(0, 2), [ids[0]], [ids[1]], [ids[2]], ids.slice(3)]);
  assert.deepEqual(
    e.results.map((r) => [r.clickId, r.status]),
    [[ids[0], "rejected"], [ids[1], "accepted"], [ids[2], "accepted"], [ids[3], "accepted"], [ids[4], "accepted"]],
  );
  assert.deepEqual(e.results[0].reasons, [{ field: "request", reason: "http_413" }]);
  assert.deepEqual(e.storage.queue(), {});
  tr.shutdown();
});

test("backoff grows with full jitter (injected random) and is capped", async (t) => {
  const fetch = fakeFetch([], "network");
  const e = env(t, { fetch, options: { random: () => 0.75, backoffBaseMs: 100, backoffCapMs: 1000, maxAttempts: 20 } });
  const tr = createTracker(e.options);
  tr.trackClick(TOKEN);
  await tr.flush();
  const waits = [];
  for (let i = 0; i < 7; i++) waits.push(await e.clock.runNext());
  // 0.75 * min(1000, 100 * 2**n), n = 0..6
  assert.deepEqual(waits, [75, 150, 300, 600, 750, 750, 750]);
  assert.equal(e.fetch.calls.length, 8);
  assert.equal(new Set(e.fetch.calls.map((c) => c.init.body)).size, 1);
  tr.shutdown();
});

test("after maxAttempts the item stays persisted and the next page load sends it", async (t) => {
  const fetch = fakeFetch([], "network");
  const e = env(t, { fetch, options: { maxAttempts: 3 } });
  const tr = createTracker(e.options);
  const id = tr.trackClick(TOKEN);
  await e.clock.advance(1000);
  while (e.clock.pending()) await e.clock.runNext();
  assert.equal(e.fetch.calls.length, 3);
  assert.equal(e.storage.queue()[id].attempts, 3);
  assert.deepEqual(e.results, []);
  assert.equal(tr.stats().queued, 1);
  tr.shutdown();
  // next page load: same storage, a network that works
  const fetch2 = fakeFetch();
  const tr2 = createTracker({ ...e.options, fetch: fetch2 });
  await settle();
  assert.deepEqual(fetch2.ids(), [[id]]);
  assert.deepEqual(e.results, [{ clickId: id, status: "accepted" }]);
  assert.deepEqual(e.storage.queue(), {});
  tr2.shutdown();
});

test("offline: clicks queued while every fetch fails survive a reload and are sent when the network works", async (t) => {
  const offline = fakeFetch([], "network");
  const e = env(t, { fetch: offline });
  const tr = createTracker(e.options);
  const ids = [tr.trackClick(TOKEN), tr.trackClick(TOKEN)];
  await e.clock.advance(5000);
  const ids3 = tr.trackClick(TOKEN);
  await e.clock.advance(5000);
  assert.ok(offline.calls.length >= 3);
  tr.shutdown();
  await e.clock.advance(60000);
  const online = fakeFetch();
  const tr2 = createTracker({ ...e.options, fetch: online });
  await settle();
  assert.deepEqual(online.ids().flat().sort(), [...ids, ids3].sort());
  assert.equal(online.calls.length, 1);
  assert.deepEqual(e.storage.queue(), {});
  assert.equal(tr2.stats().accepted, 3);
  tr2.shutdown();
});

test("reload during backoff: the stored next-attempt time is honoured", async (t) => {
  const fetch = fakeFetch([{ status: 503, headers: { "Retry-After": "30" } }]);
  const e = env(t, { fetch });
  const tr = createTracker(e.options);
  const id = tr.trackClick(TOKEN);
  await tr.flush();
  tr.shutdown();
  const fetch2 = fakeFetch();
  const tr2 = createTracker({ ...e.options, fetch: fetch2 });
  await e.clock.advance(29999);
  assert.equal(fetch2.calls.length, 0);
  await e.clock.advance(1);
  assert.deepEqual(fetch2.ids(), [[id]]);
  tr2.shutdown();
});
