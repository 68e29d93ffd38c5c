"""Stream aggregation: the Flink SQL job (`job/`) and the sink Lambda that writes its changelog
into the serving store (`sink_handler.py`, with the writers of the `serving` package)."""
