"""clickagg's user tools, for the deployed API and the local stack alike:

* `cli` (+ `sql_cli`, `analytics`): the query/SQL command line, `./clickagg ...` or `python -m tools.cli ...`
* `loadgen`: generated click load with a known ground truth (demo, benchmarks, tests)
* `sender`: sends such a load to the ingest API like an ad SDK (batches, retries)

Nothing here emulates AWS: that is `local/`.
"""
