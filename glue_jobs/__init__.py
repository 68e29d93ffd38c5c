"""Batch jobs over the raw click archive (AWS Glue 5.0 = Spark 3.5.4 + Python 3.11).

On Glue this package is shipped as one zip (`--extra-py-files`) together with `functions/common`
as `common` and the serving store's core (`functions/serving/*.py` as `serving`): the billing
job's settings are a view of the one schema (common.schema), so values shared with the stream
(repeat window, lateness) have one definition; the reconciliation reads the serving table with
the store's own keys, item attributes and Queries (serving.keys, serving.table).
"""
