// @ts-check
/**
 * Automatic ad links: one capture-phase `click` (and `auxclick`, for the middle button)
 * listener on the document. A click inside `<a data-clickagg-token="...">` (or the configured
 * attribute) calls `onToken(token)`. Nothing is prevented or delayed: the navigation goes on.
 */

/** @typedef {{addEventListener: EventTarget['addEventListener'], removeEventListener: EventTarget['removeEventListener']}} Listenable */

/**
 * @param {Listenable} doc
 * @param {string} attr
 * @param {(token: string) => void} onToken
 * @returns {() => void} removes the listeners
 */
export function listenLinks(doc, attr, onToken) {
  const sel = `a[${attr}]`;
  /** @param {any} e */
  const h = (e) => {
    if (e.type == "auxclick" && e.button != 1) return; // right button: a context menu, no click
    let t = e.target;
    if (t && t.nodeType == 3) t = t.parentNode; // a text node (old Safari)
    const a = t && t.closest ? t.closest(sel) : null;
    const token = a && a.getAttribute(attr);
    if (token) onToken(token);
  };
  doc.addEventListener("click", h, true);
  doc.addEventListener("auxclick", h, true);
  return () => {
    doc.removeEventListener("click", h, true);
    doc.removeEventListener("auxclick", h, true);
  };
}
