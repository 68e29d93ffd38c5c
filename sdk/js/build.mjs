#!/usr/bin/env node
// Builds sdk/js/dist, or the directory given as the first argument (deterministic):
//   clickagg.mjs     ESM, minified (package "import")
//   clickagg.min.js  IIFE, global `clickagg`, minified, auto-init from its <script data-endpoint>
//   clickagg.d.ts    types (tsc: checkJs + strict type-check of src/, declarations to dist/types/)
//   build.json       gzipped sizes (node:zlib level 9); the build fails above LIMIT bytes.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.argv[2] ? resolve(process.argv[2]) : join(here, "dist");
// CLICKAGG_SDK_GZIP_LIMIT may only lower the limit (the test that shows the check fails)
const LIMIT = Math.min(5120, +(process.env.CLICKAGG_SDK_GZIP_LIMIT || 5120));
const require = createRequire(import.meta.url);

let esbuild;
try {
  esbuild = await import("esbuild");
} catch {
  console.error("sdk/js/build.mjs: esbuild is not installed: run `npm ci --prefix sdk/js` first");
  process.exit(1);
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

// 1. type-check src/ and emit declarations (tsc exits non-zero on any type error)
const tsc = require.resolve("typescript/bin/tsc");
try {
  execFileSync(process.execPath, [tsc, "-p", join(here, "tsconfig.json"), "--outDir", join(dist, "types")], { stdio: "inherit" });
} catch {
  console.error("sdk/js/build.mjs: tsc failed");
  process.exit(1);
}
// dist/clickagg.d.ts = dist/types/index.d.ts with its relative imports pointing into types/
const dts = readFileSync(join(dist, "types", "index.d.ts"), "utf8").replace(/(["'])\.\/([\w.-]+)\1/g, '$1./types/$2$1');
writeFileSync(join(dist, "clickagg.d.ts"), dts);

// 2. bundles
const common = { bundle: true, minify: true, target: "es2022", charset: "utf8", legalComments: "none", logLevel: "warning" };
await esbuild.build({ ...common, entryPoints: [join(here, "src", "index.js")], format: "esm", outfile: join(dist, "clickagg.mjs") });
await esbuild.build({
  ...common,
  entryPoints: [join(here, "src", "browser.js")],
  format: "iife",
  globalName: "clickagg",
  outfile: join(dist, "clickagg.min.js"),
});

// 3. sizes
const sizes = {};
for (const f of ["clickagg.mjs", "clickagg.min.js"]) {
  const raw = readFileSync(join(dist, f));
  sizes[f] = { bytes: raw.length, gzip: gzipSync(raw, { level: 9 }).length };
}
writeFileSync(join(dist, "build.json"), JSON.stringify({ limit_gzip: LIMIT, sizes }, null, 1) + "\n");
let over = false;
for (const [f, s] of Object.entries(sizes)) {
  const bad = s.gzip > LIMIT;
  over ||= bad;
  console.log(`${relative(process.cwd(), join(dist, f))}: ${s.bytes} bytes, ${s.gzip} gzipped (limit ${LIMIT})${bad ? " OVER THE LIMIT" : ""}`);
}
if (over) {
  console.error(`sdk/js/build.mjs: a bundle is over ${LIMIT} bytes gzipped`);
  process.exit(1);
}
