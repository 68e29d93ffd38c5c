#!/usr/bin/env node
// For tests/web/test_sigv4.py: sign requests exactly as the page does (createClient + signGet)
// and print {url, headers} per request. stdin: {"base", "region", "credentials", "date", "requests":
// [{"kind": "top"|"series"|"budget"|"pacing"|"get", ...args}]}.
import { createClient } from "../src/api.js";
import { signGet } from "../src/sigv4.js";

const input = JSON.parse(await new Promise((res) => {
  let s = "";
  process.stdin.on("data", (d) => (s += d)).on("end", () => res(s));
}));
const out = [];
for (const req of input.requests) {
  let captured = null;
  const client = createClient({
    apiBaseUrl: input.base,
    signer: async (url) => (await signGet(url, { region: input.region, credentials: input.credentials, date: new Date(input.date) })).headers,
    fetchImpl: async (url, init) => {
      captured = { url, headers: init.headers };
      return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
    },
  });
  if (req.kind === "top") await client.top(req);
  else if (req.kind === "series") await client.series(req.ad, req);
  else if (req.kind === "budget") await client.budget(req.campaign);
  else if (req.kind === "pacing") await client.pacing(req.campaign);
  else await client.get(req.path, req.params || {});
  out.push(captured);
}
process.stdout.write(JSON.stringify(out));
