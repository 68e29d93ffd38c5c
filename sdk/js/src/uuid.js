// @ts-check
/**
 * UUID version 7 (RFC 9562 §5.7): 48-bit big-endian Unix time in milliseconds, version 7,
 * 12 bits `rand_a` used as a counter (§6.2 method 1) so ids made in the same millisecond still
 * sort in creation order, variant 0b10, 62 random bits (crypto.getRandomValues).
 */

let lastMs = -1;
let seq = 0;

/**
 * A new UUIDv7, lower-case hex with dashes (36 characters). Monotonic within one JavaScript
 * realm: if the clock stands still or goes back, the previous time is kept and the counter
 * goes up (on counter overflow the time part moves one millisecond ahead, as §6.2 allows).
 * @param {number} [ms] Unix time in milliseconds (default `Date.now()`)
 * @returns {string}
 */
export function uuidv7(ms = Date.now()) {
  const b = crypto.getRandomValues(new Uint8Array(16));
  if (ms > lastMs) {
    lastMs = ms;
    seq = ((b[6] & 7) << 8) | b[7]; // random start below 2048: room for 2048+ ids this ms
  } else if (++seq > 0xfff) {
    lastMs++;
    seq = 0;
  }
  let t = lastMs;
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = 0x70 | (seq >> 8);
  b[7] = seq & 255;
  b[8] = 0x80 | (b[8] & 0x3f);
  let h = "";
  for (const x of b) h += (x < 16 ? "0" : "") + x.toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
