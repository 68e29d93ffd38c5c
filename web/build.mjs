#!/usr/bin/env node
// Build the dashboard into web/dist: copy src/, vendor uPlot from node_modules, and stamp every
// local URL with a content hash (?v=...) so a CDN can cache the files and a deploy still takes
// effect at once. No bundler: the page loads native ES modules. Deterministic output.
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const dist = process.argv[2] ? process.argv[2] : join(here, "dist");
const uplot = join(here, "node_modules", "uplot");

if (!existsSync(join(uplot, "dist", "uPlot.esm.js"))) {
  console.error("web/build.mjs: uPlot is not installed: run `npm ci` in web/ first");
  process.exit(1);
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor"), { recursive: true });
const files = {}; // dist-relative path -> contents
for (const name of readdirSync(src).sort()) {
  if (/\.(html|js|css)$/.test(name)) files[name] = readFileSync(join(src, name), "utf8");
}
files["vendor/uPlot.esm.js"] = readFileSync(join(uplot, "dist", "uPlot.esm.js"), "utf8");
files["vendor/uPlot.min.css"] = readFileSync(join(uplot, "dist", "uPlot.min.css"), "utf8");
files["vendor/uPlot.LICENSE.txt"] = readFileSync(join(uplot, "LICENSE"), "utf8");

const hash = createHash("sha256");
for (const [name, text] of Object.entries(files)) hash.update(name).update("\0").update(text).update("\0");
const version = hash.digest("hex").slice(0, 12);

const stamp = (url) => `${url}?v=${version}`;
for (const [name, text] of Object.entries(files)) {
  let out = text;
  if (name.endsWith(".html")) {
    out = out.replace(/(href|src)="((?:vendor\/)?[\w.-]+\.(?:css|js))"/g, (_, attr, url) => `${attr}="${stamp(url)}"`);
  } else if (name.endsWith(".js") && !name.startsWith("vendor/")) {
    out = out.replace(/(from\s+|import\()"(\.\/[\w./-]+\.js)"/g, (_, lead, url) => `${lead}"${stamp(url)}"`);
  }
  writeFileSync(join(dist, name), out);
}
writeFileSync(join(dist, "build.json"), JSON.stringify({ version, files: Object.keys(files).sort() }, null, 1) + "\n");
console.log(`web/dist built: ${Object.keys(files).length} files, version ${version}`);
