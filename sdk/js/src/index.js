// @ts-check
/**
 * @clickagg/sdk: clicks from a publisher page to `POST {endpoint}/v1/public/clicks`.
 * Every click gets a UUIDv7 click_id once, is persisted before `trackClick` returns, and leaves
 * the queue only when the API gave it a final answer (accepted, duplicate, rejected). The API
 * deduplicates by click_id, so resending is always safe: at-least-once delivery, counted once.
 */
import { uuidv7 } from "./uuid.js";
import { backoff, isFinal, requestOutcome, retryAfterMs, RETRY_AFTER_CAP_MS } from "./retry.js";
import { PREFIX, Queue } from "./queue.js";
import { beacon, post } from "./transport.js";
import { listenLinks } from "./links.js";

export { uuidv7 };

/**
 * @typedef {import('./queue.js').Click} Click
 * @typedef {import('./queue.js').Entry} Entry
 * @typedef {import('./queue.js').StorageLike} StorageLike
 * @typedef {import('./transport.js').FetchLike} FetchLike
 * @typedef {import('./transport.js').SendBeaconLike} SendBeaconLike
 * @typedef {{field: string, reason: string}} Reason
 * @typedef {'accepted' | 'duplicate' | 'rejected' | 'dropped'} FinalStatus
 * @typedef {{clickId: string, status: FinalStatus, reasons?: Reason[]}} ClickResult
 * @typedef {{clickIds: string[], transport: 'fetch' | 'beacon', at: number}} SendEvent
 * @typedef {{accepted: number, duplicate: number, rejected: number, dropped: number, retries: number, requests: number, beacons: number, queued: number}} Stats
 * @typedef {{addEventListener: EventTarget['addEventListener'], removeEventListener: EventTarget['removeEventListener']}} Listenable
 * @typedef {Listenable & {visibilityState?: string, referrer?: string, location?: {href: string}}} DocumentLike
 * @typedef {{clickId?: string, timestamp?: number, referrer?: string}} ClickOptions
 */

/**
 * @typedef {object} Options
 * @property {string} endpoint API base URL, e.g. `https://api.example` (the SDK appends `/v1/public/clicks`)
 * @property {string} [userId] the click's `user_id` (1..128 printable ASCII); default: an anonymous UUIDv7 kept in storage under `clickagg:uid`
 * @property {number} [flushAt] send when this many new clicks wait (20)
 * @property {number} [flushIntervalMs] send this long after the first waiting click (1000)
 * @property {number} [maxQueue] most items kept; beyond it the oldest is dropped (1000)
 * @property {number} [maxBatchBytes] largest request body, bytes (60000: keepalive and beacons are limited to 64 KiB in flight)
 * @property {number} [maxAttempts] sends of an item per page; then it waits for the next page load (10)
 * @property {number} [backoffBaseMs] (200)
 * @property {number} [backoffCapMs] (30000)
 * @property {number} [maxItemAgeMs] an item older than this (by its timestamp) is dropped: the API would refuse its token (86400000)
 * @property {'granted' | 'denied'} [consent] ('granted')
 * @property {boolean} [autoLinks] track clicks on `a[linkAttribute]` (true)
 * @property {string} [linkAttribute] ('data-clickagg-token')
 * @property {StorageLike | null} [storage] (localStorage; null: memory only)
 * @property {FetchLike} [fetch] (globalThis.fetch)
 * @property {SendBeaconLike | null} [sendBeacon] (navigator.sendBeacon)
 * @property {() => number} [now] (Date.now)
 * @property {() => number} [random] (Math.random)
 * @property {DocumentLike | null} [document] (globalThis.document)
 * @property {Listenable | null} [window] (globalThis.window)
 * @property {(result: ClickResult) => void} [onResult] once per item, when final
 * @property {(event: SendEvent) => void} [onSend] when a request leaves
 */

const DEFAULTS = {
  flushAt: 20,
  flushIntervalMs: 1000,
  maxQueue: 1000,
  maxBatchBytes: 60000,
  maxAttempts: 10,
  backoffBaseMs: 200,
  backoffCapMs: 30000,
  maxItemAgeMs: 86400000,
  consent: "granted",
  autoLinks: true,
  linkAttribute: "data-clickagg-token",
};

/** click_id and user_id: the API's identifier rule */
const IDENT = /^[\x21-\x7e]{1,128}$/;
const MAX_TOKEN = 4096;
const MAX_REFERRER = 2048;
const MAX_ITEMS = 500;
const UID_KEY = PREFIX + "uid";
const HEAD = '{"clicks":[';

/** @param {string} s */
const utf8Length = (s) => new TextEncoder().encode(s).length;

/** @param {any} f @param {any} a */
const call = (f, a) => {
  try {
    f && f(a);
  } catch {}
};

/** A tracker: one persisted queue, its timer, listeners and counters. */
export class Tracker {
  /** @type {Required<Omit<Options, 'userId' | 'onResult' | 'onSend'>> & Options} */
  #o;
  #url;
  /** @type {Queue} */
  #q;
  /** @type {string | null | undefined} */
  #uid;
  #consent;
  #closed = false;
  #busy = false;
  /** @type {any} */
  #timer;
  /** @type {Promise<void>} */
  #chain = Promise.resolve();
  /** @type {Set<string>} click_ids in a request now */
  #flight = new Set();
  /** @type {(() => void)[]} */
  #off = [];
  #n = { accepted: 0, duplicate: 0, rejected: 0, dropped: 0, retries: 0, requests: 0, beacons: 0 };
  /** nothing is sent before this (epoch ms): the API's last Retry-After */
  #notBefore = 0;

  /** @param {Options} options */
  constructor(options) {
    /** @type {any} */
    const o = { ...DEFAULTS };
    for (const [k, v] of Object.entries(options || {})) if (v !== undefined) o[k] = v;
    if (typeof o.endpoint != "string" || !o.endpoint) throw new TypeError("clickagg: endpoint is required");
    if (o.userId != null && !IDENT.test(o.userId)) throw new TypeError("clickagg: userId must be 1..128 printable ASCII");
    const g = /** @type {any} */ (globalThis);
    if (!("storage" in o)) {
      try {
        o.storage = g.localStorage;
      } catch {} // a SecurityError when storage is disabled: memory only
    }
    if (!o.fetch) o.fetch = /** @type {FetchLike} */ (u, i) => fetch(u, i);
    if (!("sendBeacon" in o)) {
      const nav = g.navigator;
      o.sendBeacon = nav && nav.sendBeacon ? /** @type {SendBeaconLike} */ (u, d) => nav.sendBeacon(u, d) : null;
    }
    o.now ||= Date.now;
    o.random ||= Math.random;
    if (!("document" in o)) o.document = g.document;
    if (!("window" in o)) o.window = g.window;
    this.#o = o;
    this.#url = o.endpoint.replace(/\/+$/, "") + "/v1/public/clicks";
    this.#q = new Queue(o.storage || null);
    this.#uid = o.userId;
    this.#consent = o.consent != "denied";

    const doc = o.document;
    const win = o.window;
    /** @param {Listenable | null | undefined} t @param {string} type @param {(e: any) => void} h */
    const on = (t, type, h) => {
      if (!t) return;
      t.addEventListener(type, h);
      this.#off.push(() => t.removeEventListener(type, h));
    };
    on(win, "pagehide", () => this.#hide());
    on(win, "pageshow", (e) => e.persisted && this.#show());
    on(doc, "visibilitychange", () => (doc.visibilityState == "hidden" ? this.#hide() : this.#show()));
    if (doc && o.autoLinks) {
      this.#off.push(
        listenLinks(doc, o.linkAttribute, (token) => {
          if (this.trackClick(token)) this.#kick(true);
        }),
      );
    }
    if (this.#consent) this.#kick(false);
    else this.#wipe();
  }

  /**
   * Records one click: the item is persisted before this returns, then sent (batched).
   * @param {string} token the click token the ad server issued for this impression
   * @param {ClickOptions} [options] `clickId` (default: a new UUIDv7), `timestamp` (epoch ms, default now), `referrer` (default: the page's URL)
   * @returns {string | null} the click_id, or null (consent denied, shut down, a token that is not a string of 1..4096 characters, a clickId that is not 1..128 printable ASCII)
   */
  trackClick(token, options = {}) {
    const o = this.#o;
    const id = options.clickId ?? uuidv7(o.now());
    if (!this.#consent || this.#closed || typeof token != "string" || !token || token.length > MAX_TOKEN || !IDENT.test(id))
      return null;
    const q = this.#q;
    if (q.m.has(id)) return id;
    const now = o.now();
    /** @type {Click} */
    const item = { click_id: id, user_id: this.#userId(), timestamp: options.timestamp ?? now, token };
    const doc = o.document;
    let ref = options.referrer ?? (doc && ((doc.location && doc.location.href) || doc.referrer));
    if (ref) {
      ref = ref.slice(0, MAX_REFERRER);
      item.referrer = /[\ud800-\udbff]$/.test(ref) ? ref.slice(0, -1) : ref;
    }
    // a batch: the first waiting click sets the deadline, the next ones share it
    let next = now + o.flushIntervalMs;
    let waiting = 1;
    for (const e of q.m.values()) {
      if (!e.attempts && this.#ready(e)) {
        waiting++;
        if (e.next > now) next = Math.min(next, e.next);
      }
    }
    q.add({ item, attempts: 0, next });
    this.#trim();
    if (waiting >= o.flushAt) this.#kick(true);
    else if (!this.#busy) this.#schedule();
    return id;
  }

  /**
   * Sends every waiting item now (without waiting for the batch timer; items in backoff keep
   * waiting for their time) and resolves when each request got an answer or failed. Items that
   * are not final stay queued.
   * @returns {Promise<void>}
   */
  flush() {
    return this.#kick(true);
  }

  /**
   * Consent. Denied: nothing is stored or sent, and every `clickagg:*` key and the queue are
   * deleted at once. Granted again: starts afresh (new anonymous user id).
   * @param {boolean} granted
   */
  setConsent(granted) {
    this.#consent = !!granted;
    if (granted) this.#kick(false);
    else this.#wipe();
  }

  /** @returns {Stats} counters since this tracker started, and `queued`: items in the queue now */
  stats() {
    return { ...this.#n, queued: this.#q.m.size };
  }

  /** Removes the listeners and timers; the queue stays in storage for the next page. */
  shutdown() {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const f of this.#off.splice(0)) f();
  }

  #userId() {
    if (this.#uid) return this.#uid;
    const s = this.#o.storage;
    let uid = null;
    try {
      uid = s && s.getItem(UID_KEY);
    } catch {}
    if (!uid || !IDENT.test(uid)) {
      uid = uuidv7(this.#o.now());
      try {
        s && s.setItem(UID_KEY, uid);
      } catch {}
    }
    return (this.#uid = uid);
  }

  #wipe() {
    clearTimeout(this.#timer);
    this.#q.m.clear();
    if (this.#uid != this.#o.userId) this.#uid = null;
    const q = this.#q;
    for (const k of q.keys(PREFIX) || []) {
      try {
        q.s?.removeItem(k);
      } catch {}
    }
  }

  /** @param {Entry} e not beaconed here, not in a request, not out of attempts */
  #ready(e) {
    return !e.held && !this.#flight.has(e.item.click_id) && e.attempts < this.#o.maxAttempts;
  }

  /** Queues a pump after the current one (at most one request in flight). @param {boolean} now */
  #kick(now) {
    clearTimeout(this.#timer);
    return (this.#chain = this.#chain.then(() => this.#pump(now)).catch(() => {}));
  }

  /** Sets the timer for the earliest waiting item (batch delay or backoff). */
  #schedule() {
    clearTimeout(this.#timer);
    if (!this.#consent || this.#closed) return;
    let at = Infinity;
    for (const e of this.#q.m.values()) if (this.#ready(e)) at = Math.min(at, e.next);
    if (at < Infinity) at = Math.max(at, this.#notBefore);
    if (at < Infinity) this.#timer = setTimeout(() => this.#kick(false), Math.max(0, at - this.#o.now()));
  }

  /** Drops items older than maxItemAgeMs, then the oldest beyond maxQueue (never one in flight). */
  #trim() {
    const o = this.#o;
    const m = this.#q.m;
    const now = o.now();
    for (const e of m.values()) if (now - e.item.timestamp > o.maxItemAgeMs && !this.#flight.has(e.item.click_id)) this.#drop(e);
    while (m.size > o.maxQueue) {
      /** @type {Entry | undefined} */
      let old;
      for (const e of m.values()) if (!this.#flight.has(e.item.click_id) && (!old || e.item.timestamp < old.item.timestamp)) old = e;
      if (!old) break;
      this.#drop(old);
    }
  }

  /** @param {Entry} e */
  #drop(e) {
    this.#final(e, "dropped");
  }

  /** @param {Entry} e @param {FinalStatus} status @param {Reason[]} [reasons] */
  #final(e, status, reasons) {
    const id = e.item.click_id;
    if (!this.#q.m.has(id)) return; // dropped, wiped, or finished by another tab meanwhile
    this.#q.remove(id);
    this.#n[status]++;
    call(this.#o.onResult, reasons ? { clickId: id, status, reasons } : { clickId: id, status });
  }

  /** Loads what storage holds (earlier pages, other tabs), then trims. */
  #sync() {
    const o = this.#o;
    const now = o.now();
    this.#q.sync((v) => {
      const i = v && v.item;
      if (!i || typeof i.click_id != "string" || typeof i.token != "string" || typeof i.timestamp != "number") return null;
      const a = +v.attempts || 0;
      return a < o.maxAttempts
        ? { item: i, attempts: a, next: Math.min(+v.next || 0, now + RETRY_AFTER_CAP_MS + o.backoffCapMs), saved: true }
        : { item: i, attempts: 0, next: 0, saved: true }; // out of attempts on an earlier page: start again
    });
    this.#trim();
  }

  /**
   * One round: every ready item that is due (and, when `now`, every new one) is sent once, in
   * batches, one request at a time.
   * @param {boolean} now
   */
  async #pump(now) {
    if (!this.#consent || this.#closed) return;
    this.#busy = true;
    try {
      this.#sync();
      const t = this.#o.now();
      // nothing before the API's Retry-After has passed (new clicks wait too)
      const todo = t < this.#notBefore ? []
        : [...this.#q.m.values()].filter((e) => this.#ready(e) && (e.next <= t || (now && !e.attempts)));
      while (todo.length) {
        const batch = this.#take(todo, (e) => this.#ready(e));
        if (batch.length) await this.#send(batch);
      }
    } finally {
      this.#busy = false;
      this.#schedule();
    }
  }

  /**
   * Removes from `todo` and returns the next batch: items still queued and `ok`, at most 500
   * and maxBatchBytes of body (an item larger than that alone goes alone).
   * @param {Entry[]} todo
   * @param {(e: Entry) => boolean} ok
   */
  #take(todo, ok) {
    /** @type {Entry[]} */
    const batch = [];
    let bytes = HEAD.length + 2;
    while (todo.length && batch.length < MAX_ITEMS) {
      const e = todo[0];
      if (this.#q.m.has(e.item.click_id) && ok(e)) {
        const n = utf8Length(JSON.stringify(e.item)) + (batch.length ? 1 : 0);
        if (batch.length && bytes + n > this.#o.maxBatchBytes) break;
        bytes += n;
        batch.push(e);
      }
      todo.shift();
    }
    return batch;
  }

  /** @param {Entry[]} batch @param {'fetch' | 'beacon'} transport */
  #start(batch, transport) {
    const ids = batch.map((e) => e.item.click_id);
    this.#n[transport == "fetch" ? "requests" : "beacons"]++;
    call(this.#o.onSend, { clickIds: ids, transport, at: this.#o.now() });
    return HEAD + batch.map((e) => JSON.stringify(e.item)).join(",") + "]}";
  }

  /** One request, and what its answer means for each item. @param {Entry[]} batch */
  async #send(batch) {
    const o = this.#o;
    const ids = batch.map((e) => e.item.click_id);
    const body = this.#start(batch, "fetch");
    /** @type {import('./transport.js').Answer | null} */
    let res = null;
    for (const id of ids) this.#flight.add(id);
    try {
      res = await post(o.fetch, this.#url, body, utf8Length(body));
    } catch {
      // network error (offline, DNS, CORS-less answer such as API Gateway's 429): retry
    }
    for (const id of ids) this.#flight.delete(id);
    const now = o.now();
    if (!res) return this.#retry(batch, 0, now);
    const wait = retryAfterMs(res.retryAfter, now);
    /** @type {any[] | null} */
    const results = res.body && Array.isArray(res.body.results) ? res.body.results : null;
    if (results) {
      batch.forEach((e, i) => {
        const id = ids[i];
        const r = results[i] && results[i].click_id === id ? results[i] : results.find((r) => r && r.click_id === id);
        if (r && isFinal(r.status)) this.#final(e, r.status, r.reasons || (r.reason ? [{ field: "click", reason: r.reason }] : undefined));
        else this.#retry([e], wait, now);
      });
      return;
    }
    const what = requestOutcome(res.status);
    if (what == "split" && batch.length > 1) {
      const h = Math.ceil(batch.length / 2);
      for (const half of [batch.slice(0, h), batch.slice(h)]) {
        const left = half.filter((e) => this.#q.m.has(e.item.click_id));
        if (left.length) await this.#send(left);
      }
    } else if (what == "retry") this.#retry(batch, wait, now);
    else for (const e of batch) this.#final(e, "rejected", [{ field: "request", reason: "http_" + res.status }]);
  }

  /** @param {Entry[]} batch @param {number} wait Retry-After, ms @param {number} now */
  #retry(batch, wait, now) {
    const o = this.#o;
    // one draw for the batch: its items stay together (and a Retry-After holds every send)
    const tries = Math.max(0, ...batch.map((e) => e.attempts));
    const next = now + Math.max(wait, backoff(tries, o.backoffBaseMs, o.backoffCapMs, o.random));
    if (wait) this.#notBefore = Math.max(this.#notBefore, now + wait);
    for (const e of batch) {
      if (!this.#q.m.has(e.item.click_id)) continue;
      e.next = next;
      e.attempts++;
      this.#n.retries++;
      this.#q.save(e);
    }
  }

  /**
   * The page is hidden or going away: everything not in a request now goes by sendBeacon, in
   * chunks of at most maxBatchBytes (keepalive fetch when the beacon is refused). A beaconed
   * item's answer cannot be read: it stays queued, marked, and is sent again when the page is
   * visible again or on the next page load; the API answers `duplicate` and it leaves the queue.
   */
  #hide() {
    if (!this.#consent || this.#closed) return;
    clearTimeout(this.#timer);
    const todo = [...this.#q.m.values()];
    const ok = (/** @type {Entry} */ e) => !e.held && !this.#flight.has(e.item.click_id);
    while (todo.length) {
      const batch = this.#take(todo, ok);
      if (!batch.length) continue;
      const body = HEAD + batch.map((e) => JSON.stringify(e.item)).join(",") + "]}";
      if (beacon(this.#o.sendBeacon, this.#url, body)) {
        this.#start(batch, "beacon");
        for (const e of batch) {
          e.held = true;
          this.#q.save(e);
        }
      } else this.#send(batch).catch(() => {});
    }
  }

  /** Visible again: beaconed items are sent again now (their answers tell what arrived). */
  #show() {
    const now = this.#o.now();
    for (const e of this.#q.m.values()) {
      if (e.held) {
        e.held = false;
        e.next = now;
      }
    }
    if (this.#consent && !this.#closed) this.#kick(false);
  }
}

/**
 * A tracker of its own (several on a page, tests).
 * @param {Options} options
 * @returns {Tracker}
 */
export const createTracker = (options) => new Tracker(options);

/** @type {Tracker | null} */
let current = null;

/**
 * Starts the default tracker (the one `trackClick`, `flush` and `setConsent` use); a second
 * call replaces it.
 * @param {Options} options
 * @returns {Tracker}
 */
export function init(options) {
  if (current) current.shutdown();
  return (current = new Tracker(options));
}

/**
 * `trackClick` of the default tracker; null before `init`.
 * @param {string} token
 * @param {ClickOptions} [options]
 * @returns {string | null}
 */
export const trackClick = (token, options) => (current ? current.trackClick(token, options) : null);

/** `flush` of the default tracker. @returns {Promise<void>} */
export const flush = () => (current ? current.flush() : Promise.resolve());

/** `setConsent` of the default tracker. @param {boolean} granted */
export const setConsent = (granted) => {
  if (current) current.setConsent(granted);
};

/** The default tracker, or null before `init`. @returns {Tracker | null} */
export const getTracker = () => current;
