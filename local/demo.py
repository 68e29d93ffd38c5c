"""`make demo`: start the local stack, send a generated load through HTTP, read the pipeline's
state back from AWS APIs and check it against the generator's ground truth."""
from __future__ import annotations

import argparse
import sys
import time

from common.config import IngestSettings
from local.loadgen import HOT_AD, LoadSpec, generate
from local.readback import dedup_status_counts, read_stream
from local.sender import send_load
from local.stack import LocalStack, StackOptions


class Checks:
    def __init__(self):
        self.failures: list[str] = []

    def equal(self, label: str, got, want) -> None:
        ok = got == want
        print(f"  {'OK ' if ok else 'BAD'} {label}: {got}" + ("" if ok else f" (expected {want})"))
        if not ok:
            self.failures.append(label)


def run(args) -> int:
    spec = LoadSpec(clicks=args.clicks, ads=args.ads, seed=args.seed)
    load = generate(spec, end_ms=int(time.time() * 1000))
    print(f"clickagg demo: {spec.clicks} distinct clicks, {load.duplicates} retried duplicates, "
          f"{spec.ads} ads (hot ad {HOT_AD} ~{spec.hot_ad_share:.0%})", flush=True)
    checks = Checks()
    # the hot ad is salted over 4 partition keys, so it spreads over shards (see HOT_AD_SALTS)
    settings = IngestSettings(hot_ad_salts={HOT_AD: args.hot_salts} if args.hot_salts > 1 else {})
    with LocalStack(StackOptions(api_port=args.port, settings=settings)) as stack:
        print(f"local stack up: API {stack.api.url}, moto {stack.moto.url}", flush=True)
        report = send_load(stack.api.url, load.sends, batch_size=args.batch, concurrency=args.concurrency)
        rate = len(load.sends) / report.seconds
        print(f"\nsent {len(load.sends)} clicks in {report.requests} requests, {report.seconds:.1f}s "
              f"({rate:.0f} clicks/s), {report.retries} retried items, HTTP {dict(report.http_status)}")

        print("\ningest (API responses)")
        checks.equal("clicks accepted", report.outcomes["accepted"], len(load.truth))
        checks.equal("duplicates rejected", report.outcomes["duplicate"], load.duplicates)
        checks.equal("clicks rejected as invalid", report.outcomes["rejected"], 0)

        print("\nAWS state (read back)")
        statuses = dedup_status_counts(stack.names.dedup_table)
        checks.equal("dedup table: committed click_ids", statuses.get("committed", 0), len(load.truth))
        checks.equal("dedup table: claims left pending", statuses.get("pending", 0), 0)
        shards = read_stream(stack.names.clicks_stream)
        on_stream = [r["click_id"] for recs in shards.values() for r in recs]
        for shard_id, recs in sorted(shards.items()):
            hot = sum(r["ad_id"] == HOT_AD for r in recs)
            print(f"      {shard_id}: {len(recs)} records ({hot} of the hot ad)")
        checks.equal("clicks stream: records", len(on_stream), len(load.truth))
        checks.equal("clicks stream: distinct click_ids = ground truth",
                     sorted(set(on_stream)) == sorted(c["click_id"] for c in load.truth), True)
        if args.keep:
            print(f"\nstack running: API {stack.api.url} (Ctrl-C to stop)")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    if checks.failures:
        print(f"\nDEMO FAILED: {', '.join(checks.failures)}")
        return 1
    print("\ndemo OK: every number matches the generator's ground truth")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m local demo", description=__doc__)
    p.add_argument("--clicks", type=int, default=6000)
    p.add_argument("--ads", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--batch", type=int, default=100, help="clicks per request")
    p.add_argument("--concurrency", type=int, default=4, help="concurrent HTTP connections")
    p.add_argument("--port", type=int, default=0, help="local API port (0 = any free port)")
    p.add_argument("--hot-salts", type=int, default=4, help="partition keys for the hot ad")
    p.add_argument("--keep", action="store_true", help="keep the stack running until Ctrl-C")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
