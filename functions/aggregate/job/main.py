"""Entry point of the click-aggregation job on Amazon Managed Service for Apache Flink (FLINK-1_20).

Application package: `functions/aggregate/target/clickagg-flink-app.zip`, built by Maven
(`make setup`; ../pom.xml + ../assembly.xml):

    aggregate/job/*.py          <- this file is `aggregate/job/main.py`
    common/*.py
    lib/clickagg-flink-deps.jar  (flink-connector-kinesis 4.3.0-1.19, shaded)

Runtime properties:
    kinesis.analytics.flink.run.options: python = aggregate/job/main.py
                                         jarfile = lib/clickagg-flink-deps.jar
    clickagg: see settings.JobSettings (aws_region, clicks_stream_arn, aggregates_stream_arn,
              source_init_position, allowed_lateness_s, ...)

On AWS the properties come from /etc/flink/application_properties.json and the service owns
checkpointing and parallelism. Elsewhere (a developer run against real AWS) the same file shape
can be given via CLICKAGG_PROPERTIES and the connector jar via CLICKAGG_JAR (pipeline.jars), as
in the aws-samples Python examples. The local stack runs this same job through its own driver
(`local/flink_runner.py`, outside this package), with an endpoint and local checkpoints.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]  # directory holding aggregate/ and common/
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from aggregate.job import pipeline, sql  # noqa: E402
from aggregate.job.settings import AWS_PROPERTIES_FILE, JobSettings, load_properties  # noqa: E402

# `mvn package` output, for runs outside Managed Flink (the service adds `jarfile` itself)
BUILT_JAR = _ROOT / "aggregate" / "target" / "clickagg-flink-deps.jar"


def connector_jar_uri() -> str:
    jar = Path(os.environ.get("CLICKAGG_JAR") or BUILT_JAR).resolve()
    if not jar.is_file():
        raise SystemExit(f"connector jar {jar} missing: build it with `make setup` "
                         "(mvn -f functions/aggregate/pom.xml package)")
    return jar.as_uri()


def submit(settings: JobSettings, *, local: bool, extra: dict[str, str] | None = None):
    """Plan the job (source, both stages, sink) and submit it; returns the TableResult."""
    t_env = pipeline.create_table_env(settings, local=local, extra=extra)
    output = pipeline.sink_view(t_env, settings, pipeline.build_output(t_env, settings))
    t_env.execute_sql(sql.sink_ddl(settings))
    return t_env.execute_sql(sql.insert_dml(view=output))


def main() -> None:
    on_aws = AWS_PROPERTIES_FILE.exists()
    props = load_properties(None if on_aws else os.environ.get("CLICKAGG_PROPERTIES"))
    settings = JobSettings.from_properties(props)
    extra = {} if on_aws else {"pipeline.jars": connector_jar_uri()}
    result = submit(settings, local=not on_aws, extra=extra)
    if not on_aws:
        result.wait()  # on AWS the service keeps the job; the driver must return


if __name__ == "__main__":
    main()
