// @ts-check
/**
 * The two ways a batch leaves the page. Both send `text/plain;charset=UTF-8` (a CORS-safelisted
 * content type: no preflight request, and `navigator.sendBeacon` may send it).
 */

export const CONTENT_TYPE = "text/plain;charset=UTF-8";

/**
 * @typedef {(url: string, init: RequestInit) => Promise<Response>} FetchLike
 * @typedef {(url: string, data: Blob) => boolean} SendBeaconLike
 * @typedef {{status: number, retryAfter: string | null, body: any}} Answer
 */

/**
 * POSTs a body with a keepalive fetch (it survives a navigation that starts right after it), no
 * credentials, no cookies. Rejects on a network error (which is also how a browser sees an
 * answer without CORS headers, e.g. API Gateway's own 429).
 * @param {FetchLike} fetchFn
 * @param {string} url
 * @param {string} body
 * @param {number} bytes the body's UTF-8 length (keepalive bodies are limited to 64 KiB)
 * @returns {Promise<Answer>}
 */
export async function post(fetchFn, url, body, bytes) {
  const res = await fetchFn(url, {
    method: "POST",
    body,
    keepalive: bytes <= 65536,
    credentials: "omit",
    mode: "cors",
    headers: { "Content-Type": CONTENT_TYPE },
    // a request that hangs must not hold the queue (one request in flight): after 30 s it fails
    // like a network error and is retried (the click_ids make that safe)
    signal: typeof AbortSignal != "undefined" && AbortSignal.timeout ? AbortSignal.timeout(30000) : undefined,
  });
  let json = null;
  try {
    json = await res.json();
  } catch {}
  return { status: res.status, retryAfter: res.headers.get("Retry-After"), body: json };
}

/**
 * Queues a body with `navigator.sendBeacon` (the answer cannot be read).
 * @param {SendBeaconLike | null | undefined} sendBeacon
 * @param {string} url
 * @param {string} body
 * @returns {boolean} whether the browser took it
 */
export function beacon(sendBeacon, url, body) {
  try {
    return !!sendBeacon && !!sendBeacon(url, new Blob([body], { type: CONTENT_TYPE }));
  } catch {
    return false;
  }
}
