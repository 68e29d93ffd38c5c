// Page life (pagehide, visibility, links), limits, consent, tabs, broken storage, defaults.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as sdk from "../src/index.js";
import { autoInit } from "../src/browser.js";
import { FakeTarget, MemoryStorage, TOKEN, answer, element, env, fakeBeacon, fakeFetch, response, settle } from "./helpers.js";

const { createTracker } = sdk;
const URL = "https://api.example/v1/public/clicks";

test("pagehide: everything waiting goes by sendBeacon as a text/plain Blob; items stay, marked; the next page resends and removes them on duplicate", async (t) => {
  const e = env(t);
  const tr = createTracker(e.options);
  await settle();
  const ids = [tr.trackClick(TOKEN), tr.trackClick(TOKEN)];
  const items = ids.map((id) => e.storage.queue()[id].item);
  e.window.fire("pagehide", { persisted: false });
  assert.equal(e.sendBeacon.calls.length, 1);
  const { url, data } = e.sendBeacon.calls[0];
  assert.equal(url, URL);
  assert.ok(data instanceof Blob);
  assert.equal(data.type, "text/plain;charset=utf-8");
  assert.deepEqual(JSON.parse(await data.text()), { clicks: items });
  assert.deepEqual(e.sends, [{ clickIds: ids, transport: "beacon", at: e.clock.t }]);
  for (const id of ids) assert.equal(e.storage.queue()[id].beaconed, true);
  assert.equal(tr.stats().beacons, 1);
  assert.equal(tr.stats().queued, 2);
  // neither the batch timer nor a flush resends them on this (hidden, going) page
  await e.clock.advance(5000);
  await tr.flush();
  assert.equal(e.fetch.calls.length, 0);
  e.window.fire("pagehide", { persisted: false });
  assert.equal(e.sendBeacon.calls.length, 1); // not beaconed twice
  tr.shutdown();
  // next page load: the API saw the beacon and answers duplicate
  const fetch2 = fakeFetch([(b) => ({ status: 202, body: answer(b, "duplicate") })]);
  const tr2 = createTracker({ ...e.options, fetch: fetch2 });
  await settle();
  assert.deepEqual(fetch2.ids(), [ids]);
  assert.deepEqual(fetch2.calls[0].body, { clicks: items });
  assert.deepEqual(e.results, ids.map((clickId) => ({ clickId, status: "duplicate" })));
  assert.deepEqual(e.storage.queue(), {});
  assert.equal(tr2.stats().duplicate, 2);
  tr2.shutdown();
});

test("visibilitychange: hidden beacons, visible again resends by fetch (accepted if the beacon was lost)", async (t) => {
  const e = env(t);
  const tr = createTracker(e.options);
  const id = tr.trackClick(TOKEN);
  e.document.visibilityState = "hidden";
  e.document.fire("visibilitychange");
  assert.equal(e.sendBeacon.calls.length, 1);
  assert.equal(e.fetch.calls.length, 0);
  e.document.visibilityState = "visible";
  e.document.fire("visibilitychange");
  await settle();
  assert.deepEqual(e.fetch.ids(), [[id]]);
  assert.deepEqual(e.results, [{ clickId: id, status: "accepted" }]);
  assert.deepEqual(e.storage.queue(), {});
  tr.shutdown();
});

test("sendBeacon refused or missing: keepalive fetch instead", async (t) => {
  for (const sendBeacon of [fakeBeacon(false), null]) {
    const e = env(t, { sendBeacon: sendBeacon || undefined, options: sendBeacon ? {} : { sendBeacon: null } });
    const tr = createTracker(e.options);
    await settle();
    const id = tr.trackClick(TOKEN);
    e.window.fire("pagehide");
    assert.equal(e.fetch.calls.length, 1); // started synchronously inside the pagehide handler
    assert.equal(e.fetch.calls[0].init.keepalive, true);
    assert.deepEqual(e.fetch.ids(), [[id]]);
    await settle();
    assert.deepEqual(e.results, [{ clickId: id, status: "accepted" }]);
    tr.shutdown();
  }
});

test("an item in a request when the page hides is not beaconed too", async (t) => {
  const e = env(t);
  let release;
  const tr = createTracker({
    ...e.options,
    fetch: async (url, init) => {
      const body = JSON.parse(init.body);
      e.fetch.calls.push({ url, init, body });
      await new Promise((r) => (release = r));
      return response({ status: 202, body: answer(body) });
    },
  });
  const a = tr.trackClick(TOKEN);
  tr.flush();
  await settle();
  assert.deepEqual(e.fetch.ids(), [[a]]);
  const b = tr.trackClick(TOKEN);
  e.window.fire("pagehide");
  assert.equal(e.sendBeacon.calls.length, 1);
  assert.deepEqual(JSON.parse(await e.sendBeacon.calls[0].data.text()).clicks.map((c) => c.click_id), [b]);
  release();
  await settle();
  assert.deepEqual(e.results, [{ clickId: a, status: "accepted" }]);
  assert.deepEqual(Object.keys(e.storage.queue()), [b]);
  tr.shutdown();
});

test("batches stay within maxBatchBytes (bodies measured in UTF-8 bytes) and 500 items", async (t) => {
  const e = env(t, { options: { maxBatchBytes: 2000, flushAt: 10000 } });
  const tr = createTracker(e.options);
  const ids = [];
  for (let i = 0; i < 10; i++) ids.push(tr.trackClick(TOKEN, { referrer: "https://ü.example/" + "é".repeat(100) }));
  await tr.flush();
  assert.ok(e.fetch.calls.length > 1);
  for (const c of e.fetch.calls) assert.ok(new TextEncoder().encode(c.init.body).length <= 2000, c.init.body.length);
  assert.deepEqual(e.fetch.ids().flat(), ids);
  tr.shutdown();

  const e2 = env(t, { options: { flushAt: 10000, maxBatchBytes: 1e9 } });
  const tr2 = createTracker(e2.options);
  for (let i = 0; i < 600; i++) tr2.trackClick("t", { clickId: "c" + i });
  await tr2.flush();
  assert.deepEqual(e2.fetch.calls.map((c) => c.body.clicks.length), [500, 100]);
  tr2.shutdown();
});

test("beacons are chunked by maxBatchBytes too", async (t) => {
  const e = env(t, { options: { maxBatchBytes: 1000 } });
  const tr = createTracker(e.options);
  const ids = [1, 2, 3, 4, 5, 6].map(() => tr.trackClick(TOKEN));
  e.window.fire("pagehide");
  assert.ok(e.sendBeacon.calls.length >= 2);
  const sent = [];
  for (const c of e.sendBeacon.calls) {
    assert.ok(c.data.size <= 1000);
    sent.push(...JSON.parse(await c.data.text()).clicks.map((x) => x.click_id));
  }
  assert.deepEqual(sent, ids);
  assert.equal(tr.stats().beacons, e.sendBeacon.calls.length);
  tr.shutdown();
});

test("maxQueue: the oldest item is dropped and reported", async (t) => {
  const e = env(t, { options: { maxQueue: 3, flushAt: 100 } });
  const tr = createTracker(e.options);
  const ids = [];
  for (let i = 0; i < 5; i++) {
    ids.push(tr.trackClick(TOKEN));
    e.clock.t += 1;
  }
  assert.deepEqual(e.results, [{ clickId: ids[0], status: "dropped" }, { clickId: ids[1], status: "dropped" }]);
  assert.deepEqual(Object.keys(e.storage.queue()).sort(), ids.slice(2).sort());
  assert.equal(tr.stats().dropped, 2);
  assert.equal(tr.stats().queued, 3);
  await tr.flush();
  assert.deepEqual(e.fetch.ids(), [ids.slice(2)]);
  tr.shutdown();
});

test("maxItemAgeMs: items too old are dropped, never sent (also those found in storage)", async (t) => {
  const storage = new MemoryStorage();
  const e = env(t, { storage, options: { maxItemAgeMs: 60000 } });
  const old = { click_id: "old-1", user_id: "u", timestamp: e.clock.t - 60001, token: TOKEN };
  storage.setItem("clickagg:q:old-1", JSON.stringify({ item: old, attempts: 2, next: 0, beaconed: false }));
  storage.setItem("clickagg:q:junk", "{not json");
  storage.setItem("other:key", "kept");
  const fetch = fakeFetch([], "network");
  const tr = createTracker({ ...e.options, fetch });
  await settle();
  assert.deepEqual(e.results, [{ clickId: "old-1", status: "dropped" }]);
  assert.deepEqual(e.storage.queue(), {});
  assert.equal(storage.getItem("other:key"), "kept");
  const id = tr.trackClick(TOKEN);
  await e.clock.advance(60000); // 10 failed attempts (1000 + 100 + 200 + ... + 15000 ms), the item is 60 s old
  assert.equal(fetch.calls.length, 10);
  await tr.flush();
  assert.equal(e.results.length, 1);
  assert.ok(e.storage.queue()[id]);
  e.clock.t += 1; // now older than 60 s: dropped at the next look, never sent again
  await tr.flush();
  assert.deepEqual(e.results.at(-1), { clickId: id, status: "dropped" });
  assert.deepEqual(e.storage.queue(), {});
  assert.equal(fetch.calls.length, 10);
  assert.equal(e.clock.pending(), 0);
  tr.shutdown();
});

test("consent denied: no storage write at all, nothing sent, trackClick returns null", async (t) => {
  const e = env(t, { options: { consent: "denied" } });
  const tr = createTracker(e.options);
  assert.equal(tr.trackClick(TOKEN), null);
  e.window.fire("pagehide");
  const a = element("a", { "data-clickagg-token": TOKEN });
  e.document.fire("click", { target: a, button: 0 });
  await e.clock.advance(10000);
  await tr.flush();
  assert.equal(e.storage.sets, 0);
  assert.equal(e.storage.map.size, 0);
  assert.equal(e.fetch.calls.length, 0);
  assert.equal(e.sendBeacon.calls.length, 0);
  assert.equal(tr.stats().queued, 0);
  tr.shutdown();
});

test("consent denied at init deletes what an earlier page stored", async (t) => {
  const storage = new MemoryStorage();
  storage.setItem("clickagg:uid", "u1");
  storage.setItem("clickagg:q:x", JSON.stringify({ item: { click_id: "x", user_id: "u1", timestamp: 1, token: "t" }, attempts: 0, next: 0 }));
  storage.setItem("app:key", "kept");
  storage.sets = 0;
  const e = env(t, { storage, options: { consent: "denied" } });
  const tr = createTracker(e.options);
  await settle();
  assert.deepEqual([...storage.map.keys()], ["app:key"]);
  assert.equal(storage.sets, 0);
  assert.equal(e.fetch.calls.length, 0);
  tr.shutdown();
});

test("switching consent to denied wipes every clickagg:* key and the queue; an answer arriving later writes nothing", async (t) => {
  let release;
  const e = env(t);
  const calls = [];
  const tr = createTracker({
    ...e.options,
    fetch: async (u, i) => {
      const b = JSON.parse(i.body);
      calls.push(b);
      await new Promise((r) => (release = r));
      return response({ status: 503, body: answer(b, "retryable") });
    },
  });
  const a = tr.trackClick(TOKEN);
  tr.flush();
  await settle();
  tr.trackClick(TOKEN);
  e.storage.setItem("app:key", "kept");
  assert.equal(e.storage.map.size, 4); // uid, 2 items, app:key
  tr.setConsent(false);
  assert.deepEqual([...e.storage.map.keys()], ["app:key"]);
  assert.equal(tr.stats().queued, 0);
  const sets = e.storage.sets;
  release();
  await settle();
  await e.clock.advance(120000);
  assert.equal(e.storage.sets, sets);
  assert.deepEqual([...e.storage.map.keys()], ["app:key"]);
  assert.equal(calls.length, 1);
  assert.equal(tr.trackClick(TOKEN), null);
  // granted again: works, with a new anonymous id
  tr.setConsent(true);
  const b = tr.trackClick(TOKEN);
  assert.ok(b && b != a);
  assert.notEqual(e.storage.queue()[b].item.user_id, calls[0].clicks[0].user_id);
  tr.shutdown();
});

test("two tabs on one storage never lose an item; each finished item is removed once", async (t) => {
  const e = env(t, { options: { flushAt: 100 } });
  const fa = fakeFetch();
  const fb = fakeFetch([(b) => ({ status: 503, body: answer(b, "retryable"), headers: { "Retry-After": "5" } })]);
  const ra = [];
  const rb = [];
  const A = createTracker({ ...e.options, fetch: fa, onResult: (r) => ra.push(r) });
  const B = createTracker({ ...e.options, fetch: fb, onResult: (r) => rb.push(r), document: new FakeTarget(), window: new FakeTarget() });
  await settle();
  const a = [A.trackClick(TOKEN), A.trackClick(TOKEN)];
  const b = [B.trackClick(TOKEN), B.trackClick(TOKEN)];
  assert.equal(Object.keys(e.storage.queue()).length, 4); // nobody overwrote anybody
  await B.flush(); // B finds A's items too: 503, all retryable, written back with B's backoff
  assert.deepEqual(fb.ids(), [[...b, ...a]]);
  assert.deepEqual(Object.values(e.storage.queue()).map((v) => v.attempts), [1, 1, 1, 1]);
  await A.flush(); // A sends its own items (B's wait for their backoff)
  assert.deepEqual(fa.ids(), [a]);
  assert.deepEqual(Object.keys(e.storage.queue()).sort(), [...b].sort());
  await e.clock.advance(5000); // B's retry: A's items are gone from storage (finished): forgotten, not resent
  assert.deepEqual(fb.ids(), [[...b, ...a], b]);
  assert.deepEqual(e.storage.queue(), {});
  assert.equal(A.stats().queued, 0);
  assert.equal(B.stats().queued, 0);
  assert.deepEqual(ra, a.map((clickId) => ({ clickId, status: "accepted" })));
  assert.deepEqual(rb, b.map((clickId) => ({ clickId, status: "accepted" })));
  await e.clock.advance(60000);
  assert.equal(fa.calls.length + fb.calls.length, 3);
  A.shutdown();
  B.shutdown();
});

test("two tabs: an answer arriving after the other tab finished the item does not write it back", async (t) => {
  const e = env(t, { options: { flushAt: 100 } });
  let release;
  const fb = [];
  const fa = fakeFetch();
  const A = createTracker({ ...e.options, fetch: fa });
  const B = createTracker({
    ...e.options,
    document: new FakeTarget(),
    window: new FakeTarget(),
    fetch: async (url, init) => {
      const body = JSON.parse(init.body);
      fb.push(body.clicks.map((c) => c.click_id));
      if (fb.length == 1) await new Promise((r) => (release = r));
      return response(fb.length == 1 ? { status: 503, body: answer(body, "retryable") } : { status: 202, body: answer(body) });
    },
  });
  await settle();
  const a = A.trackClick(TOKEN);
  const b = B.trackClick(TOKEN);
  B.flush(); // B sends [b, a] and waits for the answer
  await settle();
  assert.deepEqual(fb, [[b, a]]);
  await A.flush(); // meanwhile A sends [a, b]: both accepted, both keys removed
  assert.deepEqual(fa.ids(), [[a, b]]);
  assert.deepEqual(e.storage.queue(), {});
  release(); // B's late 503: nothing is written back, both are forgotten (finished elsewhere)
  await settle();
  assert.deepEqual(e.storage.queue(), {});
  assert.equal(B.stats().queued, 0);
  await e.clock.advance(60000);
  assert.equal(fb.length, 1);
  A.shutdown();
  B.shutdown();
});

test("two tabs: an item one tab is resending while the other finishes it is at worst answered duplicate", async (t) => {
  const e = env(t, { options: { flushAt: 100 } });
  const seen = new Set();
  const api = (b) => ({ status: 202, body: answer(b, (c) => (seen.has(c.click_id) ? "duplicate" : (seen.add(c.click_id), "accepted"))) });
  const fa = fakeFetch([], api);
  const fb = fakeFetch([], api);
  const A = createTracker({ ...e.options, fetch: fa });
  const B = createTracker({ ...e.options, fetch: fb, onResult: () => {}, document: new FakeTarget(), window: new FakeTarget() });
  const ids = [];
  for (let i = 0; i < 5; i++) {
    ids.push(A.trackClick(TOKEN), B.trackClick(TOKEN));
  }
  await Promise.all([A.flush(), B.flush()]);
  await e.clock.advance(5000);
  assert.deepEqual([...seen].sort(), [...ids].sort());
  assert.deepEqual(e.storage.queue(), {});
  A.shutdown();
  B.shutdown();
});

test("storage that throws on everything: items in memory, still sent", async (t) => {
  const storage = new MemoryStorage({ throwAll: true });
  const e = env(t, { storage });
  const tr = createTracker(e.options);
  const id = tr.trackClick(TOKEN);
  assert.ok(id);
  assert.equal(tr.stats().queued, 1);
  await e.clock.advance(1000);
  assert.deepEqual(e.fetch.ids(), [[id]]);
  assert.match(e.fetch.calls[0].body.clicks[0].user_id, /^[0-9a-f-]{36}$/);
  assert.deepEqual(e.results, [{ clickId: id, status: "accepted" }]);
  tr.shutdown();
});

test("storage full (setItem throws): items in memory, retried, then sent; the uid stays the same", async (t) => {
  const storage = new MemoryStorage({ throwOnSet: true });
  const fetch = fakeFetch(["network"]);
  const e = env(t, { storage, fetch });
  const tr = createTracker(e.options);
  const a = tr.trackClick(TOKEN);
  const b = tr.trackClick(TOKEN);
  await e.clock.advance(1000);
  await e.clock.runNext();
  assert.deepEqual(fetch.ids(), [[a, b], [a, b]]);
  assert.equal(fetch.calls[0].body.clicks[0].user_id, fetch.calls[0].body.clicks[1].user_id);
  assert.deepEqual(e.results.map((r) => r.status), ["accepted", "accepted"]);
  tr.shutdown();
});

test("no storage at all (storage: null)", async (t) => {
  const e = env(t, { options: { storage: null } });
  const tr = createTracker(e.options);
  const id = tr.trackClick(TOKEN);
  await tr.flush();
  assert.deepEqual(e.fetch.ids(), [[id]]);
  assert.equal(e.storage.sets, 0);
  tr.shutdown();
});

test("link clicks: the nearest a[data-clickagg-token] is tracked and sent at once; nothing prevented", async (t) => {
  const e = env(t);
  const tr = createTracker(e.options);
  await settle();
  const a = element("a", { "data-clickagg-token": "tok-A", href: "https://adv.example/" });
  const img = element("img", {}, element("span", {}, a));
  const ev = e.document.fire("click", { target: img, button: 0 });
  assert.equal(ev.defaultPrevented, false);
  assert.equal(ev.prevented, undefined);
  const q = Object.values(e.storage.queue());
  assert.equal(q.length, 1); // persisted synchronously inside the listener
  assert.equal(q[0].item.token, "tok-A");
  await settle(); // no timer advance: sent immediately
  assert.equal(e.fetch.calls.length, 1);
  assert.equal(e.fetch.calls[0].body.clicks[0].token, "tok-A");
  assert.equal(e.sends[0].at, e.clock.t);
  // middle button: auxclick; right button: ignored; a click elsewhere: ignored; already prevented: tracked
  for (const [type, props] of [
    ["auxclick", { target: a, button: 1 }],
    ["auxclick", { target: a, button: 2 }],
    ["click", { target: element("a", { href: "/x" }), button: 0 }],
    ["click", { target: { nodeType: 3, parentNode: a }, button: 0 }],
    ["click", { target: a, button: 0, defaultPrevented: true }],
  ]) {
    e.document.fire(type, props);
    await settle();
  }
  assert.deepEqual(e.fetch.calls.map((c) => c.body.clicks.map((x) => x.token)), [["tok-A"], ["tok-A"], ["tok-A"], ["tok-A"]]);
  assert.equal(new Set(e.fetch.ids().flat()).size, 4);
  assert.equal(e.document.listeners.filter((l) => l.capture).length, 2);
  tr.shutdown();
  assert.equal(e.document.listeners.length, 0);
  assert.equal(e.window.listeners.length, 0);
});

test("linkAttribute option and autoLinks: false", async (t) => {
  const e = env(t, { options: { linkAttribute: "data-ad" } });
  const tr = createTracker(e.options);
  e.document.fire("click", { target: element("a", { "data-clickagg-token": "x" }), button: 0 });
  e.document.fire("click", { target: element("a", { "data-ad": "tok-B" }), button: 0 });
  await settle();
  assert.deepEqual(e.fetch.calls.map((c) => c.body.clicks[0].token), ["tok-B"]);
  tr.shutdown();
  const e2 = env(t, { options: { autoLinks: false } });
  const tr2 = createTracker(e2.options);
  assert.equal(e2.document.listeners.filter((l) => l.type == "click").length, 0);
  tr2.shutdown();
});

test("init makes the default tracker for the module-level trackClick, flush and setConsent", async (t) => {
  assert.equal(sdk.trackClick(TOKEN), null); // before init
  const e = env(t);
  const tr = sdk.init(e.options);
  assert.equal(sdk.getTracker(), tr);
  const id = sdk.trackClick(TOKEN);
  await sdk.flush();
  assert.deepEqual(e.fetch.ids(), [[id]]);
  sdk.setConsent(false);
  assert.equal(sdk.trackClick(TOKEN), null);
  const tr2 = sdk.init({ ...e.options, document: null, window: null });
  assert.equal(e.document.listeners.length, 0); // the first one was shut down
  assert.notEqual(tr2, tr);
  tr2.shutdown();
});

test("script-tag auto-init reads data-endpoint, data-flush-interval, data-consent", async (t) => {
  assert.equal(autoInit(null), null);
  assert.equal(autoInit(element("script", {})), null);
  const e = env(t);
  Object.assign(globalThis, { localStorage: e.storage, fetch: e.fetch, document: e.document, window: e.window });
  t.after(() => {
    for (const k of ["localStorage", "document", "window"]) delete globalThis[k];
  });
  const realFetch = globalThis.fetch;
  t.after(() => (globalThis.fetch = realFetch));
  globalThis.fetch = e.fetch;
  // defaults read from the environment (no injection): Date.now, so no fake clock here
  const tr = autoInit(element("script", { "data-endpoint": "https://collect.example", "data-flush-interval": "250" }));
  assert.equal(sdk.getTracker(), tr);
  const id = sdk.trackClick(TOKEN);
  const stored = JSON.parse(e.storage.getItem("clickagg:q:" + id));
  assert.equal(stored.next - stored.item.timestamp, 250);
  await sdk.flush();
  assert.equal(e.fetch.calls[0].url, "https://collect.example/v1/public/clicks");
  const denied = autoInit(element("script", { "data-endpoint": "https://collect.example", "data-consent": "denied" }));
  assert.equal(denied.trackClick(TOKEN), null);
  denied.shutdown();
});
