"""`python -m local up` runs the local stack until Ctrl-C; `python -m local demo` runs the demo;
`python -m local rebuild --endpoint URL --start .. --end ..` rebuilds a range of a running
stack's serving table from its archive (local/rebuild.py)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading


def up(argv) -> int:
    import faulthandler
    from pathlib import Path

    from local.stack import LocalStack, StackOptions

    p = argparse.ArgumentParser(prog="python -m local up")
    p.add_argument("--port", type=int, default=8080, help="local API port (0 = any free port)")
    p.add_argument("--moto-port", type=int, default=None, help="moto server port (default: free)")
    p.add_argument("--endpoint", default=None,
                   help="use this running emulator instead of starting moto (consumers resume)")
    p.add_argument("--state-dir", type=Path, default=StackOptions.state_dir,
                   help="consumer positions, Flink checkpoints, logs (default: .local); "
                        "two stacks at once need two directories")
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C stops the stack even when started from a non-interactive shell's background job,
    # which starts it with SIGINT ignored (Python then installs no KeyboardInterrupt handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: where a stop hangs
    try:
        options = StackOptions(api_port=args.port, moto_port=args.moto_port, endpoint=args.endpoint,
                               state_dir=args.state_dir)
        with LocalStack(options) as stack:
            print(f"clickagg local stack: API {stack.api.url}  AWS endpoint {stack.endpoint}  "
                  "(Ctrl-C to stop)", flush=True)
            stop.wait()
    except KeyboardInterrupt:
        pass  # the with-block has already stopped moto and the API
    print("stopped: moto server and local API are down", flush=True)
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("up", "demo", "rebuild"):
        print(__doc__)
        return 2
    if sys.argv[1] == "up":
        return up(sys.argv[2:])
    if sys.argv[1] == "rebuild":
        from local.rebuild import main as rebuild_main

        return rebuild_main(sys.argv[2:])
    from local.demo import main as demo_main

    return demo_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
