// Sign-in for the AWS deployment (not used by the local stack): Cognito managed login with the
// authorization-code flow + PKCE (public client, no secret in the page), then the Cognito
// identity pool exchanges the ID token for temporary credentials of the authenticated role, which
// may only call execute-api:Invoke on the dashboard's GET routes. Tokens live in sessionStorage
// (gone when the tab closes); credentials only in memory.
//
// config.json (written by infra/constructs/dashboard_site.py at deploy time):
//   {"apiBaseUrl", "region", "auth": {"type": "cognito", "userPoolId", "clientId",
//    "identityPoolId", "domain": "https://<prefix>.auth.<region>.amazoncognito.com",
//    "redirectUri": "https://<distribution>/"}}
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

export function randomVerifier(bytes = 32) {
  return b64url(globalThis.crypto.getRandomValues(new Uint8Array(bytes)));
}

export async function pkceChallenge(verifier) {
  return b64url(await globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

function jwtExpiry(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return payload.exp * 1000;
  } catch {
    return 0;
  }
}

const KEY = "clickagg.auth";

export class CognitoSession {
  constructor(cfg, env = {}) {
    this.cfg = cfg;
    this.auth = cfg.auth;
    this.fetch = env.fetch || globalThis.fetch.bind(globalThis);
    this.storage = env.storage || globalThis.sessionStorage;
    this.location = env.location || globalThis.location;
    this.history = env.history || globalThis.history;
    this.now = env.now || (() => Date.now());
    this.creds = null;
  }

  _saved() {
    try { return JSON.parse(this.storage.getItem(KEY) || "{}"); } catch { return {}; }
  }

  _save(obj) {
    this.storage.setItem(KEY, JSON.stringify({ ...this._saved(), ...obj }));
  }

  async _token(params) {
    const r = await this.fetch(`${this.auth.domain}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: this.auth.clientId, ...params }).toString(),
    });
    if (!r.ok) throw new Error(`sign-in failed: token endpoint HTTP ${r.status}`);
    const t = await r.json();
    this._save({ idToken: t.id_token, refreshToken: t.refresh_token || this._saved().refreshToken });
    return t.id_token;
  }

  /** Send the browser to the managed login; comes back to redirectUri with ?code&state. */
  async signIn() {
    const verifier = randomVerifier();
    const state = randomVerifier(16);
    this._save({ verifier, state, returnTo: this.location.search || "" });
    const q = new URLSearchParams({
      response_type: "code", client_id: this.auth.clientId, redirect_uri: this.auth.redirectUri,
      scope: "openid email", state, code_challenge_method: "S256",
      code_challenge: await pkceChallenge(verifier),
    });
    this.location.assign(`${this.auth.domain}/oauth2/authorize?${q}`);
    return new Promise(() => {}); // the page is going away
  }

  /** A valid ID token: from the login redirect, sessionStorage, or the refresh token; else sign in. */
  async idToken() {
    const q = new URLSearchParams(this.location.search);
    const saved = this._saved();
    if (q.get("code")) {
      if (q.get("state") !== saved.state) throw new Error("sign-in failed: state mismatch");
      const token = await this._token({ grant_type: "authorization_code", code: q.get("code"),
        redirect_uri: this.auth.redirectUri, code_verifier: saved.verifier });
      this.history.replaceState(null, "", (this.location.pathname || "/") + (saved.returnTo || ""));
      return token;
    }
    if (saved.idToken && jwtExpiry(saved.idToken) - this.now() > 60_000) return saved.idToken;
    if (saved.refreshToken) {
      try {
        return await this._token({ grant_type: "refresh_token", refresh_token: saved.refreshToken });
      } catch { /* expired refresh token: sign in again */ }
    }
    return this.signIn();
  }

  async _identity(target, body) {
    const r = await this.fetch(`https://cognito-identity.${this.cfg.region}.amazonaws.com/`, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `AWSCognitoIdentityService.${target}` },
      body: JSON.stringify(body),
    });
    const out = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(`identity pool ${target}: HTTP ${r.status} ${out.__type || ""} ${out.message || ""}`.trim());
    return out;
  }

  /** Temporary credentials of the authenticated role, renewed 5 minutes before they expire. */
  async credentials() {
    if (this.creds && this.creds.expiresAt - this.now() > 300_000) return this.creds;
    const idToken = await this.idToken();
    const logins = { [`cognito-idp.${this.cfg.region}.amazonaws.com/${this.auth.userPoolId}`]: idToken };
    const { IdentityId } = await this._identity("GetId", { IdentityPoolId: this.auth.identityPoolId, Logins: logins });
    const { Credentials: c } = await this._identity("GetCredentialsForIdentity", { IdentityId, Logins: logins });
    this.creds = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretKey, sessionToken: c.SessionToken,
      expiresAt: c.Expiration * 1000 };
    return this.creds;
  }

  async ready() {
    await this.credentials();
  }

  signOut() {
    this.storage.removeItem(KEY);
    const q = new URLSearchParams({ client_id: this.auth.clientId, logout_uri: this.auth.redirectUri });
    this.location.assign(`${this.auth.domain}/logout?${q}`);
  }
}
