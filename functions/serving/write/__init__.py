"""The sink's side of the serving store: one writer per store (ServingStore in serving.types),
writing the Flink changelog (aggregate.changes) idempotently; the sink Lambda ships it."""
