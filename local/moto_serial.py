"""moto server with its requests served one at a time (the local emulator of every stack and test).

Why a shim: moto 5.2.5's Kinesis shard is not safe for concurrency (its `put_record` says so):
two PutRecords on one shard at once can take the same sequence number, and the second record
silently replaces the first; a GetRecords during a PutRecords fails with "OrderedDict mutated
during iteration". The Flink job's Kinesis sink keeps many PutRecords in flight and its source
polls every shard from its own thread, so under the real connector records were lost. One lock
around moto's WSGI app removes both races; moto is CPU-bound under the GIL anyway, so little
throughput is lost. Same command line as `moto_server` (-H, -p).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                           create_backend_app)
from werkzeug.serving import run_simple


def serialized(app):
    lock = threading.Lock()

    def call(environ, start_response):
        with lock:  # the whole response, body included, is produced under the lock
            return list(app(environ, start_response))

    return call


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="local.moto_serial", description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from local.moto_index import install

    install()  # the rank index's Queries read one partition, not the whole table
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialized(app), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
