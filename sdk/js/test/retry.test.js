import assert from "node:assert/strict";
import { test } from "node:test";
import { backoff, isFinal, requestOutcome, retryAfterMs } from "../src/retry.js";

test("backoff is full jitter: random() * min(cap, base * 2**attempt)", () => {
  assert.equal(backoff(0, 200, 30000, () => 0), 0);
  assert.equal(backoff(0, 200, 30000, () => 0.5), 100);
  assert.equal(backoff(3, 200, 30000, () => 0.5), 800);
  assert.equal(backoff(3, 200, 30000, () => 0.999), 1598.4);
  assert.equal(backoff(10, 200, 30000, () => 0.5), 15000); // 204800 capped at 30000
  assert.equal(backoff(60, 200, 30000, () => 1), 30000);
});

test("Retry-After: seconds, HTTP-date, capped at 60 s, garbage and the past are 0", () => {
  const now = Date.UTC(2026, 0, 1, 0, 0, 0);
  assert.equal(retryAfterMs("7", now), 7000);
  assert.equal(retryAfterMs(" 2 ", now), 2000);
  assert.equal(retryAfterMs("600", now), 60000);
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:30 GMT", now), 30000);
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 01:00:00 GMT", now), 60000);
  assert.equal(retryAfterMs("Wed, 31 Dec 2025 23:00:00 GMT", now), 0);
  assert.equal(retryAfterMs("soon", now), 0);
  assert.equal(retryAfterMs("-5", now), 0);
  assert.equal(retryAfterMs(null, now), 0);
  assert.equal(retryAfterMs("", now), 0);
});

test("a whole request's status without results", () => {
  const table = { 413: "split", 408: "retry", 429: "retry", 500: "retry", 502: "retry", 503: "retry", 504: "retry", 200: "retry", 202: "retry", 400: "reject", 401: "reject", 403: "reject", 404: "reject", 415: "reject", 422: "reject" };
  for (const [status, want] of Object.entries(table)) assert.equal(requestOutcome(+status), want, status);
});

test("final item statuses", () => {
  assert.deepEqual(["accepted", "duplicate", "rejected", "retryable", "dropped", undefined].map(isFinal), [true, true, true, false, false, false]);
});
