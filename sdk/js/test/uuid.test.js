import assert from "node:assert/strict";
import { test } from "node:test";
import { uuidv7 } from "../src/uuid.js";

const LAYOUT = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("UUIDv7 layout: version 7, variant 10, the millisecond time in the first 48 bits", () => {
  const ms = 0x0190_1234_5678; // 1717...: a real epoch-ms value
  const id = uuidv7(ms);
  assert.match(id, LAYOUT);
  assert.equal(id.length, 36);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), ms);
  assert.equal(id[14], "7");
  assert.ok("89ab".includes(id[19]));
});

test("UUIDv7 time part of a realistic now, and ids sort in creation order", () => {
  const t0 = 1_767_225_600_123;
  const ids = [];
  for (let i = 0; i < 3000; i++) ids.push(uuidv7(t0 + Math.floor(i / 1000))); // 1000 ids per ms
  for (const id of ids) assert.match(id, LAYOUT);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, 3000);
  assert.equal(parseInt(ids[0].replace(/-/g, "").slice(0, 12), 16), t0);
  assert.equal(parseInt(ids[2999].replace(/-/g, "").slice(0, 12), 16), t0 + 2);
});

test("UUIDv7 stays monotonic when the clock goes back", () => {
  const a = uuidv7(2_000_000_000_000);
  const b = uuidv7(1_900_000_000_000);
  assert.ok(b > a, `${b} > ${a}`);
  assert.equal(parseInt(b.replace(/-/g, "").slice(0, 12), 16), 2_000_000_000_000);
});

test("UUIDv7 random bits differ between calls", () => {
  const a = uuidv7(3_000_000_000_000).slice(19);
  const b = uuidv7(3_000_000_000_001).slice(19);
  assert.notEqual(a, b);
});
