"""Entry point of the rebuild on Amazon Managed Service for Apache Flink (application
`<prefix>-rebuild`, infra/constructs/rebuild.py; docs/rebuild.md "Running it").

The same application zip as the stream job (assembly.xml packs aggregate/job/*.py), run options
`python = aggregate/job/rebuild_main.py`, `jarfile = lib/clickagg-flink-deps.jar`. The service
runs this file with no arguments; the run comes from /etc/flink/application_properties.json:
    clickagg   the stream job's settings (lateness, IVT rules, ...: the same SQL's inputs)
    rebuild    start_ms, end_ms, archive_root, out, generation (+ the read window's
               arrival_cutoff_s, max_future_skew_s), written per run by the state machine's
               `prepare` step (serving.rebuild.handlers)
It runs the batch job (aggregate.job.rebuild.run_managed) and then writes `<out>_SUCCESS`
through Flink's own FileSystem (org.apache.flink.core.fs, via the PyFlink gateway), so the
same code writes s3:// on AWS and file:// in a test. The state machine polls for that object
and then stops the application. Assumed, not verified on AWS: that the service lets the
driver wait for a batch job (TableResult.wait) and that it may start the finished job again
(hence: `_SUCCESS` present at start -> exit 0 without running).

Run elsewhere (a developer's Flink with the same property file): CLICKAGG_PROPERTIES names
the file, as for aggregate/job/main.py. The command line of a local rebuild stays
`python -m aggregate.job.rebuild --start ... --end ...` (local/rebuild.py).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]  # directory holding aggregate/ and common/
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from aggregate.job import rebuild  # noqa: E402
from aggregate.job.settings import AWS_PROPERTIES_FILE, load_properties  # noqa: E402


class FlinkFileSystem:
    """exists / write through org.apache.flink.core.fs.FileSystem: the file systems the job
    itself uses (the S3 plugin on Managed Flink), with its credentials."""

    def __init__(self) -> None:
        from pyflink.java_gateway import get_gateway

        self._fs = get_gateway().jvm.org.apache.flink.core.fs

    def _path(self, uri: str):
        return self._fs.Path(uri)

    def exists(self, uri: str) -> bool:
        path = self._path(uri)
        return bool(path.getFileSystem().exists(path))

    def write_text(self, uri: str, text: str) -> None:
        path = self._path(uri)
        overwrite = getattr(self._fs, "FileSystem$WriteMode").OVERWRITE
        out = path.getFileSystem().create(path, overwrite)
        try:
            out.write(bytearray(text.encode()))  # py4j: bytearray -> byte[]
        finally:
            out.close()


def main() -> int:
    on_aws = AWS_PROPERTIES_FILE.exists()
    props = load_properties(None if on_aws else os.environ.get("CLICKAGG_PROPERTIES"))
    try:
        return rebuild.run_managed(props, int(time.time() * 1000), FlinkFileSystem(), rebuild.run,
                                   log=lambda line: print(line, file=sys.stderr, flush=True))
    except (rebuild.RunPropertyError, rebuild.RebuildError) as exc:
        print(f"rebuild refused: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
