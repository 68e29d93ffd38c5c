"""Query API: top-K ads and per-ad series over the serving store (DynamoDB or Timestream)."""
