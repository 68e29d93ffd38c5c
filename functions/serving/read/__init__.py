"""The query API's side of the serving store: one reader per store (QueryStore in serving.types).
Built on the query domain (query.topk, query.series, query.windows); the query Lambda ships it."""
