// The query API client. Two modes, chosen by config.json (written at deploy time; absent locally):
//   local  - no config.json (404): same-origin, unsigned requests (the local stack serves both
//            the page and the API on one port).
//   cognito - {"apiBaseUrl", "region", "auth": {...}}: the user signs in (Cognito managed login),
//            the identity pool hands out temporary AWS credentials for the authenticated role
//            (execute-api:Invoke on the GET routes only) and every request is SigV4-signed.
//            An optional `currency` (ISO 4217 code; not written by infra yet) is shown beside the
//            budget panel's money.
import { canonicalQuery, signGet } from "./sigv4.js";

export class ApiError extends Error {
  /** kind: "network" (unreachable / CORS / aborted), "timeout", "http" (status set), "auth". */
  constructor(kind, message, status = null, body = null) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.body = body;
  }
}

/** A route the API does not have (yet): 404 locally; on API Gateway with IAM auth an unknown
 * resource answers 403 "Missing Authentication Token" even to a signed request. */
export function isMissingRoute(err) {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 404) return true;
  const msg = (err.body && (err.body.message || err.body.Message)) || "";
  return err.status === 403 && /missing authentication token/i.test(msg);
}

export async function loadConfig(fetchImpl = fetch) {
  try {
    const r = await fetchImpl("config.json", { cache: "no-store" });
    if (r.status === 404) return { mode: "local", apiBaseUrl: "" };
    if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
    const cfg = await r.json();
    return { mode: cfg.auth ? "cognito" : "remote", ...cfg };
  } catch (e) {
    if (e instanceof SyntaxError) throw new ApiError("config", "config.json is not JSON");
    throw e;
  }
}

/** signer: async (url) -> extra headers, or null for unsigned requests. */
export function createClient({ apiBaseUrl = "", timeoutMs = 8000, signer = null, fetchImpl = fetch } = {}) {
  const base = apiBaseUrl.replace(/\/+$/, "");

  async function get(path, params = {}) {
    const pairs = Object.entries(params).filter(([, v]) => v != null && v !== "");
    const query = canonicalQuery(pairs);
    let url = `${base}${path}${query ? "?" + query : ""}`;
    if (!/^https?:/.test(url)) url = new URL(url, globalThis.location ? globalThis.location.href : "http://localhost/").href;
    const headers = { accept: "application/json", ...(signer ? await signer(url) : {}) };
    let resp;
    try {
      resp = await fetchImpl(url, { headers, signal: AbortSignal.timeout(timeoutMs), cache: "no-store" });
    } catch (e) {
      if (e && (e.name === "TimeoutError" || e.name === "AbortError")) {
        throw new ApiError("timeout", `no answer from the API within ${timeoutMs / 1000} s`);
      }
      throw new ApiError("network", "API unreachable");
    }
    let body = null;
    const type = resp.headers.get("content-type") || "";
    if (type.includes("json")) {
      try { body = await resp.json(); } catch { body = null; }
    } else {
      await resp.text().catch(() => "");
    }
    if (!resp.ok) {
      const reason = (body && (body.error || body.message)) || resp.statusText || "error";
      throw new ApiError(resp.status === 401 || resp.status === 403 ? "auth" : "http",
        `HTTP ${resp.status}: ${reason}`, resp.status, body);
    }
    return body;
  }

  return {
    get,
    top: ({ window, k, metric }) => get("/v1/top", { last: window, k, metric }),
    // one ad's or one campaign's series: `last`, or `from` / `to` (epoch ms)
    series: (ad, { resolution, last, from, to }) => get(`/v1/ads/${encodeURIComponent(ad)}/metrics`, { resolution, last, from, to }),
    campaignSeries: (campaign, { resolution, last, from, to }) =>
      get(`/v1/campaigns/${encodeURIComponent(campaign)}/metrics`, { resolution, last, from, to }),
    // the budget Lambda's read routes (docs/budget.md): a campaign's budget (404: none set) and its pacing decision
    budget: (campaign) => get(`/v1/campaigns/${encodeURIComponent(campaign)}/budget`),
    pacing: (campaign) => get(`/v1/campaigns/${encodeURIComponent(campaign)}/pacing`),
    health: () => get("/v1/health"),
    quality: () => get("/v1/quality"),
  };
}

/** Build the client for a loaded config (may redirect to the sign-in page in cognito mode). */
export async function clientFor(cfg) {
  if (cfg.mode !== "cognito") return { client: createClient({ apiBaseUrl: cfg.apiBaseUrl || "" }), session: null };
  const { CognitoSession } = await import("./auth.js");
  const session = new CognitoSession(cfg);
  await session.ready(); // redirects to the managed login when there is no valid sign-in
  const signer = async (url) => (await signGet(url, { region: cfg.region, credentials: await session.credentials() })).headers;
  return { client: createClient({ apiBaseUrl: cfg.apiBaseUrl, signer }), session };
}
