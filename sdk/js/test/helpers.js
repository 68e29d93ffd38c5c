// Test doubles: Storage in memory, scripted fetch, sendBeacon, event targets, and fake timers
// (global setTimeout/clearTimeout replaced; the clock is the tracker's injected `now`).

/** The Storage interface over a Map; counts writes; can be told to throw. */
export class MemoryStorage {
  constructor({ throwOnSet = false, throwAll = false } = {}) {
    this.map = new Map();
    this.sets = 0;
    this.throwOnSet = throwOnSet;
    this.throwAll = throwAll;
  }
  #check() {
    if (this.throwAll) throw new Error("SecurityError: storage disabled");
  }
  get length() {
    this.#check();
    return this.map.size;
  }
  key(i) {
    this.#check();
    return [...this.map.keys()][i] ?? null;
  }
  getItem(k) {
    this.#check();
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.#check();
    this.sets++;
    if (this.throwOnSet) throw new Error("QuotaExceededError");
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.#check();
    this.map.delete(k);
  }
  /** queue keys -> parsed values */
  queue() {
    const out = {};
    for (const [k, v] of this.map) if (k.startsWith("clickagg:q:")) out[k.slice(11)] = JSON.parse(v);
    return out;
  }
}

/** A fetch answer: `{status, body, headers}` -> Response-like object. */
export function response({ status = 202, body = null, headers = {} } = {}) {
  const h = new Headers(headers);
  return { status, headers: h, json: async () => (body === null ? Promise.reject(new SyntaxError("no body")) : body) };
}

/** The API's 202 answer for a request body: every item gets `status` (or statusFor(item, i)). */
export function answer(reqBody, statusFor = () => "accepted") {
  const results = reqBody.clicks.map((c, i) => {
    const s = typeof statusFor == "function" ? statusFor(c, i) : statusFor;
    const r = { index: i, click_id: c.click_id, status: s };
    if (s == "rejected") r.reasons = [{ field: "token", reason: "bad_signature" }];
    if (s == "retryable") r.reason = "dependency_failed";
    return r;
  });
  const count = (s) => results.filter((r) => r.status == s).length;
  return {
    request_id: "r",
    accepted: count("accepted"),
    duplicate: count("duplicate"),
    rejected: count("rejected"),
    retryable: count("retryable"),
    results,
  };
}

/**
 * A scripted fetch. `script` is a list of steps used in order, then `fallback` for ever; a step:
 * "network" (rejects), a function (parsedBody, call) -> response spec, or a response spec.
 * Records every call: {url, init, body (parsed)}.
 */
export function fakeFetch(script = [], fallback = (b) => ({ status: 202, body: answer(b) })) {
  const calls = [];
  const fn = async (url, init) => {
    const body = JSON.parse(init.body);
    calls.push({ url, init, body });
    const step = calls.length <= script.length ? script[calls.length - 1] : fallback;
    if (step === "network") throw new TypeError("Failed to fetch");
    const spec = typeof step == "function" ? step(body, calls.length) : step;
    if (spec === "network") throw new TypeError("Failed to fetch");
    return response(spec);
  };
  fn.calls = calls;
  fn.ids = () => calls.map((c) => c.body.clicks.map((x) => x.click_id));
  return fn;
}

/** sendBeacon double: records (url, blob); returns `ok`. */
export function fakeBeacon(ok = true) {
  const calls = [];
  const fn = (url, data) => {
    calls.push({ url, data });
    return typeof ok == "function" ? ok(calls.length) : ok;
  };
  fn.calls = calls;
  return fn;
}

/** A tiny event target: listeners by type; fire(type, props) calls them with a plain event. */
export class FakeTarget {
  constructor(props = {}) {
    this.listeners = [];
    Object.assign(this, props);
  }
  addEventListener(type, fn, capture) {
    this.listeners.push({ type, fn, capture: !!(capture === true || (capture && capture.capture)) });
  }
  removeEventListener(type, fn, capture) {
    const c = !!(capture === true || (capture && capture.capture));
    this.listeners = this.listeners.filter((l) => !(l.type == type && l.fn == fn && l.capture == c));
  }
  fire(type, props = {}) {
    const ev = {
      type,
      defaultPrevented: false,
      preventDefault() {
        this.defaultPrevented = true;
        this.prevented = (this.prevented || 0) + 1;
      },
      ...props,
    };
    for (const l of [...this.listeners]) if (l.type == type) l.fn(ev);
    return ev;
  }
}

/** A fake element: `closest(selector)` finds an ancestor `a[attr]` through `parent` links. */
export function element(tag, attrs = {}, parent = null) {
  return {
    tagName: tag.toUpperCase(),
    nodeType: 1,
    parent,
    getAttribute: (n) => (n in attrs ? attrs[n] : null),
    closest(sel) {
      const m = /^a\[([\w-]+)\]$/.exec(sel);
      for (let e = this; e; e = e.parent) if (m && e.tagName == "A" && e.getAttribute(m[1]) != null) return e;
      return null;
    },
  };
}

/** Lets pending promises (fake fetch answers, the tracker's pumps) run. */
export async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/**
 * Fake timers on the global setTimeout/clearTimeout plus the clock the tracker gets as `now`.
 * `advance(ms)` runs every timer due on the way, each at its own time, settling after each.
 */
export function fakeClock(t, start = 1_767_225_600_000) {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  let seq = 0;
  const timers = new Map();
  const clock = {
    t: start,
    now: () => clock.t,
    pending: () => timers.size,
    nextAt: () => Math.min(...[...timers.values()].map((x) => x.at)),
    async advance(ms) {
      const end = clock.t + ms;
      await settle();
      for (;;) {
        const due = [...timers.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
        if (!due.length) break;
        const [id, x] = due[0];
        timers.delete(id);
        clock.t = Math.max(clock.t, x.at);
        x.fn();
        await settle();
      }
      clock.t = end;
      await settle();
    },
    /** advance to the next timer and run it; returns the time advanced */
    async runNext() {
      if (!timers.size) return null;
      const d = clock.nextAt() - clock.t;
      await clock.advance(Math.max(0, d));
      return d;
    },
  };
  globalThis.setTimeout = (fn, ms = 0) => {
    const id = ++seq;
    timers.set(id, { fn, at: clock.t + Math.max(0, ms) });
    return id;
  };
  globalThis.clearTimeout = (id) => {
    timers.delete(id);
  };
  t.after(() => {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
  });
  return clock;
}

export const TOKEN = "v1.k1.eyJhZCI6ImFkLTEifQ.0123456789012345678901234567890123456789abc";

/** A tracker environment: storage, fetch, beacon, document, window, clock, results. */
export function env(t, over = {}) {
  const clock = over.clock || fakeClock(t);
  const storage = over.storage || new MemoryStorage();
  const fetch = over.fetch || fakeFetch();
  const sendBeacon = over.sendBeacon || fakeBeacon();
  const document = over.document || new FakeTarget({ visibilityState: "visible", referrer: "https://search.example/", location: { href: "https://news.example/article?id=7" } });
  const window = over.window || new FakeTarget();
  const results = [];
  const sends = [];
  const options = {
    endpoint: "https://api.example/",
    storage,
    fetch,
    sendBeacon,
    document,
    window,
    now: clock.now,
    random: () => 0.5,
    onResult: (r) => results.push(r),
    onSend: (s) => sends.push(s),
    ...over.options,
  };
  return { clock, storage, fetch, sendBeacon, document, window, results, sends, options };
}
