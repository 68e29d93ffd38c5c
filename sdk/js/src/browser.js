// @ts-check
/**
 * Entry of the script-tag build (dist/clickagg.min.js, global `clickagg`): the public API, and
 * auto-init from the script tag's attributes:
 *   <script src=".../clickagg.min.js" data-endpoint="https://api.example"
 *           data-flush-interval="1000" data-consent="denied" data-user-id="..."></script>
 */
import { init } from "./index.js";

export * from "./index.js";

/**
 * Calls `init` from a script element's `data-*` attributes when it has `data-endpoint`.
 * @param {{getAttribute(name: string): string | null} | null | undefined} script
 * @returns {import('./index.js').Tracker | null}
 */
export function autoInit(script) {
  const a = (/** @type {string} */ n) => (script && script.getAttribute("data-" + n)) || undefined;
  const endpoint = a("endpoint");
  if (!endpoint) return null;
  const interval = a("flush-interval");
  return init({
    endpoint,
    flushIntervalMs: interval ? +interval : undefined,
    consent: a("consent") == "denied" ? "denied" : undefined,
    userId: a("user-id"),
  });
}

autoInit(typeof document != "undefined" ? /** @type {any} */ (document.currentScript) : null);
