// The build: type-check + declarations, both bundles, the 5 KiB gzip limit, determinism, and the
// script-tag bundle run as a classic script with data-endpoint (auto-init).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import vm from "node:vm";
import { gzipSync } from "node:zlib";
import { MemoryStorage, TOKEN, fakeFetch } from "./helpers.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const haveDeps = (() => {
  try {
    readdirSync(join(root, "node_modules", "esbuild"));
    readdirSync(join(root, "node_modules", "typescript"));
    return true;
  } catch {
    return false;
  }
})();
const skip = haveDeps ? false : "sdk/js/node_modules missing: npm ci --prefix sdk/js";

const tmp = mkdtempSync(join(tmpdir(), "clickagg-sdk-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const build = (out, env = {}) => spawnSync(process.execPath, [join(root, "build.mjs"), out], { encoding: "utf8", env: { ...process.env, ...env } });
let dist;

test("build: both bundles under 5120 bytes gzipped, sizes printed and in build.json, deterministic", { skip }, () => {
  dist = join(tmp, "a");
  const r = build(dist);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const files = readdirSync(dist).sort();
  assert.deepEqual(files, ["build.json", "clickagg.d.ts", "clickagg.min.js", "clickagg.mjs", "types"]);
  const info = JSON.parse(readFileSync(join(dist, "build.json"), "utf8"));
  assert.equal(info.limit_gzip, 5120);
  for (const f of ["clickagg.mjs", "clickagg.min.js"]) {
    const raw = readFileSync(join(dist, f));
    const gz = gzipSync(raw, { level: 9 }).length;
    assert.deepEqual(info.sizes[f], { bytes: raw.length, gzip: gz });
    assert.ok(gz <= 5120, `${f}: ${gz} bytes gzipped`);
    assert.match(r.stdout, new RegExp(`${f.replace(".", "\\.")}: ${raw.length} bytes, ${gz} gzipped`));
  }
  const again = join(tmp, "b");
  assert.equal(build(again).status, 0);
  for (const f of ["build.json", "clickagg.d.ts", "clickagg.min.js", "clickagg.mjs", "types/index.d.ts"])
    assert.equal(readFileSync(join(again, f), "utf8"), readFileSync(join(dist, f), "utf8"), f);
});

test("build fails above the gzip limit", { skip }, () => {
  const r = build(join(tmp, "small"), { CLICKAGG_SDK_GZIP_LIMIT: "1000" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /over 1000 bytes gzipped/);
});

test("clickagg.d.ts declares the public API, and a strict TypeScript consumer compiles against it", { skip }, () => {
  const dts = readFileSync(join(dist, "clickagg.d.ts"), "utf8");
  for (const name of ["init", "trackClick", "createTracker", "flush", "setConsent"]) assert.match(dts, new RegExp(`export function ${name}\\(`), name);
  assert.match(dts, /export class Tracker/);
  assert.match(dts, /export type Options = \{/);
  // the package as npm would install it: package.json (exports, types) + dist/
  const dir = join(tmp, "consumer");
  const pkg = join(dir, "node_modules", "@clickagg", "sdk");
  mkdirSync(pkg, { recursive: true });
  cpSync(join(root, "package.json"), join(pkg, "package.json"));
  cpSync(dist, join(pkg, "dist"), { recursive: true });
  writeFileSync(join(dir, "package.json"), '{"type": "module"}');
  writeFileSync(
    join(dir, "page.ts"),
    `import { init, trackClick, createTracker, type ClickResult, type SendEvent, type Stats } from "@clickagg/sdk";
const t = init({ endpoint: "https://api.example", onResult: (r: ClickResult) => void r.status, onSend: (e: SendEvent) => void e.at });
const id: string | null = trackClick("tok", { clickId: "c1" });
const other = createTracker({ endpoint: "https://api.example", consent: "denied", storage: null });
const s: Stats = other.stats();
void t.flush().then(() => s.queued + (id ? 1 : 0));
// @ts-expect-error: endpoint is required
createTracker({});
`,
  );
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  for (const [module, resolution] of [["es2022", "bundler"], ["node16", "node16"]]) {
    const args = ["--noEmit", "--strict", "--target", "es2022", "--module", module, "--moduleResolution", resolution, "--lib", "es2022,dom", "page.ts"];
    const r = spawnSync(process.execPath, [tsc, ...args], { encoding: "utf8", cwd: dir });
    assert.equal(r.status, 0, resolution + ": " + r.stdout + r.stderr);
  }
});

test("ESM bundle exports the API", { skip }, async () => {
  const m = await import(pathToFileURL(join(dist, "clickagg.mjs")).href);
  assert.deepEqual(Object.keys(m).sort(), ["Tracker", "createTracker", "flush", "getTracker", "init", "setConsent", "trackClick", "uuidv7"]);
});

function runScriptTag(attrs) {
  const storage = new MemoryStorage();
  const fetch = fakeFetch();
  const listeners = [];
  const target = () => ({ addEventListener: (type) => listeners.push(type), removeEventListener() {} });
  const document = { ...target(), visibilityState: "visible", location: { href: "https://publisher.example/page" }, currentScript: { getAttribute: (n) => attrs[n] ?? null } };
  const ctx = { document, window: target(), localStorage: storage, fetch, navigator: {}, setTimeout, clearTimeout, TextEncoder, Blob, crypto, Date, Math, JSON, Promise, Headers };
  vm.createContext(ctx);
  vm.runInContext(readFileSync(join(dist, "clickagg.min.js"), "utf8"), ctx);
  return { ctx, storage, fetch, listeners };
}

test("script tag: the IIFE defines the global clickagg and auto-inits from data-endpoint", { skip }, async () => {
  const { ctx, storage, fetch, listeners } = runScriptTag({ "data-endpoint": "https://collect.example/", "data-flush-interval": "50" });
  assert.equal(typeof ctx.clickagg.trackClick, "function");
  const tracker = ctx.clickagg.getTracker();
  assert.ok(tracker);
  assert.deepEqual(listeners.sort(), ["auxclick", "click", "pagehide", "pageshow", "visibilitychange"]);
  const id = ctx.clickagg.trackClick(TOKEN);
  const stored = JSON.parse(storage.getItem("clickagg:q:" + id));
  assert.equal(stored.item.referrer, "https://publisher.example/page");
  assert.equal(stored.next - stored.item.timestamp, 50);
  await ctx.clickagg.flush();
  assert.equal(fetch.calls.length, 1);
  assert.equal(fetch.calls[0].url, "https://collect.example/v1/public/clicks");
  assert.deepEqual(fetch.ids(), [[id]]);
  assert.equal(storage.getItem("clickagg:q:" + id), null);
  tracker.shutdown();

  const denied = runScriptTag({ "data-endpoint": "https://collect.example/", "data-consent": "denied" });
  assert.equal(denied.ctx.clickagg.trackClick(TOKEN), null);
  assert.equal(denied.storage.sets, 0);
  denied.ctx.clickagg.getTracker().shutdown();

  const none = runScriptTag({});
  assert.equal(none.ctx.clickagg.getTracker(), null);
  assert.deepEqual(none.listeners, []);
});
