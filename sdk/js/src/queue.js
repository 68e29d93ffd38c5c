// @ts-check
/**
 * The persisted queue: one storage key per item, `clickagg:q:<click_id>`, whose value is
 * `{"item": {...the click as sent...}, "attempts": n, "next": epochMs, "beaconed": bool}`.
 * One key per item means two tabs of the same origin never overwrite each other's items.
 * Every storage call is guarded: when storage throws (quota, private mode, disabled) the item
 * stays in memory only and everything carries on.
 */

/** Prefix of every key the SDK writes. */
export const PREFIX = "clickagg:";
/** Prefix of the queue's keys: `clickagg:q:<click_id>`. */
export const QUEUE_PREFIX = PREFIX + "q:";

/**
 * @typedef {{click_id: string, user_id: string, timestamp: number, token: string, referrer?: string}} Click
 * @typedef {Pick<Storage, 'getItem' | 'setItem' | 'removeItem' | 'key' | 'length'>} StorageLike
 * @typedef {object} Entry
 * @property {Click} item the click, exactly as sent
 * @property {number} attempts sends that failed so far (this page)
 * @property {number} next epoch ms before which it is not sent again (backoff, batching)
 * @property {boolean} [held] beaconed by this page: not resent until the page is visible again
 * @property {boolean} [saved] its key was written (false: storage refused, memory only)
 */

export class Queue {
  /** @param {StorageLike | null} storage */
  constructor(storage) {
    this.s = storage;
    /** @type {Map<string, Entry>} click_id -> entry, in arrival order */
    this.m = new Map();
  }

  /**
   * Keys of storage starting with `prefix`, or null when storage cannot be read.
   * @param {string} prefix
   * @returns {string[] | null}
   */
  keys(prefix) {
    const s = this.s;
    if (!s) return null;
    try {
      const out = [];
      for (let i = 0; i < s.length; i++) {
        const k = s.key(i);
        if (k && k.startsWith(prefix)) out.push(k);
      }
      return out;
    } catch {
      return null;
    }
  }

  /**
   * Writes an entry's key. An entry written before whose key is gone was finished by another
   * tab: it is forgotten, not written back (unless `add`).
   * @param {Entry} e
   * @param {boolean} [add] a new entry
   */
  save(e, add) {
    const id = e.item.click_id;
    const k = QUEUE_PREFIX + id;
    try {
      if (!add && e.saved && this.s?.getItem(k) == null) {
        this.m.delete(id);
        return;
      }
      // @ts-ignore: null storage throws, caught below: memory only
      this.s.setItem(k, JSON.stringify({ item: e.item, attempts: e.attempts, next: e.next, beaconed: !!e.held }));
      e.saved = true;
    } catch {
      e.saved = false;
    }
  }

  /** @param {Entry} e */
  add(e) {
    this.m.set(e.item.click_id, e);
    this.save(e, true);
  }

  /** @param {string} id */
  remove(id) {
    this.m.delete(id);
    try {
      this.s?.removeItem(QUEUE_PREFIX + id);
    } catch {}
  }

  /**
   * Merges storage into memory: items an earlier page, a reload or another tab left are added
   * (`load(stored)` makes the entry); entries this queue wrote whose key another tab removed
   * (it got their final answer) are forgotten. Unreadable values are removed.
   * @param {(stored: any) => Entry | null} load
   */
  sync(load) {
    const keys = this.keys(QUEUE_PREFIX);
    if (!keys) return;
    const here = new Set();
    for (const k of keys) {
      const id = k.slice(QUEUE_PREFIX.length);
      here.add(id);
      if (this.m.has(id)) continue;
      let e = null;
      try {
        // @ts-ignore: keys() succeeded, so storage is there
        e = load(JSON.parse(this.s.getItem(k)));
      } catch {}
      if (e && e.item.click_id === id) this.m.set(id, e);
      else this.remove(id);
    }
    for (const [id, e] of this.m) if (e.saved && !here.has(id)) this.m.delete(id);
  }
}
