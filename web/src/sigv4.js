// AWS Signature Version 4 for GET requests to execute-api, in the browser (WebCrypto) and in
// Node 20 (globalThis.crypto). Canonicalisation follows botocore's SigV4Auth (what the AWS SDKs
// send to API Gateway): the wire path URI-encoded once more (safe: '/', '~'), the query as
// RFC 3986-encoded pairs sorted by key then value, signed headers host;x-amz-date[;x-amz-security-token],
// the SHA-256 of the empty body. tests/web/test_sigv4.py checks it against botocore.
const te = new TextEncoder();
const subtle = globalThis.crypto.subtle;
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text) {
  return hex(await subtle.digest("SHA-256", te.encode(text)));
}

async function hmac(key, text) {
  const k = await subtle.importKey("raw", typeof key === "string" ? te.encode(key) : key,
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return subtle.sign("HMAC", k, te.encode(text));
}

/** RFC 3986 percent-encoding of every byte but the unreserved characters (A-Z a-z 0-9 - _ . ~). */
export function rfc3986(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** [[key, value], ...] -> canonical (and wire) query string: encoded, sorted by key then value. */
export function canonicalQuery(pairs) {
  return pairs
    .map(([k, v]) => [rfc3986(String(k)), rfc3986(String(v))])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

function removeDotSegments(path) {
  const out = [];
  for (const seg of path.split("/")) {
    if (seg === "..") out.pop();
    else if (seg !== "." && seg !== "") out.push(seg);
  }
  const joined = "/" + out.join("/");
  return path.endsWith("/") && joined !== "/" ? joined + "/" : joined;
}

/** The wire path (already percent-encoded) -> canonical URI, as botocore computes it. */
export function canonicalUri(pathname) {
  const normalized = pathname ? removeDotSegments(pathname) : "/";
  return normalized.split("/").map((seg) => rfc3986(seg).replace(/%7E/g, "~")).join("/");
}

function amzDate(date) {
  return date.toISOString().replace(/[:-]|\.\d{3}/g, "");
}

/**
 * Headers that authorise `GET url` (the URL's query must already be canonicalQuery-encoded).
 * credentials: {accessKeyId, secretAccessKey, sessionToken?}. Returns {headers, canonicalRequest}.
 */
export async function signGet(url, { region, service = "execute-api", credentials, date = new Date() }) {
  const u = new URL(url);
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const headers = { host: u.host, "x-amz-date": stamp };
  if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const query = u.search.startsWith("?") ? u.search.slice(1) : u.search;
  const sortedQuery = query ? query.split("&").sort((a, b) => {
    const [ka, va] = a.split("="), [kb, vb] = b.split("=");
    return ka < kb ? -1 : ka > kb ? 1 : (va || "") < (vb || "") ? -1 : (va || "") > (vb || "") ? 1 : 0;
  }).join("&") : "";
  const canonicalRequest = [
    "GET",
    canonicalUri(u.pathname),
    sortedQuery,
    names.map((n) => `${n}:${String(headers[n]).trim().replace(/\s+/g, " ")}`).join("\n") + "\n",
    names.join(";"),
    EMPTY_SHA256,
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonicalRequest)].join("\n");
  let key = await hmac("AWS4" + credentials.secretAccessKey, day);
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, "aws4_request");
  const signature = hex(await hmac(key, stringToSign));
  const out = { "x-amz-date": stamp };
  if (credentials.sessionToken) out["x-amz-security-token"] = credentials.sessionToken;
  out.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return { headers: out, canonicalRequest };
}
