// @ts-check
/** Pure delivery rules: what an answer means for the items of a request, and when to retry. */

/** A `Retry-After` above this is cut to it (ms). */
export const RETRY_AFTER_CAP_MS = 60000;

/**
 * Full-jitter exponential backoff: `random() * min(cap, base * 2**attempt)`.
 * @param {number} attempt how many times the item was sent and failed before (0 for the first retry)
 * @param {number} base
 * @param {number} cap
 * @param {() => number} random in [0, 1)
 * @returns {number} ms to wait
 */
export const backoff = (attempt, base, cap, random) => random() * Math.min(cap, base * 2 ** attempt);

/**
 * A `Retry-After` header in ms from `now`: delay-seconds or an HTTP-date; 0 when absent, in the
 * past or unreadable; at most RETRY_AFTER_CAP_MS.
 * @param {string | null | undefined} value
 * @param {number} now epoch ms
 * @returns {number}
 */
export function retryAfterMs(value, now) {
  if (!value) return 0;
  const s = value.trim();
  const ms = /^\d+$/.test(s) ? +s * 1000 : Date.parse(s) - now;
  return ms > 0 ? Math.min(ms, RETRY_AFTER_CAP_MS) : 0;
}

/**
 * What a whole request's HTTP status means when the answer carries no per-item `results`:
 * `split` (413: too large; halve the batch, a single item is rejected), `retry` (408, 429, any
 * 5xx, and anything not 4xx: the outcome is unknown, the click_ids make a resend safe) or
 * `reject` (any other 4xx: the request is refused as a whole, resending cannot help).
 * @param {number} status
 * @returns {'split' | 'retry' | 'reject'}
 */
export function requestOutcome(status) {
  if (status == 413) return "split";
  return status == 408 || status == 429 || status < 400 || status > 499 ? "retry" : "reject";
}

/**
 * Whether an item status from the API is final (the item leaves the queue).
 * @param {unknown} status
 * @returns {status is 'accepted' | 'duplicate' | 'rejected'}
 */
export const isFinal = (status) => status == "accepted" || status == "duplicate" || status == "rejected";
