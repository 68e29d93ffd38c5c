"""A sample ad server and publisher site: the SDKs' runnable example (issue 18).

It plays both sides an integration has:

* the **ad server** signs one click token per served ad with the Python SDK
  (`clickagg_sdk.TokenIssuer`, the deployment's key set: it never leaves this process);
* the **publisher page** (`GET /`) shows the ads with the browser SDK (`sdk/js`, script-tag
  build): link ads carry their token in `data-clickagg-token` (the SDK sends the click and
  the browser follows the link at once), "video" ads call `clickagg.trackClick(token)` from a
  button. Every page view serves new impressions (new tokens).

Run it against the local stack (`make up` in another terminal):

    .venv/bin/python sdk/example/ad_server.py --local-endpoint <the AWS endpoint `make up` printed>
    # then open http://127.0.0.1:8090/

or against a deployment: `--api https://<id>.execute-api.<region>.amazonaws.com/prod
--keys-json keyset.json` (the click-token secret's value). The page logs each click's outcome
(`clickagg:result {...}`) to the browser console. Landing pages are on https://shop.example
(not a real site: the click is recorded before the browser gets there).

Stdlib HTTP server: an example should run with nothing but the SDK installed.
"""
from __future__ import annotations

import argparse
import html
import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template

from clickagg_sdk import TokenIssuer, parse_key_set

HERE = Path(__file__).resolve().parent
SDK_DIST = HERE.parent / "js" / "dist"
PAGE = Template((HERE / "page.html").read_text(encoding="utf-8"))
SDK_FILES = {"/sdk/clickagg.min.js": "clickagg.min.js", "/sdk/clickagg.mjs": "clickagg.mjs"}


@dataclass(frozen=True)
class Ad:
    ad_id: str
    campaign_id: str
    advertiser_id: str
    price_micros: int
    landing_url: str
    title: str
    kind: str  # "link": an <a> the SDK watches; "video": a button calling trackClick


CATALOG = (
    Ad("ad-shoes", "cmp-spring", "adv-acme", 250_000, "https://shop.example/shoes?utm_source=clickagg",
       "Spring shoes, 20 % off", "link"),
    Ad("ad-bikes", "cmp-spring", "adv-acme", 400_000, "https://shop.example/bikes", "City bikes", "link"),
    Ad("ad-tea", "cmp-tea", "adv-leaf", 120_000, "https://tea.example/green", "Green tea sampler", "video"),
    Ad("ad-flights", "cmp-sun", "adv-fly", 1_500_000, "https://fly.example/sun", "Flights to the sun",
       "video"),
)


def render_page(issuer: TokenIssuer, api_url: str, placement_prefix: str = "home") -> str:
    """The publisher page with one fresh impression (token) per ad."""
    cards = []
    for i, ad in enumerate(CATALOG):
        token = issuer.issue(ad_id=ad.ad_id, campaign_id=ad.campaign_id, advertiser_id=ad.advertiser_id,
                             price_micros=ad.price_micros, landing_url=ad.landing_url,
                             placement_id=f"{placement_prefix}-{i}", publisher_id="pub-example")
        ad_attr, token = html.escape(ad.ad_id), html.escape(token)
        if ad.kind == "link":  # the SDK watches links with this attribute (autoLinks)
            body = (f'<a class="ad" href="{html.escape(ad.landing_url)}" data-ad="{ad_attr}" '
                    f'data-clickagg-token="{token}">{html.escape(ad.title)}</a>')
        else:  # the page's own code reports these (page.html)
            body = (f'<button class="ad video" type="button" data-ad="{ad_attr}" data-token="{token}">'
                    f'&#9654; {html.escape(ad.title)}</button>')
        cards.append(f'<li id="slot-{i}">{body}</li>')
    # a JS string literal inside <script> (no entity decoding there): JSON, with "<" escaped so
    # no "</script>" can end the element
    api_literal = json.dumps(api_url).replace("<", "\\u003c")
    return PAGE.substitute(api=api_literal, ads="\n    ".join(cards))


def make_server(issuer: TokenIssuer, api_url: str, host: str = "127.0.0.1", port: int = 8090) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet; the page's console says what happened
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")  # every page view is a new impression
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/":
                return self._send(200, render_page(issuer, api_url).encode(), "text/html; charset=utf-8")
            if path in SDK_FILES:
                file = SDK_DIST / SDK_FILES[path]
                if not file.exists():
                    return self._send(503, b"sdk/js is not built: node sdk/js/build.mjs\n", "text/plain")
                return self._send(200, file.read_bytes(), "text/javascript; charset=utf-8")
            self._send(404, b"not found\n", "text/plain")

    return ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(server: ThreadingHTTPServer) -> str:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://{server.server_address[0]}:{server.server_address[1]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--api", default="http://127.0.0.1:8080", help="the clickagg API's base URL")
    keys = ap.add_mutually_exclusive_group(required=True)
    keys.add_argument("--keys-json", type=Path, help="the click-token secret's value (JSON file)")
    keys.add_argument("--local-endpoint", metavar="URL",
                      help="read the key set from the local stack's emulator at URL (`make up` prints it)")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--ttl-s", type=int, default=3600, help="token lifetime")
    args = ap.parse_args(argv)
    if args.local_endpoint:
        import os
        sys.path[:0] = [str(HERE.parents[1]), str(HERE.parents[1] / "functions")]
        from common.config import ResourceNames
        from local.readback import click_token_keys
        from local.stack import aws_env
        os.environ.update(aws_env(args.local_endpoint))
        key_set = click_token_keys(ResourceNames().click_token_secret)
    else:
        key_set = parse_key_set(args.keys_json.read_text())
    server = make_server(TokenIssuer(key_set, ttl_s=args.ttl_s), args.api.rstrip("/"), port=args.port)
    print(f"publisher page: http://127.0.0.1:{args.port}/  (clicks go to {args.api})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
