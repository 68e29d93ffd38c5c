import assert from "node:assert/strict";
import { test } from "node:test";
import { CognitoSession, pkceChallenge } from "../../src/auth.js";

const CFG = { region: "eu-west-1", apiBaseUrl: "https://api", auth: { type: "cognito", userPoolId: "eu-west-1_Pool",
  clientId: "client1", identityPoolId: "eu-west-1:pool-id", domain: "https://dash.auth.eu-west-1.amazoncognito.com",
  redirectUri: "https://d111.cloudfront.net/" } };

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
}
const jwt = (exp) => `x.${Buffer.from(JSON.stringify({ exp })).toString("base64url")}.y`;

test("PKCE S256 challenge (RFC 7636 appendix B)", async () => {
  assert.equal(await pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
});

test("no sign-in: redirect to the managed login with PKCE, keeping the view", async () => {
  const storage = memoryStorage();
  let assigned = null;
  const location = { search: "?window=1h&ad=ad-1", pathname: "/", assign: (u) => { assigned = u; } };
  const s = new CognitoSession(CFG, { storage, location, history: {}, fetch: async () => assert.fail("no fetch") });
  s.idToken(); // never resolves: the page is leaving
  // the redirect comes after WebCrypto's digest: wait for it (a fixed 20 ms was too short on a busy machine)
  for (let i = 0; i < 500 && assigned === null; i++) await new Promise((r) => setTimeout(r, 10));
  const u = new URL(assigned);
  assert.equal(u.origin + u.pathname, "https://dash.auth.eu-west-1.amazoncognito.com/oauth2/authorize");
  assert.equal(u.searchParams.get("code_challenge_method"), "S256");
  assert.equal(u.searchParams.get("redirect_uri"), CFG.auth.redirectUri);
  const saved = JSON.parse(storage.getItem("clickagg.auth"));
  assert.equal(saved.returnTo, "?window=1h&ad=ad-1");
  assert.equal(u.searchParams.get("state"), saved.state);
  assert.equal(u.searchParams.get("code_challenge"), await pkceChallenge(saved.verifier));
});

test("login redirect: code -> tokens -> identity pool credentials; view restored", async () => {
  const storage = memoryStorage();
  storage.setItem("clickagg.auth", JSON.stringify({ verifier: "v", state: "st", returnTo: "?window=6h" }));
  const calls = [];
  let replaced = null;
  const fetch = async (url, init) => {
    calls.push([url, init]);
    if (url.endsWith("/oauth2/token")) return Response.json({ id_token: jwt(Date.now() / 1000 + 3600), refresh_token: "r" });
    const target = init.headers["x-amz-target"];
    if (target.endsWith("GetId")) return Response.json({ IdentityId: "eu-west-1:id-1" });
    return Response.json({ Credentials: { AccessKeyId: "AK", SecretKey: "SK", SessionToken: "ST", Expiration: Date.now() / 1000 + 3600 } });
  };
  const s = new CognitoSession(CFG, { storage, fetch, location: { search: "?code=abc&state=st", pathname: "/" },
    history: { replaceState: (a, b, url) => { replaced = url; } } });
  const creds = await s.credentials();
  assert.deepEqual([creds.accessKeyId, creds.secretAccessKey, creds.sessionToken], ["AK", "SK", "ST"]);
  const form = new URLSearchParams(calls[0][1].body);
  assert.equal(form.get("grant_type"), "authorization_code");
  assert.equal(form.get("code_verifier"), "v");
  const getId = JSON.parse(calls[1][1].body);
  assert.equal(calls[1][0], "https://cognito-identity.eu-west-1.amazonaws.com/");
  assert.deepEqual(getId, { IdentityPoolId: "eu-west-1:pool-id", Logins: { "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool": getId.Logins["cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"] } });
  assert.equal(replaced, "/?window=6h");
  assert.equal(await s.credentials(), creds); // cached until 5 min before expiry
  assert.equal(calls.length, 3);
});

test("state mismatch is refused", async () => {
  const storage = memoryStorage();
  storage.setItem("clickagg.auth", JSON.stringify({ verifier: "v", state: "st" }));
  const s = new CognitoSession(CFG, { storage, fetch: async () => assert.fail(), location: { search: "?code=abc&state=evil" }, history: {} });
  await assert.rejects(s.idToken(), /state mismatch/);
});
