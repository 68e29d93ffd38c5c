"""Entry point of the click-aggregation job on Amazon Managed Service for Apache Flink (FLINK-1_20).

Application package (zip staged by infra/constructs/aggregator.py; jar from ../pom.xml):

    aggregate/job/*.py          <- this file is `aggregate/job/main.py`
    common/*.py
    lib/clickagg-flink-deps.jar  (flink-connector-kinesis 5.0.0-1.20, shaded; staged by infra/)

Runtime properties:
    kinesis.analytics.flink.run.options: python = aggregate/job/main.py
                                         jarfile = lib/clickagg-flink-deps.jar
    clickagg: see settings.JobSettings (environment=aws, aws_region, clicks_stream_arn,
              aggregates_stream_arn, source_init_position, allowed_lateness_s, ...)

On AWS the properties come from /etc/flink/application_properties.json and the service owns
checkpointing and parallelism. Elsewhere (developer run against real AWS) the same file shape can
be given via CLICKAGG_PROPERTIES and the connector jar via CLICKAGG_JAR (pipeline.jars), as in the
aws-samples Python examples; for a fully local run use `aggregate.job.local_runner` instead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]  # directory holding aggregate/ and common/
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from aggregate.job import pipeline, sql  # noqa: E402
from aggregate.job.settings import (  # noqa: E402
    AWS_PROPERTIES_FILE,
    ENV_AWS,
    JobSettings,
    load_properties,
)


def main() -> None:
    on_aws = AWS_PROPERTIES_FILE.exists()
    props = load_properties(None if on_aws else os.environ.get("CLICKAGG_PROPERTIES"))
    defaults = {"environment": ENV_AWS} if on_aws else {}
    group = {**defaults, **props.get("clickagg", {})}
    settings = JobSettings.from_properties({"clickagg": group})

    extra: dict[str, str] = {}
    if not on_aws:
        jar = os.environ.get("CLICKAGG_JAR") or str(
            _ROOT / "aggregate" / "target" / "clickagg-flink-deps.jar"  # mvn package output
        )
        if settings.environment == ENV_AWS:
            extra["pipeline.jars"] = "file://" + os.path.abspath(jar)

    t_env = pipeline.create_table_env(settings, local=not on_aws, extra=extra)
    pipeline.build_output(t_env, settings)
    connector = None if settings.environment == ENV_AWS else "print"
    t_env.execute_sql(sql.sink_ddl(settings, connector=connector))
    result = t_env.execute_sql(sql.insert_dml())
    if not on_aws:
        result.wait()  # on AWS the service keeps the job; the driver must return


if __name__ == "__main__":
    main()
