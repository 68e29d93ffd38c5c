"""Batch jobs over the raw click archive (AWS Glue 5.0 = Spark 3.5.4 + Python 3.11).

Self-contained on purpose: on Glue this package is shipped as one zip (`--extra-py-files`), so it
imports nothing from `functions/`; values shared with the stream (repeat window, lateness) have
the same defaults as `common.config.AggregationSettings` and a test keeps them equal.
"""
