"""Nightly billing recompute: exact dedup, repeat-click and IP-burst rules, hourly totals."""
